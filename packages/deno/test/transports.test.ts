/** IPv6, Unix domain sockets and TLS on Deno: the same echo and half-close cases as over TCP, and each transport's errors. */
import assert from "node:assert/strict";
import { failure, makeCerts, roundTrip as roundTripWith, tempDir } from "@tcp-echo/testkit/fixtures";
import { type ConnectOptions, connect, listen, type UnixConnectOptions } from "../src/index.ts";
import { Child, CONFIG, DENO, decoder, delay, randomBytes, readAll, run, sha256, until, writeAll } from "./_helpers.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const CLI = new URL("../src/cli.ts", import.meta.url).pathname;
/** The CLI with what unix sockets (read, write) and certificate files (read) need. */
const cli = (...args: string[]) => [
  "run",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--no-prompt",
  "--config",
  CONFIG,
  CLI,
  ...args,
];

const DIR = tempDir("echo-deno-");
const certs = makeCerts(`${DIR}/certs`);
let sockets = 0;
const socketPath = () => `${DIR}/s${++sockets}.sock`;
const text = (data: Uint8Array) => decoder.decode(data);

// Runs last: the temporary directory goes with the test module.
globalThis.addEventListener("unload", () => Deno.removeSync(DIR, { recursive: true }));

/** Runs `body` with a server, closed (forcing) afterwards. */
async function using<T extends { close(options?: { force?: boolean }): Promise<void> }>(
  server: Promise<T>,
  body: (server: T) => Promise<void>,
): Promise<void> {
  const started = await server;
  try {
    await body(started);
  } finally {
    await started.close({ force: true });
  }
}

const roundTrip = (options: ConnectOptions | UnixConnectOptions, payload: Uint8Array | string) =>
  roundTripWith({ connect }, options, payload);

/**
 * Sends `payload` and half-closes (`closeWrite`) while not reading; reads to EOF
 * only after a pause, so the server's queue is full when the FIN arrives.
 */
async function halfCloseSlowReader(conn: Deno.Conn, payload: Uint8Array): Promise<Uint8Array> {
  const writing = writeAll(conn, payload).then(() => conn.closeWrite());
  await delay(300);
  const echoed = await readAll(conn);
  await writing;
  conn.close();
  return echoed;
}

/** A CLI `serve` (Deno's, or another runtime's real binary), stopped after `body`. */
async function withCli(command: string, args: string[], body: (line: string, child: Child) => Promise<void>) {
  const child = new Child(command, args);
  try {
    await body(await child.line(/^Server listening on /), child);
  } finally {
    await child.stop("SIGKILL");
  }
}

const portOf = (line: string) => String(Number(/:(\d+)$/.exec(line)?.[1]));

Deno.test("IPv6: a server on ::1 reports ::1 (numeric, no brackets); clients reach it as ::1 and [::1]", async () => {
  await using(listen({ hostname: "::1", port: 0 }), async (server) => {
    assert.deepEqual(server.address, { transport: "tcp", hostname: "::1", port: server.address.port, family: "IPv6" });
    assert.equal(text(await roundTrip({ hostname: "::1", port: server.address.port }, "six")), "six");
    await using client = await connect({ hostname: "[::1]", port: server.address.port });
    assert.equal(client.remoteAddress.hostname, "::1");
    assert.equal(text(await client.echo("bracketed")), "bracketed");
  });
  await using(listen({ hostname: "[::1]", port: 0 }), async (server) => {
    assert.equal(server.address.hostname, "::1");
  });
});

Deno.test("IPv6: half-close over ::1, a slow reader gets every byte, then EOF", async () => {
  await using(listen({ hostname: "::1", port: 0 }), async (server) => {
    const payload = randomBytes(8 * 1024 * 1024);
    const conn = await Deno.connect({ hostname: "::1", port: server.address.port });
    assert.equal(await sha256(await halfCloseSlowReader(conn, payload)), await sha256(payload));
  });
});

