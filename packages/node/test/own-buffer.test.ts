/**
 * The server's own read buffer (adapter.ts, `readIntoOwnBuffer`): the
 * session's pause still stops the handle's reads (with the onread slots set,
 * `Socket.pause` is what calls readStop), and bytes stay exact while writes
 * the kernel has not taken still point into a buffer.
 */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { test } from "vitest";
import { listen } from "../src/index.ts";

const open = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true }, () => resolve(socket));
    socket.once("error", reject);
  });
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

test("a peer that never reads: the server stops reading at its high-water mark (1 KiB) on the own-buffer path", async () => {
  const server = await listen({ port: 0, highWaterMark: 1024 });
  const peer = await open(server.address.port as number);
  peer.pause(); // never reads: the echo backs up, the server must stop reading
  const payload = randomBytes(64 * 1024 * 1024);
  peer.write(payload);
  let last = -1;
  for (let i = 0; i < 50 && server.stats.bytesIn !== last; i++) {
    last = server.stats.bytesIn;
    await settle();
  }
  const pending = server.stats.bytesIn - server.stats.bytesOut;
  peer.destroy();
  await server.close();
  assert.ok(pending <= 1024 + 256 * 1024, `read on to ${pending} bytes unsent with highWaterMark 1024`);
}, 30_000);

test("echoes byte-exact through a peer that reads late (writes held by the kernel, buffers grown and replaced)", async () => {
  const server = await listen({ port: 0 });
  const peer = await open(server.address.port as number);
  const payload = randomBytes(32 * 1024 * 1024);
  const got: Buffer[] = [];
  const ended = new Promise<void>((resolve) => peer.on("end", resolve));
  peer.on("data", (chunk: Buffer) => got.push(chunk));
  peer.pause();
  // Small writes first (the buffer starts small and grows), then the bulk.
  for (let i = 0; i < 64; i++) peer.write(payload.subarray(i * 100, (i + 1) * 100));
  peer.write(payload.subarray(6400));
  peer.end();
  await settle();
  peer.resume();
  await ended;
  await server.close();
  assert.ok(Buffer.concat(got).equals(payload), "the echo differs from what was sent");
}, 30_000);
