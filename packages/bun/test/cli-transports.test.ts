/** The Bun CLI over Unix sockets and TLS: the flags, the lines it prints, its exit codes. */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { makeCerts, tempDir } from "@tcp-echo/testkit/suite";
import { BUN, killChildren, lines, spawnChild } from "./helpers.ts";

const CLI = new URL("../src/cli.ts", import.meta.url).pathname;
const DIR = tempDir("echo-bun-");
const certs = makeCerts(join(DIR, "certs"));
let sockets = 0;
const socketPath = () => join(DIR, `s${++sockets}.sock`);

afterEach(killChildren);
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

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
