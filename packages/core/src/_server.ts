/**
 * The server side every runtime shares: limits, counters, hooks, the idle sweep
 * and shutdown. An adapter only binds a listener and turns each accepted socket
 * into a `SocketIO`; `ServerCore.accept` does the rest.
 */

import {
  contextOf,
  EchoError,
  type ErrorContext,
  echoError,
  formatEndpoint,
  systemErrorName,
  toEchoError,
} from "./_errors.ts";
import { type ListenConfig, type ProxyConfig, resolveListenOptions, type TcpListenConfig } from "./_options.ts";
import { EchoSession, NO_EVENTS, type SessionHooks, type SocketEvents, type SocketIO } from "./_protocol.ts";
import { type GateOwner, isTrusted, ProxyGate } from "./_proxy.ts";
import { claimUnixPath, type UnixFs, type UnixProbe, unixSocketInfo } from "./_unix.ts";
import type {
  Address,
  CloseOptions,
  ConnectionInfo,
  ConnectionSummary,
  EchoServer,
  ListenOptions,
  Runtime,
  ServerStats,
  SocketAddress,
  SocketInfo,
  UnixAddress,
  UnixListenOptions,
} from "./types.ts";

/**
 * An accepted socket as an adapter hands it to the core: its `SocketIO`, and
 * its TCP addresses on request. Core asks only when something needs them (a
 * hook, `maxConnectionsPerAddress`, `proxyProtocol`'s trust check, the message
 * of a connection's error), so a server without those builds no address
 * objects for its connections: they were most of an idle connection's memory
 * on Bun. Neither is asked on a Unix socket.
 */
export interface AcceptedIO extends SocketIO {
  /** The peer's address. Must not throw once the socket is gone: `tcpAddress(undefined, undefined)` says unknown. */
  remoteAddress(): SocketAddress;
  /** This end's address; asked only when the listener is bound to a wildcard (`0.0.0.0`, `::`), where it differs per connection. */
  localAddress(): SocketAddress;
}

/** A bound listening socket, as an adapter hands it to the core. */
export interface Listener {
  readonly address: Address;
  /** Stop accepting and release the listening socket. Called once. */
  close(): void | Promise<void>;
}

/** Binds the listener; throws (any runtime error) when it cannot. */
export type Binder = (config: ListenConfig, server: ServerCore) => Promise<Listener> | Listener;

/**
 * Validates options, binds through the adapter, and returns the running server.
 * Every runtime's `listen` (made by `defineRuntime`) is this call plus its
 * binder, and what a Unix socket server needs to find and remove a stale socket
 * file before the bind: the runtime's `stat` and `unlink`, and a probe.
 */
export async function startServer(
  runtime: Runtime,
  options: ListenOptions | UnixListenOptions | undefined,
  bind: Binder,
  unixFs: UnixFs,
  probe: UnixProbe,
): Promise<EchoServer<Address>> {
  const config = resolveListenOptions(options);
  const context = { operation: "listen" as const, ...contextOf(config) };
  if (config.signal?.aborted) throw echoError("EABORTED", context);
  const server = new ServerCore(runtime, config);
  let listener: Listener;
  try {
    if (config.transport === "unix") await claimUnixPath(config.path, unixFs, probe);
    listener = await bind(config, server);
  } catch (error) {
    throw toEchoError(error, context);
  }
  server.attach(listener);
  return server;
}

/**
 * A served connection: its session, and what the server keeps of it. One
 * object, not a session plus a record in a Map: an idle connection's memory is
 * mostly such per-connection objects (Bun's heap after a GC held 594 B per idle
 * connection, the hand-written `Bun.listen` server's 225).
 */
class ServedSession extends EchoSession {
  /** Made at accept only when something will read it (`ServerCore.wantsInfo`). */
  readonly info: ConnectionInfo<Address> | undefined;
  /**
   * When the idle sweep last saw traffic. A session starts `active`, so the
   * sweep sets this the first time it sees the connection, before reading it.
   */
  idleSince = 0;

  constructor(info: ConnectionInfo<Address> | undefined, io: SocketIO, hooks: SessionHooks) {
    super(io, hooks);
    this.info = info;
  }
}

