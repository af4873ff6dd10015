/**
 * The client's small-write batch goes out from one `setImmediate` per batch
 * (the adapter's `afterIO`), seen by wrapping the global `setImmediate`, which
 * the adapter looks up at each call.
 */
import { expect, test } from "bun:test";
import { connect, listen } from "../src/index.ts";

test("small writes awaited one by one are sent by one setImmediate, and every byte comes back", async () => {
  const server = await listen({ port: 0 });
  const connection = await connect({ hostname: "127.0.0.1", port: server.address.port as number });
  const original = globalThis.setImmediate;
  let immediates = 0;
  globalThis.setImmediate = ((...args: Parameters<typeof setImmediate>) => {
    immediates++;
    return original(...args);
  }) as typeof setImmediate;
  let echoed = 0;
  try {
    for (let i = 0; i < 10; i++) await connection.write("ab");
  } finally {
    globalThis.setImmediate = original;
  }
  while (echoed < 20) echoed += ((await connection.read()) as Uint8Array).byteLength;
  await connection.closeWrite();
  expect(await connection.read()).toBeNull();
  await connection.close();
  await server.close();
  expect(echoed).toBe(20);
  expect(immediates).toBe(1);
});
