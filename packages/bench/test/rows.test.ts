/**
 * The pure half of the bench's rows: which servers run where (the workers rows
 * only in (b) and (d), unpinned), the `--workers 2` / `--workers 1` ratio taken
 * within each repetition, the UDP loss column, and the client rows (our `load`
 * beside each runtime's hand-written client, and the ratio between them). No
 * process is started.
 */

import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { PEERS_DIR } from "../src/paths.ts";
import {
  evaluateGoals,
  goalsTable,
  type Measurement,
  type Subject,
  summarize,
  table,
  workerLines,
} from "../src/report.ts";
import {
  CLIENT_SCENARIOS,
  clientArgs,
  listClients,
  listScenarios,
  listWorkerServers,
  type Runtime,
  runningIn,
  type Server,
} from "../src/targets.ts";

const scenarios = listScenarios({ floodBytes: 1, idleConnections: 1 });
const scenario = (id: string) => scenarios.find((s) => s.id === id) as (typeof scenarios)[number];

const runtime = (name: "node" | "bun" | "deno"): Runtime => ({
  name,
  command: (script) => [name, script],
  missing: undefined,
  version: "0",
  packageEntry: "/nonexistent",
  cli: [name, "cli.ts"],
  workersCli: [name, "--unstable-net", "cli.ts"],
});

describe("workers rows", () => {
  const workers = listWorkerServers({ node: runtime("node"), bun: runtime("bun"), deno: runtime("deno") });
  const library: Server = {
    id: "node",
    label: "node",
    runtime: "node",
    kind: "ours",
    command: [],
    missing: undefined,
  };

  test("serve --workers 1 and 2 on each runtime, the 2-worker row read against its own runtime's 1-worker row", () => {
    expect(workers.map((s) => [s.id, s.oneWorker])).toEqual([
      ["node-workers-1", undefined],
      ["node-workers-2", "node-workers-1"],
      ["bun-workers-1", undefined],
      ["bun-workers-2", "bun-workers-1"],
      ["deno-workers-1", undefined],
      ["deno-workers-2", "deno-workers-1"],
    ]);
    expect(workers.find((s) => s.id === "bun-workers-2")?.command.slice(-6)).toEqual([
      "serve",
      "--port",
      "0",
      "--json",
      "--workers",
      "2",
    ]);
  });

  test("they run in (b) and (d) unpinned only; every other server runs everywhere", () => {
    const all = [library, ...workers];
    for (const id of ["a", "c", "e", "f"]) expect(runningIn(all, scenario(id), "unpinned")).toEqual([library]);
    for (const id of ["b", "d"]) {
      expect(runningIn(all, scenario(id), "unpinned")).toEqual(all);
      expect(runningIn(all, scenario(id), "pinned")).toEqual([library]);
    }
  });
});

const measurement = (group: string, target: string, rep: number, value: number, extra = {}): Measurement => ({
  group,
  pin: "unpinned",
  rep,
  target,
  value,
  errors: 0,
  wrongBytes: 0,
  ...extra,
});

