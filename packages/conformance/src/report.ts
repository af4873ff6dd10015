/** The matrix as text: the servers x clients table (plain or Markdown), and the per-case breakdown. */

import { FAULT_CASES } from "./fault-cells.ts";
import { CASES } from "./plan.ts";
import {
  type CellResult,
  casePassed,
  cellKey,
  checked,
  isCatch,
  type MatrixResult,
  type Participant,
} from "./planning.ts";
import type { GridTransport } from "./transports.ts";
import { renderUdpLegend } from "./udp.ts";

/** A cell still to run (`done` undefined) or running, for the live table. */
export interface LiveCell {
  readonly total: number;
  done?: { passed: number; failed: number };
}

/** What a cell shows: passed/total and the failing cases by name; progress while it runs. */
export function cellText(cell: CellResult | undefined, live?: LiveCell): string {
  if (!cell) {
    if (!live) return "n/a";
    if (!live.done) return "·";
    const { passed, failed } = live.done;
    return `… ${passed}/${live.total}${failed ? ` ✗${failed}` : ""}`;
  }
  const cases = checked(cell.cases);
  const passed = cases.filter((r) => r.ok).length;
  const failed = cases.filter((r) => !casePassed(r)).map((r) => r.case);
  const known = cases.filter((r) => r.knownGap && casePassed(r)).map((r) => r.case);
  const unchecked = cell.cases.filter((r) => r.notApplicable).map((r) => r.case);
  const count = `${passed}/${cases.length}`;
  const gaps =
    (known.length ? ` (known gap: ${known.join(", ")})` : "") +
    (unchecked.length ? ` (n/a: ${unchecked.join(", ")})` : "");
  switch (cell.status) {
    case "pass":
      return `✓ ${count}${gaps}`;
    case "fail":
      return `✗ ${count} ${failed.join(", ")}${gaps}`;
    case "expected-fail":
      // Short, so the table fits a terminal: which cases caught it is listed under the table.
      return `✓ caught ${failed.length}/${cases.length}`;
    case "unexpected-pass":
      return "✗ UNEXPECTED PASS (broken server not caught)";
    case "not-available":
      return (cell.note ?? "not available").split(":")[0] as string;
  }
}

export interface TableInput {
  readonly transports: readonly GridTransport[];
  readonly servers: readonly Participant[];
  readonly clients: readonly Participant[];
  readonly cells: readonly CellResult[];
  /** `--via`: each row is named `SERVER via BALANCER`. */
  readonly via?: string;
}

/**
 * The servers x clients table, one grid per transport (headed by its name when
 * the run is not plain tcp4); `live` (keyed by `cellKey`) marks cells still to run.
 */
export function renderTable(
  input: TableInput,
  format: "text" | "markdown",
  live?: ReadonlyMap<string, LiveCell>,
): string {
  const headed = input.transports.length > 1 || input.transports[0] !== "tcp4";
  return input.transports
    .map((transport) => {
      const has = (server: string, client: string) =>
        live?.has(cellKey(transport, server, client)) ||
        input.cells.some((c) => c.transport === transport && c.server === server && c.client === client);
      const servers = input.servers.filter((server) => input.clients.some((client) => has(server.name, client.name)));
      const clients = input.clients.filter((client) => servers.some((server) => has(server.name, client.name)));
      const grid = renderGrid(transport, servers, clients, input.cells, format, live, input.via);
      const title = format === "markdown" ? `**${transport}**` : `${transport}:`;
      return headed ? `${title}\n\n${grid}` : grid;
    })
    .join("\n\n");
}

