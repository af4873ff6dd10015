/**
 * Who takes part: the servers (rows) and clients (columns) of the matrix.
 *
 * Ours are each runtime package's CLI (`serve --json`) and the client driver,
 * run by a runtime: `node`, `bun`, `deno`, and the Node package on Bun's and
 * Deno's Node compatibility (`node@bun`, `node@deno`). Peers are real programs
 * no one here wrote (socat, xinetd, netcat, ncat) and two small Python peers in
 * the tutorial's style. The negative control is a broken server.
 *
 * With `--runtimes`, each listed version is a participant of its own: the
 * package on its own runtime is named `PACKAGE@VERSION` (`node@22.23.5`,
 * `bun@1.3.14`), the Node package on another runtime `node@RUNTIME-VERSION`
 * (`node@bun-1.3.14`), so a name still reads "package @ what runs it".
 *
 * To add a runtime: its row in @tcp-echo/testkit's runtime table (how to run a
 * script), then a line in `PINNED` and `oursOn` per package it runs, and the package's path in
 * the driver's `PACKAGES`.
 */

import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import {
  cliOf,
  command,
  type ManagedProcess,
  pinned,
  ROOT,
  type Runtime,
  type RuntimeName,
  missing as runtimeMissing,
  spawnManaged,
} from "@tcp-echo/testkit";
import {
  accepts,
  type Endpoint,
  freePort,
  hostOf,
  TLS_SERVER_NAME,
  TRANSPORTS,
  type Transport,
  type TransportSetup,
} from "./transports.ts";

export const HOST = "127.0.0.1";
const HERE = fileURLToPath(new URL(".", import.meta.url));
const PEERS = fileURLToPath(new URL("../peers/", import.meta.url));
// --- participants ---

export type Kind = "ours" | "peer" | "control" | "client-only" | "harness";

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

export interface ServerSpec {
  readonly name: string;
  /** The name without a version (`node@bun` for `node@bun-1.4.5`): what `--server` and known gaps name. */
  readonly family?: string;
  /** What runs it and its exact version (ours: the runtime; peers: the program). */
  readonly runtime?: string;
  installedVersion?(): string | undefined;
  readonly kind: Kind;
  readonly description: string;
  /** Why it cannot run here ("not installed: apt-get install -y socat"), or undefined. */
  missing(): string | undefined;
  /** The transports it listens on. */
  readonly transports: readonly Transport[];
  start(options: StartOptions): Promise<RunningServer>;
}

export interface ClientSpec {
  readonly name: string;
  readonly family?: string;
  readonly runtime?: string;
  installedVersion?(): string | undefined;
  readonly kind: Kind;
  readonly description: string;
  missing(): string | undefined;
  /** The transports it connects over. */
  readonly transports: readonly Transport[];
  /** Our clients: argv of the driver. */
  driver?(net: Net): string[];
  /** Our clients: argv of the package's CLI, before the command (`send ...`). */
  cli?(): string[];
  /** Peer clients: argv of a byte pipe (stdin to the server, its echo to stdout, half-close at EOF). */
  pipe?(endpoint: Endpoint, setup: TransportSetup): string[];
  /** Peer clients that print the tutorial's line for a message argument instead of piping. */
  tutorial?(endpoint: Endpoint, message: string): string[];
}

interface Ours {
  readonly name: string;
  readonly family: string;
  readonly runtime: Runtime;
  readonly pkg: RuntimeName;
}

/** Ours on the pinned runtimes, named as in the README's table. */
const PINNED: readonly Ours[] = [
  { name: "node", family: "node", runtime: pinned("node"), pkg: "node" },
  { name: "bun", family: "bun", runtime: pinned("bun"), pkg: "bun" },
  { name: "deno", family: "deno", runtime: pinned("deno"), pkg: "deno" },
  { name: "node@bun", family: "node@bun", runtime: pinned("bun"), pkg: "node" },
  { name: "node@deno", family: "node@deno", runtime: pinned("deno"), pkg: "node" },
];

