import assert from "node:assert/strict";
import { concat } from "@tcp-echo/core/tools";
import { connect, type EchoServer } from "../src/index.ts";
import {
  codeOf,
  decoder,
  delay,
  encoder,
  randomBytes,
  rawClient,
  readAll,
  sha256,
  withServer,
  writeAll,
} from "./_helpers.ts";

Deno.test("the tutorial exchange: 'Hello, server!' round-trips", async () => {
  await withServer({}, async (server) => {
    await using client = await connect({ port: server.address.port });
    assert.equal(decoder.decode(await client.echo("Hello, server!")), "Hello, server!");
    assert.equal(client.runtime, "deno");
    assert.equal(client.remoteAddress.port, server.address.port);
  });
});

for (const [name, size] of [
  ["0 B", 0],
  ["1 B", 1],
  ["64 KiB", 64 * 1024],
  ["50 MB", 50 * 1024 * 1024],
] as const) {
  // One `echo()` of 50 MB is one `conn.write` that the kernel takes in parts:
  // without the loop on the returned count, bytes go missing and this fails.
  Deno.test(`byte-exact echo of ${name} of random bytes (hash compared)`, async () => {
    await withServer({}, async (server) => {
      const payload = randomBytes(size);
      const expected = await sha256(payload);
      await using client = await connect({ port: server.address.port });
      const echoed = await client.echo(payload, { timeout: 120_000 });
      assert.equal(echoed.byteLength, size);
      assert.equal(await sha256(echoed), expected);
      await client.closeWrite();
      await client.closed;
    });
  });
}

Deno.test("the server echoes 50 MB byte-exact to a raw client writing and reading at once", async () => {
  await withServer({}, async (server) => {
    const payload = randomBytes(50 * 1024 * 1024);
    const conn = await rawClient(server.address.port);
    const reading = readAll(conn);
    await writeAll(conn, payload);
    await conn.closeWrite();
    const echoed = await reading;
    conn.close();
    assert.equal(echoed.byteLength, payload.byteLength);
    assert.equal(await sha256(echoed), await sha256(payload));
  });
});

// Each read waited for its echo to be written before the next one, so the
// server held at most one read (64 KiB) whatever highWaterMark said.
for (const highWaterMark of [64 * 1024, 8 * 1024 * 1024]) {
  Deno.test(`a peer that never reads: the server holds its highWaterMark (${highWaterMark / 1024} KiB) unsent, then stops reading`, async () => {
    await withServer({ highWaterMark }, async (server) => {
      const conn = await rawClient(server.address.port);
      const chunk = randomBytes(1024 * 1024);
      let sent = 0;
      const writing = (async () => {
        for (let i = 0; i < 200; i++) sent += await conn.write(chunk);
      })().catch(() => {});
      // Written until nothing moves for 1 s: the server stopped reading and both sides' buffers are full.
      for (let last = -1; last !== sent; await delay(1000)) last = sent;
      assert.ok(sent < 200 * chunk.byteLength, `the server took all ${sent} bytes`);
      const pending = server.stats.bytesIn - server.stats.bytesOut;
      assert.ok(pending >= highWaterMark, `stopped reading with ${pending} bytes unsent`);
      assert.ok(pending <= highWaterMark + 1024 * 1024, `read on to ${pending} bytes unsent`);
      conn.close();
      await writing;
    });
  });
}

Deno.test("pipelining: 1,000 echoes of random sizes in flight on one connection, each matched in order", async () => {
  await withServer({}, async (server) => {
    await using client = await connect({ port: server.address.port });
    const payloads = Array.from({ length: 1000 }, (_, i) => randomBytes(1 + ((i * 7919) % 4096)));
    const replies = await Promise.all(payloads.map((payload) => client.echo(payload)));
    for (const [i, reply] of replies.entries()) assert.deepEqual(reply, payloads[i]);
  });
});

Deno.test("streaming: write() and read() carry 8 MiB byte-exact, then EOF after closeWrite", async () => {
  await withServer({}, async (server) => {
    await using client = await connect({ port: server.address.port });
    const payload = randomBytes(8 * 1024 * 1024);
    const reading = (async () => {
      const chunks: Uint8Array[] = [];
      for (let chunk = await client.read(); chunk; chunk = await client.read()) chunks.push(chunk);
      return chunks;
    })();
    for (let offset = 0; offset < payload.byteLength; offset += 100_000)
      await client.write(payload.subarray(offset, offset + 100_000));
    await client.closeWrite();
    const chunks = await reading;
    const echoed = concat(chunks);
    assert.equal(echoed.byteLength, payload.byteLength);
    assert.equal(await sha256(echoed), await sha256(payload));
    await client.closed;
  });
});

Deno.test("web streams: readable and writable pipe through the echo", async () => {
  await withServer({}, async (server) => {
    await using client = await connect({ port: server.address.port });
    const source = ReadableStream.from([encoder.encode("one "), encoder.encode("two "), encoder.encode("three")]);
    const [, text] = await Promise.all([source.pipeTo(client.writable), new Response(client.readable).text()]);
    assert.equal(text, "one two three");
  });
});

// --- half-close ---

async function halfCloseSlowReader(server: EchoServer): Promise<void> {
  const payload = randomBytes(4 * 1024 * 1024);
  const conn = await rawClient(server.address.port);
  // Keep writing in the background: the echo stream is larger than the socket buffers.
  const writing = (async () => {
    await writeAll(conn, payload);
    await conn.closeWrite();
  })();
  await delay(500);
  const echoed = await readAll(conn);
  await writing;
  conn.close();
  assert.equal(echoed.byteLength, payload.byteLength);
  assert.equal(await sha256(echoed), await sha256(payload));
}

// The server reads with `conn.read`, never by iterating `conn.readable` to EOF,
// which would close the connection before the rest of the echo is written.
Deno.test("half-close with a slow reader: every byte comes back, then EOF", async () => {
  await withServer({}, halfCloseSlowReader);
});

Deno.test("half-close with our client and a slow reader: every byte comes back, then EOF", async () => {
  await withServer({}, async (server) => {
    await using client = await connect({ port: server.address.port });
    const payload = randomBytes(4 * 1024 * 1024);
    const writing = (async () => {
      await client.write(payload);
      await client.closeWrite();
    })();
    await delay(500);
    const chunks: Uint8Array[] = [];
    for (let chunk = await client.read(); chunk; chunk = await client.read()) chunks.push(chunk);
    await writing;
    await client.closed;
    const echoed = concat(chunks);
    assert.equal(echoed.byteLength, payload.byteLength);
    assert.equal(await sha256(echoed), await sha256(payload));
  });
});

Deno.test("zero-byte session: connect and half-close at once gives a clean EOF", async () => {
  await withServer({}, async (server) => {
    const conn = await rawClient(server.address.port);
    await conn.closeWrite();
    assert.equal((await readAll(conn)).byteLength, 0);
    conn.close();
  });
});

Deno.test("echoes still resolve after closeWrite(), and new writes are ECLOSED", async () => {
  await withServer({}, async (server) => {
    await using client = await connect({ port: server.address.port });
    const pending = client.echo("after the FIN");
    await client.closeWrite();
    assert.equal(decoder.decode(await pending), "after the FIN");
    assert.equal(await codeOf(client.echo("late")), "ECLOSED");
    await client.closed;
  });
});
