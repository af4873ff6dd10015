/**
 * The client side every runtime shares: `EchoConnection` over any adapter's
 * `SocketIO`. An adapter only dials and wires its socket's callbacks to the
 * `SocketEvents` it is given.
 */

import { type Deadline, Deadlines } from "./_deadlines.ts";
import { contextOf, EchoError, echoError, formatEndpoint, isTlsTruncation, toEchoError } from "./_errors.ts";
import { type ConnectConfig, resolveConnectOptions, resolveEchoOptions, toBytes } from "./_options.ts";
import { type BytesEqual, EchoLedger, type SocketEvents, type SocketIO } from "./_protocol.ts";
import type {
  Address,
  ConnectOptions,
  EchoConnection,
  EchoOptions,
  Runtime,
  SocketInfo,
  UnixConnectOptions,
} from "./types.ts";

/** An open socket, as an adapter's dialer returns it. */
export interface Dialed {
  readonly info: SocketInfo<Address>;
  readonly io: SocketIO;
}

/**
 * A dial in progress, as the dialer sees it. Core gives up on it at the
 * connect timeout or when the caller's signal aborts: `aborted` is then true
 * and `onAbort`, if the dialer set it, is called once. A dialer that cannot
 * give up may ignore both: core destroys the socket once it opens.
 */
export interface DialAttempt {
  readonly aborted: boolean;
  onAbort: (() => void) | undefined;
  /** An `AbortSignal` that aborts with the attempt, for APIs that take one (`Deno.connect`); made on first use. */
  readonly signal: AbortSignal;
}

/**
 * Opens a socket and wires its callbacks to `events`. It should give up when
 * `attempt` is aborted (see `DialAttempt`).
 */
export type Dialer = (config: ConnectConfig, events: SocketEvents, attempt: DialAttempt) => Promise<Dialed>;

/**
 * What a dialing socket's events go to until it is open, in an adapter that
 * wires its shared listeners from the start: only an error means anything
 * then, and it fails the dial. `connection` is core's, for the socket's IO
 * once the adapter resolves the dial with it.
 */
export class PendingDial implements SocketEvents {
  readonly config: ConnectConfig;
  readonly connection: SocketEvents;
  readonly resolve: (dialed: Dialed) => void;
  readonly reject: (error: unknown) => void;

  constructor(
    config: ConnectConfig,
    connection: SocketEvents,
    resolve: (dialed: Dialed) => void,
    reject: (error: unknown) => void,
  ) {
    this.config = config;
    this.connection = connection;
    this.resolve = resolve;
    this.reject = reject;
  }

  onData(): void {}
  onFlushed(): void {}
  onEnd(): void {}
  onClose(): void {}
  onError(error: unknown): void {
    this.reject(error);
  }
}

/**
 * One connect's timeout and abort, without an `AbortController`, listener
 * closures or a `Promise.race` per connect: under connection churn (`load
 * --mode churn`) those, with the timer, were about 3% of the Node client's
 * profile samples (an `EventTarget` per connect, three listeners on it, and
 * under tsx a `__name` call per closure). The timeout is one of the shared
 * `Deadlines`, and the caller's signal gets the attempt itself as its
 * listener (`handleEvent`).
 */
class Attempt implements DialAttempt {
  aborted = false;
  onAbort: (() => void) | undefined = undefined;
  failure: EchoError | undefined = undefined;
  readonly config: ConnectConfig;
  private controller: AbortController | undefined = undefined;
  private reject: ((error: EchoError) => void) | undefined = undefined;
  private timer: Deadline | undefined = undefined;

