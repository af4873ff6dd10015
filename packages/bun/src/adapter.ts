/**
 * tcp-echo over Bun's native sockets (`Bun.listen`, `Bun.connect`: TCP, TLS and
 * Unix sockets; `Bun.udpSocket`: UDP), not Bun's `node:net` or `node:dgram` layer. The protocol, limits and
 * bookkeeping are core's; this file is only the table of how a Bun socket
 * carries them out.
 */

import { Buffer } from "node:buffer";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { stat, unlink } from "node:fs/promises";
import type { Address, SocketAddress, SocketInfo } from "@tcp-echo/core";
import {
  type AcceptedIO,
  type AfterIO,
  type ConnectConfig,
  type DatagramBindConfig,
  type DatagramEvents,
  type DatagramIO,
  type DialAttempt,
  type Dialed,
  datagramAddress,
  defineRuntime,
  echoError,
  isIPv4,
  isIPv6,
  type ListenConfig,
  type Listener,
  NO_EVENTS,
  PendingDial,
  type ServerCore,
  type SocketEvents,
  type TcpConnectConfig,
  type TlsServerConfig,
  tcpAddress,
  unixSocketInfo,
} from "@tcp-echo/core/adapter";
import type { Socket, SocketHandler, SocketListener, TLSOptions } from "bun";

// --- types ---

type BunSocket = Socket<BunSocketIO>;

// --- adapter ---

/**
 * The client's small-write batch goes out from one `setImmediate` instead of a
 * microtask per awaited `write()`: in `load --size 64 --connections 50
 * --in-flight 16` against the C echo server, 1.06x the chunks a second through
 * `write()` and 1.05x the echoes through `echo()` (5 interleaved pairs each);
 * ping-pong 0.99x (6), churn 0.98x (3), inside the noise.
 *
 * Bun's own `setImmediate`, taken when this module loads: fake timers that
 * replace the global (@sinonjs/fake-timers, vitest's) would otherwise hold the
 * batch, and every later small write of the connection behind it, until the
 * test moved its clock. (`bun:test`'s own `jest.useFakeTimers()` leaves
 * `setImmediate` real, as seen on Bun 1.4.5.)
 */
const afterIO: AfterIO = setImmediate;

export const { runtime, listen, connect } = defineRuntime({
  runtime: "bun",
  bind,
  dial,
  unixFs: { stat, unlink },
  datagram: { bind: bindDatagram, lookup: numeric },
  bytesEqual: (a, b) => Buffer.compare(a, b) === 0,
  afterIO,
});

// --- listen ---

async function bind(config: ListenConfig, server: ServerCore): Promise<Listener> {
  // Bun.listen reports a failed lookup as a bare "Failed to listen at <name>"
  // with no code, and keeps the name as its address: resolving first gives
  // ENOTFOUND from the lookup and the numeric address we really bound.
  const hostname = config.transport === "tcp" ? await numeric(config.hostname) : "";
  const secure = config.transport === "tcp" ? config.tls : undefined;
  const accept = (socket: BunSocket) => {
    const adapter = new BunSocketIO(socket);
    socket.data = adapter;
    adapter.events = server.accept(adapter);
    guard.check();
  };
  // Every handler is synchronous: a rejected async handler crashes Bun even
  // with an `error` handler.
  const handlers: SocketHandler<BunSocketIO> = {
    ...SOCKET_HANDLERS,
    open(socket) {
      // Bun turns TCP_NODELAY on by default (Node and Deno leave it off), on
      // accepted and dialed sockets alike: only turning it off takes a call.
      if (config.transport === "tcp" && !config.noDelay) socket.setNoDelay(false);
      // A TLS socket opens before its handshake: it is accepted once that succeeds.
      if (!secure) accept(socket);
    },
    handshake(socket, success, authorizationError) {
      // Without requestCert a client sends no certificate and Bun still
      // reports UNABLE_TO_GET_ISSUER_CERT here: only `success` counts then.
      if (success && !(secure?.requestCert && authorizationError)) accept(socket);
      else {
        server.reportError(authorizationError);
        socket.end();
      }
    },
    close(socket, error) {
      SOCKET_HANDLERS.close?.(socket, error);
      guard.released();
    },
  };
  // allowHalfOpen: without it Bun closes the descriptor right after the `end`
  // handler, and the echo still queued for a half-closed client is lost.
  // Over TLS the half-close is the same shutdown(): close_notify, then FIN.
  const guard = new AcceptGuard(
    (port) =>
      config.transport === "unix"
        ? Bun.listen<BunSocketIO>({ unix: config.path, allowHalfOpen: true, socket: handlers })
        : Bun.listen<BunSocketIO>({
            hostname,
            port,
            allowHalfOpen: true,
            socket: handlers,
            ...(config.reusePort ? { reusePort: true } : {}),
            ...(secure ? { tls: serverTls(secure) } : {}),
          }),
    config.transport === "tcp" ? config.port : 0,
    (error) => server.reportError(error),
  );
  return {
    address: config.transport === "unix" ? { transport: "unix", path: config.path } : tcpAddress(hostname, guard.port),
    // Stops accepting at once; open connections are core's to drain.
    close: () => guard.stop(),
  };
}

