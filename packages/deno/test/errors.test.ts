import assert from "node:assert/strict";
import { errorCodeOf } from "@tcp-echo/core/tools";
import { connect, listen } from "../src/index.ts";
import { CONFIG, codeOf, DENO, run, withServer } from "./_helpers.ts";

for (const [name, options] of [
  ["port 70000", { port: 70000 }],
  ["port -1", { port: -1 }],
  ["port 1.5", { port: 1.5 }],
  ["port 'abc' (never a Unix socket path)", { port: "abc" as unknown as number }],
  ["empty host", { hostname: "" }],
  ["host '::zz'", { hostname: "::zz" }],
] as const) {
  Deno.test(`invalid option ${name}: listen and connect reject with EINVAL before any syscall`, async () => {
    assert.equal(await codeOf(listen(options)), "EINVAL");
    assert.equal(await codeOf(connect(options)), "EINVAL");
  });
}

// Deno's own errors for the same inputs carry no `code`: core must still map
// each one (a bare RangeError or TypeError for a port, a URIError for a host,
// a plain Error for DNS) should any reach it unvalidated.
Deno.test("every error Deno raises here maps to core's code", async () => {
  const raw = async (attempt: () => unknown): Promise<unknown> => {
    try {
      const resource = await attempt();
      (resource as { close(): void }).close();
    } catch (error) {
      return error;
    }
    throw new Error("expected a failure");
  };
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const cases: Array<[string, () => unknown]> = [
      ["EINVAL", () => Deno.connect({ port: 70000 })],
      ["EINVAL", () => Deno.connect({ port: -1 })],
      ["EINVAL", () => Deno.connect({ port: 1.5 })],
      ["EINVAL", () => Deno.listen({ port: "abc" as unknown as number })],
      ["EINVAL", () => Deno.connect({ hostname: "", port: 7 })],
      ["EINVAL", () => Deno.listen({ hostname: "::zz", port: 0 })],
      ["ENOTFOUND", () => Deno.connect({ hostname: "no-such-host.invalid", port: 7 })],
      ["ECONNREFUSED", () => Deno.connect({ hostname: "127.0.0.1", port: 1 })],
      ["EADDRINUSE", () => Deno.listen({ hostname: "127.0.0.1", port: held.addr.port })],
    ];
    for (const [code, attempt] of cases) {
      const error = await raw(attempt);
      assert.equal(errorCodeOf(error), code, `${code} from ${String(error)}`);
    }
  } finally {
    held.close();
  }
});

Deno.test("EADDRINUSE names the address and what to do", async () => {
  await withServer({}, async (server) => {
    try {
      await listen({ port: server.address.port });
      assert.fail("listen on a port in use succeeded");
    } catch (error) {
      assert.equal((error as { code?: string }).code, "EADDRINUSE");
      assert.match((error as Error).message, new RegExp(`127\\.0\\.0\\.1:${server.address.port}.*already in use`));
    }
  });
});

Deno.test("ECONNREFUSED when nothing listens", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  assert.equal(await codeOf(connect({ port })), "ECONNREFUSED");
});

Deno.test("ENOTFOUND for a host name that does not resolve", async () => {
  assert.equal(await codeOf(connect({ hostname: "no-such-host.invalid", port: 7 })), "ENOTFOUND");
});

Deno.test("an aborted signal cancels connect with EABORTED", async () => {
  assert.equal(await codeOf(connect({ port: 7, signal: AbortSignal.abort() })), "EABORTED");
});

Deno.test("a per-call echo timeout is ETIMEDOUT and fails the connection", async () => {
  // A listener that accepts and never answers.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = silent.accept();
  try {
    const client = await connect({ port: silent.addr.port });
    assert.equal(await codeOf(client.echo("hello?", { timeout: 200 })), "ETIMEDOUT");
    assert.equal(await codeOf(client.closed), "ETIMEDOUT");
  } finally {
    (await accepted).close();
    silent.close();
  }
});

Deno.test("close() twice returns the same promise and resolves; closed resolves", async () => {
  const server = await listen({ port: 0 });
  const first = server.close();
  const second = server.close();
  assert.equal(first, second);
  await Promise.all([first, second, server.closed]);
  assert.equal(await codeOf(connect({ port: server.address.port })), "ECONNREFUSED");
});

Deno.test("close() lets an open connection finish its echo, then resolves", async () => {
  const server = await listen({ port: 0 });
  const client = await connect({ port: server.address.port });
  await client.echo("open");
  const closing = server.close();
  const late = client.echo("still served while draining");
  await client.closeWrite();
  assert.equal(new TextDecoder().decode(await late), "still served while draining");
  await client.closed;
  await closing;
  assert.equal(server.connections, 0);
});

Deno.test("a missing --allow-net is EACCES for listen and connect, not a crash", async () => {
  const script = `
    import { connect, listen } from "${new URL("../src/index.ts", import.meta.url).href}";
    const codes = [];
    for (const attempt of [() => listen({ port: 0 }), () => connect({ port: 7 })]) {
      try { await attempt(); } catch (error) { codes.push(error.code); }
    }
    console.log(codes.join(","));
  `;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, script);
    const result = await run(DENO, ["run", "--no-prompt", "--config", CONFIG, file], { timeoutMs: 30_000 });
    assert.equal(new TextDecoder().decode(result.stdout).trim(), "EACCES,EACCES");
    assert.equal(result.code, 0);
  } finally {
    await Deno.remove(file);
  }
});
