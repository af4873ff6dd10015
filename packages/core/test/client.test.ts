import { describe, expect, test } from "vitest";
import { ClientConnection } from "../src/_client.ts";
import type { EchoError } from "../src/_errors.ts";
import { resolveConnectOptions } from "../src/_options.ts";
import type { SocketIO } from "../src/_protocol.ts";
import type { SocketAddress } from "../src/types.ts";

const address: SocketAddress = { transport: "tcp", hostname: "127.0.0.1", port: 7, family: "IPv4" };

/** A client over a socket that flushes every write at once and records what it was asked. */
function client(options: { replyTimeout?: number } = {}) {
  const calls: string[] = [];
  const connection = new ClientConnection("node", resolveConnectOptions({ port: 7, ...options }));
  const io: SocketIO = {
    write: (chunk) => connection.onFlushed(chunk.byteLength),
    pause: () => calls.push("pause"),
    resume: () => calls.push("resume"),
    closeWrite: () => calls.push("closeWrite"),
    close: () => calls.push("close"),
    destroy: () => calls.push("destroy"),
  };
  connection.attach({ info: { localAddress: address, remoteAddress: address }, io });
  return { connection, calls };
}

/**
 * A tick's small writes go out together once its microtasks are done (the batch
 * waits while they add to it), so a timer turn later they are written; a server
 * echoes only what was written.
 */
const written = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as EchoError).code;
  }
  return undefined;
}

describe("ClientConnection: how an early EOF is reported (no sockets)", () => {
  test("EOF after our half-close with bytes missing is a short echo: EPROTO", async () => {
    const { connection, calls } = client();
    const echo = connection.echo("abcdef");
    await connection.closeWrite();
    connection.onData(new TextEncoder().encode("abc"));
    connection.onEnd();
    expect(await codeOf(echo)).toBe("EPROTO");
    expect(calls).toContain("destroy");
  });

  test("EOF while we are still sending is a torn connection: ECONNRESET, as Linux reports some resets", async () => {
    const { connection, calls } = client();
    const echo = connection.echo("abcdef");
    await written();
    connection.onData(new TextEncoder().encode("abc"));
    connection.onEnd();
    expect(await codeOf(echo)).toBe("ECONNRESET");
    expect(await codeOf(connection.closed)).toBe("ECONNRESET");
    expect(calls).toContain("destroy");
  });
});

/** A client over a socket that flushes every write at once, recording each write's length (-1: the FIN). */
function recording(afterIO?: (task: () => void) => void) {
  const writes: number[] = [];
  const connection = new ClientConnection("node", resolveConnectOptions({ port: 7 }), undefined, afterIO);
  const io: SocketIO = {
    write: (chunk) => {
      writes.push(chunk.byteLength);
      connection.onFlushed(chunk.byteLength);
    },
    pause: () => {},
    resume: () => {},
    closeWrite: () => writes.push(-1),
    close: () => {},
    destroy: () => {},
  };
  connection.attach({ info: { localAddress: address, remoteAddress: address }, io });
  return { connection, writes };
}

