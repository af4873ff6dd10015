import { afterEach, describe, expect, test } from "bun:test";
import { type ConnectionSummary, connect, type EchoError, type EchoServer, listen } from "../src/index.ts";
import { codeOf, noDelayOf, randomBytes, sha256, until, writeUntilStalled } from "./helpers.ts";

const servers: EchoServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ force: true })));
});

async function start(options: Parameters<typeof listen>[0] = {}): Promise<EchoServer> {
  const server = await listen({ port: 0, ...options });
  servers.push(server);
  return server;
}

/** A raw Bun socket, for behaviours our own client would never do; `received` counts what came back. */
async function rawClient(port: number) {
  const state = { received: 0, chunks: [] as Uint8Array[], ended: false, closed: false, onDrain: () => {} };
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    allowHalfOpen: true,
    socket: {
      data(_socket, chunk) {
        state.received += chunk.byteLength;
        state.chunks.push(chunk);
      },
      drain() {
        state.onDrain();
      },
      end() {
        state.ended = true;
      },
      close() {
        state.closed = true;
      },
    },
  });
  return { socket, state };
}

describe("bun: byte-exact echo", () => {
  test("the tutorial exchange: 'Hello, server!' round-trips", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const reply = await client.echo("Hello, server!");
    expect(new TextDecoder().decode(reply)).toBe("Hello, server!");
  });

  // 50 MB cannot pass through one socket.write(): without the per-socket queue
  // flushed on `drain`, part of it is silently dropped.
  test.each([
    ["0 B", 0],
    ["1 B", 1],
    ["64 KiB", 64 * 1024],
    ["50 MB", 50 * 1024 * 1024],
  ])("payload %s comes back byte-exact (hash compared)", async (_name, size) => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const payload = randomBytes(size);
    const reply = await client.echo(payload);
    expect(reply.byteLength).toBe(size);
    expect(sha256(reply)).toBe(sha256(payload));
  });

  test("pipelining: 1,000 echoes of random sizes in flight on one connection, each matched in order", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const payloads = Array.from({ length: 1000 }, (_, i) => randomBytes(1 + ((i * 7919) % 20_000)));
    const replies = await Promise.all(payloads.map((p) => client.echo(p)));
    replies.forEach((reply, i) => {
      expect(sha256(reply)).toBe(sha256(payloads[i] as Uint8Array));
    });
  });

  test("streaming: write() and read() carry 8 MiB byte-exact, then EOF after closeWrite", async () => {
    const server = await start();
    await using client = await connect({ port: server.address.port });
    const payload = randomBytes(8 * 1024 * 1024);
    const reading = (async () => {
      const pieces: Uint8Array[] = [];
      for (let chunk = await client.read(); chunk; chunk = await client.read()) pieces.push(chunk);
      return Buffer.concat(pieces);
    })();
    for (let offset = 0; offset < payload.byteLength; offset += 100_000)
      await client.write(payload.subarray(offset, offset + 100_000));
    await client.closeWrite();
    expect(sha256(await reading)).toBe(sha256(payload));
    await client.closed;
  });
});

describe("bun: half-close", () => {
  // Without allowHalfOpen on the listener, Bun closes the descriptor right after
  // the `end` handler and the echo still queued is lost.
  test("half-close with a slow reader: every byte comes back, then EOF", async () => {
    // A high-water mark above the payload: the server reads all of it and the
    // FIN while most of the echo is still queued, waiting for the slow reader.
    const server = await start({ highWaterMark: 32 * 1024 * 1024 });
    const { socket, state } = await rawClient(server.address.port);
    const payload = randomBytes(16 * 1024 * 1024);
    socket.pause();
    state.onDrain = () => flush();
    let offset = 0;
    const flush = () => {
      while (offset < payload.byteLength) {
        const written = socket.write(payload.subarray(offset));
        if (written <= 0) return;
        offset += written;
      }
      socket.shutdown();
    };
    flush();
    // The client starts reading 500 ms late.
    await Bun.sleep(500);
    socket.resume();
    await until(() => state.ended || state.closed, 30_000);
    expect(sha256(Buffer.concat(state.chunks))).toBe(sha256(payload));
    socket.end();
    await until(() => server.connections === 0);
  });

  test("our client: closeWrite() after a large echo still gets every byte, and closed resolves", async () => {
    const server = await start();
    const client = await connect({ port: server.address.port });
    const payload = randomBytes(4 * 1024 * 1024);
    const reply = client.echo(payload);
    await client.closeWrite();
    expect(sha256(await reply)).toBe(sha256(payload));
    // After our shutdown(), Bun reports the server's FIN only as `close`, never
    // `end`: the adapter must still report the EOF, or this rejects ECLOSED.
    await client.closed;
  });

  test("zero-byte session: connect and half-close at once gives a clean EOF", async () => {
    const server = await start();
    const client = await connect({ port: server.address.port });
    await client.closeWrite();
    expect(await client.read()).toBeNull();
    await client.closed;
    await until(() => server.connections === 0);
  });
});

