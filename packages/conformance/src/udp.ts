/**
 * `pnpm matrix --transport udp`: RFC 862's datagram echo, its own grid. Rows
 * are servers (ours on each runtime, and peers nobody here wrote: socat, xinetd's
 * built-in echo, a Python SOCK_DGRAM server), columns are clients (ours, `nc -u`,
 * and the Python probe `harness` for what only an outside client can check).
 * Every cell starts its own server, so one cell's flood never spends the next
 * cell's rate limit. xinetd truncates datagrams at 2,048 B: its sizes case is
 * expected to fail (the UDP negative control), and passing would fail the run.
 *
 *   pnpm matrix --transport udp [--server NAME]... [--client NAME]... [--case NAME]... [--markdown] [--json FILE]
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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

const HOST = "127.0.0.1";
const PYTHON_SERVER = join(ROOT, "packages/conformance/peers/udp_echo_server.py");
/** The sizes case: one byte, a full Ethernet frame's payload, a large one, the IPv4 maximum (0 bytes is `empty`). */
const SIZES = [1, 1472, 8192, 65_507];
/** Datagrams of the burst case, from one source. */
const BURST = 10_000;

/** `empty` is last in every cell: an empty datagram wedges socat's forking echo for everyone after it. */
export const UDP_CASES = ["tutorial", "sizes", "ping", "burst", "source-port", "rate-limit", "empty"] as const;
type CaseName = (typeof UDP_CASES)[number];

interface Started {
  readonly port: number;
  /** Stops the server; ours report their counters (the `closed` line of `serve --udp --json`). */
  stop(): Promise<Record<string, unknown> | undefined>;
}

interface UdpServer {
  readonly name: string;
  readonly ours: boolean;
  /** Cases this server is expected to fail, and why. */
  readonly expectedFailures?: Partial<Record<CaseName, string>>;
  start(): Promise<Started>;
}

interface UdpClient {
  readonly name: string;
  /** The cases it plays against a server (`ours`: whether the server is one of ours). */
  cases(ours: boolean): readonly CaseName[];
  run(server: Started, cases: readonly CaseName[]): Promise<Map<CaseName, string | undefined>>;
}

export interface UdpCaseResult {
  readonly case: CaseName;
  /** Why it failed; undefined when it passed. */
  readonly failure: string | undefined;
  /** Set when the failure was expected (a known gap or the negative control). */
  readonly expected: string | undefined;
}

export interface UdpCell {
  readonly server: string;
  readonly client: string;
  readonly cases: readonly UdpCaseResult[];
}

// --- servers ---

