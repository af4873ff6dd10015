/**
 * `pnpm matrix --faults` inside `pnpm test`, on the diagonal only (each
 * runtime's client against its own server, every fault), so the fault grid
 * cannot rot; the full grid is `pnpm matrix --faults`.
 */

import { startMatrix } from "../src/matrix.ts";
import { PROFILES } from "../src/plan.ts";
import { cellTests } from "./_cells.ts";

cellTests(
  startMatrix({ profile: PROFILES.quick, jobs: 2, faults: true, only: (server, client) => server === client }),
  "faults: ",
);