/** Ours on `runtimes` (each a version; a runtime not listed stays pinned), every name with its version. */
function oursOn(runtimes: readonly Runtime[]): Ours[] {
  const all = (["node", "bun", "deno"] as const).flatMap((name) => {
    const listed = runtimes.filter((runtime) => runtime.runtime === name);
    return listed.length ? listed : [pinned(name)];
  });
  return [
    ...all.map((runtime) => ({
      name: `${runtime.runtime}@${runtime.version}`,
      family: runtime.runtime,
      runtime,
      pkg: runtime.runtime,
    })),
    ...all
      .filter((runtime) => runtime.runtime !== "node")
      .map((runtime) => ({
        name: `node@${runtime.runtime}-${runtime.version}`,
        family: `node@${runtime.runtime}`,
        runtime,
        pkg: "node" as const,
      })),
  ];
}

function packageMissing({ runtime, pkg }: Ours): string | undefined {
  for (const file of ["src/index.ts", "src/cli.ts"]) {
    if (!existsSync(join(ROOT, "packages", pkg, file)))
      return `not available: packages/${pkg}/${file} does not exist yet`;
  }
  const gap = runtimeMissing(runtime);
  return gap ? `not available: ${gap}` : undefined;
}

/** The control and the client-only row run on the pinned Node, like the runner. */
const pinnedNode = { runtime: "node", installedVersion: () => pinned("node").version };

const pythonVersion = {
  runtime: "python",
  installedVersion: () =>
    execFileSync(python(), ["-c", "import platform; print(platform.python_version())"], { encoding: "utf8" }).trim(),
};

const DRIVER = join(HERE, "driver.ts");

/** The rows and columns: ours on `runtimes` (`--runtimes`), or on the pinned versions. */
export function participants(runtimes?: readonly Runtime[]): { servers: ServerSpec[]; clients: ClientSpec[] } {
  const ours = runtimes ? oursOn(runtimes) : PINNED;
  return { servers: [...ours.map(ourServer), ...PEER_SERVERS], clients: [...ours.map(ourClient), ...PEER_CLIENTS] };
}

const ourIdentity = (ours: Ours) => ({
  name: ours.name,
  family: ours.family,
  runtime: ours.runtime.runtime,
  installedVersion: () => ours.runtime.version,
});

const ourServer = (ours: Ours): ServerSpec => ({
  ...ourIdentity(ours),
  kind: "ours",
  description: `packages/${ours.pkg} CLI (serve --json) on ${ours.runtime.runtime} ${ours.runtime.version}`,
  missing: () => packageMissing(ours),
  transports: TRANSPORTS,
  start: (options) => {
    const { transport, setup } = options;
    const unix = transport === "unix" ? setup.unixPath(ours.name) : undefined;
    const where = unix
      ? ["--unix", unix]
      : ["--host", hostOf(transport), "--port", "0", ...tlsServerFlags(options, "--tls-cert", "--tls-key")];
    const access = { read: [setup.dir], write: [setup.dir] };
    return startListeningProcess(
      ours.name,
      [
        ...(options.prefix ?? []),
        ...command(ours.runtime, cliOf(ours.pkg), access),
        "serve",
        ...where,
        "--json",
        ...(options.args ?? []),
      ],
      jsonListening(transport),
    );
  },
});

