/**
 * From measurements to what a reader needs: medians, per-repetition ratios
 * (each server against the C server, and ours against its runtime's best
 * hand-written and idiomatic servers; each client against the C load
 * generator, and our `load` against its runtime's hand-written client;
 * measured in the same repetition, so drift hits both), the goals of issue 16,
 * and the terminal table.
 */

import { median } from "@tcp-echo/core/tools";
import type { Scenario, Server, ServerKind } from "./targets.ts";

export type Pin = "pinned" | "unpinned";

export interface Measurement {
  /** A scenario id, or "client". */
  readonly group: string;
  readonly pin: Pin;
  readonly rep: number;
  /** A server id, a client id, or "c-loadgen" (the reference client). */
  readonly target: string;
  /** The scenario's figure; NaN when the run failed. */
  readonly value: number;
  readonly rttP50us?: number;
  readonly rttP99us?: number;
  /** Flood: bytes written before the client stalled, and whether it stalled at all. */
  readonly stallMB?: number;
  readonly stalled?: boolean;
  /** UDP: the share of datagrams sent that got no answer, in percent. */
  readonly lostPercent?: number;
  readonly errors: number;
  readonly wrongBytes: number;
  readonly failure?: string;
}

export interface Row {
  readonly group: string;
  readonly pin: Pin;
  readonly target: string;
  readonly label: string;
  readonly kind: ServerKind | "client" | "reference" | "floor";
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Median of per-repetition ratios to the C server (or the C load generator); >1 is better. */
  readonly vsC: number | undefined;
  /** Ours only: median of per-repetition ratios to the best idiomatic server on the same runtime; >1 is better. */
  readonly vsIdiomatic: number | undefined;
  /**
   * Ours only: median of per-repetition ratios to the hand-written native server on the same runtime (our
   * `load` client: to the hand-written client); >1 is better.
   */
  readonly vsNative: number | undefined;
  /** Our `load` client only: median of per-repetition ratios to the hand-written client with a promise per message; >1 is better. */
  readonly vsFloor: number | undefined;
  /** `--workers N` rows only: median of per-repetition ratios to the same runtime's `--workers 1` row; >1 is better. */
  readonly vsOneWorker: number | undefined;
  readonly rttP50us: number | undefined;
  readonly rttP99us: number | undefined;
  readonly stallMB: number | undefined;
  readonly stalled: boolean | undefined;
  readonly lostPercent: number | undefined;
  readonly errors: number;
  readonly wrongBytes: number;
  readonly failures: string[];
}

const finite = (values: number[]) => values.filter((value) => Number.isFinite(value));

function medianOf(values: number[]): number | undefined {
  const kept = finite(values);
  return kept.length ? median(kept) : undefined;
}

/** `x` against `reference` such that >1 always means better. */
function ratio(x: number, reference: number, better: "higher" | "lower"): number {
  return better === "higher" ? x / reference : reference / x;
}

export interface Subject {
  readonly id: string;
  readonly label: string;
  readonly runtime: string;
  readonly kind: Row["kind"];
  /** A `--workers N` subject: the id of its runtime's `--workers 1` subject. */
  readonly oneWorker?: string;
}

/**
 * Rows for one group and pin mode. `reference` is the C server (or C load
 * generator); `better` says which direction wins; `withRatios` is false where a
 * ratio means nothing (flood: the C server's growth is about zero).
 */
export function summarize(
  measurements: Measurement[],
  subjects: Subject[],
  group: string,
  pin: Pin,
  reference: string,
  better: "higher" | "lower",
  withRatios: boolean,
): Row[] {
  const mine = measurements.filter((m) => m.group === group && m.pin === pin);
  if (mine.length === 0) return [];
  const reps = [...new Set(mine.map((m) => m.rep))];
  const at = (target: string, rep: number) =>
    mine.find((m) => m.target === target && m.rep === rep)?.value ?? Number.NaN;
  return subjects
    .filter((subject) => mine.some((m) => m.target === subject.id))
    .map((subject) => {
      const runs = mine.filter((m) => m.target === subject.id);
      const values = finite(runs.map((m) => m.value));
      const vsC = withRatios
        ? medianOf(reps.map((rep) => ratio(at(subject.id, rep), at(reference, rep), better)))
        : undefined;
      /** Ours (our server, or our `load` client) against the best of `kind` on the same runtime, per repetition. */
      const against = (kind: Row["kind"]) => {
        const rivalsOf = subjects.filter((s) => s.kind === kind && s.runtime === subject.runtime);
        const ours = subject.kind === "ours" || subject.kind === "client";
        if (!withRatios || !ours || rivalsOf.length === 0) return undefined;
        return medianOf(
          reps.map((rep) => {
            const rivals = finite(rivalsOf.map((s) => at(s.id, rep)));
            if (rivals.length === 0) return Number.NaN;
            const best = better === "higher" ? Math.max(...rivals) : Math.min(...rivals);
            return ratio(at(subject.id, rep), best, better);
          }),
        );
      };
      const vsIdiomatic = against("idiomatic");
      const vsNative = against("native");
      const vsFloor = against("floor");
      const oneWorker = subject.oneWorker;
      const vsOneWorker =
        withRatios && oneWorker !== undefined
          ? medianOf(reps.map((rep) => ratio(at(subject.id, rep), at(oneWorker, rep), better)))
          : undefined;
      return {
        group,
        pin,
        target: subject.id,
        label: subject.label,
        kind: subject.kind,
        median: medianOf(values) ?? Number.NaN,
        min: values.length ? Math.min(...values) : Number.NaN,
        max: values.length ? Math.max(...values) : Number.NaN,
        vsC,
        vsIdiomatic,
        vsNative,
        vsFloor,
        vsOneWorker,
        rttP50us: medianOf(runs.map((m) => m.rttP50us ?? Number.NaN)),
        rttP99us: medianOf(runs.map((m) => m.rttP99us ?? Number.NaN)),
        stallMB: medianOf(runs.map((m) => m.stallMB ?? Number.NaN)),
        stalled: runs.some((m) => m.stalled !== undefined) ? runs.every((m) => m.stalled) : undefined,
        lostPercent: medianOf(runs.map((m) => m.lostPercent ?? Number.NaN)),
        errors: runs.reduce((sum, m) => sum + m.errors, 0),
        wrongBytes: runs.reduce((sum, m) => sum + m.wrongBytes, 0),
        failures: runs.flatMap((m) => (m.failure ? [m.failure] : [])),
      };
    });
}

