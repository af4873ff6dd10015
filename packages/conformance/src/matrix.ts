/**
 * Runs a plan (`planning.ts`): for each server (row), every client (column) runs every case
 * that applies to the pair. One server process per row, restarted if it dies
 * (and the death is a failure of the case that was running). Cells run one at a
 * time, so timings and /proc measurements are not disturbed by each other.
 */

import { createInterface } from "node:readline";
import { ROOT, spawnManaged } from "@tcp-echo/testkit";
import { CLI_CASES } from "./cli-cases.ts";
import { CaseFailure } from "./deadline.ts";
import { FAULT_CASES, startFaultProxies } from "./fault-cells.ts";
import { HARNESS_CASES, type HarnessContext, type HarnessParams } from "./harness-cases.ts";
import { describeExit, type Net, type RunningServer } from "./launchers.ts";
import type { ClientSpec, ServerSpec } from "./participants.ts";
import { PIPE_CASES } from "./pipe-cases.ts";
import {
  CASES,
  type CaseName,
  type CaseParams,
  type CaseSpec,
  type DriverResult,
  gapBroken,
  knownGap,
  type Profile,
} from "./plan.ts";
import {
  budget,
  type CaseResult,
  type CellResult,
  type CellStatus,
  casePassed,
  cellKey,
  checked,
  clientsOf,
  isCatch,
  type MatrixEvent,
  type MatrixOptions,
  type MatrixResult,
  type PlannedCell,
  type PlannedRow,
  paramsFor,
  planMatrix,
  runPassed,
  transportsOf,
} from "./planning.ts";
import { freePort, type GridTransport, prepareTransports, type Transport, type TransportSetup } from "./transports.ts";
import { startBehind, type Via } from "./via.ts";

/** One row's server (behind its balancer with `--via`): started on first use, restarted if it (or the balancer) died. */
class ServerSlot {
  private running: RunningServer | undefined;
  private readonly spec: ServerSpec;
  private readonly net: Net;
  private readonly via: Via | undefined;

  constructor(spec: ServerSpec, net: Net, via: Via | undefined) {
    this.spec = spec;
    this.net = net;
    this.via = via;
  }

  async get(): Promise<RunningServer> {
    if (this.running?.process?.exit || this.running?.balancer?.exit) {
      await this.running.stop();
      this.running = undefined;
    }
    this.running ??= this.via ? await startBehind(this.via, this.spec, this.net) : await this.spec.start(this.net);
    return this.running;
  }

  /** Why the server (or its balancer) is no longer running, if it died. */
  death(): string | undefined {
    const dead = [this.running?.process, this.running?.balancer].find((managed) => managed?.exit);
    if (!dead?.exit) return undefined;
    const what =
      dead === this.running?.balancer
        ? `${this.via} in front of the ${this.spec.name} server`
        : `the ${this.spec.name} server`;
    const tail = dead.stderrTail();
    return `${what} died (${describeExit(dead.exit)})${tail ? `: ${tail.split("\n").slice(-3).join(" | ")}` : ""}`;
  }

  async stop(): Promise<void> {
    await this.running?.stop();
    this.running = undefined;
  }
}

export interface RunningMatrix {
  readonly rows: readonly PlannedRow[];
  /** One cell's result, once it has run. */
  cell(server: string, client: string, transport?: Transport): Promise<CellResult>;
  readonly result: Promise<MatrixResult>;
}

/**
 * Starts the matrix: `jobs` rows at a time (each row's cells in order, on its
 * own server). Most of a cell's time is spent waiting (process start-up, the
 * late reader, the slow peer), so two rows share two cores well; /proc
 * measurements are per process and per port, so rows cannot disturb each other's.
 */
