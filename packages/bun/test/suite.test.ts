/** The behaviour suite every runtime passes, run by `bun test`. */
import { test } from "bun:test";
import { addTests } from "@tcp-echo/testkit/suite";
import * as bun from "../src/index.ts";

addTests(bun, { test: (name, fn, { timeout }) => test(name, fn, timeout) });
