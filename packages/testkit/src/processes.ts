/**
 * Every process a tool or test starts goes through `spawnManaged`: its own
 * process group (so its children die with it), a hard timeout, and a registry
 * that kills whatever is left when the run ends, fails or is interrupted
 * (Ctrl-C).
 *
 * Each child also carries `TCP_ECHO_MATRIX_RUN=<id>` in its environment. A
 * process that leaves its group (setsid, a daemon) still inherits it, so the
 * final sweep, and the conformance hygiene test, find every process this run
 * started.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { allPids, isZombie } from "./proc.ts";

export const RUN_MARKER = "TCP_ECHO_MATRIX_RUN";
/** Set from outside (the hygiene test) to find this run's processes afterwards. */
export const runId = process.env[RUN_MARKER] ?? randomUUID();

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Killed by us because its deadline passed. */
  readonly timedOut: boolean;
}

export interface ManagedProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly label: string;
  /** Resolves when the process has exited; never rejects. */
  readonly exited: Promise<Exit>;
  /** The exit, once it happened. */
  readonly exit: Exit | undefined;
  /** The last few KiB of stderr, for failure messages. */
  stderrTail(): string;
  /** Kills the whole group (and anything that escaped it) now. Idempotent. */
  kill(): Promise<Exit>;
}

export interface SpawnOptions {
  /** How failure messages name it; the command line by default. */
  readonly label?: string;
  readonly cwd?: string;
  /** Hard deadline: the group is killed with SIGKILL when it passes. */
  readonly timeoutMs: number;
  readonly env?: Record<string, string>;
  /**
   * `pipe` for a process that reads stdin. A peer that exits when its stdin
   * closes (the bench's) then dies with the runner even after a SIGKILL.
   */
  readonly stdin?: "pipe" | "ignore";
}

const live = new Set<ManagedProcess>();

export function spawnManaged(command: string, args: readonly string[], options: SpawnOptions): ManagedProcess {
  installExitHandlers();
  const child = spawn(command, args, {
    cwd: options.cwd,
    // A new process group: one kill(-pid) reaches the child and everything it forks
    // (socat and xinetd fork a process per connection, tsx and shims run a child).
    detached: true,
    stdio: [options.stdin ?? "ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env, [RUN_MARKER]: runId },
  });
  let exit: Exit | undefined;
  let timedOut = false;
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (text: string) => {
    stderr = (stderr + text).slice(-8192);
  });
  // A peer that closes its stdin early must not crash the runner with EPIPE.
  child.stdin?.on("error", () => {});
  const exited = new Promise<Exit>((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      if (exit) return;
      exit = { code, signal, timedOut };
      clearTimeout(timer);
      resolve(exit);
    };
    child.once("exit", done);
    // spawn failures (ENOENT) emit 'error' and may never emit 'exit'.
    child.once("error", () => done(127, null));
  });
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, options.timeoutMs);
  const managed: ManagedProcess = {
    pid: child.pid ?? -1,
    child,
    label: options.label ?? [command, ...args].join(" "),
    exited,
    get exit() {
      return exit;
    },
    stderrTail: () => stderr.trim(),
    kill: () => {
      killGroup(child.pid);
      return exited;
    },
  };
  live.add(managed);
  // The group is killed even after a clean exit: forked children (socat's per
  // connection processes, a tsx child) may outlive the leader.
  void exited.then(() => {
    killGroup(child.pid);
    live.delete(managed);
  });
  return managed;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined || pid <= 0) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // ESRCH: the group is already gone.
  }
}

export interface Finished extends Exit {
  readonly stdout: Buffer;
  readonly stderr: string;
}

/**
 * Runs a command to completion (hard timeout `timeoutMs`), writing `input` to
 * its stdin, and returns its exit, all of stdout and the tail of stderr.
 */