export function startMatrix(options: MatrixOptions, onEvent: (event: MatrixEvent) => void = () => {}): RunningMatrix {
  const started = Date.now();
  const rows = planMatrix(options);
  const transports = transportsOf(options);
  const setup = prepareTransports(transports);
  onEvent({ type: "plan", rows });
  const pending = new Map<string, { promise: Promise<CellResult>; resolve: (cell: CellResult) => void }>();
  for (const row of rows) {
    for (const planned of row.cells) {
      let resolve!: (cell: CellResult) => void;
      const promise = new Promise<CellResult>((done) => {
        resolve = done;
      });
      pending.set(cellKey(row.transport, row.server.name, planned.client.name), { promise, resolve });
    }
  }
  const cells: CellResult[] = [];
  const runRow = async (row: PlannedRow) => {
    // A server reached by a tls:// URL has its own CA and name; every other row uses the run's.
    const trust = row.server.tls;
    const net = {
      transport: row.transport,
      setup: trust && setup.tls ? { ...setup, tls: { ...setup.tls, ...trust } } : setup,
    };
    const slot = new ServerSlot(row.server, net, options.via);
    try {
      for (const planned of row.cells) {
        const cell = await runCell(row.server, planned, slot, net, options, onEvent);
        cells.push(cell);
        onEvent({ type: "cell", cell });
        pending.get(cellKey(cell.transport, cell.server, cell.client))?.resolve(cell);
      }
    } finally {
      await slot.stop();
    }
  };
  const queue = [...rows];
  const worker = async () => {
    for (let row = queue.shift(); row; row = queue.shift()) await runRow(row);
  };
  const result = Promise.all(Array.from({ length: Math.max(1, options.jobs ?? 1) }, worker)).then((): MatrixResult => {
    setup.cleanup();
    const columns = clientsOf(rows).map((client) => client.name);
    const order = (cell: CellResult) =>
      rows.findIndex((row) => row.transport === cell.transport && row.server.name === cell.server) * 1000 +
      columns.indexOf(cell.client);
    cells.sort((a, b) => order(a) - order(b));
    const participants = (list: readonly (ServerSpec | ClientSpec)[]) =>
      list.map((item) => {
        const missing = item.missing();
        const version = missing ? undefined : item.installedVersion?.();
        return {
          name: item.name,
          kind: item.kind,
          ...(item.runtime ? { runtime: item.runtime } : {}),
          ...(version ? { version } : {}),
          description: item.description,
          ...(missing ? { missing } : {}),
        };
      });
    return {
      profile: options.profile.name,
      mode: options.faults ? "faults" : "conformance",
      transports,
      ...(options.via ? { via: options.via } : {}),
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      servers: participants([...new Set(rows.map((row) => row.server))]),
      clients: participants(clientsOf(rows)),
      cases: (options.faults ? FAULT_CASES : CASES).map(({ name, proves }) => ({ name, proves })),
      cells,
      ok: runPassed(cells, options.requireAll === true),
    };
  });
  return {
    rows,
    cell: (server, client, transport = "tcp4") => {
      const entry = pending.get(cellKey(transport, server, client));
      return entry
        ? entry.promise
        : Promise.reject(new Error(`no cell ${server} x ${client} over ${transport} in this plan`));
    },
    result,
  };
}

export function runMatrix(options: MatrixOptions, onEvent?: (event: MatrixEvent) => void): Promise<MatrixResult> {
  return startMatrix(options, onEvent).result;
}

