/** Errors carry one code set, whatever the runtime raised, and bad input fails before any socket opens. */
import * as assert from "node:assert/strict";
import * as net from "node:net";
import type { ConnectOptions } from "@tcp-echo/core";
import { type AddCase, until } from "./kit.ts";

export function errorCases(add: AddCase): void {
  for (const [name, options] of [
    ["port 70000", { port: 70000 }],
    ["port -1", { port: -1 }],
    ["port 1.5", { port: 1.5 }],
    ["port 'abc' (never a Unix socket path)", { port: "abc" as unknown as number }],
    ["empty host", { hostname: "" }],
    ["host '::zz'", { hostname: "::zz" }],
  ] as const satisfies ReadonlyArray<readonly [string, ConnectOptions]>) {
    add(`errors: invalid option ${name}, listen and connect reject with EINVAL before any syscall`, async (t) => {
      assert.equal(await t.codeOf(t.listen(options)), "EINVAL");
      assert.equal(await t.codeOf(t.connect(options)), "EINVAL");
    });
  }

  // Bun throws this one synchronously from Bun.listen.
  add("errors: EADDRINUSE names the address and says it is in use", async (t) => {
    const server = await t.listen({ port: 0 });
    const error = await t.failure(t.listen({ port: server.address.port }));
    assert.equal(error.code, "EADDRINUSE");
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${server.address.port}.*already in use`));
  });

  add("errors: ECONNREFUSED when nothing listens", async (t) => {
    const server = await t.listen({ port: 0 });
    const { port } = server.address;
    await server.close();
    assert.equal(await t.codeOf(t.connect({ port })), "ECONNREFUSED");
  });

  // Bun.listen reports a failed lookup with no code at all.
  add("errors: ENOTFOUND for a host name that does not resolve, on listen and on connect", async (t) => {
    assert.equal(await t.codeOf(t.listen({ hostname: "no-such-host.invalid", port: 0 })), "ENOTFOUND");
    assert.equal(await t.codeOf(t.connect({ hostname: "no-such-host.invalid", port: 9 })), "ENOTFOUND");
  });

  add("errors: an AbortSignal cancels connect with EABORTED, aborted before or during the connect", async (t) => {
    const server = await t.listen({ port: 0 });
    const port = server.address.port;
    assert.equal(await t.codeOf(t.connect({ port, signal: AbortSignal.abort() })), "EABORTED");
    const controller = new AbortController();
    const connecting = t.connect({ port, signal: controller.signal });
    controller.abort();
    assert.equal(await t.codeOf(connecting), "EABORTED");
    await until(() => server.connections === 0);
  });

  add("errors: a per-call echo timeout is ETIMEDOUT and fails the connection", async (t) => {
    // A server that accepts and never answers.
    const held: net.Socket[] = [];
    const silent = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.pause();
      held.push(socket);
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    t.defer(() => {
      for (const socket of held) socket.destroy();
      return new Promise((resolve) => silent.close(resolve));
    });
    const client = await t.connect({ port: (silent.address() as net.AddressInfo).port });
    assert.equal(await t.codeOf(client.echo("hello?", { timeout: 200 })), "ETIMEDOUT");
    assert.equal(await t.codeOf(client.closed), "ETIMEDOUT");
  });
}
