/**
 * Keeps the UDP rows of `pnpm bench` (and `pnpm bench:udp`, the same with
 * `--scenarios udp`) from rotting: a short run of the C and Node UDP servers
 * under the UDP load generator must see no wrong answer and answers from both,
 * in both scenarios. No timing is asserted, only that traffic flowed and was checked.
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runManaged } from "@tcp-echo/testkit";
import { afterAll, expect, test } from "vitest";
import { PACKAGE_DIR, ROOT } from "../src/paths.ts";
import type { Measurement } from "../src/report.ts";

const scratch = mkdtempSync(join(tmpdir(), "tcp-echo-bench-udp-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

test("bench --scenarios udp: no wrong answer and a nonzero rate from the C and Node servers, in both scenarios", async () => {
  const json = join(scratch, "udp.json");
  const run = await runManaged(
    process.execPath,
    [
      "--import",
      "tsx",
      join(PACKAGE_DIR, "src/bench.ts"),
      ...["--scenarios", "udp", "--servers", "c,node", "--duration", "0.3", "--warmup", "0.1", "--reps", "1"],
      ...["--json", json, "--svg", join(scratch, "udp.svg")],
    ],
    { cwd: ROOT, timeoutMs: 60_000 },
  );
  const stdout = run.stdout.toString();
  expect(run.code, run.stderr + stdout).toBe(0);
  const { measurements } = JSON.parse(readFileSync(json, "utf8")) as { measurements: Measurement[] };
  expect(measurements.map((m) => `${m.group} ${m.target}`).sort()).toEqual([
    "udp-flood c",
    "udp-flood node",
    "udp-pingpong c",
    "udp-pingpong node",
  ]);
  for (const measurement of measurements) {
    expect(measurement.failure).toBeUndefined();
    expect(measurement.wrongBytes).toBe(0);
    expect(measurement.value).toBeGreaterThan(0);
    expect(measurement.lostPercent).toBeGreaterThanOrEqual(0);
  }
});