function serverTls(tls: TlsServerConfig): TLSOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca ? { ca: tls.ca } : {}),
    requestCert: tls.requestCert,
    rejectUnauthorized: tls.requestCert,
  };
}

/**
 * At the descriptor limit Bun's accept loop spins: the listening socket stays
 * readable, accept() fails with EMFILE, no handler is told, and a core burns at
 * 100% (https://github.com/oven-sh/bun/pull/32705). Since JavaScript never sees
 * those failures, the guard checks for a free descriptor after accepts and
 * once a second; when there is none it closes the listener, reports EMFILE, and
 * binds the same port again as soon as two descriptors are free (the listener's
 * and the next connection's): when a connection closes, or on a retry timer.
 * Clients arriving meanwhile are refused, as libuv's EMFILE handling resets them.
 */
class AcceptGuard {
  readonly port: number;
  private listener: SocketListener<BunSocketIO>;
  private readonly bind: (port: number) => SocketListener<BunSocketIO>;
  private readonly report: (error: unknown) => void;
  private readonly watch: ReturnType<typeof setInterval>;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private backoff = RETRY_MIN_MS;
  private paused = false;
  private stopped = false;

  constructor(bind: (port: number) => SocketListener<BunSocketIO>, port: number, report: (error: unknown) => void) {
    this.bind = bind;
    this.report = report;
    // Throws synchronously (EADDRINUSE with errno 98); startServer maps it.
    this.listener = bind(port);
    // The real port when 0 was asked for: a rebind takes the same one. A Unix
    // listener has none; stopping it removes its file and a rebind makes it again.
    this.port = (this.listener as { port?: number }).port ?? 0;
    this.watch = setInterval(() => this.probe(), WATCH_MS);
    this.watch.unref();
  }

  /** After an accept: stop accepting before the next accept can spin. */
  check(): void {
    // A probe is an open() and a close() per accept, a cost short connections
    // feel. Far from the limit, counting the free descriptors now and then says
    // how many accepts cannot reach it: half of them pass unprobed, leaving the
    // other half to descriptors opened elsewhere meanwhile (and the
    // once-a-second probe catches what neither foresaw). Close to it, every
    // accept is probed, and the count (a readdir as long as the descriptor
    // table) is taken again only after a run of probes that outweighs it. One
    // count serves the process: all its servers' accepts take from it.
    if (unchecked > 0) {
      unchecked--;
      return;
    }
    if (probing > 0) {
      probing--;
      this.probe();
      return;
    }
    const count = descriptorCount();
    if (count === undefined) {
      this.probe();
      return;
    }
    const spare = (count.limit - count.open - CLOSE_TO_LIMIT) >> 1;
    if (spare >= PROBE_RUN) {
      unchecked = spare;
      return;
    }
    probing = Math.max(PROBE_RUN, count.open >> 4);
    this.probe();
  }

  /** Once a second, and after each accept close to the limit. */
  probe(): void {
    if (this.paused || this.stopped) return;
    const failure = descriptorShortage(1);
    if (!failure) return;
    unchecked = 0;
    probing = 0;
    this.paused = true;
    this.listener.stop();
    this.report(failure);
    this.schedule();
  }

