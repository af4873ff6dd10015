import { describe, expect, test } from "vitest";
import { type CliHost, runCli } from "../src/_cli.ts";
import { type EchoError, errorCodeOf, formatEndpoint, toEchoError } from "../src/_errors.ts";
import { resolveConnectOptions, resolveListenOptions, UNIX_PATH_MAX } from "../src/_options.ts";
import { claimUnixPath, directoryOf, type UnixFs } from "../src/_unix.ts";
import type { Address, EchoServer } from "../src/types.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

function failure(fn: () => unknown): EchoError {
  try {
    fn();
  } catch (error) {
    return error as EchoError;
  }
  throw new Error("did not throw");
}

async function rejection(promise: Promise<unknown>): Promise<EchoError> {
  try {
    await promise;
  } catch (error) {
    return error as EchoError;
  }
  throw new Error("did not reject");
}

describe("options: Unix socket paths", () => {
  test("a Unix server and client take a path and nothing TCP", () => {
    expect(resolveListenOptions({ transport: "unix", path: "/tmp/e.sock" })).toMatchObject({
      transport: "unix",
      path: "/tmp/e.sock",
    });
    expect(resolveConnectOptions({ transport: "unix", path: "e.sock" })).toMatchObject({ transport: "unix" });
    const tcpOnly = { transport: "unix", path: "/tmp/e.sock", port: 0 } as never;
    expect(failure(() => resolveListenOptions(tcpOnly)).message).toBe(
      "invalid option port: it applies to TCP only, not to a Unix socket",
    );
  });

  test(`a path of ${UNIX_PATH_MAX} bytes is accepted; one more byte is EINVAL naming the limit`, () => {
    const longest = `/tmp/${"x".repeat(UNIX_PATH_MAX - 5)}`;
    expect(resolveListenOptions({ transport: "unix", path: longest }).path).toBe(longest);
    const error = failure(() => resolveConnectOptions({ transport: "unix", path: `${longest}x` }));
    expect(error.code).toBe("EINVAL");
    expect(error.message).toContain(`is 108 bytes, over the ${UNIX_PATH_MAX}-byte limit`);
  });

  test("the limit counts UTF-8 bytes, not characters", () => {
    const path = `/tmp/${"é".repeat(52)}`;
    expect(path.length).toBeLessThan(UNIX_PATH_MAX);
    expect(failure(() => resolveListenOptions({ transport: "unix", path })).code).toBe("EINVAL");
  });

  test.each([
    ["empty", ""],
    ["a NUL byte", "/tmp/a\0b"],
    ["not a string", 7],
  ])("a path that is %s is EINVAL", (_name, path) => {
    expect(failure(() => resolveListenOptions({ transport: "unix", path } as never)).code).toBe("EINVAL");
  });

  test("an unknown transport is EINVAL", () => {
    expect(failure(() => resolveListenOptions({ transport: "udp" } as never)).code).toBe("EINVAL");
  });

  test("directoryOf: the directory a path's socket file goes in", () => {
    expect(directoryOf("/tmp/e.sock")).toBe("/tmp");
    expect(directoryOf("/e.sock")).toBe("/");
    expect(directoryOf("e.sock")).toBe(".");
    expect(directoryOf("run/e.sock")).toBe("run");
  });
});

describe("options: TLS", () => {
  test("a server needs PEM cert and key; bytes are read as text", () => {
    const config = resolveListenOptions({
      port: 0,
      tls: { cert: new TextEncoder().encode(PEM), key: PEM },
    });
    expect(config.tls).toEqual({ cert: PEM, key: PEM, ca: undefined, requestCert: false });
  });

  test("a file name where PEM text belongs is EINVAL, not a handshake failure later", () => {
    const error = failure(() => resolveListenOptions({ tls: { cert: "server.pem", key: PEM } }));
    expect(error.message).toBe(
      'invalid option tls.cert: expected PEM text (the file\'s contents, not its name), got "text without a PEM block"',
    );
  });

  test("requestCert needs the CA that signs client certificates", () => {
    expect(failure(() => resolveListenOptions({ tls: { cert: PEM, key: PEM, requestCert: true } })).code).toBe(
      "EINVAL",
    );
  });

  test("a client checks the hostname unless serverName says otherwise; brackets are stripped", () => {
    expect(resolveConnectOptions({ hostname: "[::1]", tls: true }).tls?.serverName).toBe("::1");
    expect(resolveConnectOptions({ tls: { serverName: "localhost", ca: PEM } }).tls).toEqual({
      ca: PEM,
      serverName: "localhost",
      sni: "localhost",
      cert: undefined,
      key: undefined,
    });
  });

  test("SNI carries a host name, never an IP literal (which is still checked against the certificate)", () => {
    expect(resolveConnectOptions({ hostname: "localhost", tls: true }).tls?.sni).toBe("localhost");
    expect(resolveConnectOptions({ hostname: "127.0.0.1", tls: true }).tls).toMatchObject({
      serverName: "127.0.0.1",
      sni: undefined,
    });
    expect(resolveConnectOptions({ hostname: "[::1]", tls: true }).tls).toMatchObject({
      serverName: "::1",
      sni: undefined,
    });
  });

  test("a client certificate needs its key", () => {
    expect(failure(() => resolveConnectOptions({ tls: { cert: PEM } })).code).toBe("EINVAL");
  });
});

