/**
 * `pnpm bench:udp`: our UDP servers against a minimal C one (`native/udp-echo-server.c`,
 * recvmmsg/sendmmsg) in the same run, driven by one C load generator
 * (`native/udp-loadgen.c`) that checks every answer: ping-pong (one 64 B
 * datagram in flight: answers/s and RTT) and a 64 B flood (256 in flight).
 * Figures are medians of the repetitions, each a freshly started server, the
 * order rotated per repetition; ratios are to the C server.
 *
 *   pnpm bench:udp [--duration S] [--warmup S] [--reps N] [--servers c,node,bun,deno]
 */

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { median } from "@tcp-echo/core/tools";
import {
  command,
  installExitHandlers,
  killAllAndWait,
  pinned,
  RUNTIME_NAMES,
  readLines,
  runManaged,
  spawnManaged,
} from "@tcp-echo/testkit";
import { parseLoadgen } from "./native.ts";
import { BUILD_DIR, NATIVE_DIR, PEERS_DIR, ROOT } from "./paths.ts";

const SCENARIOS = [
  { id: "pingpong", label: "ping-pong, 64 B, 1 in flight", size: 64, window: 1 },
  { id: "flood", label: "flood, 64 B, 256 in flight", size: 64, window: 256 },
] as const;

/** `cc -O2` of `native/NAME.c` into `.bench/build/` unless the binary is newer. */
function compile(name: string): string {
  mkdirSync(BUILD_DIR, { recursive: true });
  const source = join(NATIVE_DIR, `${name}.c`);
  const binary = join(BUILD_DIR, name);
  if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(source).mtimeMs)
    execFileSync("cc", ["-O2", "-Wall", "-o", binary, source], { stdio: ["ignore", "pipe", "inherit"] });
  return binary;
}

interface Target {
  readonly id: string;
  readonly command: [string, ...string[]];
}

function targets(echoServer: string): Target[] {
  const peer = join(PEERS_DIR, "udp.ts");
  return [
    { id: "c", command: [echoServer] },
    ...RUNTIME_NAMES.map((name) => {
      // Deno reads the package it imports: --allow-read for it, and --unstable-net for UDP.
      const argv = command(pinned(name), peer, { unstableNet: true, read: [join(ROOT, "packages")] });
      const [binary = "", ...args] = argv;
      const entry = join(ROOT, `packages/${name}/src/index.ts`);
      return { id: name, command: [binary, ...args, entry] satisfies [string, ...string[]] };
    }),
  ];
}

async function measure(
  target: Target,
  loadgen: string,
  scenario: (typeof SCENARIOS)[number],
  seconds: number,
  warmup: number,
) {
  const [binary, ...args] = target.command;
  // stdin a pipe: every peer exits when it closes, so a killed bench leaves no server behind.
  const server = spawnManaged(binary, args, { label: `udp ${target.id}`, timeoutMs: 120_000, stdin: "pipe" });
  try {
    const lines = readLines(server);
    const { port } = JSON.parse(await lines.line((line) => line.startsWith("{"), 30_000));
    const run = await runManaged(
      loadgen,
      [String(port), scenario.id, String(scenario.size), String(seconds), String(warmup), String(scenario.window)],
      { timeoutMs: (seconds + warmup) * 1000 + 30_000 },
    );
    const result = parseLoadgen(run.stdout.toString());
    if (run.code !== 0 || !result) throw new Error(`udp-loadgen against ${target.id}: exit ${run.code} ${run.stderr}`);
    return result as { msgs_per_s: number; p50_us: number; p99_us: number; sent: number; lost: number; wrong: number };
  } finally {
    await server.kill();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: "string", default: "3" },
      warmup: { type: "string", default: "1" },
      reps: { type: "string", default: "3" },
      servers: { type: "string" },
    },
  });
  const seconds = Number(values.duration);
  const warmup = Number(values.warmup);
  const reps = Number(values.reps);
  if (!(seconds > 0 && warmup >= 0 && Number.isInteger(reps) && reps >= 1)) {
    process.stderr.write("bench:udp: --duration > 0, --warmup >= 0, --reps a positive integer\n");
    return 2;
  }
  installExitHandlers();
  const loadgen = compile("udp-loadgen");
  const wanted = values.servers?.split(",");
  const all = targets(compile("udp-echo-server")).filter((target) => !wanted || wanted.includes(target.id));
  const results = new Map<string, Array<Awaited<ReturnType<typeof measure>>>>();
  let wrong = 0;
  try {
    for (const scenario of SCENARIOS)
      for (let rep = 0; rep < reps; rep++)
        for (let i = 0; i < all.length; i++) {
          const target = all[(i + rep) % all.length] as Target;
          const result = await measure(target, loadgen, scenario, seconds, warmup);
          wrong += result.wrong;
          const key = `${scenario.id}:${target.id}`;
          results.set(key, [...(results.get(key) ?? []), result]);
          process.stdout.write(
            `${scenario.id} ${target.id} rep ${rep + 1}: ${Math.round(result.msgs_per_s)} answers/s, lost ${result.lost}, wrong ${result.wrong}\n`,
          );
        }
  } finally {
    await killAllAndWait();
  }
  const rows = [["server", ...SCENARIOS.map((scenario) => scenario.label)]];
  for (const target of all) {
    rows.push([
      target.id,
      ...SCENARIOS.map((scenario) => {
        const runs = results.get(`${scenario.id}:${target.id}`) ?? [];
        const rate = median(runs.map((run) => run.msgs_per_s));
        const c = median((results.get(`${scenario.id}:c`) ?? []).map((run) => run.msgs_per_s));
        const ratio = target.id === "c" || !(c > 0) ? "" : ` (${(rate / c).toFixed(2)}x C)`;
        const rtt =
          scenario.id === "pingpong"
            ? `, p50/p99 ${median(runs.map((run) => run.p50_us)).toFixed(0)}/${median(runs.map((run) => run.p99_us)).toFixed(0)} µs`
            : `, lost ${median(runs.map((run) => (100 * run.lost) / Math.max(1, run.sent))).toFixed(2)} %`;
        return `${Math.round(rate).toLocaleString("en-US")}/s${ratio}${rtt}`;
      }),
    ]);
  }
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const [head, ...body] = rows as [string[], ...string[][]];
  process.stdout.write(
    `\n${[line(head), `| ${widths.map((width) => "-".repeat(width)).join(" | ")} |`, ...body.map(line)].join("\n")}\n`,
  );
  if (wrong > 0) process.stderr.write(`bench:udp: ${wrong} wrong answers\n`);
  return wrong > 0 ? 1 : 0;
}

process.exitCode = await main();