  /** A descriptor may be free again. */
  released(): void {
    if (!this.paused || this.stopped || descriptorShortage(2)) return;
    try {
      this.listener = this.bind(this.port);
    } catch (error) {
      this.report(error);
      return;
    }
    this.paused = false;
    this.backoff = RETRY_MIN_MS;
    clearTimeout(this.retry);
    this.retry = undefined;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.watch);
    clearTimeout(this.retry);
    if (!this.paused) this.listener.stop();
  }

  /** Descriptors can also be freed outside this server; this timer keeps the process alive while paused. */
  private schedule(): void {
    this.retry = setTimeout(() => {
      this.released();
      if (this.paused && !this.stopped) this.schedule();
    }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, RETRY_MAX_MS);
  }
}

const WATCH_MS = 1000;
/** `AcceptGuard.check`: this close to the descriptor limit, every accept is followed by a probe. */
const CLOSE_TO_LIMIT = 64;
/** `AcceptGuard.check`: the fewest accepts between two counts of the descriptors. */
const PROBE_RUN = 64;
/** `AcceptGuard.check`: accepts, by any server in this process, that need no probe. */
let unchecked = 0;
/** `AcceptGuard.check`: accepts to probe, one by one, before the descriptors are counted again. */
let probing = 0;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;

// --- connect ---

/**
 * Every dial shares one handler table (`DIAL_HANDLERS`); what is its own
 * rides in the socket's `data`, a `BunDial` until the socket is ready and its
 * `BunSocketIO` after. A table per connect (a spread of `SOCKET_HANDLERS` and
 * four closures) was most of what our client allocated per connection.
 */
function dial(config: ConnectConfig, events: SocketEvents, attempt: DialAttempt): Promise<Dialed> {
  return new Promise((resolve, reject) => {
    // Bun.connect cannot be cancelled before it opens: an abort rejects now,
    // and a socket that opens afterwards is closed at once.
    attempt.onAbort = reject;
    const data = new BunDial(config, events, attempt, resolve, reject) as unknown as BunSocketIO;
    const dialing =
      config.transport === "unix"
        ? Bun.connect<BunSocketIO>({ unix: config.path, allowHalfOpen: true, data, socket: DIAL_HANDLERS })
        : Bun.connect<BunSocketIO>({ ...tcpTarget(config), allowHalfOpen: true, data, socket: DIAL_HANDLERS });
    dialing.catch(reject);
  });
}

/**
 * A dialing socket's `data`. Until the socket is ready `SOCKET_HANDLERS` see
 * this in its place, so it answers for a `BunSocketIO`: its `events` are its
 * own, of which only an error means anything (it fails the dial).
 */
class BunDial extends PendingDial {
  readonly events: SocketEvents = this;
  ended = false;
  readonly attempt: DialAttempt;

  constructor(
    config: ConnectConfig,
    events: SocketEvents,
    attempt: DialAttempt,
    resolve: (dialed: Dialed) => void,
    reject: (error: unknown) => void,
  ) {
    super(config, events, resolve, reject);
    this.attempt = attempt;
  }

  /** The socket is open (TLS: its handshake done and the certificate checked): hand it to core. */
  ready(socket: BunSocket): void {
    const adapter = new BunClientIO(socket);
    adapter.events = this.connection;
    socket.data = adapter;
    this.resolve({ info: infoOf(socket, this.config, "client"), io: adapter });
  }

  flush(): void {}
}

/** Where Bun.connect goes over TCP: the host and port, with TLS options if asked. */
function tcpTarget(config: TcpConnectConfig): { hostname: string; port: number; tls?: TLSOptions } {
  const { hostname, port, tls } = config;
  if (!tls) return { hostname, port };
  return {
    hostname,
    port,
    tls: {
      rejectUnauthorized: true,
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
      // An IP literal has no SNI (`sni` is unset); Bun checks it against the certificate as the hostname.
      ...(tls.sni ? { serverName: tls.sni } : {}),
    },
  };
}

// --- socket ---

/**
 * Handlers every socket shares; each forwards to the socket's `BunSocketIO`
 * (in `socket.data`, set by `open`), so the hot path allocates nothing.
 */
