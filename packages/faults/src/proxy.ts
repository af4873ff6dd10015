/**
 * A fault-injecting TCP proxy for loopback tests, modeled on Toxiproxy's toxics
 * (https://github.com/Shopify/toxiproxy#toxics). The kernel here has no netem,
 * so bad networks are made in user space, between a client and a server:
 *
 *   const proxy = await startProxy({ target: server.address, toxics: [{ type: "latency", latency: 20 }] });
 *   const client = await connect({ port: proxy.address.port });
 *
 * What a proxy must not change, whatever the toxics do:
 * - order: every byte is forwarded in order, per direction;
 * - half-close: a FIN is forwarded as a half-close, after the data before it;
 * - backpressure: while a direction holds more than `highWaterMark` bytes (a slow
 *   receiver, a bandwidth limit, a stall), its sender is no longer read.
 * A failure on one side (a reset, an error) resets the other side, as the
 * network between them would: a proxy never turns a reset into a clean close.
 */

import * as net from "node:net";

// --- toxics ---

/** Which way a toxic acts: `upstream` is client to server, `downstream` server to client. */
export type Direction = "upstream" | "downstream" | "both";

export type Toxic =
  /** Each chunk is held `latency` ms (+/- up to `jitter` ms) after it arrives; order is kept. */
  | { type: "latency"; latency: number; jitter?: number; direction?: Direction }
  /** At most `rate` bytes per second. */
  | { type: "bandwidth"; rate: number; direction?: Direction }
  /** Forwards in random segments of 1 to `maxSize` bytes, each followed by a pause of 0 to `delay` ms. */
  | { type: "slicer"; maxSize: number; delay?: number; direction?: Direction }
  /** Holds a FIN `delay` ms before forwarding it. */
  | { type: "slow-close"; delay: number; direction?: Direction }
  /** Forwards nothing for `duration` ms once `after` bytes went through, then resumes. */
  | { type: "stall"; after: number; duration: number; direction?: Direction }
  /**
   * Once `after` bytes went upstream, sends a reset (RST) to `side`; the other
   * side is reset right after, since the path between them is gone.
   */
  | { type: "reset"; side: "client" | "server"; after: number };

export interface ProxyOptions {
  /** Where connections are forwarded to: any server's `address`, or `{ hostname, port }`. */
  target: { hostname: string; port: number };
  toxics?: readonly Toxic[];
  /** Address to listen on. Default 127.0.0.1, port 0 (a free one). */
  hostname?: string;
  port?: number;
  /** Bytes a direction holds before it stops reading its sender. Default 1 MiB. */
  highWaterMark?: number;
  /** Seeds the random parts (jitter, slice sizes) so a run can be replayed. Default random. */
  seed?: number;
}

export interface ProxyStats {
  /** Connections accepted. */
  readonly connections: number;
  /** Connections open now. */
  readonly active: number;
  /** Bytes forwarded client to server, and server to client. */
  readonly upstream: number;
  readonly downstream: number;
  /** Resets sent by a `reset` toxic. */
  readonly resets: number;
  /** Most bytes any one direction held at once: bounded by `highWaterMark` plus one read. */
  readonly maxQueued: number;
}

export interface FaultProxy extends AsyncDisposable {
  readonly address: { hostname: string; port: number };
  readonly stats: ProxyStats;
  /** Replaces the toxics for connections accepted from now on. */
  setToxics(toxics: readonly Toxic[]): void;
  /** Stops listening and destroys every connection. Idempotent. */
  close(): Promise<void>;
}