const PEER_SERVERS: readonly ServerSpec[] = [
  {
    name: "socat",
    ...peerVersion("socat"),
    kind: "peer",
    description: "socat -t 30 TCP-LISTEN:P,fork,reuseaddr EXEC:cat (TCP6-LISTEN, UNIX-LISTEN, OPENSSL-LISTEN)",
    missing: () => installed("socat", "socat"),
    transports: TRANSPORTS,
    async start({ transport, setup }) {
      const endpoint = await endpointFor(transport, setup, "socat");
      // backlog: socat's default of 5 drops SYNs when 500 clients connect at once.
      const common = "fork,reuseaddr,backlog=1024";
      const listen =
        endpoint.transport === "unix"
          ? `UNIX-LISTEN:${endpoint.path},fork,backlog=1024`
          : endpoint.transport === "tcp6"
            ? `TCP6-LISTEN:${endpoint.port},bind=[::1],${common}`
            : endpoint.transport === "tls"
              ? `OPENSSL-LISTEN:${endpoint.port},bind=${HOST},${common},cert=${setup.tls?.cert},key=${setup.tls?.key},verify=0`
              : `TCP-LISTEN:${endpoint.port},bind=${HOST},${common}`;
      return startProbedProcess("socat", ["socat", "-t", "30", listen, "EXEC:cat"], endpoint);
    },
  },
  {
    name: "xinetd",
    ...peerVersion("xinetd"),
    kind: "peer",
    description: "xinetd's built-in echo service (INTERNAL), from a generated config",
    missing: () => installed("xinetd", "xinetd"),
    transports: ["tcp4", "tcp6"],
    start: startXinetd,
  },
  {
    name: "python",
    ...pythonVersion,
    kind: "peer",
    description: "peers/echo_server.py: the tutorial's server, corrected (thread per client, sendall)",
    missing: () => installed("python3", "python3"),
    transports: ["tcp4", "tcp6"],
    start: ({ transport }) =>
      startListeningProcess(
        "python",
        [python(), "-u", join(PEERS, "echo_server.py"), hostOf(transport), "0"],
        textPort(transport),
      ),
  },
  {
    name: "control",
    ...pinnedNode,
    kind: "control",
    description: "negative control: no backpressure, and drops its pending echo at the client's half-close",
    missing: () => undefined,
    transports: TRANSPORTS,
    start: (options) => {
      const { transport, setup } = options;
      const where =
        transport === "unix"
          ? ["--unix", setup.unixPath("control")]
          : ["--host", hostOf(transport), "--port", "0", ...tlsServerFlags(options, "--tls-cert", "--tls-key")];
      return startListeningProcess(
        "control",
        [...command(pinned("node"), join(HERE, "control-server.ts")), ...where],
        jsonListening(transport),
      );
    },
  },
  {
    name: "client-only",
    ...pinnedNode,
    kind: "client-only",
    description:
      "no real server: a refused port, a harness server that resets every connection (errors), harness servers that count what a client sent (graceful-close), and servers that stall (client-timeouts)",
    missing: () => undefined,
    transports: ["tcp4"],
    start: startClientOnlyServers,
  },
];

const ourClient = (ours: Ours): ClientSpec => ({
  ...ourIdentity(ours),
  kind: "ours",
  description: `the driver with packages/${ours.pkg} on ${ours.runtime.runtime} ${ours.runtime.version}`,
  missing: () => packageMissing(ours),
  transports: TRANSPORTS,
  driver: ({ setup }) => [
    ...command(ours.runtime, DRIVER, { read: [join(ROOT, "packages"), setup.dir], write: [setup.dir] }),
    "--package",
    ours.pkg,
  ],
  cli: () => command(ours.runtime, cliOf(ours.pkg)),
});

