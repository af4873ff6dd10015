/**
 * The command line, shared by every runtime: `serve`, `send` and `ping`. Each
 * runtime's `cli.ts` supplies a `CliHost` (its listen/connect, stdio, signals)
 * and exits with the code `runCli` returns: 0 ok, 1 failure, 2 usage error.
 */

import { EchoError, formatAddress, isEchoError } from "./errors.ts";
import { DEFAULTS, normalizeHostname, parsePort } from "./options.ts";
import { summarize } from "./stats.ts";
import type { ConnectionSummary, EchoConnection, EchoRuntime, EchoServer } from "./types.ts";

export interface CliHost extends EchoRuntime {
  /** Arguments after the script: `["serve", "--port", "0"]`. */
  readonly args: readonly string[];
  /** The program name for usage lines, e.g. `tcp-echo-node`. */
  readonly program: string;
  /** Writes to standard output, all of it; resolves once written (backpressure for `send -`). */
  stdout(data: string | Uint8Array): void | Promise<void>;
  stderr(text: string): void;
  /** Standard input as chunks, for `send -`. */
  stdin(): AsyncIterable<Uint8Array>;
  /** Calls `handler` on SIGINT and SIGTERM; returns a function that stops listening. */
  onSignal(handler: (signal: string) => void): () => void;
}

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

class UsageError extends Error {}

const USAGE = `usage: PROGRAM <command> [options]

commands:
  serve [--host H] [--port P] [--json] [--max-connections N] [--idle-timeout MS] [--drain-timeout MS] [--stats SECONDS]
        run an echo server (port 0 picks a free one); Ctrl-C drains, a second Ctrl-C forces
  send  [--host H] [--port P] [--timeout MS] [MESSAGE... | -]
        send MESSAGE (default "Hello, server!"), half-close, check the echo; "-" streams stdin to stdout
  ping  [--host H] [--port P] [--count N] [--size B] [--interval MS] [--timeout MS]
        measure round-trip time with echoes, like ping

defaults: --host ${DEFAULTS.hostname} --port ${DEFAULTS.port}`;

type Spec = Record<string, "string" | "boolean">;

const COMMON: Spec = { host: "string", port: "string", help: "boolean" };
const SPECS: Record<string, Spec> = {
  serve: {
    ...COMMON,
    json: "boolean",
    "max-connections": "string",
    "idle-timeout": "string",
    "drain-timeout": "string",
    stats: "string",
  },
  send: { ...COMMON, timeout: "string" },
  ping: { ...COMMON, count: "string", size: "string", interval: "string", timeout: "string" },
};

interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** `--name value`, `--name=value`, `--flag`, and `--` to end options. A lone `-` is a positional. */
export function parseArguments(args: readonly string[], spec: Spec): Parsed {
  const values: Parsed["values"] = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      values.help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option ${arg}`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown option --${name}`);
    if (kind === "boolean") {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      values[name] = true;
    } else {
      const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      values[name] = value;
    }
  }
  return { values, positionals };
}

