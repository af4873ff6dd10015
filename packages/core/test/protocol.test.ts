import { describe, expect, test } from "vitest";
import { EchoError, echoError } from "../src/_errors.ts";
import { EchoLedger, EchoSession, type SocketIO } from "../src/_protocol.ts";

/** A socket that records what the protocol asks of it; flushes happen when the test says so. */
function fakeIO() {
  const calls: string[] = [];
  const written: Uint8Array[] = [];
  const io: SocketIO = {
    write: (chunk) => {
      written.push(chunk);
      calls.push(`write ${chunk.byteLength}`);
    },
    pause: () => calls.push("pause"),
    resume: () => calls.push("resume"),
    closeWrite: () => calls.push("closeWrite"),
    close: () => calls.push("close"),
    destroy: () => calls.push("destroy"),
  };
  return { io, calls, written };
}

function session(highWaterMark = 100) {
  const fake = fakeIO();
  const closed: EchoSession[] = [];
  const errors: EchoError[] = [];
  const traffic = { in: 0, out: 0 };
  const s = new EchoSession(fake.io, highWaterMark, {
    traffic: (bytesIn, bytesOut) => {
      traffic.in += bytesIn;
      traffic.out += bytesOut;
    },
    failed: (_session, error) => {
      const e = error instanceof EchoError ? error : echoError("ECONNRESET", {}, error);
      errors.push(e);
      return e;
    },
    closed: (done) => closed.push(done),
  });
  return { s, ...fake, closed, errors, traffic };
}

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

describe("EchoSession (server side, no sockets)", () => {
  test("echo: every received chunk is written back unchanged, in order", () => {
    const { s, written, traffic } = session();
    const a = bytes(3, 1);
    const b = bytes(5, 2);
    s.onData(a);
    s.onData(b);
    expect(written).toEqual([a, b]);
    expect(traffic.in).toBe(8);
    s.onFlushed(8);
    expect(traffic.out).toBe(8);
    expect(s.pending).toBe(0);
  });

  test("backpressure: reading pauses above the high-water mark and resumes at half of it", () => {
    const { s, calls } = session(100);
    s.onData(bytes(60));
    expect(calls).not.toContain("pause");
    s.onData(bytes(60));
    expect(calls.at(-1)).toBe("pause");
    s.onFlushed(60);
    expect(calls).not.toContain("resume");
    s.onFlushed(20);
    expect(calls.at(-1)).toBe("resume");
  });

  test("backpressure: a synchronous flush inside write never leaves the socket paused", () => {
    const calls: string[] = [];
    let target: EchoSession | undefined;
    const io: SocketIO = {
      write: (chunk) => target?.onFlushed(chunk.byteLength),
      pause: () => calls.push("pause"),
      resume: () => calls.push("resume"),
      closeWrite: () => {},
      close: () => calls.push("close"),
      destroy: () => {},
    };
    target = new EchoSession(io, 10, { traffic() {}, failed: (_s, e) => e as EchoError, closed() {} });
    target.onData(bytes(50));
    expect(calls).toEqual([]);
    expect(target.pending).toBe(0);
  });

  test("half-close: after the peer's EOF, closes only once everything is flushed", () => {
    const { s, calls, closed } = session();
    s.onData(bytes(10));
    s.onEnd();
    expect(calls).not.toContain("close");
    s.onFlushed(4);
    expect(calls).not.toContain("close");
    s.onFlushed(6);
    expect(calls.at(-1)).toBe("close");
    s.onClose();
    expect(closed).toEqual([s]);
    expect(s.reason).toBe("eof");
  });

  test("half-close: zero-byte session closes at once on EOF", () => {
    const { s, calls } = session();
    s.onEnd();
    expect(calls).toEqual(["close"]);
  });

  test("half-close: reading is not resumed after the peer's EOF", () => {
    const { s, calls } = session(10);
    s.onData(bytes(30));
    s.onEnd();
    s.onFlushed(30);
    expect(calls).not.toContain("resume");
    expect(calls.at(-1)).toBe("close");
  });

  test("errors: a reset is reported once, destroys the socket, and closes with reason error", () => {
    const { s, calls, errors } = session();
    s.onData(bytes(5));
    s.onError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
    s.onError(new Error("again"));
    expect(calls.at(-1)).toBe("destroy");
    s.onClose();
    expect(errors).toHaveLength(1);
    expect(s.reason).toBe("error");
  });

  test("errors: a close without EOF or error counts as a reset", () => {
    const { s, errors } = session();
    s.onData(bytes(5));
    s.onClose();
    expect(s.reason).toBe("error");
    expect(errors[0]?.code).toBe("ECONNRESET");
  });

  test("abort: idle or forced close destroys and keeps the first reason", () => {
    const { s, calls } = session();
    s.abort("idle-timeout");
    s.abort("server-close");
    expect(calls).toEqual(["destroy"]);
    s.onClose();
    expect(s.reason).toBe("idle-timeout");
  });

  test("events after close are ignored", () => {
    const { s, written, closed } = session();
    s.onClose();
    s.onData(bytes(3));
    s.onClose();
    expect(written).toEqual([]);
    expect(closed).toHaveLength(1);
  });
});

