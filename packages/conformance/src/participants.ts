/**
 * Who takes part: the servers (rows) and clients (columns) of the matrix.
 *
 * Ours are each runtime package's CLI (`serve --json`) and the client driver,
 * run by a runtime: `node`, `bun`, `deno`, and the Node package on Bun's and
 * Deno's Node compatibility (`node@bun`, `node@deno`). Peers are real programs
 * no one here wrote (socat, xinetd, netcat, ncat) and two small Python peers in
 * the tutorial's style. The negative control is a broken server.
 *
 * To add a runtime: a `RUNTIMES` entry (how to run a script), then a line in
 * `OURS` per package it runs, and the package's path in the driver's `PACKAGES`.
 */

import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type ManagedProcess, spawnManaged } from "./processes.ts";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const HOST = "127.0.0.1";
const HERE = fileURLToPath(new URL(".", import.meta.url));
const PEERS = fileURLToPath(new URL("../peers/", import.meta.url));
const BUN = join(ROOT, "node_modules/bun/bin/bun.exe");
const DENO = join(ROOT, "node_modules/deno/deno");
const DENO_CONFIG = join(ROOT, "packages/deno/deno.json");

// --- runtimes ---

interface ScriptRuntime {
  /** Why it cannot run here, or undefined. */
  missing(): string | undefined;
  /** argv that runs `script`; `readPackages` lets it import the packages at run time (the driver's dynamic import). */
  command(script: string, readPackages?: boolean): string[];
}

const RUNTIMES: Record<"node" | "bun" | "deno", ScriptRuntime> = {
  // tsx as an --import hook keeps one process (the tsx CLI would run node as a child).
  node: { missing: () => undefined, command: (script) => [process.execPath, "--import", "tsx", script] },
  // The real binary, not node_modules/.bin/bun: that shim runs it as a child a signal does not reach.
  bun: {
    missing: () => (existsSync(BUN) ? undefined : `${BUN} is missing: run pnpm install`),
    command: (script) => [BUN, script],
  },
  deno: {
    missing: () =>
      !existsSync(DENO)
        ? `${DENO} is missing: run pnpm install`
        : !existsSync(DENO_CONFIG)
          ? "packages/deno/deno.json is missing"
          : undefined,
    // Deno's own config, so it never rewrites the workspace's package.json.
    command: (script, readPackages) => [
      DENO,
      "run",
      "--allow-net",
      ...(readPackages ? [`--allow-read=${join(ROOT, "packages")}`] : []),
      "--config",
      DENO_CONFIG,
      script,
    ],
  },
};

// --- participants ---

export type Kind = "ours" | "peer" | "control" | "client-only" | "harness";

export interface RunningServer {
  readonly port: number;
  /** The server process (its group holds every process it forks); absent for in-process servers. */
  readonly process: ManagedProcess | undefined;
  /** Our servers' `--json` log, one object per line (the last `LOG_LINES`); empty for the others. */
  readonly log: readonly Record<string, unknown>[];
  stop(): Promise<void>;
}

/** How the hardening cases start a server of their own (our servers only). */
export interface StartOptions {
  /** Extra `serve` flags (`--max-connections 3`). */
  readonly args?: readonly string[];
  /** A command the server runs under (`prlimit --nofile=64:64`). */
  readonly prefix?: readonly string[];
}

export interface ServerSpec {
  readonly name: string;
  readonly kind: Kind;
  readonly description: string;
  /** Why it cannot run here ("not installed: apt-get install -y socat"), or undefined. */
  missing(): string | undefined;
  start(options?: StartOptions): Promise<RunningServer>;
}

export interface ClientSpec {
  readonly name: string;
  readonly kind: Kind;
  readonly description: string;
  missing(): string | undefined;
  /** Our clients: argv of the driver. */
  driver?(): string[];
  /** Peer clients: argv of a byte pipe (stdin to the server, its echo to stdout, half-close at EOF). */
  pipe?(port: number): string[];
  /** Peer clients that print the tutorial's line for a message argument instead of piping. */
  tutorial?(port: number, message: string): string[];
}