  constructor(config: ConnectConfig) {
    this.config = config;
    if (config.timeout > 0) this.timer = connectDeadlines(config.timeout).add(this);
    config.signal?.addEventListener("abort", this, { once: true });
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.failure);
    }
    return this.controller.signal;
  }

  /** The dial's outcome, or the attempt's failure as soon as it is given up. */
  outcome(dialing: Promise<Dialed>): Promise<Dialed> {
    return new Promise((resolve, reject) => {
      this.reject = reject;
      dialing.then(resolve, reject);
    });
  }

  abort(error: EchoError): void {
    if (this.aborted) return;
    this.aborted = true;
    this.failure = error;
    this.controller?.abort(error);
    this.onAbort?.();
    this.reject?.(error);
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.abort(echoError("EABORTED", connectContext(this.config)));
  }

  done(): void {
    this.timer?.cancel();
    this.config.signal?.removeEventListener("abort", this);
  }
}

function timedOut(attempt: Attempt): void {
  attempt.abort(echoError("ETIMEDOUT", connectContext(attempt.config)));
}

/** The connect timeouts of each length (a process mostly uses one). */
const connectTimeouts = new Map<number, Deadlines<Attempt>>();

function connectDeadlines(ms: number): Deadlines<Attempt> {
  let deadlines = connectTimeouts.get(ms);
  if (deadlines === undefined) {
    deadlines = new Deadlines(ms, timedOut);
    connectTimeouts.set(ms, deadlines);
  }
  return deadlines;
}

function connectContext(config: ConnectConfig) {
  return { operation: "connect" as const, ...contextOf(config) };
}

/** Validates options, dials with a timeout, and returns the open connection. */
export async function openConnection(
  runtime: Runtime,
  options: ConnectOptions | UnixConnectOptions | undefined,
  dial: Dialer,
  bytesEqual?: BytesEqual,
  afterIO?: AfterIO,
): Promise<EchoConnection<Address>> {
  const config = resolveConnectOptions(options);
  if (config.signal?.aborted) throw echoError("EABORTED", connectContext(config));
  const connection = new ClientConnection(runtime, config, bytesEqual, afterIO);
  const attempt = new Attempt(config);
  const dialing = dial(config, connection, attempt);
  try {
    connection.attach(await attempt.outcome(dialing));
    return connection;
  } catch (error) {
    // A dial that still succeeds after the timeout must not leak its socket.
    dialing.then(
      ({ io }) => io.destroy(),
      () => {},
    );
    throw attempt.failure ?? toEchoError(error, connectContext(config));
  } finally {
    attempt.done();
  }
}

type Waiter = { resolve: () => void; reject: (error: EchoError) => void };

/**
 * The executors of the promises every connection makes, once for the process
 * rather than a closure per connection (or per echo): their arguments go in
 * and out through these variables, set and cleared around `new Promise`,
 * which runs its executor at once. Under tsx (`./tcp-echo` on Node) a closure
 * in a class field is also named by an `Object.defineProperty` call each time
 * it is made (esbuild's keepNames).
 */
let echoing: EchoLedger | undefined;
let echoingBytes: Uint8Array | undefined;

function expectEcho(resolve: (echoed: Uint8Array) => void, reject: (error: EchoError) => void): void {
  (echoing as EchoLedger).expect(echoingBytes as Uint8Array, resolve, reject);
}

let closedResolve: (() => void) | undefined;
let closedReject: ((error: EchoError) => void) | undefined;

function captureClosed(resolve: () => void, reject: (error: EchoError) => void): void {
  closedResolve = resolve;
  closedReject = reject;
}

function ignore(): void {}

/** Writes smaller than this are gathered into a batch; see `send`. */
const COALESCE_BYTES = 16 * 1024;
/**
 * Microtask turns in a row that find a small-write batch unchanged before it
 * is sent, on a runtime without `afterIO`. One was enough for `await
 * conn.write(piece)` in a loop; a writer through an `async` helper of its own,
 * or through `writable.getWriter()`, comes back a turn later, and one more turn
 * covers a helper inside a helper. Each turn is a microtask per batch: `echo()`
 * in 50x16 read 0.92x (Node, 3 pairs), 1.04x (Bun, 12 pairs) and 1.03x (Deno,
 * 7 pairs) CPU per message against one turn, inside the noise. A writer of
 * small pieces makes one turn per piece.
 */
