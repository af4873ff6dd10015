/**
 * The `load` command's engine: many connections of our own client against any
 * echo server, every echoed byte checked (by the connection's ledger, which
 * names the first wrong byte), for a bounded time. The CLI (`_cli.ts`) parses
 * and validates the flags, then hands this a `LoadPlan`.
 *
 * Modes:
 * - pingpong: one `echo()` at a time on each connection;
 * - pipeline: `inFlight` `echo()` calls in flight on each connection;
 * - stream:   the `write()`/`read()` API, `inFlight` chunks of `size` bytes
 *             written ahead of their echo on each connection;
 * - churn:    `connections` at a time: connect, echo `size` bytes, half-close,
 *             read to EOF, close; a message is one whole connection.
 */

import { errorCodeOf } from "./_errors.ts";
import type { Address, EchoConnection } from "./types.ts";

export type LoadMode = "pingpong" | "pipeline" | "stream" | "churn";
export const LOAD_MODES: readonly LoadMode[] = ["pingpong", "pipeline", "stream", "churn"];

export interface LoadPlan {
  readonly mode: LoadMode;
  readonly connections: number;
  /** Echoes (pipeline) or chunks (stream) in flight on each connection; 1 for pingpong and churn. */
  readonly inFlight: number;
  readonly size: number;
  /** Measured seconds. */
  readonly duration: number;
  /** Unmeasured seconds before them (the runtime's JIT warms up). */
  readonly warmup: number;
  /** Messages (churn: connections) started per second across all connections; 0 for no limit. */
  readonly rate: number;
  /** Where, for the summary: `127.0.0.1:7`. */
  readonly where: string;
}

export interface LoadHost {
  readonly runtime: string;
  connect(): Promise<EchoConnection<Address>>;
  /** One progress line a second (the CLI rewrites it in place on a terminal). */
  progress(text: string): void;
  onSignal(handler: (signal: string) => void): () => void;
}

export interface LoadReport {
  readonly mode: LoadMode;
  readonly where: string;
  readonly runtime: string;
  readonly connections: number;
  readonly inFlight: number;
  readonly size: number;
  /** Measured seconds (shorter than asked when interrupted). */
  readonly seconds: number;
  readonly messages: number;
  readonly messagesPerSecond: number;
  /** Echoed and verified bytes, one direction. */
  readonly bytes: number;
  readonly megabytesPerSecond: number;
  /** Per message (churn: per connection); `null` in stream mode. */
  readonly latencyMs: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly p999: number;
    readonly max: number;
  } | null;
  readonly connectionsOpened: number;
  readonly connectionsFailed: number;
  /** Failed connections by error code. */
  readonly errors: Readonly<Record<string, number>>;
  /** The first error's message: for a wrong byte, which byte, what was sent and what came back. */
  readonly firstError?: string;
  readonly interrupted: boolean;
}

/** Seconds between progress lines. */
const PROGRESS_SECONDS = 1;
/** Distinct messages, each at its own offset in the pattern (1,031: prime, so no in-flight depth lines up with it). */
const PAYLOADS = 1031;
/** Chunks between two stream lanes' starts in the pattern (prime, so lanes start at distinct chunks until there are more lanes than chunks). */
const LANE_STRIDE = 4099;
/** Stream chunk views made once, at most (the pattern's chunks of 16 B and more); smaller chunks are made as they are sent. */
const CHUNK_VIEWS = 65536;

/**
 * Latency histogram, log-linear over microseconds (HdrHistogram's layout, made
 * small): 1 us steps below 1,024 us, then 512 steps per power of two, so a
 * percentile is within 0.2% of the value; up to 2^31 us. Recording allocates nothing.
 */
export class LatencyHistogram {
  private readonly counts = new Float64Array(1024 + 21 * 512);
  count = 0;
  max = 0;

  record(ms: number): void {
    const us = Math.min(2 ** 31 - 1, Math.max(0, Math.round(ms * 1000)));
    const index = LatencyHistogram.index(us);
    this.counts[index] = (this.counts[index] as number) + 1;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  static index(us: number): number {
    if (us < 1024) return us;
    const exponent = 31 - Math.clz32(us);
    const shift = exponent - 9;
    return 1024 + (exponent - 10) * 512 + ((us >>> shift) - 512);
  }

  /** The upper edge of bucket `index`, in us. */
  static upper(index: number): number {
    if (index < 1024) return index;
    const exponent = 10 + Math.floor((index - 1024) / 512);
    const shift = exponent - 9;
    return (((index - 1024) % 512) + 512 + 1) * 2 ** shift - 1;
  }

