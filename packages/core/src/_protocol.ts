/**
 * The echo protocol without a socket (sans-IO, after h11 and quinn-proto).
 *
 * A runtime adapter owns the socket. It tells the protocol what happened through
 * `SocketEvents` and carries out what the protocol decides through `SocketIO`.
 * Everything that is the same on every runtime (byte accounting, backpressure,
 * half-close ordering, matching echoes to what was sent) lives here, and is
 * unit-tested with a fake `SocketIO`.
 */

import { EchoError, echoError, isTlsTruncation } from "./_errors.ts";

/** What the protocol asks of a socket. Each runtime adapter implements this table. */
export interface SocketIO {
  /**
   * Queue `chunk` for sending, all of it, in order. Call `SocketEvents.onFlushed`
   * with its length once it is handed to the kernel (synchronously is fine; the
   * lengths of several writes may come in one call).
   * The protocol never writes after `closeWrite`, `close` or `destroy`.
   */
  write(chunk: Uint8Array): void;
  /** Stop reading from the socket (backpressure). Idempotent. */
  pause(): void;
  /** Read again after `pause`. Idempotent. */
  resume(): void;
  /** Send FIN (half-close). Only called once everything written has been flushed. */
  closeWrite(): void;
  /**
   * Release the socket: FIN after what was written (if not sent already), then
   * close the descriptor without waiting for anything. Only called once
   * everything written has been flushed and the peer has nothing more to send
   * (it half-closed, or a closing client has its whole echo), so no data is
   * left unread: closing over unread data makes the kernel reset instead.
   */
  close(): void;
  /** Close now, dropping anything unsent. Idempotent; must still lead to `onClose()`. */
  destroy(): void;
}

/** What an adapter reports about its socket. */
export interface SocketEvents {
  /**
   * Bytes arrived. A server session writes `chunk` back: its memory must stay
   * as it is until that write has flushed. A client keeps nothing of it once
   * `onData` returns (the echo is compared, and `read()` gets views of the bytes
   * that were written), so a client adapter may read into the same memory again.
   */
  onData(chunk: Uint8Array): void;
  /** `bytes` of what was passed to `write` reached the kernel. */
  onFlushed(bytes: number): void;
  /** The peer half-closed (EOF). */
  onEnd(): void;
  /** The socket failed. `onClose()` must follow. */
  onError(error: unknown): void;
  /** The socket is gone (both directions, descriptor released). */
  onClose(): void;
}

/** Events nobody listens to: a socket's before it is wired, or one refused at accept. */
export const NO_EVENTS: SocketEvents = { onData() {}, onFlushed() {}, onEnd() {}, onError() {}, onClose() {} };

// --- server side ------------------------------------------------------------

/** Why `EchoSession` asks to be closed; see `CloseReason` in types.ts. */
export type SessionEnd = "eof" | "error" | "idle-timeout" | "server-close";

/** What a session tells its server, and the server's limit for it; one object serves every session of a server. */
export interface SessionHooks {
  /** Stop reading while more than this many received bytes are unflushed; read again at half of it. */
  readonly highWaterMark: number;
  traffic(bytesIn: number, bytesOut: number): void;
  /** Normalizes, counts and reports a connection error; returns it normalized. */
  failed(session: EchoSession, error: unknown): EchoError;
  closed(session: EchoSession): void;
}

/**
 * One server-side connection: write back every byte, stop reading while more
 * than `highWaterMark` bytes are unflushed, and after the peer's EOF close only
 * once everything has been written back (inetd's echo does the same).
 *
 * An idle server's memory is mostly these, one per connection, so the state
 * is a few fields: the flags and the reason are bits of one number, the
 * high-water mark is the server's (in `hooks`), and `bytesOut` is what came
 * in and is no longer pending. Bun rounds an object up to 48, 64, 80, 112 or
 * 160 bytes: a `ServedSession`, these six fields and the server's two, is
 * 80 (it was 160 with seventeen).
 */
export class EchoSession implements SocketEvents {
  bytesIn = 0;
  /** Received but not yet flushed back. */
  pending = 0;
  failure: EchoError | undefined;
  /** `ACTIVE`, `PAUSED`, `PEER_ENDED`, `FINISHING`, `DESTROYING`, `DONE`, and the reason above `REASON_SHIFT`. */
  private state = ACTIVE;
  /** Read by the server only to ask a socket where it is from (an error's message). */
  readonly io: SocketIO;
  private readonly hooks: SessionHooks;

  constructor(io: SocketIO, hooks: SessionHooks) {
    this.io = io;
    this.hooks = hooks;
  }

