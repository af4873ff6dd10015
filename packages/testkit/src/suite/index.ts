/**
 * The behaviour suite: every case a runtime package must pass, written once and
 * run by each runtime's own runner through a shim of a few lines:
 *
 *   import { addTests } from "@tcp-echo/testkit/suite";
 *   import * as runtime from "../src/index.ts";
 *   addTests(runtime, { test: (name, fn, { timeout }) => test(name, fn, timeout) });
 *
 * A case names the behaviour it proves and asserts on bytes and codes; raw
 * peers are `node:` sockets, which every runtime has.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { backpressureCases } from "./backpressure.ts";
import { echoCases } from "./echo.ts";
import { errorCases } from "./errors.ts";
import { halfCloseCases } from "./half-close.ts";
import { ipv6Cases } from "./ipv6.ts";
import { caseAdder, makeCerts, type RuntimePackage, type TestApi, tempDir } from "./kit.ts";
import { lifecycleCases } from "./lifecycle.ts";
import { limitCases } from "./limits.ts";
import { peerCases } from "./peers.ts";
import { tlsCases } from "./tls.ts";
import { udpCases } from "./udp.ts";
import { unixCases } from "./unix.ts";

export { type Certs, makeCerts, type RuntimePackage, type TestApi, tempDir } from "./kit.ts";

/** Registers every case of the suite for `runtime` with the runner behind `api`. */
export function addTests(runtime: RuntimePackage, api: TestApi): void {
  const add = caseAdder(runtime, api);
  // Read into memory, so nothing is left on disk for a runner without an after-all hook.
  const dir = tempDir("echo-certs-");
  const certs = makeCerts(join(dir, "certs"));
  rmSync(dir, { recursive: true, force: true });
  echoCases(add);
  halfCloseCases(add);
  backpressureCases(add);
  limitCases(add);
  peerCases(add);
  errorCases(add);
  lifecycleCases(add);
  ipv6Cases(add);
  unixCases(add);
  tlsCases(add, certs);
  udpCases(add);
}