const SOCKET_HANDLERS: SocketHandler<BunSocketIO> = {
  data(socket, chunk) {
    socket.data.events.onData(chunk);
  },
  drain(socket) {
    socket.data.flush();
  },
  end(socket) {
    socket.data.ended = true;
    socket.data.events.onEnd();
  },
  // A reset arrives here as `error` (ECONNRESET), not through the `error` handler.
  close(socket, error) {
    const adapter = socket.data;
    // Not yet ready (a dial's failed handshake): the dial has its error already.
    if (!(adapter instanceof BunSocketIO)) return;
    const { events } = adapter;
    const peerFin = !error && adapter.state === "write-shut" && !adapter.ended;
    adapter.state = "closed";
    if (error) events.onError(error);
    // After our shutdown(), the peer's FIN closes the socket without calling
    // `end` (uSockets' eof branch for a shut-down socket; see
    // https://github.com/oven-sh/bun/pull/35947): report the EOF ourselves.
    else if (peerFin) events.onEnd();
    events.onClose();
  },
  // Called when a handler throws.
  error(socket, error) {
    socket.data?.events.onError(error);
  },
};

/** A socket's `data` while it dials. */
const dialOf = (socket: BunSocket) => socket.data as unknown as BunDial;

const DIAL_HANDLERS: SocketHandler<BunSocketIO> = {
  ...SOCKET_HANDLERS,
  open(socket) {
    const dial = dialOf(socket);
    if (dial.attempt.aborted) {
      socket.terminate();
      return;
    }
    const { config } = dial;
    if (config.transport === "tcp" && !config.noDelay) socket.setNoDelay(false);
    // A TLS socket is ready once its handshake is done and the certificate checked.
    if (config.transport === "unix" || config.tls === undefined) dial.ready(socket);
  },
  // A failed check (unknown CA, wrong name) arrives here, not in
  // connectError, and Bun closes the socket after it.
  handshake(socket, success, authorizationError) {
    const dial = dialOf(socket);
    if (dial.attempt.aborted) return;
    if (success && !authorizationError) dial.ready(socket);
    else dial.reject(authorizationError ?? new Error("TLS handshake failed"));
  },
  // With this handler the rejected Bun.connect promise is not reported as
  // unhandled; the error (ECONNREFUSED, ENOTFOUND) carries its code.
  connectError(socket, error) {
    dialOf(socket).reject(error);
  },
};

/**
 * How core's protocol maps onto a Bun socket: this is core's `SocketIO`, and
 * `SOCKET_HANDLERS` feed the socket's events to `events`.
 *
 * `socket.write` does not buffer: it returns how many bytes the kernel took (0
 * when its buffer is full, -1 once closed). What it leaves is queued here and
 * written on `drain`; core counts queued bytes as unflushed, so its high-water
 * mark pauses reading while the queue is long. Ignoring the count drops data,
 * and queueing without pausing grows memory without bound.
 */
class BunSocketIO implements AcceptedIO {
  events: SocketEvents = NO_EVENTS;
  /** "write-shut" after our shutdown(); "closing" once we end() it; "closed" once Bun reports `close`. */
  state: "open" | "write-shut" | "closing" | "closed" = "open";
  /** The `end` handler ran. */
  ended = false;
  private readonly socket: BunSocket;
  /**
   * Bytes handed to `write` that the kernel has not taken yet, oldest first
   * from `head`; made at the first short write, so an idle connection holds none.
   */
  private queue: Uint8Array[] | undefined;
  private head = 0;

  constructor(socket: BunSocket) {
    this.socket = socket;
  }

  /**
   * Asked by core only when something needs it (see `AcceptedIO`). Bun makes
   * the address string at the first read and keeps it on the socket (its getter
   * is `cache: true` in sockets.classes.ts), so an unasked one costs nothing.
   */
  remoteAddress(): SocketAddress {
    return tcpAddress(this.socket.remoteAddress, this.socket.remotePort);
  }

  localAddress(): SocketAddress {
    return tcpAddress(this.socket.localAddress, this.socket.localPort);
  }

  write(chunk: Uint8Array): void {
    const queue = this.queue;
    if (queue === undefined || this.head === queue.length) {
      const written = this.socket.write(chunk);
      // The fast path: an empty queue and a kernel that takes everything.
      if (written === chunk.byteLength) {
        this.events.onFlushed(written);
        return;
      }
      if (written < 0) {
        this.writeFailed();
        return;
      }
      const rest = written === 0 ? chunk : chunk.subarray(written);
      if (queue === undefined) this.queue = [rest];
      else queue.push(rest);
      if (written > 0) this.events.onFlushed(written);
      return;
    }
    queue.push(chunk);
  }