interface Ours {
  readonly name: string;
  readonly runtime: keyof typeof RUNTIMES;
  readonly pkg: "node" | "bun" | "deno";
}

const OURS: readonly Ours[] = [
  { name: "node", runtime: "node", pkg: "node" },
  { name: "bun", runtime: "bun", pkg: "bun" },
  { name: "deno", runtime: "deno", pkg: "deno" },
  { name: "node@bun", runtime: "bun", pkg: "node" },
  { name: "node@deno", runtime: "deno", pkg: "node" },
];

function packageMissing({ runtime, pkg }: Ours): string | undefined {
  for (const file of ["src/index.ts", "src/cli.ts"]) {
    if (!existsSync(join(ROOT, "packages", pkg, file)))
      return `not available: packages/${pkg}/${file} does not exist yet`;
  }
  const gap = RUNTIMES[runtime].missing();
  return gap ? `not available: ${gap}` : undefined;
}

const DRIVER = join(HERE, "driver.ts");

export const SERVERS: readonly ServerSpec[] = [
  ...OURS.map(
    (ours): ServerSpec => ({
      name: ours.name,
      kind: "ours",
      description: `packages/${ours.pkg} CLI (serve --json) on ${ours.runtime}`,
      missing: () => packageMissing(ours),
      start: (options) =>
        startListeningProcess(
          ours.name,
          [
            ...(options?.prefix ?? []),
            ...RUNTIMES[ours.runtime].command(join(ROOT, "packages", ours.pkg, "src/cli.ts")),
            "serve",
            "--host",
            HOST,
            "--port",
            "0",
            "--json",
            ...(options?.args ?? []),
          ],
          jsonPort,
        ),
    }),
  ),
  {
    name: "socat",
    kind: "peer",
    description: "socat -t 30 TCP-LISTEN:P,fork,reuseaddr EXEC:cat",
    missing: () => installed("socat", "socat"),
    async start() {
      const port = await freePort();
      // backlog: socat's default of 5 drops SYNs when 500 clients connect at once.
      const argv = ["socat", "-t", "30", `TCP-LISTEN:${port},bind=${HOST},fork,reuseaddr,backlog=1024`, "EXEC:cat"];
      return startProbedProcess("socat", argv, port);
    },
  },
  {
    name: "xinetd",
    kind: "peer",
    description: "xinetd's built-in echo service (INTERNAL), from a generated config",
    missing: () => installed("xinetd", "xinetd"),
    start: startXinetd,
  },
  {
    name: "python",
    kind: "peer",
    description: "peers/echo_server.py: the tutorial's server, corrected (thread per client, sendall)",
    missing: () => installed("python3", "python3"),
    start: () => startListeningProcess("python", [python(), "-u", join(PEERS, "echo_server.py"), HOST, "0"], textPort),
  },
  {
    name: "control",
    kind: "control",
    description: "negative control: no backpressure, and drops its pending echo at the client's half-close",
    missing: () => undefined,
    start: () =>
      startListeningProcess(
        "control",
        [...RUNTIMES.node.command(join(HERE, "control-server.ts")), "--host", HOST, "--port", "0"],
        jsonPort,
      ),
  },
  {
    name: "client-only",
    kind: "client-only",
    description: "no real server: a refused port and a harness server that resets every connection",
    missing: () => undefined,
    start: startResettingServer,
  },
];