function ourServer(runtime: RuntimeName): UdpServer {
  return {
    name: runtime,
    ours: true,
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
    ours: false,
    expectedFailures: {
      burst:
        "socat forks a process per datagram (96 answers to the 10,000 in 4 s here), so after a burst another source waits behind it",
      empty:
        "socat's UDP4-RECVFROM,fork takes an empty datagram for EOF: no answer, and after a few it answers no source at all (its forked children hang)",
    },
    // -b: socat's 8,192-byte default buffer would cut a larger datagram in pieces.
    start: async () => {
      const port = await freeUdpPort();
      return peer(["socat", "-b", "65536", `UDP4-RECVFROM:${port},bind=${HOST},fork`, "EXEC:cat"], port);
    },
  },
  {
    name: "xinetd",
    ours: false,
    expectedFailures: { sizes: "xinetd's built-in dgram echo truncates at 2,048 B: the UDP negative control" },
    async start() {
      const port = await freeUdpPort();
      const dir = mkdtempSync(join(tmpdir(), "tcp-echo-xinetd-udp-"));
      const config = join(dir, "xinetd.conf");
      const root = process.getuid?.() === 0;
      writeFileSync(
        config,
        [
          "service echo",
          "{",
          "  type = INTERNAL UNLISTED",
          "  id = echo-dgram",
          "  socket_type = dgram",
          "  protocol = udp",
          "  wait = yes",
          `  bind = ${HOST}`,
          `  port = ${port}`,
          ...(root ? ["  user = root"] : []),
          // cps: the default (50 a second, then the service is off for 10 s) would answer 94 of the burst's 10,000.
          "  cps = 100000 1",
          "}",
          "",
        ].join("\n"),
      );
      const argv: [string, ...string[]] = [
        "xinetd",
        "-dontfork",
        "-f",
        config,
        "-filelog",
        join(dir, "xinetd.log"),
        "-pidfile",
        join(dir, "xinetd.pid"),
      ];
      return peer(argv, port, () => rmSync(dir, { recursive: true, force: true }));
    },
  },
  {
    name: "python",
    ours: false,
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
  const send = async (port: number, message: string) => {
    const result = await run(["send", "--udp", "--port", String(port), "--timeout", "500", message]);
    if (result.code === 0 && result.stdout === `Received response from server: ${message}\n`) return undefined;
    return `send --udp of ${message.length} bytes: exit ${result.code}, ${result.stderr.trim() || `stdout ${result.stdout.length} bytes`}`;
  };
  return {
    name: runtime,
    cases: () => ["tutorial", "sizes", "ping", "empty"],
    async run(server, cases) {
      const results = new Map<CaseName, string | undefined>();
      if (cases.includes("tutorial")) results.set("tutorial", await send(server.port, "Hello, server!"));
      if (cases.includes("sizes")) {
        let failure: string | undefined;
        for (const size of SIZES) failure ??= await send(server.port, text(size, size));
        results.set("sizes", failure);
      }
      if (cases.includes("ping")) {
        const args = ["ping", "--udp", "--port", String(server.port), "--count", "5", "--interval", "10"];
        const pinged = await run([...args, "--timeout", "1000"]);
        // Loss happens on UDP, even on loopback (xinetd lost 1 in 5 once): up to one probe of the five may go.
        const received = Number(/5 sent, (\d) received/.exec(pinged.stdout)?.[1] ?? 0);
        results.set(
          "ping",
          received >= 4 && pinged.code === (received === 5 ? 0 : 1)
            ? undefined
            : `ping --udp: exit ${pinged.code}: ${pinged.stdout.split("\n").slice(-3).join(" ").trim() || pinged.stderr}`,
        );
      }
      if (cases.includes("empty")) results.set("empty", await send(server.port, ""));
      return results;
    },
  };
}

const NC: UdpClient = {
  name: "nc",
  cases: () => ["tutorial"],
  async run(server) {
    // -w 1: nc -u has no end to wait for; it leaves a second after stdin's EOF.
    const result = await runManaged("nc.openbsd", ["-u", "-w", "1", HOST, String(server.port)], {
      timeoutMs: 10_000,
      input: "Hello, server!",
    });
    const got = result.stdout.toString();
    return new Map([
      ["tutorial", got === "Hello, server!" ? undefined : `nc -u: exit ${result.code}, got ${JSON.stringify(got)}`],
    ]);
  },
};

/** The Python probe: random bytes at each size, port 1023 (root), and a burst from one source while another asks. */
const HARNESS: UdpClient = {
  name: "harness",
  cases: (ours) => (ours ? ["sizes", "burst", "source-port", "rate-limit", "empty"] : ["sizes", "burst", "empty"]),
  async run(server, cases) {
    const probe = await runManaged("python3", [UDP_PROBE, HOST, String(server.port), "--burst", String(BURST)], {
      timeoutMs: 60_000,
    });
    const results = new Map<CaseName, string | undefined>();
    if (probe.code !== 0) {
      for (const name of cases) results.set(name, `udp-probe.py exit ${probe.code}: ${probe.stderr}`);
      return results;
    }
    const report = JSON.parse(probe.stdout.toString());
    const stats = await server.stop();
    const bad = SIZES.filter((size) => !report.sizes[String(size)].exact || !report.sizes[String(size)].fromServer);
    results.set(
      "sizes",
      bad.length === 0
        ? undefined
        : `not byte-exact: ${bad.map((size) => `${size} B (got ${report.sizes[String(size)].length ?? "nothing"})`).join(", ")}`,
    );
    const { empty } = report;
    results.set(
      "empty",
      empty.answered && empty.exact && empty.fromServer ? undefined : `a 0-byte datagram: ${JSON.stringify(empty)}`,
    );
    const { burst } = report;
    const summary = `${burst.sent} sent, the flooder got ${burst.flooderReplies} answers in ${burst.seconds} s`;
    results.set(
      "burst",
      burst.otherAnswered === 5
        ? undefined
        : `another source got ${burst.otherAnswered}/5 after the burst (${summary})`,
    );
    if (cases.includes("source-port")) {
      const dropped = (stats?.dropped as Record<string, number> | undefined)?.sourcePort;
      results.set(
        "source-port",
        !report.port1023.bound
          ? `could not bind port 1023 (needs root): ${report.port1023.error}`
          : report.port1023.answered
            ? "a datagram from port 1023 was answered"
            : dropped === 1
              ? undefined
              : `dropped.sourcePort is ${dropped}, expected 1`,
      );
    }
    if (cases.includes("rate-limit")) {
      // One second's bucket, then 1,000 a second (the defaults): the kernel may lose answers, never add them.
      const bound = 1000 + Math.ceil(1000 * burst.seconds) + 5;
      results.set(
        "rate-limit",
        burst.flooderReplies > 0 && burst.flooderReplies <= bound && burst.otherAnswered === 5
          ? undefined
          : `${summary}: expected 1 to ${bound}, and the other source 5/5 (got ${burst.otherAnswered})`,
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
}

function pick<T extends { name: string }>(all: readonly T[], names: readonly string[] | undefined, what: string): T[] {
  if (!names) return [...all];
  const unknown = names.find((name) => !all.some((one) => one.name === name));
  if (unknown) throw new Error(`--${what} ${unknown}: the udp grid has ${all.map((one) => one.name).join(", ")}`);
  return all.filter((one) => names.includes(one.name));
}

export async function runUdpMatrix(
  options: UdpMatrixOptions,
  onCell: (cell: UdpCell) => void = () => {},
): Promise<UdpCell[]> {
  const servers = pick(SERVERS, options.servers, "server");
  const clients = pick(CLIENTS, options.clients, "client");
  const unknownCase = options.cases?.find((name) => !(UDP_CASES as readonly string[]).includes(name));
  if (unknownCase) throw new Error(`--case ${unknownCase}: the udp cases are ${UDP_CASES.join(", ")}`);
  const cells: UdpCell[] = [];
  for (const server of servers)
    for (const client of clients) {
      const cases = client.cases(server.ours).filter((name) => !options.cases || options.cases.includes(name));
      if (cases.length === 0) continue;
      const started = await server.start();
      let results: Map<CaseName, string | undefined>;
      try {
        results = await client.run(started, cases);
      } catch (error) {
        results = new Map(cases.map((name) => [name, (error as Error).message]));
      } finally {
        await started.stop();
      }
      const cell: UdpCell = {
        server: server.name,
        client: client.name,
        cases: cases.map((name) => ({
          case: name,
          failure: results.get(name),
          expected: server.expectedFailures?.[name],
        })),
      };
      cells.push(cell);
      onCell(cell);
    }
  return cells;
}

/** Whether a case came out as expected: passed, or failed where a failure is expected (and not the reverse). */
export const asExpected = (result: UdpCaseResult) => (result.expected === undefined) === (result.failure === undefined);

export function cellLabel(cell: UdpCell | undefined): string {
  if (!cell) return "-";
  const passed = cell.cases.filter((result) => result.failure === undefined).length;
  const known = cell.cases.some((result) => result.expected !== undefined && result.failure !== undefined);
  const ok = cell.cases.every(asExpected);
  return `${ok ? "" : "FAIL "}${passed}/${cell.cases.length}${known ? " (expected fail)" : ""}`;
}

export function renderUdpTable(cells: readonly UdpCell[], markdown: boolean): string {
  const servers = [...new Set(cells.map((cell) => cell.server))];
  const clients = [...new Set(cells.map((cell) => cell.client))];
  const rows = [
    ["server \\ client", ...clients],
    ...servers.map((server) => [
      server,
      ...clients.map((client) => cellLabel(cells.find((cell) => cell.server === server && cell.client === client))),
    ]),
  ];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  const line = (row: string[]) =>
    markdown
      ? `| ${row.map((value, i) => value.padEnd(widths[i] ?? 0)).join(" | ")} |`
      : row.map((value, i) => value.padEnd(widths[i] ?? 0)).join("  ");
  const [head, ...body] = rows as [string[], ...string[][]];
  const rule = markdown ? [`| ${widths.map((width) => "-".repeat(width)).join(" | ")} |`] : [];
  const details = cells.flatMap((cell) =>
    cell.cases
      .filter((result) => result.failure !== undefined || !asExpected(result))
      .map(
        (result) =>
          `${cell.server} x ${cell.client}, ${result.case}: ${result.failure ?? "passed, but a failure was expected"}${result.expected ? ` [expected: ${result.expected}]` : ""}`,
      ),
  );
  return [line(head), ...rule, ...body.map(line), "", ...details].join("\n");
}