export async function startProxy(options: ProxyOptions): Promise<FaultProxy> {
  const highWaterMark = options.highWaterMark ?? 1024 * 1024;
  const random = seeded(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  let toxics = [...(options.toxics ?? [])];
  const pairs = new Set<Pair>();
  const stats = { connections: 0, upstream: 0, downstream: 0, resets: 0, maxQueued: 0 };
  const listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    stats.connections++;
    const pair = new Pair(client, options.target, toxics, { highWaterMark, random, stats });
    pairs.add(pair);
    pair.done.then(() => pairs.delete(pair));
  });
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen({ host: options.hostname ?? "127.0.0.1", port: options.port ?? 0 }, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  const bound = listener.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      listener.close(() => resolve());
      for (const pair of pairs) pair.abort();
    });
    return closing;
  };
  return {
    address: { hostname: bound.address, port: bound.port },
    get stats(): ProxyStats {
      return { ...stats, active: pairs.size };
    },
    setToxics(next) {
      toxics = [...next];
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

// --- connections ---

interface Shared {
  readonly highWaterMark: number;
  readonly random: () => number;
  readonly stats: { upstream: number; downstream: number; resets: number; maxQueued: number };
}

/** One proxied connection: the client's socket, the server's, and a `Link` each way. */
class Pair {
  readonly done: Promise<void>;
  private readonly client: net.Socket;
  private readonly server: net.Socket;
  private readonly links: Link[] = [];
  private aborted = false;

  constructor(client: net.Socket, target: ProxyOptions["target"], toxics: readonly Toxic[], shared: Shared) {
    this.client = client;
    this.server = net.connect({ host: target.hostname, port: target.port, allowHalfOpen: true, noDelay: true });
    client.setNoDelay(true);
    // Every socket has an error listener: a reset must never crash the proxy.
    client.on("error", () => this.fail(this.server));
    this.server.on("error", () => this.fail(client));
    const closed = (socket: net.Socket) => new Promise<void>((resolve) => socket.once("close", () => resolve()));
    this.done = Promise.all([closed(client), closed(this.server)]).then(() => {
      for (const link of this.links) link.stop();
    });
    this.server.once("connect", () => {
      const reset = toxics.find((toxic) => toxic.type === "reset");
      const upstream = new Link(client, this.server, forDirection(toxics, "upstream"), shared, "upstream");
      const downstream = new Link(this.server, client, forDirection(toxics, "downstream"), shared, "downstream");
      this.links.push(upstream, downstream);
      if (reset) {
        upstream.onBytes = (total) => {
          if (total < reset.after || this.aborted) return;
          shared.stats.resets++;
          const first = reset.side === "client" ? client : this.server;
          this.fail(first === client ? this.server : client, first);
        };
      }
      // Both FINs forwarded: nothing more can flow, release both descriptors.
      Promise.all([upstream.finished, downstream.finished]).then(([up, down]) => {
        if (!up || !down) return;
        client.destroy();
        this.server.destroy();
      });
      client.resume();
    });
    // A socket that closes before its peer's FIN, without an error (destroyed
    // under us), also fails the pair. One that closes after its FIN is normal:
    // Node closes a socket once both directions are done, while its last bytes
    // may still wait in the other direction's queue.
    client.once("close", () => this.closedEarly(client));
    this.server.once("close", () => this.closedEarly(this.server));
  }

  /** Destroys both sides at once (the proxy is closing). */
  abort(): void {
    this.aborted = true;
    this.client.destroy();
    this.server.destroy();
  }

  private closedEarly(socket: net.Socket): void {
    const other = socket === this.client ? this.server : this.client;
    if (!socket.readableEnded && !other.destroyed) this.fail(other);
  }

  /** Resets `first` (if given), then `other`: the RST order a `reset` toxic asks for. */
  private fail(other: net.Socket, first?: net.Socket): void {
    this.aborted = true;
    for (const link of this.links) link.stop();
    if (first) reset(first);
    reset(other);
  }
}

/** RST, not FIN: the peer must see ECONNRESET. A socket still connecting is just destroyed. */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

function forDirection(toxics: readonly Toxic[], direction: "upstream" | "downstream"): Toxic[] {
  return toxics.filter((toxic) => {
    if (toxic.type === "reset") return false;
    const applies = toxic.direction ?? "both";
    return applies === "both" || applies === direction;
  });
}

// --- links ---

type Item = { chunk: Uint8Array; arrived: number } | { end: true };

/**
 * One direction: reads `source`, applies the toxics to each chunk in order, and
 * writes to `sink`. A single forwarding loop keeps the order; the queue in front
 * of it is what backpressure bounds.
 */
class Link {
  /** Resolves true once the FIN went out after every byte; false if the link was stopped first. */
  readonly finished: Promise<boolean>;
  /** Called with the running byte total after each forwarded piece. */
  onBytes: ((total: number) => void) | undefined;
  private readonly source: net.Socket;
  private readonly sink: net.Socket;
  private readonly toxics: readonly Toxic[];
  private readonly shared: Shared;
  private readonly direction: "upstream" | "downstream";
  private readonly queue: Item[] = [];
  private queued = 0;
  private paused = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private forwarded = 0;
  /** Latency keeps order: a chunk is never released before the one ahead of it. */
  private releaseAt = 0;
  /** Bandwidth: when the link is free to send the next byte. */
  private freeAt = 0;
  private readonly stalled = new Set<Toxic>();

  constructor(
    source: net.Socket,
    sink: net.Socket,
    toxics: readonly Toxic[],
    shared: Shared,
    direction: "upstream" | "downstream",
  ) {
    this.source = source;
    this.sink = sink;
    this.toxics = toxics;
    this.shared = shared;
    this.direction = direction;
    source.on("data", (chunk: Buffer) => {
      this.push({ chunk, arrived: performance.now() });
      this.queued += chunk.byteLength;
      this.shared.stats.maxQueued = Math.max(this.shared.stats.maxQueued, this.queued);
      if (!this.paused && this.queued > this.shared.highWaterMark) {
        this.paused = true;
        source.pause();
      }
    });
    source.on("end", () => this.push({ end: true }));
    this.finished = this.run();
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private push(item: Item): void {
    this.queue.push(item);
    this.wake?.();
  }

  private async run(): Promise<boolean> {
    while (!this.stopped) {
      const item = this.queue.shift();
      if (!item) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      if ("end" in item) return this.closeWrite();
      await this.forward(item.chunk, item.arrived);
      this.queued -= item.chunk.byteLength;
      if (this.paused && this.queued <= this.shared.highWaterMark >> 1) {
        this.paused = false;
        this.source.resume();
      }
    }
    return false;
  }

  private async forward(chunk: Uint8Array, arrived: number): Promise<void> {
    let pieces: Uint8Array[] = [chunk];
    for (const toxic of this.toxics) {
      if (toxic.type === "latency") {
        const jitter = toxic.jitter ? (this.shared.random() * 2 - 1) * toxic.jitter : 0;
        this.releaseAt = Math.max(this.releaseAt, arrived + Math.max(0, toxic.latency + jitter));
        await this.sleepUntil(this.releaseAt);
      } else if (toxic.type === "slicer" || toxic.type === "bandwidth") {
        pieces = pieces.flatMap((piece) => this.slice(piece, toxic));
      }
    }
    for (const piece of pieces) {
      if (this.stopped) return;
      await this.stallIfDue(piece.byteLength);
      const bandwidth = this.toxics.find((toxic) => toxic.type === "bandwidth");
      if (bandwidth) {
        const now = performance.now();
        this.freeAt = Math.max(this.freeAt, now) + (piece.byteLength * 1000) / bandwidth.rate;
        // Sleep only once the debt is worth a timer; short pieces accumulate.
        if (this.freeAt - now >= 4) await this.sleepUntil(this.freeAt);
      }
      await this.write(piece);
      const slicer = this.toxics.find((toxic) => toxic.type === "slicer");
      // A pause of 0 still yields to the event loop, so each segment leaves as its own write.
      if (slicer) await sleep(Math.floor(this.shared.random() * ((slicer.delay ?? 0) + 1)));
    }
  }

  /** Splits for a slicer (random 1..maxSize) or a bandwidth limit (10 ms worth per piece). */
  private slice(piece: Uint8Array, toxic: Toxic & { type: "slicer" | "bandwidth" }): Uint8Array[] {
    const out: Uint8Array[] = [];
    const tenMilliseconds = toxic.type === "bandwidth" ? Math.max(1, Math.floor(toxic.rate / 100)) : 0;
    for (let offset = 0; offset < piece.byteLength; ) {
      const size = toxic.type === "slicer" ? 1 + Math.floor(this.shared.random() * toxic.maxSize) : tenMilliseconds;
      out.push(piece.subarray(offset, offset + size));
      offset += size;
    }
    return out;
  }

  /** A stall toxic fires once, when the byte count crosses `after`. */
  private async stallIfDue(size: number): Promise<void> {
    for (const toxic of this.toxics) {
      if (toxic.type !== "stall" || this.stalled.has(toxic)) continue;
      if (this.forwarded + size > toxic.after) {
        this.stalled.add(toxic);
        await sleep(toxic.duration);
      }
    }
  }

  private async write(piece: Uint8Array): Promise<void> {
    if (this.stopped || this.sink.destroyed) return;
    const accepted = this.sink.write(piece);
    this.forwarded += piece.byteLength;
    this.shared.stats[this.direction] += piece.byteLength;
    this.onBytes?.(this.forwarded);
    if (!accepted && !this.stopped) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.sink.off("drain", done);
          this.sink.off("close", done);
          resolve();
        };
        this.sink.on("drain", done);
        this.sink.on("close", done);
      });
    }
  }

  private async closeWrite(): Promise<boolean> {
    for (const toxic of this.toxics) if (toxic.type === "slow-close") await sleep(toxic.delay);
    if (this.stopped || this.sink.destroyed) return false;
    // `end()` queues the FIN behind every write still buffered: the half-close stays
    // in order. Its callback fires once all of it is in the kernel, so destroying
    // the socket after that drops nothing.
    await new Promise<void>((resolve) => this.sink.end(resolve));
    return !this.stopped;
  }

  private sleepUntil(time: number): Promise<void> {
    const wait = time - performance.now();
    return wait > 0 ? sleep(wait) : Promise.resolve();
  }
}

// --- utils ---

/** `setTimeout(0)` waits 1 ms on Node; a zero wait only yields, which matters per slicer segment. */
const sleep = (ms: number) =>
  new Promise<void>((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));

/** mulberry32: small, fast, seedable; good enough for jitter and slice sizes. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
