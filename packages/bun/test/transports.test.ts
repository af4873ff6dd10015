/** IPv6, Unix domain sockets and TLS on Bun: the same echo and half-close cases as over TCP, and each transport's errors. */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ConnectionOptions, connect as tlsConnect } from "node:tls";
import { failure, makeCerts, roundTrip as roundTripWith, tempDir } from "@tcp-echo/testkit/fixtures";
import type { Socket } from "bun";
import { type ConnectOptions, connect, listen, type UnixConnectOptions } from "../src/index.ts";
import { BUN, killChildren, lines, randomBytes, sha256, spawnChild, until, writeUntilStalled } from "./helpers.ts";

const CLI = new URL("../src/cli.ts", import.meta.url).pathname;
const DIR = tempDir("echo-bun-");
const certs = makeCerts(join(DIR, "certs"));
let sockets = 0;
const socketPath = () => join(DIR, `s${++sockets}.sock`);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  killChildren();
});
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

async function start<T extends { close(options?: { force?: boolean }): Promise<void> }>(server: Promise<T>) {
  const started = await server;
  cleanup.push(() => started.close({ force: true }));
  return started;
}

const roundTrip = (options: ConnectOptions | UnixConnectOptions, payload: Uint8Array | string) =>
  roundTripWith({ connect }, options, payload);

type RawTarget = { unix: string } | { hostname: string; port: number; tls?: { ca: string } };

/**
 * A raw Bun socket that sends `payload`, half-closes with shutdown() before
 * reading anything, and reads to EOF after a pause: the slow reader.
 */
async function halfCloseSlowReader(target: RawTarget, payload: Uint8Array): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let ended!: () => void;
  const done = new Promise<void>((resolve) => {
    ended = resolve;
  });
  let rest = payload;
  let opened!: (socket: Socket<unknown>) => void;
  const ready = new Promise<Socket<unknown>>((resolve) => {
    opened = resolve;
  });
  const push = (socket: Socket<unknown>) => {
    while (rest.byteLength > 0) {
      const written = socket.write(rest);
      if (written <= 0) return;
      rest = rest.subarray(written);
    }
    socket.shutdown();
  };
  const tls = "hostname" in target && target.tls !== undefined;
  await Bun.connect({
    ...target,
    allowHalfOpen: true,
    socket: {
      open(socket) {
        if (!tls) opened(socket);
      },
      handshake(socket) {
        opened(socket);
      },
      data(_socket, chunk) {
        chunks.push(chunk);
      },
      drain: push,
      end: () => ended(),
      close: () => ended(),
    },
  } as Parameters<typeof Bun.connect>[0]);
  const socket = await ready;
  socket.pause();
  push(socket);
  await Bun.sleep(300);
  socket.resume();
  await done;
  socket.end();
  return Buffer.concat(chunks);
}

/** Starts the Bun CLI's `serve` with a hard timeout; resolves with it and its first line. */
async function serveCli(args: string[]) {
  const child = spawnChild([BUN, CLI, "serve", ...args]);
  const line = await lines(child)();
  return { child, line };
}

async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawnChild([BUN, CLI, ...args]);
  const [code, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  return { code, stdout, stderr };
}

describe("bun: IPv6", () => {
  test("a server on ::1 reports ::1 (numeric, no brackets); clients reach it as ::1 and [::1]", async () => {
    const server = await start(listen({ hostname: "::1", port: 0 }));
    expect(server.address).toMatchObject({ transport: "tcp", hostname: "::1", family: "IPv6" });
    expect(text(await roundTrip({ hostname: "::1", port: server.address.port }, "six"))).toBe("six");
    const client = await connect({ hostname: "[::1]", port: server.address.port });
    cleanup.push(() => client.close());
    expect(client.remoteAddress).toMatchObject({ hostname: "::1", family: "IPv6" });
    expect(text(await client.echo("bracketed"))).toBe("bracketed");
  });

  test("[::1] given to listen is reported as ::1", async () => {
    const server = await start(listen({ hostname: "[::1]", port: 0 }));
    expect(server.address.hostname).toBe("::1");
  });

  test("half-close over ::1: a slow reader gets every byte, then EOF", async () => {
    const server = await start(listen({ hostname: "::1", port: 0 }));
    const payload = randomBytes(8 * 1024 * 1024);
    const echoed = await halfCloseSlowReader({ hostname: "::1", port: server.address.port }, payload);
    expect(sha256(echoed)).toBe(sha256(payload));
  });
});