function count(values: Parsed["values"], name: string, fallback: number, min = 0): number {
  const text = values[name];
  if (text === undefined) return fallback;
  if (typeof text !== "string" || !/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function address(values: Parsed["values"], minPort: number): { hostname: string; port: number } {
  try {
    return {
      hostname: normalizeHostname(values.host, "--host"),
      port: values.port === undefined ? DEFAULTS.port : parsePort(values.port as string, "--port", minPort),
    };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Runs one command; returns the exit code. Never throws. */
export async function runCli(host: CliHost): Promise<number> {
  const [command, ...rest] = host.args;
  const usage = USAGE.replace("PROGRAM", host.program);
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    (command === undefined ? host.stderr : host.stdout)(`${usage}\n`);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  const spec = SPECS[command];
  try {
    if (!spec) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    const parsed = parseArguments(rest, spec);
    if (parsed.values.help) {
      await host.stdout(`${usage}\n`);
      return EXIT.ok;
    }
    if (command === "serve") return await serve(host, parsed);
    if (command === "send") return await send(host, parsed);
    return await ping(host, parsed);
  } catch (error) {
    if (error instanceof UsageError) {
      host.stderr(`${host.program}: ${error.message} (try: ${host.program} --help)\n`);
      return EXIT.usage;
    }
    if (isEchoError(error, "EINVAL")) {
      host.stderr(`${host.program}: ${error.message}\n`);
      return EXIT.usage;
    }
    host.stderr(`${host.program}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failure;
  }
}

// --- serve ---

async function serve(host: CliHost, { values, positionals }: Parsed): Promise<number> {
  if (positionals.length) throw new UsageError(`serve takes no arguments, got ${JSON.stringify(positionals[0])}`);
  const { hostname, port } = address(values, 0);
  const json = values.json === true;
  const log = (event: Record<string, unknown>, text?: string) => {
    if (json) host.stdout(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
    else if (text) host.stdout(`${text}\n`);
  };
  const server: EchoServer = await host.listen({
    hostname,
    port,
    ...(values["max-connections"] !== undefined ? { maxConnections: count(values, "max-connections", 0) } : {}),
    ...(values["idle-timeout"] !== undefined ? { idleTimeout: count(values, "idle-timeout", 0) } : {}),
    ...(values["drain-timeout"] !== undefined ? { drainTimeout: count(values, "drain-timeout", 0) } : {}),
    onConnection: ({ id, remoteAddress: r }) =>
      log(
        { event: "connection", id, remote: formatAddress(r.hostname, r.port) },
        `New connection from ${formatAddress(r.hostname, r.port)}`,
      ),
    onClose: (summary: ConnectionSummary) =>
      log({
        event: "close",
        id: summary.id,
        remote: formatAddress(summary.remoteAddress.hostname, summary.remoteAddress.port),
        reason: summary.reason,
        bytesIn: summary.bytesIn,
        bytesOut: summary.bytesOut,
        durationMs: summary.durationMs,
        ...(summary.error ? { code: summary.error.code } : {}),
      }),
    onError: (error, connection) => {
      const remote = connection
        ? formatAddress(connection.remoteAddress.hostname, connection.remoteAddress.port)
        : undefined;
      if (json) log({ event: "error", code: error.code, message: error.message, ...(remote ? { remote } : {}) });
      // A peer resetting is routine for a server; only say so in the JSON log.
      else if (error.code !== "ECONNRESET" && error.code !== "EPIPE")
        host.stderr(`${remote ? `connection from ${remote}: ` : ""}${error.message}\n`);
    },
  });
  // Before the "listening" line: a supervisor may signal as soon as it reads it.
  let signals = 0;
  const stop = host.onSignal((signal) => {
    signals++;
    if (signals === 1) {
      if (!json)
        host.stderr(`${signal}: closing; waiting for ${server.connections} connection(s) to finish (again to force)\n`);
      void server.close();
    } else {
      void server.close({ force: true });
    }
  });
  const bound = server.address;
  log(
    { event: "listening", runtime: host.runtime, hostname: bound.hostname, port: bound.port },
    `Server listening on ${formatAddress(bound.hostname, bound.port)}`,
  );
  if (!isLoopback(bound.hostname)) {
    host.stderr(
      `warning: listening on ${bound.hostname}, reachable from other machines; limits: ${values["max-connections"] ?? DEFAULTS.maxConnections} connections, idle timeout ${values["idle-timeout"] ?? DEFAULTS.idleTimeout} ms\n`,
    );
  }
  const statsEvery = count(values, "stats", 0);
  const statsTimer =
    statsEvery > 0
      ? setInterval(() => {
          const stats = server.stats;
          log(
            { event: "stats", ...stats },
            `stats: active ${stats.active}, accepted ${stats.accepted}, rejected ${stats.rejected}, idle-closed ${stats.idleClosed}, bytes in ${stats.bytesIn}, out ${stats.bytesOut}, errors ${JSON.stringify(stats.errors)}`,
          );
        }, statsEvery * 1000)
      : undefined;
  await server.closed;
  stop();
  clearInterval(statsTimer);
  log({ event: "closed", ...server.stats });
  return EXIT.ok;
}

function isLoopback(hostname: string): boolean {
  return hostname === "::1" || hostname.startsWith("127.") || hostname === "localhost";
}

// --- send ---

async function send(host: CliHost, { values, positionals }: Parsed): Promise<number> {
  const target = address(values, 1);
  const timeout = count(values, "timeout", 10_000);
  const connection = await host.connect({ ...target, timeout });
  try {
    if (positionals.length === 1 && positionals[0] === "-") return await sendStream(host, connection);
    const message = positionals.length ? positionals.join(" ") : "Hello, server!";
    const reply = connection.echo(message, { timeout });
    await connection.closeWrite();
    const echoed = await reply;
    await connection.closed;
    await host.stdout(`Received response from server: ${new TextDecoder().decode(echoed)}\n`);
    return EXIT.ok;
  } finally {
    await connection.close();
  }
}

/** `send -`: stdin to the server, its echo to stdout, byte-exact; the connection checks every byte. */
async function sendStream(host: CliHost, connection: EchoConnection): Promise<number> {
  const copyOut = (async () => {
    for (let chunk = await connection.read(); chunk; chunk = await connection.read()) await host.stdout(chunk);
  })();
  // If the server fails mid-stream, stop reading stdin at once.
  copyOut.catch(() => {});
  for await (const chunk of host.stdin()) {
    await Promise.race([connection.write(chunk), copyOut]);
  }
  await connection.closeWrite();
  await copyOut;
  await connection.closed;
  return EXIT.ok;
}

// --- ping ---

async function ping(host: CliHost, { values, positionals }: Parsed): Promise<number> {
  if (positionals.length) throw new UsageError(`ping takes no arguments, got ${JSON.stringify(positionals[0])}`);
  const target = address(values, 1);
  const total = count(values, "count", 4, 1);
  const size = count(values, "size", 56, 1);
  const interval = count(values, "interval", 1000);
  const timeout = count(values, "timeout", 2000, 1);
  const where = formatAddress(target.hostname, target.port);
  let connection: EchoConnection = await host.connect({ ...target, timeout });
  await host.stdout(`PING ${where} (${host.runtime} client): ${size} bytes\n`);
  const times: number[] = [];
  let interrupted = false;
  const stop = host.onSignal(() => {
    interrupted = true;
  });
  const started = performance.now();
  let sent = 0;
  const payload = new Uint8Array(size);
  try {
    for (let seq = 1; seq <= total && !interrupted; seq++) {
      for (let i = 0; i < size; i++) payload[i] = (seq + i) & 0xff;
      sent++;
      const begin = performance.now();
      try {
        await connection.echo(payload, { timeout });
        const rtt = performance.now() - begin;
        times.push(rtt);
        await host.stdout(`${size} bytes from ${where}: seq=${seq} time=${rtt.toFixed(3)} ms\n`);
      } catch (error) {
        const code = error instanceof EchoError ? error.code : "EUNKNOWN";
        await host.stdout(
          code === "ETIMEDOUT" ? `Request timeout for seq=${seq}\n` : `seq=${seq}: ${(error as Error).message}\n`,
        );
        // A failed echo fails its connection: the next probe needs a new one.
        await connection.close();
        connection = await host.connect({ ...target, timeout });
      }
      if (seq < total && interval > 0 && !interrupted) await new Promise((resolve) => setTimeout(resolve, interval));
    }
  } finally {
    stop();
    await connection.close();
  }
  const elapsed = performance.now() - started;
  const received = times.length;
  const loss = sent === 0 ? 0 : Math.round(((sent - received) / sent) * 100);
  let report = `\n--- ${where} echo ping statistics ---\n${sent} sent, ${received} received, ${loss}% loss, time ${Math.round(elapsed)} ms\n`;
  if (received > 0) {
    const s = summarize(times);
    report += `rtt min/avg/max/mdev = ${[s.min, s.mean, s.max, s.mdev].map((v) => v.toFixed(3)).join("/")} ms\n`;
  }
  await host.stdout(report);
  return received === sent ? EXIT.ok : EXIT.failure;
}
