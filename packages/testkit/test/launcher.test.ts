/**
 * `./tcp-echo --runtime R serve ...`, exactly as the README writes it, is the
 * server process itself: a signal sent to the command's pid reaches the server,
 * which drains and exits 0, and nothing is left holding the port.
 */

import { type ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, test } from "vitest";
import { ROOT, RUNTIME_NAMES } from "../src/runtimes.ts";

const LAUNCHER = join(ROOT, "tcp-echo");
/** Hard deadline for one server process (a backstop: each case waits far less). */
const LIFETIME = 60_000;

interface Started {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves at the server's next `connection` log line. */
  accepted(): Promise<void>;
}

const groups: number[] = [];
// Whatever a failed case left in a command's process group is killed with it.
afterEach(() => {
  for (const pid of groups.splice(0)) killGroup(pid);
});

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** Starts `./tcp-echo ARGS...` in its own process group (so the test can kill everything it forked). */
async function start(args: readonly string[]): Promise<Started> {
  const child = spawn(LAUNCHER, args, { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  groups.push(child.pid!);
  const deadline = setTimeout(() => killGroup(child.pid!), LIFETIME);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  deadline.unref();
  child.stderr!.resume();
  const lines = createInterface({ input: child.stdout! });
  const waiting: (() => void)[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    lines.on("line", (line) => {
      const event = JSON.parse(line) as { event?: string; port?: number };
      if (event.event === "listening" && event.port) resolve(event.port);
      if (event.event === "connection") waiting.shift()?.();
    });
    void exited.then(({ code }) => reject(new Error(`./tcp-echo exited with ${code} before listening`)));
  });
  return { child, port, exited, accepted: () => new Promise((resolve) => waiting.push(resolve)) };
}

/** Whether any process is left in the command's process group. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the group empties within 3 s of the command's exit. Helpers the
 * runtime started (such as tsx's esbuild service under Node) can exit a moment after the
 * server does; one that is still there after 3 s was left behind.
 */
async function groupGone(pid: number): Promise<boolean> {
  const deadline = Date.now() + 3000;
  while (groupAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

function connectTo(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Everything the socket receives until EOF, and whether it ended with an error (a reset). */
function readToEnd(socket: net.Socket): Promise<{ bytes: Buffer; error: boolean }> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => resolve({ bytes: Buffer.concat(chunks), error: false }));
    socket.on("error", () => resolve({ bytes: Buffer.concat(chunks), error: true }));
  });
}

function refused(port: number): Promise<boolean> {
  return connectTo(port).then(
    (socket) => {
      socket.destroy();
      return false;
    },
    (error: NodeJS.ErrnoException) => error.code === "ECONNREFUSED",
  );
}

describe.each(RUNTIME_NAMES)("./tcp-echo --runtime %s serve", (runtime) => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    test(`${signal} to the command: the open connection drains, exit 0, the port is free`, async () => {
      const server = await start(["--runtime", runtime, "serve", "--port", "0", "--json"]);
      const accepted = server.accepted();
      const socket = await connectTo(server.port);
      // Signalled once the server holds the connection: one still in the kernel's backlog is a different case.
      await accepted;
      const received = readToEnd(socket);
      socket.write("before the signal|");
      process.kill(server.child.pid!, signal);
      // While draining the server still echoes this connection, until the client half-closes.
      await new Promise((resolve) => setTimeout(resolve, 300));
      socket.end("after the signal");
      const { bytes, error } = await received;
      expect(error).toBe(false);
      expect(bytes.toString()).toBe("before the signal|after the signal");
      expect(await server.exited).toEqual({ code: 0, signal: null });
      expect(await groupGone(server.child.pid!)).toBe(true);
      expect(await refused(server.port)).toBe(true);
    });
  }

  test("SIGINT twice: the second forces an open connection closed and the command exits", async () => {
    // A drain timeout far beyond the test's: only the second signal can end it in time.
    const server = await start(["--runtime", runtime, "serve", "--port", "0", "--json", "--drain-timeout", "600000"]);
    const accepted = server.accepted();
    const socket = await connectTo(server.port);
    await accepted;
    const received = readToEnd(socket);
    socket.write("never half-closed");
    process.kill(server.child.pid!, "SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(groupAlive(server.child.pid!)).toBe(true);
    process.kill(server.child.pid!, "SIGINT");
    const exit = await server.exited;
    expect(exit.signal).toBe(null);
    expect((await received).bytes.toString()).toBe("never half-closed");
    expect(await groupGone(server.child.pid!)).toBe(true);
    expect(await refused(server.port)).toBe(true);
  });
});
