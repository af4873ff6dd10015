/**
 * `pnpm matrix --faults`: every client x server cell of our runtimes through
 * each fault of `FAULTS` (`@tcp-echo/faults`), one fault-injecting proxy per
 * fault, in the runner, between the driver and the server. Each fault is a case
 * of the cell; the driver streams `FAULT_PAYLOAD` with half-close through all
 * of them at once and expects what the fault says (`echo`, or `ECONNRESET`).
 */

import { FAULT_PAYLOAD, FAULTS, type FaultProxy, startProxy } from "@tcp-echo/faults";
import { HOST } from "./launchers.ts";
import type { CaseSpec, FaultTarget } from "./plan.ts";

export const FAULT_CASES: readonly CaseSpec[] = FAULTS.map((fault) => ({
  name: fault.name,
  proves: fault.proves,
  reason:
    "Real networks delay, slice, stall and reset; an echo that is byte-exact on loopback can still drop, reorder or hang through them, and a reset must surface as ECONNRESET, never as success or a hang.",
  players: "api",
  rows: "ours",
  needs: "connection",
}));

/** Starts one proxy per fault case in front of `port`; the driver gets their ports as `params.faults`. */
export async function startFaultProxies(
  cases: readonly CaseSpec[],
  port: number,
): Promise<{ targets: FaultTarget[]; close(): Promise<void> }> {
  const proxies: FaultProxy[] = [];
  const targets: FaultTarget[] = [];
  try {
    for (const spec of cases) {
      const fault = FAULTS.find((candidate) => candidate.name === spec.name);
      if (!fault) throw new Error(`no fault named ${spec.name}`);
      const proxy = await startProxy({ target: { hostname: HOST, port }, toxics: fault.toxics });
      proxies.push(proxy);
      targets.push({ name: fault.name, port: proxy.address.port, expect: fault.expect, size: FAULT_PAYLOAD });
    }
  } catch (error) {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    throw error;
  }
  return { targets, close: async () => void (await Promise.all(proxies.map((proxy) => proxy.close()))) };
}