  /** Why it ends, once something has decided; `undefined` before. */
  get reason(): SessionEnd | undefined {
    const index = this.state >> REASON_SHIFT;
    return index === 0 ? undefined : REASONS[index - 1];
  }

  /** Sets the reason unless one is set already (the first cause wins). */
  private endFor(reason: SessionEnd): void {
    if (this.state >> REASON_SHIFT === 0) this.state |= (REASONS.indexOf(reason) + 1) << REASON_SHIFT;
  }

  /** Bytes written back to the peer. */
  get bytesOut(): number {
    return this.bytesIn - this.pending;
  }

  /** Set on any traffic; the server's idle sweep clears it. */
  get active(): boolean {
    return (this.state & ACTIVE) !== 0;
  }

  set active(value: boolean) {
    this.state = value ? this.state | ACTIVE : this.state & ~ACTIVE;
  }

  /** Torn down (`abort`), its close not yet reported. */
  get isDestroying(): boolean {
    return (this.state & DESTROYING) !== 0;
  }

  get isClosed(): boolean {
    return (this.state & DONE) !== 0;
  }

  /**
   * Hands `chunk` straight to `io.write` and keeps no other reference, so a
   * server adapter may read into the same memory again once that write has
   * flushed (the Deno adapter does: fresh memory per read halved its bulk rate).
   */
  onData(chunk: Uint8Array): void {
    const size = chunk.byteLength;
    if ((this.state & (DONE | FINISHING)) !== 0 || size === 0) return;
    this.bytesIn += size;
    this.state |= ACTIVE;
    this.hooks.traffic(size, 0);
    // Count before writing: an adapter may report the flush synchronously.
    this.pending += size;
    this.io.write(chunk);
    if ((this.state & PAUSED) === 0 && this.pending > this.hooks.highWaterMark) {
      this.state |= PAUSED;
      this.io.pause();
    }
  }

  onFlushed(bytes: number): void {
    if ((this.state & DONE) !== 0) return;
    this.pending -= bytes;
    this.state |= ACTIVE;
    this.hooks.traffic(0, bytes);
    if ((this.state & (PAUSED | PEER_ENDED)) === PAUSED && this.pending <= this.hooks.highWaterMark >> 1) {
      this.state &= ~PAUSED;
      this.io.resume();
    }
    if ((this.state & PEER_ENDED) !== 0 && this.pending === 0) this.finish();
  }

  onEnd(): void {
    if ((this.state & DONE) !== 0) return;
    this.state |= PEER_ENDED;
    if (this.pending === 0) this.finish();
  }

  onError(error: unknown): void {
    if ((this.state & DONE) !== 0) return;
    if (isTlsTruncation(error)) {
      this.onEnd();
      return;
    }
    this.failure ??= this.hooks.failed(this, error);
    this.endFor("error");
    this.destroy();
  }

  onClose(): void {
    if ((this.state & DONE) !== 0) return;
    this.state |= DONE;
    if (this.state >> REASON_SHIFT === 0) {
      if ((this.state & PEER_ENDED) !== 0 && this.pending === 0) this.endFor("eof");
      else {
        // The socket went away without EOF or error: some runtimes report a reset this way.
        this.endFor("error");
        this.failure ??= this.hooks.failed(this, echoError("ECONNRESET", { operation: "read" }));
      }
    }
    this.hooks.closed(this);
  }

  /** Close now (idle timeout, forced shutdown); pending echo is dropped. */
  abort(reason: SessionEnd): void {
    if ((this.state & DONE) !== 0) return;
    this.endFor(reason);
    this.destroy();
  }

  private destroy(): void {
    if ((this.state & DESTROYING) !== 0) return;
    this.state |= DESTROYING;
    this.io.destroy();
  }

  private finish(): void {
    if ((this.state & FINISHING) !== 0) return;
    this.state |= FINISHING;
    this.endFor("eof");
    this.io.close();
  }
}

/** `EchoSession`'s state bits. Traffic since the idle sweep last looked. */
const ACTIVE = 1;
/** Reading is paused: more than the high-water mark is unflushed. */
const PAUSED = 2;
/** The peer half-closed. */
const PEER_ENDED = 4;
/** `io.close()` was called. */
const FINISHING = 8;
/** `io.destroy()` was called. */
const DESTROYING = 16;
/** `onClose` ran: nothing more happens. */
const DONE = 32;
/** The bits from here up hold the reason: 0 for none yet, else 1 + its index in `REASONS`. */
const REASON_SHIFT = 6;
const REASONS: readonly SessionEnd[] = ["eof", "error", "idle-timeout", "server-close"];

// --- client side -------------------------------------------------------------