export class ServerCore implements EchoServer<Address> {
  readonly runtime: Runtime;
  readonly closed: Promise<void>;
  private listener: Listener | undefined;
  private readonly config: ListenConfig;
  private readonly live = new Set<ServedSession>();
  /** `proxyProtocol`: connections still waiting for their header; they count against `maxConnections`. */
  private readonly awaitingHeader = new Set<ProxyGate>();
  /** Open connections per remote IP; Unix clients have none and are not counted. */
  private readonly perAddress = new Map<string, number>();
  private nextId = 1;
  /**
   * Whether a connection's `ConnectionInfo` is made at accept: only for a hook
   * (which may read it after the socket is gone, when its addresses can no
   * longer be asked), a per-address limit or `proxyProtocol`. Otherwise none
   * is made, and no `Date.now()` is taken per accept.
   */
  private readonly wantsInfo: boolean;
  /** Both ends of every Unix connection: one object per server. */
  private readonly unixEnds: SocketInfo<UnixAddress> | undefined;
  /** Every connection's local address, when the listener is bound to one (not a wildcard). */
  private boundLocal: SocketAddress | undefined;
  private counters = { accepted: 0, rejected: 0, idleClosed: 0, bytesIn: 0, bytesOut: 0 };
  /** `acceptFailed`: the next back-off, and how many accepts failed for one connection's sake. */
  private acceptDelay = ACCEPT_BACKOFF.first;
  private abortedAccepts = 0;
  /** Where every session reports, and its limit: one object per server, no closures per connection. */
  private readonly sessionHooks: SessionHooks;
  private readonly errorCounts: Record<string, number> = {};
  private closing: Promise<void> | undefined;
  private resolveClosed!: () => void;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  /** The sweep's period, when it last ran, and whether that run was a late one it let pass. */
  private sweepTick = 0;
  private lastSweep = 0;
  private sweepHeld = false;
  private drainTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onAbort = () => void this.close();
  private readonly gateOwner: GateOwner = {
    admitProxied: (gate, info) => {
      this.awaitingHeader.delete(gate);
      return this.admit(info, gate.io);
    },
    gateEnded: (gate, error) => {
      if (!this.awaitingHeader.delete(gate)) return;
      const failure = error === undefined ? undefined : this.connectionError(error, gate.info);
      this.hook("onClose", this.config.onClose, {
        ...gate.info,
        reason: failure ? "error" : "server-close",
        bytesIn: 0,
        bytesOut: 0,
        durationMs: Date.now() - gate.info.openedAt,
        ...(failure ? { error: failure } : {}),
      });
      if (this.live.size === 0 && this.awaitingHeader.size === 0) this.drained?.();
    },
  };

