import { describe, expect, test } from "vitest";
import { EchoError, errorCodeOf, toEchoError } from "../src/_errors.ts";
import {
  DEFAULTS,
  isIPv6,
  normalizeHostname,
  parsePort,
  resolveConnectOptions,
  resolveListenOptions,
} from "../src/_options.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as EchoError).code;
  }
  return undefined;
}

describe("options", () => {
  test("defaults: the tutorial's address, TCP_NODELAY set explicitly, limits on", () => {
    const config = resolveListenOptions();
    expect(config.hostname).toBe("127.0.0.1");
    expect(config.port).toBe(12345);
    expect(config.noDelay).toBe(true);
    expect(config.highWaterMark).toBe(DEFAULTS.highWaterMark);
    expect(config.maxConnections).toBeGreaterThan(0);
    expect(config.idleTimeout).toBeGreaterThan(0);
  });

  test.each([
    ["port 70000", { port: 70000 }],
    ["port -1", { port: -1 }],
    ["port 1.5", { port: 1.5 }],
    ["port 'abc' (never a Unix socket path)", { port: "abc" as unknown as number }],
    ["port NaN", { port: Number.NaN }],
    ["empty host", { hostname: "" }],
    ["host with a space", { hostname: "bad host" }],
    ["host '::zz'", { hostname: "::zz" }],
    ["host '999.1.1.1'", { hostname: "999.1.1.1" }],
    ["noDelay 'yes'", { noDelay: "yes" as unknown as boolean }],
    ["highWaterMark 0", { highWaterMark: 0 }],
    ["idleTimeout -5", { idleTimeout: -5 }],
    ["onConnection not a function", { onConnection: 3 as unknown as () => void }],
  ])("invalid listen option is EINVAL before any syscall: %s", (_name, options) => {
    expect(codeOf(() => resolveListenOptions(options))).toBe("EINVAL");
  });

  test("the EINVAL message names the option and the accepted range", () => {
    expect(() => resolveListenOptions({ port: 70000 })).toThrowError(
      "invalid option port: expected an integer from 0 to 65535, got 70000",
    );
  });

  test("connect: port 0 is invalid (there is nothing to connect to)", () => {
    expect(codeOf(() => resolveConnectOptions({ port: 0 }))).toBe("EINVAL");
  });

  test("connect: drainTimeout defaults to the server's 10 s, and a negative or fractional one is EINVAL", () => {
    expect(resolveConnectOptions({ port: 7 }).drainTimeout).toBe(DEFAULTS.drainTimeout);
    expect(resolveConnectOptions({ port: 7, drainTimeout: 0 }).drainTimeout).toBe(0);
    expect(codeOf(() => resolveConnectOptions({ port: 7, drainTimeout: -1 }))).toBe("EINVAL");
    expect(codeOf(() => resolveConnectOptions({ port: 7, drainTimeout: 1.5 }))).toBe("EINVAL");
  });

  test("IPv6: '::1' and '[::1]' are both accepted and normalized without brackets", () => {
    expect(normalizeHostname("::1")).toBe("::1");
    expect(normalizeHostname("[::1]")).toBe("::1");
    expect(normalizeHostname("localhost")).toBe("localhost");
    expect(isIPv6("::ffff:127.0.0.1")).toBe(true);
    expect(isIPv6("1:2:3:4:5:6:7:8")).toBe(true);
    expect(isIPv6("1:2:3:4:5:6:7:8:9")).toBe(false);
    expect(isIPv6("1::2::3")).toBe(false);
  });

  test.each(["abc", "1.5", "-1", "0x50", "70000", ""])("CLI port %j is a usage error", (text) => {
    expect(codeOf(() => parsePort(text))).toBe("EINVAL");
  });

  test("CLI port digits parse", () => {
    expect(parsePort("0")).toBe(0);
    expect(parsePort("65535")).toBe(65535);
  });
});

