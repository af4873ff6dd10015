/**
 * tcp-echo over Deno's native sockets (`Deno.listen`, `Deno.connect`,
 * `Deno.listenTls`, `Deno.startTls`, `Deno.Conn`; TCP, TLS and Unix sockets;
 * `Deno.listenDatagram`: UDP), not over Deno's `node:net` or `node:dgram` layer. The protocol, limits and bookkeeping are
 * core's; this file is only the table of how a Deno connection carries them out.
 */

import { Buffer } from "node:buffer";
import { type Address, EchoError, type SocketAddress, type SocketInfo } from "@tcp-echo/core";
import {
  type AcceptedIO,
  type ConnectConfig,
  type DatagramBindConfig,
  type DatagramEvents,
  type DatagramIO,
  type DialAttempt,
  type Dialed,
  datagramAddress,
  defineRuntime,
  type ListenConfig,
  type Listener,
  NO_EVENTS,
  type ServerCore,
  type SocketEvents,
  type TcpConnectConfig,
  tcpAddress,
  unixSocketInfo,
} from "@tcp-echo/core/adapter";

// --- types ---

/** Bytes asked of the kernel per `conn.read`. */
const READ_SIZE = 64 * 1024;
/**
 * A connection's first read buffer. It grows x8 up to `READ_SIZE` each time a
 * read fills it, so a bulk stream reaches full size after four reads while an
 * idle peer costs 64 B, not 64 KiB: a pending `conn.read` holds its buffer
 * (10,000 idle peers measured 64.6 KB each with 64 KiB, 14.4 KB with 4 KiB; the
 * `node:net` pipe on Deno, 7.6 KB).
 */
const FIRST_READ_SIZE = 64;
const READ_GROWTH = 8;
/** Server read buffers kept for reuse once their echo is written (see `readLoop`). */
const SPARE_BUFFERS = 2;
/** Server read buffers lent to core at once, their echo not yet written, beyond which a small read is copied. */
const LENT_BUFFERS = 3;

// --- adapter ---

export const { runtime, listen, connect } = defineRuntime({
  runtime: "deno",
  bind,
  dial,
  unixFs: { stat: (path) => Deno.stat(path).then(fileKind), unlink: (path) => Deno.remove(path) },
  datagram: { bind: bindDatagram, lookup },
  bytesEqual: (a, b) => Buffer.compare(a, b) === 0,
  // No `afterIO`: with Deno's `setImmediate` sending the client's small-write
  // batch, `load --size 64 --connections 50 --in-flight 16` read 0.97x the
  // chunks a second through `write()`, 0.94x the echoes through `echo()`, and
  // ping-pong 0.98x (4 interleaved pairs each), so the batch waits through
  // microtasks here (`IDLE_TURNS` in core's `_client.ts`).
});

// --- listen ---

function bind(config: ListenConfig, server: ServerCore): Listener {
  // Throws synchronously (AddrInUse, NotCapable): startServer maps it.
  const listener = createListener(config);
  prepareSignals();
  let stopped = false;
  let backoff: { timer: ReturnType<typeof setTimeout>; wake: () => void } | undefined;
  const serveConn = (conn: Deno.Conn) => {
    const io = new DenoSocketIO(conn, "server");
    try {
      // A TLS connection has no setNoDelay: Deno.TlsConn does not expose it.
      if (config.transport === "tcp" && !isTls(conn)) (conn as Deno.TcpConn).setNoDelay(config.noDelay);
      io.wire(server.accept(io));
    } catch (error) {
      // Reset before we could look at it: its addresses or options are gone.
      io.destroy();
      server.reportError(error);
    }
  };
  // Deno handshakes lazily, on the first read or write: done first here, apart
  // from the accept loop, so a failed handshake (unknown CA, a client that
  // gave up) is reported (ETLS), never becomes a connection, and never stalls
  // accepting. Handshakes still pending at close are closed with the listener.
  const handshaking = new Set<Deno.TlsConn>();
  const handshake = async (conn: Deno.TlsConn) => {
    handshaking.add(conn);
    try {
      await conn.handshake();
    } catch (error) {
      closeQuietly(conn);
      if (!stopped) server.reportError(error);
      return;
    } finally {
      handshaking.delete(conn);
    }
    if (stopped) closeQuietly(conn);
    else serveConn(conn);
  };
  // A `for await` over the listener ends for good on the first accept error
  // (EMFILE), so accept in a loop that keeps the listener and asks core when to
  // accept again. Deno fails the accept of a connection reset while still in
  // the backlog: it accepts it, then its getpeername fails with NotConnected
  // (ENOTCONN, os error 107; op_net_accept_tcp in
  // https://github.com/denoland/deno/blob/main/ext/net/ops.rs). That costs one
  // connection, not the listener: core says accept again at once, where a
  // back-off would let a burst of such resets stall the server for minutes.
  const accepting = (async () => {
    while (!stopped) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopped) break;
        const wait = server.acceptFailed(error);
        if (wait === undefined) continue;
        await new Promise<void>((wake) => {
          backoff = { timer: setTimeout(wake, wait), wake };
        });
        backoff = undefined;
        continue;
      }
      if (isTls(conn)) void handshake(conn);
      else serveConn(conn);
    }
  })();
  return {
    address: config.transport === "unix" ? { transport: "unix", path: config.path } : addressOf(listener.addr),
    close: async () => {
      stopped = true;
      if (backoff) {
        clearTimeout(backoff.timer);
        backoff.wake();
      }
      listener.close();
      for (const conn of handshaking) closeQuietly(conn);
      await accepting;
    },
  };
}

