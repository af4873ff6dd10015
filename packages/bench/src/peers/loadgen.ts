/**
 * The C load generator (`native/loadgen.c`) in TypeScript, all but the
 * sockets, for the hand-written clients (`node-onread-load.ts`,
 * `bun-native-load.ts`, `deno-native-load.ts`): the same flags, the same bytes
 * (splitmix64 into a prime-length table, each connection starting at its own
 * offset, its bytes one contiguous run of the table), every echoed byte
 * checked against them, the same bookkeeping per mode, and the same JSON line,
 * so the bench reads them as it reads the C one. Only APIs all three runtimes
 * have (`node:buffer`, `process`, `performance`).
 *
 * Modes (the timed ones of loadgen.c):
 *   pipelined  `conns` connections, each keeping `depth` messages of `size` bytes in flight
 *   bulk       `conns` connections writing `size`-byte chunks as fast as the kernel takes them
 *   churn      `conns` at a time: connect, echo `size` bytes, half-close, read to EOF, close
 *
 * `--promises 1` (pipelined; not in loadgen.c): each in-flight message is
 * awaited by a lane of its own, the floor of an `await echo()` client API on
 * the runtime (see `LoadRun.lane`).
 */

import { Buffer } from "node:buffer";

export type Mode = "pipelined" | "bulk" | "churn";

export interface Options {
  readonly host: string;
  readonly port: number;
  readonly mode: Mode;
  readonly conns: number;
  readonly size: number;
  readonly depth: number;
  readonly duration: number;
  readonly warmup: number;
  readonly seed: number;
  /** Pipelined: each in-flight message is awaited by a lane of its own, as an app's `await echo()` is (`--promises 1`). */
  readonly promises: boolean;
}

const USAGE =
  "usage: <client> --port P [--host 127.0.0.1] [--mode pipelined|bulk|churn] [--conns C] [--size S] [--depth D] [--duration SEC] [--warmup SEC] [--seed N] [--promises 0|1]";

export function parseOptions(args: readonly string[]): Options {
  const given: Record<string, string> = {};
  for (let i = 0; i + 1 < args.length; i += 2) given[(args[i] as string).replace(/^--/, "")] = args[i + 1] as string;
  const number = (name: string, fallback: number) => {
    const value = given[name] === undefined ? fallback : Number(given[name]);
    if (!Number.isFinite(value)) throw new Error(`--${name}: expected a number, got ${given[name]}\n${USAGE}`);
    return value;
  };
  const mode = (given.mode ?? "pipelined") as Mode;
  const options: Options = {
    host: given.host ?? "127.0.0.1",
    port: number("port", 0),
    mode,
    conns: number("conns", 1),
    size: number("size", 64),
    depth: number("depth", 1),
    duration: number("duration", 3),
    warmup: number("warmup", 1),
    seed: number("seed", 1),
    promises: number("promises", 0) === 1,
  };
  if (
    !["pipelined", "bulk", "churn"].includes(mode) ||
    options.port <= 0 ||
    options.port > 65535 ||
    options.conns < 1 ||
    options.size < 1 ||
    options.size > MAX_CHUNK ||
    options.depth < 1 ||
    options.duration <= 0 ||
    options.warmup < 0
  )
    throw new Error(USAGE);
  return options;
}

// --- pattern ---------------------------------------------------------------

/** A prime-length table, so no power-of-two slip can line up (loadgen.c's PATTERN_LENGTH). */
export const PATTERN_LENGTH = 1048573;
/** The most one write takes, and the table's tail that repeats its head, so any run up to this is contiguous. */
export const MAX_CHUNK = 256 * 1024;

const MASK = (1n << 64n) - 1n;

