/**
 * The UDP server and client every runtime shares, over the one primitive an
 * adapter supplies: a bound datagram socket (`DatagramTable.bind`) that reports
 * each datagram and sends one when asked. Option checks, the policy of
 * `_datagram.ts`, counters, hooks, timers, retries and close live here.
 */

import { DATAGRAM_DEFAULTS, DatagramCounters, DatagramPolicy, EchoMatcher, MAX_DATAGRAM } from "./_datagram.ts";
import { EchoError, type ErrorContext, echoError, formatAddress, toEchoError } from "./_errors.ts";
import {
  boolean,
  DEFAULTS,
  hook,
  integer,
  invalid,
  isIPv4,
  isIPv6,
  normalizeHostname,
  signal,
  toBytes,
} from "./_options.ts";
import type {
  DatagramAddress,
  DatagramClientStats,
  DatagramConnectOptions,
  DatagramEchoOptions,
  DatagramListenOptions,
  DatagramRateLimit,
  DatagramServerStats,
  EchoDatagramClient,
  EchoDatagramServer,
  Runtime,
} from "./types.ts";

// --- the adapter's part ---

export interface DatagramBindConfig {
  /** Numeric or a name (the adapter resolves it, as its `bind` does). */
  readonly hostname: string;
  readonly port: number;
  /** Sends the socket may hold unsent; at this many, `send` returns false. */
  readonly sendQueue: number;
}

/** What a bound socket reports. */
export interface DatagramEvents {
  /** One datagram, whole (`truncated` when the runtime says it cut it short). The adapter never reuses `data`. */
  onDatagram(data: Uint8Array, hostname: string, port: number, truncated: boolean): void;
  /** An error of the socket or of a send that already returned true. */
  onError(error: unknown): void;
}

/** A bound datagram socket, as an adapter hands it to core. */
export interface DatagramIO {
  readonly address: DatagramAddress;
  /**
   * Sends one datagram to a numeric address. False when the socket cannot take
   * it now (its queue is full): the datagram is dropped, never queued by core.
   * May throw (too large, wrong family).
   */
  send(data: Uint8Array, hostname: string, port: number): boolean;
  /** Releases the socket. Called once. */
  close(): void | Promise<void>;
}

/** The datagram half of a runtime's table (`RuntimeTable.datagram`). */
export interface DatagramTable {
  bind(config: DatagramBindConfig, events: DatagramEvents): Promise<DatagramIO>;
  /** The numeric address of a host name (the client sends to one address). */
  lookup(hostname: string): Promise<string>;
}

// --- options ---

const MAX_MS = 2 ** 31 - 1;

export interface DatagramListenConfig {
  readonly hostname: string;
  readonly port: number;
  readonly allowPrivilegedSourcePorts: boolean;
  readonly sourceRateLimit: DatagramRateLimit | false;
  readonly rateLimit: DatagramRateLimit | false;
  readonly sendQueue: number;
  readonly signal: AbortSignal | undefined;
  readonly onDrop: DatagramListenOptions["onDrop"];
  readonly onError: DatagramListenOptions["onError"];
}

const LISTEN_KEYS = new Set([
  "transport",
  "hostname",
  "port",
  "allowPrivilegedSourcePorts",
  "sourceRateLimit",
  "rateLimit",
  "sendQueue",
  "signal",
  "onDrop",
  "onError",
]);
const CONNECT_KEYS = new Set(["transport", "hostname", "port", "signal"]);

/** A TCP option given with `transport: "udp"` is refused rather than ignored (`tls` would otherwise be silently off). */
function onlyUdp(options: object, keys: ReadonlySet<string>): void {
  for (const key of Object.keys(options))
    if (!keys.has(key) && (options as Record<string, unknown>)[key] !== undefined)
      throw new EchoError("EINVAL", `invalid option ${key}: it does not apply to UDP (transport: "udp")`);
}

function rateLimit(option: string, value: unknown, fallback: DatagramRateLimit): DatagramRateLimit | false {
  if (value === undefined) return fallback;
  if (value === false) return false;
  if (typeof value !== "object" || value === null)
    throw invalid(option, "false or { datagramsPerSecond, bytesPerSecond }", value);
  const limit = value as Partial<DatagramRateLimit>;
  const MAX = Number.MAX_SAFE_INTEGER;
  return {
    datagramsPerSecond: integer(`${option}.datagramsPerSecond`, limit.datagramsPerSecond, 0, 0, MAX),
    bytesPerSecond: integer(`${option}.bytesPerSecond`, limit.bytesPerSecond, 0, 0, MAX),
  };
}

