/**
 * Keeps `pnpm bench:udp` from rotting: a short run of the C and Node UDP servers
 * under the UDP load generator must see no wrong answer and answers from both.
 * No timing is asserted, only that traffic flowed and was checked.
 */

import { join } from "node:path";
import { runManaged } from "@tcp-echo/testkit";
import { expect, test } from "vitest";
import { PACKAGE_DIR, ROOT } from "../src/paths.ts";

test("bench:udp: no wrong answer and a nonzero rate from the C and Node servers, in both scenarios", async () => {
  const run = await runManaged(
    process.execPath,
    [
      "--import",
      "tsx",
      join(PACKAGE_DIR, "src/udp.ts"),
      ...["--duration", "0.3", "--warmup", "0.1", "--reps", "1", "--servers", "c,node"],
    ],
    { cwd: ROOT, timeoutMs: 60_000 },
  );
  const stdout = run.stdout.toString();
  expect(run.code, run.stderr + stdout).toBe(0);
  for (const line of ["pingpong c", "pingpong node", "flood c", "flood node"]) {
    const match = new RegExp(`^${line} rep 1: (\\d+) answers/s, lost \\d+, wrong 0$`, "m").exec(stdout);
    expect(match, `${line} in ${stdout}`).not.toBeNull();
    expect(Number(match?.[1])).toBeGreaterThan(0);
  }
});
