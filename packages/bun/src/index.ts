/**
 * @tcp-echo/bun: the tcp-echo server and client over Bun's native sockets.
 *
 *   import { listen, connect } from "@tcp-echo/bun";
 *   const server = await listen({ port: 0 });
 *   const client = await connect({ port: server.address.port });
 *   await client.echo("Hello, server!");
 */

export type { EchoErrorCode } from "@tcp-echo/core";
export { EchoError, isEchoError } from "@tcp-echo/core";
// The whole public contract (types.ts), so no runtime package can drift from it.
export type * from "@tcp-echo/core/types";
export { connect, listen, runtime } from "./adapter.ts";
