import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { connect, listen } from "../src/index.ts";
import {
  certs,
  cleanup,
  DIR,
  exited,
  failure,
  halfCloseSlowReader,
  opened,
  portOf,
  roundTrip,
  runCleanup,
  runCli,
  serveCli,
  sha256,
  socketPath,
  start,
  TLS_SERVE,
  text,
} from "./_transports.ts";

afterEach(runCleanup);
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe("node: IPv6", () => {
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
    const socket = await opened(net.connect({ host: "::1", port: server.address.port, allowHalfOpen: true }));
    expect(sha256(await halfCloseSlowReader(socket, payload))).toBe(sha256(payload));
  });
});

describe("node: Unix domain sockets", () => {
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

  test("half-close with a slow reader: every byte comes back, then EOF", async () => {
    const path = socketPath();
    await start(listen({ transport: "unix", path }));
    const payload = randomBytes(16 * 1024 * 1024);
    const socket = await opened(net.connect({ path, allowHalfOpen: true }));
    expect(sha256(await halfCloseSlowReader(socket, payload))).toBe(sha256(payload));
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
    const socket = await opened(net.connect({ path, allowHalfOpen: true }));
    cleanup.push(() => socket.destroy());
    socket.pause();
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 2000; i++) {
      if (socket.write(chunk)) continue;
      const drained = await Promise.race([
        new Promise((r) => socket.once("drain", () => r(true))),
        new Promise((r) => setTimeout(() => r(false), 500)),
      ]);
      if (!drained) break;
    }
    expect(server.stats.bytesIn).toBeLessThan(2000 * chunk.byteLength);
    expect(server.stats.bytesIn - server.stats.bytesOut).toBeLessThan(64 * 1024 + 256 * 1024);
  });

  test("a stale socket file left by a crashed server is removed, and the new server binds", async () => {
    const path = socketPath();
    const { child } = await serveCli("node", ["--unix", path]);
    child.kill("SIGKILL");
    await exited(child);
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

  test("TCP-only options with a Unix path are EINVAL, never ignored", async () => {
    const options = { transport: "unix", path: socketPath(), port: 0 } as never;
    expect((await failure(listen(options))).code).toBe("EINVAL");
  });
});

describe("node: TLS", () => {
  const serverTls = () => ({ ...certs.server });

  test("echo over TLS: 4 MiB byte-exact, checked against the CA for 127.0.0.1, ::1 and localhost", async () => {
    const server = await start(listen({ port: 0, tls: serverTls() }));
    const payload = randomBytes(4 * 1024 * 1024);
    const echoed = await roundTrip({ port: server.address.port, tls: { ca: certs.ca } }, payload);
    expect(sha256(echoed)).toBe(sha256(payload));
    const six = await start(listen({ hostname: "::1", port: 0, tls: serverTls() }));
    expect(text(await roundTrip({ hostname: "[::1]", port: six.address.port, tls: { ca: certs.ca } }, "v6"))).toBe(
      "v6",
    );
    expect(
      text(await roundTrip({ hostname: "localhost", port: server.address.port, tls: { ca: certs.ca } }, "name")),
    ).toBe("name");
  });

  test("half-close over TLS: echoes resolve after closeWrite(), then EOF", async () => {
    const server = await start(listen({ port: 0, tls: serverTls() }));
    const client = await connect({ port: server.address.port, tls: { ca: certs.ca } });
    const pending = client.echo("after close_notify");
    await client.closeWrite();
    expect(text(await pending)).toBe("after close_notify");
    expect(await client.read()).toBeNull();
    await client.closed;
  });

  test("half-close over TLS with a slow reader: every byte comes back, then EOF", async () => {
    const server = await start(listen({ port: 0, tls: serverTls() }));
    // Node passes allowHalfOpen on to the TLS socket; its types leave it out.
    const options = { host: "127.0.0.1", port: server.address.port, ca: certs.ca, allowHalfOpen: true };
    const socket = tls.connect(options as tls.ConnectionOptions);
    await opened(socket, "secureConnect");
    const payload = randomBytes(8 * 1024 * 1024);
    expect(sha256(await halfCloseSlowReader(socket, payload))).toBe(sha256(payload));
  });

  // A TLS server made with allowHalfOpen kept such a socket in CLOSE-WAIT for
  // handshakeTimeout (120 s): under a descriptor limit, new clients starved.
  test("a peer that sends FIN before finishing the handshake is let go at once", async () => {
    const server = await start(listen({ port: 0, tls: serverTls() }));
    const raw = net.connect({ host: "127.0.0.1", port: server.address.port, allowHalfOpen: true });
    raw.on("error", () => {});
    await opened(raw, "connect");
    raw.end();
    // The server's FIN answers ours: nothing is sent, so nothing can come back but EOF.
    const reply: Buffer[] = [];
    raw.on("data", (chunk: Buffer) => reply.push(chunk));
    await new Promise((resolve) => raw.once("end", resolve));
    expect(Buffer.concat(reply).byteLength).toBe(0);
    raw.destroy();
    // And a full client is still served.
    expect(text(await roundTrip({ port: server.address.port, tls: { ca: certs.ca } }, "after"))).toBe("after");
  });

  test("ETLS for an unknown CA, with the reason in the message; the server reports it too", async () => {
    const reported: string[] = [];
    const server = await start(listen({ port: 0, tls: serverTls(), onError: (e) => void reported.push(e.code) }));
    const error = await failure(roundTrip({ port: server.address.port, tls: { ca: certs.otherCa } }, "x"));
    expect(error.code).toBe("ETLS");
    expect(error.message).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed: .*(certificate|issuer)/i);
    expect((await failure(roundTrip({ port: server.address.port, tls: true }, "x"))).code).toBe("ETLS");
    // The server's side of each failed handshake arrives on its own event-loop turn: wait, bounded.
    for (let i = 0; i < 100 && reported.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    // Node's client drops the TCP connection without a TLS alert when it rejects the
    // certificate, so this server sees a reset mid-handshake, not the reason: ECONNRESET.
    expect(reported).toHaveLength(2);
    for (const code of reported) expect(["ETLS", "ECONNRESET"]).toContain(code);
    expect(server.stats.accepted).toBe(0);
  });

  test("ETLS for the wrong server name", async () => {
    const server = await start(listen({ port: 0, tls: serverTls() }));
    const error = await failure(
      roundTrip({ port: server.address.port, tls: { ca: certs.ca, serverName: "wrong.example" } }, "x"),
    );
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
        tls: { ...serverTls(), ca: certs.ca, requestCert: true },
        onError: (e) => void reported.push(e.code),
      }),
    );
    const port = server.address.port;
    expect(text(await roundTrip({ port, tls: { ca: certs.ca, ...certs.client } }, "mutual"))).toBe("mutual");
    expect((await failure(roundTrip({ port, tls: { ca: certs.ca } }, "anonymous"))).code).toBe("ETLS");
    expect(reported).toContain("ETLS");
  });

  test("TLS options are checked before any syscall: EINVAL", async () => {
    const cases = [
      listen({ port: 0, tls: { cert: certs.file("server.pem"), key: certs.server.key } }),
      listen({ port: 0, tls: { ...serverTls(), requestCert: true } }),
      connect({ port: 1, tls: { cert: certs.client.cert } }),
    ];
    for (const pending of cases) expect((await failure(pending)).code).toBe("EINVAL");
  });
});