export const CLIENTS: readonly ClientSpec[] = [
  ...OURS.map(
    (ours): ClientSpec => ({
      name: ours.name,
      kind: "ours",
      description: `the driver with packages/${ours.pkg} on ${ours.runtime}`,
      missing: () => packageMissing(ours),
      driver: () => [...RUNTIMES[ours.runtime].command(DRIVER, true), "--package", ours.pkg],
    }),
  ),
  {
    name: "nc",
    kind: "peer",
    description: "nc.openbsd -N (netcat-openbsd)",
    missing: () => installed("nc.openbsd", "netcat-openbsd"),
    // -N: shut down the socket's write side at stdin EOF (half-close), then read to EOF.
    pipe: (port) => ["nc.openbsd", "-N", HOST, String(port)],
  },
  {
    name: "ncat",
    kind: "peer",
    description: "ncat (nmap's netcat); half-closes at stdin EOF by default",
    missing: () => installed("ncat", "ncat"),
    pipe: (port) => ["ncat", HOST, String(port)],
  },
  {
    name: "socat",
    kind: "peer",
    description: "socat -t 30 - TCP:H:P",
    missing: () => installed("socat", "socat"),
    pipe: (port) => ["socat", "-t", "30", "-", `TCP:${HOST}:${port}`],
  },
  {
    name: "python",
    kind: "peer",
    description: "peers/echo_client.py: the tutorial's client, corrected (sendall, half-close, read to EOF)",
    missing: () => installed("python3", "python3"),
    pipe: (port) => [python(), join(PEERS, "echo_client.py"), HOST, String(port)],
    tutorial: (port, message) => [python(), join(PEERS, "echo_client.py"), HOST, String(port), message],
  },
];

/** The server-only column: a raw `node:net` client inside the runner. */
export const HARNESS: ClientSpec = {
  name: "harness",
  kind: "harness",
  description: "raw node:net client in the runner, for server-only cases",
  missing: () => undefined,
};

// --- starting servers ---

/** How long a server may take to start (Deno and tsx compile TypeScript on a cold cache). */
const START_TIMEOUT = 30_000;
/** A server outlives any matrix run by far less than this; it is a backstop, not a budget. */
const SERVER_LIFETIME = 30 * 60_000;
/** Log lines kept per server: a cell of 500 connections logs 1,000. */
const LOG_LINES = 4000;

function jsonPort(line: string): number | undefined {
  try {
    const event = JSON.parse(line) as { event?: string; port?: number };
    return event.event === "listening" ? event.port : undefined;
  } catch {
    return undefined;
  }
}

function textPort(line: string): number | undefined {
  const match = /^Server listening on .*:(\d+)$/.exec(line);
  return match ? Number(match[1]) : undefined;
}

/** Starts a server that prints its bound port, and reads the port from its first lines. */
async function startListeningProcess(
  label: string,
  argv: string[],
  portOf: (line: string) => number | undefined,
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
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label} did not report a port in ${START_TIMEOUT} ms`)),
      START_TIMEOUT,
    );
    lines.on("line", (line) => {
      const found = portOf(line);
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
  return { port, process: managed, log, stop: async () => void (await managed.kill()) };
}

/** Starts a server on a port we chose, and waits until it accepts connections. */
async function startProbedProcess(
  label: string,
  argv: string[],
  port: number,
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
  while (!(await accepts(port))) {
    if (managed.exit || Date.now() > deadline) {
      await stop();
      throw new Error(`${label} is not accepting on port ${port}: ${managed.stderrTail() || "no output"}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { port, process: managed, log: [], stop };
}

function startXinetd(): Promise<RunningServer> {
  return freePort().then((port) => {
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
        `  bind = ${HOST}`,
        `  port = ${port}`,
        ...(root ? ["  user = root"] : []),
        "  instances = UNLIMITED",
        "  per_source = UNLIMITED",
        "  cps = 100000 1",
        "  flags = REUSE",
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
    return startProbedProcess("xinetd", argv, port, () => rmSync(dir, { recursive: true, force: true }));
  });
}

/** For the client-only row: a server (in the runner) that resets each connection once it has read from it. */
async function startResettingServer(): Promise<RunningServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.once("data", () => socket.resetAndDestroy());
  });
  await new Promise<void>((resolve) => server.listen({ host: HOST, port: 0 }, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    process: undefined,
    log: [],
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// --- utils ---

/** A port that was free a moment ago: for peers that cannot bind port 0 and report it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ host: HOST, port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
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
