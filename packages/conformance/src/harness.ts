/**
 * The cases the runner plays itself: the peer clients' cases (it feeds a byte
 * pipe such as `nc -N` and hashes what comes out) and the server-only cases (a
 * raw `node:net` client that does what no polite client would: never read,
 * reset mid-stream, trickle one byte a second), measured from /proc.
 */

import { createHash, randomBytes } from "node:crypto";
import * as net from "node:net";
import { CaseFailure, deadline, fail, sleep } from "./deadline.ts";
import { type ClientSpec, describeExit, HOST, type RunningServer } from "./participants.ts";
import { type CaseName, type CaseParams, formatSize } from "./plan.ts";
import { groupFds, groupRss, heldConnections } from "./proc.ts";
import { spawnManaged } from "./processes.ts";

type Checks = string[];

// --- peer clients ---

export const PIPE_CASES: Partial<
  Record<CaseName, (client: ClientSpec, port: number, params: CaseParams) => Promise<Checks>>
> = {
  async tutorial(client, port) {
    const message = "Hello, server!";
    if (client.tutorial) {
      const run = await runPipe(client.tutorial(port, message), 0, 0);
      const expected = `Received response from server: ${message}\n`;
      if (run.text !== expected) fail(`printed ${JSON.stringify(run.text)}, expected ${JSON.stringify(expected)}`);
      return [expected.trim()];
    }
    const run = await runPipe(client.pipe!(port), Buffer.from(message), 0);
    if (run.text !== message) fail(`got ${JSON.stringify(run.text)} back`);
    return [`"${message}" round-tripped`];
  },

  async payloads(client, port, params) {
    const checks: Checks = [];
    for (const size of params.payloads) {
      const run = await runPipe(client.pipe!(port), size, 0);
      if (run.bytes !== size) fail(`${formatSize(size)}: ${run.bytes} of ${size} bytes came back`);
      if (run.sent !== run.received) fail(`${formatSize(size)}: sha256 differs`);
      checks.push(`${formatSize(size)} sha256 ${run.sent.slice(0, 12)} ok`);
    }
    return checks;
  },

  async "half-close"(client, port, params) {
    const checks: Checks = [];
    for (const [size, delay] of [
      [params.halfClose, 0],
      [params.halfCloseLate, params.lateReadMs],
    ] as const) {
      const run = await runPipe(client.pipe!(port), size, delay);
      const what = `${formatSize(size)}, reading after ${delay} ms`;
      if (run.bytes !== size) fail(`${what}: ${run.bytes} of ${size} bytes came back before EOF`);
      if (run.sent !== run.received) fail(`${what}: sha256 differs`);
      checks.push(`${what}: exactly ${size} bytes, then EOF`);
    }
    return checks;
  },

  async "zero-byte"(client, port) {
    const run = await runPipe(client.pipe!(port), 0, 0);
    if (run.bytes !== 0) fail(`got ${run.bytes} bytes from a session that sent none`);
    return ["immediate half-close: clean EOF, no bytes"];
  },
};

interface PipeRun {
  sent: string;
  received: string;
  bytes: number;
  /** stdout as text, for short exchanges. */
  text: string;
}

/**
 * Runs a peer client, writes `input` (bytes, or a size of random bytes) to its
 * stdin and closes it, while a concurrent reader (started `readDelay` ms after
 * the first echoed byte) hashes its stdout. The client must exit 0 on its own.
 */
async function runPipe(argv: string[], input: Buffer | number, readDelay: number): Promise<PipeRun> {
  const size = typeof input === "number" ? input : input.byteLength;
  const [command, ...args] = argv as [string, ...string[]];
  // Far above a healthy run (16 MiB take about a second), low enough that a hung peer costs little.
  const timeoutMs = Math.round(10_000 + size / 10_000);
  const child = spawnManaged(command, args, { label: command, timeoutMs, stdin: "pipe" });
  const sentHash = createHash("sha256");
  const receivedHash = createHash("sha256");
  let bytes = 0;
  let head = "";
  const stdout = child.child.stdout!;
  stdout.pause();
  let startReading: () => void = () => {};
  const reading = new Promise<void>((resolve) => {
    startReading = () => {
      stdout.on("data", (chunk: Buffer) => {
        receivedHash.update(chunk);
        bytes += chunk.byteLength;
        if (head.length < 4096) head += chunk.toString("utf8");
      });
      stdout.once("end", resolve);
      stdout.resume();
    };
  });
  // The late reader waits from the first echoed byte, so a client that is slow to
  // start (or to connect) does not turn it into an early one.
  if (readDelay === 0) startReading();
  else stdout.once("readable", () => setTimeout(startReading, readDelay));
  const stdin = child.child.stdin!;
  if (typeof input === "number") {
    for (let offset = 0; offset < input && !child.exit; offset += 1024 * 1024) {
      const chunk = randomBytes(Math.min(1024 * 1024, input - offset));
      sentHash.update(chunk);
      if (!stdin.write(chunk))
        await Promise.race([new Promise((resolve) => stdin.once("drain", resolve)), child.exited]);
    }
  } else {
    sentHash.update(input);
    stdin.write(input);
  }
  stdin.end();
  const exit = await child.exited;
  await Promise.race([reading, new Promise((resolve) => setTimeout(resolve, 1000))]);
  if (exit.timedOut) fail(`${command} did not finish within ${timeoutMs} ms (${bytes} of ${size} bytes came back)`);
  if (exit.code !== 0) {
    fail(
      `${command} ended with ${describeExit(exit)} after ${bytes} of ${size} bytes: ${child.stderrTail() || "no message"}`,
    );
  }
  return { sent: sentHash.digest("hex"), received: receivedHash.digest("hex"), bytes, text: head };
}

