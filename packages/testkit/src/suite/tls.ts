/** TLS: the same echo and half-close as over TCP, a handshake that fails names its reason, and mutual TLS. */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ConnectionSummary } from "@tcp-echo/core";
import { type AddCase, type Certs, rawPeer, readToEnd, sha256, slowReader, text, until } from "./kit.ts";

export function tlsCases(add: AddCase, certs: Certs): void {
  add("tls: 4 MiB byte-exact, checked against the CA for 127.0.0.1, ::1 and localhost", async (t) => {
    const server = await t.listen({ port: 0, tls: certs.server });
    const port = server.address.port;
    const payload = randomBytes(4 * 1024 * 1024);
    assert.equal(sha256(await t.roundTrip({ port, tls: { ca: certs.ca } }, payload)), sha256(payload));
    assert.equal(text(await t.roundTrip({ hostname: "localhost", port, tls: { ca: certs.ca } }, "name")), "name");
    const six = await t.listen({ hostname: "::1", port: 0, tls: certs.server });
    const overSix = await t.roundTrip({ hostname: "[::1]", port: six.address.port, tls: { ca: certs.ca } }, "v6");
    assert.equal(text(overSix), "v6");
  });

  // Bun's shutdown() and Deno's closeWrite() on a TLS socket send close_notify and keep reading.
  add("tls: half-close, echoes resolve after closeWrite(), then EOF", async (t) => {
    const server = await t.listen({ port: 0, tls: certs.server });
    const client = await t.connect({ port: server.address.port, tls: { ca: certs.ca } });
    const pending = client.echo("after close_notify");
    await client.closeWrite();
    assert.equal(text(await pending), "after close_notify");
    assert.equal(await client.read(), null);
    await client.closed;
  });

  // Our client, not a node:tls peer: Deno's node:tls client never emits `end`
  // (nor `close`) after its own end(), against any server, though every byte arrives.
  add("tls: half-close, our client as a slow reader gets 8 MiB back, then EOF", async (t) => {
    const server = await t.listen({ port: 0, tls: certs.server });
    const client = await t.connect({ port: server.address.port, tls: { ca: certs.ca } });
    const payload = randomBytes(8 * 1024 * 1024);
    assert.equal(sha256(await slowReader(client, payload)), sha256(payload));
  });

  // A Node TLS server made with allowHalfOpen kept such a socket in CLOSE-WAIT
  // for handshakeTimeout (120 s): under a descriptor limit, new clients starved.
  add("tls: a peer that sends FIN before finishing the handshake is let go at once", async (t) => {
    const server = await t.listen({ port: 0, tls: certs.server });
    const raw = await rawPeer(t, { port: server.address.port });
    raw.on("error", () => {});
    const reading = readToEnd(raw);
    raw.end();
    // Nothing was sent, so nothing but EOF can come back: the server's FIN answers ours.
    assert.equal((await reading).byteLength, 0);
    assert.equal(text(await t.roundTrip({ port: server.address.port, tls: { ca: certs.ca } }, "after")), "after");
  });

  // Bun's end() over TLS keeps the descriptor until the peer answers close_notify:
  // an idle peer that held its side open kept the connection, and no close was reported.
  add("tls: an idle peer that holds its side open is closed and reported as idle-timeout", async (t) => {
    const closes: ConnectionSummary[] = [];
    const server = await t.listen({
      port: 0,
      tls: certs.server,
      idleTimeout: 300,
      onClose: (summary) => void closes.push(summary),
    });
    // node:tls with allowHalfOpen does not answer close_notify, as a Node peer would not.
    const peer = await rawPeer(t, { port: server.address.port, ca: certs.ca });
    peer.on("error", () => {});
    const letGo = readToEnd(peer).catch(() => Buffer.alloc(0));
    await until(() => closes.length > 0);
    assert.deepEqual(
      closes.map((summary) => summary.reason),
      ["idle-timeout"],
    );
    assert.equal(server.connections, 0);
    assert.equal((await letGo).byteLength, 0);
  });

  add(
    "tls: ETLS for an unknown CA, with the reason in the message; the server reports it and counts no connection",
    async (t) => {
      const reported: string[] = [];
      const server = await t.listen({ port: 0, tls: certs.server, onError: (error) => void reported.push(error.code) });
      const port = server.address.port;
      const error = await t.failure(t.roundTrip({ port, tls: { ca: certs.otherCa } }, "x"));
      assert.equal(error.code, "ETLS");
      assert.match(error.message, /TLS handshake with 127\.0\.0\.1:\d+ failed: .*(certificate|issuer)/i);
      assert.equal((await t.failure(t.roundTrip({ port, tls: true }, "x"))).code, "ETLS");
      await until(() => reported.length === 2);
      // A client that rejects the certificate may drop the connection without an
      // alert (Node's does): its server sees a reset mid-handshake, not the reason.
      for (const code of reported) assert.match(code, /^(ETLS|ECONNRESET)$/);
      assert.equal(server.stats.accepted, 0);
    },
  );

  add("tls: ETLS for the wrong server name, naming it", async (t) => {
    const server = await t.listen({ port: 0, tls: certs.server });
    const tls = { ca: certs.ca, serverName: "wrong.example" };
    const error = await t.failure(t.roundTrip({ port: server.address.port, tls }, "x"));
    assert.equal(error.code, "ETLS");
    assert.ok(error.message.includes("wrong.example"), error.message);
  });

  add("tls: ETLS for an expired certificate, saying so", async (t) => {
    const server = await t.listen({ port: 0, tls: certs.expired });
    const error = await t.failure(t.roundTrip({ port: server.address.port, tls: { ca: certs.ca } }, "x"));
    assert.equal(error.code, "ETLS");
    assert.match(error.message, /expired/i);
  });

  const mutual = { ...certs.server, ca: certs.ca, requestCert: true };
  // types.ts, TlsServerOptions.requestCert: not available on Deno (Deno.listenTls cannot ask for one).
  add(
    "tls: mutual TLS, a client with a certificate is served, one without is ETLS (EINVAL at listen on Deno)",
    async (t) => {
      if (t.runtime.runtime === "deno") {
        const error = await t.failure(t.listen({ port: 0, tls: mutual }));
        assert.equal(error.code, "EINVAL");
        assert.match(error.message, /Deno\.listenTls cannot ask clients for a certificate/);
        return;
      }
      const reported: string[] = [];
      const server = await t.listen({ port: 0, tls: mutual, onError: (error) => void reported.push(error.code) });
      const port = server.address.port;
      assert.equal(text(await t.roundTrip({ port, tls: { ca: certs.ca, ...certs.client } }, "mutual")), "mutual");
      assert.equal((await t.failure(t.roundTrip({ port, tls: { ca: certs.ca } }, "anonymous"))).code, "ETLS");
      await until(() => reported.includes("ETLS"));
      assert.equal(server.stats.accepted, 1);
    },
  );

  add("tls: options that are not PEM, or requestCert without a CA, are EINVAL before any socket opens", async (t) => {
    const cases = [
      t.listen({ port: 0, tls: { cert: "/etc/tcp-echo/server.pem", key: certs.server.key } }),
      t.listen({ port: 0, tls: { ...certs.server, requestCert: true } }),
      t.connect({ port: 1, tls: { cert: certs.client.cert } }),
    ];
    for (const pending of cases) assert.equal((await t.failure(pending)).code, "EINVAL");
  });
}