describe("the ratio to one worker", () => {
  const subjects: Subject[] = [
    { id: "c", label: "C epoll", runtime: "c", kind: "limit" },
    { id: "node-workers-1", label: "node: serve --workers 1", runtime: "node", kind: "workers" },
    {
      id: "node-workers-2",
      label: "node: serve --workers 2",
      runtime: "node",
      kind: "workers",
      oneWorker: "node-workers-1",
    },
  ];
  // Repetition 2 runs on a machine twice as busy: per-repetition ratios cancel that drift.
  const measurements = [
    measurement("b", "c", 1, 1000),
    measurement("b", "node-workers-1", 1, 400),
    measurement("b", "node-workers-2", 1, 600),
    measurement("b", "c", 2, 500),
    measurement("b", "node-workers-1", 2, 200),
    measurement("b", "node-workers-2", 2, 260),
    measurement("b", "c", 3, 1000),
    measurement("b", "node-workers-1", 3, 400),
    measurement("b", "node-workers-2", 3, Number.NaN, { failure: "the server died" }),
  ];
  const rows = summarize(measurements, subjects, "b", "unpinned", "c", "higher", true);

  test("is the median of per-repetition ratios, a failed repetition left out, and only on the N-worker row", () => {
    const [c, one, two] = rows;
    expect(c?.vsOneWorker).toBeUndefined();
    expect(one?.vsOneWorker).toBeUndefined();
    // Repetitions 1 and 2: 1.5 and 1.3 (repetition 3 failed); a ratio of medians would say 430/400.
    expect(two?.vsOneWorker).toBeCloseTo(1.4, 10);
    expect(two?.failures).toEqual(["the server died"]);
  });

  test("is printed with both medians, once per N-worker row", () => {
    expect(workerLines(rows, subjects, { b: "msg/s" })).toEqual([
      "  (b) node: serve --workers 2     1.40x serve --workers 1 (430 vs 400 msg/s, unpinned)",
    ]);
  });
});

test("UDP rows: the median share lost, beside the ratio to the C server", () => {
  const subjects: Subject[] = [
    { id: "c", label: "C recvmmsg/sendmmsg", runtime: "c", kind: "limit" },
    { id: "bun", label: "bun: udp", runtime: "bun", kind: "ours" },
  ];
  const rows = summarize(
    [
      measurement("udp-flood", "c", 1, 100_000, { lostPercent: 0 }),
      measurement("udp-flood", "bun", 1, 40_000, { lostPercent: 0.5 }),
      measurement("udp-flood", "c", 2, 80_000, { lostPercent: 0 }),
      measurement("udp-flood", "bun", 2, 40_000, { lostPercent: 0.25 }),
      measurement("udp-flood", "c", 3, 100_000, { lostPercent: 0 }),
      measurement("udp-flood", "bun", 3, 30_000, { lostPercent: 1 }),
    ],
    subjects,
    "udp-flood",
    "unpinned",
    "c",
    "higher",
    true,
  );
  expect(rows.map((row) => [row.target, row.vsC, row.lostPercent])).toEqual([
    ["c", 1, 0],
    ["bun", 0.4, 0.5],
  ]);
});

