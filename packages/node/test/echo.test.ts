import { createHash, randomBytes } from "node:crypto";
import * as net from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { type ConnectionSummary, connect, type EchoServer, isEchoError, listen } from "../src/index.ts";

const servers: EchoServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ force: true })));
});

async function start(options: Parameters<typeof listen>[0] = {}): Promise<EchoServer> {
  const server = await listen({ port: 0, ...options });
  servers.push(server);
  return server;
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return isEchoError(error) ? error.code : `not an EchoError: ${String(error)}`;
  }
  return undefined;
}

/** A raw node:net client, for behaviours our own client would never do. */
function rawClient(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true }, () => resolve(socket));
    socket.once("error", reject);
  });
}

function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (predicate()) resolve();
      else if (Date.now() > deadline) reject(new Error("condition not met in time"));
      else setTimeout(check, 10);
    };
    check();
  });
}

describe("node: byte-exact echo", () => {
  test("the tutorial exchange: 'Hello, server!' round-trips", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const reply = await client.echo("Hello, server!");
    expect(new TextDecoder().decode(reply)).toBe("Hello, server!");
  });

  test.each([
    ["0 B", 0],
    ["1 B", 1],
    ["64 KiB", 64 * 1024],
    ["50 MB", 50 * 1024 * 1024],
  ])(
    "payload %s comes back byte-exact (hash compared)",
    async (_name, size) => {
      const server = await start();
      await using client = await connect({ port: server.address.port });
      const payload = randomBytes(size);
      const reply = await client.echo(payload);
      expect(reply.byteLength).toBe(size);
      expect(sha256(reply)).toBe(sha256(payload));
    },
    60_000,
  );

  test("pipelining: 1,000 echoes of random sizes in flight on one connection, each matched in order", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const payloads = Array.from({ length: 1000 }, () => randomBytes(1 + Math.floor(Math.random() * 4096)));
    const replies = await Promise.all(payloads.map((p) => client.echo(p)));
    replies.forEach((reply, i) => {
      expect(sha256(reply)).toBe(sha256(payloads[i] as Uint8Array));
    });
  });

  test("streaming: write() and read() carry 8 MiB byte-exact, then EOF after closeWrite", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const payload = randomBytes(8 * 1024 * 1024);
    const received: Uint8Array[] = [];
    const reading = (async () => {
      for (let chunk = await client.read(); chunk; chunk = await client.read()) received.push(chunk);
    })();
    for (let offset = 0; offset < payload.byteLength; offset += 65536) {
      await client.write(payload.subarray(offset, offset + 65536));
    }
    await client.closeWrite();
    await reading;
    expect(sha256(Buffer.concat(received))).toBe(sha256(payload));
    await client.closed;
  });

  test("web streams: readable and writable pipe through the echo", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const writer = client.writable.getWriter();
    await writer.write(new TextEncoder().encode("stream "));
    await writer.write(new TextEncoder().encode("me"));
    await writer.close();
    let text = "";
    for await (const chunk of client.readable) text += new TextDecoder().decode(chunk);
    expect(text).toBe("stream me");
  });
});

describe("node: half-close", () => {
  test("half-close with a slow reader: every byte comes back, then EOF", async () => {
    const server = await start();
    const socket = await rawClient(server.address.port);
    socket.pause();
    const payload = randomBytes(16 * 1024 * 1024);
    socket.end(payload);
    // Start reading only 500 ms later, so the server's queue is full when the FIN arrives.
    await new Promise((r) => setTimeout(r, 500));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.resume();
    await new Promise((resolve) => socket.once("end", resolve));
    socket.destroy();
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(payload));
  }, 30_000);

  test("zero-byte session: connect and half-close at once gives a clean EOF", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    await client.closeWrite();
    expect(await client.read()).toBeNull();
    await expect(client.closed).resolves.toBeUndefined();
  });

  test("echoes still resolve after closeWrite(), and new writes are ECLOSED", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const pending = client.echo("after the FIN");
    await client.closeWrite();
    expect(new TextDecoder().decode(await pending)).toBe("after the FIN");
    expect(await codeOf(client.echo("late"))).toBe("ECLOSED");
  });
});