  /** Nearest-rank percentile in ms (never above the exact maximum); `NaN` when empty. */
  percentile(fraction: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(fraction * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(this.max, LatencyHistogram.upper(i) / 1000);
    }
    return this.max;
  }
}

/**
 * The bytes sent: a pseudo-random table (xorshift32) longer than one message,
 * so consecutive messages differ and a slipped or repeated byte shows.
 */
function makePattern(size: number): Uint8Array {
  const pattern = new Uint8Array(Math.max(1 << 20, 2 * size) + 7);
  let state = 0x9e3779b9;
  for (let i = 0; i < pattern.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    pattern[i] = state & 0xff;
  }
  return pattern;
}

/**
 * `performance.now()`, read once for the echoes that complete together: a
 * connection's `inFlight` echoes resolve in one read callback and their lanes
 * resume in the same microtask checkpoint, so one reading serves them all, as
 * the hand-written clients read the clock once per chunk. The reading is
 * dropped when that checkpoint's microtasks are done (`queueMicrotask` runs
 * behind the resumptions already queued), and after `uses` readings anyway:
 * on Deno a socket read is an op whose completion resolves a promise, several
 * connections' completions are resolved in one event-loop tick, and an op
 * that completes at once (Deno polls some eagerly) resumes its reader in the
 * same checkpoint, so one checkpoint may span many chunks; the bound keeps a
 * reading at most one connection's window old there too. Either way a lane's
 * end is the next echo's begin, so what is misattributed between two echoes
 * of a lane is the JS time of at most one such window (microseconds), never lost.
 *
 * On Node the global `performance` is a getter (lib/internal/util.js
 * `defineReplaceableLazyAttribute`) run at every read of it: it is read once here.
 */
export function batchClock(uses: number): () => number {
  const timer = performance;
  if (uses <= 1) return () => timer.now();
  let reading = 0;
  let left = 0;
  const expire = () => {
    left = 0;
  };
  return () => {
    if (left === 0) {
      reading = timer.now();
      left = uses;
      queueMicrotask(expire);
    }
    left--;
    return reading;
  };
}

/**
 * `12,345`: what `toLocaleString("en-US")` prints for an integer, without it:
 * its first call loads the locale's data, about 10 ms of CPU on Node and Deno,
 * and the progress line is printed in every run (with `--json` too).
 */
export function thousands(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const digits = String(Math.abs(value));
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let at = out.length; at < digits.length; at += 3) out += `,${digits.slice(at, at + 3)}`;
  return value < 0 ? `-${out}` : out;
}

