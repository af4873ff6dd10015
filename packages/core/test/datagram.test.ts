/** UDP echo without sockets: the policy, counters, matcher and client retries, driven with fake sockets and clocks. */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { runCli } from "../src/_cli.ts";
import {
  DatagramPolicy,
  EchoMatcher,
  MAX_DATAGRAM,
  PING_HEADER,
  PingTally,
  pingProbe,
  TokenBucket,
} from "../src/_datagram.ts";
import {
  DatagramClientCore,
  type DatagramIO,
  DatagramServerCore,
  datagramAddress,
  resolveDatagramListenOptions,
} from "../src/_datagram_io.ts";
import type { EchoError } from "../src/_errors.ts";
import type { DatagramListenOptions } from "../src/types.ts";

const SOURCE = "127.0.0.1";
const OTHER = "127.0.0.2";
const PORT = 40_000;

/** A socket that records what it was asked to send; `accept` says whether it takes each. */
function fakeIO(accept: () => boolean = () => true) {
  const sent: Array<{ data: Uint8Array; hostname: string; port: number }> = [];
  const io: DatagramIO = {
    address: datagramAddress("127.0.0.1", 7000),
    send(data, hostname, port) {
      if (!accept()) return false;
      sent.push({ data, hostname, port });
      return true;
    },
    close() {},
  };
  return { io, sent };
}

function server(options: Omit<DatagramListenOptions, "transport"> = {}, now = 0) {
  const core = new DatagramServerCore(
    "node",
    resolveDatagramListenOptions({ transport: "udp", port: 0, ...options }),
    now,
  );
  const fake = fakeIO();
  core.attach(fake.io);
  return { core, sent: fake.sent };
}

describe("udp: token bucket", () => {
  test("starts full, refills at its rate, never holds more than one second's worth", () => {
    const bucket = new TokenBucket(10, 0);
    for (let i = 0; i < 10; i++) expect(bucket.take(1, 0)).toBe(true);
    expect(bucket.take(1, 0)).toBe(false);
    expect(bucket.take(1, 100)).toBe(true);
    expect(bucket.take(1, 100)).toBe(false);
    expect(bucket.full(10_000)).toBe(true);
    expect(bucket.take(11, 10_000)).toBe(false);
    expect(bucket.take(10, 10_000)).toBe(true);
  });

  test("a clock that steps back refills nothing", () => {
    const bucket = new TokenBucket(2, 1000);
    bucket.take(2, 1000);
    expect(bucket.take(1, 0)).toBe(false);
    expect(bucket.take(1, 999)).toBe(false);
  });
});

describe("udp: server policy", () => {
  const limits = {
    sourceRateLimit: false,
    rateLimit: false,
    allowPrivilegedSourcePorts: false,
    maxSources: 8,
  } as const;

  test("source ports below 1024 are dropped unless allowed; 1024 is answered", () => {
    const policy = new DatagramPolicy(limits, 0);
    expect(policy.decide(SOURCE, 1023, 10, 0)).toBe("sourcePort");
    expect(policy.decide(SOURCE, 7, 10, 0)).toBe("sourcePort");
    expect(policy.decide(SOURCE, 0, 10, 0)).toBe("sourcePort");
    expect(policy.decide(SOURCE, 1024, 10, 0)).toBeUndefined();
    const open = new DatagramPolicy({ ...limits, allowPrivilegedSourcePorts: true }, 0);
    expect(open.decide(SOURCE, 1023, 10, 0)).toBeUndefined();
  });

  test("a source over its bucket is dropped while another source is still answered, then refills", () => {
    const policy = new DatagramPolicy(
      { ...limits, sourceRateLimit: { datagramsPerSecond: 100, bytesPerSecond: 0 } },
      0,
    );
    for (let i = 0; i < 100; i++) expect(policy.decide(SOURCE, PORT, 1, 0)).toBeUndefined();
    expect(policy.decide(SOURCE, PORT, 1, 0)).toBe("sourceRate");
    expect(policy.decide(SOURCE, PORT + 1, 1, 0)).toBe("sourceRate");
    expect(policy.decide(OTHER, PORT, 1, 0)).toBeUndefined();
    expect(policy.decide(SOURCE, PORT, 1, 10)).toBeUndefined();
  });

  test("the byte bucket limits too; a datagram larger than the whole bucket passes once a full bucket", () => {
    const policy = new DatagramPolicy(
      { ...limits, sourceRateLimit: { datagramsPerSecond: 0, bytesPerSecond: 1000 } },
      0,
    );
    expect(policy.decide(SOURCE, PORT, 600, 0)).toBeUndefined();
    expect(policy.decide(SOURCE, PORT, 600, 0)).toBe("sourceRate");
    expect(policy.decide(SOURCE, PORT, 400, 0)).toBeUndefined();
    expect(policy.decide(SOURCE, PORT, 65_507, 999)).toBe("sourceRate");
    expect(policy.decide(SOURCE, PORT, 65_507, 1000)).toBeUndefined();
  });

  test("the global bucket holds across sources; a source over its own limit spends none of it", () => {
    const policy = new DatagramPolicy(
      {
        ...limits,
        sourceRateLimit: { datagramsPerSecond: 5, bytesPerSecond: 0 },
        rateLimit: { datagramsPerSecond: 10, bytesPerSecond: 0 },
      },
      0,
    );
    for (let i = 0; i < 50; i++) policy.decide(SOURCE, PORT, 1, 0);
    for (let i = 0; i < 5; i++) expect(policy.decide(OTHER, PORT, 1, 0)).toBeUndefined();
    expect(policy.decide("127.0.0.3", PORT, 1, 0)).toBe("rate");
  });

  test("source buckets are bounded: at most maxSources, the least recent forgotten", () => {
    const policy = new DatagramPolicy({ ...limits, sourceRateLimit: { datagramsPerSecond: 1, bytesPerSecond: 0 } }, 0);
    for (let i = 0; i < 100; i++) policy.decide(`10.0.0.${i}`, PORT, 1, 0);
    expect(policy.trackedSources).toBe(8);
    // The most recent ones are still limited; the first was forgotten and starts full again.
    expect(policy.decide("10.0.0.99", PORT, 1, 0)).toBe("sourceRate");
    expect(policy.decide("10.0.0.0", PORT, 1, 0)).toBeUndefined();
  });
});