describe("bun: backpressure", () => {
  test.each([64 * 1024, 8 * 1024 * 1024])(
    "a peer that never reads: the server holds its high-water mark (%i B) unsent, then stops reading",
    async (highWaterMark) => {
      const server = await start({ highWaterMark });
      const { socket, state } = await rawClient(server.address.port);
      socket.pause();
      const sent = await writeUntilStalled(socket, 200 * 1024 * 1024);
      expect(sent).toBeLessThan(64 * 1024 * 1024);
      const pending = server.stats.bytesIn - server.stats.bytesOut;
      expect(pending).toBeGreaterThanOrEqual(highWaterMark);
      expect(pending).toBeLessThanOrEqual(highWaterMark + 1024 * 1024);
      expect(state.received).toBe(0);
      socket.terminate();
      await until(() => server.connections === 0);
    },
  );
});

describe("bun: misbehaving peers never take the server down", () => {
  test("a peer reset mid-stream: the server keeps serving and its count returns to zero", async () => {
    const errors: EchoError[] = [];
    const server = await start({ onError: (error) => void errors.push(error) });
    const { socket } = await rawClient(server.address.port);
    socket.write(randomBytes(256 * 1024));
    await until(() => server.stats.bytesIn > 0);
    // terminate() sets SO_LINGER 0: the server sees a reset, not a FIN.
    socket.terminate();
    await until(() => server.connections === 0);
    expect(server.stats.errors.ECONNRESET).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(["ECONNRESET"]);
    await using client = await connect({ port: server.address.port });
    expect(new TextDecoder().decode(await client.echo("still here"))).toBe("still here");
  });

  test("hooks that throw or reject are reported as EHOOK and never crash the server", async () => {
    const errors: EchoError[] = [];
    const server = await start({
      onConnection: () => {
        throw new Error("boom");
      },
      onClose: async () => {
        throw new Error("async boom");
      },
      onError: (error) => {
        errors.push(error);
        throw new Error("even onError throws");
      },
    });
    for (let i = 0; i < 3; i++) {
      const client = await connect({ port: server.address.port });
      expect(new TextDecoder().decode(await client.echo(`round ${i}`))).toBe(`round ${i}`);
      await client.closeWrite();
      await client.closed;
    }
    await until(() => errors.length === 6);
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(["EHOOK"]));
  });
});

describe("bun: limits and socket options", () => {
  test("maxConnections: one more is closed at once, counted, and reported; the others are served", async () => {
    const closed: ConnectionSummary[] = [];
    const server = await start({ maxConnections: 1, onClose: (s) => void closed.push(s) });
    await using first = await connect({ port: server.address.port });
    const second = await connect({ port: server.address.port });
    expect(await codeOf(second.echo("x"))).toMatch(/^(ECONNRESET|ECLOSED|EPROTO)$/);
    expect(new TextDecoder().decode(await first.echo("served"))).toBe("served");
    expect(server.stats.rejected).toBe(1);
    expect(closed.map((c) => c.reason)).toEqual(["limit"]);
  });

  // Bun's own socket.timeout() only fires in 4 s steps; core's sweep must do it.
  test("idleTimeout 1 s closes a silent connection within 1-2 s, not Bun's 4 s tick", async () => {
    const closed: ConnectionSummary[] = [];
    const server = await start({ idleTimeout: 1000, onClose: (s) => void closed.push(s) });
    const client = await connect({ port: server.address.port });
    const opened = Date.now();
    await client.closed;
    const elapsed = Date.now() - opened;
    expect(closed.map((c) => c.reason)).toEqual(["idle-timeout"]);
    expect(server.stats.idleClosed).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    // Generous for a loaded machine, and still below Bun's first 4 s tick.
    expect(elapsed).toBeLessThan(3500);
  });

  // Bun turns TCP_NODELAY on by default; noDelay: false must really turn it off.
  test.each([true, false])("noDelay: %p is set on both ends of the connection", async (noDelay) => {
    const server = await start({ noDelay });
    await using client = await connect({ port: server.address.port, noDelay });
    await client.echo("x");
    const local = client.localAddress.port;
    const remote = client.remoteAddress.port;
    expect(noDelayOf(local, remote)).toBe(noDelay);
    expect(noDelayOf(remote, local)).toBe(noDelay);
  });
});

