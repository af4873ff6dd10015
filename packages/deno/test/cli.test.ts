import assert from "node:assert/strict";
import { Child, CONFIG, DENO, decoder, randomBytes, run, sha256 } from "./_helpers.ts";

const CLI = new URL("../src/cli.ts", import.meta.url).pathname;
/** The flags the README documents: network access, nothing else. */
const cli = (...args: string[]) => ["run", "--allow-net", "--no-prompt", "--config", CONFIG, CLI, ...args];

async function withCliServer(body: (port: number, child: Child) => Promise<void>): Promise<void> {
  const child = new Child(DENO, cli("serve", "--port", "0"));
  try {
    const line = await child.line(/^Server listening on /);
    const port = Number(/:(\d+)$/.exec(line)?.[1]);
    await body(port, child);
  } finally {
    await child.stop("SIGTERM");
  }
}

Deno.test("cli: serve prints where it listens; send gets 'Hello, server!' back and exits 0", async () => {
  await withCliServer(async (port, server) => {
    const result = await run(DENO, cli("send", "--port", String(port)));
    assert.equal(decoder.decode(result.stdout), "Received response from server: Hello, server!\n");
    assert.equal(result.code, 0);
    await server.line(/^New connection from 127\.0\.0\.1:\d+$/);
  });
});

Deno.test("cli: send - streams 3 MB of stdin through the echo byte-exact", async () => {
  await withCliServer(async (port) => {
    const payload = randomBytes(3 * 1024 * 1024);
    const result = await run(DENO, cli("send", "--port", String(port), "-"), { stdin: payload });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await sha256(result.stdout), await sha256(payload));
  });
});

Deno.test("cli: ping reports every reply and exits 0", async () => {
  await withCliServer(async (port) => {
    const result = await run(DENO, cli("ping", "--port", String(port), "--count", "3", "--interval", "10"));
    const text = decoder.decode(result.stdout);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(text.match(/seq=\d+ time=/g)?.length, 3);
    assert.match(text, /3 sent, 3 received, 0% loss/);
  });
});

Deno.test("cli: SIGTERM closes serve gracefully with exit 0", async () => {
  const child = new Child(DENO, cli("serve", "--port", "0"));
  await child.line(/^Server listening on /);
  const status = await child.stop("SIGTERM");
  assert.equal(status.code, 0);
});

Deno.test("cli: nothing listening is exit 1 with a one-line ECONNREFUSED", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const result = await run(DENO, cli("send", "--port", String(port)));
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^tcp-echo-deno: connect ECONNREFUSED 127\.0\.0\.1:\d+: .*\n$/);
});

Deno.test("cli: a bad port is a usage error, exit 2", async () => {
  const result = await run(DENO, cli("send", "--port", "abc"));
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^tcp-echo-deno: invalid option --port/);
});

Deno.test("cli: without --allow-net, a one-line EACCES naming the flag, exit 1, no stack trace", async () => {
  const result = await run(DENO, ["run", "--no-prompt", "--config", CONFIG, CLI, "serve", "--port", "0"]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^tcp-echo-deno: listen EACCES 127\.0\.0\.1:0: .*--allow-net.*\n$/);
  assert.equal(result.stderr.split("\n").length, 2);
});