export async function runManaged(
  command: string,
  args: readonly string[],
  options: SpawnOptions & { readonly input?: string | Buffer },
): Promise<Finished> {
  const managed = spawnManaged(command, args, {
    ...options,
    stdin: options.input === undefined ? (options.stdin ?? "ignore") : "pipe",
  });
  const chunks: Buffer[] = [];
  managed.child.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
  if (options.input !== undefined) managed.child.stdin?.end(options.input);
  const exit = await managed.exited;
  // 'exit' may come before the last stdout chunk: wait for the pipe to close
  // (its group is killed on exit, so it does).
  const stdout = managed.child.stdout;
  if (stdout && !stdout.closed) await new Promise((resolve) => stdout.once("close", resolve));
  return { ...exit, stdout: Buffer.concat(chunks), stderr: managed.stderrTail() };
}

/** A process's stdout as lines, and a wait for the line a test expects. */
export interface Lines {
  /** Complete stdout lines so far. */
  readonly lines: string[];
  /** Resolves once stdout has closed (every line is in `lines`); never rejects. */
  readonly ended: Promise<void>;
  /**
   * Waits for a stdout line, from line number `from` on, matching `predicate`;
   * rejects after `timeoutMs` or if the process exits first.
   */
  line(predicate: (line: string) => boolean, timeoutMs: number, from?: number): Promise<string>;
}

/** Reads `managed`'s stdout as lines from now on (and keeps it drained). */
export function readLines(managed: ManagedProcess): Lines {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let buffered = "";
  let endedYet = false;
  const stdout = managed.child.stdout;
  stdout?.setEncoding("utf8");
  stdout?.on("data", (text: string) => {
    buffered += text;
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    lines.push(...parts);
    for (const wake of waiters) wake();
  });
  // After the exit, the last lines may still be in the pipe: the process has
  // printed everything once stdout closes (its group is killed on exit, so it does).
  const ended = (
    stdout && !stdout.closed ? new Promise((resolve) => stdout.once("close", resolve)) : managed.exited
  ).then(() => {
    endedYet = true;
    for (const wake of waiters) wake();
  });
  return {
    lines,
    ended,
    line(predicate, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        let seen = from;
        const why = (what: string) => new Error(`${managed.label}: ${what}; stderr: ${managed.stderrTail()}`);
        const check = () => {
          for (; seen < lines.length; seen++) {
            const line = lines[seen] as string;
            if (predicate(line)) return finish(() => resolve(line));
          }
          if (endedYet) finish(() => reject(why("exited before the expected line")));
        };
        const timer = setTimeout(() => finish(() => reject(why(`no expected line within ${timeoutMs} ms`))), timeoutMs);
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** `spawnManaged` with its stdout read as lines. */
export function spawnWithLines(
  command: string,
  args: readonly string[],
  options: SpawnOptions,
): ManagedProcess & Lines {
  const managed = spawnManaged(command, args, options);
  return Object.assign(managed, readLines(managed));
}

/** Pids of live processes carrying this run's marker (any run's, with `id`). */
export function markedProcesses(id: string = runId): number[] {
  const needle = `${RUN_MARKER}=${id}`;
  return allPids().filter((pid) => {
    // The runner itself carries the marker when the hygiene test set it.
    if (pid === process.pid) return false;
    try {
      return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(needle) && !isZombie(pid);
    } catch {
      return false; // Gone, or not ours to read.
    }
  });
}

/** Kills every process this run started, synchronously (safe in an exit handler). */
export function killAll(): void {
  for (const managed of live) killGroup(managed.pid);
  for (const pid of markedProcesses()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** Kills everything started so far and waits for the direct children to be reaped. */
export async function killAllAndWait(): Promise<void> {
  const waiting = [...live].map((managed) => managed.exited);
  killAll();
  await Promise.all(waiting);
}

let installed = false;

/** Kill everything this run started on exit, SIGINT, SIGTERM and SIGHUP. Idempotent. */
export function installExitHandlers(): void {
  if (installed) return;
  installed = true;
  process.once("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAll();
      process.stderr.write(`\n${signal}: stopped; every process this run started was killed\n`);
      process.exit(130);
    });
  }
}
