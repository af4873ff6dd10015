import { dlopen, FFIType, ptr } from "bun:ffi";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { type Socket, type Subprocess, spawn } from "bun";

export const BUN = process.execPath;

export const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

export function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB per call.
  for (let offset = 0; offset < size; offset += 65536) crypto.getRandomValues(bytes.subarray(offset, offset + 65536));
  return bytes;
}

/** Polls `predicate` every 10 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

/**
 * Writes 1 MiB chunks to a socket that is never read until `limit` bytes are
 * sent or nothing has moved for 1 s (both sides' kernel buffers full); returns
 * the bytes the kernel took.
 */
export async function writeUntilStalled(socket: Socket<unknown>, limit: number): Promise<number> {
  const chunk = randomBytes(1024 * 1024);
  let sent = 0;
  let movedAt = Date.now();
  while (sent < limit && Date.now() - movedAt < 1000) {
    const written = socket.write(chunk);
    if (written > 0) {
      sent += written;
      movedAt = Date.now();
    } else await Bun.sleep(20);
  }
  return sent;
}

/** Every process a test starts: killed in teardown, and by its own hard timeout. */
export const children = new Set<Subprocess>();

export function killChildren(): void {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
}

export function spawnChild(cmd: string[], options: { cwd?: string; timeoutMs?: number } = {}) {
  const child = spawn({
    cmd,
    cwd: options.cwd,
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    timeout: options.timeoutMs ?? 60_000,
    killSignal: "SIGKILL",
  });
  children.add(child);
  return child;
}

/** Reads stdout line by line. */
export function lines(child: { stdout: ReadableStream<Uint8Array> }): () => Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return async () => {
    for (;;) {
      const newline = buffered.indexOf("\n");
      if (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`stdout ended; buffered: ${buffered}`);
      buffered += value;
    }
  };
}

export function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
}

/** User + system CPU time of a process, in clock ticks (100 per second on Linux). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * TCP_NODELAY as the kernel has it for this process's socket from `localPort`
 * to `remotePort`: found through /proc (socket inode to descriptor), read with
 * getsockopt(2) through bun:ffi.
 */
export function noDelayOf(localPort: number, remotePort: number): boolean {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");
  let inode: string | undefined;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const row of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = row.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hex(localPort)}`) && fields[2]?.endsWith(`:${hex(remotePort)}`)) inode = fields[9];
    }
  }
  if (!inode) throw new Error(`no socket ${localPort} -> ${remotePort}`);
  const fd = readdirSync("/proc/self/fd").find((entry) => {
    try {
      return readlinkSync(`/proc/self/fd/${entry}`) === `socket:[${inode}]`;
    } catch {
      return false;
    }
  });
  if (fd === undefined) throw new Error(`socket inode ${inode} is not ours`);
  const { symbols, close } = dlopen("libc.so.6", {
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  });
  try {
    const value = new Int32Array(1);
    const length = new Uint32Array([4]);
    const IPPROTO_TCP = 6;
    const TCP_NODELAY = 1;
    if (symbols.getsockopt(Number(fd), IPPROTO_TCP, TCP_NODELAY, ptr(value), ptr(length)) !== 0)
      throw new Error("getsockopt failed");
    return value[0] !== 0;
  } finally {
    close();
  }
}

/**
 * Wraps Bun's `socket.write` on the socket prototype (found through a probe
 * connection to `port`), so `seen` gets every chunk any socket writes; returns
 * the undo.
 */
export async function onSocketWrites(port: number, seen: (chunk: unknown) => void): Promise<() => void> {
  const probe = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
  const prototype = Object.getPrototypeOf(probe) as { write: (chunk: unknown, ...rest: unknown[]) => number };
  probe.terminate();
  const write = prototype.write;
  prototype.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
    seen(chunk);
    return write.call(this, chunk, ...rest);
  };
  return () => {
    prototype.write = write;
  };
}