const PEER_CLIENTS: readonly ClientSpec[] = [
  {
    name: "nc",
    ...peerVersion("nc.openbsd", "netcat-openbsd"),
    kind: "peer",
    description: "nc.openbsd -N (netcat-openbsd)",
    missing: () => installed("nc.openbsd", "netcat-openbsd"),
    // Debian's netcat-openbsd has no TLS.
    transports: ["tcp4", "tcp6", "unix"],
    // -N: shut down the socket's write side at stdin EOF (half-close), then read to EOF.
    pipe: (endpoint) =>
      endpoint.transport === "unix"
        ? ["nc.openbsd", "-N", "-U", endpoint.path]
        : ["nc.openbsd", "-N", endpoint.host, String(endpoint.port)],
  },
  {
    name: "ncat",
    ...peerVersion("ncat"),
    kind: "peer",
    description: "ncat (nmap's netcat); half-closes at stdin EOF by default",
    missing: () => installed("ncat", "ncat"),
    transports: TRANSPORTS,
    pipe: (endpoint, setup) =>
      endpoint.transport === "unix"
        ? ["ncat", "-U", endpoint.path]
        : endpoint.transport === "tls"
          ? [
              "ncat",
              "--ssl",
              "--ssl-verify",
              "--ssl-trustfile",
              setup.tls?.ca ?? "",
              "--ssl-servername",
              TLS_SERVER_NAME,
              endpoint.host,
              String(endpoint.port),
            ]
          : ["ncat", endpoint.host, String(endpoint.port)],
  },
  {
    name: "socat",
    ...peerVersion("socat"),
    kind: "peer",
    description: "socat -t 30 - TCP:H:P",
    missing: () => installed("socat", "socat"),
    transports: TRANSPORTS,
    pipe: (endpoint, setup) => [
      "socat",
      "-t",
      "30",
      "-",
      endpoint.transport === "unix"
        ? `UNIX-CONNECT:${endpoint.path}`
        : endpoint.transport === "tcp6"
          ? `TCP6:[::1]:${endpoint.port}`
          : endpoint.transport === "tls"
            ? `OPENSSL:${endpoint.host}:${endpoint.port},cafile=${setup.tls?.ca},commonname=${TLS_SERVER_NAME}`
            : `TCP:${endpoint.host}:${endpoint.port}`,
    ],
  },
  {
    name: "python",
    ...pythonVersion,
    kind: "peer",
    description: "peers/echo_client.py: the tutorial's client, corrected (sendall, half-close, read to EOF)",
    missing: () => installed("python3", "python3"),
    transports: ["tcp4", "tcp6"],
    pipe: (endpoint) => [python(), join(PEERS, "echo_client.py"), ...tcpArgs(endpoint)],
    tutorial: (endpoint, message) => [python(), join(PEERS, "echo_client.py"), ...tcpArgs(endpoint), message],
  },
];

/** Ours on the pinned runtimes, and the peers: the default matrix. */
export const { servers: SERVERS, clients: CLIENTS } = participants();

/** The server-only column: a raw `node:net` client inside the runner. */
export const HARNESS: ClientSpec = {
  name: "harness",
  runtime: "node",
  installedVersion: () => process.versions.node,
  kind: "harness",
  description: "raw node:net (node:tls) client in the runner, for server-only cases",
  missing: () => undefined,
  transports: TRANSPORTS,
};

// --- starting servers ---

/** How long a server may take to start (Deno and tsx compile TypeScript on a cold cache). */
const START_TIMEOUT = 30_000;
/** A server outlives any matrix run by far less than this; it is a backstop, not a budget. */
const SERVER_LIFETIME = 30 * 60_000;
/** Log lines kept per server: a cell of 500 connections logs 1,000. */
const LOG_LINES = 4000;

/** Reads where a server listens from one line of its output, if the line says. */
type ListeningLine = (line: string) => Endpoint | undefined;

