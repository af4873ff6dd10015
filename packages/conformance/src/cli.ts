/**
 * `pnpm matrix`: every client against every server, with live progress, then
 * the table, the per-case breakdown of failing cells, and exit code 0 only when
 * every expected cell passed.
 *
 *   pnpm matrix [--server NAME]... [--client NAME]... [--case NAME]...
 *               [--json FILE|-] [--html FILE] [--junit FILE] [--markdown] [--profile full|quick] [--require-all]
 *               [--transport tcp4|tcp6|unix|tls|all|udp]... [--faults] [--runtimes LIST|supported]
 *               [--server-at NAME=URL]... [--server-cmd NAME=COMMAND]... [--client-cmd NAME=COMMAND]...
 *               [--config FILE] [--via haproxy|nginx]
 */

import { parseArgs } from "node:util";
import {
  installExitHandlers,
  killAllAndWait,
  parseRuntime,
  type Runtime,
  RuntimeError,
  resolveRuntime,
  SUPPORTED,
} from "@tcp-echo/testkit";
import { outsideOf, outsideParticipants, UsageError } from "./external.ts";
import { runMatrix } from "./matrix.ts";
import { checkOutputs, commandLine, generator, type Outputs, writeOutputs } from "./outputs.ts";
import { HARNESS, participants } from "./participants.ts";
import { CASE_NAMES, PROFILES } from "./plan.ts";
import {
  type CellResult,
  casePassed,
  cellKey,
  checked,
  clientsOf,
  type MatrixEvent,
  type MatrixResult,
  transportsOf,
} from "./planning.ts";
import {
  cellText,
  formatDuration,
  type LiveCell,
  renderDetails,
  renderLegend,
  renderTable,
  type TableInput,
} from "./report.ts";
import { TRANSPORTS, type Transport } from "./transports.ts";
import { runUdpMatrix } from "./udp.ts";
import { type Via, viaProblem } from "./via.ts";

/** How the user ran it: `pnpm matrix` in a checkout, the bin of the installed package otherwise. */
const INVOKED_AS = process.env.npm_lifecycle_event === "matrix" ? "pnpm matrix" : "tcp-echo-conformance";

const USAGE = `usage: ${INVOKED_AS} [options]

  --server NAME   only this server (repeat or comma-separate): node, bun, deno, node@bun,
                  node@deno, socat, xinetd, python, control, client-only
  --client NAME   only this client: node, bun, deno, node@bun, node@deno, nc, ncat, socat,
                  python, harness
  --case NAME     only this case: ${CASE_NAMES.join(", ")}
  --json FILE     write the full result as JSON; "-": to stdout (the table then goes to stderr)
  --html FILE     write a self-contained page: the grids, each cell's cases, a filter
  --junit FILE    write JUnit XML (a testsuite per cell, a testcase per case) for CI
  --markdown      print the table as Markdown (for a README or a CI summary)
  --profile P     full (default: 256 MiB payload on the diagonal) or quick (the test suite's)
  --require-all   fail when a server or client is not installed or not available
  --jobs N        rows (servers) run at once (default 2)
  --transport T   tcp4 (default), tcp6, unix, tls, or all: one grid per transport;
                  udp: the datagram grid, on its own (src/udp.ts: its own servers, clients
                  and cases; every report flag works)
  --faults        our clients x our servers through each fault of @tcp-echo/faults' FAULTS
                  (a proxy per fault; --case then names faults), instead of the cases
  --via B         each server behind a real balancer of its own: haproxy or nginx (mode tcp,
                  one backend; our servers with --proxy-protocol); the clients connect to it (tcp4, tls)
  --runtimes LIST runtime versions, each a row and a column of its own: node@22 (the newest
                  22.x.y), bun@1.3.x, deno@2.9.6 (exact), comma-separated; a runtime not
                  listed stays pinned. "supported": ${SUPPORTED.join(",")}.
                  Fetched from the npm registry into ~/.cache/tcp-echo/runtimes on first use.
                  --server/--client then name a family (node) or one version (node@22.23.5)

Participants from outside (each replaces its side's default; the
  control row always runs, and with an outside server the harness column):
  --server-at NAME=URL      a server already running: tcp://HOST:PORT, tcp://[::1]:PORT,
                            tls://HOST:PORT (with --tls-ca FILE, --tls-servername N), unix:/path
  --server-cmd NAME=COMMAND a server the matrix starts (sh -c) and stops; {port}, {host}, {path}
                            filled in; ready when it accepts (or --ready-line REGEX), within
                            --start-timeout MS (default 30000)
  --client-cmd NAME=COMMAND a byte-pipe client (stdin to the server, its bytes to stdout, exit at
                            EOF), e.g. 'nc -N {host} {port}'; it plays the peer clients' cases
  --config FILE             the same in JSON: {"servers":[{"name","url"|"command",...}],"clients":[...]}
`;