describe("ClientConnection: writes per tick (no sockets)", () => {
  test("pipelined small echoes in one tick go to the socket as one write, and still match one by one", async () => {
    const { connection, writes } = recording();
    const replies = ["ab", "cd", "ef"].map((text) => connection.echo(text));
    expect(writes).toEqual([]);
    await written();
    expect(writes).toEqual([6]);
    connection.onData(new TextEncoder().encode("abcdef"));
    expect((await Promise.all(replies)).map((r) => new TextDecoder().decode(r))).toEqual(["ab", "cd", "ef"]);
  });

  test("small writes awaited one by one go to the socket as one write", async () => {
    // `for (...) await conn.write(piece)` resumes a microtask after each write:
    // a flush at the first microtask sent every piece alone, a syscall apiece.
    const { connection, writes } = recording();
    for (let i = 0; i < 10; i++) await connection.write("ab");
    await written();
    expect(writes).toEqual([20]);
  });

  test("with the runtime table's afterIO, one afterIO task per batch sends it, whatever the microtasks between the writes", async () => {
    // Node's and Bun's setImmediate (their adapters): a microtask per awaited write cost more.
    const tasks: Array<() => void> = [];
    const { connection, writes } = recording((task) => tasks.push(task));
    for (let i = 0; i < 10; i++) await connection.write("ab");
    for (let i = 0; i < 10; i++) await Promise.resolve();
    expect(writes).toEqual([]);
    expect(tasks.length).toBe(1);
    (tasks.shift() as () => void)();
    expect(writes).toEqual([20]);
    // The next batch queues a task of its own.
    await connection.write("cd");
    expect(tasks.length).toBe(1);
    (tasks.shift() as () => void)();
    expect(writes).toEqual([20, 2]);
  });

  test("with afterIO, a batch that reaches 16 KiB goes at once, and its task then finds nothing to send", async () => {
    const tasks: Array<() => void> = [];
    const { connection, writes } = recording((task) => tasks.push(task));
    for (let i = 0; i < 16; i++) await connection.write(new Uint8Array(1024));
    expect(writes).toEqual([16 * 1024]);
    expect(tasks.length).toBe(1);
    (tasks.shift() as () => void)();
    expect(writes).toEqual([16 * 1024]);
  });

  test("write() under the high-water mark resolves at once, with one settled promise for every write", async () => {
    const { connection } = recording();
    const first = connection.write("ab");
    const second = connection.write("cd");
    expect(first).toBe(second);
    await first;
  });

  test("small writes through an async helper, a helper in a helper, or the web-stream writer go out as one write", async () => {
    // Each comes back a turn or two later than a plain `await conn.write()`.
    const helper = recording();
    const send = async (piece: string) => {
      await helper.connection.write(piece);
    };
    for (let i = 0; i < 10; i++) await send("ab");
    const nested = recording();
    const inner = async (piece: string) => {
      await nested.connection.write(piece);
    };
    const outer = async (piece: string) => {
      await inner(piece);
    };
    for (let i = 0; i < 10; i++) await outer("ab");
    const streamed = recording();
    const writer = streamed.connection.writable.getWriter();
    for (let i = 0; i < 10; i++) await writer.write(new Uint8Array(2));
    await written();
    expect([helper.writes, nested.writes, streamed.writes]).toEqual([[20], [20], [20]]);
  });

  test("a batch still growing goes out at 16 KiB, the rest when it stops", async () => {
    const { connection, writes } = recording();
    for (let i = 0; i < 300; i++) await connection.write(new Uint8Array(64));
    await written();
    expect(writes).toEqual([16 * 1024, 300 * 64 - 16 * 1024]);
  });

  test("echo() resolves with its own payload object once verified, a string's with its UTF-8 bytes", async () => {
    const { connection } = recording();
    const payload = new Uint8Array([1, 2, 3, 4]);
    const empty = new Uint8Array(0);
    const replies = [connection.echo(payload), connection.echo("hé"), connection.echo(empty)];
    await written();
    for (const byte of [1, 2, 3, 4, 0x68, 0xc3, 0xa9]) connection.onData(new Uint8Array([byte]));
    const [echoed, text, none] = await Promise.all(replies);
    expect(echoed).toBe(payload);
    expect([...(text as Uint8Array)]).toEqual([0x68, 0xc3, 0xa9]);
    expect(none).toBe(empty);
  });

  test("gathered writes keep their bytes after later ticks gather theirs (past a shared slab's end)", async () => {
    const chunks: Uint8Array[] = [];
    // drainTimeout 0: close() at the end drops the unflushed writes at once.
    const connection = new ClientConnection("node", resolveConnectOptions({ port: 7, drainTimeout: 0 }));
    const io: SocketIO = {
      // Kept unflushed, as a socket whose kernel buffer is full keeps them.
      write: (chunk) => chunks.push(chunk),
      pause: () => {},
      resume: () => {},
      closeWrite: () => {},
      close: () => {},
      destroy: () => connection.onClose(),
    };
    connection.attach({ info: { localAddress: address, remoteAddress: address }, io });
    const ticks = 100;
    const echoes: Promise<Uint8Array>[] = [];
    for (let tick = 0; tick < ticks; tick++) {
      for (let i = 0; i < 3; i++) echoes.push(connection.echo(new Uint8Array(300).fill(tick * 3 + i)));
      await written();
    }
    expect(chunks).toHaveLength(ticks);
    for (const [tick, chunk] of chunks.entries()) {
      const expected = [0, 1, 2].flatMap((i) => new Array(300).fill((tick * 3 + i) & 0xff));
      if (chunk.byteLength !== 900 || chunk.some((byte, at) => byte !== expected[at]))
        expect({ tick, first: chunk[0], last: chunk[899] }).toBe("this tick's own bytes");
    }
    await connection.close();
    // Never echoed: close() rejects each pending echo with ECLOSED.
    const settled = await Promise.allSettled(echoes);
    expect(settled.map((s) => (s.status === "rejected" ? (s.reason as { code?: string }).code : s.status))).toEqual(
      new Array(ticks * 3).fill("ECLOSED"),
    );
  });

  test("a large write goes straight through, after the small ones queued before it", () => {
    const { connection, writes } = recording();
    void connection.echo("small");
    void connection.echo(new Uint8Array(64 * 1024));
    expect(writes).toEqual([5, 64 * 1024]);
  });

  test("closeWrite sends the FIN only after the gathered writes", async () => {
    const { connection, writes } = recording();
    void connection.echo("x");
    await connection.closeWrite();
    await written();
    expect(writes).toEqual([1, -1]);
  });
});