Deno.test("unix: the server reports its path; both ends' addresses are Unix ones", async () => {
  const path = socketPath();
  await using(listen({ transport: "unix", path }), async (server) => {
    assert.deepEqual(server.address, { transport: "unix", path });
    await using client = await connect({ transport: "unix", path });
    assert.deepEqual(client.remoteAddress, { transport: "unix", path });
    assert.deepEqual(client.localAddress, { transport: "unix", path: "" });
    assert.equal(text(await client.echo("Hello, server!")), "Hello, server!");
  });
});

for (const [name, size] of [
  ["0 B", 0],
  ["1 B", 1],
  ["64 KiB", 64 * 1024],
  ["16 MiB", 16 * 1024 * 1024],
] as const) {
  // conn.write over a Unix socket takes part of a large buffer too: the loop on its count is what keeps this exact.
  Deno.test(`unix: ${name} of random bytes comes back byte-exact (hash compared)`, async () => {
    const path = socketPath();
    await using(listen({ transport: "unix", path }), async () => {
      const payload = randomBytes(size);
      assert.equal(await sha256(await roundTrip({ transport: "unix", path }, payload)), await sha256(payload));
    });
  });
}

Deno.test("unix: pipelining, 500 echoes in flight on one connection, each matched in order", async () => {
  const path = socketPath();
  await using(listen({ transport: "unix", path }), async () => {
    await using client = await connect({ transport: "unix", path });
    const payloads = Array.from({ length: 500 }, (_, i) => randomBytes(1 + ((i * 7919) % 4096)));
    const replies = await Promise.all(payloads.map((payload) => client.echo(payload)));
    for (const [i, reply] of replies.entries()) assert.deepEqual(reply, payloads[i]);
  });
});

// Over a Unix socket as over TCP, reading `conn.readable` to EOF would close the
// whole connection: the server must still echo after the client's closeWrite().
Deno.test("unix: half-close with a slow reader, every byte comes back, then EOF", async () => {
  const path = socketPath();
  await using(listen({ transport: "unix", path }), async () => {
    const payload = randomBytes(16 * 1024 * 1024);
    const conn = await Deno.connect({ transport: "unix", path });
    assert.equal(await sha256(await halfCloseSlowReader(conn, payload)), await sha256(payload));
  });
});

Deno.test("unix: echoes still resolve after closeWrite(), then a clean EOF", async () => {
  const path = socketPath();
  await using(listen({ transport: "unix", path }), async () => {
    const client = await connect({ transport: "unix", path });
    const pending = client.echo("after the FIN");
    await client.closeWrite();
    assert.equal(text(await pending), "after the FIN");
    assert.equal(await client.read(), null);
    await client.closed;
  });
});

Deno.test("unix: a peer that never reads, the server stops reading at its high-water mark", async () => {
  const path = socketPath();
  await using(listen({ transport: "unix", path, highWaterMark: 64 * 1024 }), async (server) => {
    const conn = await Deno.connect({ transport: "unix", path });
    const chunk = new Uint8Array(64 * 1024);
    let sent = 0;
    const writing = (async () => {
      for (let i = 0; i < 4096; i++) sent += await conn.write(chunk);
    })().catch(() => {});
    // Written until nothing moves for 1 s: both sides' buffers are full.
    for (let last = -1; last !== sent; await delay(1000)) last = sent;
    assert.ok(sent < 4096 * chunk.byteLength, `sent ${sent}`);
    assert.ok(server.stats.bytesIn - server.stats.bytesOut < 64 * 1024 + 256 * 1024);
    conn.close();
    await writing;
  });
});

Deno.test("unix: a stale socket file left by a crashed server is removed, and the new server binds", async () => {
  const path = socketPath();
  await withCli(DENO, cli("serve", "--unix", path), async (_line, child) => {
    await child.stop("SIGKILL");
  });
  assert.equal(Deno.statSync(path).isSocket, true);
  await using(listen({ transport: "unix", path }), async () => {
    assert.equal(text(await roundTrip({ transport: "unix", path }, "fresh")), "fresh");
  });
});

Deno.test("unix: a live server's path is EADDRINUSE, and the live server keeps its file", async () => {
  const path = socketPath();
  await using(listen({ transport: "unix", path }), async () => {
    const error = await failure(listen({ transport: "unix", path }));
    assert.equal(error.code, "EADDRINUSE");
    assert.ok(error.message.includes(`unix:${path}`), error.message);
    assert.equal(text(await roundTrip({ transport: "unix", path }, "still mine")), "still mine");
  });
});

