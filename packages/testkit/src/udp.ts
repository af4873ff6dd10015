/** What UDP tests and the UDP grid share: each runtime's CLI with UDP on, a free port, the outside Python probe. */
import * as dgram from "node:dgram";
import { join } from "node:path";
import { cliOf, command, pinned, ROOT, type RuntimeName } from "./runtimes.ts";

/** `udp-probe.py HOST PORT [--burst N]`: an outside client (Python's sockets) that prints one JSON report. */
export const UDP_PROBE = join(ROOT, "packages/testkit/src/udp-probe.py");

/** argv of a runtime's CLI able to use UDP (Deno 2.9 needs `--unstable-net`; `unstableNet: false` leaves it out). */
export function udpCli(runtime: RuntimeName, unstableNet = true): [string, ...string[]] {
  return command(pinned(runtime), cliOf(runtime), { unstableNet }) as [string, ...string[]];
}

/** A UDP port on `host` free right now: socat and xinetd cannot be asked for port 0 and tell which they got. */
export async function freeUdpPort(host = "127.0.0.1"): Promise<number> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