  constructor(runtime: Runtime, config: ListenConfig) {
    this.runtime = runtime;
    this.config = config;
    this.sessionHooks = {
      highWaterMark: config.highWaterMark,
      traffic: (bytesIn, bytesOut) => {
        this.counters.bytesIn += bytesIn;
        this.counters.bytesOut += bytesOut;
      },
      failed: (session, error) => {
        const { info, io } = session as ServedSession;
        return this.connectionError(error, info, info ? undefined : this.peerOf(io as AcceptedIO));
      },
      closed: (session) => this.release(session as ServedSession),
    };
    this.wantsInfo =
      config.onConnection !== undefined ||
      config.onClose !== undefined ||
      config.onError !== undefined ||
      config.maxConnectionsPerAddress > 0 ||
      (config.transport === "tcp" && config.proxy !== undefined);
    this.unixEnds = config.transport === "unix" ? unixSocketInfo(config.path, "server") : undefined;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  get address(): Address {
    if (!this.listener) throw echoError("ECLOSED", { operation: "listen" });
    return this.listener.address;
  }

  get connections(): number {
    return this.live.size;
  }

  get stats(): ServerStats {
    return { active: this.live.size, ...this.counters, errors: { ...this.errorCounts } };
  }

  /** Called once by `startServer` when the listener is bound. */
  attach(listener: Listener): void {
    this.listener = listener;
    const bound = listener.address;
    if (bound.transport === "tcp" && !WILDCARDS.has(bound.hostname)) this.boundLocal = bound;
    const { idleTimeout, signal } = this.config;
    if (idleTimeout > 0) {
      // One coarse sweep per server instead of a timer per connection: resetting a
      // timer on every chunk is measurable at high message rates. Ticks of a
      // quarter of the timeout (50-500 ms) keep the firing within T + 0.5 s.
      const tick = Math.min(500, Math.max(50, Math.floor(idleTimeout / 4)));
      this.sweepTick = tick;
      this.lastSweep = Date.now();
      this.sweepTimer = setInterval(() => this.sweep(), tick);
    }
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /**
   * A socket was accepted. Returns where the adapter sends that socket's events.
   * A connection over a limit, or arriving while closing, is destroyed here.
   */
  accept(io: AcceptedIO): SocketEvents {
    // A descriptor was free for it: the accept loop's back-off starts over.
    this.acceptDelay = ACCEPT_BACKOFF.first;
    const id = this.nextId++;
    if (!this.wantsInfo) return this.admit(undefined, io);
    const ends = this.unixEnds;
    const info: ConnectionInfo<Address> = {
      localAddress: ends ? ends.localAddress : (this.boundLocal ?? io.localAddress()),
      remoteAddress: ends ? ends.remoteAddress : io.remoteAddress(),
      id,
      openedAt: Date.now(),
    };
    if (this.config.transport === "tcp" && this.config.proxy) return this.awaitHeader(info, io);
    return this.admit(info, io);
  }

  /** Where a connection's errors happened, for one made without `info`: as `peerOf`, asked of the socket. */
  private peerOf(io: AcceptedIO): Address {
    return this.unixEnds ? this.unixEnds.localAddress : io.remoteAddress();
  }

  /**
   * `proxyProtocol`: a trusted balancer's connection waits in a `ProxyGate` for
   * its header; anyone else's is closed at once with `EPROTO`, before a byte is
   * read, so an untrusted peer can neither be echoed nor claim an address.
   */
  private awaitHeader(info: ConnectionInfo<Address>, io: SocketIO): SocketEvents {
    const { proxy, maxConnections } = this.config as TcpListenConfig;
    const remote = info.remoteAddress as SocketAddress;
    if (this.closing || (maxConnections > 0 && this.live.size + this.awaitingHeader.size >= maxConnections))
      return this.refuse(info, io);
    const tcpInfo = info as ConnectionInfo<SocketAddress>;
    if (!isTrusted((proxy as ProxyConfig).trusted, remote.hostname)) {
      io.destroy();
      const failure = this.connectionError(
        new EchoError(
          "EPROTO",
          `PROXY protocol header refused from ${formatEndpoint(remote)}: not in proxyFrom (CLI: --proxy-from); the connection was closed without reading it`,
        ),
        info,
      );
      this.hook("onClose", this.config.onClose, {
        ...info,
        reason: "error",
        bytesIn: 0,
        bytesOut: 0,
        durationMs: 0,
        error: failure,
      });
      return NO_EVENTS;
    }
    const gate = new ProxyGate(tcpInfo, io, this.gateOwner, (proxy as ProxyConfig).headerTimeout);
    this.awaitingHeader.add(gate);
    return gate;
  }

  /**
   * Serves a connection as `info` names it (`undefined`: nothing will read it),
   * unless a limit or the server's closing refuses it.
   */
  private admit(info: ConnectionInfo<Address> | undefined, io: SocketIO): SocketEvents {
    const { maxConnections, maxConnectionsPerAddress } = this.config;
    // Counted per address only when there is a limit to enforce (and then `info` is made).
    const remote = info && maxConnectionsPerAddress > 0 ? remoteKey(info.remoteAddress) : "";
    const fromAddress = remote === "" ? 0 : (this.perAddress.get(remote) ?? 0);
    if (
      this.closing ||
      (maxConnections > 0 && this.live.size >= maxConnections) ||
      (remote !== "" && fromAddress >= maxConnectionsPerAddress)
    )
      return this.refuse(info, io);
    const session = new ServedSession(info, io, this.sessionHooks);
    this.live.add(session);
    if (remote !== "") this.perAddress.set(remote, fromAddress + 1);
    this.counters.accepted++;
    if (info) this.hook("onConnection", this.config.onConnection, info);
    return session;
  }

  private refuse(info: ConnectionInfo<Address> | undefined, io: SocketIO): SocketEvents {
    this.counters.rejected++;
    io.destroy();
    if (info)
      this.hook("onClose", this.config.onClose, { ...info, reason: "limit", bytesIn: 0, bytesOut: 0, durationMs: 0 });
    return NO_EVENTS;
  }

  /**
   * A failed accept, for the adapter's accept loop: counts and reports it, and
   * says when to accept again: `undefined` at once, or after waiting that many
   * ms (0: only yield to the event loop). An error that belongs to one
   * connection (it was reset in the backlog) costs nothing: the next one may be
   * fine, so waiting would only let a peer that resets stall the server; it is
   * reported as ECONNABORTED. Waiting helps only when descriptors or memory are
   * short, so those back off, doubling up to a second, as does an error we
   * cannot place (retrying it at once could spin).
   */
  acceptFailed(error: unknown): number | undefined {
    const name = systemErrorName(error);
    if (name !== undefined && ONE_CONNECTION.has(name)) {
      this.acceptDelay = ACCEPT_BACKOFF.first;
      this.reportError(echoError("ECONNABORTED", this.acceptContext(), error));
      // A storm of them must not starve the connections already open.
      return ++this.abortedAccepts % YIELD_EVERY === 0 ? 0 : undefined;
    }
    this.reportError(error);
    const wait = this.acceptDelay;
    this.acceptDelay = Math.min(wait * 2, ACCEPT_BACKOFF.max);
    return wait;
  }

  /** A server-level failure the adapter survived (an accept error, EMFILE): counted and reported. */
  reportError(error: unknown): EchoError {
    const failure = toEchoError(error, this.acceptContext());
    this.count(failure);
    this.hook("onError", this.config.onError, failure);
    return failure;
  }

  /** Where accepts happen: the bound address (the real port when 0 was asked for). */
  private acceptContext(): ErrorContext {
    return { operation: "accept", ...contextOf(this.listener?.address ?? this.config) };
  }

  close(options: CloseOptions = {}): Promise<void> {
    if (options.force) this.forceAll();
    if (this.closing) return this.closing;
    this.closing = this.shutDown(options.timeout ?? this.config.drainTimeout);
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutDown(drainTimeout: number): Promise<void> {
    this.config.signal?.removeEventListener("abort", this.onAbort);
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    try {
      // A Unix socket file goes with its listener: libuv (Node), uSockets (Bun)
      // and Deno each unlink it on close, so core does not race a new server for it.
      await this.listener?.close();
    } catch (error) {
      this.reportError(error);
    }
    // A connection still waiting for its PROXY header has nothing to drain.
    for (const gate of this.awaitingHeader) gate.abort();
    if (this.live.size > 0 || this.awaitingHeader.size > 0) {
      this.drainTimer = setTimeout(() => this.forceAll(), drainTimeout);
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        if (this.live.size === 0 && this.awaitingHeader.size === 0) resolve();
      });
      clearTimeout(this.drainTimer);
    }
    this.resolveClosed();
  }

  private drained: (() => void) | undefined;

  private forceAll(): void {
    for (const gate of this.awaitingHeader) gate.abort();
    for (const session of this.live) session.abort("server-close");
  }

  private sweep(): void {
    const now = Date.now();
    // A sweep more than a tick late ran after the event loop was held up (a long
    // GC, a starved CPU, a blocking hook). Timers run before the loop polls for
    // I/O (libuv: https://docs.libuv.org/en/v1.x/design.html#the-i-o-loop), so
    // bytes that arrived in the meantime wait in the kernel, unread, and their
    // connections still look idle. Time the server could not look does not count
    // as idle: it is added to each quiet connection's start, and that sweep closes
    // nothing, so the reads waiting get their turn first. Only one sweep in a row
    // is let pass, so a server that is always late still closes idle connections.
    const lag = now - this.lastSweep - this.sweepTick;
    this.lastSweep = now;
    const hold = lag > this.sweepTick && !this.sweepHeld;
    this.sweepHeld = hold;
    for (const session of this.live) {
      if (session.active) {
        session.active = false;
        session.idleSince = now;
      } else if (hold) {
        session.idleSince += lag;
      } else if (!session.isDestroying && now - session.idleSince >= this.config.idleTimeout) {
        // Once: a destroyed session stays live until its close is reported.
        this.counters.idleClosed++;
        session.abort("idle-timeout");
      }
    }
  }

  private release(session: ServedSession): void {
    if (!this.live.delete(session)) return;
    const { info } = session;
    if (info && this.config.maxConnectionsPerAddress > 0) {
      const remote = remoteKey(info.remoteAddress);
      const left = (this.perAddress.get(remote) ?? 1) - 1;
      if (left > 0) this.perAddress.set(remote, left);
      else this.perAddress.delete(remote);
    }
    if (info && this.config.onClose) this.closedHook(session, info);
    if (this.live.size === 0 && this.awaitingHeader.size === 0) this.drained?.();
  }

  private closedHook(session: EchoSession, info: ConnectionInfo<Address>): void {
    const summary: ConnectionSummary<Address> = {
      ...info,
      reason: session.reason ?? "eof",
      bytesIn: session.bytesIn,
      bytesOut: session.bytesOut,
      durationMs: Date.now() - info.openedAt,
      ...(session.failure ? { error: session.failure } : {}),
    };
    this.hook("onClose", this.config.onClose, summary);
  }

  /** `peer`: where it happened, when `info` (which names it too) was not made. */
  private connectionError(
    error: unknown,
    info: ConnectionInfo<Address> | undefined,
    peer: Address | undefined = info && peerOf(info),
  ): EchoError {
    const failure = toEchoError(error, { operation: "read", ...(peer ? contextOf(peer) : {}) });
    this.count(failure);
    this.hook("onError", this.config.onError, failure, info);
    return failure;
  }

  private count(error: EchoError): void {
    this.errorCounts[error.code] = (this.errorCounts[error.code] ?? 0) + 1;
  }

  /**
   * Runs a user hook so that nothing it does can hurt the server: a throw or a
   * rejection is reported through `onError` (and a failing `onError` is dropped,
   * since there is nowhere left to report it).
   */
  private hook<A extends unknown[]>(
    name: "onConnection" | "onClose" | "onError",
    fn: ((...args: A) => void | Promise<void>) | undefined,
    ...args: A
  ): void {
    if (!fn) return;
    const fail = (error: unknown) => {
      if (name === "onError") return;
      const reason = error instanceof Error ? error.message : String(error);
      const failure = new EchoError("EHOOK", `${name} hook failed: ${reason}`, { cause: error });
      this.count(failure);
      this.hook("onError", this.config.onError, failure);
    };
    try {
      const result = fn(...args);
      if (result && typeof (result as Promise<void>).then === "function")
        (result as Promise<void>).then(undefined, fail);
    } catch (error) {
      fail(error);
    }
  }
}

/**
 * Accept errors that belong to the connection being accepted, not to the
 * listener: accept(2) passes a pending network error of the new socket on
 * (ECONNABORTED, EPROTO, ENETDOWN...: the man page says to retry them like
 * EAGAIN), and Deno fails the accept when the socket was reset in the backlog
 * (ENOTCONN from its getpeername).
 */
const ONE_CONNECTION = new Set([
  "ENOTCONN",
  "ECONNABORTED",
  "ECONNRESET",
  "EPROTO",
  "EPERM",
  "ETIMEDOUT",
  "ENETDOWN",
  "ENETUNREACH",
  "EHOSTDOWN",
  "EHOSTUNREACH",
  "ENONET",
  "ENOPROTOOPT",
  "EOPNOTSUPP",
]);
/** A listener bound to one of these accepts on many local addresses: each connection's is its own. */
const WILDCARDS = new Set(["0.0.0.0", "::", "0:0:0:0:0:0:0:0"]);
/** `acceptFailed`: back-off after any other accept error (EMFILE, ENFILE, ENOBUFS, ENOMEM), doubling, reset by an accept. */
const ACCEPT_BACKOFF = { first: 10, max: 1000 };
/** `acceptFailed`: yield to the event loop once every this many accepts that failed for one connection each. */
const YIELD_EVERY = 64;

/** The key for `maxConnectionsPerAddress`: the remote IP, or `""` for a Unix client, which has none. */
function remoteKey(address: Address): string {
  return address.transport === "tcp" ? address.hostname : "";
}

/** Where a connection's errors happened: the TCP peer, or the server's own socket path for a Unix client. */
function peerOf(info: ConnectionInfo<Address>): Address {
  return info.remoteAddress.transport === "tcp" ? info.remoteAddress : info.localAddress;
}