describe("bun: Unix domain sockets", () => {
  test("the server reports its path; both ends' addresses are Unix ones", async () => {
    const path = socketPath();
    const server = await start(listen({ transport: "unix", path }));
    expect(server.address).toEqual({ transport: "unix", path });
    const client = await connect({ transport: "unix", path });
    cleanup.push(() => client.close());
    expect(client.remoteAddress).toEqual({ transport: "unix", path });
    expect(client.localAddress).toEqual({ transport: "unix", path: "" });
    expect(text(await client.echo("Hello, server!"))).toBe("Hello, server!");
  });

  // Over a Unix socket as over TCP, socket.write() takes only what the kernel
  // has room for: 16 MiB is dropped in part without the adapter's queue.
  test.each([
    ["0 B", 0],
    ["1 B", 1],
    ["64 KiB", 64 * 1024],
    ["16 MiB", 16 * 1024 * 1024],
  ])("payload %s comes back byte-exact (hash compared)", async (_name, size) => {
    const path = socketPath();
    await start(listen({ transport: "unix", path }));
    const payload = randomBytes(size);
    expect(sha256(await roundTrip({ transport: "unix", path }, payload))).toBe(sha256(payload));
  });

  test("pipelining: 500 echoes in flight on one connection, each matched in order", async () => {
    const path = socketPath();
    await start(listen({ transport: "unix", path }));
    const client = await connect({ transport: "unix", path });
    cleanup.push(() => client.close());
    const payloads = Array.from({ length: 500 }, (_, i) => randomBytes(1 + ((i * 7919) % 4096)));
    const replies = await Promise.all(payloads.map((p) => client.echo(p)));
    for (const [i, reply] of replies.entries()) expect(sha256(reply)).toBe(sha256(payloads[i] as Uint8Array));
  });

  // Without allowHalfOpen on the Unix listener, Bun closes the server's side
  // right after the `end` handler and the queued echo is lost.
  test("half-close with a slow reader: every byte comes back, then EOF", async () => {
    const path = socketPath();
    await start(listen({ transport: "unix", path }));
    const payload = randomBytes(16 * 1024 * 1024);
    expect(sha256(await halfCloseSlowReader({ unix: path }, payload))).toBe(sha256(payload));
  });

  test("half-close: echoes still resolve after closeWrite(), then a clean EOF", async () => {
    const path = socketPath();
    await start(listen({ transport: "unix", path }));
    const client = await connect({ transport: "unix", path });
    const pending = client.echo("after the FIN");
    await client.closeWrite();
    expect(text(await pending)).toBe("after the FIN");
    expect(await client.read()).toBeNull();
    await client.closed;
  });

  test("a peer that never reads: the server stops reading at its high-water mark", async () => {
    const path = socketPath();
    const server = await start(listen({ transport: "unix", path, highWaterMark: 64 * 1024 }));
    const socket = await Bun.connect({ unix: path, allowHalfOpen: true, socket: { data() {} } });
    cleanup.push(() => socket.terminate());
    socket.pause();
    const limit = 256 * 1024 * 1024;
    const sent = await writeUntilStalled(socket, limit);
    expect(sent).toBeLessThan(limit);
    await until(() => server.stats.bytesIn > 0);
    expect(server.stats.bytesIn - server.stats.bytesOut).toBeLessThan(64 * 1024 + 256 * 1024);
  });

  test("a stale socket file left by a crashed server is removed, and the new server binds", async () => {
    const path = socketPath();
    const { child } = await serveCli(["--unix", path]);
    child.kill("SIGKILL");
    await child.exited;
    expect(existsSync(path)).toBe(true);
    await start(listen({ transport: "unix", path }));
    expect(text(await roundTrip({ transport: "unix", path }, "fresh"))).toBe("fresh");
  });

  test("a live server's path is EADDRINUSE, and the live server keeps its file", async () => {
    const path = socketPath();
    await start(listen({ transport: "unix", path }));
    const error = await failure(listen({ transport: "unix", path }));
    expect(error.code).toBe("EADDRINUSE");
    expect(error.message).toContain(`unix:${path}`);
    expect(text(await roundTrip({ transport: "unix", path }, "still mine"))).toBe("still mine");
  });

  test("a file that is not a socket is EADDRINUSE and left alone", async () => {
    const path = socketPath();
    writeFileSync(path, "precious");
    expect((await failure(listen({ transport: "unix", path }))).code).toBe("EADDRINUSE");
    expect(readFileSync(path, "utf8")).toBe("precious");
  });

  test("the socket file is removed on close", async () => {
    const path = socketPath();
    const server = await listen({ transport: "unix", path });
    expect(existsSync(path)).toBe(true);
    await server.close();
    expect(existsSync(path)).toBe(false);
  });

  test("a path over 107 bytes is EINVAL naming the limit, for listen and connect", async () => {
    const path = join(DIR, `${"x".repeat(120)}.sock`);
    for (const error of [
      await failure(listen({ transport: "unix", path })),
      await failure(connect({ transport: "unix", path })),
    ]) {
      expect(error.code).toBe("EINVAL");
      expect(error.message).toContain("107-byte limit");
    }
  });

  test("a path in a missing directory is EINVAL naming the directory", async () => {
    const error = await failure(listen({ transport: "unix", path: join(DIR, "missing", "s.sock") }));
    expect(error.code).toBe("EINVAL");
    expect(error.message).toContain(JSON.stringify(join(DIR, "missing")));
  });

  test("connecting where no socket file is: ECONNREFUSED naming the path", async () => {
    const path = socketPath();
    const error = await failure(connect({ transport: "unix", path }));
    expect(error.code).toBe("ECONNREFUSED");
    expect(error.message).toContain(`unix:${path}`);
  });
});