/** Runs one cell (every case of one server/client pair); never throws. */
async function runCell(
  server: ServerSpec,
  planned: PlannedCell,
  slot: ServerSlot,
  net: Net,
  options: MatrixOptions,
  onEvent: (event: MatrixEvent) => void = () => {},
): Promise<CellResult> {
  const { profile } = options;
  const { transport, setup } = net;
  const { client, cases } = planned;
  const started = Date.now();
  const base = { transport, server: server.name, client: client.name };
  const missing = setup.missing(transport) ?? server.missing() ?? client.missing();
  if (missing) return { ...base, status: "not-available", cases: [], ms: 0, note: missing };
  onEvent({ type: "cell-start", ...base });
  const results: CaseResult[] = [];
  for (const { case: name, reason } of planned.notApplicable) {
    const result = { case: name, ok: false, ms: 0, checks: [], notApplicable: reason };
    results.push(result);
    onEvent({ type: "case", ...base, result });
  }
  const record = (plain: CaseResult) => {
    // On the negative control a failure is the point (a catch), not a gap; only
    // its detection case, which must pass, can be held back by a runtime bug.
    const gap =
      server.kind === "control" && plain.case !== "client-detection"
        ? undefined
        : knownGap(server.name, client.name, plain.case, transport);
    const broken = gap && gapBroken(gap, plain);
    const result = gap ? { ...plain, knownGap: gap.why, ...(broken ? { gapBroken: broken } : {}) } : plain;
    results.push(result);
    onEvent({ type: "case", ...base, result });
  };
  let running: RunningServer;
  try {
    running = await slot.get();
  } catch (error) {
    // A server reached by URL was not started: its error says it is not reachable.
    const failure = server.noProcess
      ? (error as Error).message
      : `the server did not start: ${(error as Error).message}`;
    for (const spec of cases) record({ case: spec.name, ok: false, ms: 0, checks: [], failure });
    return finish(server, base, results, started, planned.filtered);
  }
  const params = paramsFor(profile, server, client, await freePort(), running);
  if (client.driver && options.faults) {
    let proxies: Awaited<ReturnType<typeof startFaultProxies>>;
    try {
      proxies = await startFaultProxies(cases, running.port);
    } catch (error) {
      const failure = `the fault proxies did not start: ${(error as Error).message}`;
      for (const spec of cases) record({ case: spec.name, ok: false, ms: 0, checks: [], failure });
      return finish(server, base, results, started, planned.filtered);
    }
    try {
      await runDriver(client, net, running, cases, { ...params, faults: proxies.targets }, slot, record);
    } finally {
      await proxies.close();
    }
    return finish(server, base, results, started, planned.filtered);
  }
  if (client.driver) {
    const driverCases = cases.filter((spec) => spec.players !== "cli");
    if (driverCases.length > 0) await runDriver(client, net, running, driverCases, params, slot, record);
    for (const spec of cases.filter((spec) => spec.players === "cli")) {
      const caseStarted = Date.now();
      try {
        const checks = await CLI_CASES[spec.name as CaseName]!(client);
        record({ case: spec.name, ok: true, ms: Date.now() - caseStarted, checks });
      } catch (error) {
        const failure = error instanceof CaseFailure ? error.message : `harness error: ${(error as Error).stack}`;
        record({ case: spec.name, ok: false, ms: Date.now() - caseStarted, checks: [], failure });
      }
    }
    return finish(server, base, results, started, planned.filtered);
  }
  const runOne = async (spec: CaseSpec): Promise<CaseResult> => {
    // A case that killed the server must not be blamed on the next one.
    if (spec.name !== "drain") running = await slot.get().catch(() => running);
    const caseStarted = Date.now();
    const own: RunningServer[] = [];
    let result: CaseResult;
    try {
      const context: HarnessContext = {
        server: running,
        setup,
        params: harnessParams(profile),
        startOwn: async (extra) => {
          const ownOptions = { ...net, ...extra };
          const started = options.via
            ? await startBehind(options.via, server, ownOptions)
            : await server.start(ownOptions);
          own.push(started);
          return started;
        },
      };
      const checks = client.pipe
        ? await PIPE_CASES[spec.name as CaseName]!(client, running.endpoint, setup, params)
        : await HARNESS_CASES[spec.name as CaseName]!(context);
      result = { case: spec.name, ok: true, ms: Date.now() - caseStarted, checks };
    } catch (error) {
      const failure = error instanceof CaseFailure ? error.message : `harness error: ${(error as Error).stack}`;
      const verdict = error instanceof CaseFailure;
      result = { case: spec.name, ok: false, ms: Date.now() - caseStarted, checks: [], failure, verdict };
    } finally {
      await Promise.all(own.map((started) => started.stop()));
    }
    const death = spec.name === "drain" ? undefined : slot.death();
    // A server that died is no verdict of the case, whatever the case saw.
    return death
      ? { ...result, ok: false, verdict: false, failure: [result.failure, death].filter(Boolean).join("; ") }
      : result;
  };
  // The slow peer mostly sleeps, so it runs alongside backpressure (which
  // measures memory, not connections). Resets must come after both: it checks
  // that the server holds no connection at all. Drain ends the server: last.
  const named = (name: CaseName) => cases.find((spec) => spec.name === name);
  const slow = named("slow-peer");
  const backpressure = named("backpressure");
  const together = await Promise.all([backpressure && runOne(backpressure), slow && runOne(slow)]);
  for (const result of together) if (result) record(result);
  for (const spec of cases) {
    if (spec !== slow && spec !== backpressure) record(await runOne(spec));
  }
  return finish(server, base, results, started, planned.filtered);
}

/** What our clients pass to `connect()` to reach `server`: the API form of each transport. */
function connectOptions({ endpoint }: RunningServer, setup: TransportSetup): Record<string, unknown> {
  if (endpoint.transport === "unix") return { transport: "unix", path: endpoint.path };
  const tcp = { hostname: endpoint.host, port: endpoint.port };
  return endpoint.transport === "tls"
    ? { ...tcp, tls: { ca: setup.tls?.caPem, serverName: setup.tls?.serverName } }
    : tcp;
}

