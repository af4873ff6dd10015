/** A server's life: the address and counters it reports, and every way it closes. */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Address } from "@tcp-echo/core";
import { type AddCase, delay, sha256, text, until } from "./kit.ts";

export function lifecycleCases(add: AddCase): void {
  add("lifecycle: port 0 reports the real port; address, runtime and counters are set", async (t) => {
    const server = await t.listen({ port: 0 });
    assert.equal(server.runtime, t.runtime.runtime);
    assert.deepEqual(server.address, {
      transport: "tcp",
      hostname: "127.0.0.1",
      port: server.address.port,
      family: "IPv4",
    });
    assert.ok(server.address.port > 0);
    const client = await t.connect({ port: server.address.port });
    await client.echo("12345");
    await client.closeWrite();
    await client.closed;
    await until(() => server.connections === 0);
    const { accepted, bytesIn, bytesOut, active } = server.stats;
    assert.deepEqual({ accepted, bytesIn, bytesOut, active }, { accepted: 1, bytesIn: 5, bytesOut: 5, active: 0 });
  });

  add("lifecycle: listen on 'localhost' reports the numeric address it bound", async (t) => {
    const server = await t.listen({ hostname: "localhost", port: 0 });
    assert.match(server.address.hostname, /^(127\.0\.0\.1|::1)$/);
    const client = await t.connect({ hostname: "localhost", port: server.address.port });
    assert.equal(text(await client.echo("hi")), "hi");
  });

  // A listener bound to one address reports it as every connection's local
  // address without asking the kernel; a wildcard listener still asks.
  add("lifecycle: onConnection reports both addresses, for a listener on one address and on 0.0.0.0", async (t) => {
    for (const hostname of ["127.0.0.1", "0.0.0.0"]) {
      const seen: { local: Address; remote: Address }[] = [];
      const server = await t.listen({
        hostname,
        port: 0,
        onConnection: (connection) =>
          void seen.push({ local: connection.localAddress, remote: connection.remoteAddress }),
      });
      const client = await t.connect({ port: server.address.port });
      await client.echo("where");
      await until(() => seen.length === 1);
      assert.deepEqual(seen[0]?.local, {
        transport: "tcp",
        hostname: "127.0.0.1",
        port: server.address.port,
        family: "IPv4",
      });
      assert.deepEqual(seen[0]?.remote, client.localAddress);
    }
  });

  add(
    "lifecycle: close() twice returns the same promise; it and closed resolve, and nothing is accepted",
    async (t) => {
      const server = await t.listen({ port: 0 });
      const first = server.close();
      const second = server.close();
      assert.equal(second, first);
      await Promise.all([first, server.closed]);
      assert.equal(await t.codeOf(t.connect({ port: server.address.port })), "ECONNREFUSED");
    },
  );

  add("lifecycle: close() stops accepting at once while an open connection finishes its echo", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    await client.echo("before");
    const closing = server.close();
    // Deno closes the listening descriptor once its pending accept is cancelled, a
    // turn of the event loop later: a connect in the same turn is reset, not refused.
    await delay(0);
    assert.equal(await t.codeOf(t.connect({ port: server.address.port })), "ECONNREFUSED");
    const payload = randomBytes(1024 * 1024);
    const late = client.echo(payload);
    await client.closeWrite();
    assert.equal(sha256(await late), sha256(payload));
    await client.closed;
    await closing;
    assert.equal(server.connections, 0);
  });

  add("lifecycle: close({ force: true }) ends open connections at once", async (t) => {
    const server = await t.listen({ port: 0 });
    const client = await t.connect({ port: server.address.port });
    await client.echo("x");
    const begin = performance.now();
    await server.close({ force: true });
    assert.equal(server.connections, 0);
    // Nothing was in flight, so the client may see a clean EOF; the connection is over either way.
    await client.closed.catch(() => {});
    // Far below the 10 s drain timeout that a close without force waits for.
    assert.ok(performance.now() - begin < 1000, `closed after ${performance.now() - begin} ms`);
    assert.equal(await t.codeOf(client.echo("y")), "ECLOSED");
  });

  add("lifecycle: the drain timeout forces connections that do not finish", async (t) => {
    const server = await t.listen({ port: 0, drainTimeout: 200 });
    const client = await t.connect({ port: server.address.port });
    await client.echo("x");
    await server.close();
    assert.equal(server.connections, 0);
    await client.closed.catch(() => {});
    assert.equal(await t.codeOf(client.echo("y")), "ECLOSED");
  });

  add("lifecycle: an AbortSignal closes the server", async (t) => {
    const controller = new AbortController();
    const server = await t.listen({ port: 0, signal: controller.signal });
    controller.abort();
    await server.closed;
    assert.equal(await t.codeOf(t.connect({ port: server.address.port })), "ECONNREFUSED");
  });

  add("lifecycle: await using disposes the server", async (t) => {
    let port = 0;
    {
      await using server = await t.runtime.listen({ port: 0 });
      port = server.address.port;
    }
    assert.equal(await t.codeOf(t.connect({ port })), "ECONNREFUSED");
  });
}
