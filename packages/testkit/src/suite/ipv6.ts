/** IPv6 loopback: numeric addresses without brackets, and half-close as over IPv4. */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { type AddCase, halfCloseSlowReader, rawPeer, sha256, text } from "./kit.ts";

export function ipv6Cases(add: AddCase): void {
  add("ipv6: a server on ::1 reports ::1 (numeric, no brackets); clients reach it as ::1 and [::1]", async (t) => {
    const server = await t.listen({ hostname: "::1", port: 0 });
    assert.deepEqual(server.address, { transport: "tcp", hostname: "::1", port: server.address.port, family: "IPv6" });
    assert.equal(text(await t.roundTrip({ hostname: "::1", port: server.address.port }, "six")), "six");
    const client = await t.connect({ hostname: "[::1]", port: server.address.port });
    assert.equal(client.remoteAddress.hostname, "::1");
    assert.equal(client.remoteAddress.family, "IPv6");
    assert.equal(text(await client.echo("bracketed")), "bracketed");
  });

  add("ipv6: [::1] given to listen is reported as ::1", async (t) => {
    const server = await t.listen({ hostname: "[::1]", port: 0 });
    assert.equal(server.address.hostname, "::1");
  });

  add("ipv6: half-close over ::1, a raw slow reader gets 8 MiB back, then EOF", async (t) => {
    const server = await t.listen({ hostname: "::1", port: 0 });
    const peer = await rawPeer(t, { host: "::1", port: server.address.port });
    const payload = randomBytes(8 * 1024 * 1024);
    assert.equal(sha256(await halfCloseSlowReader(peer, payload)), sha256(payload));
  });
}
