/** The behaviour suite every runtime passes, run by vitest on Node. */
import { addTests } from "@tcp-echo/testkit/suite";
import { test } from "vitest";
import * as node from "../src/index.ts";

addTests(node, { test: (name, fn, { timeout }) => test(name, fn, timeout) });
