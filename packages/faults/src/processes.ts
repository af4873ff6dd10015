/**
 * Servers and drivers in child processes, one runtime each, measured from
 * /proc. Every process gets its own process group (tsx and the runtime shims
 * run children: one `kill(-pid)` reaches them all), a hard timeout, and a
 * registry that kills whatever is left when the caller is done or exits.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type RuntimeName = "node" | "bun" | "deno";
export const RUNTIMES: readonly RuntimeName[] = ["node", "bun", "deno"];

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BUN = `${ROOT}node_modules/bun/bin/bun.exe`;
const DENO = `${ROOT}node_modules/deno/deno`;

/**
 * The command that runs a TypeScript file on `runtime`. The real Bun and Deno
 * binaries, not the `.bin` shims: a signal to a shim does not reach its child.
 *
 * `heapMiB` caps V8's old space (Node, Deno; Bun's JavaScriptCore has no such
 * flag). Under the default limit V8 collects lazily, so RSS keeps rising for a
 * while after load even with nothing leaked (Deno: 58 -> 146 MiB over 12,000
 * resets, flat at 93 MiB with a 24 MiB cap). With a cap, garbage stays bounded
 * and a real leak ends in an out-of-memory crash: growth means a leak.
 */
export function command(
  runtime: RuntimeName,
  script: string,
  args: readonly string[],
  heapMiB?: number,
): [string, string[]] {
  if (runtime === "bun") return [BUN, [script, ...args]];
  if (runtime === "deno") {
    const heap = heapMiB ? [`--v8-flags=--max-old-space-size=${heapMiB}`] : [];
    // Deno's own config, so it never rewrites the workspace's package.json; read
    // access for the driver's dynamic import of the runtime package.
    const config = ["--config", `${ROOT}packages/deno/deno.json`];
    return [DENO, ["run", "--allow-net", `--allow-read=${ROOT}packages`, ...heap, ...config, script, ...args]];
  }
  const heap = heapMiB ? [`--max-old-space-size=${heapMiB}`] : [];
  return [process.execPath, [...heap, "--import", "tsx", script, ...args]];
}

export const cliOf = (runtime: RuntimeName) => `${ROOT}packages/${runtime}/src/cli.ts`;

/** Why `runtime` cannot run yet, or undefined when its package and binary are there. */
export function missing(runtime: RuntimeName): string | undefined {
  for (const file of [cliOf(runtime), `${ROOT}packages/${runtime}/src/index.ts`]) {
    if (!existsSync(file)) return `${runtime}: ${file.slice(ROOT.length)} does not exist yet`;
  }
  if (runtime === "bun" && !existsSync(BUN)) return "bun: node_modules/bun/bin/bun.exe is not installed";
  if (runtime === "deno" && !existsSync(DENO)) return "deno: node_modules/deno/deno is not installed";
  return undefined;
}

// --- managed processes ---

export interface Managed {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Complete stdout lines so far. */
  readonly lines: string[];
  /** Resolves with the exit code (null when killed); never rejects. */
  readonly exited: Promise<number | null>;
  stderr(): string;
  /**
   * Waits for a stdout line, from line number `from` on, matching `predicate`;
   * rejects after `timeoutMs` or if the process exits first.
   */
  line(predicate: (line: string) => boolean, timeoutMs: number, from?: number): Promise<string>;
  /** SIGKILL to the whole group. Idempotent. */
  kill(): Promise<void>;
}

const live = new Set<Managed>();