describe("ClientConnection: the batch sent by the runtime table's afterIO (no sockets)", () => {
  /** A client whose `afterIO` tasks wait in `tasks` until the test runs them. */
  function deferred() {
    const tasks: Array<() => void> = [];
    const { connection, writes } = recording((task) => tasks.push(task));
    const runTasks = () => {
      for (let task = tasks.shift(); task; task = tasks.shift()) task();
    };
    return { connection, writes, tasks, runTasks };
  }

  test("a large write goes after the small ones queued before it, and their task then sends nothing", () => {
    const { connection, writes, runTasks } = deferred();
    void connection.write("small");
    void connection.write(new Uint8Array(64 * 1024));
    expect(writes).toEqual([5, 64 * 1024]);
    runTasks();
    expect(writes).toEqual([5, 64 * 1024]);
  });

  test("closeWrite sends the FIN only once the task has sent the batch", async () => {
    const { connection, writes, runTasks } = deferred();
    void connection.write("x");
    await connection.closeWrite();
    expect(writes).toEqual([]);
    runTasks();
    expect(writes).toEqual([1, -1]);
  });

  test("close() sends a batch whose task has not run, then FIN; the task then sends nothing", async () => {
    const { connection, writes, tasks, runTasks } = deferred();
    void connection.write("abc");
    const closing = connection.close();
    expect(writes).toEqual([3, -1]);
    expect(tasks.length).toBe(1);
    runTasks();
    expect(writes).toEqual([3, -1]);
    connection.onData(new TextEncoder().encode("abc"));
    connection.onEnd();
    connection.onClose();
    await closing;
  });

  test("a connection that failed before the task ran writes nothing when it runs", async () => {
    const { connection, writes, runTasks } = deferred();
    const echo = connection.echo("lost");
    connection.onError(Object.assign(new Error("reset"), { code: "ECONNRESET" }));
    connection.onClose();
    expect(await codeOf(echo)).toBe("ECONNRESET");
    runTasks();
    expect(writes).toEqual([]);
  });
});

describe("ClientConnection: a TLS peer closing without close_notify (no sockets)", () => {
  // rustls (Deno) reports it as an error mentioning TLS; OpenSSL (Node, Bun) as a plain EOF.
  const truncation = Object.assign(new Error("peer closed connection without sending TLS close_notify"), {
    name: "UnexpectedEof",
  });

  test("with nothing outstanding it is a clean EOF, not ETLS", async () => {
    const { connection } = client();
    const echo = connection.echo("abc");
    await written();
    connection.onData(new TextEncoder().encode("abc"));
    await echo;
    await connection.closeWrite();
    connection.onError(truncation);
    connection.onClose();
    await expect(connection.closed).resolves.toBeUndefined();
  });

  test("after our half-close with bytes missing it is a short echo: EPROTO", async () => {
    const { connection } = client();
    const echo = connection.echo("abcdef");
    await connection.closeWrite();
    connection.onData(new TextEncoder().encode("abc"));
    connection.onError(truncation);
    expect(await codeOf(echo)).toBe("EPROTO");
  });
});

