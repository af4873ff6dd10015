/**
 * The public contract of tcp-echo: every runtime package (`@tcp-echo/node`,
 * `@tcp-echo/bun`, `@tcp-echo/deno`) exports `listen` and `connect` with exactly
 * these shapes. A newcomer should be able to learn the whole API from this file.
 *
 * The protocol is RFC 862: the server writes back every byte it receives, in
 * order, until the client closes. After the client half-closes (FIN), the server
 * finishes echoing what it has, then closes its side too.
 *
 * Names follow the WinterTC Sockets API where that costs nothing (`hostname`,
 * `port`, `opened`, `closed`, `readable`, `writable`, `close()`), and the
 * Node/Bun/Deno vocabulary elsewhere (`closeWrite()` is Deno's name for the
 * half-close; WinterTC has no standalone half-close).
 */

import type { EchoError } from "./_errors.ts";

/** Which runtime implementation is answering. */
export type Runtime = "node" | "bun" | "deno";

/** A TCP endpoint. `family` is what the socket really is, not what was asked for. */
export interface SocketAddress {
  readonly transport: "tcp";
  /** Numeric address without brackets: `127.0.0.1`, `::1`. */
  readonly hostname: string;
  readonly port: number;
  readonly family: "IPv4" | "IPv6";
}

/**
 * A Unix domain socket. `path` is the path the server was given, as given; the
 * client end of a connection has no path (`""`).
 */
export interface UnixAddress {
  readonly transport: "unix";
  readonly path: string;
}

/** Any endpoint: TCP (plain or TLS) or a Unix domain socket. */
export type Address = SocketAddress | UnixAddress;

/** Both ends of an open connection (WinterTC's `SocketInfo`). TCP unless `A` says otherwise. */
export interface SocketInfo<A extends Address = SocketAddress> {
  readonly localAddress: A;
  readonly remoteAddress: A;
}

/**
 * TLS for a server. PEM text (strings or file contents as bytes); core has no
 * file APIs, so the CLI reads `--tls-cert FILE` through its runtime first.
 */
export interface TlsServerOptions {
  /** The server's certificate chain, leaf first. */
  cert: string | Uint8Array;
  key: string | Uint8Array;
  /**
   * CA certificates that sign client certificates; needed with `requestCert`.
   * @default undefined
   */
  ca?: string | Uint8Array;
  /**
   * Mutual TLS: require a client certificate signed by `ca` and reject a client
   * without one. Not available on Deno (`Deno.listenTls` cannot ask for one).
   * @default false
   */
  requestCert?: boolean;
}

/** TLS for a client. With no `ca` the runtime's built-in roots are trusted. */
export interface TlsClientOptions {
  /**
   * CA certificates (PEM) that sign the server's certificate, trusted in addition to the built-in roots.
   * @default undefined (the built-in roots only)
   */
  ca?: string | Uint8Array;
  /**
   * The name the server's certificate must carry (and SNI).
   * @default hostname
   */
  serverName?: string;
  /**
   * A client certificate and key, for a server that asks for one (mutual TLS).
   * @default undefined
   */
  cert?: string | Uint8Array;
  /** @default undefined */
  key?: string | Uint8Array;
}

// --- server ---------------------------------------------------------------

