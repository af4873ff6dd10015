/** Backpressure: a side that does not read holds the other at a high-water mark, never a growing buffer. */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { type AddCase, delay, rawPeer, writeUntilStalled } from "./kit.ts";

export function backpressureCases(add: AddCase): void {
  // On Deno, each read waited for its echo to be written before the next one,
  // so the server held one read (64 KiB) whatever highWaterMark said.
  for (const highWaterMark of [64 * 1024, 8 * 1024 * 1024]) {
    add(
      `backpressure: a peer that never reads, the server holds its high-water mark (${highWaterMark / 1024} KiB) unsent, then stops reading`,
      async (t) => {
        const server = await t.listen({ port: 0, highWaterMark });
        const peer = await rawPeer(t, { port: server.address.port });
        const limit = 200 * 1024 * 1024;
        const written = await writeUntilStalled(peer, limit, () => server.stats.bytesIn);
        assert.ok(written < limit, `the server took all ${written} bytes from a peer that never reads`);
        // Core's own count of received-but-unsent bytes: the whole high-water mark, and one read more at most.
        const pending = server.stats.bytesIn - server.stats.bytesOut;
        assert.ok(pending >= highWaterMark, `stopped reading with only ${pending} bytes unsent`);
        assert.ok(pending <= highWaterMark + 1024 * 1024, `read on to ${pending} bytes unsent`);
      },
      60_000,
    );
  }

  add(
    "backpressure: a client app that does not read, the client stops reading at its high-water mark, then catches up",
    async (t) => {
      const server = await t.listen({ port: 0 });
      const client = await t.connect({ port: server.address.port, highWaterMark: 64 * 1024 });
      const payload = randomBytes(64 * 1024 * 1024);
      const writing = client.write(payload).then(() => client.closeWrite());
      // Until the server has nothing more to send: everything is stuck in buffers.
      let last = -1;
      for (let i = 0; i < 60 && server.stats.bytesOut !== last; i++) {
        last = server.stats.bytesOut;
        await delay(500);
      }
      assert.ok(last < payload.byteLength / 2, `the client took ${last} bytes without being read`);
      let received = 0;
      for (let chunk = await client.read(); chunk; chunk = await client.read()) received += chunk.byteLength;
      await writing;
      assert.equal(received, payload.byteLength);
    },
    60_000,
  );
}