/** Our servers' (and the control's) `{"event":"listening",...}` line. */
function jsonListening(transport: Transport): ListeningLine {
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
function textPort(transport: "tcp4" | "tcp6" | "unix" | "tls"): ListeningLine {
  return (line) => {
    const match = /^Server listening on .*:(\d+)$/.exec(line);
    return match && transport !== "unix" ? { transport, host: hostOf(transport), port: Number(match[1]) } : undefined;
  };
}

function tlsServerFlags({ transport, setup }: Net, certFlag: string, keyFlag: string): string[] {
  if (transport !== "tls") return [];
  if (!setup.tls) throw new Error("TLS is not available in this run");
  return [certFlag, setup.tls.cert, keyFlag, setup.tls.key];
}

/** Where a peer that cannot report its address will listen. */
async function endpointFor(transport: Transport, setup: TransportSetup, label: string): Promise<Endpoint> {
  if (transport === "unix") return { transport, path: setup.unixPath(label) };
  const host = hostOf(transport);
  return { transport, host, port: await freePort(host) };
}

function tcpArgs(endpoint: Endpoint): string[] {
  if (endpoint.transport === "unix") throw new Error("a TCP-only client was given a Unix socket");
  return [endpoint.host, String(endpoint.port)];
}

export function portOf(endpoint: Endpoint): number {
  return endpoint.transport === "unix" ? 0 : endpoint.port;
}

/** Starts a server that prints its bound port, and reads the port from its first lines. */
async function startListeningProcess(label: string, argv: string[], listening: ListeningLine): Promise<RunningServer> {
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
async function startProbedProcess(
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

function startXinetd({ transport }: StartOptions): Promise<RunningServer> {
  const host = hostOf(transport);
  return freePort(host).then((port) => {
    const dir = mkdtempSync(join(tmpdir(), "tcp-echo-xinetd-"));
    const config = join(dir, "xinetd.conf");
    // `echo` names the built-in service; UNLISTED lets it take any port. cps: the
    // default (50 connections/s, then 10 s disabled) would refuse the
    // many-connections case. As root, xinetd needs a user to run the service as.
    const root = process.getuid?.() === 0;
    writeFileSync(
      config,
      [
        "service echo",
        "{",
        "  type = INTERNAL UNLISTED",
        "  id = echo-stream",
        "  socket_type = stream",
        "  protocol = tcp",
        "  wait = no",
        `  bind = ${host}`,
        `  port = ${port}`,
        ...(root ? ["  user = root"] : []),
        "  instances = UNLIMITED",
        "  per_source = UNLIMITED",
        "  cps = 100000 1",
        `  flags = REUSE${transport === "tcp6" ? " IPv6" : ""}`,
        "}",
        "",
      ].join("\n"),
    );
    // -dontfork keeps it our child; -filelog and -pidfile keep it off syslog and
    // /var/run (it cannot open its log otherwise, and the run leaves no trace).
    const argv = [
      "xinetd",
      "-dontfork",
      "-f",
      config,
      "-filelog",
      join(dir, "xinetd.log"),
      "-pidfile",
      join(dir, "xinetd.pid"),
    ];
    const endpoint = { transport: transport === "tcp6" ? "tcp6" : "tcp4", host, port } as const;
    return startProbedProcess("xinetd", argv, endpoint, () => rmSync(dir, { recursive: true, force: true }));
  });
}

/** For the client-only row: a server (in the runner) that resets each connection once it has read from it, and the counting servers. */
async function startClientOnlyServers(): Promise<RunningServer> {
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

/** A peer in `--json`: the program and its installed version (its Debian package's), read once. */
function peerVersion(
  program: string,
  debianPackage = program,
): { runtime: string; installedVersion: () => string | undefined } {
  let version: string | undefined | null = null;
  return {
    runtime: program,
    installedVersion: () => {
      if (version === null) {
        try {
          // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format, not a template.
          version = execFileSync("dpkg-query", ["-W", "-f", "${Version}", debianPackage], { encoding: "utf8" });
        } catch {
          version = undefined;
        }
      }
      return version;
    },
  };
}

export function describeEndpoint(endpoint: Endpoint): string {
  if (endpoint.transport === "unix") return `unix:${endpoint.path}`;
  return endpoint.transport === "tcp6" ? `[::1]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

let pythonPath: string | undefined;

/**
 * The real interpreter: `python3` on PATH may be a version manager's shell shim
 * (pyenv's takes about a second per start) that also forks the interpreter as a child.
 */
function python(): string {
  pythonPath ??= execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
  return pythonPath;
}

function installed(program: string, debianPackage: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return undefined;
    } catch {
      // Not in this directory.
    }
  }
  return `not installed: apt-get install -y ${debianPackage}`;
}

export function describeExit(exit: { code: number | null; signal: string | null; timedOut: boolean }): string {
  if (exit.timedOut) return "killed at its deadline";
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}