const IDLE_TURNS = 3;

/** What `write()` returns while the connection is under its high-water mark: one promise for every write, not one each. */
const WRITTEN: Promise<void> = Promise.resolve();

/**
 * Runs a task once the runtime has run the callbacks and timers already due
 * (Node's and Bun's `setImmediate`); see `RuntimeTable.afterIO`. Called as a
 * plain function, never as a method: a host's own may check its receiver.
 */
export type AfterIO = (this: void, task: () => void) => void;

/**
 * A tick's gathered writes are copied into views of one slab that every
 * connection of the process shares, not into a `Uint8Array` of their own: on
 * V8 each 1 KiB batch of the 50x16 client bench got a backing store off the
 * heap, and that `new Uint8Array` cost as many samples as the echo's
 * `new Promise` (the copy was 1.6-2.4% of the Node client's samples, 11-15% of
 * those in our code; 0.8% with the slab). Nothing in a slab is ever written
 * twice (a full slab is replaced, and freed once the writes that point into it
 * are done), so a write may keep its view as long as it likes.
 */
const SLAB_BYTES = 64 * 1024;
let slab = new Uint8Array(0);
let slabUsed = 0;

/**
 * The first `count` of `pieces` (`total` bytes in all, at most 2 * COALESCE_BYTES)
 * as one view; their slots are emptied, and the list keeps its length for the next batch.
 */
function gather(pieces: Array<Uint8Array | undefined>, count: number, total: number): Uint8Array {
  if (slabUsed + total > slab.byteLength) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + total);
  slabUsed += total;
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const piece = pieces[i] as Uint8Array;
    pieces[i] = undefined;
    out.set(piece, offset);
    offset += piece.byteLength;
  }
  return out;
}

/**
 * The client connection. State: open -> (closeWrite) write-closed -> (server EOF)
 * done; `close()` goes through closing (draining, at most `drainTimeout` ms) to done.
 * Any failure rejects everything pending with the same error, once.
 */
