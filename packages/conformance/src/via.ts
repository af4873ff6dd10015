/**
 * `pnpm matrix --via haproxy|nginx`: every row's server behind a real load
 * balancer of its own (`mode tcp`, one backend: that server), started from
 * `@tcp-echo/faults`' config generators, so half-close and backpressure are
 * proven end to end through the engines people deploy, not only direct. The
 * clients connect to the balancer; the cases that read the server's process
 * (/proc memory, descriptors, its port's connection table) still read the real
 * server, and backpressure also bounds what the balancer holds.
 *
 * Over tcp4 our servers are started with `serve --proxy-protocol` and the balancer sends
 * each connection a PROXY header (HAProxy v2, `send-proxy-v2`; nginx v1): then
 * every case through it also proves that the header is parsed and never echoed
 * (every payload comes back byte-exact, from every client), and the per-address
 * limit sees each client's own address behind the balancer (`max-per-address`
 * fails through a plain balancer: every connection comes from its address).
 * Peer servers and the negative control cannot read the header, nor can a TLS
 * server (the header would come before the handshake): to them the bytes are
 * forwarded plain. There is no health check: with one backend it could only
 * turn that backend away.
 */

import { readFileSync } from "node:fs";
import { type Balancer, missingBalancer, startHaproxy, startNginx } from "@tcp-echo/faults";
import { heldConnections } from "@tcp-echo/testkit";
import { sleep } from "./deadline.ts";
import type { RunningServer, StartOptions } from "./launchers.ts";
import type { ServerSpec } from "./participants.ts";
import { connectTo, type Endpoint, type Transport, type TransportSetup } from "./transports.ts";

export const BALANCERS = ["haproxy", "nginx"] as const;
export type Via = (typeof BALANCERS)[number];

/**
 * The transports a balancer carries here: TCP over IPv4, and TLS passed through
 * untouched (`mode tcp` forwards the encrypted bytes; the client checks the real
 * server's certificate). The generated configs bind and connect on 127.0.0.1 only.
 */
export const VIA_TRANSPORTS: readonly Transport[] = ["tcp4", "tls"];

/** Why `--via` cannot run as asked (exit 2, before anything starts), or undefined. */
export function viaProblem(
  via: string,
  transports: readonly Transport[],
  modes: { faults: boolean },
): string | undefined {
  if (!BALANCERS.includes(via as Via)) return `--via must be ${BALANCERS.join(" or ")}, got ${JSON.stringify(via)}`;
  const unsupported = transports.filter((transport) => !VIA_TRANSPORTS.includes(transport));
  if (unsupported.length > 0) {
    return `--via runs over ${VIA_TRANSPORTS.join(" and ")} only (the balancer listens and connects on 127.0.0.1), not ${unsupported.join(", ")}`;
  }
  if (modes.faults) return "--via and --faults do not combine: the fault proxy is a balancer of its own";
  const missing = missingBalancer(via as Via);
  return missing ? `--via ${via}: ${missing}` : undefined;
}

/**
 * The balancer holds at most this much of a stream whose client reads nothing: HAProxy 2.6 keeps one
 * `tune.bufsize` buffer (16 KiB by default) per direction per stream, nginx one `proxy_buffer_size` (16 KiB)
 * per direction; the rest is in the kernel's socket buffers, which no process's RSS shows. 8 MiB is far above
 * both (measured: +0 to +36 KiB of RSS through either), and far below the 200 MB a balancer that did not
 * propagate backpressure would take.
 */
export const BALANCER_RSS_LIMIT = 8 * 1024 * 1024;

/**
 * What the kernel may hold in a balancer's sockets on one stream, at most: each direction passes through one
 * receive buffer (from the client, or from the server) and one send buffer (to the server, or to the client),
 * autotuned up to `net.ipv4.tcp_rmem` / `tcp_wmem`'s maximum. A client sees these bytes accepted before it
 * stalls, though no process holds them: measured on loopback (32 MiB and 4 MiB maxima), a client that reads
 * nothing stalled after 7 to 8 MiB direct, 16 to 57 MiB through HAProxy and 16 to 26 MiB through nginx.
 */
export function balancerSocketBuffers(): number {
  const maximum = (file: string) => Number(readFileSync(`/proc/sys/net/ipv4/${file}`, "utf8").trim().split(/\s+/)[2]);
  return 2 * (maximum("tcp_rmem") + maximum("tcp_wmem"));
}

/** How long a balancer may live: a row of the full matrix, far more than one runs. */
const LIFETIME = 30 * 60_000;

/** Starts `server` as `options` say, behind a balancer of its own: the clients' endpoint is the balancer's, the rest is the server's. */
export async function startBehind(via: Via, server: ServerSpec, options: StartOptions): Promise<RunningServer> {
  // Our servers refuse --proxy-protocol with TLS (the header would come before the handshake): over
  // TLS the balancer passes the encrypted bytes through plain, and the client checks the server's certificate.
  const proxyProtocol = server.kind === "ours" && options.transport !== "tls";
  const args = [...(options.args ?? []), ...(proxyProtocol ? ["--proxy-protocol"] : [])];
  const running = await server.start({ ...options, args });
  return behind(via, running, proxyProtocol, options.setup);
}

async function behind(
  via: Via,
  running: RunningServer,
  proxyProtocol: boolean,
  setup: TransportSetup,
): Promise<RunningServer> {
  const { endpoint } = running;
  if (endpoint.transport === "unix" || endpoint.host !== "127.0.0.1") {
    throw new Error(`--via ${via} needs a server on 127.0.0.1, not ${JSON.stringify(endpoint)}`);
  }
  const backends = [{ name: "echo", port: endpoint.port }];
  // One backend: a health check could only turn it away, and its connection would take one of its --max-connections.
  const options = { proxyProtocol, healthCheck: false, lifetimeMs: LIFETIME };
  let balancer: Balancer;
  try {
    balancer = via === "haproxy" ? await startHaproxy(backends, 100, options) : await startNginx(backends, options);
  } catch (error) {
    await running.stop();
    throw error;
  }
  const front = { ...endpoint, port: balancer.port };
  const stop = async () => {
    await balancer.stop();
    await running.stop();
  };
  if (proxyProtocol)
    await settled(front, running.port, setup).catch(async (error) => {
      await stop();
      throw error;
    });
  return { ...running, endpoint: front, balancer: balancer.process, stop };
}

/**
 * Waits until a byte has been echoed through the balancer and the server holds no connection: the
 * balancer's start-up probe (a connection it forwards to the server and then closes) must not take the one
 * connection a case's `--max-connections-per-address 1` allows. While it holds that one, the server turns
 * the next away: try again. Our servers only: they echo, and their limits apply.
 */
async function settled(front: Endpoint, port: number, setup: TransportSetup): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await echoesOnce(front, setup))) {
    if (Date.now() > end) throw new Error(`no echo through the balancer in front of port ${port} within 10 s`);
    await sleep(50);
  }
  while (heldConnections(port) > 0 && Date.now() < end) await sleep(20);
}

/** One byte through `front`: true if it came back, false if the connection ended first or 1 s passed. */
async function echoesOnce(front: Endpoint, setup: TransportSetup): Promise<boolean> {
  const socket = await connectTo(front, setup.tls);
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 1000);
      const done = (echoed: boolean) => () => {
        clearTimeout(timer);
        resolve(echoed);
      };
      socket.once("data", done(true));
      socket.once("end", done(false));
      socket.once("error", done(false));
      socket.write("x");
    });
  } finally {
    socket.destroy();
  }
}
