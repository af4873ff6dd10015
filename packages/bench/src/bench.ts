/**
 * `pnpm bench`: each server in turn (A B C A B C ...) under the C load
 * generator, scenario by scenario, over several repetitions, pinned and
 * unpinned; then each runtime's client (its `tcp-echo load` command) against
 * the C server, beside the C load generator and the best hand-written client
 * on that runtime doing the same; `serve --workers 2`
 * against `--workers 1` in (b) and (d), unpinned; then the UDP rows against the
 * C UDP server (udp.ts). Prints a table,
 * writes JSON and an SVG chart under .bench/results (or where asked).
 * Exit codes: 0 ok, 1 a wrong byte or a failed run, 2 usage.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { killAll, type ManagedProcess, runManaged, spawnWithLines } from "@tcp-echo/testkit";
import { chart } from "./chart.ts";
import { buildNative, canPin, describeMachine, parseLoadgen } from "./native.ts";
import { RESULTS_DIR, ROOT } from "./paths.ts";
import {
  evaluateGoals,
  fmt,
  type Goal,
  goalsTable,
  type Measurement,
  type Pin,
  type Row,
  type Subject,
  subjectsOf,
  summarize,
  table,
  workerLines,
} from "./report.ts";
import {
  CLIENT_SCENARIOS,
  type Client,
  type ClientScenario,
  clientArgs,
  detectRuntimes,
  listClients,
  listScenarios,
  listServers,
  listWorkerServers,
  runningIn,
  type Scenario,
  type Server,
} from "./targets.ts";
import { listUdpServers, measureUdp, UDP_SCENARIOS } from "./udp.ts";

const USAGE = `usage: bench [options]
  --duration S     measured seconds per run (default 3)
  --warmup S       unmeasured seconds before each run (default 1)
  --reps N         repetitions; every server runs once per repetition (default 3)
  --scenarios L    comma list of a,b,c,d,e,f,client,udp (default all); client runs the client scenarios,
                   udp the UDP ping-pong and flood against the C UDP server (unpinned)
  --clients L      client scenarios, comma list of a,b,c,d,e (default all): ping-pong, 50x16, bulk, churn,
                   50x16 through write()/read()
  --servers L      comma list of server ids (default all): c,c-uring,node,node-native,node-net,bun,
                   bun-native,bun-net,deno,deno-native,deno-net,deno-pipeto; node-workers-1,node-workers-2
                   (bun-, deno-: serve --workers 1 and 2, run in (b) and (d) unpinned); a runtime's name also
                   picks its clients (node-client: tcp-echo load, node-native-client: the hand-written one,
                   node-promise-client: that one with a promise per message, in client-b)
                   and its UDP server, c the C UDP server
  --pin L          pinned,unpinned (default both; memory scenarios run once, unpinned when listed)
  --flood-mb N     bytes written in scenario (e), in MB (default 200)
  --idle-conns N   connections held in scenario (f) (default 10000)
  --json FILE      write every measurement, summary and goal as JSON
  --svg FILE       write the chart there (default .bench/results/bench.svg)
  --smoke          a few seconds: scenario (b), C and Node servers, and the Node clients, one short run`;

interface Settings {
  duration: number;
  warmup: number;
  reps: number;
  scenarios: string[];
  clients: string[];
  servers: string[] | undefined;
  pins: Pin[];
  floodBytes: number;
  idleConnections: number;
  json: string | undefined;
  svg: string;
  smoke: boolean;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: "string" },
      warmup: { type: "string" },
      reps: { type: "string" },
      scenarios: { type: "string" },
      clients: { type: "string" },
      servers: { type: "string" },
      pin: { type: "string" },
      "flood-mb": { type: "string" },
      "idle-conns": { type: "string" },
      json: { type: "string" },
      svg: { type: "string" },
      smoke: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const number = (name: string, text: string | undefined, fallback: number, min: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name}: expected a number >= ${min}, got ${text}`);
    return value;
  };
  const list = (text: string | undefined) =>
    text
      ?.split(",")
      .map((item) => item.trim())
      .filter(Boolean);
  const smoke = values.smoke === true;
  const pins = (list(values.pin) ?? (smoke ? ["unpinned"] : ["pinned", "unpinned"])) as Pin[];
  for (const pin of pins) if (pin !== "pinned" && pin !== "unpinned") throw new Error(`--pin: unknown mode ${pin}`);
  const every = ["a", "b", "c", "d", "e", "f", "client", "udp"];
  const scenarios = list(values.scenarios) ?? (smoke ? ["b", "client"] : every);
  for (const id of scenarios) if (!every.includes(id)) throw new Error(`--scenarios: unknown scenario ${id}`);
  const clients = list(values.clients) ?? (smoke ? ["b"] : CLIENT_SCENARIOS.map((s) => s.id));
  for (const id of clients)
    if (!CLIENT_SCENARIOS.some((s) => s.id === id)) throw new Error(`--clients: unknown client scenario ${id}`);
  return {
    duration: number("duration", values.duration, smoke ? 0.6 : 3, 0.1),
    warmup: number("warmup", values.warmup, smoke ? 0.2 : 1, 0),
    reps: Math.floor(number("reps", values.reps, smoke ? 1 : 3, 1)),
    scenarios,
    clients,
    servers: list(values.servers) ?? (smoke ? ["c", "node"] : undefined),
    pins,
    floodBytes: number("flood-mb", values["flood-mb"], 200, 1) * 1e6,
    idleConnections: Math.floor(number("idle-conns", values["idle-conns"], 10_000, 1)),
    json: values.json === undefined ? undefined : resolve(values.json),
    svg: resolve(values.svg ?? join(RESULTS_DIR, "bench.svg")),
    smoke,
  };
}

// --- running ------------------------------------------------------------------

const SERVER_START_MS = 30_000;
/** Cores: the server gets core 1, the load generator (or client) core 0. */
const pinTo = (pin: Pin, core: number) => (pin === "pinned" ? ["taskset", "-c", String(core)] : []);