export function resolveDatagramListenOptions(options: DatagramListenOptions): DatagramListenConfig {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  onlyUdp(options, LISTEN_KEYS);
  return {
    hostname: normalizeHostname(options.hostname),
    port: integer("port", options.port, DEFAULTS.port, 0, 65535),
    allowPrivilegedSourcePorts: boolean("allowPrivilegedSourcePorts", options.allowPrivilegedSourcePorts, false),
    sourceRateLimit: rateLimit("sourceRateLimit", options.sourceRateLimit, DATAGRAM_DEFAULTS.sourceRateLimit),
    rateLimit: rateLimit("rateLimit", options.rateLimit, DATAGRAM_DEFAULTS.rateLimit),
    sendQueue: integer("sendQueue", options.sendQueue, DATAGRAM_DEFAULTS.sendQueue, 1, 1_000_000),
    signal: signal(options.signal),
    onDrop: hook("onDrop", options.onDrop),
    onError: hook("onError", options.onError),
  };
}

function resolveDatagramEchoOptions(options: DatagramEchoOptions = {}) {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  return {
    timeout: integer("timeout", options.timeout, 1000, 1, MAX_MS),
    retries: integer("retries", options.retries, 2, 0, 1000),
    signal: signal(options.signal),
  };
}

const familyOf = (hostname: string): "IPv4" | "IPv6" => (hostname.includes(":") ? "IPv6" : "IPv4");

/** A UDP address as a socket reports it; only IPv6 has a colon. */
export function datagramAddress(hostname: string, port: number): DatagramAddress {
  return { transport: "udp", hostname, port, family: familyOf(hostname) };
}

function isLoopback(hostname: string): boolean {
  return hostname === "::1" || hostname.startsWith("127.");
}

// --- server ---

export async function startDatagramServer(
  runtime: Runtime,
  options: DatagramListenOptions,
  table: DatagramTable | undefined,
): Promise<EchoDatagramServer> {
  const config = resolveDatagramListenOptions(options);
  const context: ErrorContext = { operation: "listen", hostname: config.hostname, port: config.port };
  if (!table) throw new EchoError("EINVAL", `invalid option transport: the ${runtime} package has no UDP`);
  if (config.signal?.aborted) throw echoError("EABORTED", context);
  const server = new DatagramServerCore(runtime, config);
  let io: DatagramIO;
  try {
    io = await table.bind({ hostname: config.hostname, port: config.port, sendQueue: config.sendQueue }, server);
  } catch (error) {
    throw toEchoError(error, context);
  }
  server.attach(io);
  return server;
}

/** The server side of UDP echo: each datagram is checked by the policy and echoed, or dropped and counted. */
export class DatagramServerCore implements EchoDatagramServer, DatagramEvents {
  readonly runtime: Runtime;
  readonly closed: Promise<void>;
  private readonly config: DatagramListenConfig;
  private readonly policy: DatagramPolicy;
  private readonly counters = new DatagramCounters();
  private io: DatagramIO | undefined;
  private closing: Promise<void> | undefined;
  private resolveClosed!: () => void;
  private readonly onAbort = () => void this.close();