/**
 * Bytes sent, waiting for their echo: from one `echo()` call, or from a run of
 * `write()` calls with no `echo()` between them (one segment for the run: each
 * write's bytes go to `read()` as views of the wire, so nothing needs them apart).
 */
export interface Segment {
  /** The `echo()` call's bytes; empty for a run of `write()` data. */
  readonly bytes: Uint8Array;
  /** How many bytes it waits for: `bytes.byteLength`, or the run's, which grows while it is last. */
  length: number;
  /** How many of them have come back. */
  received: number;
  /**
   * Set for `echo()` segments, and called with `bytes` once every one of them
   * has come back equal: the echo keeps nothing of what was received. `write()`
   * data goes to `read()` instead.
   */
  readonly complete: ((echoed: Uint8Array) => void) | undefined;
  readonly fail: ((error: EchoError) => void) | undefined;
}

/**
 * Matches the bytes a server sends back to what the client sent, in order.
 * Every byte is compared: an echo server that changes, adds or drops bytes is
 * caught here, not by each caller.
 *
 * Two records: the segments (what each `echo()` or `write()` waits for, in
 * call order) and the wire (the views actually handed to the socket, in write
 * order: a tick's small echoes gathered into one, or a large one as it is).
 * The echo is compared against the wire, so the 16 echoes of 64 B that went
 * out as one 1 KiB write come back through one native comparison rather than
 * 16 byte loops (the loops were 14.5% of the Node client's samples in the
 * 50 x 16 bench); the segments are then only counted off.
 */
export class EchoLedger {
  /**
   * Pending from `head` to `end`, and emptied slots either side. Both lists are
   * reused from slot 0 once all of them have matched (a pipelined chunk mostly
   * ends so), not spliced: a list spliced from the front gives up its storage,
   * and grows it again. With 16 echoes of 64 B per chunk, a ledger's expect,
   * sent and receive went from 27-34 to 22-26 ns per echo on Node.
   */
  private readonly segments: Array<Segment | undefined> = [];
  private readonly equal: BytesEqual | undefined;
  private head = 0;
  private end = 0;
  private readonly wire: Array<Uint8Array | undefined> = [];
  private wireHead = 0;
  private wireEnd = 0;
  /** How much of `wire[wireHead]` has come back. */
  private wireAt = 0;
  /** Bytes sent and not yet echoed. */
  outstanding = 0;
  /** Total bytes matched so far, for error messages. */
  matched = 0;

  /** `equal`: the runtime's native comparison for long pieces, if it has one. */
  constructor(equal?: BytesEqual) {
    this.equal = equal;
  }

  get isEmpty(): boolean {
    return this.head === this.end;
  }

  /**
   * Records bytes being sent. `onEcho` receives `bytes` themselves once their
   * whole echo has matched, and `onFail` the error that ends it; without them
   * the echoed bytes are for `read()`. They are compared once `sent` has
   * recorded them on the wire.
   */
  expect(bytes: Uint8Array, onEcho: (echoed: Uint8Array) => void, onFail?: (error: EchoError) => void): Segment {
    // Every field in the literal: one object shape for every segment keeps `receive` monomorphic.
    const segment: Segment = { bytes, length: bytes.byteLength, received: 0, complete: onEcho, fail: onFail };
    this.segments[this.end++] = segment;
    this.outstanding += bytes.byteLength;
    return segment;
  }

  /**
   * Records `length` bytes of `write()` data being sent, for `read()`. A run of
   * writes is one segment: the pending one grows while it is the last, so 16
   * small writes cost no object each and `receive` walks one segment for them
   * (a pending segment always has bytes still to come: a full one leaves at once).
   */
  expectStream(length: number): void {
    this.outstanding += length;
    const last = this.end > this.head ? (this.segments[this.end - 1] as Segment) : undefined;
    if (last !== undefined && last.complete === undefined) {
      last.length += length;
      return;
    }
    this.segments[this.end++] = { bytes: NO_BYTES, length, received: 0, complete: undefined, fail: undefined };
  }

  /**
   * Records a view handed to the socket: the bytes of expected segments, in
   * order, which the echo is compared against. The view must not change until
   * its echo is back (the client's gathered writes never do).
   */
  sent(view: Uint8Array): void {
    this.wire[this.wireEnd++] = view;
  }