interface Context {
  readonly settings: Settings;
  readonly loadgen: string;
  readonly measurements: Measurement[];
  readonly log: (text: string) => void;
}

function hardTimeout(settings: Settings, scenario?: Scenario): number {
  if (scenario?.id === "e") return 180_000;
  if (scenario?.id === "f") return 240_000;
  return (settings.duration + settings.warmup) * 1000 + 60_000;
}

interface Started {
  readonly process: ManagedProcess;
  /** The first stdout line, parsed as JSON. */
  readonly hello: Record<string, unknown>;
}

/**
 * Starts a server for one pass (killed with its group after `lifetimeMs`) and
 * waits for its first stdout line, JSON. Its stdin stays an open pipe: the peers
 * exit when it closes, so even a bench killed with SIGKILL leaves nothing behind.
 */
async function start(argv: readonly string[], lifetimeMs: number): Promise<Started> {
  const [file, ...args] = argv as [string, ...string[]];
  const server = spawnWithLines(file, args, { cwd: ROOT, timeoutMs: lifetimeMs, stdin: "pipe" });
  try {
    const first = await server.line(() => true, SERVER_START_MS);
    let hello: Record<string, unknown>;
    try {
      hello = JSON.parse(first) as Record<string, unknown>;
    } catch {
      throw new Error(`${server.label}: first line is not JSON: ${first}`);
    }
    // A server that cannot run here says why (the io_uring one, where the kernel forbids io_uring).
    if (typeof hello.error === "string") throw new Error(hello.error);
    return { process: server, hello };
  } catch (error) {
    await server.kill();
    throw error;
  }
}

/** Runs `argv` to completion, killing its process group after `timeoutMs`. */
async function run(argv: readonly string[], timeoutMs: number) {
  const [file, ...args] = argv as [string, ...string[]];
  const finished = await runManaged(file, args, { cwd: ROOT, timeoutMs });
  return { ...finished, stdout: finished.stdout.toString() };
}

