/** UDP (`transport: "udp"`): each datagram back whole, the limits, and the client's retries and checks. */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as dgram from "node:dgram";
import type {
  DatagramConnectOptions,
  DatagramListenOptions,
  EchoDatagramClient,
  EchoDatagramServer,
} from "@tcp-echo/core";
import { type AddCase, type Scope, until } from "./kit.ts";

async function listenUdp(
  t: Scope,
  options: Omit<DatagramListenOptions, "transport"> = {},
): Promise<EchoDatagramServer> {
  const server = await t.runtime.listen({ transport: "udp", port: 0, ...options });
  t.defer(() => server.close());
  return server;
}

async function connectUdp(t: Scope, options: Omit<DatagramConnectOptions, "transport">): Promise<EchoDatagramClient> {
  const client = await t.runtime.connect({ transport: "udp", ...options });
  t.defer(() => client.close());
  return client;
}

/** A raw `node:dgram` socket, closed when the case ends. */
async function rawSocket(t: Scope, address = "127.0.0.1"): Promise<dgram.Socket> {
  const socket = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  t.defer(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return socket;
}

export function udpCases(add: AddCase): void {
  add("udp: 0 to 65,507 bytes over IPv4 and 65,527 over IPv6 come back whole, as one datagram each", async (t) => {
    for (const [hostname, sizes] of [
      ["127.0.0.1", [0, 1, 1472, 8192, 65_507]],
      ["::1", [0, 65_527]],
    ] as const) {
      const server = await listenUdp(t, { hostname });
      assert.equal(server.address.family, hostname === "::1" ? "IPv6" : "IPv4");
      const client = await connectUdp(t, { hostname, port: server.address.port });
      for (const size of sizes) {
        const payload = randomBytes(size);
        assert.deepEqual(Buffer.from(await client.echo(payload)), payload, `${size} bytes over ${hostname}`);
      }
      assert.equal(client.maxDatagram, hostname === "::1" ? 65_527 : 65_507);
      const stats = server.stats;
      assert.equal(stats.datagramsIn, sizes.length);
      assert.equal(stats.datagramsOut, sizes.length);
      assert.equal(
        stats.bytesOut,
        sizes.reduce((sum: number, size: number) => sum + size, 0),
      );
    }
  });

  add("udp: a source over its rate limit is dropped and counted while another source is answered", async (t) => {
    const server = await listenUdp(t, { sourceRateLimit: { datagramsPerSecond: 10, bytesPerSecond: 0 } });
    const flooder = await rawSocket(t);
    let answers = 0;
    flooder.on("message", () => answers++);
    for (let i = 0; i < 50; i++) flooder.send(Buffer.from([i]), server.address.port, "127.0.0.1");
    await until(() => server.stats.datagramsIn >= 40);
    const other = await rawSocket(t, "127.0.0.2");
    const answered = new Promise<Buffer>((resolve) => other.once("message", resolve));
    other.send("another source", server.address.port, "127.0.0.1");
    assert.equal((await answered).toString(), "another source");
    const { dropped, datagramsIn, datagramsOut } = server.stats;
    assert.ok(dropped.sourceRate >= datagramsIn - 11, `dropped ${dropped.sourceRate} of ${datagramsIn}`);
    assert.equal(datagramsOut + dropped.sourceRate, datagramsIn);
    assert.ok(answers <= 10, `the flooder got ${answers} answers, over its bucket of 10`);
  });

  add("udp: no answer is retried, then ETIMEDOUT; an answer that differs is EPROTO", async (t) => {
    const silent = await rawSocket(t);
    const asked: Buffer[] = [];
    silent.on("message", (data) => asked.push(data));
    const client = await connectUdp(t, { hostname: "127.0.0.1", port: silent.address().port });
    const failure = await t.failure(client.echo("anyone?", { timeout: 50, retries: 2 }));
    assert.equal(failure.code, "ETIMEDOUT");
    await until(() => asked.length === 3);
    assert.equal(client.stats.retransmitted, 2);
    const changer = await rawSocket(t);
    changer.on("message", (data, from) =>
      changer.send(Buffer.from(data.toString().toUpperCase()), from.port, from.address),
    );
    const other = await connectUdp(t, { hostname: "127.0.0.1", port: changer.address().port });
    assert.equal((await t.failure(other.echo("quiet", { timeout: 2000 }))).code, "EPROTO");
  });

  add("udp: TCP options are EINVAL before binding; close is idempotent; echo after close is ECLOSED", async (t) => {
    const tcpOnly = t.runtime.listen({ transport: "udp", port: 0, maxConnections: 1 } as DatagramListenOptions);
    assert.equal((await t.failure(tcpOnly)).code, "EINVAL");
    const server = await listenUdp(t);
    const client = await connectUdp(t, { hostname: "127.0.0.1", port: server.address.port });
    assert.equal(new TextDecoder().decode(await client.echo("once")), "once");
    await Promise.all([client.close(), client.close()]);
    assert.equal((await t.failure(client.echo("after"))).code, "ECLOSED");
    await server.close();
    await server.close();
    await server.closed;
  });
}
