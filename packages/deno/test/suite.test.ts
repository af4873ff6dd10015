/** The behaviour suite every runtime passes, run by `Deno.test`. */
import { addTests } from "@tcp-echo/testkit/suite";
import * as deno from "../src/index.ts";

// The suite bounds every case itself: Deno.test has no timeout to pass on.
addTests(deno, { test: (name, fn) => Deno.test(name, fn) });