Deno.test("unix: a file that is not a socket is EADDRINUSE and left alone", async () => {
  const path = socketPath();
  Deno.writeTextFileSync(path, "precious");
  assert.equal((await failure(listen({ transport: "unix", path }))).code, "EADDRINUSE");
  assert.equal(Deno.readTextFileSync(path), "precious");
});

Deno.test("unix: the socket file is removed on close", async () => {
  const path = socketPath();
  const server = await listen({ transport: "unix", path });
  assert.equal(Deno.statSync(path).isSocket, true);
  await server.close();
  assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
});

Deno.test("unix: a path over 107 bytes is EINVAL naming the limit, for listen and connect", async () => {
  const path = `${DIR}/${"x".repeat(120)}.sock`;
  for (const error of [
    await failure(listen({ transport: "unix", path })),
    await failure(connect({ transport: "unix", path })),
  ]) {
    assert.equal(error.code, "EINVAL");
    assert.ok(error.message.includes("107-byte limit"), error.message);
  }
});

Deno.test("unix: a path in a missing directory is EINVAL naming the directory", async () => {
  const error = await failure(listen({ transport: "unix", path: `${DIR}/missing/s.sock` }));
  assert.equal(error.code, "EINVAL");
  assert.ok(error.message.includes(JSON.stringify(`${DIR}/missing`)), error.message);
});

Deno.test("unix: connecting where no socket file is, ECONNREFUSED naming the path", async () => {
  const path = socketPath();
  const error = await failure(connect({ transport: "unix", path }));
  assert.equal(error.code, "ECONNREFUSED");
  assert.ok(error.message.includes(`unix:${path}`), error.message);
});

Deno.test("tls: 4 MiB byte-exact, checked against the CA for 127.0.0.1, ::1 and localhost", async () => {
  await using(listen({ port: 0, tls: certs.server }), async (server) => {
    const port = server.address.port;
    const payload = randomBytes(4 * 1024 * 1024);
    assert.equal(await sha256(await roundTrip({ port, tls: { ca: certs.ca } }, payload)), await sha256(payload));
    assert.equal(text(await roundTrip({ hostname: "localhost", port, tls: { ca: certs.ca } }, "name")), "name");
  });
  await using(listen({ hostname: "::1", port: 0, tls: certs.server }), async (server) => {
    const overSix = await roundTrip({ hostname: "[::1]", port: server.address.port, tls: { ca: certs.ca } }, "v6");
    assert.equal(text(overSix), "v6");
  });
});

// A TlsConn's closeWrite() sends close_notify and keeps reading.
Deno.test("tls: half-close, echoes resolve after closeWrite(), then EOF", async () => {
  await using(listen({ port: 0, tls: certs.server }), async (server) => {
    const client = await connect({ port: server.address.port, tls: { ca: certs.ca } });
    const pending = client.echo("after close_notify");
    await client.closeWrite();
    assert.equal(text(await pending), "after close_notify");
    assert.equal(await client.read(), null);
    await client.closed;
  });
});

Deno.test("tls: half-close with a slow reader, every byte comes back, then EOF", async () => {
  await using(listen({ port: 0, tls: certs.server }), async (server) => {
    const conn = await Deno.connectTls({ hostname: "127.0.0.1", port: server.address.port, caCerts: [certs.ca] });
    const payload = randomBytes(8 * 1024 * 1024);
    assert.equal(await sha256(await halfCloseSlowReader(conn, payload)), await sha256(payload));
  });
});

Deno.test("tls: ETLS for an unknown CA, with the reason in the message; the server reports it", async () => {
  const reported: string[] = [];
  await using(listen({ port: 0, tls: certs.server, onError: (e) => void reported.push(e.code) }), async (server) => {
    const error = await failure(roundTrip({ port: server.address.port, tls: { ca: certs.otherCa } }, "x"));
    assert.equal(error.code, "ETLS");
    assert.match(error.message, /TLS handshake with 127\.0\.0\.1:\d+ failed: invalid peer certificate: UnknownIssuer/);
    assert.equal((await failure(roundTrip({ port: server.address.port, tls: true }, "x"))).code, "ETLS");
    await until(() => reported.includes("ETLS"));
    assert.equal(server.stats.accepted, 0);
  });
});

