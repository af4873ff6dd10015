/**
 * `serve --udp`, `send --udp` and `ping --udp`: the UDP half of the command
 * line. `_cli.ts` parses the arguments and hands them here with its usage
 * helpers, so both halves read their flags the same way.
 */

import { DATAGRAM_DEFAULTS, MAX_DATAGRAM, PING_HEADER, PingTally, pingProbe } from "./_datagram.ts";
import { EchoError, formatAddress, isEchoError } from "./_errors.ts";
import { summarize } from "./_stats.ts";
import type { DatagramRateLimit, EchoDatagramClient, EchoRuntime } from "./types.ts";

type Values = Record<string, string | boolean | undefined>;

/** What `_cli.ts` lends: its host, its usage error and its flag readers. */
export interface DatagramCli {
  readonly host: EchoRuntime & {
    stdout(data: string | Uint8Array): void | Promise<void>;
    stderr(text: string): void;
    stdin(): AsyncIterable<Uint8Array>;
    onSignal(handler: (signal: string) => void): () => void;
  };
  usage(message: string): Error;
  count(values: Values, name: string, fallback: number, min?: number, max?: number): number;
  address(values: Values, minPort: number): { hostname: string; port: number };
}

/** The flags each command takes with `--udp`, on top of the ones TCP shares (host, port, json, stats, timeout...). */
export const DATAGRAM_FLAGS = {
  serve: {
    udp: "boolean",
    "allow-privileged-source-ports": "boolean",
    "source-rate": "string",
    "source-byte-rate": "string",
    rate: "string",
    "byte-rate": "string",
  },
  send: { udp: "boolean", retries: "string", size: "string" },
  ping: { udp: "boolean" },
} as const;

/** Flags that mean nothing over UDP: refused, never ignored. */
const TCP_ONLY = [
  "unix",
  "tls-cert",
  "tls-key",
  "tls-ca",
  "tls-servername",
  "max-connections",
  "max-connections-per-address",
  "idle-timeout",
  "drain-timeout",
  "proxy-protocol",
  "proxy-from",
  "proxy-header-timeout",
  "reuse-port",
  "workers",
];

/** The UDP-only flag given without `--udp`, if any (ping's `--size` is shared). */
export function datagramOnlyFlag(command: string, values: Values): string | undefined {
  const flags = DATAGRAM_FLAGS[command as keyof typeof DATAGRAM_FLAGS] ?? {};
  return Object.keys(flags).find((name) => name !== "udp" && values[name] !== undefined);
}

const MAX_MS = 2 ** 31 - 1;
const MAX_PAYLOAD = MAX_DATAGRAM.IPv6;

export async function runDatagram(
  cli: DatagramCli,
  command: string,
  values: Values,
  positionals: readonly string[],
): Promise<number> {
  const clash = TCP_ONLY.find((name) => values[name] !== undefined);
  if (clash) throw cli.usage(`--${clash} cannot go with --udp: it applies to TCP only`);
  if (command === "serve") return serve(cli, values, positionals);
  if (command === "send") return send(cli, values, positionals);
  return ping(cli, values, positionals);
}

// --- serve --udp ---

function limit(cli: DatagramCli, values: Values, names: [string, string], base: DatagramRateLimit): DatagramRateLimit {
  return {
    datagramsPerSecond: cli.count(values, names[0], base.datagramsPerSecond),
    bytesPerSecond: cli.count(values, names[1], base.bytesPerSecond),
  };
}