describe("udp: server core", () => {
  test("each datagram is echoed whole to its sender and counted; drops are counted by reason", () => {
    const drops: string[] = [];
    const { core, sent } = server({ onDrop: (drop) => void drops.push(drop.reason) });
    const payload = new Uint8Array([1, 2, 3]);
    core.onDatagram(payload, SOURCE, PORT, false, 0);
    core.onDatagram(new Uint8Array(0), SOURCE, PORT, false, 0);
    core.onDatagram(new Uint8Array(5), SOURCE, 1023, false, 0);
    core.onDatagram(new Uint8Array(5), SOURCE, PORT, true, 0);
    expect(sent.map(({ data, hostname, port }) => [[...data], hostname, port])).toEqual([
      [[1, 2, 3], SOURCE, PORT],
      [[], SOURCE, PORT],
    ]);
    expect(core.stats).toMatchObject({ datagramsIn: 4, datagramsOut: 2, bytesIn: 13, bytesOut: 3 });
    expect(core.stats.dropped).toEqual({ sourcePort: 1, sourceRate: 0, rate: 0, sendQueue: 0, truncated: 1 });
    expect(drops).toEqual(["sourcePort", "truncated"]);
  });

  test("a socket that cannot take the echo drops it (sendQueue), a send that throws is an error: the server goes on", () => {
    let take = false;
    const errors: EchoError[] = [];
    const core = new DatagramServerCore(
      "node",
      resolveDatagramListenOptions({ transport: "udp", onError: (error) => void errors.push(error) }),
      0,
    );
    const fake = fakeIO(() => take);
    core.attach({
      ...fake.io,
      send: (data, hostname, port) => {
        if (data.byteLength === 9) throw Object.assign(new Error("message too long"), { code: "EMSGSIZE" });
        return fake.io.send(data, hostname, port);
      },
    });
    core.onDatagram(new Uint8Array(1), SOURCE, PORT, false, 0);
    core.onDatagram(new Uint8Array(9), SOURCE, PORT, false, 0);
    take = true;
    core.onDatagram(new Uint8Array(2), SOURCE, PORT, false, 0);
    expect(core.stats.dropped.sendQueue).toBe(1);
    expect(core.stats.datagramsOut).toBe(1);
    expect(errors.map((error) => error.code)).toEqual(["EUNKNOWN"]);
    expect(core.stats.errors).toEqual({ EUNKNOWN: 1 });
  });

  test("a hook that throws is EHOOK on onError, and the datagram path goes on", () => {
    const errors: string[] = [];
    const { core, sent } = server({
      onDrop: () => {
        throw new Error("boom");
      },
      onError: (error) => void errors.push(error.code),
    });
    core.onDatagram(new Uint8Array(1), SOURCE, 80, false, 0);
    core.onDatagram(new Uint8Array(1), SOURCE, PORT, false, 0);
    expect(errors).toEqual(["EHOOK"]);
    expect(sent).toHaveLength(1);
  });

  test("close is idempotent and nothing is echoed after it", async () => {
    const { core, sent } = server();
    const first = core.close();
    expect(core.close()).toBe(first);
    await first;
    await core.closed;
    core.onDatagram(new Uint8Array(1), SOURCE, PORT, false, 0);
    expect(sent).toHaveLength(0);
  });

  test("options: TCP-only ones are refused, limits are checked, false turns a limit off", () => {
    const bad = (options: object) => () => resolveDatagramListenOptions({ transport: "udp", ...options });
    expect(bad({ tls: {} })).toThrow(/tls: it does not apply to UDP/);
    expect(bad({ maxConnections: 3 })).toThrow(/maxConnections/);
    expect(bad({ sourceRateLimit: { datagramsPerSecond: -1 } })).toThrow(/sourceRateLimit.datagramsPerSecond/);
    expect(bad({ rateLimit: 5 })).toThrow(/rateLimit/);
    expect(bad({ port: 65536 })).toThrow(/port/);
    const config = resolveDatagramListenOptions({ transport: "udp", sourceRateLimit: false });
    expect(config).toMatchObject({
      hostname: "127.0.0.1",
      port: 12345,
      sourceRateLimit: false,
      rateLimit: { datagramsPerSecond: 20_000, bytesPerSecond: 33_554_432 },
      allowPrivilegedSourcePorts: false,
    });
  });

  test("fuzz: random sizes, bytes, sources and bursts never throw; every datagram is echoed byte-exact or counted as dropped", () => {
    const datagram = fc.record({
      size: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(1472, 8192, MAX_DATAGRAM.IPv4)),
      seed: fc.integer({ min: 0, max: 255 }),
      source: fc.constantFrom("127.0.0.1", "127.0.0.2", "::1", "10.1.2.3"),
      port: fc.integer({ min: 0, max: 65535 }),
      truncated: fc.boolean(),
      // Mostly bursts (no time passes), sometimes a pause.
      advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2000 })),
    });
    fc.assert(
      fc.property(fc.array(datagram, { maxLength: 300 }), fc.integer({ min: 0, max: 3 }), (datagrams, limit) => {
        const limits = [
          {},
          { sourceRateLimit: { datagramsPerSecond: 5, bytesPerSecond: 10_000 } },
          { rateLimit: { datagramsPerSecond: 3, bytesPerSecond: 0 } },
          { sourceRateLimit: false, rateLimit: false, allowPrivilegedSourcePorts: true },
        ] as const;
        const { core, sent } = server(limits[limit]);
        let now = 0;
        const inputs: Uint8Array[] = [];
        for (const { size, seed, source, port, truncated, advance } of datagrams) {
          now += advance;
          const bytes = new Uint8Array(size);
          for (let i = 0; i < size; i++) bytes[i] = (seed * 31 + i * 7) & 0xff;
          inputs.push(bytes);
          core.onDatagram(bytes, source, port, truncated, now);
        }
        const stats = core.stats;
        const dropped = Object.values(stats.dropped).reduce((sum, n) => sum + n, 0);
        expect(stats.datagramsIn).toBe(datagrams.length);
        expect(stats.datagramsOut + dropped).toBe(datagrams.length);
        expect(stats.datagramsOut).toBe(sent.length);
        expect(stats.bytesOut).toBe(sent.reduce((sum, { data }) => sum + data.byteLength, 0));
        // Echoed datagrams are the received ones, unchanged, to their senders, in order.
        let next = 0;
        for (const echo of sent) {
          while (inputs[next] !== echo.data) next++;
          const { source, port, truncated } = datagrams[next] as (typeof datagrams)[number];
          expect([echo.hostname, echo.port, truncated]).toEqual([source, port, false]);
          expect(port >= 1024 || limit === 3).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("udp: matching replies to echoes", () => {
  const bytes = (...values: number[]) => new Uint8Array(values);

  test("a reply resolves the echo whose bytes it equals, in any order", () => {
    const matcher = new EchoMatcher();
    matcher.sent(1, bytes(1));
    matcher.sent(2, bytes(2));
    expect(matcher.received(bytes(2))).toEqual({ kind: "reply", id: 2 });
    expect(matcher.received(bytes(1))).toEqual({ kind: "reply", id: 1 });
    expect(matcher.pending).toBe(0);
  });

  test("equal payloads are answered oldest first", () => {
    const matcher = new EchoMatcher();
    matcher.sent(1, bytes(7));
    matcher.sent(2, bytes(7));
    expect(matcher.received(bytes(7))).toEqual({ kind: "reply", id: 1 });
    expect(matcher.received(bytes(7))).toEqual({ kind: "reply", id: 2 });
  });

  test("after a retransmission, the second answer is late, not an error", () => {
    const matcher = new EchoMatcher();
    matcher.sent(1, bytes(1));
    matcher.sent(1, bytes(1));
    expect(matcher.received(bytes(1))).toEqual({ kind: "reply", id: 1 });
    matcher.sent(2, bytes(2));
    expect(matcher.received(bytes(1))).toEqual({ kind: "late" });
    expect(matcher.received(bytes(2))).toEqual({ kind: "reply", id: 2 });
  });

  test("an answer to an echo given up on is late; each copy we caused is forgiven once", () => {
    const matcher = new EchoMatcher();
    matcher.sent(1, bytes(1));
    matcher.abandon(1);
    matcher.sent(2, bytes(2));
    expect(matcher.received(bytes(1))).toEqual({ kind: "late" });
    expect(matcher.received(bytes(1))).toEqual({ kind: "mismatch", id: 2 });
  });

  test("different bytes, or an answer repeated unasked, is a mismatch blamed on the oldest in flight", () => {
    const matcher = new EchoMatcher();
    matcher.sent(1, bytes(1, 2));
    matcher.sent(2, bytes(3));
    expect(matcher.received(bytes(1, 9))).toEqual({ kind: "mismatch", id: 1 });
    expect(matcher.received(bytes(3))).toEqual({ kind: "reply", id: 2 });
    matcher.sent(3, bytes(4));
    expect(matcher.received(bytes(3))).toEqual({ kind: "mismatch", id: 3 });
    expect(matcher.received(bytes(3))).toEqual({ kind: "unexpected" });
  });

  test("ping probes carry their sequence number; a reply after a later one is out of order", () => {
    const probe = pingProbe(258, 8);
    expect([...probe.subarray(0, PING_HEADER)]).toEqual([0, 0, 1, 2]);
    expect(pingProbe(1, 8)).not.toEqual(pingProbe(2, 8));
    const tally = new PingTally();
    tally.sent = 4;
    expect(tally.reply(1).reordered).toBe(false);
    expect(tally.reply(3).reordered).toBe(false);
    expect(tally.reply(2).reordered).toBe(true);
    expect([tally.received, tally.reordered, tally.lossPercent]).toEqual([3, 1, 25]);
  });
});

describe("udp: client", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function client() {
    const remote = datagramAddress("127.0.0.1", 7000);
    const core = new DatagramClientCore("node", remote);
    const fake = fakeIO();
    core.attach(fake.io, undefined);
    return { core, sent: fake.sent, answer: (data: Uint8Array) => core.onDatagram(data, "127.0.0.1", 7000) };
  }

  test("resolves with the answering datagram", async () => {
    const { core, sent, answer } = client();
    const echo = core.echo("hi");
    answer(new Uint8Array(sent[0]?.data ?? []));
    expect(new TextDecoder().decode(await echo)).toBe("hi");
    expect(core.stats).toMatchObject({ sent: 1, received: 1, retransmitted: 0 });
  });

  test("a lost datagram is sent again `retries` times, then ETIMEDOUT naming the attempts", async () => {
    const { core, sent } = client();
    const echo = core.echo("lost", { timeout: 100, retries: 2 });
    const failed = expect(echo).rejects.toMatchObject({ code: "ETIMEDOUT", message: /after 3 attempt/ });
    await vi.advanceTimersByTimeAsync(299);
    expect(sent).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    await failed;
    expect(core.stats.retransmitted).toBe(2);
  });

  test("an answer on a retry resolves; the late first answer is ignored", async () => {
    const { core, answer } = client();
    const echo = core.echo("slow", { timeout: 100, retries: 1 });
    await vi.advanceTimersByTimeAsync(100);
    answer(new TextEncoder().encode("slow"));
    await echo;
    answer(new TextEncoder().encode("slow"));
    expect(core.stats).toMatchObject({ sent: 2, received: 2, late: 1 });
  });

  test("a different answer is EPROTO; the client stays usable", async () => {
    const { core, answer } = client();
    const echo = core.echo("abc");
    answer(new TextEncoder().encode("abd"));
    await expect(echo).rejects.toMatchObject({ code: "EPROTO" });
    const next = core.echo("ok");
    answer(new TextEncoder().encode("ok"));
    await expect(next).resolves.toEqual(new TextEncoder().encode("ok"));
  });

  test("datagrams from another address are ignored (strays)", async () => {
    const { core, answer } = client();
    const echo = core.echo("x", { timeout: 50, retries: 0 });
    core.onDatagram(new TextEncoder().encode("x"), "127.0.0.1", 7001);
    core.onDatagram(new TextEncoder().encode("x"), "127.0.0.9", 7000);
    answer(new TextEncoder().encode("x"));
    await echo;
    expect(core.stats.strays).toBe(2);
  });

  test("too large a payload is EINVAL before any send; close rejects what is in flight with ECLOSED", async () => {
    const { core, sent } = client();
    await expect(core.echo(new Uint8Array(MAX_DATAGRAM.IPv4 + 1))).rejects.toMatchObject({ code: "EINVAL" });
    expect(sent).toHaveLength(0);
    const echo = core.echo("pending");
    await core.close();
    await expect(echo).rejects.toMatchObject({ code: "ECLOSED" });
    await expect(core.echo("after")).rejects.toMatchObject({ code: "ECLOSED" });
  });

  test("an aborted echo is EABORTED and sends no more", async () => {
    const { core, sent } = client();
    const abort = new AbortController();
    const echo = core.echo("a", { timeout: 10, retries: 5, signal: abort.signal });
    abort.abort();
    await expect(echo).rejects.toMatchObject({ code: "EABORTED" });
    await vi.advanceTimersByTimeAsync(100);
    expect(sent).toHaveLength(1);
  });
});

describe("udp: CLI flags are checked before any socket opens", () => {
  function run(args: string[]) {
    let stderr = "";
    const sockets: string[] = [];
    const unreachable = async () => {
      sockets.push("socket");
      throw new Error("no socket in this test");
    };
    return runCli({
      runtime: "node",
      program: "tcp-echo-test",
      args,
      listen: unreachable as never,
      connect: unreachable as never,
      stdout: () => {},
      stderr: (text) => {
        stderr += text;
      },
      stdin: () => (async function* () {})(),
      onSignal: () => () => {},
    }).then((code) => ({ code, stderr, sockets }));
  }

  test.each([
    [["serve", "--udp", "--unix", "/tmp/x"], "--unix cannot go with --udp"],
    [["serve", "--udp", "--tls-cert", "a"], "--tls-cert cannot go with --udp"],
    [["serve", "--udp", "--max-connections", "3"], "--max-connections cannot go with --udp"],
    [["serve", "--udp", "--workers", "2"], "--workers cannot go with --udp"],
    [["serve", "--udp", "--proxy-protocol"], "--proxy-protocol cannot go with --udp"],
    [["serve", "--rate", "5"], "--rate applies to UDP only: add --udp"],
    [["send", "--retries", "1"], "--retries applies to UDP only"],
    [["serve", "--udp", "--source-rate", "x"], "--source-rate must be"],
    [["send", "--udp", "--size", "65528"], "--size must be an integer from 1 to 65527"],
    [["ping", "--udp", "--size", "3"], "--size must be an integer from 4 to 65527"],
    [["send", "--udp", "x".repeat(65_528)], "over the 65527 one UDP datagram can carry"],
  ])("%j: exit 2, naming the flag", async (args, message) => {
    const { code, stderr, sockets } = await run(args);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(sockets).toEqual([]);
  });

  test("serve --udp on a non-loopback address warns, naming the guard and the limits in force", async () => {
    let stderr = "";
    let asked: unknown;
    const code = await runCli({
      runtime: "node",
      program: "tcp-echo-test",
      args: ["serve", "--udp", "--host", "0.0.0.0", "--port", "0", "--source-rate", "50"],
      listen: (async (options: unknown) => {
        asked = options;
        return {
          address: datagramAddress("0.0.0.0", 7007),
          stats: {},
          closed: Promise.resolve(),
          close: async () => {},
        };
      }) as never,
      connect: (async () => {
        throw new Error("no connect in this test");
      }) as never,
      stdout: () => {},
      stderr: (text) => {
        stderr += text;
      },
      stdin: () => (async function* () {})(),
      onSignal: () => () => {},
    });
    expect(code).toBe(0);
    expect(asked).toMatchObject({
      transport: "udp",
      hostname: "0.0.0.0",
      sourceRateLimit: { datagramsPerSecond: 50, bytesPerSecond: 1_048_576 },
      allowPrivilegedSourcePorts: false,
    });
    expect(stderr).toContain("warning: listening on 0.0.0.0 (UDP), reachable from other machines");
    expect(stderr).toContain("source ports below 1024 dropped");
    expect(stderr).toContain("50 datagrams and 1048576 bytes a second per source address");
    expect(stderr).toContain("20000 datagrams and 33554432 bytes a second in all");
  });
});