  /** `drain`: the kernel has room again. */
  flush(): void {
    const queue = this.queue;
    if (queue === undefined) return;
    while (this.head < queue.length) {
      const chunk = queue[this.head] as Uint8Array;
      const written = this.socket.write(chunk);
      if (written < 0) {
        this.writeFailed();
        return;
      }
      const whole = written === chunk.byteLength;
      // Settle the queue before telling core: onFlushed may call close() at once.
      if (whole) queue[this.head++] = EMPTY;
      else queue[this.head] = chunk.subarray(written);
      if (written > 0) this.events.onFlushed(written);
      if (!whole) return;
    }
    // Kept once made: a connection that filled the kernel's buffer once will again.
    queue.length = 0;
    this.head = 0;
  }

  /**
   * `write` returns -1 once the socket is closed (the `close` handler reports
   * that), and also when send() fails because the peer reset the connection
   * between our read and this write. Then Bun neither closes the socket nor
   * calls `close` until a read fails too; core pauses reading (the bytes count
   * as unflushed), so no read comes and the connection was held for good (the
   * faults suite's reset-server fault, under load). Fail it here, once the
   * current handler has returned (core is mid-write). Bun does not say why
   * send() failed (https://github.com/oven-sh/bun/pull/36422); a reset is what
   * makes it fail on an open socket, and what every other path reports for one.
   */
  private writeFailed(): void {
    queueMicrotask(() => {
      if (this.state === "open" || this.state === "write-shut")
        this.events.onError(echoError("ECONNRESET", { operation: "write" }));
    });
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /**
   * `shutdown()` is the half-close (SHUT_WR); Bun's `end()` closes both
   * directions. Core calls either only once the queue is flushed (it counts
   * queued bytes as unflushed), so neither waits for it here.
   */
  closeWrite(): void {
    if (this.state !== "open") return;
    this.state = "write-shut";
    this.socket.shutdown();
  }

  /** Bun's `end()` closes both directions and runs the `close` handler before it returns. */
  close(): void {
    if (this.state === "closing" || this.state === "closed") return;
    this.state = "closing";
    this.socket.end();
  }

  /**
   * Close now, dropping what is queued. Not `end()`: over TLS that sends
   * close_notify and keeps the descriptor (and the `close` handler) until the
   * peer answers, so an idle-timed-out peer that holds its side open would keep
   * the connection forever. `close()` sends close_notify and FIN and lets go at
   * once (https://github.com/oven-sh/bun/pull/41711 describes the same deferral).
   */
  destroy(): void {
    // Emptied in place: `flush` may be looping over it (onFlushed can destroy).
    if (this.queue) this.queue.length = 0;
    this.head = 0;
    if (this.state === "closed") return;
    this.state = "closing";
    this.socket.close();
  }
}

const EMPTY = new Uint8Array(0);

/**
 * A dialed socket's `BunSocketIO`: its large writes that continue one another
 * in memory (adjacent views of one buffer, as a stream written in slices is) go
 * out as one `write` at the end of the tick. Bun has no writev, and each send()
 * with room in the window transmits at once, waking the peer: with 1 MiB in
 * flight on loopback, 256 KiB writes cost a quarter less CPU per MB than 64 KiB
 * ones. A server's echo is a fresh buffer per read, never adjacent: its
 * sockets keep the plain `write`.
 */
class BunClientIO extends BunSocketIO {
  /** The last large view written this tick, which the next one may continue; cleared at the end of the tick. */
  private last: Uint8Array | undefined;
  /** Views that continued `last`, as one view, to write at the end of the tick. */
  private tail: Uint8Array | undefined;
  private tickEnding = false;

  /**
   * A large write is sent at once, unless it continues the last one written
   * this tick: then it waits in `tail` for the end of the tick (a
   * `setImmediate`, after the microtasks in which a stream's writer and reader
   * take turns), with those that continue it. Only adjacent writes wait, so a
   * write alone (an echo, a request) goes out as before.
   */
  override write(chunk: Uint8Array): void {
    if (chunk.byteLength >= MERGE_BYTES) {
      const last = this.last;
      this.last = chunk;
      if (
        last !== undefined &&
        chunk.byteOffset === last.byteOffset + last.byteLength &&
        chunk.buffer === last.buffer
      ) {
        const tail = this.tail;
        this.tail =
          tail === undefined
            ? chunk
            : new Uint8Array(chunk.buffer, tail.byteOffset, tail.byteLength + chunk.byteLength);
        return;
      }
      if (!this.tickEnding) {
        this.tickEnding = true;
        setImmediate(this.endTick);
      }
    }
    // What waits goes first: the bytes stay in order.
    if (this.tail !== undefined) this.flushTail();
    super.write(chunk);
  }

