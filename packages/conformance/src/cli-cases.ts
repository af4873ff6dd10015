/**
 * Cases our clients play as their CLI (`send`), run by the runner: what a user
 * at a shell sees, exit code included, which the driver's API calls cannot show.
 */

import { ROOT, spawnManaged, stallingServer } from "@tcp-echo/testkit";
import { fail } from "./deadline.ts";
import { describeExit, HOST } from "./launchers.ts";
import type { ClientSpec } from "./participants.ts";
import type { CaseName } from "./plan.ts";

type Checks = string[];

/** `client-timeouts`: `send --timeout` of this many ms; the CLI must exit 1 within it plus `SLACK_MS` of the connect. */
const TIMEOUT_MS = 2000;
const SLACK_MS = 1000;

/** Runs one `send` against `port`, writing `input` to stdin (left open if `keepStdinOpen`). */
async function send(client: ClientSpec, port: number, mode: string, input: string | undefined, keepStdinOpen: boolean) {
  const [command, ...args] = client.cli!() as [string, ...string[]];
  const managed = spawnManaged(
    command,
    [...args, "send", "--host", HOST, "--port", String(port), "--timeout", String(TIMEOUT_MS), mode],
    { label: `${client.name} send`, cwd: ROOT, timeoutMs: 30_000, stdin: "pipe" },
  );
  const stdout: Buffer[] = [];
  managed.child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
  if (input !== undefined) managed.child.stdin?.write(input);
  if (!keepStdinOpen) managed.child.stdin?.end();
  try {
    const exit = await managed.exited;
    return { exit, ended: performance.now(), stdout: Buffer.concat(stdout).toString(), stderr: managed.stderrTail() };
  } finally {
    await managed.kill();
  }
}

export const CLI_CASES: Partial<Record<CaseName, (client: ClientSpec) => Promise<Checks>>> = {
  async "client-timeouts"(client) {
    const checks: Checks = [];
    for (const [kind, mode, printed] of [
      ["silent", "hello", ""],
      ["silent", "-", ""],
      ["never-closes", "hello", "Received response from server: hello\n"],
      ["never-closes", "-", "streamed\n"],
    ] as const) {
      const what = `send ${mode} against a ${kind} server`;
      const server = await stallingServer(kind);
      try {
        // Against the silent server stdin stays open: the client must not wait on it.
        const run = await send(client, server.port, mode, mode === "-" ? "streamed\n" : undefined, kind === "silent");
        const stderr = run.stderr.trim().split("\n").slice(-1).join("");
        if (run.exit.timedOut) fail(`${what}: still running after 30 s (killed)`);
        if (run.exit.code !== 1) fail(`${what}: ${describeExit(run.exit)}, expected exit code 1: ${stderr}`);
        if (server.accepted.length !== 1) fail(`${what}: ${server.accepted.length} connections, expected 1`);
        const ms = Math.round(run.ended - (server.accepted[0] as number));
        if (ms >= TIMEOUT_MS + SLACK_MS)
          fail(`${what}: exited ${ms} ms after connecting, over --timeout ${TIMEOUT_MS} + ${SLACK_MS} ms`);
        if (!/ ETIMEDOUT /.test(stderr)) fail(`${what}: expected ETIMEDOUT, got: ${stderr}`);
        if (run.stdout !== printed)
          fail(`${what}: printed ${JSON.stringify(run.stdout)}, expected ${JSON.stringify(printed)}`);
        checks.push(`${what}: exit 1, ETIMEDOUT ${ms} ms after connecting, printed ${run.stdout.length} bytes`);
      } finally {
        await server.close();
      }
    }
    return checks;
  },
};
