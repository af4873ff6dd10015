/**
 * The server's writes without a callback (adapter.ts, `DrainSocketIO`): what
 * the kernel did not take at once is reported flushed at 'drain', so a session
 * paused at its high-water mark reads again, every byte is counted out, and
 * the FIN after a half-close waits for the last of them. And the client's
 * small-write batch, which the adapter's table sends from one `setImmediate`.
 */
import * as assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { writeWithStillTurns } from "@tcp-echo/testkit/fixtures";
import { test, vi } from "vitest";
import { connect, listen } from "../src/index.ts";

test("a peer that reads late gets every byte and EOF, and bytesOut counts them all (flushes reported at 'drain')", async () => {
  const server = await listen({ port: 0, highWaterMark: 4096 });
  const payload = randomBytes(16 * 1024 * 1024);
  const peer = await new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ port: server.address.port as number, host: "127.0.0.1", allowHalfOpen: true }, () =>
      resolve(socket),
    );
    socket.once("error", reject);
  });
  const got: Buffer[] = [];
  peer.on("data", (chunk: Buffer) => got.push(chunk));
  const ended = new Promise<void>((resolve) => peer.on("end", resolve));
  // Not reading at first: the server's writes back up in the kernel, so they
  // complete later, and the session pauses at 4 KiB until they are reported.
  peer.pause();
  peer.end(payload);
  await new Promise((resolve) => setTimeout(resolve, 200));
  peer.resume();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no EOF: ${Buffer.concat(got).byteLength} of ${payload.byteLength} bytes back`)),
      5000,
    );
  });
  try {
    await Promise.race([ended, stalled]);
  } finally {
    clearTimeout(timer);
    peer.destroy();
  }
  const { bytesIn, bytesOut } = server.stats;
  await server.close();
  assert.ok(Buffer.concat(got).equals(payload), "the echo differs from what was sent");
  assert.equal(bytesIn, payload.byteLength);
  assert.equal(bytesOut, payload.byteLength);
});

test("the client's small-write batch goes out from one setImmediate, with no microtask of Node's per write", async () => {
  const server = await listen({ port: 0 });
  const connection = await connect({ hostname: "127.0.0.1", port: server.address.port as number });
  // Node makes an async resource of type "Immediate" per setImmediate, and one
  // of type "Microtask" per queueMicrotask, whoever calls them.
  const made = { Immediate: 0, Microtask: 0 };
  const hook = createHook({
    init(_id, type) {
      if (type === "Immediate" || type === "Microtask") made[type]++;
    },
  }).enable();
  let echoed = 0;
  try {
    // The hook sees one of each, so it would see the batch's.
    setImmediate(() => {});
    queueMicrotask(() => {});
    for (let i = 0; i < 10; i++) await connection.write("ab");
  } finally {
    hook.disable();
  }
  while (echoed < 20) echoed += ((await connection.read()) as Uint8Array).byteLength;
  await connection.closeWrite();
  assert.equal(await connection.read(), null);
  await connection.close();
  await server.close();
  assert.equal(echoed, 20);
  assert.deepEqual(made, { Immediate: 2, Microtask: 1 });
});

test("small writes with more than three still microtask turns between them are still one socket write", async () => {
  const server = await listen({ port: 0 });
  const connection = await connect({ hostname: "127.0.0.1", port: server.address.port as number });
  const calls: number[] = [];
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (this: net.Socket, ...args: Parameters<net.Socket["write"]>) {
    const [chunk] = args;
    if (chunk instanceof Uint8Array) calls.push(chunk.byteLength);
    return write.apply(this, args);
  } as net.Socket["write"];
  try {
    await writeWithStillTurns(connection, "ab", 10);
  } finally {
    net.Socket.prototype.write = write;
  }
  let echoed = 0;
  while (echoed < 20) echoed += ((await connection.read()) as Uint8Array).byteLength;
  await connection.close();
  await server.close();
  assert.deepEqual(calls, [20]);
  assert.equal(echoed, 20);
});

test("under vi.useFakeTimers() the batch still goes out: the adapter took Node's setImmediate when it loaded", async () => {
  const server = await listen({ port: 0 });
  const connection = await connect({ hostname: "127.0.0.1", port: server.address.port as number });
  const realTimeout = globalThis.setTimeout;
  vi.useFakeTimers();
  let outcome: string;
  try {
    outcome = await Promise.race([
      connection.echo("hi").then((echo) => new TextDecoder().decode(echo)),
      new Promise<string>((resolve) => realTimeout(() => resolve("no echo within 2 s"), 2000)),
    ]);
  } finally {
    vi.useRealTimers();
  }
  await connection.close();
  await server.close();
  assert.equal(outcome, "hi");
});