/** A TCP server (plain, or TLS with `tls`). The default transport. */
export interface ListenOptions extends ServerOptions<SocketAddress> {
  /** @default "tcp" */
  transport?: "tcp";
  /**
   * Address to bind: loopback only by default. `::1` and `[::1]` are both accepted (`address.hostname` is `::1`).
   * @default "127.0.0.1"
   */
  hostname?: string;
  /**
   * Port to bind, 0 asks the OS for a free one. The default is the tutorial's port.
   * @default 12345
   */
  port?: number;
  /**
   * TCP_NODELAY on every accepted connection. On by default: an echo is
   * latency-bound, and runtimes disagree on the default (Bun on, Node and Deno off),
   * so we always set it explicitly.
   * @default true
   */
  noDelay?: boolean;
  /**
   * Serve TLS on this port instead of plain TCP.
   * @default undefined (plain TCP)
   */
  tls?: TlsServerOptions;
  /**
   * Behind a balancer: every connection must start with a PROXY protocol
   * header, v1 (text) or v2 (binary), as HAProxy's doc/proxy-protocol.txt
   * specifies. The header is never echoed; the connection's `remoteAddress` and
   * `localAddress` become the original client's and the address it connected
   * to, so hooks, logs and `maxConnectionsPerAddress` see the real client (the
   * balancer's end is in `via`). A `LOCAL` header (a health check) or `UNKNOWN`
   * keeps the real endpoints. A connection from outside `proxyFrom`, with an
   * invalid header, or without one within `proxyHeaderTimeout`, is closed before
   * any byte is echoed and reported with `EPROTO`. Not with `tls` (the header
   * comes before the handshake, which the runtime's TLS owns).
   * @default false (a PROXY header is ordinary data, echoed like any other)
   */
  proxyProtocol?: boolean;
  /**
   * With `proxyProtocol`: the balancers whose headers are believed, as CIDR
   * blocks or single addresses (`["10.0.0.0/8", "fd00::/8", "192.0.2.7"]`).
   * An IPv4 block also matches the IPv4-mapped form (`::ffff:10.1.2.3`).
   * @default ["127.0.0.0/8", "::1/128"] (loopback)
   */
  proxyFrom?: readonly string[];
  /**
   * With `proxyProtocol`: how long a connection may take to send its whole
   * header, in ms (the spec's advice is 3 s).
   * @default 3000
   */
  proxyHeaderTimeout?: number;
  /**
   * SO_REUSEPORT: other processes (or threads) may listen on the same address
   * and port, and Linux spreads new connections across them; what
   * `serve --workers` is built on. Node needs 22.12 or later; Deno needs
   * `--unstable-net` (Deno marks the option unstable); Bun has it.
   * @default false
   */
  reusePort?: boolean;
}

/**
 * A Unix domain socket server. A stale socket file left by a crashed server is
 * removed (a live one is `EADDRINUSE`); the file is removed on close. The path
 * is at most 107 bytes on Linux, in a directory that exists (`EINVAL` otherwise).
 */
export interface UnixListenOptions extends ServerOptions<UnixAddress> {
  transport: "unix";
  path: string;
}

/** What every server takes, whatever its transport. */
export interface ServerOptions<A extends Address = SocketAddress> {
  /**
   * Per-connection high-water mark in bytes. While more than this many received
   * bytes are not yet written back, the server stops reading from that peer, so
   * a peer that never reads costs at most about this much memory (plus the read
   * in progress), the same on every runtime.
   * @default 262144 (256 KiB)
   */
  highWaterMark?: number;
  /**
   * Connections served at once; one more is closed at accept. 0 means no limit.
   * @default 10000
   */
  maxConnections?: number;
  /**
   * Connections served at once from one remote IP; 0 means no limit. Unix sockets have no remote IP: not applied.
   * @default 0
   */
  maxConnectionsPerAddress?: number;
  /**
   * Close a connection with no bytes in either direction for this many ms. 0 disables.
   * @default 300000 (5 min)
   */
  idleTimeout?: number;
  /**
   * How long `close()` lets open connections finish before forcing them, in ms.
   * @default 10000
   */
  drainTimeout?: number;
  /**
   * Aborting the signal closes the server, as `close()` does.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * A new connection was accepted.
   * @default undefined
   */
  onConnection?: (connection: ConnectionInfo<A>) => void | Promise<void>;
  /**
   * A connection ended, for any reason, including rejection at accept by a limit.
   * @default undefined
   */
  onClose?: (connection: ConnectionSummary<A>) => void | Promise<void>;
  /**
   * Something went wrong: on one connection (then `connection` is set) or in the
   * server itself, including a hook that threw or rejected. Errors never stop the
   * server; this hook is where they are reported.
   * @default undefined
   */
  onError?: (error: EchoError, connection?: ConnectionInfo<A>) => void | Promise<void>;
}

export interface ConnectionInfo<A extends Address = SocketAddress> extends SocketInfo<A> {
  /** Unique per server, increasing from 1. */
  readonly id: number;
  /** `Date.now()` at accept. */
  readonly openedAt: number;
  /**
   * Set when a PROXY protocol header (`proxyProtocol`) named the original
   * connection: the balancer's own connection to us. `remoteAddress` and
   * `localAddress` above are then the client's and the address it reached.
   * @default undefined
   */
  readonly via?: SocketInfo<A>;
}

