/** `pnpm matrix` as a user runs it, for the tests of what it prints and writes. */

import { fileURLToPath } from "node:url";
import { command, pinned, spawnManaged } from "@tcp-echo/testkit";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));

/** Runs the matrix in `cwd` with `args`; its exit code, all of stdout, and stderr's tail. */
export async function matrix(cwd: string, args: readonly string[]) {
  const [node, ...argv] = command(pinned("node"), CLI) as [string, ...string[]];
  const child = spawnManaged(node, [...argv, ...args], {
    label: `matrix ${args.join(" ")}`,
    cwd,
    timeoutMs: 90_000,
  });
  const chunks: Buffer[] = [];
  child.child.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
  const exit = await child.exited;
  return { code: exit.code, stdout: Buffer.concat(chunks).toString("utf8"), stderr: child.stderrTail() };
}
