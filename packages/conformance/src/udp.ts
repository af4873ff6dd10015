/**
 * `pnpm matrix --transport udp`: RFC 862's datagram echo, a grid of its own
 * servers, clients and cases, reported as the stream transports' grids are (a
 * `MatrixResult` whose cells are over `udp`). Rows are servers (ours on each
 * runtime, and peers nobody here wrote: socat, xinetd's built-in echo, a Python
 * SOCK_DGRAM server), columns are clients (ours, `nc -u`, and the Python probe
 * `harness` for what only an outside client can check). Every cell starts its
 * own server, so one cell's flood never spends the next cell's rate limit.
 * xinetd truncates datagrams at 2,048 B: it is the UDP negative control, which
 * every column must catch (its sizes case), as the TCP control is caught; socat's
 * failures are known gaps (`KNOWN_GAPS` in plan.ts, over `udp`).
 *
 *   pnpm matrix --transport udp [--server NAME]... [--client NAME]... [--case NAME]... [--markdown] [--json FILE|-] [--html FILE] [--junit FILE]
 */

import { join } from "node:path";
import { connect } from "@tcp-echo/node";
import {
  freeUdpPort,
  type ManagedProcess,
  ROOT,
  RUNTIME_NAMES,
  type RuntimeName,
  runManaged,
  spawnWithLines,
  UDP_PROBE,
  udpCli,
} from "@tcp-echo/testkit";
import { xinetdFiles } from "./launchers.ts";
import { finish } from "./matrix.ts";
import { type Kind, CLIENTS as TCP_CLIENTS, SERVERS as TCP_SERVERS } from "./participants.ts";
import { gapBroken, knownGap } from "./plan.ts";
import { type CaseResult, type CellResult, type MatrixResult, type Participant, runPassed } from "./planning.ts";

const HOST = "127.0.0.1";
const PYTHON_SERVER = join(ROOT, "packages/conformance/peers/udp_echo_server.py");
/** The sizes case: one byte, a full Ethernet frame's payload, a large one, the IPv4 maximum (0 bytes is `empty`). */
const SIZES = [1, 1472, 8192, 65_507];
/** Datagrams of the burst case, from one source. */
const BURST = 10_000;

/** `empty` is last in every cell: an empty datagram wedges socat's forking echo for everyone after it. */
export const UDP_CASES = ["tutorial", "sizes", "ping", "burst", "source-port", "rate-limit", "empty"] as const;
type CaseName = (typeof UDP_CASES)[number];

/** What each case proves, for the reports (`MatrixResult.cases`). */
const PROVES: Record<CaseName, string> = {
  tutorial: '"Hello, server!" comes back in one datagram',
  sizes: "datagrams of 1, 1,472, 8,192 and 65,507 B come back whole and byte-exact",
  ping: "ping --udp: at least 4 of 5 probes answered, and its exit code says whether all were",
  burst: "after 10,000 datagrams from one source, another source still gets 5 of 5 answers",
  "source-port": "a datagram from source port 1023 gets no answer and is counted in dropped.sourcePort",
  "rate-limit":
    "a flood from one source is answered at most at the limit (1,000 + 1,000 a second) while another source is answered",
  empty: "a 0-byte datagram is answered with a 0-byte datagram",
};

/** A case's outcome in one cell: what was verified, or why it failed. */
interface Outcome {
  readonly checks: readonly string[];
  readonly failure?: string;
  readonly ms: number;
}

interface Started {
  readonly port: number;
  /** Stops the server; ours report their counters (the `closed` line of `serve --udp --json`). */
  stop(): Promise<Record<string, unknown> | undefined>;
}

interface UdpServer {
  readonly name: string;
  /** `control`: the negative control, whose every cell must fail a case by its own check. */
  readonly kind: Extract<Kind, "ours" | "peer" | "control">;
  readonly description: string;
  /** The TCP grid's participant of the same program: what runs it, its version, whether it is installed. */
  readonly sameProgramAs: string;
  start(): Promise<Started>;
}

interface UdpClient {
  readonly name: string;
  readonly kind: Extract<Kind, "ours" | "peer" | "harness">;
  readonly description: string;
  readonly sameProgramAs: string;
  /** The cases it plays against a server. */
  cases(server: UdpServer): readonly CaseName[];
  /** Each case's outcome; throws when something kept it from checking the server at all. */
  run(server: Started, cases: readonly CaseName[]): Promise<Map<CaseName, Outcome>>;
}

