/**
 * The client's socket over plain TCP (adapter.ts, `openSocket`): every read
 * goes to one shared buffer, and what `read()` returned keeps its bytes however
 * many reads follow (core hands out views of what was written, never of the
 * read buffer); writes carry no callback (`DrainSocketIO`), and
 * what the kernel held is reported at 'drain', so `write()` still waits while
 * a server does not read and goes on once it does.
 */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { test } from "vitest";
import { connect, listen } from "../src/index.ts";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("chunks returned by read() keep their bytes after later reads (small reads, growing reads, bulk)", async () => {
  const server = await listen({ port: 0 });
  const client = await connect({ port: server.address.port as number, hostname: "127.0.0.1" });
  const payload = randomBytes(8 * 1024 * 1024);
  const chunks: Uint8Array[] = [];
  const reading = (async () => {
    for (let chunk = await client.read(); chunk; chunk = await client.read()) chunks.push(chunk);
  })();
  // Small writes one at a time first (small reads), then the bulk.
  let offset = 0;
  for (; offset < 64 * 100; offset += 100) {
    await client.write(payload.subarray(offset, offset + 100));
    await delay(1);
  }
  for (; offset < payload.byteLength; offset += 64 * 1024)
    await client.write(payload.subarray(offset, offset + 64 * 1024));
  await client.closeWrite();
  await reading;
  await client.closed;
  await server.close();
  assert.ok(chunks.length > 64, `only ${chunks.length} reads`);
  assert.ok(Buffer.concat(chunks).equals(payload), "a chunk read earlier was overwritten by a later read");
}, 30_000);

test("a server that does not read stops the client's write() at its high-water mark; it goes on once the server reads", async () => {
  let peer: net.Socket | undefined;
  const rawServer = await new Promise<net.Server>((resolve) => {
    const raw = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.pause();
      peer = socket;
    });
    raw.listen(0, "127.0.0.1", () => resolve(raw));
  });
  const client = await connect({
    port: (rawServer.address() as net.AddressInfo).port,
    hostname: "127.0.0.1",
    highWaterMark: 64 * 1024,
  });
  const chunk = randomBytes(64 * 1024);
  const limit = 256 * 1024 * 1024;
  let written = 0;
  let stalled: Promise<void> | undefined;
  while (written < limit) {
    const writing = client.write(chunk);
    written += chunk.byteLength;
    const done = await Promise.race([writing.then(() => true), delay(500).then(() => false)]);
    if (!done) {
      stalled = writing;
      break;
    }
  }
  assert.ok(stalled, `write() never waited: ${written} bytes written to a server that does not read`);
  // Now the server reads and echoes; the client reads the echo, and the stalled write resolves.
  const server = peer as net.Socket;
  server.pipe(server);
  server.resume();
  let received = 0;
  const reading = (async () => {
    for (let got = await client.read(); got; got = await client.read()) received += got.byteLength;
  })();
  const resolved = await Promise.race([stalled.then(() => true), delay(10_000).then(() => false)]);
  assert.ok(resolved, "write() still waits after the server read everything (the flush at 'drain' was not reported)");
  await client.closeWrite();
  await reading;
  await client.closed;
  assert.equal(received, written);
  server.destroy();
  rawServer.close();
}, 60_000);

test("a reader that falls behind pauses the socket at highWaterMark, and its reads go on once it reads again", async () => {
  // The socket reads into our buffer and has no 'data' listener (adapter.ts,
  // `onConnect`): pause() and resume() must still stop and restart its reads.
  const pauses: net.Socket[] = [];
  const pause = net.Socket.prototype.pause;
  net.Socket.prototype.pause = function (this: net.Socket) {
    pauses.push(this);
    return pause.call(this);
  };
  const server = await listen({ port: 0 });
  try {
    const client = await connect({
      port: server.address.port as number,
      hostname: "127.0.0.1",
      highWaterMark: 16 * 1024,
    });
    const payload = randomBytes(1024 * 1024);
    const writes: Promise<void>[] = [];
    for (let offset = 0; offset < payload.byteLength; offset += 16 * 1024)
      writes.push(client.write(payload.subarray(offset, offset + 16 * 1024)));
    // Nothing is read until the echo has come back past the mark and the client has paused.
    while (pauses.length === 0) await delay(10);
    const chunks: Uint8Array[] = [];
    const reading = (async () => {
      for (let chunk = await client.read(); chunk; chunk = await client.read()) chunks.push(chunk);
    })();
    await Promise.all(writes);
    await client.closeWrite();
    await reading;
    await client.closed;
    assert.ok(Buffer.concat(chunks).equals(payload), "the echo read after the pause differs from what was written");
  } finally {
    net.Socket.prototype.pause = pause;
    await server.close();
  }
}, 30_000);
