/**
 * A 60-second soak per server runtime, as CI must run (`pnpm soak` runs it for
 * as long as asked): a mixed, rate-bounded load that must lose no byte, leak no
 * descriptor, and keep RSS within its bound. Plus the command line's contract.
 */
import { fileURLToPath } from "node:url";
import { command, killAll, MiB, pinned, ROOT, runManaged } from "@tcp-echo/testkit";
import { afterAll, describe, expect, test } from "vitest";
import { runSoak } from "../src/load.ts";
import { missing, RUNTIMES } from "../src/servers.ts";

afterAll(killAll);

const SOAK = fileURLToPath(new URL("../src/soak.ts", import.meta.url));
const SECONDS = 60;

// The three soaks run at once: the load is rate-bounded (about 40 sessions a
// second each), not CPU-bound, so a minute each costs CI one minute, not three.
describe.concurrent("soak", () => {
  for (const runtime of RUNTIMES) {
    const why = missing(runtime);
    test.skipIf(why)(
      `${runtime} server${why ? ` (${why})` : ""}: ${SECONDS} s of mixed load: every byte verified, descriptors given back, RSS within 64 MiB of its baseline`,
      async () => {
        const report = await runSoak({ server: runtime, seconds: SECONDS });
        expect(report.failures).toEqual([]);
        expect(report.errors).toEqual({});
        // A leak is more descriptors after than before. Fewer is fine: a runtime may
        // close one of its own lazily opened descriptors during the run (seen once
        // with Deno under CI: 25 before, 24 after).
        expect(report.fds.after).toBeLessThanOrEqual(report.fds.before);
        expect(report.rss.after - report.rss.baseline).toBeLessThan(64 * MiB);
        // The load really ran: about 40 sessions a second, some of them resets.
        expect(report.sessions).toBeGreaterThan(SECONDS * 10);
        expect(report.resets).toBeGreaterThan(0);
        expect(report.ok).toBe(true);
      },
      150_000,
    );
  }
});

describe("soak: the command line", () => {
  async function run(args: string[]) {
    const [node, ...prefix] = command(pinned("node"), SOAK) as [string, ...string[]];
    const result = await runManaged(node, [...prefix, ...args], { cwd: ROOT, timeoutMs: 60_000 });
    return { ...result, stdout: result.stdout.toString() };
  }

  test("--json: one sample line per interval, then a report; exit 0 when nothing was lost", async () => {
    const result = await run(["--server", "node", "--seconds", "3", "--json"]);
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.filter((line) => line.event === "sample").length).toBeGreaterThanOrEqual(2);
    expect(lines.at(-1)).toMatchObject({ event: "report", ok: true, server: "node", failures: [] });
  }, 90_000);

  test.each([
    [["--server", "python", "--seconds", "1"]],
    [["--server", "node"]],
    [["--server", "node", "--minutes", "x"]],
    [["--bogus"]],
  ])("usage error %j exits 2", async (args) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("usage: soak");
  });
});
