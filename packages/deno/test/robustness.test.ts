import assert from "node:assert/strict";
import { type ConnectionSummary, connect } from "../src/index.ts";
import {
  Child,
  CONFIG,
  codeOf,
  cpuTicksOf,
  DENO,
  decoder,
  delay,
  encoder,
  randomBytes,
  rawClient,
  readAll,
  rssOf,
  until,
  withServer,
  writeAll,
} from "./_helpers.ts";

const FIXTURE = new URL("./fixtures/server.ts", import.meta.url).pathname;
const fixtureArgs = ["run", "--allow-net=127.0.0.1", "--allow-env", "--config", CONFIG, FIXTURE];

async function portOf(child: Child): Promise<number> {
  return JSON.parse(await child.line(/"listening"/)).port;
}

Deno.test("a peer reset mid-stream: the server keeps serving and its count returns to zero", async () => {
  const errors: string[] = [];
  await withServer({ onError: (error) => void errors.push(error.code) }, async (server) => {
    for (let i = 0; i < 20; i++) {
      const conn = await rawClient(server.address.port);
      await writeAll(conn, randomBytes(256 * 1024));
      // Closing with echoed bytes unread makes the kernel send RST, not FIN.
      await until(() => server.stats.bytesOut > 0);
      conn.close();
    }
    await until(() => server.connections === 0);
    await using client = await connect({ port: server.address.port });
    assert.equal(decoder.decode(await client.echo("still here")), "still here");
    assert.equal(server.stats.accepted, 21);
    assert.ok(errors.length > 0 && errors.every((code) => code === "ECONNRESET" || code === "EPIPE"), errors.join());
  });
});

Deno.test("hooks that throw or reject are reported as EHOOK and never crash the server", async () => {
  const reported: string[] = [];
  await withServer(
    {
      onConnection: () => {
        throw new Error("boom");
      },
      onClose: async () => {
        await Promise.resolve();
        throw new Error("async boom");
      },
      onError: (error) => {
        reported.push(error.message);
        throw new Error("even onError throws");
      },
    },
    async (server) => {
      await using client = await connect({ port: server.address.port });
      assert.equal(decoder.decode(await client.echo("ok")), "ok");
      await client.closeWrite();
      await client.closed;
      await until(() => reported.length === 2);
      assert.deepEqual(reported, ["onConnection hook failed: boom", "onClose hook failed: async boom"]);
      assert.equal(server.stats.errors.EHOOK, 2);
    },
  );
});

Deno.test("a client that sends one byte at a time, slowly, gets every byte back", async () => {
  await withServer({}, async (server) => {
    await using client = await connect({ port: server.address.port });
    const replies: Promise<Uint8Array>[] = [];
    for (let i = 0; i < 5; i++) {
      replies.push(client.echo(new Uint8Array([i])));
      await delay(100);
    }
    assert.deepEqual(
      (await Promise.all(replies)).map((reply) => reply[0]),
      [0, 1, 2, 3, 4],
    );
  });
});

Deno.test("maxConnections: one more is closed at once, counted, and reported; the others are served", async () => {
  const closes: ConnectionSummary[] = [];
  await withServer({ maxConnections: 2, onClose: (summary) => void closes.push(summary) }, async (server) => {
    const a = await connect({ port: server.address.port });
    const b = await connect({ port: server.address.port });
    await a.echo("a");
    await b.echo("b");
    const c = await connect({ port: server.address.port });
    assert.match((await codeOf(c.echo("c"))) ?? "", /ECONNRESET|ECLOSED|EPROTO/);
    assert.equal(server.stats.rejected, 1);
    assert.ok(closes.some((summary) => summary.reason === "limit"));
    assert.equal(decoder.decode(await a.echo("a again")), "a again");
    await Promise.all([a.close(), b.close(), c.close()]);
  });
});

Deno.test("idleTimeout of 1 s: a silent connection is closed after 1 to 2 s and counted", async () => {
  await withServer({ idleTimeout: 1000 }, async (server) => {
    const conn = await rawClient(server.address.port);
    const begin = Date.now();
    assert.equal((await readAll(conn)).byteLength, 0);
    const elapsed = Date.now() - begin;
    conn.close();
    // Core's sweep ticks every 250 ms; the upper bound leaves room for a loaded machine.
    assert.ok(elapsed >= 950 && elapsed < 3000, `closed after ${elapsed} ms`);
    await until(() => server.stats.idleClosed === 1);
  });
});