/** Starts `server`, runs one loadgen pass, stops the server; never throws. */
async function measureServer(context: Context, server: Server, scenario: Scenario, pin: Pin, rep: number) {
  const { settings } = context;
  let failure: string | undefined;
  let result: Record<string, number> | undefined;
  let started: Started | undefined;
  try {
    started = await start([...pinTo(pin, 1), ...server.command], hardTimeout(settings, scenario) + 2 * SERVER_START_MS);
    // `serve --workers` announces no pid (it has several): the supervisor's stands in, read only for memory.
    const { port, pid = started.process.pid } = started.hello as { port: number; pid?: number };
    const args = [
      ...pinTo(pin, 0),
      context.loadgen,
      ...scenario.args,
      "--port",
      String(port),
      "--pid",
      String(pid),
      "--duration",
      String(settings.duration),
      "--warmup",
      String(settings.warmup),
    ];
    const finished = await run(args, hardTimeout(settings, scenario));
    result = parseLoadgen(finished.stdout) as Record<string, number> | undefined;
    if (finished.timedOut) failure = "hard timeout";
    else if (!result) failure = `load generator failed (${finished.code}): ${finished.stderr.trim()}`;
    else if ("error" in result) failure = String(result.error);
    // A server that changes bytes gets no figure: correctness is never traded for speed.
    else if (result.wrong_bytes) failure = `${result.wrong_bytes} wrong bytes echoed`;
    if (started.process.exit)
      failure ??= `the server died: ${started.process.stderrTail().split("\n").slice(-3).join(" | ")}`;
  } catch (error) {
    failure = (error as Error).message;
  } finally {
    await started?.process.kill();
  }
  const measurement: Measurement = {
    group: scenario.id,
    pin,
    rep,
    target: server.id,
    value: result && !failure ? scenario.value(result) : Number.NaN,
    ...(result && scenario.id !== "c" && (result.rtt_us as unknown as { count: number })?.count
      ? {
          rttP50us: (result.rtt_us as unknown as { p50: number }).p50,
          rttP99us: (result.rtt_us as unknown as { p99: number }).p99,
        }
      : {}),
    ...(result && scenario.id === "e"
      ? { stallMB: (result.written_before_stall ?? Number.NaN) / 1e6, stalled: Boolean(result.stalled) }
      : {}),
    errors: result?.errors ?? 0,
    wrongBytes: result?.wrong_bytes ?? 0,
    ...(failure ? { failure } : {}),
  };
  const first = (result as { first_error?: string } | undefined)?.first_error;
  context.measurements.push(measurement);
  context.log(
    `  ${scenario.id} ${pin.padEnd(8)} rep ${rep} ${server.id.padEnd(18)} ${fmt(measurement.value)} ${scenario.unit}` +
      (measurement.rttP50us !== undefined ? ` p50 ${fmt(measurement.rttP50us, 1)} us` : "") +
      (measurement.errors ? ` errors ${measurement.errors}` : "") +
      (measurement.wrongBytes ? ` WRONG BYTES ${measurement.wrongBytes}` : "") +
      (first ? ` (${first})` : "") +
      (failure ? ` FAILED: ${failure.split("\n")[0]}` : ""),
  );
}

/** Churn leaves TIME_WAIT behind; each client run dials its own loopback address (127.0.0.10-209) so no run inherits another's. */
let clientRuns = 0;