describe("client rows", () => {
  const clients = listClients({ node: runtime("node"), bun: runtime("bun"), deno: runtime("deno") });

  test("each runtime has our load command, a hand-written client that speaks the C load generator's flags, and that client with a promise per message in (client-b)", () => {
    const promises = ["--promises", "1"];
    expect(clients.map((c) => [c.id, c.kind, c.command, c.onlyIn])).toEqual([
      ["node-client", "client", ["node", "cli.ts", "load"], undefined],
      ["node-native-client", "native", ["node", join(PEERS_DIR, "node-onread-load.ts")], undefined],
      ["node-promise-client", "floor", ["node", join(PEERS_DIR, "node-onread-load.ts"), ...promises], ["b"]],
      ["bun-client", "client", ["bun", "cli.ts", "load"], undefined],
      ["bun-native-client", "native", ["bun", join(PEERS_DIR, "bun-native-load.ts")], undefined],
      ["bun-promise-client", "floor", ["bun", join(PEERS_DIR, "bun-native-load.ts"), ...promises], ["b"]],
      ["deno-client", "client", ["deno", "cli.ts", "load"], undefined],
      ["deno-native-client", "native", ["deno", join(PEERS_DIR, "deno-native-load.ts")], undefined],
      ["deno-promise-client", "floor", ["deno", join(PEERS_DIR, "deno-native-load.ts"), ...promises], ["b"]],
    ]);
    const churn = CLIENT_SCENARIOS.find((s) => s.id === "d") as (typeof CLIENT_SCENARIOS)[number];
    const [ours, handWritten, floor] = clients;
    expect(clientArgs(floor, CLIENT_SCENARIOS[1] as (typeof CLIENT_SCENARIOS)[number])).toEqual(
      (CLIENT_SCENARIOS[1] as (typeof CLIENT_SCENARIOS)[number]).loadgen,
    );
    expect(clientArgs(ours, churn)).toEqual([...churn.load, "--json"]);
    expect(clientArgs(handWritten, churn)).toEqual(churn.loadgen);
    expect(clientArgs(undefined, churn)).toEqual(churn.loadgen);
  });

  test("client (e) is (b) through write()/read(): our load streams, the references run (b) as it is", () => {
    const byId = (id: string) => CLIENT_SCENARIOS.find((s) => s.id === id) as (typeof CLIENT_SCENARIOS)[number];
    const [ours, handWritten] = clients;
    const streamed = ["--mode", "stream", "--connections", "50", "--in-flight", "16", "--size", "64", "--json"];
    expect(clientArgs(ours, byId("e"))).toEqual(streamed);
    expect(clientArgs(handWritten, byId("e"))).toEqual(byId("b").loadgen);
    expect(clientArgs(undefined, byId("e"))).toEqual(byId("b").loadgen);
  });

  const subjects: Subject[] = [
    { id: "c-loadgen", label: "C load generator", runtime: "c", kind: "reference" },
    { id: "node-client", label: "node: tcp-echo load", runtime: "node", kind: "client" },
    { id: "node-native-client", label: "node: hand-written client", runtime: "node", kind: "native" },
    { id: "bun-client", label: "bun: tcp-echo load", runtime: "bun", kind: "client" },
    { id: "bun-native-client", label: "bun: hand-written client", runtime: "bun", kind: "native" },
    { id: "bun-promise-client", label: "bun: hand-written, a promise per message", runtime: "bun", kind: "floor" },
  ];
  // Repetition 2 is a machine twice as busy; repetition 3 lost the hand-written Node run.
  const measurements = [
    measurement("client-b", "c-loadgen", 1, 1000),
    measurement("client-b", "node-client", 1, 300),
    measurement("client-b", "node-native-client", 1, 600),
    measurement("client-b", "bun-client", 1, 900),
    measurement("client-b", "bun-native-client", 1, 100),
    measurement("client-b", "bun-promise-client", 1, 1800),
    measurement("client-b", "c-loadgen", 2, 500),
    measurement("client-b", "node-client", 2, 140),
    measurement("client-b", "node-native-client", 2, 200),
    measurement("client-b", "bun-client", 2, 450),
    measurement("client-b", "bun-native-client", 2, 50),
    measurement("client-b", "bun-promise-client", 2, 300),
    measurement("client-b", "c-loadgen", 3, 1000),
    measurement("client-b", "node-client", 3, 300),
    measurement("client-b", "node-native-client", 3, Number.NaN, { failure: "hard timeout" }),
    measurement("client-b", "bun-client", 3, 900),
    measurement("client-b", "bun-native-client", 3, 100),
    measurement("client-b", "bun-promise-client", 3, 1000),
  ];
  const rows = summarize(measurements, subjects, "client-b", "unpinned", "c-loadgen", "higher", true);

  test("ours / hand-written is the median of per-repetition ratios against the same runtime's hand-written client", () => {
    // Node: repetitions 1 and 2, 0.5 and 0.7 (3 failed); a ratio of medians would say 300/400.
    expect(rows.map((row) => [row.target, row.vsNative])).toEqual([
      ["c-loadgen", undefined],
      ["node-client", expect.closeTo(0.6, 10)],
      ["node-native-client", undefined],
      ["bun-client", 9],
      ["bun-native-client", undefined],
      ["bun-promise-client", undefined],
    ]);
    expect(rows.find((row) => row.target === "node-native-client")?.vsC).toBeCloseTo(0.5, 10);
  });

  test("ours / the promise floor is the median of per-repetition ratios to the same runtime's floor, in the notes of our rows only", () => {
    // Bun: 900/1800, 450/300, 900/1000 per repetition; the median is 0.9. Node has no floor row here.
    expect(rows.map((row) => [row.target, row.vsFloor])).toEqual([
      ["c-loadgen", undefined],
      ["node-client", undefined],
      ["node-native-client", undefined],
      ["bun-client", expect.closeTo(0.9, 10)],
      ["bun-native-client", undefined],
      ["bun-promise-client", undefined],
    ]);
    const lines = table("(client-b)", "msg/s", rows).split("\n");
    expect(lines.filter((line) => line.includes("the promise floor"))).toEqual([
      expect.stringMatching(/^bun: tcp-echo load .* 0\.90x the promise floor$/),
    ]);
  });

  test("the table shows it in the x native column, on our load rows only", () => {
    const [, header, ...lines] = table("(client-b)", "msg/s", rows).split("\n") as string[];
    const end = (header as string).indexOf("x native") + "x native".length;
    const column = (label: string) =>
      (lines.find((line) => line.startsWith(label)) as string).slice(end - "x native".length, end).trim();
    expect(subjects.map((s) => column(s.label))).toEqual(["", "0.60x", "", "9.00x", "", ""]);
  });

  test("client (e), small messages through write()/read(), is held to the small-message floors: 0.6x Node, 0.8x Bun", () => {
    const streamed = measurements.map((m) => ({ ...m, group: "client-e" }));
    const goals = evaluateGoals(summarize(streamed, subjects, "client-e", "unpinned", "c-loadgen", "higher", true), []);
    expect(goals.map((g) => [g.goal, g.target, g.measured, g.met])).toEqual([
      ["(client-e) >= 0.6x the C load generator", "node-client", "0.30x", false],
      ["(client-e) >= 0.8x the C load generator", "bun-client", "0.90x", true],
    ]);
  });
});

