/**
 * Starting servers: a process that prints where it listens, a process on a
 * port we chose (probed until it accepts), xinetd from a generated config, and
 * the client-only row's in-process servers. Every process runs in its own group
 * under @tcp-echo/testkit's manager, so a server that forks is one unit to
 * measure and to kill. What each participant is lives in `participants.ts`.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type ManagedProcess, ROOT, spawnManaged } from "@tcp-echo/testkit";
import { accepts, dial, type Endpoint, freePort, hostOf, type Transport, type TransportSetup } from "./transports.ts";

export const HOST = "127.0.0.1";

export interface RunningServer {
  readonly endpoint: Endpoint;
  /** The TCP port, for /proc/net/tcp (0 on a Unix socket). */
  readonly port: number;
  /** The server process (its group holds every process it forks); absent for in-process servers. */
  readonly process: ManagedProcess | undefined;
  /** Our servers' `--json` log, one object per line (the last `LOG_LINES`); empty for the others. */
  readonly log: readonly Record<string, unknown>[];
  /** The client-only row's counting servers (see `startCountingServers`). */
  readonly counting?: CountingServers;
  /** With `--via`: the balancer in front, which `endpoint` reaches (`via.ts`). */
  readonly balancer?: ManagedProcess;
  stop(): Promise<void>;
}

/** Where a server listens: the row's transport and the run's set-up for it. */
export interface Net {
  readonly transport: Transport;
  readonly setup: TransportSetup;
}

/** How a row starts its server; the hardening cases add flags (our servers only). */
export interface StartOptions extends Net {
  /** Extra `serve` flags (`--max-connections 3`). */
  readonly args?: readonly string[];
  /** A command the server runs under (`prlimit --nofile=64:64`). */
  readonly prefix?: readonly string[];
}

// --- starting servers ---

/** How long a server may take to start (Deno and tsx compile TypeScript on a cold cache). */
const START_TIMEOUT = 30_000;
/** A server outlives any matrix run by far less than this; it is a backstop, not a budget. */
const SERVER_LIFETIME = 30 * 60_000;
/** Log lines kept per server: a cell of 500 connections logs 1,000. */
const LOG_LINES = 4000;

/** Reads where a server listens from one line of its output, if the line says. */
export type ListeningLine = (line: string) => Endpoint | undefined;

/** Our servers' (and the control's) `{"event":"listening",...}` line. */
export function jsonListening(transport: Transport): ListeningLine {
  return (line) => {
    try {
      const event = JSON.parse(line) as { event?: string; port?: number; path?: string };
      if (event.event !== "listening") return undefined;
      if (transport === "unix") return event.path ? { transport, path: event.path } : undefined;
      return event.port ? { transport, host: hostOf(transport), port: event.port } : undefined;
    } catch {
      return undefined;
    }
  };
}

/** The Python server's "Server listening on HOST:PORT". */
export function textPort(transport: "tcp4" | "tcp6" | "unix" | "tls"): ListeningLine {
  return (line) => {
    const match = /^Server listening on .*:(\d+)$/.exec(line);
    return match && transport !== "unix" ? { transport, host: hostOf(transport), port: Number(match[1]) } : undefined;
  };
}

export function tlsServerFlags({ transport, setup }: Net, certFlag: string, keyFlag: string): string[] {
  if (transport !== "tls") return [];
  if (!setup.tls) throw new Error("TLS is not available in this run");
  return [certFlag, setup.tls.cert, keyFlag, setup.tls.key];
}

/** Where a peer that cannot report its address will listen. */
export async function endpointFor(transport: Transport, setup: TransportSetup, label: string): Promise<Endpoint> {
  if (transport === "unix") return { transport, path: setup.unixPath(label) };
  const host = hostOf(transport);
  return { transport, host, port: await freePort(host) };
}

export function portOf(endpoint: Endpoint): number {
  return endpoint.transport === "unix" ? 0 : endpoint.port;
}

