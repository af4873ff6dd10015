/**
 * @tcp-echo/node: the tcp-echo server and client over `node:net`.
 *
 *   import { listen, connect } from "@tcp-echo/node";
 *   const server = await listen({ port: 0 });
 *   const client = await connect({ port: server.address.port });
 *   await client.echo("Hello, server!");
 */

// The whole user contract (types.ts, EchoError and its codes), so no runtime package can drift from it.
export * from "@tcp-echo/core";
export { connect, listen, runtime } from "./adapter.ts";
