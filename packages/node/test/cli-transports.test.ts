/** The Node CLI over Unix sockets and TLS: the flags, the lines it prints, its exit codes. */
import { existsSync, rmSync } from "node:fs";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { certs, DIR, exited, portOf, runCleanup, runCli, serveCli, socketPath, TLS_SERVE } from "./_transports.ts";

afterEach(runCleanup);
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

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