// --- server-only cases ---

/** Server RSS growth allowed while a client pushes 200 MB at it without reading. */
export const RSS_LIMIT = 64 * 1024 * 1024;

export const HARNESS_CASES: Partial<
  Record<CaseName, (server: RunningServer, params: HarnessParams) => Promise<Checks>>
> = {
  async backpressure(server, { backpressureBytes }) {
    const pgid = server.process!.pid;
    const baseline = groupRss(pgid);
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, groupRss(pgid));
    }, 50);
    const socket = await rawConnect(server.port);
    try {
      // Never read: the echo piles up in the server unless it stops reading from us.
      socket.pause();
      const chunk = randomBytes(1024 * 1024);
      const sent = createHash("sha256");
      let written = 0;
      let stalled = false;
      while (written < backpressureBytes) {
        sent.update(chunk);
        written += chunk.byteLength;
        // No progress for a second: the server has stopped reading from us.
        if (!socket.write(chunk) && !(await drained(socket, 1000))) {
          stalled = true;
          break;
        }
      }
      const accepted = written - socket.writableLength;
      peak = Math.max(peak, groupRss(pgid));
      clearInterval(sampler);
      const growth = peak - baseline;
      if (!stalled) {
        fail(
          `never stalled: the server took all ${Math.round(written / 1e6)} MB from a client that reads nothing (its RSS grew by ${formatSize(growth)})`,
        );
      }
      if (growth > RSS_LIMIT) {
        fail(`server RSS grew by ${formatSize(growth)} (limit ${formatSize(RSS_LIMIT)}) while a client did not read`);
      }
      // Now read it all back: every byte the stalled client sent is still owed.
      const { bytes, hash } = await readToEnd(socket, () => socket.end(), 60_000);
      if (bytes !== written) fail(`after the stall, ${bytes} of ${written} bytes came back`);
      if (hash !== sent.digest("hex")) fail("after the stall, the echo differs (sha256)");
      return [
        `stalled after ${formatSize(accepted)} accepted of ${backpressureBytes / 1e6} MB`,
        `server RSS +${formatSize(Math.max(0, growth))} at most (${formatSize(baseline)} -> ${formatSize(peak)})`,
        `then all ${formatSize(written)} came back byte-exact`,
      ];
    } finally {
      clearInterval(sampler);
      socket.destroy();
    }
  },

  async resets(server, { resets }) {
    const pgid = server.process?.pid;
    const fdsBefore = pgid ? groupFds(pgid) : 0;
    const payload = randomBytes(256 * 1024);
    const resetOne = async () => {
      const socket = await rawConnect(server.port);
      // Reset once the echo is flowing, so the server is mid-write when the RST lands.
      await new Promise<void>((resolve) => {
        socket.once("data", () => resolve());
        socket.once("close", () => resolve());
        socket.write(payload);
      });
      socket.resetAndDestroy();
    };
    for (let done = 0; done < resets; done += 10) {
      await deadline(Promise.all(Array.from({ length: Math.min(10, resets - done) }, resetOne)), 20_000, "resets");
    }
    if (server.process?.exit) fail(`the server died: ${describeExit(server.process.exit)}`);
    await until(
      () => heldConnections(server.port) === 0,
      10_000,
      () => {
        return `the server still holds ${heldConnections(server.port)} connection(s) on port ${server.port} 10 s after the resets`;
      },
    );
    const checks = [`${resets} resets mid-stream; connections held afterwards: 0`];
    if (pgid) {
      await until(
        () => groupFds(pgid) <= fdsBefore + 2,
        10_000,
        () => `descriptors leaked: ${fdsBefore} before the resets, ${groupFds(pgid)} after`,
      );
      checks.push(`descriptors ${fdsBefore} -> ${groupFds(pgid)}`);
    }
    const next = await rawConnect(server.port);
    const probe = randomBytes(64 * 1024);
    const { bytes, hash } = await readToEnd(next, () => next.end(probe), 10_000);
    if (bytes !== probe.byteLength || hash !== sha256(probe)) fail(`the next client got ${bytes} of 65536 bytes right`);
    checks.push("the next client was served byte-exact");
    return checks;
  },

  async "slow-peer"(server, { slowPeerBytes }) {
    const socket = await rawConnect(server.port);
    try {
      const received: number[] = [];
      socket.on("data", (chunk: Buffer) => received.push(...chunk));
      const ended = new Promise<void>((resolve) => socket.once("end", resolve));
      const sent = randomBytes(slowPeerBytes);
      for (let i = 0; i < slowPeerBytes; i++) {
        if (i > 0) await sleep(1000);
        socket.write(sent.subarray(i, i + 1));
        await until(
          () => received.length > i,
          5000,
          () => `byte ${i + 1} of ${slowPeerBytes} was not echoed within 5 s`,
        );
        if (received[i] !== sent[i]) fail(`byte ${i + 1} came back as ${received[i]}, sent ${sent[i]}`);
      }
      socket.end();
      await deadline(ended, 10_000, "EOF after the slow peer half-closed");
      if (received.length !== slowPeerBytes) fail(`got ${received.length} bytes back, sent ${slowPeerBytes}`);
      return [`${slowPeerBytes} bytes, one a second, each echoed before the next was sent`];
    } finally {
      socket.destroy();
    }
  },

  async shutdown(server) {
    const managed = server.process!;
    const open = await rawConnect(server.port);
    try {
      const first = randomBytes(64 * 1024);
      const second = randomBytes(64 * 1024);
      const received: Buffer[] = [];
      let count = 0;
      open.on("data", (chunk: Buffer) => {
        received.push(chunk);
        count += chunk.byteLength;
      });
      const ended = new Promise<void>((resolve) => open.once("end", resolve));
      open.write(first);
      await until(
        () => count >= first.byteLength,
        10_000,
        () => "the first echo did not come back",
      );
      process.kill(managed.pid, "SIGINT");
      await until(
        async () => !(await connectsNow(server.port)),
        10_000,
        () => "the server still accepts new connections 10 s after SIGINT",
      );
      const checks = ["after SIGINT, a new connection is refused"];
      open.end(second);
      await deadline(ended, 15_000, "the open connection's echo to finish after SIGINT");
      const all = Buffer.concat(received);
      if (!all.equals(Buffer.concat([first, second]))) {
        fail(`the open connection got ${all.byteLength} of ${first.byteLength + second.byteLength} bytes right`);
      }
      checks.push("the open connection finished its echo (128 KiB byte-exact)");
      const exit = await deadline(managed.exited, 15_000, "the server to exit after draining");
      if (exit.code !== 0) fail(`the server ended with ${describeExit(exit)} after draining`);
      checks.push("the server exited 0");
      return checks;
    } finally {
      open.destroy();
    }
  },
};

