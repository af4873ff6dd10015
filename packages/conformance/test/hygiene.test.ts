/** Process hygiene: Ctrl-C on the matrix runner leaves no process behind. */

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { markedProcesses, RUN_MARKER } from "@tcp-echo/testkit";
import { expect, test } from "vitest";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

async function until<T>(probe: () => T | undefined, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined || Date.now() > end) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test("SIGINT to the matrix runner kills every server and client it started", async () => {
  const id = `hygiene-${randomUUID()}`;
  // Slow cells (one byte a second) guarantee servers are running when the signal lands.
  const runner = spawn(
    process.execPath,
    ["--import", "tsx", CLI, "--server", "node,socat,python,control", "--client", "harness", "--case", "slow-peer"],
    { env: { ...process.env, [RUN_MARKER]: id }, stdio: ["ignore", "pipe", "pipe"] },
  );
  runner.stdout.resume();
  runner.stderr.resume();
  const exited = new Promise<number | null>((resolve) => runner.once("exit", (code) => resolve(code)));
  try {
    // Servers, not tsx's esbuild helper (which also carries the marker).
    const servers = await until(() => {
      const found = markedProcesses(id).filter((pid) =>
        /serve|socat|echo_server|control-server/.test(commandLine(pid)),
      );
      return found.length >= 2 ? found : undefined;
    }, 30_000);
    expect(servers, "the runner never started two servers").toBeDefined();

    runner.kill("SIGINT");
    const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve("hung"), 10_000))]);
    expect(code).toBe(130);
    const left = await until(() => (markedProcesses(id).length === 0 ? [] : undefined), 5000);
    expect(left, `orphans: ${markedProcesses(id).join(", ")}`).toEqual([]);
  } finally {
    runner.kill("SIGKILL");
    for (const pid of markedProcesses(id)) process.kill(pid, "SIGKILL");
  }
});
