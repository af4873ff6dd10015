/** Misbehaving peers and hooks never take the server down. */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { type AddCase, rawPeer, text, until } from "./kit.ts";

export function peerCases(add: AddCase): void {
  add(
    "peers: 20 resets mid-stream are each reported as a reset; the server keeps serving, its count back to zero",
    async (t) => {
      const errors: string[] = [];
      const server = await t.listen({ port: 0, onError: (error) => void errors.push(error.code) });
      for (let i = 0; i < 20; i++) {
        const peer = await rawPeer(t, { port: server.address.port });
        const sent = server.stats.bytesIn;
        peer.write(randomBytes(256 * 1024));
        await until(() => server.stats.bytesIn > sent);
        // SO_LINGER 0: the server sees a reset, not a FIN.
        peer.resetAndDestroy();
      }
      await until(() => server.connections === 0);
      const client = await t.connect({ port: server.address.port });
      assert.equal(text(await client.echo("still here")), "still here");
      assert.equal(server.stats.accepted, 21);
      await until(() => errors.length === 20);
      // A reset arrives while the server reads (ECONNRESET) or while it writes the echo (EPIPE).
      for (const code of errors) assert.match(code, /^(ECONNRESET|EPIPE)$/);
    },
  );

  add("peers: hooks that throw or reject are reported as EHOOK and never crash the server", async (t) => {
    const reported: string[] = [];
    const server = await t.listen({
      port: 0,
      onConnection: () => {
        throw new Error("boom");
      },
      onClose: async () => {
        await Promise.resolve();
        throw new Error("async boom");
      },
      onError: (error) => {
        reported.push(`${error.code} ${error.message}`);
        throw new Error("even onError throws");
      },
    });
    for (let i = 0; i < 3; i++) {
      const client = await t.connect({ port: server.address.port });
      assert.equal(text(await client.echo(`round ${i}`)), `round ${i}`);
      await client.closeWrite();
      await client.closed;
      await until(() => reported.length === 2 * (i + 1));
    }
    const round = ["EHOOK onConnection hook failed: boom", "EHOOK onClose hook failed: async boom"];
    assert.deepEqual(reported, [...round, ...round, ...round]);
    assert.equal(server.stats.errors.EHOOK, 6);
  });
}
