/** Deno's own: TCP_NODELAY seen on its connection class, and a server process under memory and descriptor pressure. */
import assert from "node:assert/strict";
import { connect } from "../src/index.ts";
import {
  Child,
  CONFIG,
  cpuTicksOf,
  DENO,
  decoder,
  delay,
  encoder,
  randomBytes,
  rawClient,
  rssOf,
  withServer,
  writeAll,
} from "./_helpers.ts";

const FIXTURE = new URL("./fixtures/server.ts", import.meta.url).pathname;
const fixtureArgs = ["run", "--allow-net=127.0.0.1", "--allow-env", "--config", CONFIG, FIXTURE];

async function portOf(child: Child): Promise<number> {
  return JSON.parse(await child.line(/"listening"/)).port;
}

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

// The server lends its read buffers to the echo and reads into them again once
// that echo is written (see readLoop in src/adapter.ts): a buffer reused too
// soon would send other bytes in its place. Small segments from a peer that
// reads nothing for a while queue echoes behind a full socket, so lent buffers,
// spares and copies all come into play before the queue drains.
Deno.test("small segments while the peer stalls reading: every byte comes back in order", async () => {
  await withServer({}, async (server) => {
    const conn = await rawClient(server.address.port);
    conn.setNoDelay(true);
    const sent = randomBytes(6 * 1024 * 1024);
    const received = new Uint8Array(sent.byteLength);
    let got = 0;
    const reading = (async () => {
      await delay(300);
      while (got < received.byteLength) {
        const count = await conn.read(received.subarray(got));
        if (count === null) break;
        got += count;
      }
    })();
    for (let offset = 0; offset < sent.byteLength; ) {
      const size = 1 + ((offset * 7919) % 3000);
      const end = Math.min(offset + size, sent.byteLength);
      await writeAll(conn, sent.subarray(offset, end));
      offset = end;
    }
    await reading;
    conn.close();
    assert.equal(got, sent.byteLength);
    const first = received.findIndex((byte, i) => byte !== sent[i]);
    assert.equal(first, -1, `the echo differs from what was sent at byte ${first}`);
  });
});
