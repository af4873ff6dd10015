/**
 * Keeps the bench from rotting: its smoke mode builds the C programs, runs our
 * Node server and the C server under the load generator, and the Node `load`
 * command and the hand-written Node client beside the load generator against
 * the C server, and must see every byte echoed correctly. No timing is
 * asserted, only that traffic flowed. The load generator and each hand-written
 * client must catch a server that changes one byte.
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { corruptingServer, runManaged } from "@tcp-echo/testkit";
import { afterAll, describe, expect, test } from "vitest";
import { buildNative, parseLoadgen } from "../src/native.ts";
import { PACKAGE_DIR, ROOT } from "../src/paths.ts";
import { detectRuntimes, listClients } from "../src/targets.ts";

const scratch = mkdtempSync(join(tmpdir(), "tcp-echo-bench-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("bench", () => {
  test("smoke: no wrong byte and a nonzero rate from each server, from the Node client's load command and the hand-written Node client, with and without a promise per message", async () => {
    const json = join(scratch, "smoke.json");
    const result = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        join(PACKAGE_DIR, "src/bench.ts"),
        "--smoke",
        "--json",
        json,
        "--svg",
        join(scratch, "smoke.svg"),
      ],
      { cwd: ROOT, encoding: "utf8", timeout: 100_000, killSignal: "SIGKILL" },
    );
    expect(result.status, result.stderr + result.stdout).toBe(0);
    const report = JSON.parse(readFileSync(json, "utf8")) as {
      measurements: {
        group: string;
        target: string;
        value: number;
        wrongBytes: number;
        errors: number;
        failure?: string;
      }[];
    };
    const targets = report.measurements.map((m) => `${m.group} ${m.target}`).sort();
    expect(targets).toEqual([
      "b c",
      "b node",
      "client-b c-loadgen",
      "client-b node-client",
      "client-b node-native-client",
      "client-b node-promise-client",
    ]);
    for (const measurement of report.measurements) {
      expect(measurement.failure).toBeUndefined();
      expect(measurement.wrongBytes).toBe(0);
      expect(measurement.errors).toBe(0);
      expect(measurement.value).toBeGreaterThan(0);
    }
    expect(readFileSync(join(scratch, "smoke.svg"), "utf8")).toMatch(/^<svg /);
  });

  test("load generator: a server that changes one byte is caught, and the run fails", async () => {
    const { loadgen } = buildNative();
    const corrupting = await corruptingServer("flip");
    const { port } = corrupting;
    const args = ["--port", String(port), "--conns", "2", "--depth", "4", "--duration", "0.3", "--warmup", "0"];
    const finished = await runManaged(loadgen, args, { cwd: ROOT, timeoutMs: 30_000 });
    await corrupting.close();
    const result = parseLoadgen(finished.stdout.toString()) as { wrong_bytes: number };
    expect(finished.code).toBe(1);
    expect(result.wrong_bytes).toBe(1);
  });

  // The hand-written clients, with a promise per message too, check every byte as the C load generator does (a
  // runtime that cannot run is skipped, its reason in the name).
  for (const client of listClients(detectRuntimes()).filter((c) => c.kind === "native" || c.kind === "floor"))
    test.skipIf(client.missing !== undefined)(
      `${client.label}: a server that changes one byte is caught, and the run fails${client.missing ? ` (${client.missing})` : ""}`,
      async () => {
        const corrupting = await corruptingServer("flip");
        const [file, ...rest] = client.command as [string, ...string[]];
        const args = [
          "--port",
          String(corrupting.port),
          "--conns",
          "2",
          "--depth",
          "4",
          "--duration",
          "0.3",
          "--warmup",
          "0",
        ];
        const finished = await runManaged(file, [...rest, ...args], { cwd: ROOT, timeoutMs: 30_000 });
        await corrupting.close();
        const result = parseLoadgen(finished.stdout.toString()) as { wrong_bytes: number; first_error: string };
        expect(finished.code, finished.stderr.toString()).toBe(1);
        expect(result.wrong_bytes).toBe(1);
        expect(result.first_error).toBe("echo differs from what was sent (1 bytes)");
      },
    );
});