export function spawnManaged(
  file: string,
  args: readonly string[],
  options: { timeoutMs: number; env?: Record<string, string>; stdin?: "pipe" | "ignore" },
): Managed {
  if (live.size === 0) process.once("exit", killAll);
  const child = spawn(file, args, {
    cwd: ROOT,
    detached: true,
    stdio: [options.stdin ?? "ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let buffered = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (text: string) => {
    buffered += text;
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    lines.push(...parts);
    for (const wake of waiters) wake();
  });
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (text: string) => {
    stderr = (stderr + text).slice(-8192);
  });
  child.stdin?.on("error", () => {});
  const timer = setTimeout(() => killGroup(child.pid), options.timeoutMs);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", () => resolve(127));
  }).then((code) => {
    clearTimeout(timer);
    // Whatever the leader left behind in its group goes with it.
    killGroup(child.pid);
    live.delete(managed);
    for (const wake of waiters) wake();
    return code;
  });
  let exitedYet = false;
  void exited.then(() => {
    exitedYet = true;
  });
  const managed: Managed = {
    pid: child.pid ?? -1,
    child,
    lines,
    exited,
    stderr: () => stderr,
    line(predicate, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        let seen = from;
        const check = () => {
          for (; seen < lines.length; seen++) {
            const line = lines[seen] as string;
            if (predicate(line)) return finish(() => resolve(line));
          }
          if (exitedYet) finish(() => reject(new Error(`exited before the expected line; stderr: ${stderr.trim()}`)));
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`no expected line within ${timeoutMs} ms; stderr: ${stderr.trim()}`))),
          timeoutMs,
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    kill() {
      killGroup(child.pid);
      return exited.then(() => {});
    },
  };
  live.add(managed);
  return managed;
}

function killGroup(pid: number | undefined): void {
  if (!pid || pid <= 0) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // ESRCH: already gone.
  }
}

/** Kills every process started here, synchronously (safe in an exit handler). */
export function killAll(): void {
  for (const managed of live) killGroup(managed.pid);
}

// --- echo servers ---

/** A `serve --json` line. */
export interface ServerEvent {
  readonly event: "listening" | "connection" | "close" | "error" | "stats" | "closed";
  readonly [field: string]: unknown;
}

export interface ServerProcess {
  readonly runtime: RuntimeName;
  readonly process: Managed;
  readonly pid: number;
  readonly port: number;
  /** Every JSON event so far, in order. */
  events(): ServerEvent[];
  /** The latest `stats` event (needs `--stats`). */
  stats(): ServerEvent | undefined;
  /** Waits for the next `stats` event satisfying `predicate`. */
  statsWhere(predicate: (stats: ServerEvent) => boolean, timeoutMs: number): Promise<ServerEvent>;
  stop(): Promise<void>;
}

/** Starts `serve --port 0 --json ...extra` on `runtime` and waits for its listening line. */
export async function startServer(
  runtime: RuntimeName,
  extra: readonly string[] = [],
  options: { timeoutMs?: number; heapMiB?: number } = {},
): Promise<ServerProcess> {
  const [file, args] = command(runtime, cliOf(runtime), ["serve", "--port", "0", "--json", ...extra], options.heapMiB);
  const managed = spawnManaged(file, args, { timeoutMs: options.timeoutMs ?? 120_000 });
  let port: number;
  try {
    const line = await managed.line((l) => l.includes('"listening"'), 30_000);
    port = (JSON.parse(line) as { port: number }).port;
  } catch (error) {
    await managed.kill();
    throw new Error(`${runtime} server did not start: ${(error as Error).message}`);
  }
  const events = () => managed.lines.flatMap((line) => (line.startsWith("{") ? [JSON.parse(line) as ServerEvent] : []));
  return {
    runtime,
    process: managed,
    pid: managed.pid,
    port,
    events,
    stats: () => events().findLast((event) => event.event === "stats"),
    async statsWhere(predicate, timeout) {
      const line = await managed.line(
        (l) => l.includes('"stats"') && predicate(JSON.parse(l) as ServerEvent),
        timeout,
        managed.lines.length,
      );
      return JSON.parse(line) as ServerEvent;
    },
    stop: () => managed.kill(),
  };
}

// --- /proc ---

/** Open descriptors of a process. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident memory in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

export const MiB = 1024 * 1024;
