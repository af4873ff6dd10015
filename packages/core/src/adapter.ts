/**
 * @tcp-echo/core/adapter: what a runtime adapter is written against. An adapter
 * calls `defineRuntime` with its table (bind, dial, `stat`/`unlink` for Unix
 * sockets) and turns each socket into a `SocketIO` that reports `SocketEvents`;
 * core does the rest. The contract's types and `EchoError` come from
 * `@tcp-echo/core`; users never need the names here.
 */

export type { AfterIO, DialAttempt, Dialed, Dialer } from "./_client.ts";
export { PendingDial } from "./_client.ts";
export type { DatagramBindConfig, DatagramEvents, DatagramIO, DatagramTable } from "./_datagram_io.ts";
export { datagramAddress } from "./_datagram_io.ts";
export { echoError } from "./_errors.ts";
export type {
  ConnectConfig,
  ListenConfig,
  TcpConnectConfig,
  TcpListenConfig,
  TlsClientConfig,
  TlsServerConfig,
  UnixConnectConfig,
  UnixListenConfig,
} from "./_options.ts";
export { isIPv4, isIPv6 } from "./_options.ts";
export type { BytesEqual, SocketEvents, SocketIO } from "./_protocol.ts";
export { NO_EVENTS } from "./_protocol.ts";
export type { RuntimeTable } from "./_runtime.ts";
export { defineRuntime, tcpAddress } from "./_runtime.ts";
export type { AcceptedIO, Binder, Listener, ServerCore } from "./_server.ts";
export type { UnixFs } from "./_unix.ts";
export { unixSocketInfo } from "./_unix.ts";
