/**
 * The UDP rows of `pnpm bench` (issue 14): our UDP servers against a minimal C
 * one (`native/udp-echo-server.c`, recvmmsg/sendmmsg) in the same run, driven
 * by one C load generator (`native/udp-loadgen.c`) that checks every answer:
 * ping-pong (one 64 B datagram in flight: answers/s and RTT) and a 64 B flood
 * (256 in flight). bench.ts runs them like its other scenarios: each
 * repetition a freshly started server, the order rotated, ratios to the C
 * server taken within a repetition.
 */

import { join } from "node:path";
import { command, pinned, readLines, runManaged, spawnManaged } from "@tcp-echo/testkit";
import { parseLoadgen } from "./native.ts";
import { PEERS_DIR, ROOT } from "./paths.ts";
import type { Measurement } from "./report.ts";
import type { Runtime, Server } from "./targets.ts";

export interface UdpScenario {
  readonly id: "udp-pingpong" | "udp-flood";
  readonly mode: "pingpong" | "flood";
  readonly title: string;
  readonly size: number;
  readonly window: number;
  readonly unit: string;
}

export const UDP_SCENARIOS: readonly UdpScenario[] = [
  {
    id: "udp-pingpong",
    mode: "pingpong",
    title: "UDP ping-pong, 64 B, 1 in flight",
    size: 64,
    window: 1,
    unit: "answers/s",
  },
  { id: "udp-flood", mode: "flood", title: "UDP flood, 64 B, 256 in flight", size: 64, window: 256, unit: "answers/s" },
];

/** The C UDP server and ours, one per runtime, through `listen({ transport: "udp" })` (`src/peers/udp.ts`). */
export function listUdpServers(runtimes: Record<string, Runtime>, udpEchoServer: string): Server[] {
  const peer = join(PEERS_DIR, "udp.ts");
  return [
    {
      id: "c",
      label: "C recvmmsg/sendmmsg",
      runtime: "c",
      kind: "limit",
      command: [udpEchoServer],
      missing: undefined,
    },
    ...Object.values(runtimes).map((runtime) => ({
      id: runtime.name,
      label: `${runtime.name}: @tcp-echo/${runtime.name} udp`,
      runtime: runtime.name,
      kind: "ours" as const,
      // Deno reads the package it imports: --allow-read for it, and --unstable-net for UDP.
      command: [
        ...command(pinned(runtime.name), peer, { unstableNet: true, read: [join(ROOT, "packages")] }),
        runtime.packageEntry,
      ],
      missing: runtime.missing,
    })),
  ];
}

interface UdpResult {
  msgs_per_s: number;
  p50_us: number;
  p99_us: number;
  sent: number;
  lost: number;
  wrong: number;
}

/** Starts `server`, runs one udp-loadgen pass, stops the server; never throws (a failure is in the measurement). */
export async function measureUdp(
  server: Server,
  loadgen: string,
  scenario: UdpScenario,
  timing: { readonly duration: number; readonly warmup: number },
  rep: number,
): Promise<Measurement> {
  const [binary, ...args] = server.command as [string, ...string[]];
  const seconds = timing.duration + timing.warmup;
  // stdin a pipe: every peer exits when it closes, so a killed bench leaves no server behind.
  const started = spawnManaged(binary, args, {
    label: `udp ${server.id}`,
    cwd: ROOT,
    timeoutMs: seconds * 1000 + 90_000,
    stdin: "pipe",
  });
  let result: UdpResult | undefined;
  let failure: string | undefined;
  try {
    const { port } = JSON.parse(await readLines(started).line((line) => line.startsWith("{"), 30_000));
    const run = await runManaged(
      loadgen,
      [
        String(port),
        scenario.mode,
        String(scenario.size),
        String(timing.duration),
        String(timing.warmup),
        String(scenario.window),
      ],
      { cwd: ROOT, timeoutMs: seconds * 1000 + 30_000 },
    );
    result = parseLoadgen(run.stdout.toString()) as UdpResult | undefined;
    if (run.timedOut) failure = "hard timeout";
    else if (run.code !== 0 || !result) failure = `udp-loadgen exited ${run.code}: ${run.stderr.trim()}`;
    else if (result.wrong) failure = `${result.wrong} wrong answers`;
    if (started.exit) failure ??= `the server died: ${started.stderrTail().split("\n").slice(-3).join(" | ")}`;
  } catch (error) {
    failure = (error as Error).message;
  } finally {
    await started.kill();
  }
  return {
    group: scenario.id,
    pin: "unpinned",
    rep,
    target: server.id,
    value: result && !failure ? result.msgs_per_s : Number.NaN,
    ...(result && scenario.mode === "pingpong" ? { rttP50us: result.p50_us, rttP99us: result.p99_us } : {}),
    ...(result ? { lostPercent: (100 * result.lost) / Math.max(1, result.sent) } : {}),
    errors: 0,
    wrongBytes: result?.wrong ?? 0,
    ...(failure ? { failure } : {}),
  };
}