async function serve(cli: DatagramCli, values: Values, positionals: readonly string[]): Promise<number> {
  const { host } = cli;
  if (positionals.length) throw cli.usage(`serve takes no arguments, got ${JSON.stringify(positionals[0])}`);
  const json = values.json === true;
  const log = (event: Record<string, unknown>, text?: string) => {
    if (json) host.stdout(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
    else if (text) host.stdout(`${text}\n`);
  };
  // Every flag is checked before the bind.
  const statsEvery = cli.count(values, "stats", 0, 0, Math.floor(MAX_MS / 1000));
  const sourceRateLimit = limit(cli, values, ["source-rate", "source-byte-rate"], DATAGRAM_DEFAULTS.sourceRateLimit);
  const rateLimit = limit(cli, values, ["rate", "byte-rate"], DATAGRAM_DEFAULTS.rateLimit);
  const allowPrivilegedSourcePorts = values["allow-privileged-source-ports"] === true;
  const { hostname, port } = cli.address(values, 0);
  // No line per datagram, nor per drop: a flood would turn into a flood of log lines. `--stats` counts them.
  const server = await host.listen({
    transport: "udp",
    hostname,
    port,
    allowPrivilegedSourcePorts,
    sourceRateLimit,
    rateLimit,
    onError: (error) => {
      if (json) log({ event: "error", code: error.code, message: error.message });
      else host.stderr(`${error.message}\n`);
    },
  });
  let signals = 0;
  const stop = host.onSignal((signal) => {
    if (signals++ === 0 && !json) host.stderr(`${signal}: closing\n`);
    void server.close();
  });
  const bound = server.address;
  log(
    { event: "listening", runtime: host.runtime, transport: "udp", hostname: bound.hostname, port: bound.port },
    `Server listening on ${formatAddress(bound.hostname, bound.port)} (UDP)`,
  );
  if (!(bound.hostname === "::1" || bound.hostname.startsWith("127."))) {
    const rate = (name: string, value: DatagramRateLimit) =>
      `${value.datagramsPerSecond} datagrams and ${value.bytesPerSecond} bytes a second ${name}`;
    host.stderr(
      `warning: listening on ${bound.hostname} (UDP), reachable from other machines; limits: ${allowPrivilegedSourcePorts ? "source ports below 1024 answered (--allow-privileged-source-ports)" : "source ports below 1024 dropped"}, ${rate("per source address", sourceRateLimit)}, ${rate("in all", rateLimit)}\n`,
    );
  }
  const statsTimer =
    statsEvery > 0
      ? setInterval(() => {
          const stats = server.stats;
          log(
            { event: "stats", ...stats },
            `stats: datagrams in ${stats.datagramsIn}, out ${stats.datagramsOut}, bytes in ${stats.bytesIn}, out ${stats.bytesOut}, dropped ${JSON.stringify(stats.dropped)}, errors ${JSON.stringify(stats.errors)}`,
          );
        }, statsEvery * 1000)
      : undefined;
  await server.closed;
  stop();
  clearInterval(statsTimer);
  log({ event: "closed", ...server.stats });
  return 0;
}

// --- send --udp ---

async function send(cli: DatagramCli, values: Values, positionals: readonly string[]): Promise<number> {
  const { host } = cli;
  const timeout = cli.count(values, "timeout", 1000, 1, MAX_MS);
  const retries = cli.count(values, "retries", 2, 0, 1000);
  const size = cli.count(values, "size", 1472, 1, MAX_PAYLOAD);
  const streaming = positionals.length === 1 && positionals[0] === "-";
  const message = new TextEncoder().encode(positionals.length ? positionals.join(" ") : "Hello, server!");
  if (!streaming && message.byteLength > MAX_PAYLOAD)
    throw cli.usage(`the message is ${message.byteLength} bytes, over the ${MAX_PAYLOAD} one UDP datagram can carry`);
  const client = await host.connect({ transport: "udp", ...cli.address(values, 1) });
  try {
    const options = { timeout, retries };
    if (!streaming) {
      const reply = await client.echo(message, options);
      await host.stdout(`Received response from server: ${new TextDecoder().decode(reply)}\n`);
      return 0;
    }
    // One datagram at a time, each at most `size` bytes: the echo is written in the order read.
    for await (const chunk of host.stdin())
      for (let offset = 0; offset < chunk.byteLength; offset += size)
        await host.stdout(await client.echo(chunk.subarray(offset, offset + size), options));
    return 0;
  } catch (error) {
    if (isEchoError(error, "ETIMEDOUT")) error.message += `; to wait longer, raise --timeout or --retries`;
    throw error;
  } finally {
    await client.close();
  }
}

// --- ping --udp ---

/** Probes in flight at once, whatever `--interval`: a bound on memory and timers. */
const PING_WINDOW = 1024;

async function ping(cli: DatagramCli, values: Values, positionals: readonly string[]): Promise<number> {
  const { host } = cli;
  if (positionals.length) throw cli.usage(`ping takes no arguments, got ${JSON.stringify(positionals[0])}`);
  const total = cli.count(values, "count", 4, 1, 1_000_000);
  const size = cli.count(values, "size", 56, PING_HEADER, MAX_PAYLOAD);
  const interval = cli.count(values, "interval", 1000, 0, MAX_MS);
  const timeout = cli.count(values, "timeout", 2000, 1, MAX_MS);
  const client: EchoDatagramClient = await host.connect({ transport: "udp", ...cli.address(values, 1) });
  const where = formatAddress(client.remoteAddress.hostname, client.remoteAddress.port);
  await host.stdout(`PING ${where} UDP (${host.runtime} client): ${size} bytes\n`);
  const tally = new PingTally();
  const times: number[] = [];
  let failed = 0;
  // Lines in the order the replies came, each written after the last.
  let printed: Promise<void> = Promise.resolve();
  const print = (line: string) => {
    printed = printed.then(() => host.stdout(line));
  };
  let interrupted = false;
  const stop = host.onSignal(() => {
    interrupted = true;
  });
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  try {
    for (let seq = 1; seq <= total && !interrupted; seq++) {
      tally.sent++;
      const begin = performance.now();
      const probe = client.echo(pingProbe(seq, size), { timeout, retries: 0 }).then(
        () => {
          const rtt = performance.now() - begin;
          times.push(rtt);
          const { reordered } = tally.reply(seq);
          print(
            `${size} bytes from ${where}: seq=${seq} time=${rtt.toFixed(3)} ms${reordered ? " (out of order)" : ""}\n`,
          );
        },
        (error: unknown) => {
          failed++;
          const timedOut = error instanceof EchoError && error.code === "ETIMEDOUT";
          print(timedOut ? `Request timeout for seq=${seq}\n` : `seq=${seq}: ${(error as Error).message}\n`);
        },
      );
      inFlight.add(probe);
      void probe.then(() => inFlight.delete(probe));
      if (inFlight.size >= PING_WINDOW) await Promise.race(inFlight);
      if (seq < total && interval > 0 && !interrupted) await new Promise((resolve) => setTimeout(resolve, interval));
    }
    await Promise.all(inFlight);
  } finally {
    stop();
    await client.close();
  }
  await printed;
  const elapsed = performance.now() - started;
  let report = `\n--- ${where} UDP echo ping statistics ---\n${tally.sent} sent, ${tally.received} received, ${tally.lossPercent}% loss, ${tally.reordered} out of order, time ${Math.round(elapsed)} ms\n`;
  if (times.length > 0) {
    const s = summarize(times);
    report += `rtt min/avg/max/mdev = ${[s.min, s.mean, s.max, s.mdev].map((v) => v.toFixed(3)).join("/")} ms\n`;
  }
  await host.stdout(report);
  return failed === 0 ? 0 : 1;
}
