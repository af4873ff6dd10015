/**
 * The client's small-write batch goes out from one `setImmediate` (the
 * adapter's `afterIO`), not after three still microtask turns: seen through
 * Bun's own `socket.write`, wrapped on the socket prototype.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeWithStillTurns } from "@tcp-echo/testkit/fixtures";
import { connect, type EchoServer, listen } from "../src/index.ts";
import { onSocketWrites } from "./helpers.ts";

let server: EchoServer;
/** Byte lengths of every `socket.write` while `watching`. */
const calls: number[] = [];
let watching = false;
let restore: () => void;

beforeAll(async () => {
  server = await listen({ port: 0 });
  restore = await onSocketWrites(server.address.port, (chunk) => {
    if (watching && chunk instanceof Uint8Array) calls.push(chunk.byteLength);
  });
});

afterAll(async () => {
  restore();
  await server.close({ force: true });
});

test("small writes with more than three still microtask turns between them are still one socket write, and every byte comes back", async () => {
  const connection = await connect({ hostname: "127.0.0.1", port: server.address.port as number });
  watching = true;
  try {
    await writeWithStillTurns(connection, "ab", 10);
  } finally {
    watching = false;
  }
  expect(calls).toEqual([20]);
  let echoed = 0;
  while (echoed < 20) echoed += ((await connection.read()) as Uint8Array).byteLength;
  await connection.closeWrite();
  expect(await connection.read()).toBeNull();
  await connection.close();
  expect(echoed).toBe(20);
});