// --- servers ---

function ourServer(runtime: RuntimeName): UdpServer {
  return {
    name: runtime,
    kind: "ours",
    description: `packages/${runtime} CLI (serve --udp --port 0 --json)`,
    sameProgramAs: runtime,
    async start() {
      const [binary, ...prefix] = udpCli(runtime);
      const server = spawnWithLines(binary, [...prefix, "serve", "--udp", "--port", "0", "--json"], {
        label: `${runtime} serve --udp`,
        timeoutMs: 120_000,
      });
      const listening = JSON.parse(await server.line((line) => line.includes('"listening"'), 30_000));
      return {
        port: listening.port,
        stop: once(async () => {
          server.child.kill("SIGINT");
          const closed = await server
            .line((line) => line.includes('"closed"'), 10_000)
            .then((line) => JSON.parse(line) as Record<string, unknown>)
            .catch(() => undefined);
          await server.kill();
          return closed;
        }),
      };
    },
  };
}

/** A peer prints nothing when ready: it is once it echoes (asked with our Node client, retried). */
async function peer(argv: [string, ...string[]], port: number, cleanup = () => {}): Promise<Started> {
  const [program, ...args] = argv;
  const managed: ManagedProcess = spawnWithLines(program, args, { label: program, timeoutMs: 120_000 });
  const client = await connect({ transport: "udp", hostname: HOST, port });
  try {
    await client.echo("ready?", { timeout: 200, retries: 25 });
  } catch (error) {
    await managed.kill();
    cleanup();
    throw new Error(
      `${program} did not answer on ${HOST}:${port}: ${(error as Error).message}; ${managed.stderrTail()}`,
    );
  } finally {
    await client.close();
  }
  return {
    port,
    stop: once(async () => {
      await managed.kill();
      cleanup();
      return undefined;
    }),
  };
}

/** `fn` run on the first call; every call gets its promise (the harness stops a server early to read its counters). */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => {
    running ??= fn();
    return running;
  };
}

const SERVERS: readonly UdpServer[] = [
  ...RUNTIME_NAMES.map(ourServer),
  {
    name: "socat",
    kind: "peer",
    description: "socat -b 65536 UDP4-RECVFROM:P,fork EXEC:cat (its burst and empty cases are known gaps)",
    sameProgramAs: "socat",
    // -b: socat's 8,192-byte default buffer would cut a larger datagram in pieces.
    start: async () => {
      const port = await freeUdpPort();
      return peer(["socat", "-b", "65536", `UDP4-RECVFROM:${port},bind=${HOST},fork`, "EXEC:cat"], port);
    },
  },
  {
    name: "xinetd",
    kind: "control",
    description:
      "negative control: xinetd's built-in echo with socket_type = dgram, which truncates datagrams at 2,048 B (sizes must fail)",
    sameProgramAs: "xinetd",
    async start() {
      const port = await freeUdpPort();
      const { argv, cleanup } = xinetdFiles("dgram", HOST, port);
      return peer(argv, port, cleanup);
    },
  },
  {
    name: "python",
    kind: "peer",
    description: "peers/udp_echo_server.py: Python's socket.SOCK_DGRAM, recvfrom and sendto",
    sameProgramAs: "python",
    async start() {
      const managed = spawnWithLines("python3", [PYTHON_SERVER, HOST, "0"], {
        label: "python udp",
        timeoutMs: 120_000,
      });
      const line = await managed.line((text) => text.startsWith("Server listening on"), 10_000);
      return {
        port: Number(line.slice(line.lastIndexOf(":") + 1)),
        stop: once(async () => {
          await managed.kill();
          return undefined;
        }),
      };
    },
  },
];

// --- clients ---

/** Random printable text: a payload that goes through argv (no NUL) and back out byte for byte. */
function text(size: number, seed: number): string {
  let out = "";
  for (let i = 0; i < size; i++) out += String.fromCharCode(33 + ((seed * 7919 + i * 31) % 94));
  return out;
}

