/**
 * Behind real balancers: HAProxy 2.6 (`send-proxy-v2`, an echo health check)
 * and nginx's stream module (`proxy_protocol on`, v1) in front of our servers
 * started with `serve --proxy-protocol`. The client is @tcp-echo/node, which
 * checks every echoed byte; the servers' `--json` lines say whom they saw.
 */

import { readFileSync } from "node:fs";
import * as net from "node:net";
import { connect, type EchoConnection } from "@tcp-echo/node";
import { streamHalfClose } from "@tcp-echo/testkit/drive";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  type Backend,
  type Balancer,
  type HaproxyBalancer,
  haproxyConfig,
  missingBalancer,
  nginxConfig,
  startHaproxy,
  startNginx,
} from "../src/balancers.ts";
import { missing, RUNTIMES, type RuntimeName, type ServerProcess, startServer } from "../src/servers.ts";

const MiB = 1024 * 1024;
/** Our servers believe only 127.0.0.1, where the balancers connect from; 127.0.0.2 is the untrusted peer. */
const TRUSTED = ["--proxy-protocol", "--proxy-from", "127.0.0.1/32"];

const backendsOf = (servers: ServerProcess[]): Backend[] =>
  servers.map((server, i) => ({ name: `echo${i + 1}`, port: server.port }));

/** The `connection` events of real clients (a balancer's own health checks have no `via`). */
function proxied(server: ServerProcess) {
  return server.events().filter((event) => event.event === "connection" && event.via !== undefined) as unknown as {
    remote: string;
    via: string;
  }[];
}

/** Which of `servers` logged the client at `port` (its own address and port), with the balancer's end. */
async function servedBy(servers: ServerProcess[], port: number): Promise<{ index: number; via: string }> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    for (const [index, server] of servers.entries()) {
      const event = proxied(server).find((e) => e.remote === `127.0.0.1:${port}`);
      if (event) return { index, via: event.via };
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no server logged a connection from 127.0.0.1:${port}`);
}

/** One echo through the balancer; returns the client's port. */
async function echoThrough(balancer: Balancer, message: string): Promise<number> {
  const connection = await connect({ port: balancer.port, replyTimeout: 5000 });
  try {
    expect(new TextDecoder().decode(await connection.echo(message))).toBe(message);
    return connection.localAddress.port;
  } finally {
    await connection.close();
  }
}

/** The 16 MiB stream with half-close, byte-exact (sha256 both ways and the count); the client's port. */
async function bulkThrough(balancer: Balancer): Promise<number> {
  const connection = await connect({ port: balancer.port, replyTimeout: 10_000 });
  const port = connection.localAddress.port;
  try {
    const streamed = await streamHalfClose(connection, 16 * MiB);
    expect(streamed.bytes).toBe(16 * MiB);
    expect(streamed.received).toBe(streamed.sent);
    await connection.closed;
  } finally {
    await connection.close();
  }
  return port;
}

/** A raw connection from 127.0.0.2 straight to a backend, sending a forged header: what came back, and how it ended. */
function forge(port: number): Promise<{ received: number; ended: string }> {
  return new Promise((resolve) => {
    let received = 0;
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: "127.0.0.2", allowHalfOpen: true }, () =>
      socket.write("PROXY TCP4 203.0.113.66 127.0.0.1 4444 7\r\nhello"),
    );
    socket.on("data", (chunk: Buffer) => {
      received += chunk.byteLength;
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve({ received, ended: error.code ?? "error" }));
    socket.once("end", () => resolve({ received, ended: "EOF" }));
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve({ received, ended: "still open after 5 s" });
    });
  });
}

/** Two `runtime` servers behind HAProxy, both marked UP (their echo checks passed through the PROXY protocol). */
async function behindHaproxy(runtime: RuntimeName): Promise<{ servers: ServerProcess[]; haproxy: HaproxyBalancer }> {
  const servers = await Promise.all([startServer(runtime, TRUSTED), startServer(runtime, TRUSTED)]);
  const haproxy = await startHaproxy(backendsOf(servers));
  await Promise.all(backendsOf(servers).map(({ name }) => haproxy.waitFor(name, "UP", 10_000)));
  return { servers, haproxy };
}

const haproxyMissing = missingBalancer("haproxy");

describe("the configs docs/operating-at-scale.md shows", () => {
  const doc = readFileSync(new URL("../../../docs/operating-at-scale.md", import.meta.url), "utf8");
  /** The fenced block under the heading that starts with `heading`. */
  const block = (heading: string): string => {
    const at = doc.indexOf(`### ${heading}`);
    expect(at, `a "### ${heading}" section`).toBeGreaterThanOrEqual(0);
    const match = /```\n([\s\S]*?)```/.exec(doc.slice(at));
    if (!match?.[1]) throw new Error(`no code block under "### ${heading}"`);
    return match[1];
  };
  const backends = [
    { name: "echo1", port: 7001 },
    { name: "echo2", port: 7002 },
  ];

  test("are the HAProxy config the tests run, byte for byte (ports and paths filled in)", () => {
    const generated = haproxyConfig({ port: 7000, backends, checkInterval: 100, stats: "/run/haproxy/admin.sock" });
    expect(block("HAProxy")).toBe(generated);
  });

  test("are the nginx config the tests run, byte for byte (ports and paths filled in)", () => {
    const generated = nginxConfig({ port: 7000, backends, dir: "/var/lib/tcp-echo-nginx" });
    expect(block("nginx stream")).toBe(generated);
  });
});