export function subjectsOf(servers: Server[]): Subject[] {
  return servers.map((s) => ({
    id: s.id,
    label: s.label,
    runtime: s.runtime,
    kind: s.kind,
    ...(s.oneWorker ? { oneWorker: s.oneWorker } : {}),
  }));
}

// --- goals ------------------------------------------------------------------

export interface Goal {
  readonly goal: string;
  readonly target: string;
  readonly pin: Pin;
  readonly measured: string;
  readonly met: boolean | undefined;
}

/** Issue 16: each package against the C epoll server, by scenario and runtime. */
const AGAINST_C: Record<string, Record<string, number>> = {
  a: { node: 0.95, bun: 0.95, deno: 0.95 },
  b: { node: 0.7, bun: 0.9, deno: 0.9 },
  c: { node: 0.8, bun: 0.9, deno: 0.9 },
  d: { node: 0.9, bun: 0.9, deno: 0.9 },
};

/** Issue 16: each runtime's client (`load`) against the C load generator, by client scenario. */
const CLIENT_AGAINST_LOADGEN: Record<string, Record<string, number>> = {
  "client-a": { node: 0.9, bun: 0.9, deno: 0.9 },
  "client-b": { node: 0.6, bun: 0.8, deno: 0.8 },
  "client-c": { node: 0.8, bun: 0.8, deno: 0.8 },
  "client-d": { node: 0.9, bun: 0.9, deno: 0.9 },
  // Small messages through `write()`/`read()`: the issue's small-message floors.
  "client-e": { node: 0.6, bun: 0.8, deno: 0.8 },
};

/** The goals of issue 16 (and the flood bounds of issue 6), each with the figure measured in this run. */
export function evaluateGoals(rows: Row[], scenarios: Scenario[]): Goal[] {
  const goals: Goal[] = [];
  const versus = (row: Row, goal: string, value: number | undefined, floor: number) =>
    goals.push({
      goal,
      target: row.target,
      pin: row.pin,
      measured: value === undefined ? "failed" : `${value.toFixed(2)}x`,
      met: value === undefined ? false : value >= floor,
    });
  for (const row of rows.filter((r) => r.kind === "client")) {
    const runtime = row.target.replace(/-client$/, "");
    const floor = CLIENT_AGAINST_LOADGEN[row.group]?.[runtime];
    if (floor !== undefined) versus(row, `(${row.group}) >= ${floor}x the C load generator`, row.vsC, floor);
  }
  for (const row of rows.filter((r) => r.kind === "ours")) {
    const scenario = scenarios.find((s) => s.id === row.group);
    if (!scenario) continue;
    if (row.vsNative !== undefined) versus(row, `(${row.group}) >= 1.0x the hand-written server`, row.vsNative, 1);
    const floor = AGAINST_C[row.group]?.[row.target];
    if (floor !== undefined) versus(row, `(${row.group}) >= ${floor}x the C epoll server`, row.vsC, floor);
    if (row.group === "e") {
      goals.push({
        goal: "(e) client stalls within 16 MB",
        target: row.target,
        pin: row.pin,
        measured: row.stalled === false ? `never stalled (${fmt(row.stallMB)} MB)` : `${fmt(row.stallMB)} MB`,
        met: row.stalled === true && (row.stallMB ?? Number.POSITIVE_INFINITY) <= 16,
      });
      goals.push({
        goal: "(e) peak RSS within 32 MB of idle",
        target: row.target,
        pin: row.pin,
        measured: `+${fmt(row.median)} MB`,
        met: row.median <= 32,
      });
    }
  }
  return goals;
}