describe("errors: every runtime's shape maps onto one code set", () => {
  test.each([
    ["Node string code", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), "ECONNREFUSED"],
    ["Node negative errno", Object.assign(new Error("x"), { errno: -98 }), "EADDRINUSE"],
    ["Bun positive errno", Object.assign(new Error("x"), { errno: 98 }), "EADDRINUSE"],
    ["Node DNS failure", Object.assign(new Error("getaddrinfo"), { code: "EAI_AGAIN" }), "ENOTFOUND"],
    [
      "Deno class name",
      Object.assign(new Error("Connection refused (os error 111)"), { name: "ConnectionRefused" }),
      "ECONNREFUSED",
    ],
    ["Deno AddrInUse", Object.assign(new Error("Address already in use"), { name: "AddrInUse" }), "EADDRINUSE"],
    [
      "Deno DNS message only",
      new Error("failed to lookup address information: Name or service not known"),
      "ENOTFOUND",
    ],
    ["message with os error only", new Error("something (os error 104)"), "ECONNRESET"],
    [
      "Deno missing permission",
      Object.assign(new Error('Requires net access to "x"'), { name: "NotCapable" }),
      "EACCES",
    ],
    ["bare RangeError (bad port)", new RangeError("Invalid port"), "EINVAL"],
    ["URIError ('::zz')", new URIError("bad"), "EINVAL"],
    ["anything else", new Error("???"), "EUNKNOWN"],
  ])("%s", (_name, error, code) => {
    expect(errorCodeOf(error)).toBe(code);
  });

  test("messages name the address and what to do", () => {
    const error = toEchoError(Object.assign(new Error("x"), { code: "ECONNREFUSED" }), {
      operation: "connect",
      hostname: "::1",
      port: 9,
    });
    expect(error).toBeInstanceOf(EchoError);
    expect(error.message).toBe(
      "connect ECONNREFUSED [::1]:9: nothing is listening on [::1]:9; start a server there or check the port",
    );
    expect(error.port).toBe(9);
  });

  test("EACCES from Deno's sandbox names --allow-net=HOST; from the OS, the privileged ports", () => {
    const context = { operation: "listen" as const, hostname: "127.0.0.1", port: 0 };
    const sandbox = toEchoError(
      Object.assign(new Error('Requires net access to "127.0.0.1:0", run again with the --allow-net flag'), {
        name: "NotCapable",
      }),
      context,
    );
    expect(sandbox.code).toBe("EACCES");
    expect(sandbox.message).toContain("--allow-net=127.0.0.1");
    expect(sandbox.message).not.toContain("1024");
    const v6 = toEchoError(Object.assign(new Error("x"), { name: "NotCapable" }), { ...context, hostname: "::1" });
    expect(v6.message).toContain("--allow-net=[::1]");
    const os = toEchoError(Object.assign(new Error("listen EACCES"), { code: "EACCES" }), { ...context, port: 80 });
    expect(os.code).toBe("EACCES");
    expect(os.message).toContain("below 1024");
    expect(os.message).not.toContain("allow-net");
  });

  test("connect ETIMEDOUT says what to check next", () => {
    const error = toEchoError(Object.assign(new Error("x"), { code: "ETIMEDOUT" }), {
      operation: "connect",
      hostname: "10.0.0.1",
      port: 7,
    });
    expect(error.message).toMatch(/^connect ETIMEDOUT 10\.0\.0\.1:7: no answer from 10\.0\.0\.1:7 in time; check /);
  });

  test("EchoErrors pass through unchanged", () => {
    const original = new EchoError("EPROTO", "short");
    expect(toEchoError(original)).toBe(original);
  });
});

describe("errors: TLS truncation is not a handshake failure", () => {
  test("rustls' missing close_notify maps to ECONNRESET, not ETLS", () => {
    expect(
      errorCodeOf(new Error("peer closed connection without sending TLS close_notify: https://docs.rs/rustls")),
    ).toBe("ECONNRESET");
    expect(errorCodeOf(new Error("invalid peer certificate: UnknownIssuer"))).toBe("ETLS");
  });
});
