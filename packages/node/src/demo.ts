/**
 * The tutorial's exchange, on our packages: a server on 127.0.0.1, a client that
 * sends "Hello, server!", prints the reply and closes. Run with `pnpm demo`.
 */
import { formatAddress } from "@tcp-echo/core/tools";
import { connect, listen } from "./adapter.ts";

const server = await listen({
  port: 0,
  onConnection: ({ remoteAddress: r }) =>
    console.log(`[server] New connection from ${formatAddress(r.hostname, r.port)}`),
});
const { hostname, port } = server.address;
console.log(`[server] Server listening on ${formatAddress(hostname, port)}`);

await using client = await connect({ hostname, port });
const reply = await client.echo("Hello, server!");
console.log(`[client] Received response from server: ${new TextDecoder().decode(reply)}`);
await client.closeWrite();
await client.closed;
await server.close();
console.log("[server] closed: every connection finished");