describe.skipIf(haproxyMissing)(
  `HAProxy (send-proxy-v2, echo health check) in front of our servers${haproxyMissing ? ` (skipped: ${haproxyMissing})` : ""}`,
  () => {
    describe.each(RUNTIMES.filter((runtime) => !missing(runtime)))("two %s servers", (runtime: RuntimeName) => {
      let servers: ServerProcess[] = [];
      let haproxy: HaproxyBalancer;
      beforeAll(async () => {
        ({ servers, haproxy } = await behindHaproxy(runtime));
      });
      afterAll(async () => {
        await haproxy?.stop();
        await Promise.all(servers.map((server) => server.stop()));
      });

      test("byte-exact echoes through it (16 MiB with half-close), each logged with the client's own address and port", async () => {
        const bulk = await bulkThrough(haproxy);
        const small = [await echoThrough(haproxy, "one"), await echoThrough(haproxy, "two")];
        const seen = await Promise.all([bulk, ...small].map((port) => servedBy(servers, port)));
        // Round robin: both backends served clients, and each saw the balancer as a different end than the client.
        expect(new Set(seen.map(({ index }) => index))).toEqual(new Set([0, 1]));
        for (const [i, { via }] of seen.entries()) {
          expect(via).toMatch(/^127\.0\.0\.1:\d+$/);
          expect(via).not.toBe(`127.0.0.1:${[bulk, ...small][i]}`);
        }
      });

      test("a forged header from an untrusted address is refused (EPROTO, nothing echoed); through HAProxy it is only data", async () => {
        const [first] = servers as [ServerProcess];
        const forged = await forge(first.port);
        expect(forged.received).toBe(0);
        expect(["EOF", "ECONNRESET"]).toContain(forged.ended);
        // The refusal is logged as it happens; the line may reach us a moment after the close. HAProxy's health
        // checks can end in EPROTO lines of their own (a check reset before its header), so look for ours.
        const refusal = JSON.parse(
          await first.process.line((line) => line.includes('"EPROTO"') && line.includes('"127.0.0.2:'), 5000),
        );
        expect(refusal).toMatchObject({
          event: "error",
          code: "EPROTO",
          remote: expect.stringMatching(/^127\.0\.0\.2:/),
        });
        expect(first.events().some((event) => String(event.remote).startsWith("203.0.113.66"))).toBe(false);
        // A client that sends the same line through HAProxy gets it echoed, and is logged as itself.
        const line = "PROXY TCP4 203.0.113.66 127.0.0.1 4444 7\r\n";
        const port = await echoThrough(haproxy, line);
        await servedBy(servers, port);
        for (const server of servers)
          expect(server.events().some((event) => String(event.remote).startsWith("203.0.113.66"))).toBe(false);
      });
    });

    describe("a backend killed mid-run (two node servers)", () => {
      let servers: ServerProcess[] = [];
      let haproxy: HaproxyBalancer;
      beforeAll(async () => {
        ({ servers, haproxy } = await behindHaproxy("node"));
      });
      afterAll(async () => {
        await haproxy?.stop();
        await Promise.all(servers.map((server) => server.stop()));
      });

      test("new connections go to the survivor, the survivor's streams lose no byte, the revived backend is used again once its check passes", async () => {
        const [, survivor] = servers as [ServerProcess, ServerProcess];
        // Four connections, round robin: two on each backend.
        const open: { connection: EchoConnection; index: number }[] = [];
        for (let i = 0; i < 4; i++) {
          const connection = await connect({ port: haproxy.port, replyTimeout: 10_000 });
          await connection.echo("hello");
          open.push({ connection, index: (await servedBy(servers, connection.localAddress.port)).index });
        }
        const onSurvivor = open.filter(({ index }) => index === 1).map(({ connection }) => connection);
        expect(onSurvivor).toHaveLength(2);
        for (const { connection, index } of open) if (index === 0) connection.closed.catch(() => {});

        // The survivor's connections stream 64 KiB chunks (each checked by the client) the whole time.
        let streaming = true;
        const streams = onSurvivor.map(async (connection) => {
          let sent = 0;
          let received = 0;
          const reader = (async () => {
            for (let chunk = await connection.read(); chunk; chunk = await connection.read())
              received += chunk.byteLength;
          })();
          while (streaming) {
            await connection.write(new Uint8Array(64 * 1024).fill(sent & 0xff));
            sent += 64 * 1024;
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
          await connection.closeWrite();
          await reader;
          await connection.closed;
          return { sent, received };
        });

        await new Promise((resolve) => setTimeout(resolve, 200));
        await servers[0]?.stop();
        await haproxy.waitFor("echo1", "DOWN", 5000);
        const whileDown: number[] = [];
        for (let i = 0; i < 4; i++) whileDown.push(await echoThrough(haproxy, `while down ${i}`));
        for (const port of whileDown) expect((await servedBy([survivor], port)).index).toBe(0);

        const revived = await startServer("node", [...TRUSTED, "--port", String(servers[0]?.port)]);
        servers[0] = revived;
        await haproxy.waitFor("echo1", "UP", 10_000);
        const afterRevival: number[] = [];
        for (let i = 0; i < 4; i++) afterRevival.push(await echoThrough(haproxy, `revived ${i}`));
        const onRevived = proxied(revived).filter((event) =>
          afterRevival.some((port) => event.remote === `127.0.0.1:${port}`),
        );
        expect(onRevived.length).toBeGreaterThan(0);

        streaming = false;
        for (const { sent, received } of await Promise.all(streams)) {
          expect(sent).toBeGreaterThan(0);
          expect(received).toBe(sent);
        }
        for (const { connection, index } of open) if (index === 0) await connection.close();
      });
    });
  },
);

const nginxMissing = missingBalancer("nginx");

describe.skipIf(nginxMissing)(
  `nginx stream (proxy_protocol on, v1) in front of two node servers${nginxMissing ? ` (skipped: ${nginxMissing})` : ""}`,
  () => {
    let servers: ServerProcess[] = [];
    let nginx: Balancer;
    beforeAll(async () => {
      servers = await Promise.all([startServer("node", TRUSTED), startServer("node", TRUSTED)]);
      nginx = await startNginx(backendsOf(servers));
    });
    afterAll(async () => {
      await nginx?.stop();
      await Promise.all(servers.map((server) => server.stop()));
    });

    test("byte-exact echoes through it (16 MiB with half-close), each logged with the client's own address and port", async () => {
      const ports = [await bulkThrough(nginx), await echoThrough(nginx, "one"), await echoThrough(nginx, "two")];
      const seen = await Promise.all(ports.map((port) => servedBy(servers, port)));
      expect(new Set(seen.map(({ index }) => index))).toEqual(new Set([0, 1]));
    });
  },
);
