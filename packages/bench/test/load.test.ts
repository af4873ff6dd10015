/**
 * The `load` command on each runtime's CLI: against our server it reports a
 * rate, throughput, latency and connections; against a server that gets bytes
 * wrong it exits 1 and says which byte. Short runs; no figure is asserted
 * beyond being nonzero.
 */

import type { EchoServer } from "@tcp-echo/core";
import { listen } from "@tcp-echo/node";
import { cliOf, command, corruptingServer, pinned, RUNTIME_NAMES, runManaged } from "@tcp-echo/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

interface Report {
  mode: string;
  seconds: number;
  messages: number;
  messagesPerSecond: number;
  bytes: number;
  megabytesPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number } | null;
  connectionsOpened: number;
  connectionsFailed: number;
  errors: Record<string, number>;
  firstError?: string;
}

async function load(runtime: (typeof RUNTIME_NAMES)[number], port: number, args: string[]) {
  const [file, ...rest] = command(pinned(runtime), cliOf(runtime));
  const finished = await runManaged(file as string, [...rest, "load", "--port", String(port), "--json", ...args], {
    timeoutMs: 30_000,
  });
  const stdout = finished.stdout.toString();
  const stderr = finished.stderr.toString();
  const line = stdout.trim().split("\n").pop() ?? "";
  let report: Report | undefined;
  try {
    report = JSON.parse(line) as Report;
  } catch {
    throw new Error(`${runtime} load printed no JSON summary (exit ${finished.code}): ${stdout}${stderr}`);
  }
  return { code: finished.code, report, stderr };
}

let server: EchoServer;
beforeAll(async () => {
  server = await listen({ hostname: "127.0.0.1", port: 0 });
});
afterAll(() => server.close({ force: true }));

describe.each(RUNTIME_NAMES)("load on %s", (runtime) => {
  test("against our server: messages, MB/s, latency percentiles and connections in the summary, exit 0", async () => {
    const { code, report, stderr } = await load(runtime, server.address.port, [
      "--connections",
      "2",
      "--in-flight",
      "4",
      "--duration",
      "0.3",
    ]);
    expect(code, stderr).toBe(0);
    expect(report.mode).toBe("pipeline");
    expect(report.messages).toBeGreaterThan(0);
    expect(report.messagesPerSecond).toBeGreaterThan(0);
    expect(report.bytes).toBe(report.messages * 64);
    expect(report.megabytesPerSecond).toBeGreaterThan(0);
    const latency = report.latencyMs as NonNullable<Report["latencyMs"]>;
    expect(latency.p50).toBeGreaterThan(0);
    expect(latency.p50).toBeLessThanOrEqual(latency.p90);
    expect(latency.p90).toBeLessThanOrEqual(latency.p99);
    expect(latency.p99).toBeLessThanOrEqual(latency.p999);
    expect(latency.p999).toBeLessThanOrEqual(latency.max);
    expect(report.connectionsOpened).toBe(2);
    expect(report.connectionsFailed).toBe(0);
    expect(report.errors).toEqual({});
  });

  test("a server that flips byte 100: exit 1, EPROTO, the byte named", async () => {
    const corrupting = await corruptingServer("flip", 100);
    try {
      const { code, report } = await load(runtime, corrupting.port, ["--connections", "1", "--duration", "0.3"]);
      expect(code).toBe(1);
      expect(report.errors).toEqual({ EPROTO: 1 });
      expect(report.firstError).toMatch(
        /differs from what was sent at byte 100: sent 0x[0-9a-f]{2}, got 0x[0-9a-f]{2}/,
      );
    } finally {
      await corrupting.close();
    }
  });
});

describe("load on node: every mode, and every way an echo can be wrong", () => {
  test.each(["pingpong", "stream", "churn"])("--mode %s against our server: verified traffic, exit 0", async (mode) => {
    const { code, report, stderr } = await load("node", server.address.port, [
      "--mode",
      mode,
      "--connections",
      "2",
      "--duration",
      "0.4",
      ...(mode === "stream" ? ["--size", "16384"] : []),
    ]);
    expect(code, stderr).toBe(0);
    expect(report.mode).toBe(mode);
    expect(report.messages).toBeGreaterThan(0);
    expect(report.bytes).toBeGreaterThan(0);
    expect(report.connectionsFailed).toBe(0);
    if (mode === "stream") expect(report.latencyMs).toBeNull();
    else expect(report.latencyMs?.p50).toBeGreaterThan(0);
  });

  test.each([
    ["extra", "EPROTO", /more bytes than were sent|differs from what was sent at byte \d+/],
    ["short", "ETIMEDOUT", /of the \d+ bytes sent have not come back/],
  ] as const)("a server that %s-echoes: exit 1, %s", async (kind, code, message) => {
    const corrupting = await corruptingServer(kind, kind === "extra" ? 63 : 640);
    try {
      const run = await load("node", corrupting.port, ["--connections", "1", "--duration", "0.3", "--timeout", "300"]);
      expect(run.code).toBe(1);
      expect(run.report.errors).toEqual({ [code]: 1 });
      expect(run.report.firstError).toMatch(message);
    } finally {
      await corrupting.close();
    }
  });

  test("in a pipe, one progress line a second on stderr; --rate bounds the rate", async () => {
    const { code, report, stderr } = await load("node", server.address.port, [
      "--connections",
      "2",
      "--rate",
      "200",
      "--duration",
      "1.5",
    ]);
    expect(code).toBe(0);
    expect(stderr.split("\n").filter((line) => /msg\/s/.test(line))).toHaveLength(1);
    expect(report.messagesPerSecond).toBeLessThanOrEqual(210);
    expect(report.messagesPerSecond).toBeGreaterThan(100);
  });
});