function ourClient(runtime: RuntimeName): UdpClient {
  const run = async (args: string[]) => {
    const [binary, ...prefix] = udpCli(runtime);
    const result = await runManaged(binary, [...prefix, ...args], { timeoutMs: 30_000 });
    return { code: result.code, stdout: result.stdout.toString(), stderr: result.stderr };
  };
  /** Why `send --udp` of `message` did not print it back, if it did not. */
  const send = async (port: number, message: string) => {
    const result = await run(["send", "--udp", "--port", String(port), "--timeout", "500", message]);
    if (result.code === 0 && result.stdout === `Received response from server: ${message}\n`) return undefined;
    return `send --udp of ${message.length} bytes: exit ${result.code}, ${result.stderr.trim() || `stdout ${result.stdout.length} bytes`}`;
  };
  return {
    name: runtime,
    kind: "ours",
    description: `packages/${runtime} CLI (send --udp, ping --udp)`,
    sameProgramAs: runtime,
    cases: () => ["tutorial", "sizes", "ping", "empty"],
    async run(server, cases) {
      const results = new Map<CaseName, Outcome>();
      const timed = async (name: CaseName, check: () => Promise<Omit<Outcome, "ms">>) => {
        const started = performance.now();
        const outcome = await check();
        results.set(name, { ...outcome, ms: Math.round(performance.now() - started) });
      };
      const sent = async (message: string) => {
        const failure = await send(server.port, message);
        return failure ? { checks: [], failure } : { checks: [`send --udp: ${message.length} B came back byte-exact`] };
      };
      if (cases.includes("tutorial")) await timed("tutorial", () => sent("Hello, server!"));
      if (cases.includes("sizes")) {
        await timed("sizes", async () => {
          const checks: string[] = [];
          for (const size of SIZES) {
            const failure = await send(server.port, text(size, size));
            if (failure) return { checks, failure };
            checks.push(`send --udp: ${size} B came back byte-exact`);
          }
          return { checks };
        });
      }
      if (cases.includes("ping")) {
        await timed("ping", async () => {
          const args = ["ping", "--udp", "--port", String(server.port), "--count", "5", "--interval", "10"];
          const pinged = await run([...args, "--timeout", "1000"]);
          // Loss happens on UDP, even on loopback (xinetd lost 1 in 5 once): up to one probe of the five may go.
          const received = Number(/5 sent, (\d) received/.exec(pinged.stdout)?.[1] ?? 0);
          return received >= 4 && pinged.code === (received === 5 ? 0 : 1)
            ? { checks: [`ping --udp: ${received} of 5 answered, exit ${pinged.code}`] }
            : {
                checks: [],
                failure: `ping --udp: exit ${pinged.code}: ${pinged.stdout.split("\n").slice(-3).join(" ").trim() || pinged.stderr}`,
              };
        });
      }
      if (cases.includes("empty")) await timed("empty", () => sent(""));
      return results;
    },
  };
}

const NC: UdpClient = {
  name: "nc",
  kind: "peer",
  description: "nc.openbsd -u -w 1 (the tutorial message from stdin)",
  sameProgramAs: "nc",
  // Its one message is far below xinetd's 2,048 B: it cannot catch the control, and every control cell must.
  cases: (server) => (server.kind === "control" ? [] : ["tutorial"]),
  async run(server) {
    const started = performance.now();
    // -w 1: nc -u has no end to wait for; it leaves a second after stdin's EOF.
    const result = await runManaged("nc.openbsd", ["-u", "-w", "1", HOST, String(server.port)], {
      timeoutMs: 10_000,
      input: "Hello, server!",
    });
    const got = result.stdout.toString();
    const ms = Math.round(performance.now() - started);
    return new Map([
      [
        "tutorial",
        got === "Hello, server!"
          ? { checks: ["nc -u: Hello, server! came back"], ms }
          : { checks: [], failure: `nc -u: exit ${result.code}, got ${JSON.stringify(got)}`, ms },
      ],
    ]);
  },
};