export async function runLoad(host: LoadHost, plan: LoadPlan): Promise<LoadReport> {
  const pattern = makePattern(plan.size);
  const span = pattern.length - plan.size;
  const histogram = new LatencyHistogram();
  const errors: Record<string, number> = {};
  let firstError: string | undefined;
  let opened = 0;
  let failed = 0;
  let messages = 0;
  let bytes = 0;
  let measuring = plan.warmup === 0;
  let stopping = false;
  let interrupted = false;
  let issued = 0;
  let measureStart = performance.now();
  let measureEnd = 0;
  const loadStart = measureStart;
  const timers: ReturnType<typeof setTimeout>[] = [];

  /** Stream lanes waiting for room in their window: `stop` wakes them. */
  const waitingForRoom = new Set<() => void>();
  const stop = () => {
    if (stopping) return;
    stopping = true;
    measureEnd = performance.now();
    for (const resume of waitingForRoom) resume();
  };
  const stopSignals = host.onSignal(() => {
    interrupted = true;
    stop();
  });
  if (plan.warmup > 0)
    timers.push(
      setTimeout(() => {
        measuring = true;
        measureStart = performance.now();
        lastProgress = { at: measureStart, messages: 0, bytes: 0 };
      }, plan.warmup * 1000),
    );
  timers.push(setTimeout(stop, (plan.warmup + plan.duration) * 1000));

  let lastProgress = { at: measureStart, messages: 0, bytes: 0 };
  const progress = setInterval(() => {
    const now = performance.now();
    const seconds = (now - lastProgress.at) / 1000;
    const count = plan.mode === "stream" ? bytes / plan.size : messages;
    const rate = (count - lastProgress.messages) / seconds;
    const throughput = (bytes - lastProgress.bytes) / seconds / 1e6;
    lastProgress = { at: now, messages: count, bytes };
    const errorText = failed ? `, errors ${failed} (${codes(errors)})` : "";
    const phase = measuring ? `${((now - measureStart) / 1000).toFixed(1)} s` : "warm-up";
    host.progress(
      `${phase}: ${thousands(Math.round(rate))} msg/s, ${throughput.toFixed(2)} MB/s, ${opened} connections${errorText}`,
    );
  }, PROGRESS_SECONDS * 1000);

  const failure = (error: unknown) => {
    failed++;
    const code = errorCodeOf(error);
    errors[code] = (errors[code] ?? 0) + 1;
    firstError ??= error instanceof Error ? error.message : String(error);
  };

  /** Waits for the next message's slot under `--rate`. */
  const pace = async (): Promise<void> => {
    const due = loadStart + (issued++ * 1000) / plan.rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  };
  const paced = plan.rate > 0;

  // The messages, made once: a view per message would be one more allocation per echo.
  const payloads: Uint8Array[] = [];
  for (let i = 0; i < PAYLOADS; i++) {
    const offset = (i * (plan.size + 1)) % span;
    payloads.push(pattern.subarray(offset, offset + plan.size));
  }
  let cursor = 0;
  const nextPayload = () => {
    cursor = (cursor + 1) % PAYLOADS;
    return payloads[cursor] as Uint8Array;
  };

  const clock = batchClock(plan.inFlight);
  const echoLane = async (connection: EchoConnection<Address>) => {
    // One clock read per echo at most: the end of one is the start of the next
    // (nothing runs between them unless paced), and the clock was a twentieth of
    // the client's time with two reads in pipeline mode. Fewer still: see `batchClock`.
    let begin = clock();
    while (!stopping) {
      if (paced) {
        await pace();
        if (stopping) break;
        begin = clock();
      }
      await connection.echo(nextPayload());
      const end = clock();
      if (measuring && !stopping) {
        histogram.record(end - begin);
        messages++;
        bytes += plan.size;
      }
      begin = end;
    }
  };

  /**
   * A stream lane's chunks are consecutive runs of the pattern, each lane
   * starting at its own chunk: one stream, as a buffer written in slices is,
   * which an adapter may send as fewer, larger writes (the Bun adapter merges
   * adjacent views: Bun has no writev). Every chunk still differs from the next.
   * Each chunk's view is made once and shared by the lanes, as the pipeline's
   * messages are: a `subarray` per chunk sent was 10% of the Bun client's samples
   * in 50x16 (JSC's `subarray` is a host call, about 0.1 us even of a large array).
   */
  const chunkCount = Math.floor(span / plan.size) + 1;
  const chunkViews: Array<Uint8Array | undefined> | undefined =
    chunkCount <= CHUNK_VIEWS ? new Array(chunkCount) : undefined;
  const chunkView = (index: number) => pattern.subarray(index * plan.size, (index + 1) * plan.size);
  let lanes = 0;
  /** Writes `inFlight` chunks ahead of their echo; the connection checks each echoed byte. */
  const streamLanes = async (connection: EchoConnection<Address>) => {
    const window = plan.inFlight * plan.size;
    let sent = 0;
    let received = 0;
    let room: (() => void) | undefined;
    let next = (lanes++ * LANE_STRIDE) % chunkCount;
    const nextChunk = () => {
      const index = next;
      next = index + 1 === chunkCount ? 0 : index + 1;
      if (chunkViews === undefined) return chunkView(index);
      let chunk = chunkViews[index];
      if (chunk === undefined) {
        chunk = chunkView(index);
        chunkViews[index] = chunk;
      }
      return chunk;
    };
    let reading = true;
    const reader = (async () => {
      try {
        for (let chunk = await connection.read(); chunk; chunk = await connection.read()) {
          received += chunk.byteLength;
          if (measuring && !stopping) bytes += chunk.byteLength;
          room?.();
        }
      } finally {
        reading = false;
        room?.();
      }
    })();
    reader.catch(() => {});
    // One plain promise per wait, woken by the reader (a chunk, or its end; its
    // failure reaches the caller through `finish`, which awaits it) or by `stop`.
    // A `Promise.race` with `reader` and a run-long `finished` promise added two
    // reactions to those at every wait, kept until the run ended.
    const wait = (resolve: () => void) => {
      room = resolve;
      waitingForRoom.add(resolve);
    };
    while (!stopping && reading) {
      if (sent - received >= window) {
        await new Promise<void>(wait);
        waitingForRoom.delete(room as () => void);
        room = undefined;
        continue;
      }
      if (paced) {
        await pace();
        if (stopping) break;
      }
      await connection.write(nextChunk());
      sent += plan.size;
    }
    // Wrapped: an async function returning a promise would wait for it (the reader ends only at EOF).
    return { reader };
  };

  /**
   * Half-closes and waits for the server's EOF: the connection fails a byte
   * beyond what was sent (EPROTO), an EOF before the whole echo (EPROTO), and a
   * server that stops answering (ETIMEDOUT, after `replyTimeout`).
   */
  const finish = async (connection: EchoConnection<Address>, reader?: Promise<void>) => {
    await connection.closeWrite();
    await reader;
    await connection.closed;
  };

  const persistent = async () => {
    let connection: EchoConnection<Address>;
    try {
      connection = await host.connect();
      opened++;
    } catch (error) {
      failure(error);
      return;
    }
    try {
      if (plan.mode === "stream") await finish(connection, (await streamLanes(connection)).reader);
      else {
        const lanes: Promise<void>[] = [];
        for (let i = 0; i < plan.inFlight; i++) lanes.push(echoLane(connection));
        await Promise.all(lanes);
        await finish(connection);
      }
    } catch (error) {
      failure(error);
    } finally {
      await connection.close();
    }
  };

  const churn = async () => {
    while (!stopping) {
      if (paced) {
        await pace();
        if (stopping) break;
      }
      const begin = performance.now();
      let connection: EchoConnection<Address> | undefined;
      try {
        connection = await host.connect();
        opened++;
        await connection.echo(nextPayload());
        // finish() without its wait for a reader: one await fewer per connection.
        await connection.closeWrite();
        await connection.closed;
        if (measuring && !stopping) {
          histogram.record(performance.now() - begin);
          messages++;
          bytes += plan.size;
        }
      } catch (error) {
        failure(error);
        await connection?.close();
        // A dead server must not spin this loop: each worker gives up after its first failure.
        return;
      }
    }
  };

  const workers: Promise<void>[] = [];
  for (let i = 0; i < plan.connections; i++) workers.push(plan.mode === "churn" ? churn() : persistent());
  await Promise.all(workers);
  stop();
  clearInterval(progress);
  for (const timer of timers) clearTimeout(timer);
  stopSignals();

  // A stream's chunks are counted as their bytes come back.
  const verified = plan.mode === "stream" ? Math.floor(bytes / plan.size) : messages;
  const seconds = measuring ? Math.max(1e-9, (measureEnd - measureStart) / 1000) : 0;
  return {
    mode: plan.mode,
    where: plan.where,
    runtime: host.runtime,
    connections: plan.connections,
    inFlight: plan.inFlight,
    size: plan.size,
    seconds,
    messages: verified,
    messagesPerSecond: seconds ? verified / seconds : 0,
    bytes,
    megabytesPerSecond: seconds ? bytes / seconds / 1e6 : 0,
    latencyMs:
      plan.mode === "stream"
        ? null
        : {
            p50: histogram.percentile(0.5),
            p90: histogram.percentile(0.9),
            p99: histogram.percentile(0.99),
            p999: histogram.percentile(0.999),
            max: histogram.count ? histogram.max : Number.NaN,
          },
    connectionsOpened: opened,
    connectionsFailed: failed,
    errors,
    ...(firstError ? { firstError } : {}),
    interrupted,
  };
}

