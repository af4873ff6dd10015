/**
 * @tcp-echo/deno: the tcp-echo server and client over Deno's native sockets.
 *
 *   import { listen, connect } from "@tcp-echo/deno";
 *   const server = await listen({ port: 0 });
 *   const client = await connect({ port: server.address.port });
 *   await client.echo("Hello, server!");
 */

export type {
  Address,
  CloseOptions,
  CloseReason,
  ConnectionInfo,
  ConnectionSummary,
  ConnectOptions,
  EchoConnection,
  EchoErrorCode,
  EchoOptions,
  EchoServer,
  ListenOptions,
  ServerStats,
  SocketAddress,
  SocketInfo,
  TlsClientOptions,
  TlsServerOptions,
  UnixAddress,
  UnixConnectOptions,
  UnixListenOptions,
} from "@tcp-echo/core";
export { EchoError, isEchoError } from "@tcp-echo/core";
export { connect, listen, runtime } from "./adapter.ts";