export interface HarnessParams {
  readonly backpressureBytes: number;
  readonly resets: number;
  readonly slowPeerBytes: number;
}

// --- utils ---

function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, allowHalfOpen: true });
    socket.once("connect", () => {
      socket.off("error", reject);
      // A reset must never crash the runner.
      socket.on("error", () => {});
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** True if a connection is accepted (and not at once reset or closed by a server that is closing). */
function connectsNow(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code !== "ECONNREFUSED"));
  });
}

function drained(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off("drain", onDrain);
      resolve(false);
    }, ms);
    const onDrain = () => {
      clearTimeout(timer);
      resolve(true);
    };
    socket.once("drain", onDrain);
  });
}

/** Reads (and hashes) everything until EOF; `start` runs once the reader is in place. */
async function readToEnd(socket: net.Socket, start: () => void, ms: number): Promise<{ bytes: number; hash: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  const ended = new Promise<void>((resolve, reject) => {
    socket.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.byteLength;
    });
    socket.once("end", resolve);
    socket.once("close", () => reject(new CaseFailure(`the connection closed without EOF after ${bytes} bytes`)));
  });
  socket.resume();
  start();
  await deadline(ended, ms, `EOF (got ${formatSize(bytes)} so far)`);
  return { bytes, hash: hash.digest("hex") };
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

async function until(condition: () => boolean | Promise<boolean>, ms: number, explain: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) fail(explain());
    await sleep(50);
  }
}
