/**
 * tcp-echo over `node:net` (TCP and Unix sockets), `node:tls` and `node:dgram` (UDP). The protocol,
 * limits and bookkeeping are core's; this file is only the table of how a Node
 * socket carries them out.
 */

import { Buffer } from "node:buffer";
import * as dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { stat, unlink } from "node:fs/promises";
import * as net from "node:net";
import * as tls from "node:tls";
import { type Address, EchoError, type SocketAddress, type SocketInfo } from "@tcp-echo/core";
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
  isIPv4,
  isIPv6,
  type ListenConfig,
  type Listener,
  NO_EVENTS,
  PendingDial,
  type ServerCore,
  type SocketEvents,
  tcpAddress,
  unixSocketInfo,
} from "@tcp-echo/core/adapter";

// --- types ---

const ADAPTER = Symbol("tcp-echo.adapter");
/** A socket carries its `SocketIO`, so the listeners below can be shared (see `NodeSocketIO`). */
type AdaptedSocket = net.Socket & { [ADAPTER]: NodeSocketIO };

// --- adapter ---

/** Node itself, not Bun's or Deno's `node:` modules running this package. */
const isNode = !("Bun" in globalThis) && !("Deno" in globalThis);

/**
 * The client's small-write batch goes out from one `setImmediate` ("after I/O
 * events' callbacks", https://nodejs.org/api/timers.html#setimmediatecallback-args)
 * instead of waiting through a microtask per awaited `write()`: Node's
 * `queueMicrotask` makes an `AsyncResource` and a bound function per call
 * (lib/internal/process/task_queues.js), and even a settled promise's reaction
 * was 19 turns for 16 writes. In `load --size 64 --connections 50 --in-flight
 * 16` against the C echo server, echoes a second through `echo()` rose 1.25x
 * (CPU per echo 0.80x, 5 interleaved pairs) and chunks through `write()` 1.08x
 * (11 pairs, 0.99-1.48x); ping-pong read 0.97x (5 pairs, p50 level) and churn
 * 0.99x (3). On Node itself only: under Bun's and Deno's `node:` modules the
 * batch waits through microtasks (Deno's `setImmediate` cost more than its
 * microtasks: packages/deno/src/adapter.ts).
 *
 * Node's own `setImmediate`, taken when this module loads: a test's fake
 * timers (vitest's `vi.useFakeTimers()` fakes `setImmediate`, the global and
 * node:timers' alike) would otherwise hold the batch, and every later small
 * write of the connection behind it, until the test moved its clock.
 */
const afterIO: AfterIO = setImmediate;

export const { runtime, listen, connect } = defineRuntime({
  runtime: "node",
  bind,
  dial,
  unixFs: { stat, unlink },
  datagram: { bind: bindDatagram, lookup: numeric },
  bytesEqual: (a, b) => Buffer.compare(a, b) === 0,
  ...(isNode ? { afterIO } : {}),
});

// --- listen ---

function bind(config: ListenConfig, server: ServerCore): Promise<Listener> {
  const listener = createListener(config);
  // A TLS server's sockets are ready for data only once their handshake is done.
  const secure = listener instanceof tls.Server;
  listener.on(secure ? "secureConnection" : "connection", (socket: net.Socket) => {
    // Half-open only once the handshake is done (see createListener).
    if (secure) socket.allowHalfOpen = true;
    if (config.transport === "tcp") socket.setNoDelay(config.noDelay);
    // Where the runtime honoured the listener's highWaterMark 0 (Node and Bun do, Deno's node:net does not).
    const io = socket.writableHighWaterMark === 0 ? new DrainSocketIO(socket) : new NodeSocketIO(socket);
    io.wire(server.accept(io));
    // Plain TCP and Unix: read into memory of our own, from the second read on
    // (TLS decrypts into fresh buffers anyway).
    if (!secure) io.ownBuffer = true;
  });
  // A failed handshake (unknown CA, no client certificate) never becomes a
  // connection; without this listener Node drops it silently.
  listener.on("tlsClientError", (error) => server.reportError(error));
  return new Promise((resolve, reject) => {
    listener.once("error", reject);
    const where =
      config.transport === "unix"
        ? { path: config.path }
        : {
            host: config.hostname,
            port: config.port,
            ...(config.reusePort ? { reusePort: reusePortSupported() } : {}),
          };
    listener.listen(where, () => {
      listener.off("error", reject);
      // After binding, errors are accept failures (EMFILE, or EPROTO for one
      // connection): libuv keeps the listener open and retries by itself (it
      // skips ECONNABORTED, and sheds the backlog at EMFILE), so of core's
      // accept policy only the classified report is ours to carry out.
      listener.on("error", (error) => void server.acceptFailed(error));
      const bound = listener.address() as net.AddressInfo;
      resolve({
        address:
          config.transport === "unix"
            ? { transport: "unix", path: config.path }
            : tcpAddress(bound.address, bound.port),
        // Stops accepting at once; Node's own close callback would wait for
        // every connection, which core's drain handles instead.
        close: () => void listener.close(),
      });
    });
  });
}