describe("ClientConnection: replyTimeout bounds each wait on the server (no sockets)", () => {
  const TIMEOUT = 100;
  const bytes = (text: string) => new TextEncoder().encode(text);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  const timed = () => client({ replyTimeout: TIMEOUT });

  async function failedWithin(connection: ClientConnection, min: number, max: number) {
    const started = performance.now();
    const error = await connection.closed.then(
      () => undefined,
      (e: EchoError) => e,
    );
    const elapsed = performance.now() - started;
    expect(error?.code).toBe("ETIMEDOUT");
    expect(elapsed).toBeGreaterThanOrEqual(min);
    expect(elapsed).toBeLessThan(max);
    return error as EchoError;
  }

  test("a server that never answers: ETIMEDOUT after the timeout, naming the bytes that did not come", async () => {
    const { connection, calls } = timed();
    void connection.write("hello").catch(() => {});
    const error = await failedWithin(connection, TIMEOUT - 5, TIMEOUT + 500);
    expect(error.message).toContain("5 of the 5 bytes sent have not come back");
    expect(calls).toContain("destroy");
  });

  test("a server that echoes but never closes after our half-close: ETIMEDOUT, and the echo was delivered first", async () => {
    const { connection } = timed();
    await connection.write("hello");
    await connection.closeWrite();
    await written();
    connection.onData(bytes("hello"));
    expect(new TextDecoder().decode((await connection.read()) ?? undefined)).toBe("hello");
    const error = await failedWithin(connection, TIMEOUT - 5, TIMEOUT + 500);
    expect(error.message).toContain("did not close its side");
  });

  test("bytes trickling in keep the connection alive past the timeout, then EOF closes it cleanly", async () => {
    const { connection } = timed();
    const payload = "abcdefgh";
    await connection.write(payload);
    await connection.closeWrite();
    for (const byte of payload) {
      // The read waits first, so each byte goes straight to it: only its arrival is progress.
      const next = connection.read();
      await sleep(TIMEOUT / 2);
      connection.onData(bytes(byte));
      expect(new TextDecoder().decode((await next) ?? undefined)).toBe(byte);
    }
    connection.onEnd();
    connection.onClose();
    await expect(connection.closed).resolves.toBeUndefined();
  });

  test("echoed bytes the reader has not taken do not count as a silent server", async () => {
    // The rest of the echo is held back, as a server paused by our backpressure would.
    const { connection } = timed();
    await connection.write("hello world");
    await written();
    connection.onData(bytes("hello"));
    await sleep(TIMEOUT * 3);
    expect(new TextDecoder().decode((await connection.read()) ?? undefined)).toBe("hello");
    connection.onData(bytes(" world"));
    expect(new TextDecoder().decode((await connection.read()) ?? undefined)).toBe(" world");
    await connection.closeWrite();
    connection.onEnd();
    connection.onClose();
    await expect(connection.closed).resolves.toBeUndefined();
  });

  test("nothing sent and no half-close: nothing to wait for, so no timeout", async () => {
    const { connection, calls } = timed();
    await sleep(TIMEOUT * 3);
    expect(calls).not.toContain("destroy");
    await connection.closeWrite();
    connection.onEnd();
    connection.onClose();
    await expect(connection.closed).resolves.toBeUndefined();
  });
});

describe("ClientConnection: a plain client against a TLS server (no sockets)", () => {
  test("a reply that starts like a TLS alert record is EPROTO naming TLS", async () => {
    const { connection } = client();
    const echo = connection.echo("Hello, server!");
    await written();
    connection.onData(new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]));
    const error = await echo.catch((e: EchoError) => e);
    expect((error as EchoError).code).toBe("EPROTO");
    expect((error as EchoError).message).toMatch(/looks like a TLS record.*--tls-ca/);
  });

  test("a server that closes at once without echoing: EPROTO, suggesting TLS", async () => {
    const { connection } = client();
    const echo = connection.echo("Hello, server!");
    await connection.closeWrite();
    connection.onEnd();
    const error = await echo.catch((e: EchoError) => e);
    expect((error as EchoError).code).toBe("EPROTO");
    expect((error as EchoError).message).toMatch(/0 of 14 bytes; a TLS server .*--tls-ca/);
  });
});