  override destroy(): void {
    this.tail = undefined;
    super.destroy();
  }

  private readonly endTick = (): void => {
    this.tickEnding = false;
    this.last = undefined;
    if (this.tail !== undefined) this.flushTail();
  };

  private flushTail(): void {
    const tail = this.tail as Uint8Array;
    this.tail = undefined;
    // Closed by the peer meanwhile: `close` has reported it.
    if (this.state !== "closed") super.write(tail);
  }
}

/** `BunClientIO.write`: writes from this size may wait to merge; core gathers smaller ones itself (COALESCE_BYTES). */
const MERGE_BYTES = 16 * 1024;

// --- datagram ---

async function bindDatagram(config: DatagramBindConfig, events: DatagramEvents): Promise<DatagramIO> {
  // `send` takes numeric addresses only (no DNS on the hot path), and so does the bind's report.
  const socket = await Bun.udpSocket({
    hostname: await numeric(config.hostname),
    port: config.port,
    socket: {
      // `flags.truncated`: the kernel cut the datagram to Bun's receive buffer (MSG_TRUNC).
      data: (_socket, data, port, address, flags) => events.onDatagram(data, address, port, flags.truncated),
      error: (_socket, error) => events.onError(error),
    },
  });
  return {
    address: datagramAddress(socket.address.address, socket.address.port),
    // Bun queues nothing: `send` is one sendto(), false when the kernel's send
    // buffer is full (EAGAIN), so the kernel's buffer is the send queue here and
    // `config.sendQueue` has nothing to bound. It throws for EMSGSIZE, EAFNOSUPPORT.
    send: (data, address, port) => socket.send(data, port, address),
    close: () => socket.close(),
  };
}

// --- utils ---

/** The EMFILE or ENFILE error if `count` more descriptors cannot be opened now; `undefined` if they can. */
function descriptorShortage(count: number): Error | undefined {
  const opened: number[] = [];
  try {
    for (let i = 0; i < count; i++) opened.push(openSync("/dev/null", "r"));
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "EMFILE" || code === "ENFILE") return error as Error;
  } finally {
    for (const fd of opened) closeSync(fd);
  }
  return undefined;
}

/**
 * RLIMIT_NOFILE's soft limit and the descriptors open, from /proc (the limit
 * read each time: setrlimit may change it); `undefined` where there is no
 * /proc (not Linux), where every accept is probed instead.
 */
function descriptorCount(): { limit: number; open: number } | undefined {
  if (noProc) return undefined;
  try {
    const limits = readFileSync("/proc/self/limits", "latin1");
    const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
    // readdir's own descriptor is listed too.
    const open = readdirSync("/proc/self/fd").length - 1;
    if (soft !== undefined) return { limit: soft === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(soft), open };
  } catch {}
  noProc = true;
  return undefined;
}
let noProc = false;

/** The numeric address for `hostname`: itself for an IP literal, else the first the resolver returns. */
async function numeric(hostname: string): Promise<string> {
  if (isIPv4(hostname) || isIPv6(hostname)) return hostname;
  const [first] = await Bun.dns.lookup(hostname, {});
  return first?.address ?? hostname;
}

function infoOf(
  socket: BunSocket,
  config: ListenConfig | ConnectConfig,
  side: "server" | "client",
): SocketInfo<Address> {
  if (config.transport === "unix") return unixSocketInfo(config.path, side);
  // Dialled by its IPv4 literal, the peer is that address: no getpeername(),
  // which Bun makes for remoteAddress and again for remotePort. (A connect to
  // 0.0.0.0 reaches a local address, which only the socket knows.)
  const dialled = side === "client" && isIPv4(config.hostname) && config.hostname !== "0.0.0.0";
  return {
    localAddress: tcpAddress(socket.localAddress, socket.localPort),
    remoteAddress: dialled
      ? tcpAddress(config.hostname, config.port)
      : tcpAddress(socket.remoteAddress, socket.remotePort),
  };
}