/**
 * allowHalfOpen everywhere: Node defaults to false and would close our side as
 * soon as the peer half-closes, dropping the echo still queued. Over TLS the
 * same holds: `end()` sends close_notify and FIN, and the other direction stays open.
 *
 * Except during a TLS handshake: a TLS server made with allowHalfOpen keeps a
 * socket whose peer sent FIN before finishing the handshake in CLOSE-WAIT until
 * `handshakeTimeout` (120 s), so under a descriptor limit a burst of dropped
 * connections blocked every new client for two minutes (the matrix's emfile
 * case over TLS). Such a socket now closes at the FIN; the 'secureConnection'
 * listener turns half-open on once the handshake is done.
 */
function createListener(config: ListenConfig): net.Server {
  // highWaterMark 0: the accepted sockets' write() then says whether the kernel took everything (DrainSocketIO).
  if (config.transport === "unix") return net.createServer({ allowHalfOpen: true, highWaterMark: 0 });
  const { noDelay, tls: secure } = config;
  if (!secure) return net.createServer({ allowHalfOpen: true, noDelay, highWaterMark: 0 });
  return tls.createServer({
    allowHalfOpen: false,
    noDelay,
    cert: secure.cert,
    key: secure.key,
    ...(secure.ca ? { ca: secure.ca } : {}),
    requestCert: secure.requestCert,
    rejectUnauthorized: secure.requestCert,
  });
}

// --- connect ---

/**
 * The socket's own listeners from the start, shared by every socket (see
 * `NodeSocketIO`): until it connects, its events go to a `PendingDial` (core), whose
 * `onError` fails the dial. A `once` listener per connect costs a wrapper and
 * a bound function, and removing one a search of the listener list.
 */
function dial(config: ConnectConfig, events: SocketEvents, attempt: DialAttempt): Promise<Dialed> {
  const socket = openSocket(config) as AdaptedSocket;
  // Plain TCP and Unix on Node itself: writes without callbacks (see `openSocket`).
  const io = socket.writableHighWaterMark === 0 ? new DrainSocketIO(socket) : new NodeSocketIO(socket);
  return new Promise((resolve, reject) => {
    io.events = new PendingDial(config, events, resolve, reject);
    attempt.onAbort = () => socket.destroy();
    socket[ADAPTER] = io;
    socket.on("error", onError);
    socket.on("close", onClose);
    // A TLS socket is ready once the handshake is done and the certificate checked.
    socket.on(socket instanceof tls.TLSSocket ? "secureConnect" : "connect", onConnect);
  });
}

function onConnect(this: AdaptedSocket): void {
  const io = this[ADAPTER];
  const connecting = io.events as PendingDial;
  io.events = connecting.connection;
  if (io instanceof DrainSocketIO) {
    // `openSocket` gives a socket both or neither: reads into our buffer and writes
    // without callbacks. Reading into our buffer, it calls `onClientRead` and emits
    // no 'data'; a listener would only set the stream flowing, which schedules a
    // `resume` (a tick and a `read(0)`) for each connection. Node starts the reads
    // itself once connected (lib/net.js `afterConnect`).
    this.on("drain", onDrain);
  } else this.on("data", onData);
  this.on("end", onEnd);
  connecting.resolve({ info: infoOf(this, connecting.config, "client"), io });
}

/**
 * Plain TCP and Unix: reads go to one buffer of ours (`CLIENT_READ_BUFFER`), and
 * writes carry no callback (`DrainSocketIO`, highWaterMark 0 as on the server).
 * Only on Node itself: Bun's and Deno's `node:net` may run this package too,
 * and there the sockets keep 'data' events and write callbacks.
 */
