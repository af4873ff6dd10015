/**
 * Every process the bench starts goes through here: each gets its own process
 * group (so a runtime's helper children die with it), a hard timeout, and is
 * killed on exit, on Ctrl-C and on any failure.
 */

import { type ChildProcess, spawn } from "node:child_process";

const live = new Set<ChildProcess>();

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

export function killAll(): void {
  for (const child of live) killGroup(child);
  live.clear();
}

let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface Started {
  readonly child: ChildProcess;
  /** The first stdout line, parsed as JSON. */
  readonly hello: Record<string, unknown>;
  stderr(): string;
  /** Kills the whole process group and waits for the exit. */
  stop(): Promise<void>;
}

function launch(command: readonly string[], cwd: string): { child: ChildProcess; stderr: () => string } {
  hookExit();
  const [file, ...args] = command as [string, ...string[]];
  // stdin stays an open pipe: the peers exit when it closes, so even a bench
  // killed with SIGKILL leaves nothing behind.
  const child = spawn(file, args, { cwd, detached: true, stdio: ["pipe", "pipe", "pipe"] });
  live.add(child);
  child.on("exit", () => live.delete(child));
  let errors = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    errors = (errors + chunk.toString()).slice(-4000);
  });
  return { child, stderr: () => errors };
}

/**
 * Starts a long-running process and waits for its first stdout line (JSON), or
 * fails after `timeoutMs` with its stderr.
 */
export function start(command: readonly string[], cwd: string, timeoutMs: number): Promise<Started> {
  const { child, stderr } = launch(command, cwd);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    killGroup(child);
    await exited;
  };
  return new Promise((resolve, reject) => {
    let output = "";
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop();
      const detail = stderr().trim().split("\n").slice(-6).join("\n");
      reject(new Error(`${command.join(" ")}: ${why}${detail ? `\n${detail}` : ""}`));
    };
    const timer = setTimeout(() => fail(`no output within ${timeoutMs} ms`), timeoutMs);
    child.once("error", (error) => fail(error.message));
    child.once("exit", (code, signal) => fail(`exited (${signal ?? code}) before it was ready`));
    child.stdout?.on("data", function onData(chunk: Buffer) {
      output += chunk.toString();
      const newline = output.indexOf("\n");
      if (newline < 0 || settled) return;
      child.stdout?.off("data", onData);
      // Keep draining: a server that logs must never block on a full pipe.
      child.stdout?.resume();
      let hello: Record<string, unknown>;
      try {
        hello = JSON.parse(output.slice(0, newline));
      } catch {
        fail(`first line is not JSON: ${output.slice(0, newline)}`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve({ child, hello, stderr, stop });
    });
  });
}

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Runs a command to completion, killing its process group after `timeoutMs`. */
export function run(command: readonly string[], cwd: string, timeoutMs: number): Promise<Finished> {
  const { child, stderr } = launch(command, cwd);
  let stdout = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  return new Promise((resolve) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutMs);
    const done = (code: number | null) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: stderr(), timedOut });
    };
    child.once("error", (error) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: error.message, timedOut });
    });
    child.once("close", done);
  });
}