Deno.test("tls: ETLS for the wrong server name", async () => {
  await using(listen({ port: 0, tls: certs.server }), async (server) => {
    const tls = { ca: certs.ca, serverName: "wrong.example" };
    const error = await failure(roundTrip({ port: server.address.port, tls }, "x"));
    assert.equal(error.code, "ETLS");
    assert.ok(error.message.includes("wrong.example"), error.message);
  });
});

Deno.test("tls: ETLS for an expired certificate, saying so", async () => {
  await using(listen({ port: 0, tls: certs.expired }), async (server) => {
    const error = await failure(roundTrip({ port: server.address.port, tls: { ca: certs.ca } }, "x"));
    assert.equal(error.code, "ETLS");
    assert.match(error.message, /expired/i);
  });
});

Deno.test("tls: a mutual-TLS server is EINVAL on Deno (Deno.listenTls cannot ask for a client certificate)", async () => {
  const error = await failure(listen({ port: 0, tls: { ...certs.server, ca: certs.ca, requestCert: true } }));
  assert.equal(error.code, "EINVAL");
  assert.match(error.message, /Deno\.listenTls cannot ask clients for a certificate/);
});

Deno.test("tls: mutual TLS against a Bun server, with a client certificate served, without rejected with ETLS", async () => {
  const bun = `${ROOT}node_modules/bun/bin/bun.exe`;
  const serve = [`${ROOT}packages/bun/src/cli.ts`, "serve", "--port", "0"];
  const tlsFlags = ["--tls-cert", certs.file("server.pem"), "--tls-key", certs.file("server.key")];
  await withCli(bun, [...serve, ...tlsFlags, "--tls-ca", certs.file("ca.pem")], async (line) => {
    const port = Number(portOf(line));
    const mutual = await roundTrip({ hostname: "localhost", port, tls: { ca: certs.ca, ...certs.client } }, "mutual");
    assert.equal(text(mutual), "mutual");
    assert.equal((await failure(roundTrip({ port, tls: { ca: certs.ca } }, "anonymous"))).code, "ETLS");
  });
});

Deno.test("cli: serve --unix, send --unix; SIGTERM removes the socket file", async () => {
  const path = socketPath();
  await withCli(DENO, cli("serve", "--unix", path), async (line, child) => {
    assert.equal(line, `Server listening on unix:${path}`);
    const sent = await run(DENO, cli("send", "--unix", path, "over", "unix"));
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(decoder.decode(sent.stdout), "Received response from server: over unix\n");
    assert.equal((await child.stop("SIGTERM")).code, 0);
  });
  assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
});

Deno.test("cli: serve --tls-cert/--tls-key, send --tls-ca --tls-servername; an unknown CA is exit 1 with ETLS", async () => {
  const tlsFlags = ["--tls-cert", certs.file("server.pem"), "--tls-key", certs.file("server.key")];
  await withCli(DENO, cli("serve", "--port", "0", ...tlsFlags), async (line) => {
    const port = portOf(line);
    const ok = await run(
      DENO,
      cli("send", "--port", port, "--tls-ca", certs.file("ca.pem"), "--tls-servername", "localhost", "secret"),
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(decoder.decode(ok.stdout), "Received response from server: secret\n");
    const unknown = await run(DENO, cli("send", "--port", port, "--tls-ca", certs.file("other-ca.pem")));
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^tcp-echo-deno: connect ETLS 127\.0\.0\.1:\d+: TLS handshake/);
  });
});

Deno.test("cli: serve --unix without --allow-write is a one-line EACCES naming the flags, exit 1", async () => {
  const path = socketPath();
  const result = await run(DENO, [
    "run",
    "--allow-net",
    "--allow-read",
    "--no-prompt",
    "--config",
    CONFIG,
    CLI,
    "serve",
    "--unix",
    path,
  ]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^tcp-echo-deno: listen EACCES unix:.*--allow-write.*\n$/);
});