describe("ClientConnection: close() is graceful and bounded (no sockets)", () => {
  /** A socket whose writes flush only when `flushAll()` says, recording what it was asked. */
  function queued(options: { drainTimeout?: number; highWaterMark?: number } = {}) {
    const calls: string[] = [];
    let unflushed = 0;
    const connection = new ClientConnection("node", resolveConnectOptions({ port: 7, ...options }));
    const io: SocketIO = {
      write: (chunk) => {
        unflushed += chunk.byteLength;
        calls.push(`write ${chunk.byteLength}`);
      },
      pause: () => calls.push("pause"),
      resume: () => calls.push("resume"),
      closeWrite: () => calls.push("closeWrite"),
      close: () => {
        calls.push("close");
        connection.onClose();
      },
      destroy: () => {
        calls.push("destroy");
        connection.onClose();
      },
    };
    connection.attach({ info: { localAddress: address, remoteAddress: address }, io });
    const flushAll = () => {
      const bytes = unflushed;
      unflushed = 0;
      connection.onFlushed(bytes);
    };
    return { connection, calls, flushAll };
  }

  test("bytes queued at close() go out, then FIN; the socket is released once their echo is back", async () => {
    const { connection, calls, flushAll } = queued();
    const written = connection.write(new Uint8Array(300 * 1024));
    const echo = connection.echo("abc");
    const closing = connection.close();
    expect(await codeOf(echo)).toBe("ECLOSED");
    expect(calls).toEqual([`write ${300 * 1024}`, "write 3"]);
    flushAll();
    await written;
    expect(calls.slice(2)).toEqual(["closeWrite"]);
    connection.onData(new Uint8Array(300 * 1024));
    expect(calls.slice(3)).toEqual([]);
    connection.onData(new TextEncoder().encode("abc"));
    expect(calls.slice(3)).toEqual(["close"]);
    await closing;
    await expect(connection.closed).resolves.toBeUndefined();
    expect(await connection.read()).toBeNull();
  });

  test("the server's EOF also releases it, once everything is flushed", async () => {
    const { connection, calls, flushAll } = queued();
    void connection.write(new Uint8Array(1024));
    const closing = connection.close();
    connection.onEnd();
    expect(calls).not.toContain("close");
    flushAll();
    expect(calls).toContain("close");
    await closing;
    await expect(connection.closed).resolves.toBeUndefined();
  });

  test("close() resumes a paused reader: the echo must keep flowing for the writes to drain", () => {
    const { connection, calls, flushAll } = queued({ highWaterMark: 1024 });
    void connection.write(new Uint8Array(16 * 1024));
    flushAll();
    connection.onData(new Uint8Array(2048));
    expect(calls).toEqual([`write ${16 * 1024}`, "pause"]);
    void connection.close();
    expect(calls.slice(2)).toEqual(["resume", "closeWrite"]);
  });

  test("a queue that cannot flush: after drainTimeout the socket is destroyed, closed and the waiting write reject ETIMEDOUT", async () => {
    const { connection, calls } = queued({ drainTimeout: 50, highWaterMark: 1024 });
    const written = connection.write(new Uint8Array(4096));
    const started = Date.now();
    await connection.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(calls).toEqual(["write 4096", "destroy"]);
    expect(await codeOf(connection.closed)).toBe("ETIMEDOUT");
    expect(await codeOf(written)).toBe("ETIMEDOUT");
  });

  test("drainTimeout 0 makes close() an abort: destroyed at once, the waiting write rejects ECLOSED", async () => {
    const { connection, calls } = queued({ drainTimeout: 0, highWaterMark: 1024 });
    const written = connection.write(new Uint8Array(4096));
    await connection.close();
    expect(calls).toEqual(["write 4096", "destroy"]);
    expect(await codeOf(written)).toBe("ECLOSED");
    await expect(connection.closed).resolves.toBeUndefined();
  });

  test("idempotent: a second close() waits for the same close and releases nothing twice", async () => {
    const { connection, calls, flushAll } = queued();
    void connection.write(new Uint8Array(10));
    const first = connection.close();
    const second = connection.close();
    flushAll();
    expect(calls).not.toContain("close");
    connection.onData(new Uint8Array(10));
    await Promise.all([first, second, connection.close()]);
    expect(calls.filter((call) => call === "close" || call === "destroy")).toEqual(["close"]);
  });
});