Deno.test("TCP_NODELAY follows the noDelay option on both sides", async () => {
  const calls: boolean[] = [];
  // Record every setNoDelay on Deno's connection class.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = listener.accept();
  const seed = await Deno.connect({ port: listener.addr.port });
  const proto = Object.getPrototypeOf(seed) as { setNoDelay(value?: boolean): void };
  (await accepting).close();
  seed.close();
  listener.close();
  const original = proto.setNoDelay;
  proto.setNoDelay = function (this: unknown, value?: boolean) {
    calls.push(value ?? true);
    return original.call(this, value);
  };
  try {
    await withServer({ noDelay: false }, async (server) => {
      await using client = await connect({ port: server.address.port, noDelay: false });
      await client.echo("x");
    });
    assert.deepEqual(calls, [false, false]);
  } finally {
    proto.setNoDelay = original;
  }
});

// In a child process so its RSS is the server's alone.
Deno.test("a peer that never reads: server memory stays bounded while 200 MB are offered", async () => {
  const child = new Child(DENO, fixtureArgs);
  try {
    const port = await portOf(child);
    // Warm up: one echo, so the idle figure includes a served connection.
    await using warm = await connect({ port });
    await warm.echo(randomBytes(1024 * 1024));
    await delay(200);
    const idle = rssOf(child.pid);
    const conn = await rawClient(port);
    const chunk = randomBytes(1024 * 1024);
    let written = 0;
    let stalled = false;
    while (written < 200 * 1024 * 1024) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        conn.write(chunk).then((count) => count),
        new Promise<"stalled">((resolve) => {
          timer = setTimeout(() => resolve("stalled"), 1000);
        }),
      ]);
      clearTimeout(timer);
      if (outcome === "stalled") {
        stalled = true;
        break;
      }
      written += outcome;
    }
    const loaded = rssOf(child.pid);
    assert.ok(stalled, `the server took all ${written} bytes without the client reading`);
    assert.ok(written < 100 * 1024 * 1024, `wrote ${written} bytes before stalling`);
    assert.ok(loaded - idle < 32 * 1024 * 1024, `RSS grew from ${idle} to ${loaded}`);
    // The pending write rejects once the connection is gone.
    conn.close();
    await delay(50);
  } finally {
    await child.stop("SIGTERM");
  }
});

// Deno ends a `for await` accept loop on the first EMFILE, and panics if its
// lazily set-up signal handling finds no free descriptor: the adapter must do neither.
Deno.test("EMFILE: under a 64-descriptor limit, 120 clients never stop the server or spin the CPU", async () => {
  const child = new Child("prlimit", ["--nofile=64:64", DENO, ...fixtureArgs]);
  const conns: Deno.Conn[] = [];
  try {
    const port = await portOf(child);
    for (let i = 0; i < 120; i++) {
      const conn = await rawClient(port);
      conns.push(conn);
      conn.write(encoder.encode("x")).catch(() => {});
    }
    await child.line(/"EMFILE"/);
    const before = cpuTicksOf(child.pid);
    await delay(2000);
    const ticks = cpuTicksOf(child.pid) - before;
    // Clock ticks are 1/100 s: a busy loop would use ~200 of them in 2 s.
    assert.ok(ticks < 60, `the server used ${ticks} ticks of CPU in 2 s`);
    for (const conn of conns.splice(0)) conn.close();
    // Descriptors free up: a new client is served, and the process is still the same one.
    let reply = "";
    for (let attempt = 0; attempt < 50 && reply !== "back"; attempt++) {
      await using client = await connect({ port, timeout: 5000 });
      reply = decoder.decode(await client.echo("back", { timeout: 5000 }).catch(() => new Uint8Array()));
      if (reply !== "back") await delay(200);
    }
    assert.equal(reply, "back");
    assert.equal(
      await Promise.race([child.process.status.then(() => "exited"), delay(100).then(() => "running")]),
      "running",
    );
  } finally {
    for (const conn of conns) conn.close();
    await child.stop("SIGTERM");
  }
});

Deno.test("a client app that does not read: the client stops reading at its high-water mark, then catches up", async () => {
  await withServer({}, async (server) => {
    await using client = await connect({ port: server.address.port, highWaterMark: 64 * 1024 });
    const payload = randomBytes(64 * 1024 * 1024);
    const writing = client.write(payload).then(() => client.closeWrite());
    // Wait until the server has nothing more to send: everything is stuck in buffers.
    let last = -1;
    while (server.stats.bytesOut !== last) {
      last = server.stats.bytesOut;
      await delay(500);
    }
    assert.ok(last < payload.byteLength / 2, `the client took ${last} bytes without being read`);
    let received = 0;
    for (let chunk = await client.read(); chunk; chunk = await client.read()) received += chunk.byteLength;
    await writing;
    assert.equal(received, payload.byteLength);
  });
});