/**
 * The goals as the bench README's table (Markdown): a row per goal, a column
 * per runtime, "pinned / unpinned" in a cell, a met figure in bold. Goals that
 * differ only in their floor by runtime share a row that names each floor.
 */
export function goalsTable(goals: readonly Goal[]): string {
  const runtimes = ["node", "bun", "deno"];
  const rows = new Map<string, { floors: Map<string, string>; pins: Set<Pin>; cells: Map<string, Goal[]> }>();
  for (const goal of goals) {
    const key = goal.goal.replace(/>= [0-9.]+x /, ">= Nx ");
    const runtime = goal.target.replace(/-client$/, "");
    let row = rows.get(key);
    if (!row) {
      row = { floors: new Map(), pins: new Set(), cells: new Map() };
      rows.set(key, row);
    }
    const floor = /(>= [0-9.]+x) /.exec(goal.goal)?.[1];
    if (floor) row.floors.set(runtime, floor.slice(3));
    row.pins.add(goal.pin);
    row.cells.set(runtime, [...(row.cells.get(runtime) ?? []), goal]);
  }
  const lines = [...rows].map(([key, row]) => {
    const floors = [...new Set(row.floors.values())];
    const floorText =
      floors.length <= 1
        ? `${floors[0] ?? ""} `
        : `${floors.map((f) => `${f} (${runtimes.filter((r) => row.floors.get(r) === f).join(", ")})`).join(", ")} `;
    const label = `${key.replace(">= Nx ", `>= ${floorText}`)}${row.pins.size > 1 ? ", pinned / unpinned" : ""}`;
    const cells = runtimes.map((runtime) => {
      const ofRuntime = (row.cells.get(runtime) ?? []).sort((a, b) => a.pin.localeCompare(b.pin));
      if (!ofRuntime.length) return "-";
      return ofRuntime
        .map((g) => {
          const text = g.measured.replace(/x$/, "");
          return g.met ? `**${text}**` : text;
        })
        .join(" / ");
    });
    return [label, ...cells];
  });
  const header = ["goal (median of ratios)", ...runtimes];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] as string).length)));
  const render = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [render(header), render(widths.map((w) => "-".repeat(w))), ...lines.map(render)].join("\n");
}

// --- the terminal table -------------------------------------------------------

export function fmt(value: number | undefined, digits?: number): string {
  if (value === undefined || !Number.isFinite(value)) return "-";
  const places = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
}

const ratioText = (value: number | undefined) => (value === undefined ? "" : `${fmt(value, 2)}x`);

export function table(title: string, unit: string, rows: Row[]): string {
  const header = [
    "server",
    `median ${unit}`,
    "min-max",
    "x C",
    "x native",
    "x idiomatic",
    "p50 RTT us",
    "p99 RTT us",
    "notes",
  ];
  const lines = rows.map((row) => {
    const notes = [
      row.stallMB !== undefined ? `${row.stalled ? "stalled at" : "never stalled,"} ${fmt(row.stallMB)} MB` : "",
      row.lostPercent !== undefined ? `lost ${fmt(row.lostPercent, 2)} %` : "",
      row.vsOneWorker !== undefined ? `${ratioText(row.vsOneWorker)} the 1-worker row` : "",
      row.vsFloor !== undefined ? `${ratioText(row.vsFloor)} the promise floor` : "",
      row.errors ? `${row.errors} errors` : "",
      row.wrongBytes ? `${row.wrongBytes} WRONG BYTES` : "",
      row.failures.length ? `failed: ${row.failures[0]?.split("\n")[0]}` : "",
    ]
      .filter(Boolean)
      .join("; ");
    return [
      row.label,
      fmt(row.median),
      `${fmt(row.min)}-${fmt(row.max)}`,
      ratioText(row.vsC),
      ratioText(row.vsNative),
      ratioText(row.vsIdiomatic),
      fmt(row.rttP50us, 1),
      fmt(row.rttP99us, 1),
      notes,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] as string).length)));
  const render = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number),
      )
      .join("  ")
      .trimEnd();
  return [title, render(header), ...lines.map(render)].join("\n");
}

/**
 * `serve --workers N` against `--workers 1` on the same runtime, one line per
 * scenario and `--workers N` row: the median of per-repetition ratios, and both medians.
 */
export function workerLines(rows: Row[], subjects: Subject[], units: Record<string, string>): string[] {
  return rows.flatMap((row) => {
    const oneWorkerId = subjects.find((s) => s.id === row.target)?.oneWorker;
    const oneWorker = rows.find((r) => r.group === row.group && r.pin === row.pin && r.target === oneWorkerId);
    if (row.vsOneWorker === undefined || !oneWorker) return [];
    const unit = units[row.group] ?? "";
    return [
      `  (${row.group}) ${row.label.padEnd(26)} ${ratioText(row.vsOneWorker).padStart(6)} ${oneWorker.label.replace(/^\w+: /, "")}` +
        ` (${fmt(row.median)} vs ${fmt(oneWorker.median)} ${unit}, ${row.pin})`,
    ];
  });
}
