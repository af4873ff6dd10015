/** Shared by the Deno tests: servers that close in teardown, raw clients, child processes with a hard timeout. */
import { type EchoServer, isEchoError, type ListenOptions, listen } from "../src/index.ts";

export const DENO = Deno.execPath();
export const CONFIG = new URL("../deno.json", import.meta.url).pathname;
export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** Starts a server on port 0 and closes it, forcing, when `body` ends. */
export async function withServer(options: ListenOptions, body: (server: EchoServer) => Promise<void>): Promise<void> {
  const server = await listen({ port: 0, ...options });
  try {
    await body(server);
  } finally {
    await server.close({ force: true });
  }
}

export async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return isEchoError(error) ? error.code : `not an EchoError: ${String(error)}`;
  }
  return undefined;
}

export function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB per call.
  for (let offset = 0; offset < size; offset += 65536) crypto.getRandomValues(bytes.subarray(offset, offset + 65536));
  return bytes;
}

export async function sha256(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw `Deno.connect` client, for behaviours our own client would never do. */
export function rawClient(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.byteLength; ) offset += await conn.write(data.subarray(offset));
}

/** A Deno child process, killed in `stop()`, with a hard timeout and its stdout as lines. */
export class Child {
  readonly process: Deno.ChildProcess;
  private readonly lines: string[] = [];
  private readonly waiters: Array<() => void> = [];
  private readonly timer: ReturnType<typeof setTimeout>;
  private readonly pumping: Promise<void>;
  readonly stderr: Promise<string>;

  constructor(command: string, args: string[], options: { timeoutMs?: number; env?: Record<string, string> } = {}) {
    this.process = new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...options.env },
    }).spawn();
    this.timer = setTimeout(() => this.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    this.pumping = this.pump();
    this.stderr = new Response(this.process.stderr).text();
  }

  get pid(): number {
    return this.process.pid;
  }

  private async pump(): Promise<void> {
    let rest = "";
    for await (const text of this.process.stdout.pipeThrough(new TextDecoderStream())) {
      rest += text;
      const parts = rest.split("\n");
      rest = parts.pop() as string;
      this.lines.push(...parts);
      for (const wake of this.waiters.splice(0)) wake();
    }
    if (rest) this.lines.push(rest);
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Every stdout line so far. */
  get output(): readonly string[] {
    return this.lines;
  }

  /** Waits for a stdout line matching `pattern`. */
  async line(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find((line) => pattern.test(line));
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no line matching ${pattern}; got ${JSON.stringify(this.lines)}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((wake) => {
        this.waiters.push(wake);
        timer = setTimeout(wake, 100);
      });
      clearTimeout(timer);
    }
  }

  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.process.kill(signal);
    } catch {
      // Already exited.
    }
  }

  /** Waits for the exit (killing it after `timeoutMs`) and releases everything. */
  async stop(signal?: Deno.Signal, timeoutMs = 20_000): Promise<Deno.CommandStatus> {
    if (signal) this.kill(signal);
    const forced = setTimeout(() => this.kill("SIGKILL"), timeoutMs);
    const status = await this.process.status;
    clearTimeout(forced);
    clearTimeout(this.timer);
    await this.pumping;
    await this.stderr;
    return status;
  }
}

/** Runs a command to completion with a hard timeout. */
export async function run(
  command: string,
  args: string[],
  options: {
    cwd?: string;
    stdin?: Uint8Array;
    /** Leave stdin open after writing `stdin`, as a terminal with nothing more to type would. */
    keepStdinOpen?: boolean;
    timeoutMs?: number;
    env?: Record<string, string>;
  } = {},
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const killer = new AbortController();
  const timer = setTimeout(() => killer.abort(), options.timeoutMs ?? 60_000);
  const child = new Deno.Command(command, {
    args,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...options.env },
    signal: killer.signal,
  }).spawn();
  try {
    if (options.stdin) {
      const writer = child.stdin.getWriter();
      await writer.write(options.stdin);
      if (options.keepStdinOpen) writer.releaseLock();
      else await writer.close();
    }
    const { code, stdout, stderr } = await child.output();
    return { code, stdout, stderr: decoder.decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** Resident set size of a process, in bytes, from /proc. */
export function rssOf(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** User + system CPU time of a process, in clock ticks, from /proc. */
export function cpuTicksOf(pid: number): number {
  const fields = (Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1] as string).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}