describe("bun: TLS", () => {
  test("echo over TLS: 4 MiB byte-exact, checked against the CA for 127.0.0.1, ::1 and localhost", async () => {
    const server = await start(listen({ port: 0, tls: certs.server }));
    const payload = randomBytes(4 * 1024 * 1024);
    const echoed = await roundTrip({ port: server.address.port, tls: { ca: certs.ca } }, payload);
    expect(sha256(echoed)).toBe(sha256(payload));
    const six = await start(listen({ hostname: "::1", port: 0, tls: certs.server }));
    const overSix = await roundTrip({ hostname: "[::1]", port: six.address.port, tls: { ca: certs.ca } }, "v6");
    expect(text(overSix)).toBe("v6");
    const named = await roundTrip({ hostname: "localhost", port: server.address.port, tls: { ca: certs.ca } }, "name");
    expect(text(named)).toBe("name");
  });

  // shutdown() on a TLS socket sends close_notify and FIN and keeps reading.
  test("half-close over TLS: echoes resolve after closeWrite(), then EOF", async () => {
    const server = await start(listen({ port: 0, tls: certs.server }));
    const client = await connect({ port: server.address.port, tls: { ca: certs.ca } });
    const pending = client.echo("after close_notify");
    await client.closeWrite();
    expect(text(await pending)).toBe("after close_notify");
    expect(await client.read()).toBeNull();
    await client.closed;
  });

  test("half-close over TLS with a slow reader: every byte comes back, then EOF", async () => {
    const server = await start(listen({ port: 0, tls: certs.server }));
    const payload = randomBytes(8 * 1024 * 1024);
    const target = { hostname: "127.0.0.1", port: server.address.port, tls: { ca: certs.ca } };
    expect(sha256(await halfCloseSlowReader(target, payload))).toBe(sha256(payload));
  });

  // end() over TLS keeps the descriptor until the peer answers close_notify: an
  // idle peer that holds its side open kept the connection, and no close was reported.
  test("an idle TLS peer that holds its side open is closed and reported as idle-timeout", async () => {
    const reasons: string[] = [];
    const server = await start(
      listen({ port: 0, tls: certs.server, idleTimeout: 300, onClose: (c) => void reasons.push(c.reason) }),
    );
    let peerClosed = false; // its end or close: the server let go
    // Bun's own client answers close_notify at once; node:tls with allowHalfOpen
    // does not, as a Node peer would not.
    const peer = tlsConnect({
      host: "127.0.0.1",
      port: server.address.port,
      ca: certs.ca,
      servername: "localhost",
      allowHalfOpen: true,
    } as ConnectionOptions);
    peer.on("error", () => {});
    const letGo = () => {
      peerClosed = true;
    };
    peer.on("end", letGo);
    peer.on("close", letGo);
    try {
      await until(() => reasons.length > 0, 5000);
      expect(reasons).toEqual(["idle-timeout"]);
      expect(server.connections).toBe(0);
      await until(() => peerClosed, 5000);
    } finally {
      peer.destroy();
    }
  });

  test("ETLS for an unknown CA, with the reason in the message", async () => {
    const server = await start(listen({ port: 0, tls: certs.server }));
    const error = await failure(roundTrip({ port: server.address.port, tls: { ca: certs.otherCa } }, "x"));
    expect(error.code).toBe("ETLS");
    expect(error.message).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed: .*certificate/i);
    expect((await failure(roundTrip({ port: server.address.port, tls: true }, "x"))).code).toBe("ETLS");
  });

  test("ETLS for the wrong server name", async () => {
    const server = await start(listen({ port: 0, tls: certs.server }));
    const tls = { ca: certs.ca, serverName: "wrong.example" };
    const error = await failure(roundTrip({ port: server.address.port, tls }, "x"));
    expect(error.code).toBe("ETLS");
    expect(error.message).toContain("wrong.example");
  });

  test("ETLS for an expired certificate, saying so", async () => {
    const server = await start(listen({ port: 0, tls: certs.expired }));
    const error = await failure(roundTrip({ port: server.address.port, tls: { ca: certs.ca } }, "x"));
    expect(error.code).toBe("ETLS");
    expect(error.message).toMatch(/expired/i);
  });

  test("mutual TLS: a client with a certificate is served, one without is rejected with ETLS", async () => {
    const reported: string[] = [];
    const server = await start(
      listen({
        port: 0,
        tls: { ...certs.server, ca: certs.ca, requestCert: true },
        onError: (e) => void reported.push(e.code),
      }),
    );
    const port = server.address.port;
    expect(text(await roundTrip({ port, tls: { ca: certs.ca, ...certs.client } }, "mutual"))).toBe("mutual");
    expect((await failure(roundTrip({ port, tls: { ca: certs.ca } }, "anonymous"))).code).toBe("ETLS");
    await until(() => reported.includes("ETLS"));
    expect(server.stats.accepted).toBe(1);
  });
});