describe("node: misbehaving peers never take the server down", () => {
  test("a peer reset mid-stream: the server keeps serving and its count returns to zero", async () => {
    const errors: string[] = [];
    const server = await start({ onError: (e) => void errors.push(e.code) });
    for (let i = 0; i < 20; i++) {
      const socket = await rawClient(server.address.port);
      socket.write(randomBytes(256 * 1024));
      socket.resetAndDestroy();
    }
    await until(() => server.connections === 0);
    await using client = await connect({ port: server.address.port });
    expect(new TextDecoder().decode(await client.echo("still here"))).toBe("still here");
    expect(server.stats.accepted).toBe(21);
    // The resets are reported, as resets.
    expect(errors.length).toBeGreaterThan(0);
    for (const code of errors) expect(["ECONNRESET", "EPIPE"]).toContain(code);
  });

  test("hooks that throw or reject are reported as EHOOK and never crash the server", async () => {
    const reported: string[] = [];
    const server = await start({
      onConnection: () => {
        throw new Error("boom");
      },
      onClose: async () => {
        throw new Error("async boom");
      },
      onError: (error) => {
        reported.push(error.message);
        throw new Error("even onError throws");
      },
    });
    await using client = await connect({ port: server.address.port });
    expect(new TextDecoder().decode(await client.echo("ok"))).toBe("ok");
    await client.closeWrite();
    await client.closed;
    await until(() => reported.length === 2);
    expect(reported).toEqual(["onConnection hook failed: boom", "onClose hook failed: async boom"]);
    expect(server.stats.errors.EHOOK).toBe(2);
  });

  test("a client that sends one byte at a time, slowly, gets every byte back", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const replies: Promise<Uint8Array>[] = [];
    for (let i = 0; i < 5; i++) {
      replies.push(client.echo(new Uint8Array([i])));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await Promise.all(replies)).map((r) => r[0])).toEqual([0, 1, 2, 3, 4]);
  });
});

