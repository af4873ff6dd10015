/**
 * `defineRuntime`: a runtime package's whole `EchoRuntime` from its table of
 * how its sockets carry out core's actions. What every adapter would otherwise
 * repeat lives here: the overloads, option checks, the Unix socket probe and
 * the shape of a TCP address.
 */

import { type AfterIO, type Dialer, openConnection } from "./_client.ts";
import { type DatagramTable, openDatagramClient, startDatagramServer } from "./_datagram_io.ts";
import { resolveConnectOptions } from "./_options.ts";
import { type BytesEqual, NO_EVENTS } from "./_protocol.ts";
import { type Binder, startServer } from "./_server.ts";
import type { UnixFs, UnixProbe } from "./_unix.ts";
import type {
  Address,
  ConnectOptions,
  DatagramConnectOptions,
  DatagramListenOptions,
  EchoConnection,
  EchoDatagramClient,
  EchoDatagramServer,
  EchoRuntime,
  EchoServer,
  ListenOptions,
  Runtime,
  SocketAddress,
  UnixAddress,
  UnixConnectOptions,
  UnixListenOptions,
} from "./types.ts";

/** What an adapter supplies: the rest of `EchoRuntime` is core's. */
export interface RuntimeTable {
  readonly runtime: Runtime;
  /** Binds a listener and hands each accepted socket to `server.accept`. */
  readonly bind: Binder;
  /** Opens a socket (TLS handshake included) and wires its events. */
  readonly dial: Dialer;
  /** Looks at and removes a Unix socket's file, for the stale-file check before a bind. */
  readonly unixFs: UnixFs;
  /** Binds a UDP socket (`transport: "udp"`); without it, asking for UDP is `EINVAL`. */
  readonly datagram?: DatagramTable;
  /**
   * The runtime's native byte comparison (`(a, b) => Buffer.compare(a, b) === 0`,
   * a memcmp), for the client's check of long echoes; without it core compares in
   * JS, several times slower on bulk data.
   */
  readonly bytesEqual?: BytesEqual;
  /**
   * Runs a task once the runtime has run the callbacks and timers already due,
   * never after a poll that blocks (Node's and Bun's own `setImmediate`, taken
   * at load so that a test's fake timers do not hold it). With it, the
   * client's small-write batch is sent by one such task, after every write
   * those made; without it, the batch waits through microtask turns, one per
   * write it waits through (`IDLE_TURNS` in `_client.ts`), which is cheaper
   * only where a microtask costs less than the runtime's `setImmediate` (Deno's).
   */
  readonly afterIO?: AfterIO;
}

/**
 * The `listen` and `connect` of a runtime package, overloads included. Both
 * validate every option before the table is called, so a bad option never
 * opens a socket.
 */
export function defineRuntime({
  runtime,
  bind,
  dial,
  unixFs,
  datagram,
  bytesEqual,
  afterIO,
}: RuntimeTable): EchoRuntime {
  const probe = unixProbe(dial);
  function listen(options: UnixListenOptions): Promise<EchoServer<UnixAddress>>;
  function listen(options: DatagramListenOptions): Promise<EchoDatagramServer>;
  function listen(options?: ListenOptions): Promise<EchoServer>;
  function listen(
    options?: ListenOptions | UnixListenOptions | DatagramListenOptions,
  ): Promise<EchoServer<Address> | EchoDatagramServer> {
    if (options?.transport === "udp") return startDatagramServer(runtime, options, datagram);
    return startServer(runtime, options, bind, unixFs, probe);
  }
  function connect(options: UnixConnectOptions): Promise<EchoConnection<UnixAddress>>;
  function connect(options: DatagramConnectOptions): Promise<EchoDatagramClient>;
  function connect(options?: ConnectOptions): Promise<EchoConnection>;
  function connect(
    options?: ConnectOptions | UnixConnectOptions | DatagramConnectOptions,
  ): Promise<EchoConnection<Address> | EchoDatagramClient> {
    if (options?.transport === "udp") return openDatagramClient(runtime, options, datagram);
    return openConnection(runtime, options, dial, bytesEqual, afterIO);
  }
  return { runtime, listen, connect };
}

/** Whether a server accepts on a Unix socket, asked with the runtime's own dialer. */
function unixProbe(dial: Dialer): UnixProbe {
  return async (path) => {
    const config = resolveConnectOptions({ transport: "unix", path });
    const { io } = await dial(config, NO_EVENTS, {
      aborted: false,
      onAbort: undefined,
      signal: new AbortController().signal,
    });
    io.destroy();
  };
}

/**
 * A TCP address as a socket reports it. The family follows from the numeric
 * address (only IPv6 has a colon), whatever the runtime calls it. A socket
 * reset before we look at it has no addresses left: unknown, rather than a throw.
 */
export function tcpAddress(hostname: string | undefined, port: number | undefined): SocketAddress {
  return {
    transport: "tcp",
    hostname: hostname ?? "unknown",
    port: port ?? 0,
    family: hostname?.includes(":") ? "IPv6" : "IPv4",
  };
}