/** Why a server-side connection ended. */
export type CloseReason =
  /** The peer half-closed and everything was echoed back: the normal end. */
  | "eof"
  /** The connection failed (reset, broken pipe...): see `error`. */
  | "error"
  /** No bytes either way for `idleTimeout` ms. */
  | "idle-timeout"
  /** Refused at accept by `maxConnections` or `maxConnectionsPerAddress`. */
  | "limit"
  /** Forced closed by `close({ force: true })`, an abort, or the drain timeout. */
  | "server-close";

export interface ConnectionSummary<A extends Address = SocketAddress> extends ConnectionInfo<A> {
  readonly reason: CloseReason;
  /** Bytes received from the peer. */
  readonly bytesIn: number;
  /** Bytes written back to the peer. */
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly error?: EchoError;
}

/** Counters since the server started. All are plain numbers, cheap to read. */
export interface ServerStats {
  /** Connections open now. */
  readonly active: number;
  /** Connections accepted and served (not counting rejected ones). */
  readonly accepted: number;
  /** Connections closed at accept by a limit. */
  readonly rejected: number;
  /** Connections closed by the idle timeout. */
  readonly idleClosed: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Errors seen, by code (`ECONNRESET: 3`). */
  readonly errors: Readonly<Record<string, number>>;
}

export interface CloseOptions {
  /**
   * Close every connection now instead of letting them finish.
   * @default false
   */
  force?: boolean;
  /**
   * Overrides `drainTimeout` for this call, in ms.
   * @default the server's drainTimeout
   */
  timeout?: number;
}

/** A running server; `A` is its transport's address type (TCP unless it was started with `transport: "unix"`). */
export interface EchoServer<A extends Address = SocketAddress> extends AsyncDisposable {
  readonly runtime: Runtime;
  /** The bound address, with the real port when 0 was asked for, the hostname as given (`::1`, never `[::1]`). */
  readonly address: A;
  /** Connections open now (same as `stats.active`). */
  readonly connections: number;
  readonly stats: ServerStats;
  /**
   * Stops accepting at once, lets open connections finish their echo for up to
   * `drainTimeout` ms, then forces the rest closed. Resolves when every
   * connection is gone. Idempotent: a second call returns the same promise
   * (or forces, if it passes `force: true`).
   */
  close(options?: CloseOptions): Promise<void>;
  /** Resolves once the server is fully closed, however that happened. Never rejects. */
  readonly closed: Promise<void>;
}

// --- client ---------------------------------------------------------------

/** A TCP connection (plain, or TLS with `tls`). The default transport. */
export interface ConnectOptions extends ClientOptions {
  /** @default "tcp" */
  transport?: "tcp";
  /**
   * Server to connect to. `::1` and `[::1]` are both accepted.
   * @default "127.0.0.1"
   */
  hostname?: string;
  /** @default 12345 */
  port?: number;
  /**
   * TCP_NODELAY.
   * @default true
   */
  noDelay?: boolean;
  /**
   * Speak TLS; `true` trusts only the runtime's built-in roots and checks `hostname`.
   * @default undefined (plain TCP)
   */
  tls?: TlsClientOptions | true;
}

/** A connection to a Unix domain socket server. */
export interface UnixConnectOptions extends ClientOptions {
  transport: "unix";
  path: string;
}

/** What every client takes, whatever its transport. */
export interface ClientOptions {
  /**
   * Give up connecting after this many ms with `ETIMEDOUT`. 0 waits for the OS.
   * @default 10000
   */
  timeout?: number;
  /**
   * Bytes the client buffers before `write()` waits, and echoed bytes it holds
   * for `read()` before it stops reading.
   * @default 262144 (256 KiB)
   */
  highWaterMark?: number;
  /**
   * How long `close()` waits for the bytes already written to reach the server
   * before it closes the connection without them, in ms. 0 makes `close()` an
   * abort: the connection closes at once and what is queued is dropped.
   * @default 10000
   */
  drainTimeout?: number;
  /**
   * Aborting cancels the connect, or closes the connection once open.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Time without progress, in ms: fail the connection with `ETIMEDOUT` when it is
   * waiting on the server (bytes sent and not yet echoed, or the server's close
   * after `closeWrite()`) and no byte has arrived for this long. Time spent with
   * echoed bytes waiting for `read()` does not count: a slow reader is not a
   * silent server. It bounds `closed`, which otherwise waits for the server as
   * long as the OS keeps the connection. Everything received before the timeout
   * has already been delivered to `read()` or matched. 0 disables.
   * @default 0
   */
  replyTimeout?: number;
}

