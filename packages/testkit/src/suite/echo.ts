/** Byte-exact echo over TCP: the sizes, the shapes of traffic and the client APIs. */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { type AddCase, rawPeer, readToEnd, sha256, text } from "./kit.ts";

export function echoCases(add: AddCase): void {
  add("echo: the tutorial exchange, 'Hello, server!' round-trips on the runtime's own client", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    assert.equal(text(await client.echo("Hello, server!")), "Hello, server!");
    assert.equal(client.runtime, t.runtime.runtime);
    assert.equal(client.remoteAddress.port, server.address.port);
  });

  for (const [name, size] of [
    ["0 B", 0],
    ["1 B", 1],
    ["64 KiB", 64 * 1024],
    ["50 MB", 50 * 1024 * 1024],
  ] as const) {
    // 50 MB is more than one write takes at once on any runtime: without the
    // adapter's loop on partial writes (Deno) or its queue (Bun), bytes go missing.
    add(
      `echo: a payload of ${name} comes back byte-exact (hash compared)`,
      async (t) => {
        const server = await t.listen({ port: 0 });
        const client = await t.connect({ port: server.address.port });
        const payload = randomBytes(size);
        const echoed = await client.echo(payload, { timeout: 60_000 });
        assert.equal(echoed.byteLength, size);
        assert.equal(sha256(echoed), sha256(payload));
      },
      90_000,
    );
  }

  add(
    "echo: 50 MB from a raw peer writing and reading at once comes back byte-exact",
    async (t) => {
      const server = await t.listen({ port: 0 });
      const peer = await rawPeer(t, { port: server.address.port });
      const payload = randomBytes(50 * 1024 * 1024);
      const reading = readToEnd(peer);
      peer.end(payload);
      const echoed = await reading;
      assert.equal(echoed.byteLength, payload.byteLength);
      assert.equal(sha256(echoed), sha256(payload));
    },
    90_000,
  );

  add(
    "echo: pipelining, 1,000 echoes of random sizes in flight on one connection, each matched in order",
    async (t) => {
      const server = await t.listen({ port: 0 });
      const client = await t.connect({ port: server.address.port });
      const payloads = Array.from({ length: 1000 }, (_, i) => randomBytes(1 + ((i * 7919) % 20_000)));
      const replies = await Promise.all(payloads.map((payload) => client.echo(payload)));
      for (const [i, reply] of replies.entries()) assert.equal(sha256(reply), sha256(payloads[i] as Uint8Array));
    },
  );

  add("echo: streaming, write() and read() carry 8 MiB byte-exact, then EOF after closeWrite()", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    const payload = randomBytes(8 * 1024 * 1024);
    const reading = (async () => {
      const chunks: Uint8Array[] = [];
      for (let chunk = await client.read(); chunk; chunk = await client.read()) chunks.push(chunk);
      return Buffer.concat(chunks);
    })();
    for (let offset = 0; offset < payload.byteLength; offset += 100_000)
      await client.write(payload.subarray(offset, offset + 100_000));
    await client.closeWrite();
    assert.equal(sha256(await reading), sha256(payload));
    await client.closed;
  });

  add("echo: web streams, readable and writable pipe through the echo", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    const writer = client.writable.getWriter();
    for (const part of ["one ", "two ", "three"]) await writer.write(new TextEncoder().encode(part));
    await writer.close();
    let echoed = "";
    for await (const chunk of client.readable) echoed += text(chunk);
    assert.equal(echoed, "one two three");
  });

  add("echo: a client that sends one byte at a time, slowly, gets every byte back in order", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    const replies: Promise<Uint8Array>[] = [];
    for (let i = 0; i < 5; i++) {
      replies.push(client.echo(new Uint8Array([i])));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(
      (await Promise.all(replies)).map((reply) => reply[0]),
      [0, 1, 2, 3, 4],
    );
  });
}
