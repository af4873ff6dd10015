/** The server's limits: connections in all and per address, and idle connections. */
import * as assert from "node:assert/strict";
import type { ConnectionSummary } from "@tcp-echo/core";
import { type AddCase, rawPeer, readToEnd, text, until } from "./kit.ts";

export function limitCases(add: AddCase): void {
  add("limits: maxConnections, one more is closed at once, counted and reported; the others are served", async (t) => {
    const closes: ConnectionSummary[] = [];
    const server = await t.listen({ port: 0, maxConnections: 2, onClose: (summary) => void closes.push(summary) });
    const a = await t.connect({ port: server.address.port });
    const b = await t.connect({ port: server.address.port });
    await a.echo("a");
    await b.echo("b");
    const c = await t.connect({ port: server.address.port });
    assert.match((await t.codeOf(c.echo("c"))) ?? "resolved", /^(ECONNRESET|ECLOSED|EPROTO)$/);
    assert.equal(server.stats.rejected, 1);
    assert.deepEqual(
      closes.map((summary) => summary.reason),
      ["limit"],
    );
    assert.equal(text(await a.echo("a again")), "a again");
  });

  add(
    "limits: maxConnectionsPerAddress, a second connection from one IP is refused while another IP is served",
    async (t) => {
      const server = await t.listen({ port: 0, maxConnectionsPerAddress: 1 });
      const port = server.address.port;
      const first = await rawPeer(t, { port, localAddress: "127.0.0.1" });
      const second = await rawPeer(t, { port, localAddress: "127.0.0.1" });
      second.on("error", () => {});
      // Closed at accept: EOF (or a reset) and not one byte of echo.
      assert.equal((await readToEnd(second).catch(() => Buffer.alloc(0))).byteLength, 0);
      const other = await rawPeer(t, { port, localAddress: "127.0.0.2" });
      const echoed = new Promise<string>((resolve) => other.once("data", (chunk: Buffer) => resolve(chunk.toString())));
      other.write("other address");
      assert.equal(await echoed, "other address");
      const still = new Promise<string>((resolve) => first.once("data", (chunk: Buffer) => resolve(chunk.toString())));
      first.write("first");
      assert.equal(await still, "first");
      assert.equal(server.stats.rejected, 1);
    },
  );

  add(
    "limits: idleTimeout: a byte that arrived while the server's event loop was held up longer than T is echoed, not closed as idle",
    async (t) => {
      const server = await t.listen({ port: 0, idleTimeout: 300 });
      const peer = await rawPeer(t, { port: server.address.port });
      const echoOf = () =>
        new Promise<string>((resolve, reject) => {
          peer.once("data", (chunk: Buffer) => resolve(chunk.toString()));
          peer.once("close", () => reject(new Error(`closed by the server (idle-closed ${server.stats.idleClosed})`)));
        });
      const first = echoOf();
      peer.write("first");
      assert.equal(await first, "first");
      // Two sweeps (every 75 ms) see it quiet after its echo.
      await new Promise((resolve) => setTimeout(resolve, 160));
      const late = echoOf();
      // The server is in this process: hold the whole loop for twice T, from a
      // setImmediate (after the loop's poll for I/O), so that on Node the next
      // thing to run is the timers, the sweep among them, before "late" is read.
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          peer.write("late");
          const end = Date.now() + 600;
          while (Date.now() < end) {}
          resolve();
        }),
      );
      assert.equal(await late, "late");
      assert.equal(server.stats.idleClosed, 0);
      peer.destroy();
    },
  );

  // Bun's own socket.timeout() fires only in 4 s steps: core's sweep must close on time.
  for (const idleTimeout of [300, 1000]) {
    add(
      `limits: idleTimeout ${idleTimeout} ms closes a silent connection within T + 1 s, counted and reported`,
      async (t) => {
        const closes: ConnectionSummary[] = [];
        const server = await t.listen({ port: 0, idleTimeout, onClose: (summary) => void closes.push(summary) });
        const peer = await rawPeer(t, { port: server.address.port });
        const begin = Date.now();
        assert.equal((await readToEnd(peer)).byteLength, 0);
        const elapsed = Date.now() - begin;
        // Not before T (a few ms of slack: the server may accept just before the
        // peer's connect event), and within T + 1 s: a deadline, not a speed.
        assert.ok(elapsed >= idleTimeout - 10 && elapsed < idleTimeout + 1000, `closed after ${elapsed} ms`);
        await until(() => closes.length > 0);
        assert.equal(server.stats.idleClosed, 1);
        assert.deepEqual(
          closes.map((summary) => summary.reason),
          ["idle-timeout"],
        );
      },
    );
  }
}