/** Starts a server that prints its bound port, and reads the port from its first lines. */
export async function startListeningProcess(
  label: string,
  argv: string[],
  listening: ListeningLine,
): Promise<RunningServer> {
  const [command, ...args] = argv as [string, ...string[]];
  const managed = spawnManaged(command, args, { label, cwd: ROOT, timeoutMs: SERVER_LIFETIME });
  // stdout is read to the end: a server blocked on a full log pipe would look like a hung server.
  const lines = createInterface({ input: managed.child.stdout! });
  const log: Record<string, unknown>[] = [];
  lines.on("line", (line) => {
    if (!line.startsWith("{")) return;
    try {
      log.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return;
    }
    if (log.length > LOG_LINES) log.splice(0, log.length - LOG_LINES);
  });
  const endpoint = await new Promise<Endpoint>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label} did not report where it listens in ${START_TIMEOUT} ms`)),
      START_TIMEOUT,
    );
    lines.on("line", (line) => {
      const found = listening(line);
      if (found !== undefined) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    void managed.exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${describeExit(exit)}) before listening: ${managed.stderrTail()}`));
    });
  }).catch(async (error) => {
    await managed.kill();
    throw error;
  });
  return {
    endpoint,
    port: portOf(endpoint),
    process: managed,
    log,
    stop: async () => void (await managed.kill()),
  };
}