/** A client (our `load` command or a hand-written one; the C load generator when undefined) against a fresh C server. */
async function measureClient(
  context: Context,
  echoServer: string,
  scenario: ClientScenario,
  client: Client | undefined,
  pin: Pin,
  rep: number,
) {
  const { settings } = context;
  const target = client?.id ?? "c-loadgen";
  const host = `127.0.0.${10 + (clientRuns++ % 200)}`;
  let failure: string | undefined;
  let value = Number.NaN;
  let errors = 0;
  let wrongBytes = 0;
  let firstError: string | undefined;
  let rttP50us: number | undefined;
  let rttP99us: number | undefined;
  let server: Started | undefined;
  try {
    server = await start([...pinTo(pin, 1), echoServer, "--host", host], hardTimeout(settings) + 3 * SERVER_START_MS);
    const where = ["--host", host, "--port", String(server.hello.port)];
    const timing = ["--duration", String(settings.duration), "--warmup", String(settings.warmup)];
    const command = [
      ...pinTo(pin, 0),
      ...(client?.command ?? [context.loadgen]),
      ...where,
      ...clientArgs(client, scenario),
      ...timing,
    ];
    const finished = await run(command, hardTimeout(settings) + SERVER_START_MS);
    const result = parseLoadgen(finished.stdout);
    if (finished.timedOut) failure = "hard timeout";
    else if (!result)
      failure = `client failed (${finished.code}): ${finished.stderr.trim().split("\n").slice(-3).join(" | ")}`;
    else if (client?.kind === "client") {
      // The `load` command's summary (see LoadReport in core's _load.ts).
      const report = result as {
        messagesPerSecond: number;
        megabytesPerSecond: number;
        latencyMs: { p50: number; p99: number } | null;
        connectionsFailed: number;
        errors: Record<string, number>;
        firstError?: string;
      };
      value = scenario.unit === "MB/s" ? report.megabytesPerSecond : report.messagesPerSecond;
      errors = report.connectionsFailed;
      wrongBytes = report.errors.EPROTO ?? 0;
      firstError = report.firstError;
      if (report.latencyMs && scenario.id !== "c") {
        rttP50us = report.latencyMs.p50 * 1000;
        rttP99us = report.latencyMs.p99 * 1000;
      }
      if (finished.code !== 0) failure = `load exited ${finished.code}: ${firstError ?? finished.stderr.trim()}`;
    } else {
      // The C load generator's JSON line, which the hand-written clients print too.
      const r = result as Record<string, number> & { rtt_us?: { count: number; p50: number; p99: number } };
      value = (scenario.unit === "MB/s" ? r.mb_per_s : r.msgs_per_s) as number;
      errors = r.errors ?? 0;
      wrongBytes = r.wrong_bytes ?? 0;
      if (r.rtt_us?.count && scenario.id !== "c") {
        rttP50us = r.rtt_us.p50;
        rttP99us = r.rtt_us.p99;
      }
      if ("error" in r) failure = String(r.error);
      else if (wrongBytes) failure = `${wrongBytes} wrong bytes echoed`;
    }
  } catch (error) {
    failure = (error as Error).message;
  } finally {
    await server?.process.kill();
  }
  const measurement: Measurement = {
    group: `client-${scenario.id}`,
    pin,
    rep,
    target,
    value: failure ? Number.NaN : value,
    ...(rttP50us !== undefined ? { rttP50us, rttP99us } : {}),
    errors,
    wrongBytes,
    ...(failure ? { failure } : {}),
  };
  context.measurements.push(measurement);
  context.log(
    `  client-${scenario.id} ${pin.padEnd(8)} rep ${rep} ${target.padEnd(18)} ${fmt(measurement.value)} ${scenario.unit}` +
      (rttP50us !== undefined ? ` p50 ${fmt(rttP50us, 1)} us` : "") +
      (errors ? ` errors ${errors}${firstError ? ` (${firstError})` : ""}` : "") +
      (failure ? ` FAILED: ${failure.split("\n")[0]}` : ""),
  );
}

// --- main -----------------------------------------------------------------------

