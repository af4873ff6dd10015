/** `pnpm matrix ARGS` as a real process on the pinned Node (the tests of its flags): exit code, stdout, stderr. */

import { fileURLToPath } from "node:url";
import { command, pinned, spawnManaged } from "@tcp-echo/testkit";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));

export async function matrixCli(
  args: readonly string[],
  { cwd, timeoutMs = 90_000 }: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [node, ...argv] = command(pinned("node"), CLI) as [string, ...string[]];
  const child = spawnManaged(node, [...argv, ...args], {
    label: `matrix ${args.join(" ")}`,
    ...(cwd ? { cwd } : {}),
    timeoutMs,
  });
  const chunks: Buffer[] = [];
  child.child.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
  const exit = await child.exited;
  return { code: exit.code, stdout: Buffer.concat(chunks).toString("utf8"), stderr: child.stderrTail() };
}