/** The Python probe: random bytes at each size, port 1023 (root), and a burst from one source while another asks. */
const HARNESS: UdpClient = {
  name: "harness",
  kind: "harness",
  description: "packages/testkit/src/udp-probe.py: random bytes at each size, a burst from one source, port 1023",
  sameProgramAs: "python",
  cases: (server) =>
    server.kind === "ours" ? ["sizes", "burst", "source-port", "rate-limit", "empty"] : ["sizes", "burst", "empty"],
  async run(server, cases) {
    const started = performance.now();
    const probe = await runManaged("python3", [UDP_PROBE, HOST, String(server.port), "--burst", String(BURST)], {
      timeoutMs: 60_000,
    });
    if (probe.code !== 0) throw new Error(`udp-probe.py exit ${probe.code}: ${probe.stderr}`);
    // One probe checks every case at once: each carries its time.
    const ms = Math.round(performance.now() - started);
    const outcome = (failure: string | undefined, checks: readonly string[]): Outcome =>
      failure === undefined ? { checks, ms } : { checks: [], failure, ms };
    const report = JSON.parse(probe.stdout.toString());
    const stats = await server.stop();
    const results = new Map<CaseName, Outcome>();
    const bad = SIZES.filter((size) => !report.sizes[String(size)].exact || !report.sizes[String(size)].fromServer);
    results.set(
      "sizes",
      outcome(
        bad.length === 0
          ? undefined
          : `not byte-exact: ${bad.map((size) => `${size} B (got ${report.sizes[String(size)].length ?? "nothing"})`).join(", ")}`,
        SIZES.map((size) => `${size} B of random bytes came back byte-exact, from the server's address`),
      ),
    );
    const { empty } = report;
    results.set(
      "empty",
      outcome(
        empty.answered && empty.exact && empty.fromServer ? undefined : `a 0-byte datagram: ${JSON.stringify(empty)}`,
        ["a 0-byte datagram was answered with a 0-byte datagram"],
      ),
    );
    const { burst } = report;
    const summary = `${burst.sent} sent, the flooder got ${burst.flooderReplies} answers in ${burst.seconds} s`;
    results.set(
      "burst",
      outcome(
        burst.otherAnswered === 5
          ? undefined
          : `another source got ${burst.otherAnswered}/5 after the burst (${summary})`,
        [summary, "another source got 5/5 answers after the burst"],
      ),
    );
    if (cases.includes("source-port")) {
      const dropped = (stats?.dropped as Record<string, number> | undefined)?.sourcePort;
      results.set(
        "source-port",
        outcome(
          !report.port1023.bound
            ? `could not bind port 1023 (needs root): ${report.port1023.error}`
            : report.port1023.answered
              ? "a datagram from port 1023 was answered"
              : dropped === 1
                ? undefined
                : `dropped.sourcePort is ${dropped}, expected 1`,
          ["a datagram from port 1023 got no answer", "the server's final counters: dropped.sourcePort 1"],
        ),
      );
    }
    if (cases.includes("rate-limit")) {
      // One second's bucket, then 1,000 a second (the defaults): the kernel may lose answers, never add them.
      const bound = 1000 + Math.ceil(1000 * burst.seconds) + 5;
      results.set(
        "rate-limit",
        outcome(
          burst.flooderReplies > 0 && burst.flooderReplies <= bound && burst.otherAnswered === 5
            ? undefined
            : `${summary}: expected 1 to ${bound}, and the other source 5/5 (got ${burst.otherAnswered})`,
          [`${summary}: within 1 to ${bound}`, "the other source got 5/5 answers"],
        ),
      );
    }
    return results;
  },
};

const CLIENTS: readonly UdpClient[] = [...RUNTIME_NAMES.map(ourClient), NC, HARNESS];

// --- run ---

export interface UdpMatrixOptions {
  readonly servers?: readonly string[];
  readonly clients?: readonly string[];
  readonly cases?: readonly string[];
  /** Count an unavailable server or client as a failure (CI, where everything is installed). */
  readonly requireAll?: boolean;
}

function pick<T extends { name: string }>(all: readonly T[], names: readonly string[] | undefined, what: string): T[] {
  if (!names) return [...all];
  const unknown = names.find((name) => !all.some((one) => one.name === name));
  if (unknown) throw new Error(`--${what} ${unknown}: the udp grid has ${all.map((one) => one.name).join(", ")}`);
  return all.filter((one) => names.includes(one.name));
}

/** A participant as the reports list it: its own kind and description, the TCP grid's program facts. */
function participant(udp: UdpServer | UdpClient): Participant {
  const same = [...TCP_SERVERS, ...TCP_CLIENTS].find((spec) => spec.name === udp.sameProgramAs);
  const missing = same?.missing();
  const version = missing ? undefined : same?.installedVersion?.();
  return {
    name: udp.name,
    kind: udp.kind,
    ...(same?.runtime ? { runtime: same.runtime } : {}),
    ...(version ? { version } : {}),
    description: udp.description,
    ...(missing ? { missing } : {}),
  };
}