async function main(): Promise<number> {
  let settings: Settings;
  try {
    settings = parseSettings(process.argv.slice(2));
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const log = (text: string) => console.log(text);
  const machine = describeMachine();
  const native = buildNative();
  const runtimes = detectRuntimes();
  const pinning = canPin();
  const pins = settings.pins.filter((pin) => pin === "unpinned" || pinning);
  if (pins.length < settings.pins.length) log("note: taskset cannot pin to two cores here; pinned runs are skipped");

  const servers = [...listServers(runtimes, native), ...listWorkerServers(runtimes)].filter(
    (s) => !settings.servers || settings.servers.includes(s.id),
  );
  const udpServers = settings.scenarios.includes("udp")
    ? listUdpServers(runtimes, native.udpEchoServer).filter((s) => !settings.servers || settings.servers.includes(s.id))
    : [];
  const clients = settings.scenarios.includes("client")
    ? listClients(runtimes).filter(
        (c) => !settings.servers || settings.servers.includes(c.runtime) || settings.servers.includes(c.id),
      )
    : [];
  const scenarios = listScenarios({
    floodBytes: settings.floodBytes,
    idleConnections: settings.idleConnections,
  }).filter((s) => settings.scenarios.includes(s.id));
  const clientScenarios = settings.scenarios.includes("client")
    ? CLIENT_SCENARIOS.filter((s) => settings.clients.includes(s.id))
    : [];
  const context: Context = { settings, loadgen: native.loadgen, measurements: [], log };

  // Only what this run measures is probed: a client-only run starts no server peers.
  await preflight(context, native.echoServer, scenarios.length ? servers : [], clients);
  const present = servers.filter((s) => !s.missing);
  const presentClients = clients.filter((c) => !c.missing);
  log(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, ${machine.kernel}; ${machine.cc}\n` +
      `runtimes: node ${runtimes.node.version}, bun ${runtimes.bun.version}, deno ${runtimes.deno.version}\n` +
      `servers: ${present.map((s) => s.id).join(", ")}` +
      (udpServers.length
        ? `\nudp servers: ${udpServers
            .filter((s) => !s.missing)
            .map((s) => s.id)
            .join(", ")}`
        : "") +
      [...servers, ...clients, ...udpServers]
        .filter((s) => s.missing)
        .map((s) => `\nmissing: ${s.id}: ${s.missing?.split("\n")[0]}`)
        .join(""),
  );

  const memoryPin: Pin = pins.includes("unpinned") ? "unpinned" : (pins[0] as Pin);
  for (const pin of pins) {
    for (const scenario of scenarios) {
      if (!scenario.timed && pin !== memoryPin) continue;
      log(`(${scenario.id}) ${scenario.title}, ${pin}`);
      const here = runningIn(present, scenario, pin);
      // Each repetition starts one server later (A B C, B C A, C A B): whatever a
      // run leaves behind (TIME_WAIT sockets, a warm page cache, a hot core) never
      // lands on the same server every time.
      for (let rep = 1; rep <= settings.reps; rep++)
        for (const server of rotate(here, rep - 1)) await measureServer(context, server, scenario, pin, rep);
    }
    for (const scenario of clientScenarios) {
      log(`(client-${scenario.id}) the clients against the C server: ${scenario.title}, ${pin}`);
      const runners = [undefined, ...presentClients.filter((c) => !c.onlyIn || c.onlyIn.includes(scenario.id))];
      for (let rep = 1; rep <= settings.reps; rep++)
        for (const client of rotate(runners, rep - 1))
          await measureClient(context, native.echoServer, scenario, client, pin, rep);
    }
  }

  const presentUdp = udpServers.filter((s) => !s.missing);
  for (const scenario of presentUdp.length ? UDP_SCENARIOS : []) {
    log(`(${scenario.id}) ${scenario.title}, unpinned`);
    for (let rep = 1; rep <= settings.reps; rep++)
      for (const server of rotate(presentUdp, rep - 1)) {
        const measurement = await measureUdp(server, native.udpLoadgen, scenario, settings, rep);
        context.measurements.push(measurement);
        log(
          `  ${scenario.id} unpinned rep ${rep} ${server.id.padEnd(18)} ${fmt(measurement.value)} ${scenario.unit}` +
            (measurement.rttP50us !== undefined ? ` p50 ${fmt(measurement.rttP50us, 1)} us` : "") +
            (measurement.lostPercent !== undefined ? ` lost ${fmt(measurement.lostPercent, 2)} %` : "") +
            (measurement.wrongBytes ? ` WRONG ANSWERS ${measurement.wrongBytes}` : "") +
            (measurement.failure ? ` FAILED: ${measurement.failure.split("\n")[0]}` : ""),
        );
      }
  }

  // --- report ---
  const subjects = subjectsOf(present);
  const clientSubjects: Subject[] = [
    { id: "c-loadgen", label: "C load generator", runtime: "c", kind: "reference" },
    ...presentClients.map((c) => ({ id: c.id, label: c.label, runtime: c.runtime, kind: c.kind })),
  ];
  const rows: Row[] = [];
  const blocks: string[] = [];
  for (const pin of pins) {
    for (const scenario of scenarios) {
      const summary = summarize(
        context.measurements,
        subjects,
        scenario.id,
        pin,
        "c",
        scenario.better,
        scenario.id !== "e",
      );
      if (!summary.length) continue;
      rows.push(...summary);
      blocks.push(table(`(${scenario.id}) ${scenario.title} [${pin}]`, scenario.unit, summary));
    }
    for (const scenario of clientScenarios) {
      const group = `client-${scenario.id}`;
      const summary = summarize(context.measurements, clientSubjects, group, pin, "c-loadgen", "higher", true);
      if (!summary.length) continue;
      rows.push(...summary);
      blocks.push(
        table(
          `(${group}) ${scenario.title}, tcp-echo load vs the C load generator and the hand-written client (x native) [${pin}]`,
          scenario.unit,
          summary,
        ),
      );
    }
  }
  const udpSubjects = subjectsOf(presentUdp);
  const udpRows = UDP_SCENARIOS.flatMap((scenario) =>
    summarize(context.measurements, udpSubjects, scenario.id, "unpinned", "c", "higher", true),
  );
  for (const scenario of UDP_SCENARIOS) {
    const summary = udpRows.filter((row) => row.group === scenario.id);
    if (summary.length) blocks.push(table(`(${scenario.id}) ${scenario.title} [unpinned]`, scenario.unit, summary));
  }
  const goals = evaluateGoals(rows, scenarios);
  log(`\nratios are medians of per-repetition ratios; >1 is better in every ratio column\n\n${blocks.join("\n\n")}`);
  const workers = workerLines(rows, subjects, Object.fromEntries(scenarios.map((s) => [s.id, s.unit])));
  if (workers.length)
    log(
      `\nserve --workers N against --workers 1, same run, unpinned (on ${machine.cores} cores the load generator shares them):\n${workers.join("\n")}`,
    );
  if (goals.length) {
    log(`\ngoals (issue 16):\n${goalLines(goals)}`);
    const met = goals.filter((g) => g.met).length;
    log(`\ngoals as the bench README's table (${met} of ${goals.length} met):\n${goalsTable(goals)}`);
  }

  const missing = [...servers, ...clients, ...udpServers]
    .filter((s) => s.missing)
    .map((s) => ({ id: s.id, reason: s.missing }));
  const versions = { node: runtimes.node.version, bun: runtimes.bun.version, deno: runtimes.deno.version };
  const meta = { date: new Date().toISOString(), machine, versions, pinned: pins.includes("pinned"), settings };
  if (settings.json) {
    mkdirSync(dirname(settings.json), { recursive: true });
    writeFileSync(
      settings.json,
      `${JSON.stringify({ ...meta, missing, rows: [...rows, ...udpRows], goals, measurements: context.measurements }, null, 2)}\n`,
    );
    log(`json: ${settings.json}`);
  }
  mkdirSync(dirname(settings.svg), { recursive: true });
  // The chart keeps one bar per server in every group; the workers rows have their own lines above.
  const charted = subjects.filter((s) => s.kind !== "workers");
  writeFileSync(
    settings.svg,
    chart(
      rows.filter((row) => charted.some((s) => s.id === row.target)),
      scenarios,
      charted,
      meta,
    ),
  );
  log(`chart: ${settings.svg}`);

  const wrong = context.measurements.reduce((sum, m) => sum + m.wrongBytes, 0);
  const failed = context.measurements.filter((m) => m.failure);
  if (wrong > 0) log(`FAILED: the load generators saw ${wrong} wrong bytes (UDP: wrong answers)`);
  if (failed.length) log(`FAILED: ${failed.length} runs failed`);
  return wrong > 0 || failed.length ? 1 : 0;
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = items.length ? by % items.length : 0;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** A short echo through every server and client first: a runtime that cannot run is reported missing, not measured. */
async function preflight(context: Context, echoServer: string, servers: Server[], clients: Client[]): Promise<void> {
  const probe: Settings = { ...context.settings, duration: 0.2, warmup: 0 };
  const quiet: Context = { ...context, settings: probe, measurements: [], log: () => {} };
  const [scenario] = listScenarios({ floodBytes: 1, idleConnections: 1 });
  for (const server of servers.filter((s) => !s.missing)) {
    await measureServer(quiet, server, scenario as Scenario, "unpinned", 0);
    const outcome = quiet.measurements.pop();
    if (outcome?.failure || !outcome?.value) server.missing = `does not run: ${outcome?.failure ?? "no echo"}`;
  }
  const shape = CLIENT_SCENARIOS.find((s) => s.id === "b") as ClientScenario;
  for (const client of clients.filter((c) => !c.missing)) {
    await measureClient(quiet, echoServer, shape, client, "unpinned", 0);
    const outcome = quiet.measurements.pop();
    if (outcome?.failure || !outcome?.value) client.missing = `does not run: ${outcome?.failure ?? "no echo"}`;
  }
}

function goalLines(goals: Goal[]): string {
  return goals
    .map(
      (g) =>
        `  ${g.met ? "met    " : "MISSED "} ${g.target.padEnd(11)} ${g.pin.padEnd(8)} ${g.goal.padEnd(44)} measured ${g.measured}`,
    )
    .join("\n");
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(`bench: ${(error as Error).stack ?? error}`);
} finally {
  killAll();
}
process.exit(code);