describe("EchoLedger (client side matching, no sockets)", () => {
  test("pipelining: echoes complete in call order with exactly their own bytes", () => {
    const ledger = new EchoLedger();
    const results: string[] = [];
    ledger.expect(new TextEncoder().encode("abc"), (e) => results.push(new TextDecoder().decode(e)));
    ledger.expect(new TextEncoder().encode("de"), (e) => results.push(new TextDecoder().decode(e)));
    const raw: Uint8Array[] = [];
    ledger.receive(new TextEncoder().encode("ab"), raw);
    expect(results).toEqual([]);
    ledger.receive(new TextEncoder().encode("cde"), raw);
    expect(results).toEqual(["abc", "de"]);
    expect(raw).toEqual([]);
    expect(ledger.isEmpty).toBe(true);
  });

  test("pieces: an echo that arrives in one piece, or in three, completes with exactly its bytes", () => {
    const ledger = new EchoLedger();
    const results: string[] = [];
    ledger.expect(new TextEncoder().encode("xy"), (e) => results.push(new TextDecoder().decode(e)));
    ledger.expect(new TextEncoder().encode("abcd"), (e) => results.push(new TextDecoder().decode(e)));
    for (const piece of ["xy", "a", "b", "cd"]) ledger.receive(new TextEncoder().encode(piece), []);
    expect(results).toEqual(["xy", "abcd"]);
  });

  test("streaming: write() bytes come back through the raw list, interleaved with echo() in send order", () => {
    const ledger = new EchoLedger();
    const echoed: Uint8Array[] = [];
    ledger.expect(bytes(2, 7));
    ledger.expect(bytes(2, 8), (e) => echoed.push(e));
    const raw: Uint8Array[] = [];
    ledger.receive(new Uint8Array([7, 7, 8, 8]), raw);
    expect(raw.map((r) => [...r])).toEqual([[7, 7]]);
    expect(echoed.map((r) => [...r])).toEqual([[8, 8]]);
  });

  test("verification: a changed byte is EPROTO naming its offset", () => {
    const ledger = new EchoLedger();
    ledger.expect(new Uint8Array([1, 2, 3]), () => {});
    expect(() => ledger.receive(new Uint8Array([1, 9]), [])).toThrowError(/byte 1: sent 0x02, got 0x09/);
  });

  test("verification: bytes beyond what was sent are EPROTO", () => {
    const ledger = new EchoLedger();
    ledger.expect(new Uint8Array([1]), () => {});
    try {
      ledger.receive(new Uint8Array([1, 2]), []);
      expect.unreachable();
    } catch (error) {
      expect((error as EchoError).code).toBe("EPROTO");
      expect((error as EchoError).message).toMatch(/1 more bytes than were sent/);
    }
  });

  test("drain hands back every unfinished segment", () => {
    const ledger = new EchoLedger();
    ledger.expect(bytes(4), () => {});
    ledger.expect(bytes(4), () => {});
    ledger.receive(bytes(5), []);
    expect(ledger.outstanding).toBe(3);
    expect(ledger.drain()).toHaveLength(1);
    expect(ledger.isEmpty).toBe(true);
  });

  test("many small echoes: memory of finished segments is released", () => {
    const ledger = new EchoLedger();
    let done = 0;
    for (let i = 0; i < 5000; i++) ledger.expect(bytes(1), () => done++);
    for (let i = 0; i < 5000; i++) ledger.receive(bytes(1), []);
    expect(done).toBe(5000);
    expect(ledger.isEmpty).toBe(true);
    // Compaction keeps at most 1,024 finished slots (or as many as are pending): not all 5,000.
    const held = (ledger as unknown as { segments: unknown[] }).segments.length;
    expect(held).toBeLessThanOrEqual(1024);
  });
});