export class ClientConnection implements EchoConnection<Address>, SocketEvents {
  readonly runtime: Runtime;
  readonly closed: Promise<void>;
  private io: SocketIO | undefined;
  private info: SocketInfo<Address> | undefined;
  private readonly config: ConnectConfig;
  private readonly ledger: EchoLedger;
  /** Sends the batch once this turn's I/O callbacks are done (`RuntimeTable.afterIO`); without it the batch waits through microtasks. */
  private readonly afterIO: AfterIO | undefined;
  /** Unflushed bytes handed to `io.write`. */
  private pending = 0;
  private readonly writeWaiters: Waiter[] = [];
  /**
   * Small writes of this tick, sent together by `flushBatch`: the first
   * `batchCount` slots. Emptied by `gather`, never shortened: `length = 0` gave
   * up the list's backing store at every flush, and the next tick grew a new one.
   */
  private readonly batch: Array<Uint8Array | undefined> = [];
  private batchCount = 0;
  private batchBytes = 0;
  /** A `flushTurn` is queued, as an `afterIO` task or a microtask. */
  private flushQueued = false;
  /** `batchCount` at the last `flushTurn`; -1 when none has looked yet (microtask turns only, as is `idleTurns`). */
  private batchSeen = -1;
  /** `flushTurn`s in a row that found the batch as it was. */
  private idleTurns = 0;
  private readonly rawChunks: Uint8Array[] = [];
  /** `onData`'s scratch list of `write()` data in one chunk, reused: onData runs for every chunk. */
  private readonly received: Uint8Array[] = [];
  private rawBytes = 0;
  private readonly readWaiters: Array<{ resolve: (chunk: Uint8Array | null) => void; reject: (e: EchoError) => void }> =
    [];
  private readPaused = false;
  private writeClosing = false;
  private writeClosed = false;
  private serverEnded = false;
  /** `close()` was called and is draining: see `beginClose`. */
  private closing = false;
  /** While closing: bytes sent whose echo has not come back yet. */
  private owed = 0;
  private drainTimer: ReturnType<typeof setTimeout> | undefined;
  private failure: EchoError | undefined;
  private finished = false;
  private readonly resolveClosed: () => void;
  private readonly rejectClosed: (error: EchoError) => void;
  private streams: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> } | undefined;
  /** `replyTimeout`: armed while the connection waits on the server; see `checkStall`. */
  /**
   * Armed: a `Deadline` among every connection's of this `replyTimeout`
   * (`stallDeadlines`), or a timer for the rest of a window (`stallRearmed`).
   */
  private stallTimer: Deadline | ReturnType<typeof setTimeout> | undefined;
  private stallRearmed = false;
  private lastProgress = 0;

  constructor(runtime: Runtime, config: ConnectConfig, bytesEqual?: BytesEqual, afterIO?: AfterIO) {
    this.runtime = runtime;
    this.config = config;
    this.ledger = new EchoLedger(bytesEqual);
    this.afterIO = afterIO;
    this.closed = new Promise(captureClosed);
    this.resolveClosed = closedResolve as () => void;
    this.rejectClosed = closedReject as (error: EchoError) => void;
    closedResolve = undefined;
    closedReject = undefined;
    // `closed` may reject with nobody listening; that must never crash the process
    // (Deno and Node end the process on an unobserved rejection).
    this.closed.catch(ignore);
  }

  attach({ info, io }: Dialed): void {
    this.info = info;
    this.io = io;
    if (this.failure || this.finished) io.destroy();
    const { signal } = this.config;
    if (signal) {
      this.onAbort = () => this.fail(echoError("EABORTED", this.context("close")));
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  /** The caller's signal's listener, made only when there is a signal. */
  private onAbort: (() => void) | undefined;

  get localAddress(): Address {
    return (this.info as SocketInfo<Address>).localAddress;
  }

  get remoteAddress(): Address {
    return (this.info as SocketInfo<Address>).remoteAddress;
  }

  get opened(): Promise<SocketInfo<Address>> {
    return Promise.resolve(this.info as SocketInfo<Address>);
  }

  // --- sending ---

  echo(payload: Uint8Array | string, options?: EchoOptions): Promise<Uint8Array> {
    let bytes: Uint8Array;
    let timeout = 0;
    let signal: AbortSignal | undefined;
    try {
      bytes = toBytes(payload);
      if (options !== undefined) ({ timeout, signal } = resolveEchoOptions(options));
      this.assertWritable("echo");
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted) return Promise.reject(echoError("EABORTED", this.context("echo")));
    if (bytes.byteLength === 0) return Promise.resolve(bytes);
    if (timeout === 0 && !signal) {
      // The common case allocates nothing beyond the promise and its segment (the
      // executor is made once, see `expectEcho`): pipelined small echoes are GC-bound otherwise.
      echoing = this.ledger;
      echoingBytes = bytes;
      const echoed = new Promise<Uint8Array>(expectEcho);
      echoing = undefined;
      echoingBytes = undefined;
      this.send(bytes);
      return echoed;
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => this.fail(echoError("EABORTED", this.context("echo")));
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const segment = this.ledger.expect(
        bytes,
        (echoed) => {
          settle();
          resolve(echoed);
        },
        (error) => {
          settle();
          reject(error);
        },
      );
      if (timeout > 0) {
        timer = setTimeout(() => {
          const error = new EchoError(
            "ETIMEDOUT",
            `echo ETIMEDOUT ${this.where()}: ${segment.received} of ${bytes.byteLength} bytes came back within ${timeout} ms`,
            this.context("echo"),
          );
          this.fail(error);
        }, timeout);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.send(bytes);
    });
  }

  write(data: Uint8Array | string): Promise<void> {
    try {
      const bytes = toBytes(data, "data");
      this.assertWritable("write");
      if (bytes.byteLength > 0) {
        this.ledger.expectStream(bytes.byteLength);
        this.send(bytes);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.pending <= this.config.highWaterMark) return WRITTEN;
    return new Promise((resolve, reject) => this.writeWaiters.push({ resolve, reject }));
  }

  closeWrite(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.writeClosing) {
      this.writeClosing = true;
      this.watch();
      if (this.pending === 0) this.finishWrite();
    }
    return Promise.resolve();
  }

  /**
   * Small writes made in one tick go to the socket as one chunk: pipelined
   * `echo()` calls of 64 B each cost a write syscall apiece otherwise, which was
   * most of a client's time in the benchmarks. Large ones go straight through.
   *
   * The batch waits while it grows: `for (...) await conn.write(small)` resumes
   * its caller one microtask after each write, after a flush queued by that
   * write has already run, so a flush on the first microtask sent each write
   * alone (57-86k chunks/s, a syscall apiece, in `load --mode stream --size 64`).
   * It is sent at 16 KiB, or by one `afterIO` task once the callbacks and timers
   * already due have run (their writes included), or, on a runtime without `afterIO`,
   * by `flushTurn` once `IDLE_TURNS` microtask turns in a row found nothing
   * new, still before any I/O runs. The microtask turns cost one per awaited
   * write: on Node, one `setImmediate` per batch instead sent 1.25x the echoes
   * a second in 50x16 (`RuntimeTable.afterIO`, where each runtime's figures are).
   */
  private send(bytes: Uint8Array): void {
    this.pending += bytes.byteLength;
    this.watch();
    if (bytes.byteLength >= COALESCE_BYTES) {
      this.flushBatch();
      this.ledger.sent(bytes);
      (this.io as SocketIO).write(bytes);
      return;
    }
    this.batch[this.batchCount++] = bytes;
    this.batchBytes += bytes.byteLength;
    if (this.batchBytes >= COALESCE_BYTES) this.flushBatch();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      this.batchSeen = -1;
      // Made at the first batch, not in a class field: a connection that never
      // batches makes none, and under tsx a field's closure is named at each construction.
      this.flusher ??= () => this.flushTurn();
      const afterIO = this.afterIO;
      if (afterIO) afterIO(this.flusher);
      else queueMicrotask(this.flusher);
    }
  }

  /** `flushTurn`, for `afterIO` or `queueMicrotask`. */
  private flusher: (() => void) | undefined;

  /**
   * Sends the batch from `afterIO`; from a microtask turn, waits another turn
   * while it grows or has not been still for `IDLE_TURNS`, else sends it.
   */
  private flushTurn(): void {
    if (this.afterIO) {
      this.flushQueued = false;
      this.flushBatch();
      return;
    }
    if (this.batchCount > this.batchSeen) {
      this.batchSeen = this.batchCount;
      this.idleTurns = 0;
    } else if (++this.idleTurns >= IDLE_TURNS) {
      this.flushQueued = false;
      this.flushBatch();
      return;
    }
    queueMicrotask(this.flusher as () => void);
  }

  private flushBatch(): void {
    if (this.batchCount === 0) return;
    // Copied even when it is one piece: `read()` hands out views of what was
    // written (EchoLedger.advance), and a copy of ours is one no caller can change.
    const chunk = gather(this.batch, this.batchCount, this.batchBytes);
    this.batchCount = 0;
    this.batchBytes = 0;
    this.batchSeen = 0;
    if (this.failure) return;
    this.ledger.sent(chunk);
    this.io?.write(chunk);
  }

  private finishWrite(): void {
    if (this.writeClosed || this.failure) return;
    this.writeClosed = true;
    if (this.serverEnded) this.finish();
    else this.io?.closeWrite();
  }

  private assertWritable(operation: "echo" | "write"): void {
    if (this.failure) throw this.failure;
    if (this.finished || this.writeClosing) {
      throw echoError("ECLOSED", this.context(operation), undefined);
    }
  }

  // --- receiving ---

  read(): Promise<Uint8Array | null> {
    const chunk = this.rawChunks.shift();
    if (chunk) {
      this.rawBytes -= chunk.byteLength;
      if (this.stallTimer !== undefined) this.lastProgress = performance.now();
      if (this.readPaused && this.rawBytes <= this.config.highWaterMark >> 1) {
        this.readPaused = false;
        this.io?.resume();
      }
      return Promise.resolve(chunk);
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.serverEnded || this.finished || this.closing) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.readWaiters.push({ resolve, reject }));
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.webStreams().readable;
  }

  get writable(): WritableStream<Uint8Array> {
    return this.webStreams().writable;
  }

  private webStreams() {
    this.streams ??= {
      readable: new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          const chunk = await this.read();
          if (chunk) controller.enqueue(chunk);
          else controller.close();
        },
        cancel: () => this.close(),
      }),
      writable: new WritableStream<Uint8Array>({
        write: (chunk) => this.write(chunk),
        close: () => this.closeWrite(),
        abort: () => this.close(),
      }),
    };
    return this.streams;
  }

  // --- SocketEvents, from the adapter ---

  onData(chunk: Uint8Array): void {
    if (this.failure || this.finished) return;
    if (this.stallTimer !== undefined) this.lastProgress = performance.now();
    if (this.closing) {
      this.owed -= chunk.byteLength;
      this.releaseIfDrained();
      return;
    }
    const raw = this.received;
    try {
      this.ledger.receive(chunk, raw);
    } catch (error) {
      raw.length = 0;
      this.fail(error as EchoError);
      return;
    }
    // Only `write()` data makes pieces: a chunk of echoes skips the list (setting
    // an array's length goes through its accessor, a runtime call in V8).
    if (raw.length > 0) {
      for (const piece of raw) {
        const waiter = this.readWaiters.shift();
        if (waiter) waiter.resolve(piece);
        else {
          this.rawChunks.push(piece);
          this.rawBytes += piece.byteLength;
        }
      }
      raw.length = 0;
    }
    if (!this.readPaused && this.rawBytes > this.config.highWaterMark) {
      this.readPaused = true;
      this.io?.pause();
    }
  }

  onFlushed(bytes: number): void {
    this.pending -= bytes;
    if (this.pending <= this.config.highWaterMark && this.writeWaiters.length > 0) {
      for (const waiter of this.writeWaiters.splice(0)) waiter.resolve();
    }
    if (this.writeClosing && this.pending === 0) this.finishWrite();
    this.releaseIfDrained();
  }

  // --- replyTimeout ---

  /** Arms the stall timer when the connection starts waiting on the server. */
  private watch(): void {
    if (this.config.replyTimeout === 0 || this.stallTimer !== undefined || this.failure || this.finished) return;
    this.lastProgress = performance.now();
    this.stallTimer = ClientConnection.stallDeadlines(this.config.replyTimeout).add(this);
  }

  /** The stall timeouts of each length: one timer for all of them (see `Deadlines`). */
  private static readonly stallTimeouts = new Map<number, Deadlines<ClientConnection>>();

  private static stallDeadlines(ms: number): Deadlines<ClientConnection> {
    let deadlines = ClientConnection.stallTimeouts.get(ms);
    if (deadlines === undefined) {
      deadlines = new Deadlines(ms, ClientConnection.stalled);
      ClientConnection.stallTimeouts.set(ms, deadlines);
    }
    return deadlines;
  }

  /**
   * The timers' callbacks are shared and take the connection as their argument:
   * a closure per connection for each was made (and, under tsx, named by
   * `Object.defineProperty`) even by the connections that never arm them.
   */
  private static stalled(connection: ClientConnection): void {
    connection.checkStall();
  }

  private static drainExpired(connection: ClientConnection): void {
    connection.drainExpired();
  }

  /**
   * One timer per stall rather than one reset per chunk: progress only records
   * the time, and the timer re-arms itself for what is left of the window.
   */
  private checkStall(): void {
    this.stallTimer = undefined;
    this.stallRearmed = false;
    if (this.failure || this.finished) return;
    const awaitingEcho = !this.ledger.isEmpty;
    if (!awaitingEcho && !(this.writeClosing && !this.serverEnded)) return;
    const now = performance.now();
    // Echoed bytes the reader has not taken: the wait is on the reader, not the server.
    if (this.rawChunks.length > 0) this.lastProgress = now;
    const timeout = this.config.replyTimeout;
    const idle = now - this.lastProgress;
    if (idle < timeout) {
      // The rest of the window is shorter than the others': a timer of its own.
      this.stallTimer = setTimeout(ClientConnection.stalled, timeout - idle, this);
      this.stallRearmed = true;
      return;
    }
    const sent = this.ledger.matched + this.ledger.outstanding;
    const what = awaitingEcho
      ? `${this.ledger.outstanding} of the ${sent} bytes sent have not come back, and nothing arrived for ${timeout} ms`
      : `all ${sent} bytes came back, but the server did not close its side for ${timeout} ms after this client's half-close`;
    this.fail(
      new EchoError(
        "ETIMEDOUT",
        `read ETIMEDOUT ${this.where()}: ${what}; check that the server is an echo server (RFC 862 closes after the client does) and not stalled`,
        this.context("read"),
      ),
    );
  }

  private stopWatch(): void {
    const timer = this.stallTimer;
    if (timer === undefined) return;
    this.stallTimer = undefined;
    if (this.stallRearmed) clearTimeout(timer as ReturnType<typeof setTimeout>);
    else (timer as Deadline).cancel();
    this.stallRearmed = false;
  }

  onEnd(): void {
    if (this.failure || this.finished) return;
    this.serverEnded = true;
    if (this.closing) {
      this.releaseIfDrained();
      return;
    }
    if (!this.ledger.isEmpty) {
      const expected = this.ledger.matched + this.ledger.outstanding;
      // An echo server closes its side only after ours. An EOF while we are still
      // sending means the connection was torn down: Linux often reports a reset
      // that arrives behind unread echo as EOF, not ECONNRESET (packages/faults,
      // reset cells, seen on Node and Bun clients).
      if (!this.writeClosing) {
        const error = echoError("ECONNRESET", this.context("read"));
        error.message = `read ECONNRESET ${this.where()}: the server closed the connection after echoing ${this.ledger.matched} of ${expected} bytes, before this client half-closed`;
        this.fail(error);
        return;
      }
      const error = echoError("EPROTO", this.context("echo"));
      error.message = `short echo from ${this.where()}: the server closed its side after echoing ${this.ledger.matched} of ${expected} bytes${this.ledger.matched === 0 && this.config.transport === "tcp" && !this.config.tls ? "; a TLS server closes so on plain text: if it speaks TLS, connect with TLS (CLI: --tls-ca FILE; API: tls)" : ""}`;
      this.fail(error);
      return;
    }
    this.endReads();
    // An echo server only closes once we have half-closed (or it is shutting down):
    // either way nothing more will come back, so the connection is done.
    this.finish();
  }

  onError(error: unknown): void {
    if (isTlsTruncation(error)) {
      this.onEnd();
      return;
    }
    this.fail(toEchoError(error, this.context("read")));
  }

  onClose(): void {
    if (this.failure) return;
    // Gone before both sides were done, or before close() had delivered everything.
    if (!this.ledger.isEmpty || !this.finished) {
      this.fail(echoError(this.ledger.isEmpty ? "ECLOSED" : "ECONNRESET", this.context("read")));
      return;
    }
    this.settle();
  }

  // --- closing ---

  close(): Promise<void> {
    if (!this.failure && !this.finished && !this.closing) this.beginClose();
    return this.closed.then(
      () => {},
      () => {},
    );
  }

  /**
   * Graceful and bounded (see `close()` in types.ts), decided here once for every
   * runtime; the adapters only flush, half-close, release or destroy when told.
   */
  private beginClose(): void {
    this.closing = true;
    this.writeClosing = true;
    this.owed = this.ledger.outstanding;
    const closed = echoError("ECLOSED", this.context("close"));
    for (const segment of this.ledger.drain()) segment.fail?.(closed);
    for (const waiter of this.readWaiters.splice(0)) waiter.resolve(null);
    this.rawChunks.length = 0;
    this.rawBytes = 0;
    // The echo must keep flowing: a server whose replies are not read stops
    // reading, and what is still queued here could never go out.
    if (this.readPaused) {
      this.readPaused = false;
      this.io?.resume();
    }
    this.flushBatch();
    if (this.config.drainTimeout === 0) {
      this.finished = true;
      for (const waiter of this.writeWaiters.splice(0)) waiter.reject(closed);
      this.io?.destroy();
      return;
    }
    this.drainTimer = setTimeout(ClientConnection.drainExpired, this.config.drainTimeout, this);
    if (this.pending === 0) this.finishWrite();
    this.releaseIfDrained();
  }

  /**
   * While closing: release once everything is flushed and the server has echoed
   * it all or ended. Before that, releasing with its echo still arriving makes
   * the kernel answer with RST and discard what it has not sent.
   */
  private releaseIfDrained(): void {
    if (this.closing && this.pending === 0 && (this.owed <= 0 || this.serverEnded)) this.finish();
  }

  private drainExpired(): void {
    const ms = this.config.drainTimeout;
    const what =
      this.pending > 0
        ? `${this.pending} bytes written before close() were still unsent after ${ms} ms (drainTimeout)`
        : `the server had neither echoed the last ${this.owed} bytes nor closed after ${ms} ms (drainTimeout)`;
    this.fail(
      new EchoError(
        "ETIMEDOUT",
        `close ETIMEDOUT ${this.where()}: ${what}; the connection was closed without them`,
        this.context("close"),
      ),
    );
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Both sides are done: release the socket. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.stopWatch();
    clearTimeout(this.drainTimer);
    this.io?.close();
  }

  private fail(error: EchoError): void {
    if (this.failure) return;
    this.failure = error;
    this.stopWatch();
    clearTimeout(this.drainTimer);
    this.rejectPending(error);
    this.io?.destroy();
    if (this.onAbort) this.config.signal?.removeEventListener("abort", this.onAbort);
    this.rejectClosed(error);
  }

  private settle(): void {
    this.stopWatch();
    if (this.onAbort) this.config.signal?.removeEventListener("abort", this.onAbort);
    this.finished = true;
    this.endReads();
    this.resolveClosed();
  }

  /** `read()`s still waiting get `null`; the check first spares an array per connection (`splice`). */
  private endReads(): void {
    if (this.readWaiters.length === 0) return;
    for (const waiter of this.readWaiters.splice(0)) waiter.resolve(null);
  }

  private rejectPending(error: EchoError): void {
    for (const segment of this.ledger.drain()) segment.fail?.(error);
    for (const waiter of this.writeWaiters.splice(0)) waiter.reject(error);
    for (const waiter of this.readWaiters.splice(0)) waiter.reject(error);
  }

  private where(): string {
    return formatEndpoint(this.config);
  }

  private context(operation: "echo" | "read" | "write" | "close") {
    return { operation, ...contextOf(this.config) };
  }
}