/** One cell: a server of its own, the client's cases, each failure checked against `KNOWN_GAPS`; never throws. */
async function runCell(server: UdpServer, client: UdpClient, cases: readonly CaseName[], filtered: boolean) {
  const started = Date.now();
  const base = { transport: "udp" as const, server: server.name, client: client.name };
  const missing = participant(server).missing ?? participant(client).missing;
  if (missing) return { ...base, status: "not-available" as const, cases: [], ms: 0, note: missing };
  let outcomes: Map<CaseName, Outcome> | undefined;
  let error: string | undefined;
  try {
    const running = await server.start().catch((cause: Error) => {
      throw new Error(`the server did not start: ${cause.message}`);
    });
    try {
      outcomes = await client.run(running, cases);
    } finally {
      await running.stop();
    }
  } catch (cause) {
    error = (cause as Error).message;
  }
  const results = cases.map((name): CaseResult => {
    const outcome = outcomes?.get(name);
    // A failure a case found by its own check is a verdict; one that kept it from checking (a server that did
    // not start, a probe that crashed) is not, and cannot count as catching the negative control.
    const plain: CaseResult = outcome
      ? {
          case: name,
          ok: outcome.failure === undefined,
          ms: outcome.ms,
          checks: outcome.checks,
          ...(outcome.failure === undefined ? {} : { failure: outcome.failure, verdict: true }),
        }
      : { case: name, ok: false, ms: 0, checks: [], failure: error ?? "the client reported nothing", verdict: false };
    // On the negative control a failure is the point (a catch), not a gap.
    const gap = server.kind === "control" ? undefined : knownGap(server.name, client.name, name, "udp");
    const broken = gap && gapBroken(gap, plain);
    return gap ? { ...plain, knownGap: gap.why, ...(broken ? { gapBroken: broken } : {}) } : plain;
  });
  return finish({ kind: server.kind }, base, results, started, filtered);
}

/** The udp grid, one cell at a time (each on its own server), as a `MatrixResult` like the stream transports'. */
export async function runUdpMatrix(
  options: UdpMatrixOptions,
  onCell: (cell: CellResult) => void = () => {},
): Promise<MatrixResult> {
  const started = Date.now();
  const servers = pick(SERVERS, options.servers, "server");
  const clients = pick(CLIENTS, options.clients, "client");
  const unknownCase = options.cases?.find((name) => !(UDP_CASES as readonly string[]).includes(name));
  if (unknownCase) throw new Error(`--case ${unknownCase}: the udp cases are ${UDP_CASES.join(", ")}`);
  const cells: CellResult[] = [];
  for (const server of servers)
    for (const client of clients) {
      const cases = client.cases(server).filter((name) => !options.cases || options.cases.includes(name));
      if (cases.length === 0) continue;
      const cell = await runCell(server, client, cases, options.cases !== undefined);
      cells.push(cell);
      onCell(cell);
    }
  const ran = (role: "server" | "client") => (one: { name: string }) => cells.some((cell) => cell[role] === one.name);
  return {
    // UDP has one set of sizes: every run is the full one.
    profile: "full",
    mode: "conformance",
    transports: ["udp"],
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    servers: servers.filter(ran("server")).map(participant),
    clients: clients.filter(ran("client")).map(participant),
    cases: UDP_CASES.map((name) => ({ name, proves: PROVES[name] })),
    cells,
    ok: runPassed(cells, options.requireAll === true),
  };
}

/** Which cases run in which kind of cell, under the udp grid. */
export function renderUdpLegend(): string {
  const ours = SERVERS.find((server) => server.kind === "ours")!;
  const peer = SERVERS.find((server) => server.kind === "peer")!;
  const control = SERVERS.find((server) => server.kind === "control")!;
  const playing = (client: UdpClient, server: UdpServer) => client.cases(server).join(", ") || "none";
  const [our] = CLIENTS;
  return [
    `our clients (send --udp, ping --udp): ${playing(our!, ours)}; nc -u: ${playing(NC, ours)} (not on the control: it cannot catch it)`,
    `harness column (udp-probe.py): ${playing(HARNESS, peer)}; on our servers also ${HARNESS.cases(ours)
      .filter((name) => !HARNESS.cases(peer).includes(name))
      .join(", ")}`,
    `control row (${control.name}, truncates at 2,048 B): must fail in every column ("✓ caught N/M": N cases caught it)`,
  ].join("\n");
}
