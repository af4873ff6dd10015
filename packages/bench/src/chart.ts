/**
 * The README's chart, as hand-written SVG: one group per scenario (and pin
 * mode), one bar per server. Each group has its own scale (the units differ);
 * a bar's label is its ratio to the C server where that means something, else
 * its value.
 */

import { fmt, type Row, type Subject } from "./report.ts";
import type { Scenario } from "./targets.ts";

const COLORS: Record<string, string> = {
  c: "#616161",
  "c-uring": "#9e9e9e",
  node: "#2e7d32",
  "node-native": "#66bb6a",
  "node-net": "#a5d6a7",
  bun: "#ef6c00",
  "bun-native": "#ffa726",
  "bun-net": "#ffcc80",
  deno: "#1565c0",
  "deno-native": "#42a5f5",
  "deno-net": "#90caf9",
  "deno-pipeto": "#4fc3f7",
};

const BAR = 16;
const GAP = 3;
const GROUP_PAD = 28;
const PLOT_TOP = 92;
const PLOT_HEIGHT = 220;

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

interface Meta {
  date: string;
  machine: { cpu: string; cores: number; memoryGB: number; kernel: string };
  versions: Record<string, string>;
  pinned: boolean;
  settings: { duration: number; warmup: number; reps: number };
}

export function chart(rows: Row[], scenarios: Scenario[], subjects: Subject[], meta: Meta): string {
  const groups = scenarios.flatMap((scenario) =>
    (["pinned", "unpinned"] as const)
      .map((pin) => ({ scenario, pin, rows: rows.filter((r) => r.group === scenario.id && r.pin === pin) }))
      .filter((group) => group.rows.length > 0),
  );
  const shown = subjects.filter((s) => rows.some((r) => r.target === s.id));
  const groupWidth = shown.length * (BAR + GAP) + GROUP_PAD;
  const width = Math.max(760, 60 + groups.length * groupWidth);
  const height = PLOT_TOP + PLOT_HEIGHT + 110;
  const out: string[] = [];
  const text = (x: number, y: number, body: string, attributes = "") =>
    out.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attributes}>${escapeXml(body)}</text>`);

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
    "<title>tcp-echo benchmarks: each server against its runtime's hand-written and idiomatic servers and C epoll and io_uring servers</title>",
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
  );
  text(20, 24, "tcp-echo benchmarks: each server under the same C load generator", 'font-size="15" font-weight="bold"');
  const { machine, versions, settings } = meta;
  text(
    20,
    42,
    `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, ${machine.kernel}; node ${versions.node}, bun ${versions.bun}, deno ${versions.deno}; ${meta.date.slice(0, 10)}`,
  );
  text(
    20,
    58,
    `medians of ${settings.reps} interleaved repetitions, ${settings.duration} s each after ${settings.warmup} s warm-up; pinned: server on core 1, load generator on core 0`,
  );
  text(20, 74, "bar labels: ratio to the C server (>1 is better); flood: MB of server RSS growth", 'fill="#555"');

  const baseline = PLOT_TOP + PLOT_HEIGHT;
  out.push(`<line x1="40" y1="${baseline}" x2="${width - 10}" y2="${baseline}" stroke="#999"/>`);
  groups.forEach((group, index) => {
    const left = 50 + index * groupWidth;
    const values = group.rows.map((r) => r.median).filter(Number.isFinite);
    const top = Math.max(...values, 0) || 1;
    shown.forEach((subject, i) => {
      const row = group.rows.find((r) => r.target === subject.id);
      const x = left + i * (BAR + GAP);
      if (!row || !Number.isFinite(row.median)) {
        text(x + BAR / 2, baseline - 4, "n/a", `font-size="8" text-anchor="middle" fill="#999"`);
        return;
      }
      const h = Math.max(1, (row.median / top) * (PLOT_HEIGHT - 40));
      out.push(
        `<rect x="${x}" y="${(baseline - h).toFixed(1)}" width="${BAR}" height="${h.toFixed(1)}" fill="${COLORS[subject.id] ?? "#999"}"><title>${escapeXml(`${subject.label}: ${fmt(row.median)} ${group.scenario.unit}`)}</title></rect>`,
      );
      const label = row.vsC !== undefined ? `${fmt(row.vsC, 2)}x` : fmt(row.median);
      const y = baseline - h - 4;
      text(x + BAR / 2 + 3, y, label, `font-size="9" transform="rotate(-90 ${x + BAR / 2 + 3} ${y})"`);
    });
    const center = left + (shown.length * (BAR + GAP)) / 2;
    text(center, baseline + 16, `(${group.scenario.id}) ${group.pin}`, 'text-anchor="middle" font-weight="bold"');
    const [headline, detail] = group.scenario.title.split(": ");
    text(center, baseline + 30, headline ?? "", 'text-anchor="middle" font-size="9"');
    if (detail) text(center, baseline + 42, detail.slice(0, 28), 'text-anchor="middle" font-size="9" fill="#555"');
    text(center, baseline + 54, group.scenario.unit, 'text-anchor="middle" font-size="9" fill="#555"');
  });

  let x = 20;
  const legendY = height - 22;
  for (const subject of shown) {
    out.push(`<rect x="${x}" y="${legendY - 9}" width="10" height="10" fill="${COLORS[subject.id] ?? "#999"}"/>`);
    text(x + 14, legendY, subject.label);
    x += 24 + subject.label.length * 6;
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