  /**
   * Matches received bytes. Appends to `raw` the echo of `write()` data, in
   * order, as views of the bytes that were written (now known to be equal to
   * the echo; see `advance`); completes `echo()` segments as they fill. Nothing of `chunk` is
   * kept or handed out, so the adapter may read into its memory again. Throws
   * `EPROTO` on bytes that differ from, or go beyond, what was sent.
   */
  receive(chunk: Uint8Array, raw: Uint8Array[]): void {
    this.verify(chunk);
    const size = chunk.byteLength;
    let offset = 0;
    // Verified bytes of `echo()` segments the wire cursor has not moved over yet:
    // they need no views, so a run of them (a chunk's 16 echoes) is one `advance`.
    // A run of `write()` data is one segment already (`expectStream`), so its
    // views (one per gathered copy) come from one `advance` too.
    let echoed = 0;
    while (offset < size) {
      const segment = this.segments[this.head] as Segment;
      const take = Math.min(segment.length - segment.received, size - offset);
      if (segment.complete === undefined) {
        // `write()` data: its views start where the echoes before it end.
        if (echoed > 0) {
          this.advance(echoed, undefined);
          echoed = 0;
        }
        this.advance(take, raw);
      } else echoed += take;
      segment.received += take;
      offset += take;
      if (segment.received === segment.length) {
        this.segments[this.head] = undefined;
        this.head++;
        // The bytes sent, now known to be exactly the echo: no view of `chunk` is made or kept.
        // `complete` runs none of the caller's code now (a promise's resolve queues its
        // reactions), so nothing sees the wire cursor still behind the run.
        segment.complete?.(segment.bytes);
      }
    }
    if (echoed > 0) this.advance(echoed, undefined);
    this.matched += size;
    this.outstanding -= size;
    this.compact();
  }

  /**
   * Compares `chunk` with the wire from where the last chunk left off, in runs
   * as long as each written view. Moves nothing: `advance` does, once it is known good.
   */
  private verify(chunk: Uint8Array): void {
    let offset = 0;
    let head = this.wireHead;
    let at = this.wireAt;
    while (offset < chunk.byteLength) {
      const view = head < this.wireEnd ? this.wire[head] : undefined;
      if (view === undefined) {
        throw new EchoError(
          "EPROTO",
          `the server sent ${chunk.byteLength - offset} more bytes than were sent to it (after byte ${this.matched + offset}); it is not an echo server`,
        );
      }
      const take = Math.min(view.byteLength - at, chunk.byteLength - offset);
      const mismatch = differsAt(chunk, offset, take, view, at, this.equal);
      if (mismatch >= 0) {
        const byte = this.matched + offset + mismatch;
        throw new EchoError(
          "EPROTO",
          `the echo differs from what was sent at byte ${byte}: sent 0x${hex(view[at + mismatch])}, got 0x${hex(chunk[offset + mismatch])}${byte === 0 && looksLikeTls(chunk.subarray(offset)) ? TLS_HINT : ""}`,
        );
      }
      offset += take;
      at += take;
      if (at === view.byteLength) {
        head++;
        at = 0;
      }
    }
  }

  /**
   * Moves `length` verified bytes along the wire; with `raw`, appends them as
   * views of what was written: the tick's gathered copy for small writes (so a
   * caller reusing its buffer after `write()` cannot change what `read()` gets),
   * the caller's own bytes for a large write (which `verify` compared as they are now).
   */
  private advance(length: number, raw: Uint8Array[] | undefined): void {
    let left = length;
    while (left > 0) {
      const view = this.wire[this.wireHead] as Uint8Array;
      const take = Math.min(view.byteLength - this.wireAt, left);
      raw?.push(within(view, this.wireAt, take));
      left -= take;
      this.wireAt += take;
      if (this.wireAt === view.byteLength) {
        this.wire[this.wireHead] = undefined;
        this.wireHead++;
        this.wireAt = 0;
      }
    }
  }

  /** Takes every pending segment out, for failing them. */
  drain(): Segment[] {
    const rest = this.segments.slice(this.head, this.end) as Segment[];
    this.segments.length = 0;
    this.head = 0;
    this.end = 0;
    this.wire.length = 0;
    this.wireHead = 0;
    this.wireEnd = 0;
    this.wireAt = 0;
    this.outstanding = 0;
    return rest;
  }

  private compact(): void {
    if (this.head === this.end) {
      this.head = 0;
      this.end = 0;
      // Storage for a burst (thousands sent before any came back) is given up once it is done.
      if (this.segments.length > COMPACT_SLOTS) this.segments.length = 0;
    } else if (this.head > COMPACT_SLOTS && this.head * 2 > this.end) {
      this.segments.splice(0, this.head);
      this.end -= this.head;
      this.head = 0;
    }
    if (this.wireHead === this.wireEnd) {
      this.wireHead = 0;
      this.wireEnd = 0;
      if (this.wire.length > COMPACT_SLOTS) this.wire.length = 0;
    } else if (this.wireHead > COMPACT_SLOTS && this.wireHead * 2 > this.wireEnd) {
      this.wire.splice(0, this.wireHead);
      this.wireEnd -= this.wireHead;
      this.wireHead = 0;
    }
  }
}

