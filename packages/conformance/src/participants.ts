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
 *
 * How a server is started (processes, readiness, the client-only row's servers) is in `launchers.ts`.
 */

import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  cliOf,
  command,
  pinned,
  ROOT,
  type Runtime,
  type RuntimeName,
  runnable,
  runnerRuntime,
  missing as runtimeMissing,
} from "@tcp-echo/testkit";
import {
  endpointFor,
  HOST,
  jsonListening,
  type Net,
  type RunningServer,
  type StartOptions,
  startClientOnlyServers,
  startListeningProcess,
  startProbedProcess,
  startXinetd,
  textPort,
  tlsServerFlags,
} from "./launchers.ts";
import { type Endpoint, hostOf, type TlsFiles, TRANSPORTS, type Transport, type TransportSetup } from "./transports.ts";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const PEERS = fileURLToPath(new URL("../peers/", import.meta.url));

// --- participants ---

/** `external`: a server or client from outside (`--server-at`, `--server-cmd`, `--client-cmd`, `--config`). */
export type Kind = "ours" | "peer" | "external" | "control" | "client-only" | "harness";

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
  /** Why its process cannot be read (a server reached by URL), if so: the cases that need it run their client-observable form, or are n/a. */
  readonly noProcess?: string;
  /** The trust its clients use over TLS when it is not the run's own (a server reached by a `tls://` URL). */
  readonly tls?: Pick<TlsFiles, "ca" | "caPem" | "serverName">;
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
    if (!existsSync(runnable(join(ROOT, "packages", pkg, file))))
      return `not available: packages/${pkg}/${file} does not exist yet`;
  }
  const gap = runtimeMissing(runtime);
  return gap ? `not available: ${gap}` : undefined;
}

/** The control and the client-only row run on the runtime that runs the matrix (the pinned Node in a checkout). */
const onRunner = { runtime: runnerRuntime().runtime, installedVersion: () => runnerRuntime().version };

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
    ...onRunner,
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
      const access = { read: [setup.dir], write: [setup.dir] };
      return startListeningProcess(
        "control",
        [...command(runnerRuntime(), join(HERE, "control-server.ts"), access), ...where],
        jsonListening(transport),
      );
    },
  },
  {
    name: "client-only",
    ...onRunner,
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
              setup.tls?.serverName ?? "",
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
            ? `OPENSSL:${endpoint.host}:${endpoint.port},cafile=${setup.tls?.ca},commonname=${setup.tls?.serverName}`
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

function tcpArgs(endpoint: Endpoint): string[] {
  if (endpoint.transport === "unix") throw new Error("a TCP-only client was given a Unix socket");
  return [endpoint.host, String(endpoint.port)];
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