describe("errors: ETLS and Unix sockets", () => {
  test.each([
    [
      "Node, unknown CA",
      { code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE", message: "unable to verify the first certificate" },
    ],
    ["Node, self-signed", { code: "DEPTH_ZERO_SELF_SIGNED_CERT", message: "self-signed certificate" }],
    ["Node/Bun, wrong name", { code: "ERR_TLS_CERT_ALTNAME_INVALID", message: "Hostname/IP does not match" }],
    ["Node, expired", { code: "CERT_HAS_EXPIRED", message: "certificate has expired" }],
    ["Node, no client certificate", { code: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED", message: "alert" }],
    [
      "Bun, no client certificate",
      { code: "EPROTO", message: "error:1000045c:SSL routines:OPENSSL_internal:TLSV1_ALERT_CERTIFICATE_REQUIRED" },
    ],
    ["Deno, unknown CA", { name: "InvalidData", message: "invalid peer certificate: UnknownIssuer" }],
    ["Deno, alert", { name: "InvalidData", message: "received fatal alert: CertificateRequired" }],
  ])("%s is ETLS", (_name, error) => {
    expect(errorCodeOf(Object.assign(new Error(error.message), error))).toBe("ETLS");
  });

  test("a reset during a handshake stays ECONNRESET", () => {
    const reset = Object.assign(new Error("Client network socket disconnected before secure TLS connection"), {
      code: "ECONNRESET",
    });
    expect(errorCodeOf(reset)).toBe("ECONNRESET");
  });

  test("the ETLS message names the address and carries the reason", () => {
    const cause = Object.assign(new Error("unable to verify\nthe first certificate"), {
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });
    const error = toEchoError(cause, { operation: "connect", hostname: "::1", port: 7 });
    expect(error.message).toMatch(
      /^connect ETLS \[::1\]:7: TLS handshake with \[::1\]:7 failed: unable to verify the first certificate; check the CA/,
    );
  });

  test("no socket file (ENOENT, Deno's NotFound) is ECONNREFUSED naming the path", () => {
    const error = toEchoError(Object.assign(new Error("no such file"), { code: "ENOENT" }), {
      operation: "connect",
      path: "/tmp/e.sock",
    });
    expect(error.code).toBe("ECONNREFUSED");
    expect(error.path).toBe("/tmp/e.sock");
    expect(error.message).toBe(
      "connect ECONNREFUSED unix:/tmp/e.sock: nothing is listening on unix:/tmp/e.sock; start a server there or check the path",
    );
    expect(errorCodeOf(Object.assign(new Error("x"), { name: "NotFound" }))).toBe("ECONNREFUSED");
  });

  test("formatEndpoint: TCP, IPv6 and Unix endpoints", () => {
    expect(formatEndpoint({ transport: "tcp", hostname: "::1", port: 7 })).toBe("[::1]:7");
    expect(formatEndpoint({ transport: "unix", path: "/tmp/e.sock" })).toBe("unix:/tmp/e.sock");
    expect(formatEndpoint({ transport: "unix", path: "" })).toBe("unix:(unnamed)");
  });
});

describe("claimUnixPath: the stale-file decision", () => {
  type Entry = "socket" | "directory" | "file";
  /** A fake file system (missing paths reject as Node's do), and a probe that only `live` paths accept. */
  function fakeFs(entries: Record<string, Entry>, live: string[] = []) {
    const removed: string[] = [];
    const fs: UnixFs = {
      stat: async (path) => {
        const entry = entries[path];
        if (!entry) throw Object.assign(new Error("no such file"), { code: "ENOENT" });
        return { isSocket: () => entry === "socket", isDirectory: () => entry === "directory" };
      },
      unlink: async (path) => {
        removed.push(path);
      },
    };
    const probe = async (path: string) => {
      if (!live.includes(path)) throw Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    };
    return { fs, probe, removed };
  }

  test("nothing there: free to bind, nothing removed", async () => {
    const { fs, probe, removed } = fakeFs({ "/run": "directory" });
    await claimUnixPath("/run/e.sock", fs, probe);
    expect(removed).toEqual([]);
  });

  test("a socket nobody accepts on (a crashed server's) is removed", async () => {
    const { fs, probe, removed } = fakeFs({ "/run": "directory", "/run/e.sock": "socket" });
    await claimUnixPath("/run/e.sock", fs, probe);
    expect(removed).toEqual(["/run/e.sock"]);
  });

  test("a live server's socket is EADDRINUSE and kept", async () => {
    const { fs, probe, removed } = fakeFs({ "/run": "directory", "/run/e.sock": "socket" }, ["/run/e.sock"]);
    const error = await rejection(claimUnixPath("/run/e.sock", fs, probe));
    expect(error.code).toBe("EADDRINUSE");
    expect(error.message).toBe(
      "listen EADDRINUSE unix:/run/e.sock: unix:/run/e.sock is already in use by a live server; stop it or pick another path",
    );
    expect(removed).toEqual([]);
  });

  test("a file that is not a socket is EADDRINUSE and never removed", async () => {
    const { fs, probe, removed } = fakeFs({ "/run": "directory", "/run/e.sock": "file" });
    expect((await rejection(claimUnixPath("/run/e.sock", fs, probe))).code).toBe("EADDRINUSE");
    expect(removed).toEqual([]);
  });

  test("a missing directory is EINVAL naming it", async () => {
    const { fs, probe } = fakeFs({});
    const error = await rejection(claimUnixPath("/missing/e.sock", fs, probe));
    expect(error.code).toBe("EINVAL");
    expect(error.message).toContain('the directory "/missing" of "/missing/e.sock" does not exist');
  });
});

describe("cli: transport flags", () => {
  /** A CLI host whose listen/connect record their options and fail, so nothing runs. */
  function host(args: string[], files: Record<string, string> = {}) {
    const calls: unknown[] = [];
    let stderr = "";
    const refuse = async (options: unknown) => {
      calls.push(options);
      throw Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    };
    const cli: CliHost = {
      runtime: "node",
      program: "tcp-echo-test",
      args,
      listen: refuse as CliHost["listen"],
      connect: refuse as CliHost["connect"],
      stdout: () => {},
      stderr: (text) => {
        stderr += text;
      },
      stdin: () => (async function* () {})(),
      onSignal: () => () => {},
      readFile: async (path) => {
        const content = files[path];
        if (content === undefined) throw new Error("no such file");
        return new TextEncoder().encode(content);
      },
    };
    return { cli, calls, stderr: () => stderr };
  }

  test("send --unix PATH connects to the path", async () => {
    const { cli, calls } = host(["send", "--unix", "/tmp/e.sock"]);
    expect(await runCli(cli)).toBe(1);
    expect(calls[0]).toMatchObject({ transport: "unix", path: "/tmp/e.sock" });
  });

  test("serve --unix PATH listens on the path", async () => {
    const { cli, calls } = host(["serve", "--unix", "/tmp/e.sock"]);
    expect(await runCli(cli)).toBe(1);
    expect(calls[0]).toMatchObject({ transport: "unix", path: "/tmp/e.sock" });
  });

  test("serve --tls-*: the files' contents, and --tls-ca asks for client certificates", async () => {
    const files = { "c.pem": "CERT", "k.pem": "KEY", "ca.pem": "CA" };
    const { cli, calls } = host(
      ["serve", "--port", "0", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem"],
      files,
    );
    await runCli(cli);
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    const { tls } = calls[0] as { tls: Record<string, Uint8Array | boolean> };
    expect(decode(tls.cert as Uint8Array)).toBe("CERT");
    expect(decode(tls.key as Uint8Array)).toBe("KEY");
    expect(decode(tls.ca as Uint8Array)).toBe("CA");
    expect(tls.requestCert).toBe(true);
  });

  test("send --tls-servername alone turns TLS on with the built-in roots", async () => {
    const { cli, calls } = host(["send", "--port", "7", "--tls-servername", "localhost"]);
    await runCli(cli);
    expect(calls[0]).toMatchObject({ transport: "tcp", port: 7, tls: { serverName: "localhost" } });
  });

  test.each([
    [["send", "--unix", "/tmp/e.sock", "--host", "::1"], "--unix cannot go with --host"],
    [["ping", "--unix", "/tmp/e.sock", "--tls-ca", "ca.pem"], "--unix cannot go with --tls-ca"],
    [["serve", "--port", "0", "--tls-key", "k.pem"], "--tls-cert and --tls-key go together"],
    [["send", "--tls-ca", "nope.pem"], "cannot read --tls-ca nope.pem: no such file"],
    [["serve", "--tls-servername", "x"], "unknown option --tls-servername"],
  ])("usage error, exit 2: %j", async (args, message) => {
    const { cli, calls, stderr } = host(args);
    expect(await runCli(cli)).toBe(2);
    expect(stderr()).toContain(message);
    expect(calls).toEqual([]);
  });

  test("serve prints unix:PATH for a Unix server", async () => {
    const lines: string[] = [];
    const server = {
      runtime: "node",
      address: { transport: "unix", path: "/tmp/e.sock" },
      connections: 0,
      stats: { active: 0, accepted: 0, rejected: 0, idleClosed: 0, bytesIn: 0, bytesOut: 0, errors: {} },
      closed: Promise.resolve(),
      close: async () => {},
    } as unknown as EchoServer<Address>;
    const { cli } = host(["serve", "--unix", "/tmp/e.sock"]);
    cli.listen = (async () => server) as CliHost["listen"];
    cli.stdout = (data) => void lines.push(String(data));
    expect(await runCli(cli)).toBe(0);
    expect(lines[0]).toBe("Server listening on unix:/tmp/e.sock\n");
  });
});
