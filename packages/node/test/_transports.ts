/** Shared by the CLI transport tests: certificates made at test time, socket paths, every runtime's CLI. */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { cliOf, command, pinned, RUNTIME_NAMES, type RuntimeName } from "@tcp-echo/testkit";
import { makeCerts, tempDir } from "@tcp-echo/testkit/fixtures";

export { failure } from "@tcp-echo/testkit/fixtures";

export const DIR = tempDir("echo-");
export const certs = makeCerts(join(DIR, "certs"));

/** Every runtime's CLI, as the matrix starts it (testkit's runtime table): certificates and sockets under DIR. */
const cli = (runtime: RuntimeName) =>
  command(pinned(runtime), cliOf(runtime), { read: [DIR], write: [DIR] }) as [string, ...string[]];
export const CLI: Record<RuntimeName, [string, ...string[]]> = {
  node: cli("node"),
  bun: cli("bun"),
  deno: cli("deno"),
};
export type Runtime = RuntimeName;
export const RUNTIMES: readonly Runtime[] = RUNTIME_NAMES;

let sockets = 0;
export const socketPath = () => join(DIR, `s${++sockets}.sock`);

/** Teardown steps of the running test, run last first by `runCleanup` (each test file's `afterEach`). */
export const cleanup: Array<() => unknown> = [];

export async function runCleanup(): Promise<void> {
  for (const step of cleanup.splice(0).reverse()) await step();
}

/** A runtime's CLI `serve`, killed after the test; resolves with its first stdout line. */
export async function serveCli(runtime: Runtime, args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const [command, ...prefix] = CLI[runtime];
  const child = spawn(command, [...prefix, "serve", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  cleanup.push(() => {
    clearTimeout(timer);
    child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    const wait = setTimeout(() => reject(new Error(`${runtime} serve did not start: ${stderr}`)), 30_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk;
      const newline = buffered.indexOf("\n");
      if (newline >= 0) {
        clearTimeout(wait);
        resolve(buffered.slice(0, newline));
      }
    });
    child.once("exit", (code) => reject(new Error(`${runtime} serve exited ${code}: ${stderr}`)));
  });
  return { child, line };
}

/** Runs a runtime's CLI to completion with a hard timeout. */
export function runCli(
  runtime: Runtime,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [command, ...prefix] = CLI[runtime];
  const child = spawn(command, [...prefix, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
}

export const portOf = (line: string) => Number(/:(\d+)$/.exec(line)?.[1]);
export const TLS_SERVE = () => [
  "--port",
  "0",
  "--tls-cert",
  certs.file("server.pem"),
  "--tls-key",
  certs.file("server.key"),
];