function list(values: string[] | undefined): string[] | undefined {
  return values?.flatMap((value) => value.split(",")).filter(Boolean);
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (error) {
    process.stderr.write(`matrix: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const profile = PROFILES[(values.profile ?? "full") as keyof typeof PROFILES];
  if (!profile) {
    process.stderr.write(`matrix: --profile must be full or quick\n`);
    return 2;
  }
  const jobs = Number(values.jobs ?? 2);
  if (!Number.isInteger(jobs) || jobs < 1) {
    process.stderr.write(`matrix: --jobs must be a positive integer\n`);
    return 2;
  }
  const transports = list(values.transport) ?? ["tcp4"];
  if (transports.includes("udp")) {
    if (values.via) {
      process.stderr.write("matrix: --via runs over tcp4 and tls only, not udp (the balancers here are TCP)\n");
      return 2;
    }
    if (transports.length === 1) return udpMatrix(values);
    process.stderr.write("matrix: --transport udp runs on its own (its servers, clients and cases are its own)\n");
    return 2;
  }
  const chosen = transports.includes("all") ? TRANSPORTS : (transports as Transport[]);
  const unknown = chosen.find((transport) => !TRANSPORTS.includes(transport));
  if (unknown) {
    process.stderr.write(`matrix: --transport must be tcp4, tcp6, unix, tls or all, got ${JSON.stringify(unknown)}\n`);
    return 2;
  }
  let runtimes: Runtime[] | undefined;
  try {
    const specs = list(values.runtimes);
    if (specs) {
      const wanted = (
        specs.includes("supported") ? [...SUPPORTED, ...specs.filter((s) => s !== "supported")] : specs
      ).map(parseRuntime);
      runtimes = [];
      // One at a time: each download prints its own progress line.
      for (const one of wanted) {
        const runtime = await resolveRuntime(one);
        if (!runtimes.some((r) => r.runtime === runtime.runtime && r.version === runtime.version))
          runtimes.push(runtime);
      }
    }
  } catch (error) {
    if (!(error instanceof RuntimeError)) throw error;
    process.stderr.write(`matrix: --runtimes ${error.message}\n`);
    return 2;
  }
  let outside: ReturnType<typeof outsideParticipants>;
  try {
    const { servers, clients } = participants(runtimes);
    const taken = [...servers, ...clients, HARNESS].map((participant) => participant.name);
    outside = outsideParticipants(outsideOf(values), taken);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`matrix: ${error.message}\n`);
    return 2;
  }
  if (values.via) {
    // The transports the run will use: those asked for, or the URLs' of the servers reached by URL.
    const over = transportsOf({ ...(values.transport ? { transports: chosen } : {}), outside });
    const problem = viaProblem(values.via, over, { faults: values.faults === true });
    if (problem) {
      process.stderr.write(`matrix: ${problem}\n`);
      return 2;
    }
  }
  const outputs = outputsOf(values);
  if (typeof outputs === "number") return outputs;
  const { human } = outputs;
  installExitHandlers();
  const progress = new Progress(human, values.via);
  let result: Awaited<ReturnType<typeof runMatrix>>;
  try {
    result = await runMatrix(
      {
        profile,
        servers: list(values.server),
        clients: list(values.client),
        cases: list(values.case),
        requireAll: values["require-all"] === true,
        jobs,
        faults: values.faults === true,
        // Not given: tcp4, or the transports of the servers reached by URL (`transportsOf`).
        ...(values.transport ? { transports: [...new Set(chosen)] } : {}),
        ...(runtimes ? { runtimes } : {}),
        ...(values.via ? { via: values.via as Via } : {}),
        outside,
      },
      (event) => progress.update(event),
    );
  } catch (error) {
    process.stderr.write(`matrix: ${(error as Error).message}\n`);
    return 2;
  } finally {
    await killAllAndWait();
  }
  progress.done();
  return report(result, values, outputs, human);
}

/** The run's table, legend, details and verdict for people, and its files; the exit code. */
async function report(
  result: MatrixResult,
  values: ReturnType<typeof parse>["values"],
  outputs: Outputs,
  human: NodeJS.WriteStream,
): Promise<number> {
  const format = values.markdown ? "markdown" : "text";
  const lines = [
    "",
    result.mode === "faults"
      ? `tcp-echo fault matrix: each cell is our client and server through ${result.cases.length} faults (${formatDuration(result.durationMs)})`
      : `tcp-echo conformance matrix (${result.profile} profile${result.via ? `, every server behind ${result.via}` : ""}, ${formatDuration(result.durationMs)})`,
    "",
    renderTable(result, format),
    "",
    renderLegend(result.mode, result.transports),
  ];
  const details = renderDetails(result);
  if (details) lines.push("", details);
  const failing = result.cells.filter((cell) => cell.status === "fail" || cell.status === "unexpected-pass").length;
  const unavailable = result.cells.filter((cell) => cell.status === "not-available").length;
  const verdict = result.ok
    ? `OK: every expected cell passed (${result.cells.length - unavailable} run, ${unavailable} not available)`
    : failing === 0 && unavailable === result.cells.length
      ? `FAILED: nothing ran (${unavailable} cell(s) not available): this run proved nothing`
      : `FAILED: ${failing} cell(s) failed${values["require-all"] && unavailable ? `, ${unavailable} could not run (--require-all)` : ""}`;
  lines.push("", verdict);
  human.write(`${lines.join("\n")}\n`);
  await writeOutputs(result, outputs, {
    commandLine: commandLine(process.argv.slice(2), INVOKED_AS),
    generator: generator(),
  });
  return result.ok ? 0 : 1;
}

/**
 * The `--json`, `--html` and `--junit` paths, checked before the run (exit 2 when one cannot be written), and the
 * stream for people: with the JSON on stdout, everything for people goes to stderr.
 */
function outputsOf(values: ReturnType<typeof parse>["values"]) {
  const paths = { json: values.json, html: values.html, junit: values.junit };
  const unwritable = checkOutputs(paths);
  if (unwritable) {
    process.stderr.write(`matrix: ${unwritable}\n`);
    return 2;
  }
  return { ...paths, human: values.json === "-" ? process.stderr : process.stdout };
}

/** `--transport udp`: its own grid (`udp.ts`: servers, clients and cases), reported as the others are. */
async function udpMatrix(values: ReturnType<typeof parse>["values"]): Promise<number> {
  const tcpOnly = ["profile", "jobs", "faults", "runtimes", "server-at", "server-cmd", "client-cmd", "config"].filter(
    (flag) => values[flag as keyof typeof values] !== undefined,
  );
  if (tcpOnly.length > 0) {
    process.stderr.write(`matrix: --${tcpOnly.join(", --")}: not for --transport udp (its grid is its own)\n`);
    return 2;
  }
  const outputs = outputsOf(values);
  if (typeof outputs === "number") return outputs;
  const { human } = outputs;
  installExitHandlers();
  let result: MatrixResult;
  try {
    result = await runUdpMatrix(
      {
        servers: list(values.server),
        clients: list(values.client),
        cases: list(values.case),
        requireAll: values["require-all"] === true,
      },
      (cell) =>
        human.write(
          `${cell.server} server x ${cell.client} client over udp: ${cellSummary(cell)} (${formatDuration(cell.ms)})\n`,
        ),
    );
  } catch (error) {
    process.stderr.write(`matrix: ${(error as Error).message}\n`);
    return 2;
  } finally {
    await killAllAndWait();
  }
  return report(result, values, outputs, human);
}

function parse() {
  return parseArgs({
    options: {
      server: { type: "string", multiple: true },
      client: { type: "string", multiple: true },
      case: { type: "string", multiple: true },
      json: { type: "string" },
      html: { type: "string" },
      junit: { type: "string" },
      markdown: { type: "boolean" },
      profile: { type: "string" },
      "require-all": { type: "boolean" },
      jobs: { type: "string" },
      faults: { type: "boolean" },
      transport: { type: "string", multiple: true },
      runtimes: { type: "string", multiple: true },
      "server-at": { type: "string", multiple: true },
      "server-cmd": { type: "string", multiple: true },
      "client-cmd": { type: "string", multiple: true },
      "tls-ca": { type: "string" },
      "tls-servername": { type: "string" },
      "ready-line": { type: "string" },
      "start-timeout": { type: "string" },
      config: { type: "string" },
      via: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

/**
 * Live progress. On a terminal the table is redrawn as cells fill in; in a log
 * (CI, a pipe) each finished cell is one line.
 */
class Progress {
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  private input: {
    transports: TableInput["transports"];
    servers: TableInput["servers"];
    clients: TableInput["clients"];
    cells: CellResult[];
    via?: string;
  } = {
    transports: [],
    servers: [],
    clients: [],
    cells: [],
  };
  private readonly live = new Map<string, LiveCell>();
  private total = 0;
  private drawn = 0;

  constructor(out: NodeJS.WriteStream, via: string | undefined) {
    this.out = out;
    this.tty = out.isTTY === true;
    if (via) this.input.via = via;
  }

  update(event: MatrixEvent): void {
    if (event.type === "plan") {
      const clients = clientsOf(event.rows);
      this.input.transports = [...new Set(event.rows.map((row) => row.transport))];
      const servers = [...new Set(event.rows.map((row) => row.server))];
      this.input.servers = servers.map((server) => ({ ...server, missing: server.missing() }));
      this.input.clients = clients.map((client) => ({ ...client, missing: client.missing() }));
      this.total = event.rows.reduce((sum, row) => sum + row.cells.length, 0);
      for (const row of event.rows) {
        for (const cell of row.cells)
          this.live.set(cellKey(row.transport, row.server.name, cell.client.name), { total: cell.cases.length });
      }
      const over = this.input.transports.length > 1 ? ` over ${this.input.transports.join(", ")}` : "";
      this.write(`Running ${this.total} cells: ${servers.length} servers x ${clients.length} clients${over}\n`);
    } else if (event.type === "cell-start") {
      const live = this.live.get(cellKey(event.transport, event.server, event.client));
      if (live) live.done = { passed: 0, failed: 0 };
    } else if (event.type === "case") {
      const done = this.live.get(cellKey(event.transport, event.server, event.client))?.done;
      if (done && !event.result.notApplicable) done[event.result.ok ? "passed" : "failed"]++;
      if (!this.tty) return;
    } else if (event.type === "cell") {
      const { cell } = event;
      this.live.delete(cellKey(cell.transport, cell.server, cell.client));
      this.input.cells.push(cell);
      if (!this.tty) {
        const index = String(this.input.cells.length).padStart(String(this.total).length);
        const failures = checked(cell.cases).filter((r) => !casePassed(r) && cell.status === "fail");
        const detail = failures.map((r) => `\n    ✗ ${r.case}: ${r.gapBroken ?? ""}${r.failure ?? ""}`).join("");
        this.write(
          `[${index}/${this.total}] ${cell.server} server${this.input.via ? ` via ${this.input.via}` : ""} x ${cell.client} client${this.input.transports.length > 1 ? ` over ${cell.transport}` : ""}: ${cellSummary(cell)} (${formatDuration(cell.ms)})${detail}\n`,
        );
      }
    }
    if (this.tty) this.redraw();
  }

  done(): void {
    if (this.tty) this.clear();
  }

  private redraw(): void {
    this.clear();
    const text = `${renderTable(this.input, "text", this.live)}\n${this.input.cells.length}/${this.total} cells done\n`;
    this.out.write(text);
    this.drawn = text.split("\n").length - 1;
  }

  private clear(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}F\x1b[J`);
    this.drawn = 0;
  }

  private write(text: string): void {
    this.clear();
    this.out.write(text);
  }
}

function cellSummary(cell: CellResult): string {
  if (cell.status === "not-available") return cell.note ?? "not available";
  if (cell.status === "expected-fail") {
    const caught = cell.cases.filter((r) => !r.ok).length;
    return `expected fail ✓ (${caught} case(s) caught it)`;
  }
  if (cell.status === "unexpected-pass") return "✗ UNEXPECTED PASS: the broken server was not caught";
  return cellText(cell);
}

process.exit(await main());
