/**
 * The pure half of the bench's rows: which servers run where (the workers rows
 * only in (b) and (d), unpinned), the `--workers 2` / `--workers 1` ratio taken
 * within each repetition, and the UDP loss column. No process is started.
 */

import { describe, expect, test } from "vitest";
import { type Measurement, type Subject, summarize, workerLines } from "../src/report.ts";
import { listScenarios, listWorkerServers, type Runtime, runningIn, type Server } from "../src/targets.ts";

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
