/** TCP_NODELAY on Bun, read back from the kernel: the one socket option only a Bun test can see (through bun:ffi). */
import { afterEach, expect, test } from "bun:test";
import { connect, type EchoServer, listen } from "../src/index.ts";
import { noDelayOf } from "./helpers.ts";

const servers: EchoServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ force: true })));
});

// Bun turns TCP_NODELAY on by default; noDelay: false must really turn it off.
test.each([true, false])("noDelay: %p is set on both ends of the connection", async (noDelay) => {
  const server = await listen({ port: 0, noDelay });
  servers.push(server);
  await using client = await connect({ port: server.address.port, noDelay });
  await client.echo("x");
  const local = client.localAddress.port;
  const remote = client.remoteAddress.port;
  expect(noDelayOf(local, remote)).toBe(noDelay);
  expect(noDelayOf(remote, local)).toBe(noDelay);
});
