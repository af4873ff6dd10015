import { describe, expect, test } from "vitest";
import { EchoError, echoError } from "../src/_errors.ts";
import {
  type BytesEqual,
  concat,
  EchoLedger,
  EchoSession,
  firstDifference,
  NATIVE_COMPARE_BYTES,
  type SocketIO,
  WORD_COMPARE_BYTES,
} from "../src/_protocol.ts";

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
  const s = new EchoSession(fake.io, {
    highWaterMark,
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
    target = new EchoSession(io, { highWaterMark: 10, traffic() {}, failed: (_s, e) => e as EchoError, closed() {} });
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

/** `expect` and `sent` at once: each call written as its own view, as the client writes a large echo. */
function sendOn(
  ledger: EchoLedger,
  bytes: Uint8Array,
  onEcho?: (echoed: Uint8Array) => void,
  onFail?: (error: EchoError) => void,
): void {
  expectOn(ledger, bytes, onEcho, onFail);
  ledger.sent(bytes);
}

/** An `echo()` segment with `onEcho`, else `write()` data (which runs together with the write before it). */
function expectOn(
  ledger: EchoLedger,
  bytes: Uint8Array,
  onEcho?: (echoed: Uint8Array) => void,
  onFail?: (error: EchoError) => void,
): void {
  if (onEcho) ledger.expect(bytes, onEcho, onFail);
  else ledger.expectStream(bytes.byteLength);
}

describe("EchoLedger (client side matching, no sockets)", () => {
  test("pipelining: echoes complete in call order with exactly their own bytes", () => {
    const ledger = new EchoLedger();
    const results: string[] = [];
    sendOn(ledger, new TextEncoder().encode("abc"), (e) => results.push(new TextDecoder().decode(e)));
    sendOn(ledger, new TextEncoder().encode("de"), (e) => results.push(new TextDecoder().decode(e)));
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
    sendOn(ledger, new TextEncoder().encode("xy"), (e) => results.push(new TextDecoder().decode(e)));
    sendOn(ledger, new TextEncoder().encode("abcd"), (e) => results.push(new TextDecoder().decode(e)));
    for (const piece of ["xy", "a", "b", "cd"]) ledger.receive(new TextEncoder().encode(piece), []);
    expect(results).toEqual(["xy", "abcd"]);
  });

  test("identity: an echo completes with the very bytes that were sent, however many chunks it came back in", () => {
    const ledger = new EchoLedger();
    const sent = [bytes(5, 1), new Uint8Array(300).map((_, i) => i * 7), bytes(3, 9)];
    const done: Uint8Array[] = [];
    for (const s of sent) sendOn(ledger, s, (e) => done.push(e));
    const echo = new Uint8Array(308);
    let at = 0;
    for (const s of sent) {
      echo.set(s, at);
      at += s.byteLength;
    }
    // One byte per chunk, each chunk a fresh copy that the test overwrites once the ledger has it:
    // nothing received may show through in what the echoes complete with.
    for (let i = 0; i < echo.byteLength; i++) {
      const chunk = echo.slice(i, i + 1);
      ledger.receive(chunk, []);
      chunk.fill(0xee);
    }
    expect(done).toHaveLength(3);
    for (const [i, s] of sent.entries()) expect(done[i]).toBe(s);
    expect([...(done[1] as Uint8Array)]).toEqual([...new Uint8Array(300).map((_, i) => i * 7)]);
  });

  test("identity: a wrong byte in the last of many chunks is still EPROTO naming it, and nothing completes", () => {
    const ledger = new EchoLedger();
    const sent = new Uint8Array(200).map((_, i) => i);
    let completed = false;
    sendOn(ledger, sent, () => {
      completed = true;
    });
    for (let i = 0; i < 199; i++) ledger.receive(sent.slice(i, i + 1), []);
    try {
      ledger.receive(new Uint8Array([0x42]), []);
      expect.unreachable();
    } catch (error) {
      expect((error as EchoError).code).toBe("EPROTO");
      expect((error as EchoError).message).toMatch(/at byte 199: sent 0xc7, got 0x42/);
    }
    expect(completed).toBe(false);
  });

  test("streaming: write() bytes come back through the raw list, interleaved with echo() in send order", () => {
    const ledger = new EchoLedger();
    const echoed: Uint8Array[] = [];
    sendOn(ledger, bytes(2, 7));
    sendOn(ledger, bytes(2, 8), (e) => echoed.push(e));
    const raw: Uint8Array[] = [];
    ledger.receive(new Uint8Array([7, 7, 8, 8]), raw);
    expect(raw.map((r) => [...r])).toEqual([[7, 7]]);
    expect(echoed.map((r) => [...r])).toEqual([[8, 8]]);
  });

  test("verification: a changed byte is EPROTO naming its offset", () => {
    const ledger = new EchoLedger();
    sendOn(ledger, new Uint8Array([1, 2, 3]), () => {});
    expect(() => ledger.receive(new Uint8Array([1, 9]), [])).toThrowError(/byte 1: sent 0x02, got 0x09/);
  });

  test("verification: bytes beyond what was sent are EPROTO", () => {
    const ledger = new EchoLedger();
    sendOn(ledger, new Uint8Array([1]), () => {});
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
    sendOn(ledger, bytes(4), () => {});
    sendOn(ledger, bytes(4), () => {});
    ledger.receive(bytes(5), []);
    expect(ledger.outstanding).toBe(3);
    expect(ledger.drain()).toHaveLength(1);
    expect(ledger.isEmpty).toBe(true);
  });

  test("wire: bytes expected but not yet written are no echo: EPROTO, more than was sent", () => {
    const ledger = new EchoLedger();
    ledger.expect(bytes(3, 4), () => {});
    expect(() => ledger.receive(bytes(3, 4), [])).toThrowError(/3 more bytes than were sent to it \(after byte 0\)/);
  });

  test("wire: the echo is compared with the view written, not with the caller's bytes", () => {
    // A caller changing its buffer after echo() does not change what went out, nor what must come back.
    const ledger = new EchoLedger();
    const payload = bytes(4, 1);
    const written = payload.slice();
    let echoed: Uint8Array | undefined;
    ledger.expect(payload, (e) => {
      echoed = e;
    });
    ledger.sent(written);
    payload.fill(9);
    ledger.receive(bytes(4, 1), []);
    expect(echoed).toBe(payload);
  });

  test("wire: many echoes gathered into one write are checked by one native comparison, a wrong byte named in the stream", () => {
    const { equal, calls } = countingEqual();
    const sent = Array.from({ length: 16 }, (_, i) => new Uint8Array(64).map((_, j) => (i * 64 + j) * 13));
    const gathered = new Uint8Array(1024);
    for (const [i, s] of sent.entries()) gathered.set(s, i * 64);
    const run = (echo: Uint8Array) => {
      const ledger = new EchoLedger(equal);
      const done: Uint8Array[] = [];
      for (const s of sent) ledger.expect(s, (e) => done.push(e));
      ledger.sent(gathered);
      ledger.receive(echo, []);
      return done;
    };
    const done = run(gathered.slice());
    expect(done).toHaveLength(16);
    for (const [i, s] of sent.entries()) expect(done[i]).toBe(s);
    expect(calls).toEqual([1024]);
    const wrong = gathered.slice();
    wrong[700] = (wrong[700] as number) ^ 0x10;
    expect(() => run(wrong)).toThrowError(
      new RegExp(
        `at byte 700: sent 0x${(gathered[700] as number).toString(16).padStart(2, "0")}, got 0x${(wrong[700] as number).toString(16).padStart(2, "0")}`,
      ),
    );
  });

  test("wire: an echo that spans two writes, split anywhere, completes each echo once", () => {
    const first = bytes(300, 1);
    const second = bytes(5, 2);
    const echo = new Uint8Array(305);
    echo.set(first);
    echo.set(second, 300);
    for (const cut of [1, 299, 300, 301, 304]) {
      const ledger = new EchoLedger();
      const done: number[] = [];
      sendOn(ledger, first, (e) => done.push(e.byteLength));
      sendOn(ledger, second, (e) => done.push(e.byteLength));
      ledger.receive(echo.slice(0, cut), []);
      ledger.receive(echo.slice(cut), []);
      expect(done).toEqual([300, 5]);
      expect(ledger.isEmpty).toBe(true);
    }
  });

  test("wire: write() data comes back as views of what was written, never of the chunk, so the reader may reuse its buffer", () => {
    const ledger = new EchoLedger();
    const first = bytes(3, 5);
    const second = bytes(4, 6);
    ledger.expectStream(first.byteLength);
    ledger.expectStream(second.byteLength);
    // Written as one gathered copy, as the client writes a tick's small writes.
    const gathered = new Uint8Array(7);
    gathered.set(first);
    gathered.set(second, 3);
    ledger.sent(gathered);
    const chunk = gathered.slice();
    const raw: Uint8Array[] = [];
    ledger.receive(chunk.subarray(0, 5), raw);
    chunk.fill(0xee); // the adapter reads into the same memory again
    ledger.receive(gathered.slice(5), raw);
    // Writes that follow each other in one gathered copy come back as one view of it.
    expect(raw.map((r) => [...r])).toEqual([
      [5, 5, 5, 6, 6],
      [6, 6],
    ]);
    for (const piece of raw) expect(piece.buffer).toBe(gathered.buffer);
  });

  test("write() data with no echo() between is one segment, which grows while it is last, even once part of it is back", () => {
    const ledger = new EchoLedger();
    const raw: Uint8Array[] = [];
    const pieces = [bytes(3, 1), bytes(2, 2), bytes(4, 3)];
    ledger.expectStream(3);
    ledger.expectStream(2);
    ledger.sent(concat(pieces.slice(0, 2)));
    ledger.receive(concat(pieces.slice(0, 2)).subarray(0, 4), raw);
    // Four of its five bytes are back: the run grows by the next write.
    ledger.expectStream(4);
    ledger.sent(pieces[2] as Uint8Array);
    ledger.expect(bytes(2, 9), () => {});
    ledger.expectStream(1);
    ledger.expectStream(1);
    // The run of three writes (one byte of them still to come), the echo, the run of two.
    expect(ledger.drain().map((segment) => segment.length - segment.received)).toEqual([5, 2, 2]);
    expect(raw.flatMap((r) => [...r])).toEqual([1, 1, 1, 2]);
  });

  test("write() data that grew after part of it came back comes back whole and in order", () => {
    const ledger = new EchoLedger();
    const raw: Uint8Array[] = [];
    const pieces = [bytes(3, 1), bytes(2, 2), bytes(4, 3)];
    ledger.expectStream(3);
    ledger.sent(pieces[0] as Uint8Array);
    ledger.receive(bytes(2, 1), raw);
    ledger.expectStream(2);
    ledger.expectStream(4);
    ledger.sent(concat(pieces.slice(1)));
    ledger.receive(concat([bytes(1, 1), pieces[1] as Uint8Array, pieces[2] as Uint8Array]), raw);
    expect(raw.flatMap((r) => [...r])).toEqual([...concat(pieces)]);
    expect(ledger.isEmpty).toBe(true);
    expect(() => ledger.receive(bytes(1, 3), raw)).toThrowError(/1 more bytes than were sent/);
  });

  test("wire: echo() and write() segments mixed in gathered writes, cut into chunks anywhere: views of the right bytes, echoes in order", () => {
    // echo() segments move the wire cursor once per run (EchoLedger.receive); a
    // write() segment after such a run must still get views that start where the run ends.
    const segments: Array<{ bytes: Uint8Array; echo: boolean }> = [
      { bytes: bytes(3, 1), echo: true },
      { bytes: bytes(4, 2), echo: false },
      { bytes: bytes(2, 3), echo: true },
      { bytes: bytes(5, 4), echo: true },
      { bytes: bytes(3, 5), echo: false },
      { bytes: bytes(1, 6), echo: true },
    ];
    // Written as two gathered copies, as the client writes two ticks' small writes: A W1 B | C W2 D.
    const writes = [concat(segments.slice(0, 3).map((s) => s.bytes)), concat(segments.slice(3).map((s) => s.bytes))];
    const echo = concat(writes);
    const expectedRaw = [...segments[1]!.bytes, ...segments[4]!.bytes];
    for (let i = 0; i <= echo.byteLength; i++) {
      for (let j = i; j <= echo.byteLength; j++) {
        const ledger = new EchoLedger();
        const done: Uint8Array[] = [];
        for (const s of segments) expectOn(ledger, s.bytes, s.echo ? (e) => done.push(e) : undefined);
        for (const w of writes) ledger.sent(w);
        const raw: Uint8Array[] = [];
        for (const [from, to] of [
          [0, i],
          [i, j],
          [j, echo.byteLength],
        ]) {
          const chunk = echo.slice(from, to);
          ledger.receive(chunk, raw);
          chunk.fill(0xee); // the adapter reads into the same memory again
        }
        const cut = `cut at ${i} and ${j}`;
        expect(
          raw.flatMap((r) => [...r]),
          cut,
        ).toEqual(expectedRaw);
        for (const piece of raw)
          expect(
            writes.map((w) => w.buffer),
            cut,
          ).toContain(piece.buffer);
        expect(done, cut).toEqual(segments.filter((s) => s.echo).map((s) => s.bytes));
        for (const [k, e] of done.entries()) expect(e, cut).toBe(segments.filter((s) => s.echo)[k]!.bytes);
        expect(ledger.isEmpty, cut).toBe(true);
        // The cursor is where the next write starts.
        const next = bytes(2, 7);
        const after: Uint8Array[] = [];
        ledger.expect(bytes(2, 8), () => {});
        ledger.expectStream(next.byteLength);
        ledger.sent(concat([bytes(2, 8), next]));
        ledger.receive(concat([bytes(2, 8), next]), after);
        expect(
          after.map((r) => [...r]),
          cut,
        ).toEqual([[7, 7]]);
      }
    }
  });

  test("pipelining: a ledger that empties reuses its slots from the start, and still catches bytes beyond what was sent", () => {
    const ledger = new EchoLedger();
    const done: number[] = [];
    const raw: Uint8Array[] = [];
    for (let round = 0; round < 100; round++) {
      const pieces = Array.from({ length: 16 }, (_, i) => bytes(4, (round * 16 + i) & 0xff));
      // One write() among the echoes, as a stream of both would.
      for (const [i, piece] of pieces.entries()) {
        expectOn(ledger, piece, i === 5 ? undefined : () => done.push(round * 16 + i));
      }
      const gathered = concat(pieces);
      ledger.sent(gathered);
      // Back in two chunks, the cut inside the write() data.
      ledger.receive(gathered.slice(0, 22), raw);
      ledger.receive(gathered.slice(22), raw);
    }
    expect(done).toEqual(Array.from({ length: 1600 }, (_, n) => n).filter((n) => n % 16 !== 5));
    expect(raw.flatMap((r) => [...r])).toEqual(
      Array.from({ length: 100 }, (_, round) => Array(4).fill((round * 16 + 5) & 0xff)).flat(),
    );
    const lists = ledger as unknown as { segments: unknown[]; wire: unknown[] };
    expect([lists.segments.length, lists.wire.length]).toEqual([16, 1]);
    expect(() => ledger.receive(bytes(1), [])).toThrowError(/1 more bytes than were sent to it \(after byte 6400\)/);
  });

  test("pipelining: slots reused while some are pending keep the order", () => {
    const ledger = new EchoLedger();
    const done: number[] = [];
    sendOn(ledger, bytes(2, 1), () => done.push(1));
    sendOn(ledger, bytes(2, 2), () => done.push(2));
    ledger.receive(bytes(2, 1), []);
    sendOn(ledger, bytes(2, 3), () => done.push(3));
    ledger.receive(new Uint8Array([2, 2, 3]), []);
    expect(done).toEqual([1, 2]);
    ledger.receive(bytes(1, 3), []);
    sendOn(ledger, bytes(1, 4), () => done.push(4));
    ledger.receive(bytes(1, 4), []);
    expect(done).toEqual([1, 2, 3, 4]);
    expect(ledger.isEmpty).toBe(true);
  });

  test("many small echoes: memory of finished segments is released", () => {
    const ledger = new EchoLedger();
    let done = 0;
    for (let i = 0; i < 5000; i++) sendOn(ledger, bytes(1), () => done++);
    for (let i = 0; i < 5000; i++) ledger.receive(bytes(1), []);
    expect(done).toBe(5000);
    expect(ledger.isEmpty).toBe(true);
    // Compaction keeps at most 1,024 finished slots (or as many as are pending): not all 5,000.
    const held = (ledger as unknown as { segments: unknown[] }).segments.length;
    expect(held).toBeLessThanOrEqual(1024);
  });
});

/** A stand-in for a runtime's memcmp (`Buffer.compare`), counting its calls. */
function countingEqual(): { equal: BytesEqual; calls: number[] } {
  const calls: number[] = [];
  const equal: BytesEqual = (a, b) => {
    calls.push(a.byteLength);
    if (a.byteLength !== b.byteLength) throw new Error(`lengths differ: ${a.byteLength} vs ${b.byteLength}`);
    for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
    return true;
  };
  return { equal, calls };
}

describe("firstDifference (byte loop, word loop, native comparison)", () => {
  /** `length` bytes of a pattern at `offset` of a larger buffer, so views start misaligned. */
  const view = (length: number, offset: number, seed: number) => {
    const out = new Uint8Array(offset + length + 9).subarray(offset, offset + length);
    for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
    return out;
  };
  const lengths = [
    1,
    7,
    8,
    9,
    NATIVE_COMPARE_BYTES - 1,
    NATIVE_COMPARE_BYTES,
    WORD_COMPARE_BYTES - 1,
    WORD_COMPARE_BYTES,
    WORD_COMPARE_BYTES + 1,
    WORD_COMPARE_BYTES + 7,
    1037,
  ];
  // [piece offset, source offset, start]: every alignment of the two views against each other.
  const alignments = [
    [0, 0, 0],
    [1, 0, 0],
    [0, 3, 0],
    [5, 2, 1],
    [7, 7, 6],
    [2, 0, 13],
  ] as const;
  const modes: Array<[string, () => BytesEqual | undefined]> = [
    ["pure JS", () => undefined],
    ["native", () => countingEqual().equal],
  ];

  for (const [mode, make] of modes)
    test(`${mode}: a wrong byte at every position of a piece, at every alignment, is named exactly`, () => {
      const equal = make();
      for (const length of lengths)
        for (const [pieceOffset, sourceOffset, start] of alignments) {
          const source = view(start + length + 3, sourceOffset, 11);
          const piece = view(length, pieceOffset, 0);
          piece.set(source.subarray(start, start + length));
          expect(firstDifference(piece, source, start, equal)).toBe(-1);
          for (let at = 0; at < length; at++) {
            const kept = piece[at] as number;
            piece[at] = kept ^ 0x80;
            const found = firstDifference(piece, source, start, equal);
            piece[at] = kept;
            if (found !== at)
              expect({ length, pieceOffset, sourceOffset, start, at, found }).toBe("the wrong byte named");
          }
          // Two wrong bytes: the first one is named, not the later one.
          if (length >= 2) {
            piece[length - 1] = (piece[length - 1] as number) ^ 1;
            piece[length >> 1] = (piece[length >> 1] as number) ^ 1;
            expect(firstDifference(piece, source, start, equal)).toBe(length >> 1);
          }
        }
    });

  test("the native comparison is asked only from its threshold on, with views of the piece's length", () => {
    const { equal, calls } = countingEqual();
    const source = view(4096, 1, 0);
    for (const length of [64, NATIVE_COMPARE_BYTES - 1, NATIVE_COMPARE_BYTES, 4000])
      expect(firstDifference(source.slice(3, 3 + length), source, 3, equal)).toBe(-1);
    expect(calls).toEqual([NATIVE_COMPARE_BYTES, 4000]);
  });

  test("ledger: a wrong byte in a later piece of a long echo is EPROTO at its position in the stream", () => {
    const { equal, calls } = countingEqual();
    const ledger = new EchoLedger(equal);
    const sent = view(3000, 3, 5);
    sendOn(ledger, view(10, 0, 1).slice(), () => {});
    sendOn(ledger, sent, () => {});
    const echo = new Uint8Array(3010);
    echo.set(view(10, 0, 1));
    echo.set(sent, 10);
    echo[10 + 2500] = (echo[10 + 2500] as number) ^ 0xff;
    ledger.receive(echo.subarray(0, 1500), []);
    expect(() => ledger.receive(echo.subarray(1500), [])).toThrowError(
      new RegExp(`byte 2510: sent 0x${(sent[2500] as number).toString(16).padStart(2, "0")}`),
    );
    expect(calls).toEqual([1490, 1510]);
  });

  test("ledger: many echoes in one chunk, sent from one buffer, each compared at its own offset", () => {
    for (const equal of [undefined, countingEqual().equal]) {
      const pattern = view(5000, 1, 9);
      // Views of one buffer at odd offsets, as `tcp-echo load` sends; one of 200 B takes the native path.
      const sent = [
        pattern.subarray(3, 67),
        pattern.subarray(1001, 1065),
        pattern.subarray(77, 277),
        pattern.subarray(2, 19),
      ];
      const total = sent.reduce((n, s) => n + s.byteLength, 0);
      const echo = new Uint8Array(total + 5).subarray(5);
      let at = 0;
      for (const s of sent) {
        echo.set(s, at);
        at += s.byteLength;
      }
      for (let wrong = 0; wrong < total; wrong++) {
        const ledger = new EchoLedger(equal);
        const done: number[] = [];
        for (const s of sent) sendOn(ledger, s, (e) => done.push(e.byteLength));
        const kept = echo[wrong] as number;
        echo[wrong] = kept ^ 0x40;
        expect(() => ledger.receive(echo, [])).toThrowError(new RegExp(`at byte ${wrong}: `));
        echo[wrong] = kept;
      }
      const ledger = new EchoLedger(equal);
      const done: number[] = [];
      for (const s of sent) sendOn(ledger, s, (e) => done.push(e.byteLength));
      ledger.receive(echo, []);
      expect(done).toEqual([64, 64, 200, 17]);
    }
  });

  test("ledger: a chunk that is all of one sent view is compared and handed to read() as it is, no view made of either", () => {
    const handed: Array<[Uint8Array, Uint8Array]> = [];
    const { equal } = countingEqual();
    const ledger = new EchoLedger((a, b) => {
      handed.push([a, b]);
      return equal(a, b);
    });
    // Two gathered writes of 1 KiB (a 50x16 batch), echoed a chunk each, then one chunk across both.
    const first = view(1024, 0, 1).slice();
    const second = view(1024, 0, 2).slice();
    for (const sent of [first, second, first, second]) {
      expectOn(ledger, sent);
      ledger.sent(sent);
    }
    const raw: Uint8Array[] = [];
    const echoOfFirst = first.slice();
    ledger.receive(echoOfFirst, raw);
    expect(handed).toEqual([[echoOfFirst, first]]);
    expect(handed[0]?.[0]).toBe(echoOfFirst);
    expect(handed[0]?.[1]).toBe(first);
    expect(raw).toHaveLength(1);
    expect(raw[0]).toBe(first);
    // Parts of views are still views of exactly their bytes, and still checked.
    const across = new Uint8Array(3072);
    across.set(second, 0);
    across.set(first, 1024);
    across.set(second, 2048);
    across[1024 + 700] = (across[1024 + 700] as number) ^ 1;
    ledger.receive(across.subarray(0, 1536), raw);
    expect(raw.slice(1).map((piece) => [piece.byteLength, piece.byteOffset])).toEqual([
      [1024, 0],
      [512, 0],
    ]);
    expect(raw[1]).toBe(second);
    expect(() => ledger.receive(across.subarray(1536), raw)).toThrowError(/at byte 2748: /);
  });
});
