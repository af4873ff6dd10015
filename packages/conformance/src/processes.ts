/**
 * Every process the matrix starts goes through `spawnManaged`: its own process
 * group (so its children die with it), a hard timeout, and a registry that kills
 * whatever is left when the run ends, fails or is interrupted (Ctrl-C).
 *
 * Each child also carries `TCP_ECHO_MATRIX_RUN=<id>` in its environment. A
 * process that leaves its group (setsid, a daemon) still inherits it, so the
 * final sweep, and the hygiene test, find every process this run started.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";

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
  readonly label: string;
  readonly cwd?: string;
  /** Hard deadline: the group is killed with SIGKILL when it passes. */
  readonly timeoutMs: number;
  readonly env?: Record<string, string>;
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
    stderr = (stderr + text).slice(-4096);
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
    label: options.label,
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

/** Pids of live processes carrying this run's marker (any run's, with `id`). */
export function markedProcesses(id: string = runId): number[] {
  const needle = `${RUN_MARKER}=${id}`;
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, "latin1");
      const pid = Number(entry);
      // The runner itself carries the marker when the hygiene test set it.
      if (pid !== process.pid && environ.split("\0").includes(needle) && !isZombie(pid)) found.push(pid);
    } catch {
      // Gone, or not ours to read.
    }
  }
  return found;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true;
  }
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
      process.stderr.write(`\n${signal}: stopped; every process the matrix started was killed\n`);
      process.exit(130);
    });
  }
}
