/** Half-close over TCP: after the client's FIN, every byte still comes back, then EOF. */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { type AddCase, halfCloseSlowReader, rawPeer, readToEnd, sha256, slowReader, text, until } from "./kit.ts";

export function halfCloseCases(add: AddCase): void {
  // Bun closes a socket right after its `end` handler unless the listener allows
  // half-open; Deno closes the whole conn when `conn.readable` is read to EOF.
  // Either way the echo still queued at the FIN is lost, and these fail.
  for (const [name, highWaterMark] of [
    ["the default high-water mark: the server stops reading before the FIN", undefined],
    ["a 32 MiB high-water mark: the server reads the FIN with 16 MiB queued", 32 * 1024 * 1024],
  ] as const) {
    add(`half-close: a raw slow reader gets 16 MiB back, then EOF, with ${name}`, async (t) => {
      const server = await t.listen({ port: 0, ...(highWaterMark ? { highWaterMark } : {}) });
      const peer = await rawPeer(t, { port: server.address.port });
      const payload = randomBytes(16 * 1024 * 1024);
      assert.equal(sha256(await halfCloseSlowReader(peer, payload)), sha256(payload));
      await until(() => server.connections === 0);
    });
  }

  add("half-close: our client as a slow reader gets 4 MiB back, then EOF", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    const payload = randomBytes(4 * 1024 * 1024);
    assert.equal(sha256(await slowReader(client, payload)), sha256(payload));
  });

  // After its own shutdown(), Bun reports the server's FIN only as `close`,
  // never `end`: unless the adapter reports that as EOF, `closed` rejects ECLOSED.
  add("half-close: closeWrite() right after a 4 MiB echo still gets every byte, and closed resolves", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    const payload = randomBytes(4 * 1024 * 1024);
    const reply = client.echo(payload);
    await client.closeWrite();
    assert.equal(sha256(await reply), sha256(payload));
    await client.closed;
  });

  add("half-close: a zero-byte session, connect and half-close at once, gives a clean EOF", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    await client.closeWrite();
    assert.equal(await client.read(), null);
    await client.closed;
    const peer = await rawPeer(t, { port: server.address.port });
    const reading = readToEnd(peer);
    peer.end();
    assert.equal((await reading).byteLength, 0);
    await until(() => server.connections === 0);
    assert.equal(server.stats.accepted, 2);
  });

  add("half-close: echoes still resolve after closeWrite(), and new writes are ECLOSED", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    const pending = client.echo("after the FIN");
    await client.closeWrite();
    assert.equal(text(await pending), "after the FIN");
    assert.equal(await t.codeOf(client.echo("late")), "ECLOSED");
    await client.closed;
  });
}