function openSocket(config: ConnectConfig): net.Socket {
  const own = isNode ? { highWaterMark: 0, onread: { buffer: CLIENT_READ_BUFFER, callback: onClientRead } } : {};
  if (config.transport === "unix") return net.connect({ path: config.path, allowHalfOpen: true, ...own });
  const { hostname, port, noDelay, tls: secure } = config;
  if (!secure) return net.connect({ host: hostname, port, allowHalfOpen: true, noDelay, ...own });
  const { serverName, sni } = secure;
  // Node passes allowHalfOpen and noDelay on to the socket; its TLS types leave them out.
  const options: tls.ConnectionOptions & net.TcpSocketConnectOpts & net.SocketConstructorOpts = {
    host: hostname,
    port,
    allowHalfOpen: true,
    noDelay,
    ...(secure.ca ? { ca: secure.ca } : {}),
    ...(secure.cert && secure.key ? { cert: secure.cert, key: secure.key } : {}),
    ...(sni ? { servername: sni } : {}),
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(serverName, cert),
  };
  return tls.connect(options);
}

// --- socket ---

/**
 * How core's protocol maps onto a Node socket: this is core's `SocketIO`, and
 * the shared listeners below forward the socket's events to `events`.
 *
 * Methods and listeners are shared, not closures per socket: an idle
 * connection then costs its socket and core's session, nothing more (ten
 * closures per connection were a third of the idle memory per connection).
 */
class NodeSocketIO implements AcceptedIO {
  events: SocketEvents = NO_EVENTS;
  /** A server socket that is to read into a buffer of its own after its first read (`readIntoOwnBuffer`). */
  ownBuffer = false;
  protected readonly socket: net.Socket;

  constructor(socket: net.Socket) {
    this.socket = socket;
  }

  /**
   * Asked by core only when something needs it (see `AcceptedIO`): each is a
   * getpeername() or getsockname(), which Node caches on the socket. The local
   * one is asked only on a wildcard listener; otherwise core reuses the bound
   * address (getsockname at every accept was a tenth of the server's time under
   * connection churn).
   */
  remoteAddress(): SocketAddress {
    return remoteEndpoint(this.socket);
  }

  localAddress(): SocketAddress {
    return localEndpoint(this.socket);
  }