/** Binds the listener for any transport. Mutual TLS is refused: `Deno.listenTls` cannot ask for a client certificate. */
function createListener(config: ListenConfig): Deno.Listener {
  // Deno 2.9 marks `reusePort` unstable, and without `--unstable-net` a listen with it does not throw: Deno ends
  // the whole process with exit code 70. So refuse it first. https://docs.deno.com/runtime/reference/cli/unstable_flags/#--unstable-net
  if (config.transport !== "unix" && config.reusePort && !unstableNet())
    throw new EchoError(
      "EINVAL",
      "invalid option reusePort: Deno marks it unstable; run deno with --unstable-net (./tcp-echo adds it for --workers and --reuse-port)",
    );
  return bindListener(config);
}

function bindListener(config: ListenConfig): Deno.Listener {
  if (config.transport === "unix") return Deno.listen({ transport: "unix", path: config.path });
  const { hostname, port, tls } = config;
  const reusePort = config.reusePort ? { reusePort: true } : {};
  if (!tls) return Deno.listen({ hostname, port, transport: "tcp", ...reusePort });
  if (tls.requestCert)
    throw new EchoError(
      "EINVAL",
      "invalid option tls.requestCert: Deno.listenTls cannot ask clients for a certificate; serve mutual TLS with @tcp-echo/node or @tcp-echo/bun",
    );
  return Deno.listenTls({ hostname, port, transport: "tcp", cert: tls.cert, key: tls.key, ...reusePort });
}

/**
 * Whether Deno runs with `--unstable-net` (or `"unstable": ["net"]`): `Deno.listenDatagram` exists only then, which
 * is the one probe that neither throws nor ends the process.
 */
function unstableNet(): boolean {
  return typeof Deno.listenDatagram === "function";
}

// --- connect ---

async function dial(config: ConnectConfig, events: SocketEvents, attempt: DialAttempt): Promise<Dialed> {
  const conn = await openSocket(config, attempt.signal);
  const io = new DenoSocketIO(conn, "client");
  try {
    const info = infoOf(conn, config, "client");
    io.wire(events);
    return { info, io };
  } catch (error) {
    io.destroy();
    throw error;
  }
}

/**
 * Opens the connection, TLS handshake included, so a bad certificate fails the
 * connect with ETLS rather than the first echo. Plain TCP, then `startTls`:
 * that keeps setNoDelay (a TlsConn has none) and lets the name checked differ
 * from the address dialled. A client certificate needs `connectTls`, which
 * checks the hostname dialled.
 */