function renderGrid(
  transport: GridTransport,
  servers: readonly Participant[],
  clients: readonly Participant[],
  cells: readonly CellResult[],
  format: "text" | "markdown",
  live?: ReadonlyMap<string, LiveCell>,
  via?: string,
): string {
  const header = ["server \\ client", ...clients.map((client) => client.name)];
  const rows = servers.map((server) => [
    via ? `${server.name} via ${via}` : server.name,
    ...clients.map((client) => {
      const cell = cells.find((c) => c.transport === transport && c.server === server.name && c.client === client.name);
      return cellText(cell, live?.get(cellKey(transport, server.name, client.name)));
    }),
  ]);
  if (format === "markdown") {
    const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
    return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
  }
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** Failing cells case by case, what caught the negative control, and what could not run. */
export function renderDetails(result: MatrixResult): string {
  const out: string[] = [];
  const failing = result.cells.filter((cell) => cell.status === "fail" || cell.status === "unexpected-pass");
  if (failing.length > 0) {
    out.push("Failures:");
    for (const cell of failing) {
      out.push(`  ${cell.server} server x ${cell.client} client${over(result, cell)}:`);
      for (const r of cell.cases) {
        if (r.notApplicable) {
          out.push(`    - ${r.case}: n/a: ${r.notApplicable}`);
          continue;
        }
        const problem = r.gapBroken ?? (r.ok ? undefined : (r.failure ?? "failed"));
        out.push(`    ${casePassed(r) ? "✓" : "✗"} ${r.case}${problem ? `: ${problem}` : ""}`);
      }
    }
  }
  const caught = result.cells.filter((cell) => cell.status === "expected-fail");
  if (caught.length > 0) {
    out.push("Negative control (expected to fail; each column must catch it):");
    for (const cell of caught) {
      const first = cell.cases.find(isCatch);
      out.push(`  x ${cell.client}${over(result, cell)}: ${first?.case}: ${first?.failure}`);
    }
  }
  const gaps = result.cells.flatMap((cell) => cell.cases.filter((r) => r.knownGap).map((r) => ({ cell, r })));
  if (gaps.length > 0) {
    out.push("Known gaps (runtime bugs; failing as recorded does not fail the run):");
    for (const { cell, r } of gaps) {
      const outcome = [r.gapBroken, r.ok ? undefined : `failed: ${r.failure}`].filter(Boolean).join("; ");
      out.push(`  ${cell.server} server x ${cell.client} client${over(result, cell)}: ${r.case} ${outcome}`);
      out.push(`    why: ${r.knownGap}`);
    }
  }
  const unchecked = result.cells.flatMap((cell) => cell.cases.filter((r) => r.notApplicable).map((r) => ({ cell, r })));
  if (unchecked.length > 0) {
    out.push("Not applicable (could not be checked on that server; never counted as passed):");
    for (const { cell, r } of unchecked) {
      out.push(`  ${cell.server} server x ${cell.client} client${over(result, cell)}: ${r.case}: ${r.notApplicable}`);
    }
  }
  const missing = [...result.servers, ...result.clients].filter((p) => p.missing);
  if (missing.length > 0) {
    out.push("Not run:");
    for (const p of missing) out.push(`  ${p.name}: ${p.missing}`);
  }
  return out.join("\n");
}

/** " over tls", when the run has more than tcp4. */
function over(result: MatrixResult, cell: CellResult): string {
  return result.transports.length > 1 || cell.transport !== "tcp4" ? ` over ${cell.transport}` : "";
}

/** Which cases run in which kind of cell, so a reader knows why a count is 4 and not 12. */
export function renderLegend(
  mode: MatrixResult["mode"] = "conformance",
  transports: MatrixResult["transports"] = ["tcp4"],
): string {
  if (transports.includes("udp")) return renderUdpLegend();
  if (mode === "faults") {
    return [
      "each cell: 4 MiB with half-close through a fault-injecting proxy per fault, all at once (@tcp-echo/faults)",
      ...FAULT_CASES.map((spec) => `  ${spec.name}: ${spec.proves}`),
    ].join("\n");
  }
  const who = (players: string) => CASES.filter((spec) => spec.players === players).map((spec) => spec.name);
  return [
    `our clients (driver, EchoConnection API): ${[...who("pipe"), ...who("api")].join(", ")}; (their CLI): ${who("cli").join(", ")}`,
    `peer clients (byte pipes): ${who("pipe").join(", ")}; n/a: ${[...who("api"), ...who("cli")].join(", ")}`,
    `harness column (server-only, raw node:net client, /proc): ${who("harness").join(", ")} (${CASES.filter(
      (spec) => spec.players === "harness" && spec.rows === "ours",
    )
      .map((spec) => spec.name)
      .join(", ")}: our servers only)`,
    'control row: the broken server must fail in every column ("✓ caught N/M": N cases caught it); client-detection must pass',
    "client-only row: errors (refused port, bad ports, a resetting server, echo after close); graceful-close (servers that count what arrived, or never read); client-timeouts (each CLI against a silent and a never-closing server)",
  ].join("\n");
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds >= 60 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s` : `${seconds} s`;
}