describe("bun: CLI over unix and TLS", () => {
  test("serve --unix, send --unix; SIGTERM removes the socket file", async () => {
    const path = socketPath();
    const { child, line } = await serveCli(["--unix", path]);
    expect(line).toBe(`Server listening on unix:${path}`);
    const sent = await runCli(["send", "--unix", path, "over", "unix"]);
    expect(sent).toMatchObject({ code: 0, stdout: "Received response from server: over unix\n" });
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  test("serve --tls-cert/--tls-key --tls-ca (mutual TLS); send with and without a client certificate", async () => {
    const ca = ["--tls-ca", certs.file("ca.pem")];
    const { line } = await serveCli([
      "--port",
      "0",
      "--tls-cert",
      certs.file("server.pem"),
      "--tls-key",
      certs.file("server.key"),
      ...ca,
    ]);
    const port = String(Number(/:(\d+)$/.exec(line)?.[1]));
    const client = ["--tls-cert", certs.file("client.pem"), "--tls-key", certs.file("client.key")];
    const ok = await runCli(["send", "--port", port, ...ca, "--tls-servername", "localhost", ...client, "secret"]);
    expect(ok).toMatchObject({ code: 0, stdout: "Received response from server: secret\n" });
    const anonymous = await runCli(["send", "--port", port, ...ca]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain("ETLS");
  });
});