export interface EchoOptions {
  /**
   * Reject with `ETIMEDOUT` if the whole echo has not come back in this many ms; 0 means no limit.
   * @default 0
   */
  timeout?: number;
  /**
   * Aborting rejects this echo with `EABORTED` (and fails the connection, as a timeout does).
   * @default undefined
   */
  signal?: AbortSignal;
}

/**
 * A client connection to an echo server.
 *
 * Every byte sent, by `echo()` or `write()`, is expected back in order, and every
 * byte received is checked against what was sent: a server that returns
 * different, extra or too few bytes fails the connection with `EPROTO`.
 *
 * A timed-out or aborted `echo()` fails the whole connection, because the byte
 * stream can no longer be matched to the calls that follow it.
 */
export interface EchoConnection<A extends Address = SocketAddress> extends AsyncDisposable {
  readonly runtime: Runtime;
  readonly localAddress: A;
  readonly remoteAddress: A;
  /** Already resolved: `connect()` only returns open connections. Kept for WinterTC parity. */
  readonly opened: Promise<SocketInfo<A>>;
  /** Resolves when the connection is fully closed; rejects with the error that closed it. */
  readonly closed: Promise<void>;

  /**
   * Sends `payload` (strings as UTF-8) and resolves with a `Uint8Array` holding
   * exactly the echoed bytes, once every one of them has been verified equal to
   * `payload`. When `payload` is a `Uint8Array` it is `payload` itself (the same
   * object, not a copy), so copy it before reusing that buffer; a string's is its
   * UTF-8 encoding. Calls may overlap: they are sent and matched in call order
   * (pipelining). Do not modify a `Uint8Array` payload until its echo resolves.
   */
  echo(payload: Uint8Array | string, options?: EchoOptions): Promise<Uint8Array>;

  /**
   * Streaming: sends bytes whose echo is delivered by `read()` instead of an
   * `echo()` promise. Resolves once the client's buffer is below its high-water
   * mark, so `await`ing each write gives backpressure (while it is below, the
   * promise is one settled promise that every such write returns: do not tell
   * writes apart by it). Writes under 16 KiB are copied and gathered: they go
   * out together from one `setImmediate` (Node, Bun: after the callbacks and
   * timers already due), or once three microtask turns in a row add nothing (Deno),
   * so an `await`ed loop of small writes, directly, through an `async` helper
   * or through `writable.getWriter()`, is one socket write of up to 16 KiB,
   * sent without the event loop blocking on I/O. A larger `Uint8Array` is sent as
   * it is, and `read()` later returns views of it: do not modify it until
   * `read()` has returned its echo.
   */
  write(data: Uint8Array | string): Promise<void>;
  /**
   * The next echoed chunk of `write()` data, or `null` once the server has
   * closed its side. Each chunk is verified equal to what was written, and is
   * a view of the written bytes (a copy of ours for small writes), never of
   * the socket's read buffer: keep it as long as you like. Chunks do not keep
   * `write()` boundaries: small writes gathered into one copy come back as one.
   */
  read(): Promise<Uint8Array | null>;
  /** `write()` and `read()` as web streams. Closing the writable half-closes. */
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;

  /** Half-close: sends FIN after everything written so far; echoes keep arriving. */
  closeWrite(): Promise<void>;
  /**
   * Graceful and bounded, the same on every runtime. At once: `echo()` and
   * `write()` are refused with `ECLOSED`, pending echoes reject with `ECLOSED`
   * (their bytes are still sent), `read()` returns `null`, and echoed bytes are
   * read and discarded. Every byte already passed to `write()` or `echo()` is then
   * sent, followed by FIN, and the socket is released once the server has echoed
   * all of it or closed its side: releasing a socket while its echo still arrives
   * makes the kernel send RST and drop what it has not sent yet. A `write()` still
   * waiting resolves as its bytes go out.
   *
   * If that takes longer than `drainTimeout` (a server that stops reading), the
   * socket is closed at once, what is still queued is dropped, and `closed` and
   * any waiting `write()` reject with `ETIMEDOUT`. The returned promise resolves
   * once the socket is released, however that happened, and never rejects.
   * Idempotent: a second call waits for the same close.
   */
  close(): Promise<void>;
}