async function openSocket(config: ConnectConfig, signal: AbortSignal): Promise<Deno.Conn> {
  if (config.transport === "unix") return await Deno.connect({ transport: "unix", path: config.path });
  const { tls } = config;
  if (tls?.cert && tls.key) return await connectWithCertificate(config, tls.cert, tls.key);
  const conn = await Deno.connect({ hostname: config.hostname, port: config.port, transport: "tcp", signal });
  try {
    conn.setNoDelay(config.noDelay);
    if (!tls) return conn;
    const secure = await Deno.startTls(conn, { hostname: tls.serverName, caCerts: tls.ca ? [tls.ca] : [] });
    await handshakeOrClose(secure);
    return secure;
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
}

async function connectWithCertificate(config: TcpConnectConfig, cert: string, key: string): Promise<Deno.TlsConn> {
  const { hostname, port, tls } = config;
  if (tls?.serverName !== hostname)
    throw new EchoError(
      "EINVAL",
      "invalid option tls.serverName: with a client certificate Deno checks the hostname it dials (Deno.startTls takes no certificate); connect to the name itself",
    );
  const conn = await Deno.connectTls({ hostname, port, caCerts: tls.ca ? [tls.ca] : [], cert, key });
  await handshakeOrClose(conn);
  return conn;
}

async function handshakeOrClose(conn: Deno.TlsConn): Promise<void> {
  try {
    await conn.handshake();
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
}

// --- socket ---

/**
 * How core's protocol maps onto a Deno connection: this is core's `SocketIO`,
 * and `wire` starts the read loop that reports to core. A class, not closures:
 * an idle connection costs one object here (ten closures and their contexts
 * were a quarter of its JS heap).
 *
 * Writes and reads run side by side. One `conn.write` at a time: it may take
 * only part of a buffer (ignoring its count lost data here), each count is
 * reported to core as it goes out, and what core wrote meanwhile waits in a
 * queue. The read loop calls `conn.read` and stops while core has paused it.
 * Neither ever rejects unobserved: an unhandled rejection ends the Deno
 * process, and a reset must only end its connection.
 */
class DenoSocketIO implements AcceptedIO {
  private events: SocketEvents = NO_EVENTS;
  private readonly conn: Deno.Conn;
  private readonly side: "server" | "client";
  /** What `conn.write` is writing now (the rest of it after a partial write); undefined while none is. */
  private sending: Uint8Array | undefined;
  /** Chunks core handed to `write` while one was being written, oldest first; made on first use. */
  private queue: Uint8Array[] | undefined;
  /** `conn.write`'s callbacks, made on the first write (idle connections are many). */
  private wrote: ((written: number) => void) | undefined;
  private writeFailed: ((error: unknown) => void) | undefined;
  /** Server: read buffers whose echo has been written, to read into again; made on first use (idle connections are many). */
  private spare: Uint8Array<ArrayBuffer>[] | undefined;
  /** Server: read buffers handed to core whose echo is still queued (at most `LENT_BUFFERS` tracked). */
  private lent: Uint8Array<ArrayBuffer>[] | undefined;
  /** Server: the size of the buffer the read loop reads into now. */
  private readSize = FIRST_READ_SIZE;
  private paused = false;
  /** Wakes the read loop after `resume()`. */
  private resumeReading: (() => void) | undefined;
  private reading: Promise<void> | undefined;
  private closed = false;

  constructor(conn: Deno.Conn, side: "server" | "client") {
    this.conn = conn;
    this.side = side;
  }

  /** Asked by core only when something needs it (see `AcceptedIO`); Deno read both at accept. */
  remoteAddress(): SocketAddress {
    return addressOf(this.conn.remoteAddr);
  }

  localAddress(): SocketAddress {
    return addressOf(this.conn.localAddr);
  }

  write(chunk: Uint8Array): void {
    if (this.closed) return;
    if (this.sending === undefined) this.send(chunk);
    else if (this.queue === undefined) this.queue = [chunk];
    else this.queue.push(chunk);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.resumeReading?.();
  }

  // Never `conn.writable.close()`: it closes the whole connection, not just
  // our side, and the rest of the echo is lost with no error
  // (https://github.com/denoland/deno/issues/22258).
  closeWrite(): void {
    if (!this.closed) this.conn.closeWrite().catch((error) => this.fail(error));
  }

  // Core calls this once everything written has reached the kernel (which
  // still sends it, then FIN, after the descriptor is closed) and nothing is
  // left to read, so the queue is empty and closing drops nothing.
  close(): void {
    this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.sending = undefined;
    this.queue = undefined;
    try {
      this.conn.close();
    } catch {
      // Already released by a failed operation.
    }
    this.resumeReading?.();
    // A pending `conn.read` rejects once the resource is gone; report the close
    // after it has, so nothing of this connection is left running.
    void (this.reading ?? Promise.resolve()).then(() => this.events.onClose());
  }

  // Reads go through `conn.read`, never `conn.readable`: iterating that stream
  // to EOF closes the whole connection, so a server could not echo what is
  // left after the peer half-closes (https://github.com/denoland/deno/issues/27510).
  wire(target: SocketEvents): void {
    this.events = target;
    this.reading = this.readLoop(target);
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    this.events.onError(error);
    this.destroy();
  }

  /**
   * One `conn.write` at a time, its promise settled by two callbacks made once
   * per connection, not an `async` flush started per chunk (a frame, a promise
   * and a resumption for every echoed read in 50 conns x 16 x 64 B).
   */
  private send(chunk: Uint8Array): void {
    this.sending = chunk;
    if (this.wrote === undefined) {
      this.wrote = (written) => {
        // Nothing may reject unobserved here (see above).
        try {
          this.sent(written);
        } catch (error) {
          this.fail(error);
        }
      };
      this.writeFailed = (error) => this.fail(error);
    }
    this.conn.write(chunk).then(this.wrote, this.writeFailed);
  }

  private sent(written: number): void {
    if (this.closed) return;
    const chunk = this.sending as Uint8Array;
    this.events.onFlushed(written);
    if (this.closed) return;
    // `conn.write` may take part of the chunk: write the rest before anything queued.
    if (written < chunk.byteLength) {
      this.send(chunk.subarray(written));
      return;
    }
    if (this.lent !== undefined) this.giveBack(chunk.buffer as ArrayBuffer);
    const queue = this.queue;
    if (queue === undefined || queue.length === 0) {
      this.sending = undefined;
      return;
    }
    this.send(queue.shift() as Uint8Array);
  }

  /**
   * Server: `buffer`, once its echo is written, is free to read into again if
   * the read loop lent it (a copy is not): kept as a spare while it is the size
   * the loop reads at now.
   */
  private giveBack(buffer: ArrayBuffer): void {
    const lent = this.lent as Uint8Array<ArrayBuffer>[];
    let at = 0;
    while (at < lent.length && (lent[at] as Uint8Array).buffer !== buffer) at++;
    if (at === lent.length) return;
    const read = lent[at] as Uint8Array<ArrayBuffer>;
    lent[at] = lent[lent.length - 1] as Uint8Array<ArrayBuffer>;
    lent.pop();
    if (read.byteLength !== this.readSize) return;
    this.spare ??= [];
    if (this.spare.length < SPARE_BUFFERS) this.spare.push(read);
  }

  private async readLoop(target: SocketEvents): Promise<void> {
    const { conn } = this;
    let buffer = new Uint8Array(FIRST_READ_SIZE);
    try {
      while (!this.closed) {
        if (this.paused) {
          await new Promise<void>((resolve) => {
            this.resumeReading = resolve;
          });
          this.resumeReading = undefined;
          continue;
        }
        const count = await conn.read(buffer);
        if (this.closed) return;
        if (count === null) {
          target.onEnd();
          return;
        }
        if (this.side === "server") {
          // The server session hands each chunk straight to `io.write` and keeps
          // nothing else, so once that write has flushed the buffer is free to
          // read into again: reading fresh memory every time halved bulk
          // throughput here (page faults and GC). So a read is handed over
          // (lent; `giveBack` keeps it as a spare once its echo is written) and
          // reading goes on into a spare or a new buffer, until core pauses at
          // its highWaterMark, as on Node and Bun. A small read is handed over
          // too while a spare is there or fewer than LENT_BUFFERS are out:
          // copying every one cost an allocation per read (most of a 64 B
          // echo's GC). Not from the first, 64 B buffer: a copy that small is
          // cheap (V8 keeps typed arrays up to 64 B on its heap), and a second
          // buffer for every connection that echoed once cost about 1 KB each
          // in the 10,000 idle connections bench. Past that a small read is
          // copied out and reading goes on into the same buffer, so a peer
          // that does not read, sending small segments, pins copies the size
          // of its data, not a buffer each; waiting for its echo instead
          // stopped reading far below highWaterMark.
          const spare = this.spare?.pop();
          const lent = this.lent;
          if (
            count >= buffer.byteLength / 2 ||
            spare !== undefined ||
            (buffer.byteLength > FIRST_READ_SIZE && (lent?.length ?? 0) < LENT_BUFFERS)
          ) {
            if (lent === undefined) this.lent = [buffer];
            else if (lent.length < LENT_BUFFERS) lent.push(buffer);
            target.onData(buffer.subarray(0, count));
            buffer = spare ?? new Uint8Array(buffer.byteLength);
          } else {
            target.onData(buffer.slice(0, count));
          }
        } else {
          // The client keeps nothing of a chunk once onData returns (core
          // compares the echo, and `read()` gets views of what was written:
          // SocketEvents.onData), so it reads into the same buffer again, as the
          // hand-written client does. Fresh memory per read was most of what the
          // bulk client cost beyond that one: reading into one buffer measured
          // 0.62-0.77x the CPU per byte (4 x 16 x 64 KiB stream, 4 pairs). One
          // buffer per connection, not one for all: each connection's read is
          // an op of its own, in flight while the others complete.
          target.onData(buffer.subarray(0, count));
        }
        if (count === buffer.byteLength && buffer.byteLength < READ_SIZE) {
          buffer = new Uint8Array(Math.min(buffer.byteLength * READ_GROWTH, READ_SIZE));
          this.readSize = buffer.byteLength;
          if (this.spare) this.spare.length = 0;
        }
      }
    } catch (error) {
      this.fail(error);
    }
  }
}

// --- datagram ---

function bindDatagram(config: DatagramBindConfig, events: DatagramEvents): Promise<DatagramIO> {
  // Deno 2.9 has `Deno.listenDatagram` only with --unstable-net (or "unstable":
  // ["net"] in deno.json); without it the function is not there at all, and the
  // call would be a bare TypeError. https://docs.deno.com/runtime/reference/cli/unstable_flags/#--unstable-net
  if (!unstableNet())
    throw new EchoError(
      "EINVAL",
      'UDP on Deno needs the --unstable-net flag: Deno.listenDatagram is unstable in Deno 2.9 and missing without it; run deno run --unstable-net --allow-net ... (or add "unstable": ["net"] to deno.json)',
    );
  // Throws synchronously (AddrInUse, NotCapable): startDatagramServer maps it.
  const conn = Deno.listenDatagram({ transport: "udp", hostname: config.hostname, port: config.port });
  let closed = false;
  // Without a buffer, `receive()` allocates a new 64 KiB one per datagram: a
  // burst of 20,000 small datagrams reached the server as 1,004 (the kernel
  // dropped the rest while it allocated). One buffer, reused, and each datagram
  // copied out at its own size (its echo is sent while the next one is read).
  const buffer = new Uint8Array(READ_SIZE);
  void (async () => {
    while (!closed) {
      try {
        const [data, from] = await conn.receive(buffer);
        const { hostname, port } = from as Deno.NetAddr;
        events.onDatagram(data.slice(), hostname, port, false);
      } catch (error) {
        if (closed) return;
        events.onError(error);
        // A receive that fails once fails again at once when the socket is gone: yield before retrying.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  })();
  // `send` is a promise per datagram; the ones not settled yet are this socket's send queue, bounded here.
  let inFlight = 0;
  const settled = () => void inFlight--;
  const failed = (error: unknown) => {
    inFlight--;
    if (!closed) events.onError(error);
  };
  const bound = conn.addr as Deno.NetAddr;
  return Promise.resolve({
    address: datagramAddress(bound.hostname, bound.port),
    send(data, hostname, port) {
      if (inFlight >= config.sendQueue) return false;
      inFlight++;
      conn.send(data, { transport: "udp", hostname, port }).then(settled, failed);
      return true;
    },
    close() {
      closed = true;
      conn.close();
    },
  });
}

// --- utils ---

/** Deno's resolver asks DNS only (no /etc/hosts); core maps `localhost` itself. */
async function lookup(hostname: string): Promise<string> {
  const [v4] = await Deno.resolveDns(hostname, "A").catch(() => []);
  if (v4) return v4;
  const [v6] = await Deno.resolveDns(hostname, "AAAA");
  if (!v6) throw new EchoError("ENOTFOUND", `the host name ${JSON.stringify(hostname)} could not be resolved`);
  return v6;
}

/**
 * Deno sets up its signal handling lazily, about half a second after start, and
 * panics (the process exits) if no file descriptor is free at that moment. A
 * server flooded at start is out of descriptors then (EMFILE), so set it up
 * now, while one is free, by adding and removing a listener.
 */
function prepareSignals(): void {
  if (Deno.build.os === "windows") return;
  const ignore = () => {};
  Deno.addSignalListener("SIGUSR2", ignore);
  Deno.removeSignalListener("SIGUSR2", ignore);
}

/** `Deno.FileInfo` in the shape core's `UnixFs` asks for (`node:fs/promises`' `Stats`). */
function fileKind(info: Deno.FileInfo): { isSocket(): boolean; isDirectory(): boolean } {
  return { isSocket: () => info.isSocket === true, isDirectory: () => info.isDirectory };
}

function isTls(conn: Deno.Conn): conn is Deno.TlsConn {
  return "handshake" in conn;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed by the failure.
  }
}

function infoOf(conn: Deno.Conn, config: ListenConfig | ConnectConfig, side: "server" | "client"): SocketInfo<Address> {
  if (config.transport === "unix") return unixSocketInfo(config.path, side);
  return { localAddress: addressOf(conn.localAddr), remoteAddress: addressOf(conn.remoteAddr) };
}

function addressOf(address: Deno.Addr): SocketAddress {
  const { hostname, port } = address as Deno.NetAddr;
  return tcpAddress(hostname, port);
}
