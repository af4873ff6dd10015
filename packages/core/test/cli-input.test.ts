import { describe, expect, test, vi } from "vitest";
import { type CliHost, runCli } from "../src/_cli.ts";
import { echoError } from "../src/_errors.ts";
import { batchClock, LatencyHistogram, thousands } from "../src/_load.ts";

/** A host that records every socket the CLI asks for; `connect` fails as told. */
function host(args: string[], connectError?: Error) {
  const sockets: string[] = [];
  let stderr = "";
  let stdout = "";
  const fake: CliHost = {
    runtime: "node",
    program: "tcp-echo-test",
    args,
    listen: (async () => {
      sockets.push("listen");
      throw new Error("listen must not be reached");
    }) as CliHost["listen"],
    connect: (async () => {
      sockets.push("connect");
      throw connectError ?? new Error("connect must not be reached");
    }) as CliHost["connect"],
    stdout: (data) => {
      stdout += String(data);
    },
    stderr: (text) => {
      stderr += text;
    },
    stdin: () => (async function* () {})(),
    onSignal: () => () => {},
  };
  return { fake, sockets, output: () => ({ stdout, stderr }) };
}

describe("cli: every flag is checked before any socket opens", () => {
  test.each([
    [["serve", "--stats", "x"], "--stats must be an integer from 0 to 2147483,"],
    [["serve", "--stats", "2147484"], "--stats must be an integer from 0 to 2147483,"],
    [["serve", "--idle-timeout", "2147483648"], "--idle-timeout must be an integer from 0 to 2147483647,"],
    [["serve", "--drain-timeout", "2147483648"], "--drain-timeout must be an integer from 0 to 2147483647,"],
    [["ping", "--interval", "2147483648"], "--interval must be an integer from 0 to 2147483647,"],
    [["ping", "--timeout", "0"], "--timeout must be an integer from 1 to 2147483647,"],
    [["ping", "--size", "67108865"], "--size must be an integer from 1 to 67108864,"],
    [["ping", "--count", "1000001"], "--count must be an integer from 1 to 1000000,"],
    [["send", "--timeout", "2147483648"], "--timeout must be an integer from 0 to 2147483647,"],
    [["serve", "--proxy-protocol", "--proxy-from", "10.0.0.0/8,10.1/16"], '--proxy-from: "10.1/16" is not an IP'],
    [["serve", "--proxy-protocol", "--proxy-from", "10.0.0.0/33"], '--proxy-from: "10.0.0.0/33" has prefix length'],
    [["serve", "--proxy-protocol", "--proxy-from", ""], '--proxy-from: "" is not an IP'],
    [["serve", "--proxy-from", "10.0.0.0/8"], "--proxy-from needs --proxy-protocol"],
    [["serve", "--proxy-header-timeout", "100"], "--proxy-header-timeout needs --proxy-protocol"],
    [["serve", "--proxy-protocol", "--proxy-header-timeout", "0"], "--proxy-header-timeout must be an integer from 1"],
    [["serve", "--proxy-protocol", "--unix", "/tmp/x.sock"], "--proxy-protocol cannot go with --unix"],
    [["serve", "--proxy-protocol", "--tls-cert", "c", "--tls-key", "k"], "--proxy-protocol cannot go with --tls-cert"],
    [["serve", "--workers", "0"], "--workers must be auto or an integer from 1 to 256"],
    [["serve", "--workers", "two"], "--workers must be auto or an integer from 1 to 256"],
    [["serve", "--workers", "2", "--unix", "/tmp/x.sock"], "--workers cannot go with --unix"],
    [["serve", "--reuse-port", "--unix", "/tmp/x.sock"], "--reuse-port cannot go with --unix"],
    [["serve", "--workers", "2"], "--workers is not available on node"],
  ])("%j: exit 2, one line naming the flag and its range, no listen or connect", async (args, message) => {
    const { fake, sockets, output } = host(args);
    expect(await runCli(fake)).toBe(2);
    expect(sockets).toEqual([]);
    const { stdout, stderr } = output();
    expect(stdout).toBe("");
    expect(stderr).toContain(message);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });

  test("the largest values in range are accepted (the socket is then asked for)", async () => {
    for (const args of [
      ["serve", "--stats", "2147483", "--idle-timeout", "2147483647"],
      ["serve", "--proxy-protocol", "--proxy-from", "10.0.0.0/8, fd00::/8,192.0.2.7", "--proxy-header-timeout", "1"],
      ["ping", "--size", "67108864", "--count", "1000000", "--interval", "2147483647"],
    ]) {
      const { fake, sockets } = host(args);
      expect(await runCli(fake)).toBe(1);
      expect(sockets).toHaveLength(1);
    }
  });
});

test("send: a connect ETIMEDOUT exits 1 saying what to check and how to wait longer", async () => {
  const timeout = echoError("ETIMEDOUT", { operation: "connect", hostname: "127.0.0.1", port: 9 });
  const { fake, output } = host(["send", "--port", "9", "--timeout", "500"], timeout);
  expect(await runCli(fake)).toBe(1);
  const { stderr } = output();
  expect(stderr).toMatch(/^tcp-echo-test: connect ETIMEDOUT 127\.0\.0\.1:9: .*check that the host is up/);
  expect(stderr).toContain("raise --timeout (now 500 ms)");
});