  constructor(runtime: Runtime, config: DatagramListenConfig, now = performance.now()) {
    this.runtime = runtime;
    this.config = config;
    this.policy = new DatagramPolicy({ ...config, maxSources: DATAGRAM_DEFAULTS.maxSources }, now);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  attach(io: DatagramIO): void {
    this.io = io;
    this.config.signal?.addEventListener("abort", this.onAbort, { once: true });
    if (this.config.signal?.aborted) void this.close();
  }

  get address(): DatagramAddress {
    return this.io?.address ?? datagramAddress(this.config.hostname, this.config.port);
  }

  get stats(): DatagramServerStats {
    return this.counters.snapshot();
  }

  onDatagram(data: Uint8Array, hostname: string, port: number, truncated: boolean, now = performance.now()): void {
    const { counters } = this;
    counters.datagramsIn++;
    counters.bytesIn += data.byteLength;
    if (this.closing || !this.io) return;
    let reason = truncated ? "truncated" : this.policy.decide(hostname, port, data.byteLength, now);
    if (reason === undefined) {
      let sent: boolean;
      try {
        sent = this.io.send(data, hostname, port);
      } catch (error) {
        this.onError(error);
        return;
      }
      if (sent) {
        counters.datagramsOut++;
        counters.bytesOut += data.byteLength;
        return;
      }
      reason = "sendQueue";
    }
    counters.dropped[reason]++;
    if (this.config.onDrop)
      this.hook("onDrop", this.config.onDrop, {
        remoteAddress: datagramAddress(hostname, port),
        bytes: data.byteLength,
        reason,
      });
  }

  onError(error: unknown): void {
    const failure = toEchoError(error, { operation: "write", ...this.where() });
    this.counters.errors[failure.code] = (this.counters.errors[failure.code] ?? 0) + 1;
    if (this.config.onError) this.hook("onError", this.config.onError, failure);
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutDown(): Promise<void> {
    this.config.signal?.removeEventListener("abort", this.onAbort);
    try {
      await this.io?.close();
    } catch (error) {
      this.onError(error);
    }
    this.resolveClosed();
  }

  private where(): { hostname: string; port: number } {
    const { hostname, port } = this.address;
    return { hostname, port };
  }

  /** A user hook cannot hurt the server: a throw or rejection is `EHOOK`, reported to `onError` (whose own failure is dropped). */
  private hook<T>(name: "onDrop" | "onError", fn: (value: T) => void | Promise<void>, value: T): void {
    const fail = (error: unknown) => {
      if (name === "onError") return;
      const reason = error instanceof Error ? error.message : String(error);
      this.onError(new EchoError("EHOOK", `${name} hook failed: ${reason}`, { cause: error }));
    };
    try {
      const result = fn(value);
      if (result && typeof result.then === "function") result.then(undefined, fail);
    } catch (error) {
      fail(error);
    }
  }
}

// --- client ---

export async function openDatagramClient(
  runtime: Runtime,
  options: DatagramConnectOptions,
  table: DatagramTable | undefined,
): Promise<EchoDatagramClient> {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  onlyUdp(options, CONNECT_KEYS);
  const hostname = normalizeHostname(options.hostname);
  const port = integer("port", options.port, DEFAULTS.port, 1, 65535);
  const abort = signal(options.signal);
  const context: ErrorContext = { operation: "connect", hostname, port };
  if (!table) throw new EchoError("EINVAL", `invalid option transport: the ${runtime} package has no UDP`);
  if (abort?.aborted) throw echoError("EABORTED", context);
  let io: DatagramIO;
  let client: DatagramClientCore;
  try {
    // RFC 6761: localhost is loopback, whatever a resolver says.
    const numeric =
      isIPv4(hostname) || isIPv6(hostname)
        ? hostname
        : hostname === "localhost"
          ? "127.0.0.1"
          : await table.lookup(hostname);
    const remote = datagramAddress(numeric, port);
    // A loopback server is reached from loopback, which a Deno granted only --allow-net=127.0.0.1 may bind.
    const local = isLoopback(numeric) ? numeric : remote.family === "IPv6" ? "::" : "0.0.0.0";
    client = new DatagramClientCore(runtime, remote);
    io = await table.bind({ hostname: local, port: 0, sendQueue: DATAGRAM_DEFAULTS.sendQueue }, client);
  } catch (error) {
    throw toEchoError(error, context);
  }
  client.attach(io, abort);
  return client;
}

interface Waiting {
  readonly resolve: (reply: Uint8Array) => void;
  readonly reject: (error: EchoError) => void;
}

/** The client side: sends, retries on a timer, and matches each answer with `EchoMatcher`. */
export class DatagramClientCore implements EchoDatagramClient, DatagramEvents {
  readonly runtime: Runtime;
  readonly remoteAddress: DatagramAddress;
  readonly maxDatagram: number;
  readonly closed: Promise<void>;
  private io: DatagramIO | undefined;
  private readonly matcher = new EchoMatcher();
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private counters = { sent: 0, received: 0, retransmitted: 0, late: 0, strays: 0, unexpected: 0 };
  private closing: Promise<void> | undefined;
  private resolveClosed!: () => void;
  private readonly onAbort = () => void this.close();
  private abort: AbortSignal | undefined;

  constructor(runtime: Runtime, remote: DatagramAddress) {
    this.runtime = runtime;
    this.remoteAddress = remote;
    this.maxDatagram = MAX_DATAGRAM[remote.family];
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  attach(io: DatagramIO, abort: AbortSignal | undefined): void {
    this.io = io;
    this.abort = abort;
    abort?.addEventListener("abort", this.onAbort, { once: true });
  }

  get localAddress(): DatagramAddress {
    return this.io?.address ?? datagramAddress(this.remoteAddress.family === "IPv6" ? "::" : "0.0.0.0", 0);
  }

  get stats(): DatagramClientStats {
    return { ...this.counters };
  }

  echo(payload: Uint8Array | string, options?: DatagramEchoOptions): Promise<Uint8Array> {
    try {
      const bytes = toBytes(payload);
      const { timeout, retries, signal: abort } = resolveDatagramEchoOptions(options);
      if (bytes.byteLength > this.maxDatagram)
        throw new EchoError(
          "EINVAL",
          `invalid payload: ${bytes.byteLength} bytes, over the ${this.maxDatagram}-byte limit of one ${this.remoteAddress.family} UDP datagram`,
        );
      if (this.closing || !this.io) throw echoError("ECLOSED", { operation: "echo", ...this.where() });
      if (abort?.aborted) throw echoError("EABORTED", { operation: "echo", ...this.where() });
      return this.start(bytes, timeout, retries, abort);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private start(bytes: Uint8Array, timeout: number, retries: number, abort: AbortSignal | undefined) {
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      let attempts = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        clearTimeout(timer);
        abort?.removeEventListener("abort", onAbort);
        this.waiting.delete(id);
      };
      const giveUp = (error: EchoError) => {
        finish();
        this.matcher.abandon(id);
        reject(error);
      };
      const onAbort = () => giveUp(echoError("EABORTED", { operation: "echo", ...this.where() }));
      const attempt = () => {
        attempts++;
        if (attempts > 1) this.counters.retransmitted++;
        this.matcher.sent(id, bytes);
        this.counters.sent++;
        try {
          // A full send queue loses this attempt, as the network would: the timer retries it.
          this.io?.send(bytes, this.remoteAddress.hostname, this.remoteAddress.port);
        } catch (error) {
          giveUp(toEchoError(error, { operation: "write", ...this.where() }));
          return;
        }
        timer = setTimeout(() => {
          if (attempts <= retries) attempt();
          else giveUp(this.timedOut(bytes.byteLength, attempts, timeout));
        }, timeout);
      };
      this.waiting.set(id, {
        resolve: (reply) => {
          finish();
          resolve(reply);
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      });
      abort?.addEventListener("abort", onAbort, { once: true });
      attempt();
    });
  }

  onDatagram(data: Uint8Array, hostname: string, port: number): void {
    const remote = this.remoteAddress;
    if (hostname !== remote.hostname || port !== remote.port) {
      this.counters.strays++;
      return;
    }
    this.counters.received++;
    const match = this.matcher.received(data);
    if (match.kind === "reply") this.waiting.get(match.id)?.resolve(data);
    else if (match.kind === "mismatch") this.waiting.get(match.id)?.reject(this.mismatch(data));
    else this.counters[match.kind]++;
  }

  /** Send errors after the fact (an ICMP error on some runtimes): the retries cover a lost datagram. */
  onError(): void {}

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutDown(): Promise<void> {
    this.abort?.removeEventListener("abort", this.onAbort);
    for (const [id, waiting] of [...this.waiting]) {
      this.matcher.abandon(id);
      waiting.reject(echoError("ECLOSED", { operation: "echo", ...this.where() }));
    }
    try {
      await this.io?.close();
    } catch {
      // The socket is gone either way; nothing is waiting on it any more.
    }
    this.resolveClosed();
  }

  private where(): { hostname: string; port: number } {
    return { hostname: this.remoteAddress.hostname, port: this.remoteAddress.port };
  }

  private timedOut(size: number, attempts: number, timeout: number): EchoError {
    const where = formatAddress(this.remoteAddress.hostname, this.remoteAddress.port);
    return new EchoError(
      "ETIMEDOUT",
      `echo ETIMEDOUT ${where}: no answer to a ${size}-byte datagram after ${attempts} attempt(s), ${timeout} ms each; the datagram or its answer was lost, or nothing serves UDP echo there (UDP has no refusal to tell)`,
      { operation: "echo", ...this.where() },
    );
  }

  private mismatch(data: Uint8Array): EchoError {
    const where = formatAddress(this.remoteAddress.hostname, this.remoteAddress.port);
    return new EchoError(
      "EPROTO",
      `echo EPROTO ${where}: a ${data.byteLength}-byte answer equals no datagram in flight: the server changed it, answered another request, or repeated an answer`,
      { operation: "echo", ...this.where() },
    );
  }
}