describe("the goals table (Markdown, as in the bench README)", () => {
  const goal = (goal: string, target: string, pin: "pinned" | "unpinned", measured: string, met: boolean) => ({
    goal,
    target,
    pin,
    measured,
    met,
  });

  test("a row per goal, pinned / unpinned per runtime, met in bold, floors named per runtime where they differ", () => {
    const text = goalsTable([
      goal("(b) >= 0.7x the C epoll server", "node", "pinned", "0.88x", true),
      goal("(b) >= 0.9x the C epoll server", "bun", "pinned", "0.96x", true),
      goal("(b) >= 0.9x the C epoll server", "deno", "pinned", "0.81x", false),
      goal("(b) >= 0.7x the C epoll server", "node", "unpinned", "0.69x", false),
      goal("(b) >= 0.9x the C epoll server", "bun", "unpinned", "0.82x", false),
      goal("(client-a) >= 0.9x the C load generator", "node-client", "pinned", "0.61x", false),
      goal("(e) peak RSS within 32 MB of idle", "bun", "unpinned", "+12.0 MB", true),
    ]);
    const lines = text.split("\n");
    expect(lines).toHaveLength(5);
    const cells = (line: string) => line.split("|").map((c) => c.trim());
    expect(cells(lines[0] as string)).toEqual(["", "goal (median of ratios)", "node", "bun", "deno", ""]);
    expect(cells(lines[2] as string)).toEqual([
      "",
      "(b) >= 0.7x (node), 0.9x (bun, deno) the C epoll server, pinned / unpinned",
      "**0.88** / 0.69",
      "**0.96** / 0.82",
      "0.81",
      "",
    ]);
    expect(cells(lines[3] as string)).toEqual(["", "(client-a) >= 0.9x the C load generator", "0.61", "-", "-", ""]);
    expect(cells(lines[4] as string)).toEqual(["", "(e) peak RSS within 32 MB of idle", "-", "**+12.0 MB**", "-", ""]);
    // Every line is as wide as the header: the table lines up as text too.
    for (const line of lines) expect(line.length).toBe((lines[0] as string).length);
  });
});
