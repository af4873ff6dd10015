/**
 * The conformance matrix inside `pnpm test`: each cell x case is a named test.
 * It runs the `quick` profile: the same cases and counts as `pnpm matrix`, but
 * without the 256 MiB payload (which `pnpm matrix` runs on the diagonal).
 */

import { startMatrix } from "../src/matrix.ts";
import { PROFILES } from "../src/plan.ts";
import { cellTests } from "./_cells.ts";

cellTests(startMatrix({ profile: PROFILES.quick, jobs: 2 }));
