/**
 * The proxy itself, between a trivial echo server and a raw client (both plain
 * node:net), so a failure here is the proxy's and not a runtime's.
 */
import { createHash, randomBytes } from "node:crypto";
import * as net from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { type FaultProxy, startProxy, type Toxic } from "../src/proxy.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Trivial {
  port: number;
  /** Chunks and errors each accepted socket saw, in order. */
  sessions: Array<{ chunks: number; bytes: number; endAt?: number; error?: string }>;
}

/** The trivial echo: pipe each socket to itself, keep the half-close. */
async function trivialEcho(options: { read?: boolean } = {}): Promise<Trivial> {
  const sessions: Trivial["sessions"] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const session: Trivial["sessions"][number] = { chunks: 0, bytes: 0 };
    sessions.push(session);
    socket.on("error", (error: NodeJS.ErrnoException) => {
      session.error = error.code;
    });
    if (options.read === false) {
      socket.pause();
      return;
    }
    socket.on("data", (chunk: Buffer) => {
      session.chunks++;
      session.bytes += chunk.byteLength;
    });
    socket.on("end", () => {
      session.endAt = performance.now();
    });
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  cleanups.push(() => {
    for (const socket of openSockets) socket.destroy();
  });
  const openSockets: net.Socket[] = [];
  server.on("connection", (socket) => openSockets.push(socket));
  return { port: (server.address() as net.AddressInfo).port, sessions };
}

async function proxyTo(port: number, toxics: Toxic[], highWaterMark?: number): Promise<FaultProxy> {
  const proxy = await startProxy({
    target: { hostname: "127.0.0.1", port },
    toxics,
    seed: 7,
    ...(highWaterMark ? { highWaterMark } : {}),
  });
  cleanups.push(() => proxy.close());
  return proxy;
}

interface Exchange {
  echoed: Buffer;
  /** The client saw EOF (not an error) after the echo. */
  ended: boolean;
  error?: string;
  ms: number;
}

/** Sends `payload`, half-closes, and collects the echo until EOF or error, within `timeoutMs`. */
function exchange(port: number, payload: Uint8Array, timeoutMs = 20_000): Promise<Exchange> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const received: Buffer[] = [];
    let ended = false;
    let error: string | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no EOF or error within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    socket.on("end", () => {
      ended = true;
      socket.destroy();
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      error = e.code;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ echoed: Buffer.concat(received), ended, ms: performance.now() - started, ...(error ? { error } : {}) });
    });
    socket.end(payload);
  });
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

describe("proxy: every toxic but reset keeps the stream byte-exact, half-close included", () => {
  const toxics: Array<[string, Toxic[]]> = [
    ["no toxic", []],
    ["latency 20 ms +/- 10 ms", [{ type: "latency", latency: 20, jitter: 10 }]],
    ["bandwidth 4 MiB/s", [{ type: "bandwidth", rate: 4 * 1024 * 1024 }]],
    ["slicer 1..2048 B, 0..1 ms apart", [{ type: "slicer", maxSize: 2048, delay: 1 }]],
    ["slow close 300 ms", [{ type: "slow-close", delay: 300 }]],
    ["stall 300 ms after 256 KiB", [{ type: "stall", after: 256 * 1024, duration: 300 }]],
    [
      "all of them at once",
      [
        { type: "latency", latency: 5, jitter: 5 },
        { type: "slicer", maxSize: 4096, delay: 1 },
        { type: "bandwidth", rate: 8 * 1024 * 1024 },
        { type: "stall", after: 100_000, duration: 200 },
        { type: "slow-close", delay: 100 },
      ],
    ],
  ];
  test.each(toxics)("%s: 1 MiB with half-close comes back byte-exact, then EOF", async (_name, list) => {
    const { port } = await trivialEcho();
    const proxy = await proxyTo(port, list);
    const payload = randomBytes(1024 * 1024);
    const result = await exchange(proxy.address.port, payload);
    expect(result.error).toBeUndefined();
    expect(result.ended).toBe(true);
    expect(result.echoed.byteLength).toBe(payload.byteLength);
    expect(sha256(result.echoed)).toBe(sha256(payload));
    expect(proxy.stats).toMatchObject({ connections: 1, upstream: payload.byteLength, downstream: payload.byteLength });
  });

  test("an empty session: the half-close alone is forwarded both ways", async () => {
    const { port, sessions } = await trivialEcho();
    const proxy = await proxyTo(port, [{ type: "latency", latency: 10 }]);
    const result = await exchange(proxy.address.port, new Uint8Array(0));
    expect(result).toMatchObject({ ended: true });
    expect(result.echoed.byteLength).toBe(0);
    expect(sessions[0]?.endAt).toBeDefined();
  });
});

