/**
 * The faults every client x server cell must survive: one proxy configuration
 * each, with what the client must report through it. Plain data, shared by the
 * fault tests and (through `startProxy`) `pnpm matrix --faults`.
 *
 * Parameters are picked so a 4 MiB echo with half-close takes a second or two
 * through each one on loopback: long enough for the fault to act mid-stream,
 * short enough to run 9 cells in CI.
 */

import type { Toxic } from "./proxy.ts";

export interface Fault {
  readonly name: string;
  /** The behaviour it proves, as a sentence. */
  readonly proves: string;
  readonly toxics: readonly Toxic[];
  /** `echo`: every byte comes back, in order, then EOF. Otherwise the error code the client must report. */
  readonly expect: "echo" | "ECONNRESET";
}

const MiB = 1024 * 1024;

export const FAULTS: readonly Fault[] = [
  {
    name: "latency",
    proves: "20 ms +/- 10 ms of latency each way: byte-exact, then EOF",
    toxics: [{ type: "latency", latency: 20, jitter: 10 }],
    expect: "echo",
  },
  {
    name: "bandwidth",
    proves: "a link limited to 8 MiB/s each way: byte-exact, then EOF",
    toxics: [{ type: "bandwidth", rate: 8 * MiB }],
    expect: "echo",
  },
  {
    name: "slicer",
    proves: "bytes forwarded in random 1 B to 16 KiB segments, 0-1 ms apart: byte-exact, then EOF",
    toxics: [{ type: "slicer", maxSize: 16 * 1024, delay: 1 }],
    expect: "echo",
  },
  {
    name: "slow-close",
    proves: "each FIN held 500 ms: the echo still completes, then EOF",
    toxics: [{ type: "slow-close", delay: 500 }],
    expect: "echo",
  },
  {
    name: "stall",
    proves: "nothing forwarded for 1 s after 1 MiB, then everything: byte-exact, then EOF",
    toxics: [{ type: "stall", after: MiB, duration: 1000 }],
    expect: "echo",
  },
  {
    name: "reset-client",
    proves: "the client is reset (RST) after 1 MiB: it reports ECONNRESET, never success, never a hang",
    toxics: [{ type: "reset", side: "client", after: MiB }],
    expect: "ECONNRESET",
  },
  {
    name: "reset-server",
    proves: "the server is reset (RST) after 1 MiB, then the client: ECONNRESET, never success, never a hang",
    toxics: [{ type: "reset", side: "server", after: MiB }],
    expect: "ECONNRESET",
  },
];

/** The payload every fault cell streams with half-close. */
export const FAULT_PAYLOAD = 4 * MiB;