describe("load: every flag is checked before any connection", () => {
  test.each([
    [["--mode", "flood"], "--mode must be one of pingpong, pipeline, stream, churn"],
    [["--mode", "pingpong", "--in-flight", "4"], "--in-flight goes with --mode pipeline or stream"],
    [["--mode", "churn", "--in-flight", "4"], "--in-flight goes with --mode pipeline or stream"],
    [["--connections", "0"], "--connections must be an integer from 1 to 100000"],
    [["--in-flight", "10001"], "--in-flight must be an integer from 1 to 10000"],
    [["--size", "67108865"], "--size must be an integer from 1 to 67108864"],
    [["--duration", "0"], "--duration must be a number above 0"],
    [["--duration", "-1"], "--duration must be a number above 0"],
    [["--warmup", "x"], "--warmup must be a number from 0"],
    [["--rate", "1e3"], "--rate must be a number from 0"],
    [["--timeout", "0"], "--timeout must be an integer from 1"],
    [["--unix", "/tmp/x", "--port", "7"], "--unix cannot go with --port"],
    [["extra"], "load takes no arguments"],
  ])("load %j: exit 2 naming the flag, no connect", async (args, message) => {
    const { fake, sockets, output } = host(["load", ...args]);
    expect(await runCli(fake)).toBe(2);
    expect(sockets).toEqual([]);
    expect(output().stderr).toContain(message);
  });

  test("valid flags reach connect (which fails here: exit 1, the error counted)", async () => {
    const { fake, sockets } = host(["load", "--duration", "0.1", "--connections", "3", "--mode", "stream"]);
    expect(await runCli(fake)).toBe(1);
    expect(sockets).toEqual(["connect", "connect", "connect"]);
  });
});

describe("load: latency histogram", () => {
  test("percentiles within 0.2% of the exact nearest-rank value, never above the maximum", () => {
    const histogram = new LatencyHistogram();
    const values: number[] = [];
    for (let i = 1; i <= 10_000; i++) {
      const ms = (i * i) / 1e4; // 0.0001 ms to 10 s: both the linear and the logarithmic range
      values.push(ms);
      histogram.record(ms);
    }
    for (const fraction of [0.5, 0.9, 0.99, 0.999]) {
      const exact = values[Math.ceil(fraction * values.length) - 1] as number;
      const got = histogram.percentile(fraction);
      expect(Math.abs(got - exact)).toBeLessThanOrEqual(Math.max(0.001, exact * 0.002));
    }
    expect(histogram.percentile(1)).toBe(10_000);
    expect(histogram.max).toBe(10_000);
    expect(histogram.count).toBe(10_000);
  });

  test("bucket edges: every microsecond maps to a bucket whose upper edge is at or above it", () => {
    for (const us of [0, 1, 1023, 1024, 1025, 2047, 2048, 1e6, 2 ** 31 - 1]) {
      const index = LatencyHistogram.index(us);
      expect(LatencyHistogram.upper(index)).toBeGreaterThanOrEqual(us);
      expect(LatencyHistogram.upper(index) - us).toBeLessThanOrEqual(Math.max(0, us / 512));
      if (index > 0) expect(LatencyHistogram.upper(index - 1)).toBeLessThan(us);
    }
  });

  test("empty: NaN", () => {
    expect(new LatencyHistogram().percentile(0.5)).toBeNaN();
  });
});

describe("load: the clock read once per batch of echoes", () => {
  test("one reading for the echoes that resume together, at most `uses` of them, and a new one once their microtasks are done", async () => {
    let now = 0;
    const read = vi.spyOn(performance, "now").mockImplementation(() => ++now);
    try {
      const clock = batchClock(3);
      // One microtask checkpoint: three readings share the clock, the fourth reads it again.
      expect([clock(), clock(), clock(), clock()]).toEqual([1, 1, 1, 2]);
      expect(read).toHaveBeenCalledTimes(2);
      // The checkpoint's microtasks are done: the reading is stale.
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(clock()).toBe(3);
      // Resumed by microtasks queued together, as a read callback's resolved echoes resume their lanes.
      const lanes = await Promise.all([1, 2, 3].map(() => Promise.resolve().then(clock)));
      expect(lanes).toEqual([4, 4, 4]);
      // Without batching (pingpong, one echo per connection) every call reads the clock.
      const single = batchClock(1);
      expect([single(), single()]).toEqual([5, 6]);
    } finally {
      read.mockRestore();
    }
  });
});

test("load: the progress line's counts read as toLocaleString('en-US') writes them, without it", () => {
  for (const value of [0, 7, 999, 1000, 12_345, 999_999, 1_000_000, 123_456_789, -4_321])
    expect(thousands(value)).toBe(value.toLocaleString("en-US"));
});
