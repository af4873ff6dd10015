/**
 * The server's writes without a callback (adapter.ts, `DrainSocketIO`): what
 * the kernel did not take at once is reported flushed at 'drain', so a session
 * paused at its high-water mark reads again, every byte is counted out, and
 * the FIN after a half-close waits for the last of them. And the client's
 * small-write batch, which takes its microtasks from the adapter's table.
 */
import * as assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { test } from "vitest";
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

test("the client's small-write batch waits on settled-promise reactions, not Node's queueMicrotask (an AsyncResource each)", async () => {
  const server = await listen({ port: 0 });
  const connection = await connect({ hostname: "127.0.0.1", port: server.address.port as number });
  // Node's queueMicrotask makes an async resource of type "Microtask" per call, whoever calls it.
  let microtasks = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === "Microtask") microtasks++;
    },
  }).enable();
  let echoed = 0;
  try {
    // The hook sees one, so it would see the batch's.
    queueMicrotask(() => {});
    for (let i = 0; i < 10; i++) await connection.write("ab");
    while (echoed < 20) echoed += ((await connection.read()) as Uint8Array).byteLength;
  } finally {
    hook.disable();
  }
  await connection.closeWrite();
  assert.equal(await connection.read(), null);
  await connection.close();
  await server.close();
  assert.equal(echoed, 20);
  assert.equal(microtasks, 1);
});