describe("bun: errors carry one code set", () => {
  test.each([
    ["port 70000", { port: 70000 }],
    ["port -1", { port: -1 }],
    ["port 1.5", { port: 1.5 }],
    ["port 'abc'", { port: "abc" as unknown as number }],
    ["empty host", { hostname: "" }],
  ])("listen and connect reject %s with EINVAL before any syscall", async (_name, options) => {
    expect(await codeOf(listen(options))).toBe("EINVAL");
    expect(await codeOf(connect(options))).toBe("EINVAL");
  });

  test("EADDRINUSE (Bun throws it synchronously) names the address and what to do", async () => {
    const server = await start();
    const error = await listen({ port: server.address.port }).catch((e: EchoError) => e);
    expect((error as EchoError).code).toBe("EADDRINUSE");
    expect((error as EchoError).message).toContain(`127.0.0.1:${server.address.port}`);
  });

  test("ECONNREFUSED when nothing listens", async () => {
    const server = await start();
    const { port } = server.address;
    await server.close();
    expect(await codeOf(connect({ port }))).toBe("ECONNREFUSED");
  });

  // Bun.listen reports a failed lookup with no code at all.
  test("ENOTFOUND for a host name that does not resolve, on listen and on connect", async () => {
    expect(await codeOf(listen({ hostname: "nonexistent.invalid", port: 0 }))).toBe("ENOTFOUND");
    expect(await codeOf(connect({ hostname: "nonexistent.invalid", port: 9 }))).toBe("ENOTFOUND");
  });

  test("listen on 'localhost' reports the numeric address it bound", async () => {
    const server = await start({ hostname: "localhost" });
    expect(["127.0.0.1", "::1"]).toContain(server.address.hostname);
    await using client = await connect({ hostname: "localhost", port: server.address.port });
    expect(new TextDecoder().decode(await client.echo("hi"))).toBe("hi");
  });

  test("an aborted signal cancels connect with EABORTED", async () => {
    const server = await start();
    const controller = new AbortController();
    const connecting = connect({ port: server.address.port, signal: controller.signal });
    controller.abort();
    expect(await codeOf(connecting)).toBe("EABORTED");
    await until(() => server.connections === 0);
  });
});

describe("bun: server lifecycle", () => {
  test("port 0 reports the real port; address, runtime and counters are set", async () => {
    const server = await start();
    expect(server.runtime).toBe("bun");
    expect(server.address).toMatchObject({ transport: "tcp", hostname: "127.0.0.1", family: "IPv4" });
    expect(server.address.port).toBeGreaterThan(0);
    const client = await connect({ port: server.address.port });
    expect(client.runtime).toBe("bun");
    expect(client.remoteAddress.port).toBe(server.address.port);
    await client.echo("12345");
    await client.closeWrite();
    await client.closed;
    await until(() => server.connections === 0);
    expect(server.stats).toMatchObject({ accepted: 1, bytesIn: 5, bytesOut: 5, active: 0 });
  });

  test("IPv6 loopback: listen on [::1] and connect to it", async () => {
    const server = await start({ hostname: "[::1]" });
    expect(server.address).toMatchObject({ hostname: "::1", family: "IPv6" });
    await using client = await connect({ hostname: "::1", port: server.address.port });
    expect(new TextDecoder().decode(await client.echo("six"))).toBe("six");
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
    const server = await start();
    const client = await connect({ port: server.address.port });
    const closing = server.close();
    expect(await codeOf(connect({ port: server.address.port }))).toBe("ECONNREFUSED");
    const payload = randomBytes(1024 * 1024);
    expect(sha256(await client.echo(payload))).toBe(sha256(payload));
    await client.closeWrite();
    await client.closed;
    await closing;
  });

  test("close({ force: true }) ends open connections at once", async () => {
    const server = await start();
    const client = await connect({ port: server.address.port });
    await client.echo("x");
    const begin = performance.now();
    await server.close({ force: true });
    expect(server.connections).toBe(0);
    await client.closed.catch(() => {});
    // Far below the 10 s drain timeout that a close without force waits for.
    expect(performance.now() - begin).toBeLessThan(1000);
  });
});