/**
 * What every runtime package exports. The overloads give a TCP server or
 * connection (`address.port`) unless `transport: "unix"` or `"udp"` is asked for.
 */
export interface EchoRuntime {
  readonly runtime: Runtime;
  listen(options: UnixListenOptions): Promise<EchoServer<UnixAddress>>;
  listen(options: DatagramListenOptions): Promise<EchoDatagramServer>;
  listen(options?: ListenOptions): Promise<EchoServer>;
  connect(options: UnixConnectOptions): Promise<EchoConnection<UnixAddress>>;
  connect(options: DatagramConnectOptions): Promise<EchoDatagramClient>;
  connect(options?: ConnectOptions): Promise<EchoConnection>;
}

// --- UDP ------------------------------------------------------------------
//
// RFC 862's other half: "when a datagram is received, the data from it is sent
// back in an answering datagram". Each datagram is echoed whole, as one
// datagram, to the address and port it came from: 0 bytes up to 65,507 over
// IPv4 and 65,527 over IPv6, never truncated.
//
// An echo service on UDP is a reflector (a spoofed source makes it send to a
// victim; two echo services can be made to answer each other forever,
// CVE-1999-0103), so a server is safe to expose by default: datagrams from
// source ports below 1024 are dropped, every source address has a token
// bucket and so does the server as a whole, and what is over a limit is
// dropped and counted, never queued.

/** A UDP endpoint. `family` is what the socket really is. */
export interface DatagramAddress {
  readonly transport: "udp";
  /** Numeric address without brackets: `127.0.0.1`, `::1`. */
  readonly hostname: string;
  readonly port: number;
  readonly family: "IPv4" | "IPv6";
}

/**
 * A token bucket in datagrams and in payload bytes. Each bucket holds one
 * second's worth and starts full, so after a quiet second this many may
 * arrive at once. A datagram passes only if both buckets have room for it
 * (a datagram larger than the byte bucket is charged a full bucket).
 */
export interface DatagramRateLimit {
  /** Datagrams a second; 0: no limit on the count. */
  datagramsPerSecond: number;
  /** Payload bytes a second; 0: no limit on bytes. */
  bytesPerSecond: number;
}

/** Why a datagram was not echoed. Each has a counter in `stats.dropped`. */
export type DatagramDropReason =
  /** From a source port below 1024 (the reflector guard; `allowPrivilegedSourcePorts` lifts it). */
  | "sourcePort"
  /** Its source address was over `sourceRateLimit`. */
  | "sourceRate"
  /** The server as a whole was over `rateLimit`. */
  | "rate"
  /** The runtime's socket could not take the echo now (`sendQueue` echoes were waiting already). */
  | "sendQueue"
  /** It came in cut short by the runtime (echoing part of it would be wrong). */
  | "truncated";

/** A UDP echo server: `listen({ transport: "udp" })`. */
export interface DatagramListenOptions {
  transport: "udp";
  /**
   * Address to bind: loopback only by default. `::1` and `[::1]` are both accepted.
   * @default "127.0.0.1"
   */
  hostname?: string;
  /**
   * Port to bind, 0 asks the OS for a free one.
   * @default 12345
   */
  port?: number;
  /**
   * Echo datagrams from source ports below 1024 too. Off by default: those are
   * other services (echo, chargen...), the classic reflection loop.
   * @default false
   */
  allowPrivilegedSourcePorts?: boolean;
  /**
   * The token bucket of each source address (IP, whatever its port). `false` turns it off.
   * @default { datagramsPerSecond: 1000, bytesPerSecond: 1048576 } (1 MiB/s)
   */
  sourceRateLimit?: DatagramRateLimit | false;
  /**
   * The token bucket of the whole server, whatever the sources. `false` turns it off.
   * @default { datagramsPerSecond: 20000, bytesPerSecond: 33554432 } (32 MiB/s)
   */
  rateLimit?: DatagramRateLimit | false;
  /**
   * Echoes the runtime's socket may hold unsent; one more is dropped (`dropped.sendQueue`).
   * @default 1024
   */
  sendQueue?: number;
  /**
   * Aborting the signal closes the server, as `close()` does.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * A datagram was dropped (see `DatagramDropReason`).
   * @default undefined
   */
  onDrop?: (drop: DroppedDatagram) => void | Promise<void>;
  /**
   * Something went wrong in the server, including a hook that threw (`EHOOK`). Never stops the server.
   * @default undefined
   */
  onError?: (error: EchoError) => void | Promise<void>;
}