const NO_BYTES = new Uint8Array(0);

/** Emptied slots a ledger's list keeps before it is compacted. */
const COMPACT_SLOTS = 1024;

/**
 * A TLS record header: content type alert (0x15) or handshake (0x16), then
 * major version 3. A TLS server answering plain text starts its reply so.
 */
function looksLikeTls(reply: Uint8Array): boolean {
  return (reply[0] === 0x15 || reply[0] === 0x16) && (reply.byteLength < 2 || reply[1] === 0x03);
}

const TLS_HINT =
  "; the reply looks like a TLS record, so the server speaks TLS: connect with TLS (CLI: --tls-ca FILE; API: tls)";

/**
 * Whether two views of the same length hold the same bytes: a runtime's native
 * comparison (`Buffer.compare`, memcmp), which an adapter may give core through
 * `RuntimeTable.bytesEqual`.
 */
export type BytesEqual = (a: Uint8Array, b: Uint8Array) => boolean;

/**
 * From this length a native `bytesEqual` beats the byte loop, the `subarray`s it
 * needs included (measured on Node 24, Bun 1.4 and Deno 2.9: 2x at 128 B, 3-6x at
 * 512 B, 10-30x at 64 KiB).
 */
export const NATIVE_COMPARE_BYTES = 128;
/**
 * Without a native comparison, from this length bytes are compared eight at a time
 * through two `DataView`s, which read at any alignment (a socket's chunk and the
 * sent bytes rarely line up): 1.5-2.5x the byte loop at 512 B, 3x at 64 KiB, the
 * views included. Shorter pieces stay with the byte loop: kept views made 64 B
 * echoes 2x faster to compare on V8, but on Bun reading `.buffer` of each sent
 * view cost more than the loop it saved (JSC `get buffer`, 3.3% of the client).
 */
export const WORD_COMPARE_BYTES = 512;

/**
 * Index of the first byte where `chunk[offset, offset + length)` differs from
 * `source` at `start`, or -1. Long runs go to the runtime's `equal` when it has
 * one; either way the byte loop names the exact byte once they differ.
 */
function differsAt(
  chunk: Uint8Array,
  offset: number,
  length: number,
  source: Uint8Array,
  start: number,
  equal: BytesEqual | undefined,
): number {
  let i = 0;
  if (equal !== undefined && length >= NATIVE_COMPARE_BYTES) {
    if (equal(within(chunk, offset, length), within(source, start, length))) return -1;
  } else if (length >= WORD_COMPARE_BYTES) {
    const a = new DataView(chunk.buffer, chunk.byteOffset + offset, length);
    const b = new DataView(source.buffer, source.byteOffset + start, length);
    const end = length - 8;
    while (
      i <= end &&
      a.getInt32(i, true) === b.getInt32(i, true) &&
      a.getInt32(i + 4, true) === b.getInt32(i + 4, true)
    )
      i += 8;
  }
  for (; i < length; i++) if (chunk[offset + i] !== source[start + i]) return i;
  return -1;
}

/**
 * `bytes[start, start + length)`: `bytes` itself when that is all of it, which
 * a socket's read and a gathered write usually are. On Bun (JSC) the first
 * `subarray` of a small, new `Uint8Array` (each read the socket hands over) moves
 * its bytes out of the GC heap: 0.66-0.95 us against 0.11 us for a view of a large
 * one (25-30 ns on V8), and 5% of the Bun client's samples in 50x16 through `write()`.
 */
function within(bytes: Uint8Array, start: number, length: number): Uint8Array {
  return start === 0 && length === bytes.byteLength ? bytes : bytes.subarray(start, start + length);
}

/** Index of the first byte where `piece` differs from `source` at `start`, or -1. */
export function firstDifference(piece: Uint8Array, source: Uint8Array, start: number, equal?: BytesEqual): number {
  return differsAt(piece, 0, piece.byteLength, source, start, equal);
}

export function concat(pieces: Uint8Array[], total?: number): Uint8Array {
  if (pieces.length === 1) return pieces[0] as Uint8Array;
  const size = total ?? pieces.reduce((sum, piece) => sum + piece.byteLength, 0);
  const out = new Uint8Array(size);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.byteLength;
  }
  return out;
}

function hex(byte: number | undefined): string {
  return (byte ?? 0).toString(16).padStart(2, "0");
}