function codes(errors: Readonly<Record<string, number>>): string {
  return Object.entries(errors)
    .map(([code, n]) => `${code} ${n}`)
    .join(", ");
}

/** The summary a person reads. */
export function formatLoadReport(report: LoadReport): string {
  const number = (value: number, digits = 0) =>
    value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const shape =
    report.mode === "churn"
      ? `${report.connections} connections at a time`
      : `${report.connections} connections x ${report.inFlight} in flight`;
  const unit = report.mode === "churn" ? "connections" : report.mode === "stream" ? "chunks" : "messages";
  const lines = [
    `--- load ${report.where} (${report.runtime} client): ${report.mode}, ${shape}, ${report.size} B${report.interrupted ? ", interrupted" : ""} ---`,
    `${number(report.messages)} ${unit} in ${number(report.seconds, 2)} s: ${number(report.messagesPerSecond)}/s, ${number(report.megabytesPerSecond, 2)} MB/s echoed, every byte checked`,
  ];
  const latency = report.latencyMs;
  if (latency && report.messages > 0)
    lines.push(
      `latency ms: p50 ${latency.p50.toFixed(3)}, p90 ${latency.p90.toFixed(3)}, p99 ${latency.p99.toFixed(3)}, p99.9 ${latency.p999.toFixed(3)}, max ${latency.max.toFixed(3)}`,
    );
  lines.push(`connections: ${report.connectionsOpened} opened, ${report.connectionsFailed} failed`);
  lines.push(`errors: ${report.connectionsFailed ? codes(report.errors) : "none"}`);
  if (report.firstError) lines.push(`first error: ${report.firstError}`);
  return `${lines.join("\n")}\n`;
}
