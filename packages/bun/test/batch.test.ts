/**
 * The client's small-write batch goes out from one `setImmediate` (the
 * adapter's `afterIO`), not after three still microtask turns: seen through
 * Bun's own `socket.write`, wrapped on the socket prototype.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type EchoServer, listen } from "../src/index.ts";

let server: EchoServer;
/** Byte lengths of every `socket.write` while `watching`. */
const calls: number[] = [];
let watching = false;
let restore: () => void;

beforeAll(async () => {
  server = await listen({ port: 0 });
  const probe = await Bun.connect({ hostname: "127.0.0.1", port: server.address.port, socket: { data() {} } });
  const prototype = Object.getPrototypeOf(probe) as { write: (chunk: unknown, ...rest: unknown[]) => number };
  probe.terminate();
  const write = prototype.write;
  prototype.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
    if (watching && chunk instanceof Uint8Array) calls.push(chunk.byteLength);
    return write.call(this, chunk, ...rest);
  };
  restore = () => {
    prototype.write = write;
  };
});

afterAll(async () => {
  restore();
  await server.close({ force: true });
});

test("small writes with more than three still microtask turns between them are still one socket write, and every byte comes back", async () => {
  const connection = await connect({ hostname: "127.0.0.1", port: server.address.port as number });
  watching = true;
  try {
    for (let i = 0; i < 10; i++) {
      await connection.write("ab");
      // Without `afterIO` the batch goes out once three turns in a row add nothing.
      for (let turn = 0; turn < 5; turn++) await Promise.resolve();
    }
    // Queued after the batch's own, so it runs after the batch is written; the
    // server reads it only at the next poll, after this test has stopped watching.
    await new Promise((resolve) => setImmediate(resolve));
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
