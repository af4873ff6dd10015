/** Unix domain sockets: the same echo, half-close and backpressure as over TCP, and the socket file's life. */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type AddCase,
  halfCloseSlowReader,
  rawPeer,
  type Scope,
  sha256,
  tempDir,
  text,
  writeUntilStalled,
} from "./kit.ts";

/** A fresh socket path in a directory of the case's own, removed with it. */
function socketPath(t: Scope, name = "s.sock"): string {
  const dir = tempDir("echo-unix-");
  t.defer(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, name);
}

export function unixCases(add: AddCase): void {
  add("unix: the server reports its path; both ends' addresses are Unix ones", async (t) => {
    const path = socketPath(t);
    const server = await t.listen({ transport: "unix", path });
    assert.deepEqual(server.address, { transport: "unix", path });
    const client = await t.connect({ transport: "unix", path });
    assert.deepEqual(client.remoteAddress, { transport: "unix", path });
    assert.deepEqual(client.localAddress, { transport: "unix", path: "" });
    assert.equal(text(await client.echo("Hello, server!")), "Hello, server!");
  });

  // A Unix socket's write takes only what the kernel has room for, as TCP's does.
  for (const [name, size] of [
    ["0 B", 0],
    ["1 B", 1],
    ["64 KiB", 64 * 1024],
    ["16 MiB", 16 * 1024 * 1024],
  ] as const) {
    add(`unix: a payload of ${name} comes back byte-exact (hash compared)`, async (t) => {
      const path = socketPath(t);
      await t.listen({ transport: "unix", path });
      const payload = randomBytes(size);
      assert.equal(sha256(await t.roundTrip({ transport: "unix", path }, payload)), sha256(payload));
    });
  }

  add("unix: pipelining, 500 echoes in flight on one connection, each matched in order", async (t) => {
    const path = socketPath(t);
    await t.listen({ transport: "unix", path });
    const client = await t.connect({ transport: "unix", path });
    const payloads = Array.from({ length: 500 }, (_, i) => randomBytes(1 + ((i * 7919) % 4096)));
    const replies = await Promise.all(payloads.map((payload) => client.echo(payload)));
    for (const [i, reply] of replies.entries()) assert.equal(sha256(reply), sha256(payloads[i] as Uint8Array));
  });

  // Without allowHalfOpen on Bun's Unix listener, the server's side closes right
  // after the `end` handler and the queued echo is lost.
  add("unix: half-close, a raw slow reader gets 16 MiB back, then EOF", async (t) => {
    const path = socketPath(t);
    await t.listen({ transport: "unix", path });
    const peer = await rawPeer(t, { path });
    const payload = randomBytes(16 * 1024 * 1024);
    assert.equal(sha256(await halfCloseSlowReader(peer, payload)), sha256(payload));
  });

  add("unix: half-close, echoes still resolve after closeWrite(), then a clean EOF", async (t) => {
    const path = socketPath(t);
    await t.listen({ transport: "unix", path });
    const client = await t.connect({ transport: "unix", path });
    const pending = client.echo("after the FIN");
    await client.closeWrite();
    assert.equal(text(await pending), "after the FIN");
    assert.equal(await client.read(), null);
    await client.closed;
  });

  add("unix: backpressure, a peer that never reads, the server stops reading at its high-water mark", async (t) => {
    const path = socketPath(t);
    const server = await t.listen({ transport: "unix", path, highWaterMark: 64 * 1024 });
    const peer = await rawPeer(t, { path });
    const limit = 200 * 1024 * 1024;
    const written = await writeUntilStalled(peer, limit, () => server.stats.bytesIn);
    assert.ok(written < limit, `the server took all ${written} bytes from a peer that never reads`);
    const pending = server.stats.bytesIn - server.stats.bytesOut;
    assert.ok(pending >= 64 * 1024 && pending <= 64 * 1024 + 1024 * 1024, `${pending} bytes unsent`);
  });

  add("unix: a stale socket file, left by a process that died, is removed and the new server binds", async (t) => {
    const path = socketPath(t);
    // A socket bound and never unlinked: what a server killed with SIGKILL leaves.
    const bound = spawnSync(
      "python3",
      ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path],
      { timeout: 10_000 },
    );
    assert.equal(bound.status, 0, String(bound.stderr));
    assert.ok(existsSync(path));
    await t.listen({ transport: "unix", path });
    assert.equal(text(await t.roundTrip({ transport: "unix", path }, "fresh")), "fresh");
  });

  add("unix: a live server's path is EADDRINUSE, and the live server keeps its file", async (t) => {
    const path = socketPath(t);
    await t.listen({ transport: "unix", path });
    const error = await t.failure(t.listen({ transport: "unix", path }));
    assert.equal(error.code, "EADDRINUSE");
    assert.ok(error.message.includes(`unix:${path}`), error.message);
    assert.equal(text(await t.roundTrip({ transport: "unix", path }, "still mine")), "still mine");
  });

  add("unix: a file that is not a socket is EADDRINUSE and left alone", async (t) => {
    const path = socketPath(t);
    writeFileSync(path, "precious");
    assert.equal((await t.failure(t.listen({ transport: "unix", path }))).code, "EADDRINUSE");
    assert.equal(readFileSync(path, "utf8"), "precious");
  });

  add("unix: the socket file is removed on close", async (t) => {
    const path = socketPath(t);
    const server = await t.listen({ transport: "unix", path });
    assert.ok(existsSync(path));
    await server.close();
    assert.equal(existsSync(path), false);
  });

  add("unix: a path over 107 bytes is EINVAL naming the limit, for listen and connect", async (t) => {
    const path = socketPath(t, `${"x".repeat(120)}.sock`);
    for (const error of [
      await t.failure(t.listen({ transport: "unix", path })),
      await t.failure(t.connect({ transport: "unix", path })),
    ]) {
      assert.equal(error.code, "EINVAL");
      assert.ok(error.message.includes("107-byte limit"), error.message);
    }
  });

  add("unix: a path in a missing directory is EINVAL naming the directory", async (t) => {
    const missing = join(socketPath(t), "..", "missing");
    const error = await t.failure(t.listen({ transport: "unix", path: join(missing, "s.sock") }));
    assert.equal(error.code, "EINVAL");
    assert.ok(error.message.includes(JSON.stringify(missing)), error.message);
  });

  add("unix: connecting where no socket file is, ECONNREFUSED naming the path", async (t) => {
    const path = socketPath(t);
    const error = await t.failure(t.connect({ transport: "unix", path }));
    assert.equal(error.code, "ECONNREFUSED");
    assert.ok(error.message.includes(`unix:${path}`), error.message);
  });

  add("unix: TCP-only options with a Unix path are EINVAL, never ignored", async (t) => {
    const options = { transport: "unix", path: socketPath(t), port: 0 } as never;
    assert.equal((await t.failure(t.listen(options))).code, "EINVAL");
    assert.equal((await t.failure(t.connect(options))).code, "EINVAL");
  });
}