  /** Node buffers every write; the callback fires once the chunk is in the kernel. */
  write(chunk: Uint8Array): void {
    this.socket.write(chunk, (error) => {
      if (!error) this.events.onFlushed(chunk.byteLength);
    });
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  closeWrite(): void {
    this.socket.end();
  }

  /**
   * FIN after the last write, then release the descriptor without waiting for
   * the peer's FIN (a server only closes after the peer's EOF anyway).
   */
  close(): void {
    const { socket } = this;
    // After a half-close (a client's `closeWrite`) the writable side is
    // finished, and a second `end(cb)` calls back with a new
    // ERR_STREAM_ALREADY_FINISHED error (lib/internal/streams/writable.js
    // `end`): an Error with its stack trace per connection, 4% of the Node
    // client's churn profile. Nothing is left to flush then.
    if (socket.writableFinished) socket.destroy();
    else socket.end(() => socket.destroy());
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Every socket gets an 'error' listener: without one, a reset crashes Node. */
  wire(events: SocketEvents): void {
    this.events = events;
    const socket = this.socket as AdaptedSocket;
    socket[ADAPTER] = this;
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
    socket.on("close", onClose);
  }
}

/**
 * A socket over plain TCP or Unix whose `writableHighWaterMark` is 0 (the
 * listener's `highWaterMark` option,
 * https://nodejs.org/api/net.html#netcreateserveroptions-connectionlistener,
 * or the client's `net.connect` option):
 * its writes carry no callback, and what reached the kernel is read from
 * `write()` and 'drain' instead.
 *
 * A write callback costs a closure, and a `process.nextTick` even when the
 * kernel took the chunk at once (`onwrite` in lib/internal/streams/writable.js
 * defers it); without one, a write the kernel takes whole schedules nothing.
 * With a high-water mark of 0, `write()` returns true exactly when nothing is
 * left in the stream ("0 is a valid value, means that we always return false
 * if the entire buffer is not flushed immediately on write()", `WritableState`),
 * and otherwise 'drain' follows once everything is in the kernel. What was
 * held is then reported at once: the session's `pending` falls to 0 at 'drain'
 * rather than chunk by chunk, so a paused read resumes at 0 instead of at half
 * the mark. The option sets the readable mark to 0 too, which changes nothing
 * here: reads go to our own buffer, or to 'data' listeners in flowing mode.
 */
class DrainSocketIO extends NodeSocketIO {
  /** Written and not yet reported as flushed. */
  unflushed = 0;

  override write(chunk: Uint8Array): void {
    this.unflushed += chunk.byteLength;
    if (this.socket.write(chunk)) this.flushed();
  }

  flushed(): void {
    const bytes = this.unflushed;
    this.unflushed = 0;
    if (bytes > 0) this.events.onFlushed(bytes);
  }

  override wire(events: SocketEvents): void {
    super.wire(events);
    this.socket.on("drain", onDrain);
  }
}

// Node calls a listener with the socket as `this`.
function onDrain(this: AdaptedSocket): void {
  (this[ADAPTER] as DrainSocketIO).flushed();
}
function onData(this: AdaptedSocket, chunk: Buffer): void {
  const io = this[ADAPTER];
  io.events.onData(chunk);
  if (io.ownBuffer) {
    io.ownBuffer = false;
    readIntoOwnBuffer(this, chunk.byteLength);
  }
}
function onEnd(this: AdaptedSocket): void {
  this[ADAPTER].events.onEnd();
}
function onError(this: AdaptedSocket, error: Error): void {
  this[ADAPTER].events.onError(error);
}
function onClose(this: AdaptedSocket): void {
  this[ADAPTER].events.onClose();
}

// --- reading into our own buffer (server, plain TCP and Unix) ---

/**
 * By default Node reads every chunk into fresh memory (libuv asks for 64 KiB
 * per read, a new Buffer per 'data' event, through the Readable stream's
 * machinery); `onread` instead reads into a buffer of the caller's and calls
 * back with the byte count (https://nodejs.org/api/net.html#socketconnectoptions-connectlistener).
 * A server's session writes what it reads straight back and keeps no other
 * reference (core's `EchoSession.onData`), so the buffer is free again as soon
 * as that write is in the kernel, which on a socket that keeps up is at once:
 * one buffer then serves every read.
 *
 * `net.Server` does not pass `onread` on to the sockets it accepts
 * (https://github.com/nodejs/node/issues/53792), and re-wrapping each
 * accepted handle in a second `net.Socket` costs a socket per connection. The
 * accepted socket is given the buffer the way Node's `Socket` constructor
 * does it (lib/net.js `initSocketHandle`): its three `onread` slots (symbols
 * kBuffer, kBufferCb, kBufferGen, read by `onStreamRead` in
 * lib/internal/stream_base_commons.js) and `handle.useUserBuffer`. Where a
 * Node lacks them the socket keeps its 'data' events.
 *
 * The buffer is made at the first read, which is Node's own (so an idle
 * connection costs nothing more): as large as that read (at least 2 KiB,
 * rounded up to a power of two), and 4x larger whenever a read fills it, up
 * to 64 KiB. Node lets the buffer be set between two reads: `useUserBuffer`
 * puts a listener in front of the handle's (src/stream_base.cc), and
 * `onStreamRead` looks at kBuffer at every read. While a write still points into it
 * (the kernel did not take it all), the next read gets a new buffer: the
 * old one goes with its write, and core's backpressure is unchanged.
 */
const FIRST_READ_BUFFER = 2 * 1024;
const MAX_READ_BUFFER = 64 * 1024;

type Slots = { buffer: symbol; callback: symbol; generator: symbol };
let slots: Slots | false | undefined;

type ReadingSocket = AdaptedSocket & {
  _handle: { useUserBuffer?: (buffer: Uint8Array) => void } | null;
} & Record<symbol, unknown>;

function onreadSlots(socket: net.Socket): Slots | false {
  if (slots !== undefined) return slots;
  const find = (name: string) => Object.getOwnPropertySymbols(socket).find((key) => key.description === name);
  const [buffer, callback, generator] = [find("kBuffer"), find("kBufferCb"), find("kBufferGen")];
  slots = buffer && callback && generator ? { buffer, callback, generator } : false;
  return slots;
}

function readIntoOwnBuffer(socket: AdaptedSocket, firstRead: number): void {
  const found = onreadSlots(socket);
  const reading = socket as ReadingSocket;
  const handle = reading._handle;
  if (!found || !handle || typeof handle.useUserBuffer !== "function") return;
  let size = FIRST_READ_BUFFER;
  while (size < firstRead && size < MAX_READ_BUFFER) size *= 2;
  const buffer = Buffer.allocUnsafe(size);
  reading[found.buffer] = buffer;
  reading[found.callback] = onRead;
  reading[found.generator] = nextReadBuffer;
  handle.useUserBuffer(buffer);
}

/**
 * Node calls the `onread` callback with the socket as `this`, and the buffer
 * generator right after it with no `this` (`onStreamRead`); a closure per
 * socket would cost idle memory, so the callback leaves its verdict here.
 */
let nextBuffer: Buffer | undefined;

/** What the socket read into `buffer`. */
function onRead(this: AdaptedSocket, count: number, buffer: Buffer): void {
  this[ADAPTER].events.onData(buffer.subarray(0, count));
  let length = buffer.byteLength;
  const full = count === length && length < MAX_READ_BUFFER;
  if (full) length = Math.min(4 * length, MAX_READ_BUFFER);
  // A write not yet in the kernel may still point into `buffer`.
  const held = this.writableLength > 0;
  nextBuffer = full || held ? Buffer.allocUnsafe(length) : undefined;
}

/** The buffer for the next read: undefined keeps the same one. */
function nextReadBuffer(): Buffer | undefined {
  const next = nextBuffer;
  nextBuffer = undefined;
  return next;
}

// --- reading into our own memory (client, plain TCP and Unix) ---

/**
 * Every client socket reads into this one buffer (`net.connect`'s `onread`,
 * https://nodejs.org/api/net.html#socketconnectoptions-connectlistener), as
 * the hand-written client does, instead of Node's fresh 64 KiB allocation and
 * Buffer per 'data' event: core's client keeps nothing of a chunk once
 * `onData` returns (it compares the echo, and `read()` gets views of what was
 * written; `SocketEvents.onData`), and Node calls back for one read at a time.
 * The fresh memory per read was most of the bulk client's cost beyond the
 * hand-written one: V8's GC threads were 38% of its CPU.
 */
const CLIENT_READ_BUFFER = Buffer.allocUnsafe(MAX_READ_BUFFER);

/** What a client socket read into `CLIENT_READ_BUFFER`. */
function onClientRead(this: AdaptedSocket, count: number, buffer: Uint8Array): boolean {
  this[ADAPTER].events.onData(buffer.subarray(0, count));
  return true;
}

// --- datagram ---

async function bindDatagram(config: DatagramBindConfig, events: DatagramEvents): Promise<DatagramIO> {
  const hostname = await numeric(config.hostname);
  const socket = dgram.createSocket(isIPv6(hostname) ? "udp6" : "udp4");
  // An 'error' with no listener crashes Node: one is there from the start.
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: hostname, port: config.port }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  socket.on("error", (error) => events.onError(error));
  // libuv reads into 64 KiB buffers, so every datagram up to 65,527 bytes comes whole, in a Buffer of its own.
  socket.on("message", (data, remote) => events.onDatagram(data, remote.address, remote.port, false));
  const sent = (error: Error | null) => {
    if (error) events.onError(error);
  };
  const bound = socket.address();
  return {
    address: datagramAddress(bound.address, bound.port),
    // Node queues every send in memory (libuv's send queue) and never refuses
    // one: the queue is bounded here instead.
    send(data, address, port) {
      if (socket.getSendQueueCount() >= config.sendQueue) return false;
      socket.send(data, port, address, sent);
      return true;
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

// --- utils ---

async function numeric(hostname: string): Promise<string> {
  if (isIPv4(hostname) || isIPv6(hostname)) return hostname;
  return (await lookup(hostname)).address;
}

/** `local` reads the local address; a server passes its listener's address when it is bound to one. */
function infoOf(
  socket: net.Socket,
  config: ListenConfig | ConnectConfig,
  side: "server" | "client",
): SocketInfo<Address> {
  if (config.transport === "unix") return unixSocketInfo(config.path, side);
  // Dialled by its IPv4 literal, the peer is that address: no getpeername().
  // (A connect to 0.0.0.0 reaches a local address, which only the socket knows.)
  const dialled = side === "client" && isIPv4(config.hostname) && config.hostname !== "0.0.0.0";
  return {
    localAddress: localEndpoint(socket),
    remoteAddress: dialled ? tcpAddress(config.hostname, config.port) : remoteEndpoint(socket),
  };
}

const localEndpoint = (socket: net.Socket) => tcpAddress(socket.localAddress, socket.localPort);
const remoteEndpoint = (socket: net.Socket) => tcpAddress(socket.remoteAddress, socket.remotePort);

/**
 * `listen({ reusePort })` came with Node 23.1 and 22.12 (nodejs/node#55408);
 * older releases ignore the option, and a second server then fails with
 * EADDRINUSE, so say why instead.
 */
function reusePortSupported(): true {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)) return true;
  throw new EchoError(
    "EINVAL",
    `invalid option reusePort: Node ${process.versions.node} has no SO_REUSEPORT for TCP (it came in 22.12 and 23.1, nodejs/node#55408); upgrade Node`,
  );
}