/** Starts a server on a port we chose, and waits until it accepts connections. */
export async function startProbedProcess(
  label: string,
  argv: string[],
  endpoint: Endpoint,
  cleanup?: () => void,
): Promise<RunningServer> {
  const [command, ...args] = argv as [string, ...string[]];
  const managed = spawnManaged(command, args, { label, cwd: ROOT, timeoutMs: SERVER_LIFETIME });
  managed.child.stdout?.resume();
  const stop = async () => {
    await managed.kill();
    cleanup?.();
  };
  const deadline = Date.now() + START_TIMEOUT;
  while (!(await accepts(endpoint))) {
    if (managed.exit || Date.now() > deadline) {
      await stop();
      throw new Error(
        `${label} is not accepting on ${describeEndpoint(endpoint)}: ${managed.stderrTail() || "no output"}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { endpoint, port: portOf(endpoint), process: managed, log: [], stop };
}

/** How a user's server command says it is ready (`--server-cmd`). */
export interface CommandReadiness {
  /** A line of its output (stdout or stderr) that says so; without it, ready is the endpoint accepting a connection. */
  readonly readyLine?: RegExp;
  readonly startTimeoutMs: number;
}

/** Lines of a user's command's output that a failure to start shows. */
const OUTPUT_LINES = 5;

/**
 * Starts a user's server command (`--server-cmd`, run by `sh -c` in the
 * directory the matrix was started from) on an endpoint we chose, in its own
 * process group like every server, so the cases that read a process run on it.
 */
export async function startCommandServer(
  label: string,
  shellCommand: string,
  endpoint: Endpoint,
  { readyLine, startTimeoutMs }: CommandReadiness,
): Promise<RunningServer> {
  const managed = spawnManaged("sh", ["-c", shellCommand], {
    label,
    cwd: process.env.INIT_CWD ?? process.cwd(),
    timeoutMs: SERVER_LIFETIME,
  });
  const output: string[] = [];
  let saidReady = false;
  for (const stream of [managed.child.stdout, managed.child.stderr]) {
    if (!stream) continue;
    // Read to the end, as for every server: a full pipe would stall it.
    createInterface({ input: stream }).on("line", (line) => {
      output.push(line);
      if (output.length > OUTPUT_LINES) output.shift();
      if (readyLine?.test(line)) saidReady = true;
    });
  }
  const lastOutput = () => (output.length ? `its last output: ${output.join(" | ")}` : "it printed nothing");
  const deadline = Date.now() + startTimeoutMs;
  while (!(readyLine ? saidReady : await accepts(endpoint))) {
    if (managed.exit) {
      // The pipes may still hold its last words.
      await new Promise((resolve) => setTimeout(resolve, 50));
      throw new Error(`${label} exited (${describeExit(managed.exit)}) before it was ready; ${lastOutput()}`);
    }
    if (Date.now() > deadline) {
      await managed.kill();
      const waited = readyLine
        ? `no line of its output matched ${readyLine}`
        : `nothing accepted on ${describeEndpoint(endpoint)}`;
      throw new Error(`${label} was not ready within ${startTimeoutMs} ms (${waited}); ${lastOutput()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { endpoint, port: portOf(endpoint), process: managed, log: [], stop: async () => void (await managed.kill()) };
}

/** How long a server reached by URL may take to accept the first connection. */
const REACH_TIMEOUT = 5000;

/** A server already running (`--server-at`): there once it accepts a connection. No process: the matrix did not start it. */
export async function reachServer(url: string, endpoint: Endpoint): Promise<RunningServer> {
  const socket = dial(endpoint);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nothing answered at ${url} within ${REACH_TIMEOUT} ms`)),
        REACH_TIMEOUT,
      );
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(`${url} is not reachable: ${error.code ?? error.message}`));
      });
    });
  } finally {
    socket.destroy();
  }
  return { endpoint, port: portOf(endpoint), process: undefined, log: [], stop: async () => {} };
}

/**
 * xinetd's built-in echo on `host:port`, stream (TCP) or dgram (UDP): the config in a temp dir and the argv that
 * runs it. `echo` names the built-in service; UNLISTED lets it take any port. cps: the default (50 connections or
 * datagrams a second, then the service is off for 10 s) would refuse the many-connections case and answer 94 of
 * the UDP burst's 10,000. As root, xinetd needs a user to run the service as. -dontfork keeps it our child;
 * -filelog and -pidfile keep it off syslog and /var/run (it cannot open its log otherwise, and the run leaves no
 * trace). `cleanup` removes the temp dir.
 */
export function xinetdFiles(
  socketType: "stream" | "dgram",
  host: string,
  port: number,
): { argv: [string, ...string[]]; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `tcp-echo-xinetd-${socketType}-`));
  const config = join(dir, "xinetd.conf");
  const root = process.getuid?.() === 0;
  const stream = socketType === "stream";
  writeFileSync(
    config,
    [
      "service echo",
      "{",
      "  type = INTERNAL UNLISTED",
      `  id = echo-${socketType}`,
      `  socket_type = ${socketType}`,
      `  protocol = ${stream ? "tcp" : "udp"}`,
      `  wait = ${stream ? "no" : "yes"}`,
      `  bind = ${host}`,
      `  port = ${port}`,
      ...(root ? ["  user = root"] : []),
      ...(stream ? ["  instances = UNLIMITED", "  per_source = UNLIMITED"] : []),
      "  cps = 100000 1",
      ...(stream ? [`  flags = REUSE${host.includes(":") ? " IPv6" : ""}`] : []),
      "}",
      "",
    ].join("\n"),
  );
  return {
    argv: [
      "xinetd",
      "-dontfork",
      "-f",
      config,
      "-filelog",
      join(dir, "xinetd.log"),
      "-pidfile",
      join(dir, "xinetd.pid"),
    ],
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function startXinetd({ transport }: StartOptions): Promise<RunningServer> {
  const host = hostOf(transport);
  return freePort(host).then((port) => {
    const { argv, cleanup } = xinetdFiles("stream", host, port);
    const endpoint = { transport: transport === "tcp6" ? "tcp6" : "tcp4", host, port } as const;
    return startProbedProcess("xinetd", argv, endpoint, cleanup);
  });
}

/** For the client-only row: a server (in the runner) that resets each connection once it has read from it, and the counting servers. */
export async function startClientOnlyServers(): Promise<RunningServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.once("data", () => socket.resetAndDestroy());
  });
  await new Promise<void>((resolve) => server.listen({ host: HOST, port: 0 }, resolve));
  const { port } = server.address() as net.AddressInfo;
  const counting = await startCountingServers();
  return {
    endpoint: { transport: "tcp4", host: HOST, port },
    port,
    process: undefined,
    log: [],
    counting,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all([new Promise((resolve) => server.close(resolve)), counting.stop()]);
    },
  };
}

/** How a counted connection ended, as the server saw it. */
export interface CountedConnection {
  /** Bytes received from the client. */
  readonly bytes: number;
  /** `fin`: the client's FIN came after them; `reset`: an RST (or other error) instead; `open`: not ended within the wait. */
  readonly end: "fin" | "reset" | "open";
}

export interface CountingServers {
  /** An echo server that counts what each connection sent before it ended. */
  readonly port: number;
  /** A server that accepts and never reads: a client's queue can never flush. */
  readonly stalledPort: number;
  /** `GET ${reportUrl}/${clientPort}` answers a `CountedConnection` once that connection has ended (or after 5 s). */
  readonly reportUrl: string;
  stop(): Promise<void>;
}

/** How long a report waits for the connection it is asked about to end. */
const REPORT_WAIT_MS = 5000;

/**
 * The servers `graceful-close` needs: what a client's `close()` delivered can
 * only be seen from the server's side, so this one counts and the driver asks
 * over HTTP (fetch, which all three runtimes have), keyed by the client's port.
 */
async function startCountingServers(): Promise<CountingServers> {
  const sockets = new Set<net.Socket>();
  const ended = new Map<number, CountedConnection>();
  const waiters = new Map<number, () => void>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };
  const counter = net.createServer({ allowHalfOpen: true }, (socket) => {
    track(socket);
    const client = socket.remotePort ?? 0;
    let bytes = 0;
    let end: CountedConnection["end"] = "reset";
    // A plain echo server with backpressure: the client's close() may wait for its echo.
    socket.on("data", (chunk) => {
      bytes += chunk.byteLength;
      if (!socket.write(chunk)) socket.pause();
    });
    socket.on("drain", () => socket.resume());
    socket.on("end", () => {
      end = "fin";
      socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      ended.set(client, { bytes, end });
      waiters.get(client)?.();
    });
  });
  const stalled = net.createServer({ allowHalfOpen: true }, (socket) => {
    track(socket);
    socket.pause();
    socket.on("error", () => {});
  });
  const report = createServer((request, response) => {
    const client = Number((request.url ?? "").slice(1));
    const answer = () => {
      clearTimeout(timer);
      waiters.delete(client);
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify(ended.get(client) ?? { bytes: 0, end: "open" }));
    };
    const timer = setTimeout(answer, REPORT_WAIT_MS);
    if (ended.has(client)) answer();
    else waiters.set(client, answer);
  });
  const listening = (server: net.Server) =>
    new Promise<number>((resolve) =>
      server.listen({ host: HOST, port: 0 }, () => resolve((server.address() as net.AddressInfo).port)),
    );
  const [port, stalledPort, reportPort] = await Promise.all([
    listening(counter),
    listening(stalled),
    listening(report),
  ]);
  return {
    port,
    stalledPort,
    reportUrl: `http://${HOST}:${reportPort}`,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      report.closeAllConnections();
      await Promise.all([counter, stalled, report].map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
}

// --- utils ---

export function describeEndpoint(endpoint: Endpoint): string {
  if (endpoint.transport === "unix") return `unix:${endpoint.path}`;
  return endpoint.transport === "tcp6" ? `[::1]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

export function describeExit(exit: { code: number | null; signal: string | null; timedOut: boolean }): string {
  if (exit.timedOut) return "killed at its deadline";
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}