describe("node: limits", () => {
  test("maxConnections: one more is closed at once, counted, and reported; the others are served", async () => {
    const closes: ConnectionSummary[] = [];
    const server = await start({ maxConnections: 2, onClose: (s) => void closes.push(s) });
    const a = await connect({ port: server.address.port });
    const b = await connect({ port: server.address.port });
    await a.echo("a");
    await b.echo("b");
    const c = await connect({ port: server.address.port });
    expect(await codeOf(c.echo("c"))).toMatch(/ECONNRESET|ECLOSED|EPROTO/);
    expect(server.stats.rejected).toBe(1);
    expect(closes.some((s) => s.reason === "limit")).toBe(true);
    expect(new TextDecoder().decode(await a.echo("a again"))).toBe("a again");
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  test("maxConnectionsPerAddress: a second connection from one IP is refused while another IP is served", async () => {
    const server = await start({ maxConnectionsPerAddress: 1 });
    const { port } = server.address;
    const fromLocal = (localAddress: string) =>
      new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect({ port, host: "127.0.0.1", localAddress, allowHalfOpen: true }, () =>
          resolve(socket),
        );
        socket.once("error", reject);
      });
    const first = await fromLocal("127.0.0.1");
    const second = await fromLocal("127.0.0.1");
    second.on("error", () => {});
    // The server closes the second one at accept: it sees EOF (or a reset) without any echo.
    await new Promise((resolve) => {
      second.once("end", resolve);
      second.once("close", resolve);
    });
    const other = await fromLocal("127.0.0.2");
    const echoed = await new Promise<string>((resolve) => {
      other.once("data", (chunk: Buffer) => resolve(chunk.toString()));
      other.write("other address");
    });
    expect(echoed).toBe("other address");
    expect(server.stats.rejected).toBe(1);
    for (const socket of [first, second, other]) socket.destroy();
  });

  test("idleTimeout: a silent connection is closed within T + 1 s and counted", async () => {
    const server = await start({ idleTimeout: 300 });
    const socket = await rawClient(server.address.port);
    const begin = Date.now();
    await new Promise((resolve) => socket.once("end", resolve));
    // The contract: not before T (a few ms of slack: the server may accept just before the
    // client's connect event), and within T + 1 s (a deadline, not a speed measurement).
    expect(Date.now() - begin).toBeGreaterThanOrEqual(290);
    expect(Date.now() - begin).toBeLessThan(1300);
    socket.destroy();
    await until(() => server.stats.idleClosed === 1);
  });

  test.each([64 * 1024, 8 * 1024 * 1024])(
    "a peer that never reads: the server holds its high-water mark (%i B) unsent, then stops reading",
    async (highWaterMark) => {
      const server = await start({ highWaterMark });
      const socket = await rawClient(server.address.port);
      socket.pause();
      let written = 0;
      const chunk = Buffer.alloc(64 * 1024, 7);
      // Write until the kernel buffers on both sides are full and the write stalls.
      for (let i = 0; i < 2000; i++) {
        const ok = socket.write(chunk);
        written += chunk.byteLength;
        if (!ok) {
          const drained = await Promise.race([
            new Promise((r) => socket.once("drain", () => r(true))),
            new Promise((r) => setTimeout(() => r(false), 500)),
          ]);
          if (!drained) break;
        }
      }
      expect(written).toBeLessThan(100 * 1024 * 1024);
      // Core's own count of received-but-unsent bytes: the whole high-water mark, and little more.
      const pending = server.stats.bytesIn - server.stats.bytesOut;
      expect(pending).toBeGreaterThanOrEqual(highWaterMark);
      expect(pending).toBeLessThan(highWaterMark + 256 * 1024);
      socket.destroy();
    },
    60_000,
  );
});

