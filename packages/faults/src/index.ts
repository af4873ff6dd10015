/**
 * @tcp-echo/faults: a fault-injecting TCP proxy (Toxiproxy's toxics, in
 * process) and the faults every client x server cell must survive.
 *
 *   import { FAULTS, startProxy } from "@tcp-echo/faults";
 *   for (const fault of FAULTS) {
 *     await using proxy = await startProxy({ target: server.address, toxics: fault.toxics });
 *     // run the client against proxy.address; expect fault.expect
 *   }
 */

export type { Backend, Balancer, BalancerOptions, HaproxyBalancer } from "./balancers.ts";
export { missingBalancer, startHaproxy, startNginx } from "./balancers.ts";
export type { DriverResult } from "./driver.ts";
export type { Fault } from "./faults.ts";
export { FAULT_PAYLOAD, FAULTS } from "./faults.ts";
export type { SoakOptions, SoakReport, SoakSample } from "./load.ts";
export { runSoak } from "./load.ts";
export type { Direction, FaultProxy, ProxyOptions, ProxyStats, Toxic } from "./proxy.ts";
export { startProxy } from "./proxy.ts";
