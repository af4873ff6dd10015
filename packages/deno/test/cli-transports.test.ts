/**
 * What only Deno shows over Unix sockets and TLS: its CLI's flags and
 * permissions, and its client's certificate against a server that asks for one
 * (which Deno.listenTls cannot be, so a Bun server).
 */
import assert from "node:assert/strict";
import { makeCerts, tempDir } from "@tcp-echo/testkit/suite";
import { connect } from "../src/index.ts";
import { Child, CONFIG, codeOf, DENO, decoder, run } from "./_helpers.ts";

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

// Runs last: the temporary directory goes with the test module.
globalThis.addEventListener("unload", () => Deno.removeSync(DIR, { recursive: true }));

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

Deno.test("tls: mutual TLS against a Bun server, with a client certificate served, without rejected with ETLS", async () => {
  const bun = `${ROOT}node_modules/bun/bin/bun.exe`;
  const serve = [`${ROOT}packages/bun/src/cli.ts`, "serve", "--port", "0"];
  const tlsFlags = ["--tls-cert", certs.file("server.pem"), "--tls-key", certs.file("server.key")];
  await withCli(bun, [...serve, ...tlsFlags, "--tls-ca", certs.file("ca.pem")], async (line) => {
    const port = Number(portOf(line));
    await using client = await connect({ hostname: "localhost", port, tls: { ca: certs.ca, ...certs.client } });
    assert.equal(decoder.decode(await client.echo("mutual")), "mutual");
    const anonymous = (async () => {
      await using stranger = await connect({ port, tls: { ca: certs.ca } });
      await stranger.echo("anonymous", { timeout: 20_000 });
    })();
    assert.equal(await codeOf(anonymous), "ETLS");
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