describe("node: errors carry one code set", () => {
  test.each([
    ["port 70000", { port: 70000 }],
    ["port -1", { port: -1 }],
    ["port 1.5", { port: 1.5 }],
    ["port 'abc' (never a Unix socket path)", { port: "abc" as unknown as number }],
    ["empty host", { hostname: "" }],
  ])("invalid option %s: listen and connect reject with EINVAL", async (_name, options) => {
    expect(await codeOf(listen(options))).toBe("EINVAL");
    expect(await codeOf(connect(options))).toBe("EINVAL");
  });

  test("EADDRINUSE names the address and what to do", async () => {
    const server = await start();
    const error = await listen({ port: server.address.port }).catch((e: unknown) => e);
    expect(isEchoError(error, "EADDRINUSE")).toBe(true);
    expect((error as Error).message).toContain(`127.0.0.1:${server.address.port}`);
  });

  test("ECONNREFUSED when nothing listens", async () => {
    const server = await start();
    const { port } = server.address;
    await server.close();
    expect(await codeOf(connect({ port }))).toBe("ECONNREFUSED");
  });

  test("ENOTFOUND for a host name that does not resolve", async () => {
    expect(await codeOf(connect({ hostname: "no-such-host.invalid", port: 9 }))).toBe("ENOTFOUND");
  });

  test("an aborted signal cancels connect with EABORTED", async () => {
    const server = await start();
    expect(await codeOf(connect({ port: server.address.port, signal: AbortSignal.abort() }))).toBe("EABORTED");
  });

  test("a per-call echo timeout is ETIMEDOUT and fails the connection", async () => {
    // A server that accepts and never answers.
    const sockets: net.Socket[] = [];
    const silent = net.createServer({ allowHalfOpen: true }, (s) => {
      s.pause();
      sockets.push(s);
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const { port } = silent.address() as net.AddressInfo;
    const client = await connect({ port });
    expect(await codeOf(client.echo("x", { timeout: 100 }))).toBe("ETIMEDOUT");
    await expect(client.closed).rejects.toMatchObject({ code: "ETIMEDOUT" });
    for (const s of sockets) s.destroy();
    silent.close();
  });
});

describe("node: server lifecycle", () => {
  test("port 0 reports the real port; address, runtime and counters are set", async () => {
    const server = await start();
    expect(server.address.port).toBeGreaterThan(0);
    expect(server.address.hostname).toBe("127.0.0.1");
    expect(server.runtime).toBe("node");
    await using client = await connect({ port: server.address.port });
    await client.echo("12345");
    await client.closeWrite();
    await client.closed;
    await until(() => server.connections === 0);
    expect(server.stats).toMatchObject({ accepted: 1, bytesIn: 5, bytesOut: 5, active: 0 });
  });

  // A listener bound to one address reports it as every connection's local
  // address without asking the kernel; a wildcard listener still asks.
  test("onConnection reports both addresses, for a listener on one address and on 0.0.0.0", async () => {
    for (const hostname of ["127.0.0.1", "0.0.0.0"]) {
      const seen: { local: unknown; remote: unknown }[] = [];
      const server = await start({
        hostname,
        onConnection: (c) => void seen.push({ local: c.localAddress, remote: c.remoteAddress }),
      });
      await using client = await connect({ port: server.address.port });
      await client.echo("where");
      await until(() => seen.length === 1);
      expect(seen[0]?.local).toEqual({
        transport: "tcp",
        hostname: "127.0.0.1",
        port: server.address.port,
        family: "IPv4",
      });
      expect(seen[0]?.remote).toEqual(client.localAddress);
    }
  });

  test("close() twice returns the same promise and resolves", async () => {
    const server = await listen({ port: 0 });
    const first = server.close();
    const second = server.close();
    expect(second).toBe(first);
    await first;
    await server.closed;
  });

  test("close() stops accepting at once while open connections finish their echo", async () => {
    const server = await listen({ port: 0 });
    const client = await connect({ port: server.address.port });
    await client.echo("before");
    const closing = server.close();
    expect(await codeOf(connect({ port: server.address.port }))).toBe("ECONNREFUSED");
    const late = client.echo("finishing");
    await client.closeWrite();
    expect(new TextDecoder().decode(await late)).toBe("finishing");
    await closing;
  });

  test("close({ force: true }) ends open connections at once", async () => {
    const server = await listen({ port: 0 });
    const client = await connect({ port: server.address.port });
    await client.echo("x");
    const begin = performance.now();
    await server.close({ force: true });
    // Nothing was in flight, so the client sees a clean EOF; the connection is over either way.
    await client.closed.catch(() => {});
    // Far below the 10 s drain timeout that a close without force waits for.
    expect(performance.now() - begin).toBeLessThan(1000);
    expect(await codeOf(client.echo("y"))).toBe("ECLOSED");
  });

  test("the drain timeout forces connections that do not finish", async () => {
    const server = await listen({ port: 0, drainTimeout: 200 });
    const client = await connect({ port: server.address.port });
    await client.echo("x");
    await server.close();
    expect(server.connections).toBe(0);
    await client.closed.catch(() => {});
    expect(await codeOf(client.echo("y"))).toBe("ECLOSED");
  });

  test("an AbortSignal closes the server", async () => {
    const controller = new AbortController();
    const server = await listen({ port: 0, signal: controller.signal });
    controller.abort();
    await server.closed;
    expect(await codeOf(connect({ port: server.address.port }))).toBe("ECONNREFUSED");
  });

  test("await using disposes the server", async () => {
    let port = 0;
    {
      await using server = await listen({ port: 0 });
      port = server.address.port;
    }
    expect(await codeOf(connect({ port }))).toBe("ECONNREFUSED");
  });
});