/** loadgen.c's splitmix(): advances `state[0]`, returns the next 64-bit value. */
function splitmix(state: bigint[]): bigint {
  state[0] = ((state[0] as bigint) + 0x9e3779b97f4a7c15n) & MASK;
  let z = state[0];
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

/** The table loadgen.c sends from: splitmix64 values, little-endian, then the head repeated as the tail. */
export function makePattern(seed: number): Buffer {
  const pattern = Buffer.alloc(PATTERN_LENGTH + MAX_CHUNK + 8);
  const state = [BigInt(seed)];
  for (let i = 0; i < PATTERN_LENGTH; i += 8) pattern.writeBigUInt64LE(splitmix(state), i);
  pattern.copy(pattern, PATTERN_LENGTH, 0, MAX_CHUNK);
  return pattern.subarray(0, PATTERN_LENGTH + MAX_CHUNK);
}

/** Where connection number `serial` starts in the table (loadgen.c's stream_start()). */
export function streamStart(seed: number, serial: number): number {
  const state = [(BigInt(seed) ^ ((BigInt(serial) * 0x2545f4914f6cdd1dn) & MASK)) & MASK];
  return Number(splitmix(state) % BigInt(PATTERN_LENGTH));
}

// --- connections -------------------------------------------------------------

/** One connection's bookkeeping, loadgen.c's `connection`. */
export class Connection {
  /** Bytes written (taken by the kernel, or by the runtime's own write buffer on Node). */
  sent = 0;
  received = 0;
  /** Bytes this connection may have sent so far. */
  allowed: number;
  completed = 0;
  /** Churn: the half-close was sent. */
  halfClosed = false;
  /** The runtime file's write of what is allowed, made once per connection where it needs one. */
  flush: (() => void) | undefined = undefined;
  /** Churn: the server's EOF was seen. */
  eof = false;
  /** `--promises 1`: the lane awaiting each in-flight message's echo, by index % depth (see `LoadRun.lane`). */
  readonly lanes: Array<(() => void) | undefined> = [];
  /** Send time of each in-flight message (ms), by index % depth; pipelined only. */
  readonly stamps: Float64Array;
  readonly openedAt = performance.now();
  private readonly run: LoadRun;
  /** Where this connection starts in the table. */
  readonly stream: number;

  constructor(run: LoadRun, stream: number) {
    this.run = run;
    this.stream = stream;
    const { mode, size, depth } = run.options;
    this.allowed = mode === "bulk" ? Number.POSITIVE_INFINITY : mode === "churn" ? size : size * depth;
    this.stamps = new Float64Array(mode === "pipelined" ? depth : 0).fill(this.openedAt);
  }

  /**
   * What to write next, as a view of the table (never copied, never changed,
   * so a runtime may hold on to it until written): everything allowed and not
   * yet sent, at most one `size` chunk in bulk (the chunk `load` writes) and
   * MAX_CHUNK otherwise; undefined when nothing is.
   */
  pending(): Uint8Array | undefined {
    const want = this.allowed - this.sent;
    if (want <= 0) return undefined;
    const { run } = this;
    const length = Math.min(want, run.options.mode === "bulk" ? run.options.size : MAX_CHUNK);
    const at = (this.stream + this.sent) % PATTERN_LENGTH;
    return run.pattern.subarray(at, at + length);
  }
}

// --- the run -----------------------------------------------------------------

/** RTT histogram: 100 ns buckets up to 100 ms, the slower in the last one (loadgen.c's). */
const BUCKET_NS = 100;
const BUCKETS = 1_000_000;

export class LoadRun {
  readonly options: Options;
  readonly pattern: Buffer;
  measuring = false;
  stopped = false;
  messages = 0;
  bytes = 0;
  errors = 0;
  wrongBytes = 0;
  firstError = "";
  /** Connections opened so far, for their offset in the table. */
  private serial = 0;
  private readonly histogram = new Uint32Array(BUCKETS);
  private rttCount = 0;
  private rttMaxNs = 0;
  private readonly started = performance.now();
  private measureStart = this.started;

  constructor(args: readonly string[]) {
    this.options = parseOptions(args);
    this.pattern = makePattern(this.options.seed);
  }

  /** The next connection's bookkeeping. */
  connection(): Connection {
    const c = new Connection(this, streamStart(this.options.seed, this.serial++));
    if (this.options.promises && this.options.mode === "pipelined") {
      for (let slot = 0; slot < this.options.depth; slot++) void this.lane(c, slot);
    }
    return c;
  }

  /**
   * `--promises 1`: the floor of a promise-based client API on this runtime.
   * One message's slot, as `for (;;) await conn.echo(message)` is: a promise
   * per message, resolved from the read callback and awaited here, and the
   * next message allowed only once its lane has resumed. The runtime's file
   * writes what the lanes allowed after them (`afterLanes`).
   */
  private async lane(c: Connection, slot: number): Promise<void> {
    const { size } = this.options;
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        c.lanes[slot] = resolve;
      });
      c.allowed += size;
    }
  }

  /** Runs `write` now, or with `--promises 1` once the lanes this read woke have run (they run first: microtasks are FIFO). */
  afterLanes(write: () => void): void {
    if (this.options.promises) queueMicrotask(write);
    else write();
  }

  /** Churn opens a new connection in a closed one's place, unless the run is over or has failed 1,000 times. */
  get reopening(): boolean {
    return !this.stopped && this.errors < 1000;
  }

  noteError(what: string, error?: unknown): void {
    this.errors++;
    if (!this.firstError) {
      const text = error instanceof Error ? error.message : error === undefined ? "unexpected" : String(error);
      this.firstError = `${what}: ${text}`;
    }
  }

  /**
   * Checks the `count` bytes at the start of `data` against what `c` sent
   * (a byte beyond what was sent is wrong), then counts them; in pipelined
   * mode each whole message echoed lets the next one go (`allowed`) and
   * records its RTT. False on any wrong byte: the caller closes the connection.
   */
  echoed(c: Connection, data: Uint8Array, count: number): boolean {
    let n = count;
    const extra = Math.max(0, c.received + n - c.sent);
    n -= extra;
    let wrong = extra;
    for (let done = 0; done < n; ) {
      const at = (c.stream + c.received + done) % PATTERN_LENGTH;
      const piece = Math.min(n - done, PATTERN_LENGTH + MAX_CHUNK - at);
      const got = data.subarray(done, done + piece);
      const want = this.pattern.subarray(at, at + piece);
      if (Buffer.compare(got, want) !== 0) for (let i = 0; i < piece; i++) wrong += got[i] === want[i] ? 0 : 1;
      done += piece;
    }
    if (wrong) {
      this.wrongBytes += wrong;
      this.firstError ||= extra
        ? `echo has ${wrong} bytes more than was sent`
        : `echo differs from what was sent (${wrong} bytes)`;
      return false;
    }
    c.received += n;
    const { mode, size, depth } = this.options;
    if (mode === "churn") return true;
    if (this.measuring) this.bytes += n;
    const now = mode === "pipelined" ? performance.now() : 0;
    while (c.received >= (c.completed + 1) * size) {
      if (mode === "pipelined") {
        const slot = c.completed % depth;
        if (this.measuring) this.record(now - (c.stamps[slot] as number));
        c.stamps[slot] = now;
        const lane = c.lanes[slot];
        if (lane === undefined) c.allowed += size;
        else {
          c.lanes[slot] = undefined;
          lane();
        }
      }
      c.completed++;
      if (this.measuring) this.messages++;
    }
    return true;
  }

  /** Churn: the server's EOF on `c`; a whole connection when every byte came back after the half-close. */
  ended(c: Connection): void {
    if (c.eof) return;
    c.eof = true;
    const { size } = this.options;
    if (c.received !== size || !c.halfClosed) {
      this.noteError("read", `EOF after ${c.received} of ${size} echoed bytes`);
      return;
    }
    if (!this.measuring) return;
    this.record(performance.now() - c.openedAt);
    this.messages++;
    this.bytes += size;
  }

  /** A pipelined or bulk connection saw EOF: the server closed it mid-stream. */
  closedMidStream(): void {
    this.noteError("read", "the server closed a connection mid-stream");
  }

  private record(ms: number): void {
    const ns = ms * 1e6;
    const bucket = Math.floor(ns / BUCKET_NS);
    const index = bucket < BUCKETS ? bucket : BUCKETS - 1;
    this.histogram[index] = (this.histogram[index] as number) + 1;
    if (ns > this.rttMaxNs) this.rttMaxNs = ns;
    this.rttCount++;
  }

  /**
   * Warm-up, then the measured seconds; then prints the JSON line and exits
   * (0 when every byte matched and no connection failed, 1 otherwise), the
   * sockets closed with the process, as loadgen.c closes them.
   */
  time(): void {
    const { warmup, duration } = this.options;
    const measure = () => {
      this.measuring = true;
      this.measureStart = performance.now();
      this.messages = this.bytes = this.rttCount = this.rttMaxNs = 0;
      this.histogram.fill(0);
    };
    if (warmup > 0) setTimeout(measure, warmup * 1000);
    else measure();
    setTimeout(() => this.finish(), (warmup + duration) * 1000);
  }

  private finish(): void {
    this.stopped = true;
    const seconds = (performance.now() - this.measureStart) / 1000;
    this.measuring = false;
    let p50 = 0;
    let p99 = 0;
    let seen = 0;
    const half = Math.floor((this.rttCount + 1) / 2);
    const ninetyNine = Math.floor((this.rttCount * 99 + 99) / 100);
    for (let i = 0; i < BUCKETS && this.rttCount && seen < ninetyNine; i++) {
      const before = seen;
      seen += this.histogram[i] as number;
      const us = ((i + 1) * BUCKET_NS) / 1000;
      if (before < half && seen >= half) p50 = us;
      if (before < ninetyNine && seen >= ninetyNine) p99 = us;
    }
    const { mode, conns, size, depth } = this.options;
    const line = {
      mode,
      conns,
      size,
      depth,
      seconds,
      msgs_per_s: this.messages / seconds,
      mb_per_s: this.bytes / seconds / 1e6,
      msgs: this.messages,
      bytes: this.bytes,
      rtt_us: { count: this.rttCount, p50, p99, max: this.rttMaxNs / 1000 },
      errors: this.errors,
      wrong_bytes: this.wrongBytes,
      ...(this.firstError ? { first_error: this.firstError } : {}),
    };
    console.log(JSON.stringify(line));
    process.exit(this.wrongBytes || this.errors ? 1 : 0);
  }
}