describe("proxy: each toxic does what it says", () => {
  test("latency: a round trip takes at least twice the latency (once each way)", async () => {
    const { port } = await trivialEcho();
    const proxy = await proxyTo(port, [{ type: "latency", latency: 100 }]);
    const result = await exchange(proxy.address.port, Buffer.from("ping"));
    expect(result.echoed.toString()).toBe("ping");
    // Timer rounding can fire 1 ms early.
    expect(result.ms).toBeGreaterThanOrEqual(198);
  });

  test("bandwidth: 512 KiB at 1 MiB/s each way takes at least 0.4 s", async () => {
    const { port } = await trivialEcho();
    const proxy = await proxyTo(port, [{ type: "bandwidth", rate: 1024 * 1024 }]);
    const result = await exchange(proxy.address.port, randomBytes(512 * 1024));
    expect(result.echoed.byteLength).toBe(512 * 1024);
    expect(result.ms).toBeGreaterThanOrEqual(400);
  });

  test("slicer: the server receives the bytes in many small segments", async () => {
    const { port, sessions } = await trivialEcho();
    const proxy = await proxyTo(port, [{ type: "slicer", maxSize: 8, delay: 2, direction: "upstream" }]);
    const payload = randomBytes(4096);
    const result = await exchange(proxy.address.port, payload);
    expect(sha256(result.echoed)).toBe(sha256(payload));
    // ~1,000 segments of 1-8 bytes with pauses between: the receiver sees far more
    // reads than the one 4 KiB chunk the client wrote, however the kernel coalesces.
    expect(sessions[0]?.chunks).toBeGreaterThan(50);
  });

  test("slow close: the server sees the FIN at least `delay` after the client sent it", async () => {
    const { port, sessions } = await trivialEcho();
    const proxy = await proxyTo(port, [{ type: "slow-close", delay: 300, direction: "upstream" }]);
    const sentAt = performance.now();
    const result = await exchange(proxy.address.port, Buffer.from("bye"));
    expect(result.echoed.toString()).toBe("bye");
    expect((sessions[0]?.endAt ?? 0) - sentAt).toBeGreaterThanOrEqual(299);
  });

  test("stall: nothing past `after` bytes is forwarded during the stall, then everything is", async () => {
    const { port, sessions } = await trivialEcho();
    const proxy = await proxyTo(port, [{ type: "stall", after: 64 * 1024, duration: 1500, direction: "upstream" }]);
    const payload = randomBytes(256 * 1024);
    const done = exchange(proxy.address.port, payload);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sessions[0]?.bytes).toBeLessThanOrEqual(64 * 1024);
    const result = await done;
    expect(sha256(result.echoed)).toBe(sha256(payload));
  });

  test.each(["client", "server"] as const)(
    "reset %s side: both peers see ECONNRESET, never a clean EOF",
    async (side) => {
      const { port, sessions } = await trivialEcho();
      const proxy = await proxyTo(port, [{ type: "reset", side, after: 256 * 1024 }]);
      const result = await exchange(proxy.address.port, randomBytes(4 * 1024 * 1024));
      expect(result.error).toBe("ECONNRESET");
      expect(result.ended).toBe(false);
      expect(result.echoed.byteLength).toBeLessThan(4 * 1024 * 1024);
      await until(() => sessions[0]?.error !== undefined);
      expect(sessions[0]?.error).toBe("ECONNRESET");
      expect(proxy.stats.resets).toBe(1);
    },
  );
});

describe("proxy: failures and limits", () => {
  test("backpressure: a server that never reads stalls the client; the proxy holds at most its high-water mark", async () => {
    const { port } = await trivialEcho({ read: false });
    const highWaterMark = 256 * 1024;
    const proxy = await proxyTo(port, [], highWaterMark);
    const socket = net.connect({ port: proxy.address.port, host: "127.0.0.1" });
    cleanups.push(() => socket.destroy());
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("connect", resolve));
    const chunk = Buffer.alloc(64 * 1024, 1);
    let written = 0;
    for (let i = 0; i < 1024; i++) {
      written += chunk.byteLength;
      if (!socket.write(chunk)) {
        const drained = await Promise.race([
          new Promise((resolve) => socket.once("drain", () => resolve(true))),
          new Promise((resolve) => setTimeout(() => resolve(false), 1000)),
        ]);
        if (!drained) break;
      }
    }
    // Kernel buffers on three sockets plus the proxy's queue, far from the 64 MiB offered.
    expect(written).toBeLessThan(32 * 1024 * 1024);
    // One read past the mark at most (Node reads up to 64 KiB at a time).
    expect(proxy.stats.maxQueued).toBeLessThanOrEqual(highWaterMark + 64 * 1024);
  });

  test("a server that resets is passed on to the client as a reset", async () => {
    const server = net.createServer((socket) => {
      socket.on("error", () => {});
      socket.once("data", () => socket.resetAndDestroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const proxy = await proxyTo((server.address() as net.AddressInfo).port, []);
    const result = await exchange(proxy.address.port, randomBytes(1024 * 1024));
    expect(result.error).toBe("ECONNRESET");
  });

  test("nothing listening behind the proxy: the client is reset, not left hanging", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const proxy = await proxyTo(port, []);
    const result = await exchange(proxy.address.port, Buffer.from("anyone?"));
    expect(result.ended).toBe(false);
    expect(result.error).toBe("ECONNRESET");
  });

  test("close() destroys open connections, stops listening, and is idempotent", async () => {
    const { port } = await trivialEcho();
    const proxy = await proxyTo(port, []);
    const socket = net.connect({ port: proxy.address.port, host: "127.0.0.1" });
    socket.on("error", () => {});
    const closed = new Promise((resolve) => socket.once("close", resolve));
    await new Promise((resolve) => socket.once("connect", resolve));
    await until(() => proxy.stats.active === 1);
    await Promise.all([proxy.close(), proxy.close()]);
    await closed;
    expect(proxy.stats.active).toBe(0);
    const refused = net.connect({ port: proxy.address.port, host: "127.0.0.1" });
    const code = await new Promise((resolve) => refused.once("error", (e: NodeJS.ErrnoException) => resolve(e.code)));
    expect(code).toBe("ECONNREFUSED");
  });
});

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
