import fc from "fast-check";
import { afterEach, describe, expect, test, vi } from "vitest";
import type { EchoError } from "../src/_errors.ts";
import { resolveListenOptions } from "../src/_options.ts";
import {
  isTrusted,
  type ParseResult,
  ProxyHeaderParser,
  parseCidr,
  parseProxyHeader,
  parseTrustList,
  V1_MAX_LENGTH,
  V2_SIGNATURE,
} from "../src/_proxy.ts";
import { type AcceptedIO, ServerCore } from "../src/_server.ts";
import type { ConnectionInfo, ConnectionSummary, ListenOptions, SocketAddress } from "../src/types.ts";

const ascii = (text: string) => new TextEncoder().encode(text);
const join = (...parts: (Uint8Array | number[])[]) => {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};

/** A v2 header: command 0 LOCAL / 1 PROXY, the family/protocol byte, the address block and TLVs, and the length field (which may lie). */
function v2(command: number, familyProtocol: number, body: Uint8Array | number[], length = body.length): Uint8Array {
  return join(V2_SIGNATURE, [0x20 | command, familyProtocol, length >> 8, length & 0xff], body);
}

const IPV4_BLOCK = [192, 0, 2, 10, 198, 51, 100, 1, 0xc3, 0x50, 0x00, 0x07]; // 192.0.2.10:50000 -> 198.51.100.1:7
const IPV6_BLOCK = join(
  [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
  [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
  [0x12, 0x34, 0x00, 0x07],
);

const tcp = (hostname: string, port: number): SocketAddress => ({
  transport: "tcp",
  hostname,
  port,
  family: hostname.includes(":") ? "IPv6" : "IPv4",
});

/** Valid headers and what each must parse to. */
const VALID: [string, Uint8Array, object][] = [
  [
    "v1 TCP4",
    ascii("PROXY TCP4 192.0.2.10 198.51.100.1 50000 7\r\n"),
    { version: 1, source: tcp("192.0.2.10", 50000), destination: tcp("198.51.100.1", 7) },
  ],
  [
    "v1 TCP6 (written uncompressed, reported as the runtimes do)",
    ascii("PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0001 ::1 4660 7\r\n"),
    { version: 1, source: tcp("2001:db8::1", 4660), destination: tcp("::1", 7) },
  ],
  ["v1 UNKNOWN (short form)", ascii("PROXY UNKNOWN\r\n"), { version: 1 }],
  ["v1 UNKNOWN with anything before the CRLF", ascii("PROXY UNKNOWN what ever 1 2\r\n"), { version: 1 }],
  [
    "v2 PROXY TCP over IPv4",
    v2(1, 0x11, IPV4_BLOCK),
    { version: 2, source: tcp("192.0.2.10", 50000), destination: tcp("198.51.100.1", 7) },
  ],
  [
    "v2 PROXY TCP over IPv6",
    v2(1, 0x21, IPV6_BLOCK),
    { version: 2, source: tcp("2001:db8::1", 4660), destination: tcp("::1", 7) },
  ],
  [
    "v2 with TLVs after the addresses (skipped)",
    v2(1, 0x11, join(IPV4_BLOCK, [0x01, 0x00, 0x02, 0x68, 0x32], [0x04, 0x00, 0x00])),
    { version: 2, source: tcp("192.0.2.10", 50000), destination: tcp("198.51.100.1", 7) },
  ],
  ["v2 LOCAL (a health check) with no address", v2(0, 0x00, []), { version: 2 }],
  ["v2 LOCAL carrying an address block, which is ignored", v2(0, 0x11, IPV4_BLOCK), { version: 2 }],
  ["v2 PROXY UNSPEC", v2(1, 0x00, [1, 2, 3]), { version: 2 }],
  ["v2 PROXY UDP over IPv4 (not this server's: real endpoints)", v2(1, 0x12, IPV4_BLOCK), { version: 2 }],
  ["v2 PROXY AF_UNIX stream (real endpoints)", v2(1, 0x31, new Uint8Array(216)), { version: 2 }],
];

/** Invalid headers, and a word the reason must contain. */
const INVALID: [string, Uint8Array, string][] = [
  ["plain data", ascii("hello\r\n"), "not"],
  ["v1 with a lone LF", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), "lone LF"],
  ["v1 with a lone CR", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx"), "lone CR"],
  ["v1 without CRLF in 107 bytes", ascii(`PROXY UNKNOWN ${"x".repeat(100)}`), "107"],
  ["v1 lowercase", ascii("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "not"],
  ["v1 unknown protocol", ascii("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), "UDP4"],
  ["v1 octal-looking address", ascii("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), "IPv4"],
  ["v1 TCP4 with IPv6 addresses", ascii("PROXY TCP4 ::1 ::1 1 2\r\n"), "IPv4"],
  ["v1 port above 65535", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), "ports"],
  ["v1 port with a leading zero", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), "ports"],
  ["v1 two spaces", ascii("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), "5 fields"],
  ["v1 missing a port", ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), "5 fields"],
  ["v2 signature broken", join(V2_SIGNATURE.slice(0, 11), [0x0b]), "signature"],
  ["v2 version 1", join(V2_SIGNATURE, [0x11, 0x11, 0, 12], IPV4_BLOCK), "version 1"],
  ["v2 command 2", v2(2, 0x11, IPV4_BLOCK), "command"],
  ["v2 family 4", v2(1, 0x41, IPV4_BLOCK), "family"],
  ["v2 protocol 3", v2(1, 0x13, IPV4_BLOCK), "family"],
  ["v2 length too short for IPv4", v2(1, 0x11, IPV4_BLOCK.slice(0, 11)), "needs"],
  ["v2 length too short for IPv6", v2(1, 0x21, IPV4_BLOCK), "needs"],
  ["v2 TLV longer than the header", v2(1, 0x11, join(IPV4_BLOCK, [0x01, 0x00, 0x09, 0x68])), "TLV"],
  ["v2 header ending inside a TLV's length", v2(1, 0x11, join(IPV4_BLOCK, [0x01, 0x00])), "TLV"],
];

/** Feeds `bytes` to a fresh parser in pieces cut at `cuts`; the first result that is not `more`, a header's rest including the pieces not fed. */
function feed(bytes: Uint8Array, cuts: number[]): ParseResult {
  const parser = new ProxyHeaderParser();
  const points = [...new Set(cuts.filter((cut) => cut > 0 && cut < bytes.length))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...points, bytes.length]) {
    const result = parser.push(bytes.slice(from, to));
    if (result.kind === "header") return { ...result, rest: join(result.rest, bytes.subarray(to)) };
    if (result.kind !== "more") return result;
    from = to;
  }
  return { kind: "more" };
}

/** What a result means, with the rest as plain numbers (so results from different splits compare equal). */
function meaning(result: ParseResult) {
  if (result.kind === "header") return { kind: "header", header: result.header, rest: [...result.rest] };
  return { kind: result.kind };
}

describe("PROXY protocol header parser (sans-IO)", () => {
  test.each(VALID)("%s: parsed, and the bytes after it are the connection's data", (_, header, expected) => {
    const data = ascii("hello");
    const result = parseProxyHeader(join(header, data));
    expect(result.kind).toBe("header");
    if (result.kind !== "header") return;
    expect(result.header).toEqual(expected);
    expect([...result.rest]).toEqual([...data]);
  });

  test.each(INVALID)("%s: invalid, with the reason", (_, bytes, word) => {
    const result = parseProxyHeader(bytes);
    expect(result.kind).toBe("invalid");
    if (result.kind === "invalid") expect(result.reason).toContain(word);
  });

  test.each(VALID)("%s: the same result however it is split, one byte at a time included", (_, header) => {
    const bytes = join(header, ascii("after"));
    const whole = meaning(parseProxyHeader(bytes));
    expect(
      meaning(
        feed(
          bytes,
          Array.from({ length: bytes.length }, (__, i) => i),
        ),
      ),
    ).toEqual(whole);
    for (let cut = 1; cut < bytes.length; cut++) expect(meaning(feed(bytes, [cut]))).toEqual(whole);
  });

  test.each(VALID)("%s, truncated anywhere: waits for more, never a header", (_, header) => {
    for (let length = 0; length < header.length; length++)
      expect(parseProxyHeader(header.subarray(0, length)).kind).toBe("more");
  });

  test("a v1 line is declared invalid at byte 107 without CRLF, not held longer", () => {
    const line = ascii(`PROXY UNKNOWN ${"f".repeat(200)}`);
    expect(parseProxyHeader(line.subarray(0, V1_MAX_LENGTH - 1)).kind).toBe("more");
    expect(parseProxyHeader(line.subarray(0, V1_MAX_LENGTH)).kind).toBe("invalid");
    expect(parseProxyHeader(ascii(`PROXY UNKNOWN ${"f".repeat(V1_MAX_LENGTH - 16)}\r\n`)).kind).toBe("header");
  });

  test("a v2 header's TLVs may fill the whole 64 KiB length", () => {
    const tlv = join([0xe0, 0xff, 0xff - 15], new Uint8Array(0xff - 15 + 0xff00));
    const header = v2(1, 0x11, join(IPV4_BLOCK, tlv));
    expect(header.length).toBe(16 + 65535);
    expect(meaning(feed(join(header, [9]), [1, 16, 100, 40_000]))).toMatchObject({ kind: "header", rest: [9] });
  });

  test("fuzz: random bytes, split at random, give the same answer as when whole, and never throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300)), (bytes, cuts) => {
        const whole = parseProxyHeader(bytes);
        expect(meaning(feed(bytes, cuts))).toEqual(meaning(whole));
      }),
      { numRuns: 2000 },
    );
  });

  test("fuzz: random bytes after a valid prefix are parsed the same split or whole", () => {
    const prefixes = [
      ascii("PROXY "),
      ascii("PROXY TCP4 "),
      join(V2_SIGNATURE, [0x21]),
      join(V2_SIGNATURE, [0x21, 0x11]),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...prefixes),
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.nat(220)),
        (prefix, tail, cuts) => {
          const bytes = join(prefix, tail);
          expect(meaning(feed(bytes, cuts))).toEqual(meaning(parseProxyHeader(bytes)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("fuzz: a v2 length that lies is never believed: too short is invalid, too long waits, never a header", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<[number, number[] | Uint8Array]>([0x11, IPV4_BLOCK], [0x21, IPV6_BLOCK]),
        fc.integer({ min: 0, max: 65535 }),
        ([family, block], length) => {
          const result = parseProxyHeader(v2(1, family, block, length));
          if (length < block.length) expect(result.kind).toBe("invalid");
          else if (length > block.length) expect(result.kind).toBe("more");
          else expect(result.kind).toBe("header");
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("fuzz: a valid v1 TCP4 line with any addresses and ports round-trips, split anywhere", () => {
    fc.assert(
      fc.property(
        fc.ipV4(),
        fc.ipV4(),
        fc.nat(65535),
        fc.nat(65535),
        fc.array(fc.nat(60)),
        (from, to, fp, tp, cuts) => {
          const line = ascii(`PROXY TCP4 ${from} ${to} ${fp} ${tp}\r\n`);
          const result = feed(line, cuts);
          expect(result).toMatchObject({ kind: "header", header: { source: tcp(from, fp), destination: tcp(to, tp) } });
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("proxyFrom: CIDR trust", () => {
  test.each([
    [["127.0.0.0/8", "::1/128"], "127.0.0.1", true],
    [["127.0.0.0/8", "::1/128"], "127.255.0.9", true],
    [["127.0.0.0/8", "::1/128"], "::1", true],
    [["127.0.0.0/8", "::1/128"], "::ffff:127.0.0.1", true],
    [["127.0.0.0/8", "::1/128"], "128.0.0.1", false],
    [["127.0.0.0/8", "::1/128"], "::2", false],
    [["10.1.2.0/23"], "10.1.3.255", true],
    [["10.1.2.0/23"], "10.1.4.0", false],
    [["fd00::/8"], "fd12:3456::1", true],
    [["fd00::/8"], "fe80::1%eth0", false],
    [["fe80::/10"], "fe80::1%eth0", true],
    [["192.0.2.7"], "192.0.2.7", true],
    [["192.0.2.7"], "192.0.2.8", false],
    [["0.0.0.0/0"], "203.0.113.1", true],
    [["0.0.0.0/0"], "2001:db8::1", false],
    [["127.0.0.0/8"], "unknown", false],
  ])("%j trusts %s: %s", (list, peer, trusted) => {
    expect(isTrusted(parseTrustList(list), peer)).toBe(trusted);
  });

  test.each([
    ["10.0.0.0/33", "prefix length"],
    ["::/129", "prefix length"],
    ["10.0.0.0/", "prefix length"],
    ["10.0.0.0/8/8", "prefix length"],
    ["example.com", "not an IP address"],
    ["10.0.0", "not an IP address"],
  ])("%s is refused with EINVAL naming it", (entry, words) => {
    expect(() => parseCidr(entry)).toThrow(
      expect.objectContaining({ code: "EINVAL", message: expect.stringContaining(words) }),
    );
  });

  test("an empty list is refused: it would refuse every connection", () => {
    expect(() => parseTrustList([])).toThrow(/trusts no balancer/);
  });
});

describe("listen options for the PROXY protocol", () => {
  test("off by default; on, it trusts loopback and waits 3 s", () => {
    expect(resolveListenOptions({}).proxy).toBeUndefined();
    const { proxy } = resolveListenOptions({ proxyProtocol: true });
    expect(proxy?.headerTimeout).toBe(3000);
    expect(isTrusted(proxy!.trusted, "127.0.0.1")).toBe(true);
    expect(isTrusted(proxy!.trusted, "192.0.2.1")).toBe(false);
  });

  test.each([
    [{ proxyFrom: ["10.0.0.0/8"] }, "needs proxyProtocol"],
    [{ proxyHeaderTimeout: 100 }, "needs proxyProtocol"],
    [{ proxyProtocol: true, proxyFrom: ["nope"] }, "not an IP address"],
    [{ proxyProtocol: true, proxyFrom: "10.0.0.0/8" }, "an array"],
    [{ proxyProtocol: true, proxyHeaderTimeout: 0 }, "proxyHeaderTimeout"],
    [{ proxyProtocol: "yes" }, "proxyProtocol"],
    [{ proxyProtocol: true, tls: { cert: "-----BEGIN x", key: "-----BEGIN y" } }, "not with tls"],
  ] as [ListenOptions, string][])("%j is refused with EINVAL", (options, words) => {
    expect(() => resolveListenOptions(options)).toThrow(
      expect.objectContaining({ code: "EINVAL", message: expect.stringContaining(words) }),
    );
  });

  test("a Unix socket server refuses proxyProtocol (it applies to TCP only)", () => {
    expect(() =>
      resolveListenOptions({ transport: "unix", path: "/tmp/x.sock", proxyProtocol: true } as never),
    ).toThrow(/TCP only/);
  });
});

// --- the server core with a PROXY gate, on fake sockets ---------------------------

const BALANCER = tcp("127.0.0.1", 40000);
const UNTRUSTED = tcp("192.0.2.99", 40000);
const LOCAL = tcp("127.0.0.1", 7000);

let running: ServerCore | undefined;
afterEach(async () => {
  await running?.close({ force: true });
  running = undefined;
  vi.useRealTimers();
});

function server(options: ListenOptions = { proxyProtocol: true }) {
  const connections: ConnectionInfo<SocketAddress>[] = [];
  const closes: ConnectionSummary<SocketAddress>[] = [];
  const errors: EchoError[] = [];
  const core = new ServerCore(
    "node",
    resolveListenOptions({
      port: 0,
      ...options,
      onConnection: (info) => {
        connections.push(info);
      },
      onClose: (summary) => {
        closes.push(summary);
      },
      onError: (error) => {
        errors.push(error);
      },
    }),
  );
  core.attach({ address: LOCAL, close() {} });
  running = core;
  return { core, connections, closes, errors };
}

/** A fake accepted socket: what the server writes, whether it destroyed it, and its events. */
function connect(core: ServerCore, remoteAddress: SocketAddress = BALANCER) {
  const written: number[] = [];
  let destroyed = false;
  const io: AcceptedIO = {
    remoteAddress: () => remoteAddress,
    localAddress: () => LOCAL,
    write: (chunk) => {
      written.push(...chunk);
      events.onFlushed(chunk.byteLength);
    },
    pause() {},
    resume() {},
    closeWrite() {},
    close: () => events.onClose(),
    destroy: () => {
      if (destroyed) return;
      destroyed = true;
      // As on a real socket, the close is reported later, to whatever accept returned.
      queueMicrotask(() => events.onClose());
    },
  };
  const events = core.accept(io);
  return { events, written, destroyed: () => destroyed };
}

describe("a server with proxyProtocol (server core, fake sockets)", () => {
  test("the header is never echoed; what follows it is, and the client's address is the connection's", () => {
    const { core, connections } = server();
    const socket = connect(core);
    const header = ascii("PROXY TCP4 203.0.113.5 198.51.100.1 51000 7\r\nhel");
    for (const byte of header) socket.events.onData(Uint8Array.of(byte));
    socket.events.onData(ascii("lo"));
    expect(new TextDecoder().decode(Uint8Array.from(socket.written))).toBe("hello");
    expect(connections).toHaveLength(1);
    expect(connections[0]).toMatchObject({
      remoteAddress: tcp("203.0.113.5", 51000),
      localAddress: tcp("198.51.100.1", 7),
      via: { remoteAddress: BALANCER, localAddress: LOCAL },
    });
  });

  test("LOCAL (a health check): served with the real endpoints and no via", () => {
    const { core, connections } = server();
    const socket = connect(core);
    socket.events.onData(join(v2(0, 0x00, []), ascii("ping")));
    expect(socket.written).toEqual([...ascii("ping")]);
    expect(connections[0]?.remoteAddress).toEqual(BALANCER);
    expect(connections[0]?.via).toBeUndefined();
  });

  test("an untrusted peer is closed at once with EPROTO, nothing echoed, no connection admitted", () => {
    const { core, connections, closes, errors } = server();
    const socket = connect(core, UNTRUSTED);
    socket.events.onData(ascii("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\nhello"));
    expect(socket.destroyed()).toBe(true);
    expect(socket.written).toEqual([]);
    expect(connections).toEqual([]);
    expect(errors.map((error) => error.code)).toEqual(["EPROTO"]);
    expect(errors[0]?.message).toContain("192.0.2.99");
    expect(closes[0]).toMatchObject({ reason: "error", remoteAddress: UNTRUSTED });
    expect(core.stats.errors).toEqual({ EPROTO: 1 });
  });

  test("an invalid header is closed with EPROTO and never echoed", () => {
    const { core, connections, errors } = server();
    const socket = connect(core);
    socket.events.onData(ascii("GET / HTTP/1.1\r\n"));
    expect(socket.destroyed()).toBe(true);
    expect(socket.written).toEqual([]);
    expect(connections).toEqual([]);
    expect(errors.map((error) => error.code)).toEqual(["EPROTO"]);
  });

  test("no header within proxyHeaderTimeout: closed with EPROTO", () => {
    vi.useFakeTimers();
    const { core, errors, closes } = server({ proxyProtocol: true, proxyHeaderTimeout: 500 });
    const socket = connect(core);
    socket.events.onData(ascii("PROXY TCP4 "));
    vi.advanceTimersByTime(499);
    expect(socket.destroyed()).toBe(false);
    vi.advanceTimersByTime(1);
    expect(socket.destroyed()).toBe(true);
    expect(errors[0]?.message).toContain("within 500 ms");
    expect(closes[0]?.error?.code).toBe("EPROTO");
  });

  test("EOF before the header is complete: EPROTO", () => {
    const { core, errors } = server();
    const socket = connect(core);
    socket.events.onData(ascii("PROXY TCP4 1.2"));
    socket.events.onEnd();
    expect(socket.destroyed()).toBe(true);
    expect(errors.map((error) => error.code)).toEqual(["EPROTO"]);
  });

  test("maxConnectionsPerAddress counts the client behind the balancer, not the balancer", () => {
    const { core, connections, closes } = server({ proxyProtocol: true, maxConnectionsPerAddress: 1 });
    const a = connect(core);
    a.events.onData(ascii("PROXY TCP4 203.0.113.5 198.51.100.1 1000 7\r\n"));
    const b = connect(core);
    b.events.onData(ascii("PROXY TCP4 203.0.113.6 198.51.100.1 1000 7\r\n"));
    const c = connect(core);
    c.events.onData(ascii("PROXY TCP4 203.0.113.5 198.51.100.1 1001 7\r\n"));
    expect(connections.map((info) => info.remoteAddress.hostname)).toEqual(["203.0.113.5", "203.0.113.6"]);
    expect(c.destroyed()).toBe(true);
    expect(closes).toMatchObject([{ reason: "limit", remoteAddress: { hostname: "203.0.113.5", port: 1001 } }]);
  });

  test("maxConnections counts connections still waiting for their header", () => {
    const { core, closes } = server({ proxyProtocol: true, maxConnections: 1 });
    const waiting = connect(core);
    waiting.events.onData(ascii("PROXY "));
    const second = connect(core);
    expect(second.destroyed()).toBe(true);
    expect(closes).toMatchObject([{ reason: "limit" }]);
    expect(core.stats.rejected).toBe(1);
  });

  test("close() ends connections still waiting for their header at once", async () => {
    const { core, closes } = server();
    const socket = connect(core);
    socket.events.onData(ascii("PROXY "));
    await core.close();
    expect(socket.destroyed()).toBe(true);
    expect(closes).toMatchObject([{ reason: "server-close" }]);
  });

  test("without proxyProtocol a PROXY header is ordinary data and is echoed (RFC 862)", () => {
    const { core, connections } = server({});
    const socket = connect(core);
    const header = ascii("PROXY TCP4 203.0.113.5 198.51.100.1 51000 7\r\n");
    socket.events.onData(header);
    expect(socket.written).toEqual([...header]);
    expect(connections[0]?.remoteAddress).toEqual(BALANCER);
  });
});