function harnessParams(profile: Profile): HarnessParams {
  return {
    backpressureBytes: profile.backpressureBytes,
    resets: profile.resets,
    slowPeerBytes: profile.slowPeerBytes,
  };
}

/** One driver process per cell runs its cases in order and prints one JSON line per case. */
async function runDriver(
  client: ClientSpec,
  net: Net,
  server: RunningServer,
  cases: readonly CaseSpec[],
  params: CaseParams,
  slot: ServerSlot,
  record: (result: CaseResult) => void,
): Promise<void> {
  const [command, ...args] = [
    ...(client.driver!(net) as [string, ...string[]]),
    "--target",
    JSON.stringify(connectOptions(server, net.setup)),
    "--cases",
    cases.map((spec) => spec.name).join(","),
    "--params",
    JSON.stringify(params),
  ];
  // Startup (tsx or deno compiling TypeScript on a cold cache) plus every case's own limit.
  const timeoutMs = 30_000 + cases.reduce((sum, spec) => sum + budget(spec.name, params), 0);
  const driver = spawnManaged(command, args, { label: `driver ${client.name}`, cwd: ROOT, timeoutMs });
  const seen = new Set<string>();
  const lines = createInterface({ input: driver.child.stdout! });
  lines.on("line", (line) => {
    let parsed: DriverResult;
    try {
      parsed = JSON.parse(line) as DriverResult;
    } catch {
      return;
    }
    seen.add(parsed.case);
    const death = slot.death();
    const failure = [parsed.failure, parsed.ok ? undefined : death].filter(Boolean).join("; ");
    record({
      case: parsed.case,
      ok: parsed.ok,
      ms: parsed.ms,
      checks: parsed.checks,
      ...(failure ? { failure } : {}),
      ...(parsed.ok ? {} : { verdict: parsed.verdict === true && !death }),
    });
  });
  const linesClosed = new Promise<void>((resolve) => lines.once("close", resolve));
  const exit = await driver.exited;
  await linesClosed;
  const why = exit.timedOut
    ? `the ${client.name} driver hung and was killed after ${timeoutMs} ms`
    : `the ${client.name} driver ended (${describeExit(exit)}) before this case`;
  const tail = driver.stderrTail().split("\n").slice(-3).join(" | ");
  for (const spec of cases) {
    if (seen.has(spec.name)) continue;
    const death = slot.death();
    record({
      case: spec.name,
      ok: false,
      ms: 0,
      checks: [],
      failure: [why + (tail ? `: ${tail}` : ""), death].filter(Boolean).join("; "),
    });
  }
}

/** A cell's status from its cases (the udp grid's too, `udp.ts`): the negative control's must have caught it. */
export function finish(
  server: Pick<ServerSpec, "kind" | "noProcess">,
  base: { transport: GridTransport; server: string; client: string },
  results: CaseResult[],
  started: number,
  filtered: boolean,
): CellResult {
  const ms = Date.now() - started;
  if (results.length > 0 && checked(results).length === 0) {
    const note = `n/a: no case here can be checked without the server's process (${server.noProcess})`;
    return { ...base, status: "not-available", cases: results, ms, note };
  }
  if (server.kind !== "control") {
    return { ...base, status: checked(results).every(casePassed) ? "pass" : "fail", cases: results, ms };
  }
  // The negative control: its conformance cases must fail somewhere in the cell,
  // and the detection case (our clients catching it) must pass.
  const detection = results.filter((r) => r.case === "client-detection");
  const conformance = results.filter((r) => r.case !== "client-detection");
  // Caught only by a case that ran against the running control and failed its own
  // check: a control that did not start, died, or hung a driver proves nothing.
  const caught = conformance.some(isCatch);
  if (!caught && filtered && detection.every(casePassed)) {
    // `--case tutorial` on its own cannot show the break (it is in the half-close):
    // say so rather than fail the run. An unfiltered run must catch it.
    const note = "not caught by the selected cases: run without --case to check the negative control";
    return { ...base, status: "not-available", cases: results, ms, note };
  }
  const status: CellStatus = !detection.every(casePassed) ? "fail" : caught ? "expected-fail" : "unexpected-pass";
  return { ...base, status, cases: results, ms };
}