describe("node: CLI over unix and TLS", () => {
  test("serve --unix, send --unix, ping --unix; SIGTERM removes the socket file", async () => {
    const path = socketPath();
    const { child, line } = await serveCli("node", ["--unix", path]);
    expect(line).toBe(`Server listening on unix:${path}`);
    const sent = await runCli("node", ["send", "--unix", path, "over", "unix"]);
    expect(sent).toMatchObject({ code: 0, stdout: "Received response from server: over unix\n" });
    const pinged = await runCli("node", ["ping", "--unix", path, "--count", "2", "--interval", "10"]);
    expect(pinged.code).toBe(0);
    expect(pinged.stdout).toMatch(/2 sent, 2 received, 0% loss/);
    child.kill("SIGTERM");
    expect(await exited(child)).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  test("serve --host [::1]: the listening line brackets it, the JSON hostname is ::1; send reaches it", async () => {
    const { line } = await serveCli("node", ["--host", "[::1]", "--port", "0"]);
    expect(line).toMatch(/^Server listening on \[::1\]:\d+$/);
    const sent = await runCli("node", ["send", "--host", "::1", "--port", String(portOf(line)), "six"]);
    expect(sent).toMatchObject({ code: 0, stdout: "Received response from server: six\n" });
    const json = await serveCli("node", ["--json", "--host", "[::1]", "--port", "0"]);
    expect(JSON.parse(json.line)).toMatchObject({ transport: "tcp", tls: false, hostname: "::1" });
  });

  test("serve --json --unix: the listening line names the transport and path", async () => {
    const path = socketPath();
    const { line } = await serveCli("node", ["--json", "--unix", path]);
    expect(JSON.parse(line)).toMatchObject({ event: "listening", runtime: "node", transport: "unix", path });
  });

  test("serve --tls-cert/--tls-key; send --tls-ca --tls-servername; no CA is exit 1 with ETLS", async () => {
    const { line } = await serveCli("node", TLS_SERVE());
    expect(line).toMatch(/^Server listening on 127\.0\.0\.1:\d+$/);
    const port = String(portOf(line));
    const ca = ["--tls-ca", certs.file("ca.pem")];
    const ok = await runCli("node", ["send", "--port", port, ...ca, "--tls-servername", "localhost", "secret"]);
    expect(ok).toMatchObject({ code: 0, stdout: "Received response from server: secret\n" });
    const pinged = await runCli("node", ["ping", "--port", port, ...ca, "--count", "2", "--interval", "10"]);
    expect(pinged.code).toBe(0);
    const unknown = await runCli("node", ["send", "--port", port, "--tls-ca", certs.file("other-ca.pem")]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^tcp-echo-node: connect ETLS 127\.0\.0\.1:\d+: TLS handshake/);
  });

  test("serve --tls-ca requires client certificates: send with --tls-cert/--tls-key passes, without fails", async () => {
    const ca = ["--tls-ca", certs.file("ca.pem")];
    const { line } = await serveCli("node", [...TLS_SERVE(), ...ca]);
    const port = String(portOf(line));
    const client = ["--tls-cert", certs.file("client.pem"), "--tls-key", certs.file("client.key")];
    expect((await runCli("node", ["send", "--port", port, ...ca, ...client])).code).toBe(0);
    const anonymous = await runCli("node", ["send", "--port", port, ...ca]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain("ETLS");
  });

  test.each([
    ["--unix with --port", ["send", "--unix", "/tmp/x.sock", "--port", "1"]],
    ["--unix with TLS", ["serve", "--unix", "/tmp/x.sock", "--tls-cert", "a", "--tls-key", "b"]],
    ["--tls-cert without --tls-key", ["serve", "--port", "0", "--tls-cert", "a"]],
    ["an unreadable --tls-ca", ["send", "--port", "1", "--tls-ca", "/nonexistent/ca.pem"]],
    ["a --tls-ca that is not PEM", ["send", "--port", "1", "--tls-ca", "/etc/hostname"]],
  ])("usage error, exit 2: %s", async (_name, args) => {
    const result = await runCli("node", args);
    expect(result.code).toBe(2);
    expect(result.stderr.split("\n")).toHaveLength(2);
  });
});