export interface DroppedDatagram {
  readonly remoteAddress: DatagramAddress;
  readonly bytes: number;
  readonly reason: DatagramDropReason;
}

/** Counters since the server started. */
export interface DatagramServerStats {
  readonly datagramsIn: number;
  readonly datagramsOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Datagrams not echoed, by reason; `datagramsIn` is `datagramsOut` plus these (plus send errors). */
  readonly dropped: Readonly<Record<DatagramDropReason, number>>;
  /** Errors seen, by code. */
  readonly errors: Readonly<Record<string, number>>;
}

/** A running UDP echo server. */
export interface EchoDatagramServer extends AsyncDisposable {
  readonly runtime: Runtime;
  /** The bound address, with the real port when 0 was asked for. */
  readonly address: DatagramAddress;
  readonly stats: DatagramServerStats;
  /** Closes the socket (UDP has no connections to drain). Idempotent. */
  close(): Promise<void>;
  /** Resolves once the server is closed, however that happened. Never rejects. */
  readonly closed: Promise<void>;
}

/** A UDP echo client: `connect({ transport: "udp" })`. No packet is sent until `echo()`. */
export interface DatagramConnectOptions {
  transport: "udp";
  /**
   * Server to send to. `::1` and `[::1]` are both accepted.
   * @default "127.0.0.1"
   */
  hostname?: string;
  /** @default 12345 */
  port?: number;
  /**
   * Aborting closes the client.
   * @default undefined
   */
  signal?: AbortSignal;
}

export interface DatagramEchoOptions {
  /**
   * How long each attempt waits for the answering datagram, in ms.
   * @default 1000
   */
  timeout?: number;
  /**
   * Attempts after the first: a lost datagram (or a lost answer) is normal on
   * UDP, so the same datagram is sent again up to this many times, then `ETIMEDOUT`.
   * @default 2
   */
  retries?: number;
  /**
   * Aborting rejects this echo with `EABORTED`; the client stays usable.
   * @default undefined
   */
  signal?: AbortSignal;
}

/** Counters of a UDP client. */
export interface DatagramClientStats {
  readonly sent: number;
  readonly received: number;
  /** Datagrams sent again because no answer came in time. */
  readonly retransmitted: number;
  /** Second copies of answers we were due (after a retransmission or a timeout), ignored. */
  readonly late: number;
  /** Datagrams from an address other than the server's, ignored. */
  readonly strays: number;
  /** Answers that equal no echo, when none was in flight to blame; ignored. */
  readonly unexpected: number;
}

/**
 * A UDP client. Each `echo()` is one datagram and resolves with the answering
 * datagram; calls may overlap. The payload is sent as it is (no sequence
 * number), so an answer is matched to the echo whose bytes it equals. An answer
 * that equals no echo in flight (different bytes, another request's answer,
 * or one the server repeated unasked) rejects the oldest echo in flight with
 * `EPROTO`; unlike TCP, a failed echo does not fail the client.
 */
export interface EchoDatagramClient extends AsyncDisposable {
  readonly runtime: Runtime;
  readonly localAddress: DatagramAddress;
  readonly remoteAddress: DatagramAddress;
  readonly stats: DatagramClientStats;
  /** Largest payload `echo()` takes: 65,507 over IPv4, 65,527 over IPv6 (`EINVAL` above). */
  readonly maxDatagram: number;
  echo(payload: Uint8Array | string, options?: DatagramEchoOptions): Promise<Uint8Array>;
  /** Echoes in flight reject with `ECLOSED`; the socket is released. Idempotent. */
  close(): Promise<void>;
  /** Resolves once the client is closed. Never rejects. */
  readonly closed: Promise<void>;
}
