import assert from "node:assert/strict";
import { Child, CONFIG, DENO, decoder, encoder, randomBytes, run, sha256, writeAll } from "./_helpers.ts";

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

Deno.test("cli: without --allow-net, a one-line EACCES naming --allow-net=HOST (not privileged ports), exit 1, no stack trace", async () => {
  const result = await run(DENO, ["run", "--no-prompt", "--config", CONFIG, CLI, "serve", "--port", "0"]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^tcp-echo-deno: listen EACCES 127\.0\.0\.1:0: .*--allow-net=127\.0\.0\.1.*\n$/);
  assert.doesNotMatch(result.stderr, /1024/);
  assert.equal(result.stderr.split("\n").length, 2);
});

/**
 * A server that breaks RFC 862 by waiting: `silent` reads and never answers;
 * `never-closes` echoes but ignores the client's half-close. It records when it
 * accepted, so the bound is measured from the connect, not the CLI's start-up.
 */
async function withStallingServer(
  kind: "silent" | "never-closes",
  body: (port: number, accepted: number[]) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: number[] = [];
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      accepted.push(performance.now());
      conns.add(conn);
      void (async () => {
        const buffer = new Uint8Array(64 * 1024);
        try {
          for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
            if (kind === "never-closes") await writeAll(conn, buffer.subarray(0, n));
          }
        } catch {
          // The client gave up and reset: what the test waits for.
        }
      })();
    }
  })().catch(() => {});
  try {
    await body(listener.addr.port, accepted);
  } finally {
    listener.close();
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Already closed by the client's reset.
      }
    }
    await serving;
  }
}

for (const [kind, mode, printed] of [
  ["silent", "hello", ""],
  ["silent", "-", ""],
  ["never-closes", "hello", "Received response from server: hello\n"],
  ["never-closes", "-", "streamed\n"],
] as const) {
  Deno.test(`cli: ${kind} server, send ${mode} --timeout 2000: exit 1 with ETIMEDOUT within the timeout + 1 s, after printing what came back`, async () => {
    const TIMEOUT = 2000;
    await withStallingServer(kind, async (port, accepted) => {
      // Against the silent server stdin stays open: the client must not wait on it.
      const result = await run(DENO, cli("send", "--port", String(port), "--timeout", String(TIMEOUT), mode), {
        ...(mode === "-" ? { stdin: encoder.encode("streamed\n"), keepStdinOpen: kind === "silent" } : {}),
        timeoutMs: 30_000,
      });
      const ended = performance.now();
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^tcp-echo-deno: read ETIMEDOUT 127\.0\.0\.1:\d+: .*--timeout/);
      assert.equal(decoder.decode(result.stdout), printed);
      assert.equal(accepted.length, 1);
      const elapsed = ended - (accepted[0] as number);
      assert.ok(elapsed >= TIMEOUT && elapsed < TIMEOUT + 1000, `exited ${elapsed} ms after the connect`);
    });
  });
}

Deno.test("cli: serve --stats x exits 2 naming the flag and range, before binding (the port is held)", async () => {
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const result = await run(DENO, cli("serve", "--port", String(holder.addr.port), "--stats", "x"));
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^tcp-echo-deno: --stats must be an integer from 0 to 2147483, got "x"/);
    assert.equal(decoder.decode(result.stdout), "");
  } finally {
    holder.close();
  }
});
