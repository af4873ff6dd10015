/**
 * The command line, shared by every runtime: `serve`, `send`, `ping` and `load`. Each
 * runtime's `cli.ts` supplies a `CliHost` (its listen/connect, stdio, signals)
 * and exits with the code `runCli` returns: 0 ok, 1 failure, 2 usage error.
 */

import { DATAGRAM_DEFAULTS } from "./_datagram.ts";
import { DATAGRAM_FLAGS, datagramOnlyFlag, runDatagram } from "./_datagram_cli.ts";
import { EchoError, formatEndpoint, isEchoError } from "./_errors.ts";
import { formatLoadReport, LOAD_MODES, type LoadMode, runLoad } from "./_load.ts";
import { DEFAULTS, normalizeHostname, parsePort } from "./_options.ts";
import { concat } from "./_protocol.ts";
import { parseTrustList } from "./_proxy.ts";
import { summarize } from "./_stats.ts";
import { type CliWorker, superviseWorkers } from "./_workers.ts";
import type {
  Address,
  ConnectionInfo,
  ConnectionSummary,
  ConnectOptions,
  EchoConnection,
  EchoRuntime,
  EchoServer,
  ServerOptions,
  TlsClientOptions,
  TlsServerOptions,
  UnixConnectOptions,
} from "./types.ts";

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
  /** Reads a whole file, for `--tls-cert FILE` and the like (core has no file APIs). */
  readFile?(path: string): Promise<Uint8Array>;
  /** `serve --workers`: runs this CLI again with `args` as a supervised worker (see _workers.ts). */
  startWorker?(args: readonly string[]): CliWorker;
  /** Whether standard error is a terminal: `load` then rewrites its progress line in place. */
  readonly stderrIsTerminal?: boolean;
}

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Signals through Node's `process.on`/`process.off` (which Bun has too): a `CliHost.onSignal`. */
export function processSignals(target: {
  on(signal: "SIGINT" | "SIGTERM", handler: (signal: string) => void): unknown;
  off(signal: "SIGINT" | "SIGTERM", handler: (signal: string) => void): unknown;
}): CliHost["onSignal"] {
  return (handler) => {
    target.on("SIGINT", handler);
    target.on("SIGTERM", handler);
    return () => {
      target.off("SIGINT", handler);
      target.off("SIGTERM", handler);
    };
  };
}

class UsageError extends Error {}

/** The longest delay a timer takes: JavaScript timers hold a signed 32-bit ms count, and Node fires a longer one after 1 ms. */
const MAX_MS = 2 ** 31 - 1;

/** Flag bounds, shown in the error and in `--help`. */
const LIMITS = {
  /** `ping --size`: one probe is held twice in memory (sent, and its echo). */
  size: 64 * 1024 * 1024,
  count: 1_000_000,
  ms: MAX_MS,
  /** `serve --stats` is in seconds. */
  statsSeconds: Math.floor(MAX_MS / 1000),
  /** `load --connections`: each is a socket and a descriptor. */
  connections: 100_000,
  /** `load --in-flight`: each echo in flight holds a promise and a ledger entry. */
  inFlight: 10_000,
} as const;

const USAGE = `usage: PROGRAM <command> [options]

commands:
  serve [ADDRESS] [--json] [--max-connections N] [--max-connections-per-address N] [--idle-timeout MS] [--drain-timeout MS] [--stats SECONDS]
        run an echo server (port 0 picks a free one); Ctrl-C drains, a second Ctrl-C forces
        --stats: 0 (off, the default) to ${LIMITS.statsSeconds} s
        [--proxy-protocol [--proxy-from CIDR,...] [--proxy-header-timeout MS]]: behind a balancer, every
        connection starts with a PROXY protocol v1/v2 header, believed only from --proxy-from (default
        127.0.0.0/8,::1/128); others, and a connection without a header in 3000 ms, are closed (EPROTO)
        [--workers N|auto]: N processes (Deno: threads) share the port (SO_REUSEPORT); auto = one per core
        [--reuse-port]: let other servers bind the same port (SO_REUSEPORT; Deno needs --unstable-net)
  send  [ADDRESS] [--timeout MS] [MESSAGE... | -]
        send MESSAGE (default "Hello, server!"), half-close, check the echo; "-" streams stdin to stdout
        --timeout (default 10000, 0 for no limit): for the connect, then for each wait on the server
        with nothing arriving (an echo, or its close after ours), not for the whole exchange; on
        timeout it prints what came back and exits 1
  ping  [ADDRESS] [--count N] [--size B] [--interval MS] [--timeout MS]
        measure round-trip time with echoes, like ping; --count 1 to ${LIMITS.count} (default 4),
        --size 1 to ${LIMITS.size} bytes (64 MiB, default 56), --timeout 1 ms up (default 2000) per echo
  load  [ADDRESS] [--connections N] [--in-flight D] [--size B] [--duration S] [--warmup S] [--rate R] [--mode M] [--json] [--timeout MS]
        load-test an echo server, checking every echoed byte (exit 1 on a wrong, missing or extra byte, or any error);
        progress on stderr each second, then messages/s, MB/s, latency p50/p90/p99/p99.9/max, errors by code
        --mode pingpong (1 echo at a time per connection), pipeline (D echoes in flight, the default),
               stream (write/read, D chunks of B bytes ahead of their echo), churn (N at a time: connect,
               echo B bytes, half-close, EOF, close)
        --connections 1 to ${LIMITS.connections} (default 10), --in-flight 1 to ${LIMITS.inFlight} (default 16; pipeline and
        stream only), --size 1 to ${LIMITS.size} (default 64, stream 65536), --duration seconds (default 10),
        --warmup unmeasured seconds first (default 0), --rate messages (churn: connections) per second over
        all connections (default 0, no limit), --timeout (default 2000, 1 ms up) for each connect and each
        wait on the server; --json prints the summary as one JSON line
every MS value is at most ${LIMITS.ms} (2^31-1, the longest timer); a value out of range exits 2

UDP (RFC 862's datagram echo), with --udp:
  serve --udp [--host H] [--port P] [--allow-privileged-source-ports] [--source-rate N] [--source-byte-rate B]
              [--rate N] [--byte-rate B] [--json] [--stats SECONDS]
        each datagram echoed whole; source ports below 1024 dropped; per source address at most
        --source-rate ${DATAGRAM_DEFAULTS.sourceRateLimit.datagramsPerSecond} datagrams and --source-byte-rate ${DATAGRAM_DEFAULTS.sourceRateLimit.bytesPerSecond} bytes a second, in all --rate ${DATAGRAM_DEFAULTS.rateLimit.datagramsPerSecond}
        and --byte-rate ${DATAGRAM_DEFAULTS.rateLimit.bytesPerSecond} (0: no limit); what is over is dropped and counted
  send --udp [--host H] [--port P] [--timeout MS] [--retries N] [--size B] [MESSAGE... | -]
        the message as one datagram, retried --retries times (default 2) after --timeout ms (default 1000)
        without an answer; "-" sends stdin in datagrams of at most --size bytes (default 1472)
  ping --udp [--host H] [--port P] [--count N] [--size B] [--interval MS] [--timeout MS]
        sequence-numbered probes (--size 4 to 65527), loss, RTT and out-of-order replies

ADDRESS, one of:
  [--host H] [--port P]          TCP (IPv4 or IPv6: --host ::1)
  [--host H] [--port P] TLS...   TLS over TCP
  --unix PATH                    a Unix domain socket (at most 107 bytes)
TLS options (PEM files):
  serve:      --tls-cert FILE --tls-key FILE [--tls-ca FILE: require client certificates signed by it]
  send, ping, load: [--tls-ca FILE] [--tls-servername NAME] [--tls-cert FILE --tls-key FILE: a client certificate]

defaults: --host ${DEFAULTS.hostname} --port ${DEFAULTS.port}`;

type Spec = Record<string, "string" | "boolean">;

const COMMON: Spec = {
  host: "string",
  port: "string",
  unix: "string",
  "tls-cert": "string",
  "tls-key": "string",
  "tls-ca": "string",
  help: "boolean",
};
const CLIENT: Spec = { ...COMMON, "tls-servername": "string", timeout: "string" };
const SPECS: Record<string, Spec> = {
  serve: {
    ...COMMON,
    json: "boolean",
    "max-connections": "string",
    "max-connections-per-address": "string",
    "idle-timeout": "string",
    "drain-timeout": "string",
    stats: "string",
    "proxy-protocol": "boolean",
    "proxy-from": "string",
    "proxy-header-timeout": "string",
    "reuse-port": "boolean",
    workers: "string",
    ...DATAGRAM_FLAGS.serve,
  },
  send: { ...CLIENT, ...DATAGRAM_FLAGS.send },
  ping: { ...CLIENT, count: "string", size: "string", interval: "string", ...DATAGRAM_FLAGS.ping },
  load: {
    ...CLIENT,
    connections: "string",
    "in-flight": "string",
    size: "string",
    duration: "string",
    warmup: "string",
    rate: "string",
    mode: "string",
    json: "boolean",
  },
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

function count(
  values: Parsed["values"],
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const text = values[name];
  if (text === undefined) return fallback;
  const value = typeof text === "string" && /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`--${name} must be ${range}, got ${JSON.stringify(text)}`);
  }
  return value;
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

const TLS_FLAGS = ["tls-cert", "tls-key", "tls-ca", "tls-servername"] as const;

/** `--unix PATH`, or undefined for TCP; the TCP-only flags cannot go with it. */
function unixPath(values: Parsed["values"]): string | undefined {
  const path = values.unix as string | undefined;
  if (path === undefined) return undefined;
  const clash = ["host", "port", ...TLS_FLAGS].find((name) => values[name] !== undefined);
  if (clash)
    throw new UsageError(`--unix cannot go with --${clash}: a Unix socket has no host or port, and TLS runs over TCP`);
  return path;
}

/** Reads a `--tls-*` file through the runtime; a file that cannot be read is a usage error naming the flag. */
async function pemFile(host: CliHost, values: Parsed["values"], name: string): Promise<Uint8Array | undefined> {
  const path = values[name] as string | undefined;
  if (path === undefined) return undefined;
  if (!host.readFile) throw new UsageError(`--${name} needs a runtime that can read files`);
  try {
    return await host.readFile(path);
  } catch (error) {
    throw new UsageError(`cannot read --${name} ${path}: ${(error as Error).message}`);
  }
}

function both(values: Parsed["values"], what: string): void {
  if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined))
    throw new UsageError(`--tls-cert and --tls-key go together: ${what}`);
}

type Target = (ConnectOptions & { transport: "tcp"; hostname: string; port: number }) | UnixConnectOptions;

/** `--tls-cert` and `--tls-key`, and `--tls-ca` for mutual TLS: the CA that signs the client certificates required. */
async function serverTls(host: CliHost, values: Parsed["values"]): Promise<TlsServerOptions> {
  const [cert, key, ca] = await Promise.all(["tls-cert", "tls-key", "tls-ca"].map((n) => pemFile(host, values, n)));
  return { cert: cert as Uint8Array, key: key as Uint8Array, ...(ca ? { ca, requestCert: true } : {}) };
}

/** Where `send` and `ping` connect: a Unix socket, or TCP with TLS if any `--tls-*` flag is given. */
async function target(host: CliHost, values: Parsed["values"]): Promise<Target> {
  const path = unixPath(values);
  if (path !== undefined) return { transport: "unix", path };
  const tcp: Target = { transport: "tcp", ...address(values, 1) };
  if (TLS_FLAGS.some((name) => values[name] !== undefined)) {
    both(values, "the client certificate and its key");
    const tls: TlsClientOptions = {};
    const [ca, cert, key] = await Promise.all(["tls-ca", "tls-cert", "tls-key"].map((n) => pemFile(host, values, n)));
    if (ca) tls.ca = ca;
    if (cert) tls.cert = cert;
    if (key) tls.key = key;
    if (values["tls-servername"] !== undefined) tls.serverName = values["tls-servername"] as string;
    tcp.tls = tls;
  }
  return tcp;
}

/** Connects over either transport; the CLI only needs what every connection has. */
function dial(host: CliHost, options: ConnectOptions | UnixConnectOptions): Promise<EchoConnection<Address>> {
  return options.transport === "unix" ? host.connect(options) : host.connect(options);
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
    if (parsed.values.udp === true)
      return await runDatagram(
        { host, usage: (message) => new UsageError(message), count, address },
        command,
        parsed.values,
        parsed.positionals,
      );
    const udpOnly = datagramOnlyFlag(command, parsed.values);
    if (udpOnly) throw new UsageError(`--${udpOnly} applies to UDP only: add --udp`);
    if (command === "serve") return await serve(host, parsed);
    if (command === "send") return await send(host, parsed);
    if (command === "load") return await load(host, parsed);
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
  const path = unixPath(values);
  if (values.workers !== undefined) return await workers(host, values, path);
  if (values["reuse-port"] === true && path !== undefined)
    throw new UsageError("--reuse-port cannot go with --unix: SO_REUSEPORT shares a TCP port");
  const json = values.json === true;
  const log = (event: Record<string, unknown>, text?: string) => {
    if (json) host.stdout(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
    else if (text) host.stdout(`${text}\n`);
  };
  // Every flag is checked here, before any socket opens: a typo must not cost a bind.
  const statsEvery = count(values, "stats", 0, 0, LIMITS.statsSeconds);
  const options: ServerOptions<Address> = {
    ...(values["max-connections"] !== undefined ? { maxConnections: count(values, "max-connections", 0) } : {}),
    ...(values["max-connections-per-address"] !== undefined
      ? { maxConnectionsPerAddress: count(values, "max-connections-per-address", 0) }
      : {}),
    ...(values["idle-timeout"] !== undefined ? { idleTimeout: count(values, "idle-timeout", 0, 0, MAX_MS) } : {}),
    ...(values["drain-timeout"] !== undefined ? { drainTimeout: count(values, "drain-timeout", 0, 0, MAX_MS) } : {}),
    ...proxyOptions(values, path),
    ...(values["reuse-port"] === true ? ({ reusePort: true } as ServerOptions<Address>) : {}),
    onConnection: ({ id, remoteAddress, via }: ConnectionInfo<Address>) =>
      log(
        {
          event: "connection",
          id,
          remote: formatEndpoint(remoteAddress),
          ...(via ? { via: formatEndpoint(via.remoteAddress) } : {}),
        },
        `New connection from ${formatEndpoint(remoteAddress)}${via ? ` via ${formatEndpoint(via.remoteAddress)}` : ""}`,
      ),
    onClose: (summary: ConnectionSummary<Address>) =>
      log({
        event: "close",
        id: summary.id,
        remote: formatEndpoint(summary.remoteAddress),
        ...(summary.via ? { via: formatEndpoint(summary.via.remoteAddress) } : {}),
        reason: summary.reason,
        bytesIn: summary.bytesIn,
        bytesOut: summary.bytesOut,
        durationMs: summary.durationMs,
        ...(summary.error ? { code: summary.error.code } : {}),
      }),
    onError: (error, connection) => {
      const remote = connection ? formatEndpoint(connection.remoteAddress) : undefined;
      if (json) log({ event: "error", code: error.code, message: error.message, ...(remote ? { remote } : {}) });
      // A peer resetting is routine for a server; only say so in the JSON log.
      else if (error.code !== "ECONNRESET" && error.code !== "EPIPE")
        host.stderr(`${remote ? `connection from ${remote}: ` : ""}${error.message}\n`);
    },
  };
  let server: EchoServer<Address>;
  let tls = false;
  if (path !== undefined) server = await host.listen({ transport: "unix", path, ...options });
  else {
    const { hostname, port } = address(values, 0);
    both(values, "the server's certificate and its key");
    if (values["tls-ca"] !== undefined && values["tls-cert"] === undefined)
      throw new UsageError("--tls-ca on serve requires client certificates, which needs --tls-cert and --tls-key");
    tls = values["tls-cert"] !== undefined;
    server = await host.listen({ hostname, port, ...(tls ? { tls: await serverTls(host, values) } : {}), ...options });
  }
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
  // The text line is the same with or without TLS, so scripts parse the port one way.
  log(
    bound.transport === "unix"
      ? { event: "listening", runtime: host.runtime, transport: "unix", path: bound.path }
      : {
          event: "listening",
          runtime: host.runtime,
          transport: "tcp",
          tls,
          hostname: bound.hostname,
          port: bound.port,
        },
    `Server listening on ${formatEndpoint(bound)}`,
  );
  if (bound.transport === "tcp" && !isLoopback(bound.hostname)) {
    host.stderr(
      `warning: listening on ${bound.hostname}, reachable from other machines; limits: ${values["max-connections"] ?? DEFAULTS.maxConnections} connections, idle timeout ${values["idle-timeout"] ?? DEFAULTS.idleTimeout} ms\n`,
    );
  }
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

/** The most `--workers` takes: each is a whole runtime. */
const MAX_WORKERS = 256;

/**
 * `serve --workers N|auto`: checks what it can before any worker starts (each
 * worker checks the rest before its socket opens: a usage error there is the
 * exit code here), then supervises them.
 */
async function workers(host: CliHost, values: Parsed["values"], path: string | undefined): Promise<number> {
  const text = values.workers as string;
  const cores = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 1;
  const total = text === "auto" ? cores : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(total >= 1 && total <= MAX_WORKERS))
    throw new UsageError(`--workers must be auto or an integer from 1 to ${MAX_WORKERS}, got ${JSON.stringify(text)}`);
  if (path !== undefined)
    throw new UsageError(
      "--workers cannot go with --unix: SO_REUSEPORT shares a TCP port; run one server per socket path",
    );
  if (!host.startWorker) throw new UsageError(`--workers is not available on ${host.runtime}`);
  address(values, 0);
  proxyOptions(values, path);
  const statsSeconds = count(values, "stats", 0, 0, LIMITS.statsSeconds);
  const args: string[] = ["serve"];
  const original = host.args.slice(1);
  for (let i = 0; i < original.length; i++) {
    const arg = original[i] as string;
    if (arg === "--workers") i++;
    else if (!arg.startsWith("--workers=") && arg !== "--json") args.push(arg);
  }
  return superviseWorkers(host as CliHost & { startWorker: NonNullable<CliHost["startWorker"]> }, {
    count: total,
    args,
    json: values.json === true,
    statsSeconds,
  });
}

/**
 * `--proxy-protocol`, `--proxy-from` and `--proxy-header-timeout`, checked here so a bad
 * block is a usage error naming the flag, before any socket opens.
 */
function proxyOptions(values: Parsed["values"], path: string | undefined): ServerOptions<Address> {
  if (values["proxy-protocol"] !== true) {
    const stray = ["proxy-from", "proxy-header-timeout"].find((name) => values[name] !== undefined);
    if (stray) throw new UsageError(`--${stray} needs --proxy-protocol`);
    return {};
  }
  if (path !== undefined) throw new UsageError("--proxy-protocol cannot go with --unix: it applies to TCP only");
  if (values["tls-cert"] !== undefined)
    throw new UsageError(
      "--proxy-protocol cannot go with --tls-cert: the PROXY header comes before the TLS handshake; terminate TLS at the balancer",
    );
  const from = values["proxy-from"] as string | undefined;
  const proxyFrom = from === undefined ? undefined : from.split(",").map((entry) => entry.trim());
  try {
    if (proxyFrom) parseTrustList(proxyFrom, "--proxy-from");
  } catch (error) {
    throw new UsageError((error as Error).message.replace("invalid option --proxy-from: ", "--proxy-from: "));
  }
  return {
    proxyProtocol: true,
    ...(proxyFrom ? { proxyFrom } : {}),
    ...(values["proxy-header-timeout"] !== undefined
      ? { proxyHeaderTimeout: count(values, "proxy-header-timeout", 0, 1, MAX_MS) }
      : {}),
  } as ServerOptions<Address>;
}

function isLoopback(hostname: string): boolean {
  return hostname === "::1" || hostname.startsWith("127.") || hostname === "localhost";
}

// --- send ---

/**
 * `--timeout MS` bounds each wait, not the whole exchange (so `send -` can
 * stream any amount): the connect, then every stretch in which the client waits
 * on the server (an echo, or its close after our half-close) and no byte comes,
 * and the final close.
 */
async function send(host: CliHost, { values, positionals }: Parsed): Promise<number> {
  const to = await target(host, values);
  const timeout = count(values, "timeout", 10_000, 0, MAX_MS);
  try {
    // The final close() is one more wait on the server, bounded the same way (0 keeps the default: it would abort).
    const drain = timeout > 0 ? { drainTimeout: timeout } : {};
    const connection = await dial(host, { ...to, timeout, replyTimeout: timeout, ...drain });
    try {
      if (positionals.length === 1 && positionals[0] === "-") return await sendStream(host, connection);
      return await sendMessage(host, connection, positionals.length ? positionals.join(" ") : "Hello, server!");
    } finally {
      await connection.close();
    }
  } catch (error) {
    if (isEchoError(error, "ETIMEDOUT")) error.message += `; to wait longer, raise --timeout (now ${timeout} ms)`;
    throw error;
  }
}

/** Sends `message`, half-closes, and prints the echo; on a failure, what did come back is printed first. */
async function sendMessage(host: CliHost, connection: EchoConnection<Address>, message: string): Promise<number> {
  const received: Uint8Array[] = [];
  const print = () => host.stdout(`Received response from server: ${new TextDecoder().decode(concat(received))}\n`);
  try {
    await connection.write(message);
    await connection.closeWrite();
    for (let chunk = await connection.read(); chunk; chunk = await connection.read()) received.push(chunk);
    await connection.closed;
  } catch (error) {
    if (received.length > 0) await print();
    throw error;
  }
  await print();
  return EXIT.ok;
}

/** `send -`: stdin to the server, its echo to stdout, byte-exact; the connection checks every byte. */
async function sendStream(host: CliHost, connection: EchoConnection<Address>): Promise<number> {
  const copyOut = (async () => {
    for (let chunk = await connection.read(); chunk; chunk = await connection.read()) await host.stdout(chunk);
  })();
  copyOut.catch(() => {});
  // If the connection fails, stop at once, even while stdin has nothing to give.
  const failed = copyOut.then(() => new Promise<never>(() => {}));
  const input = host.stdin()[Symbol.asyncIterator]();
  try {
    for (let next = await Promise.race([input.next(), failed]); !next.done; ) {
      await Promise.race([connection.write(next.value), failed]);
      next = await Promise.race([input.next(), failed]);
    }
  } catch (error) {
    void input.return?.()?.catch(() => {});
    throw error;
  }
  await connection.closeWrite();
  await copyOut;
  await connection.closed;
  return EXIT.ok;
}

// --- ping ---

async function ping(host: CliHost, { values, positionals }: Parsed): Promise<number> {
  if (positionals.length) throw new UsageError(`ping takes no arguments, got ${JSON.stringify(positionals[0])}`);
  const to = await target(host, values);
  const total = count(values, "count", 4, 1, LIMITS.count);
  const size = count(values, "size", 56, 1, LIMITS.size);
  const interval = count(values, "interval", 1000, 0, MAX_MS);
  const timeout = count(values, "timeout", 2000, 1, MAX_MS);
  const where = formatEndpoint(to);
  let connection = await dial(host, { ...to, timeout });
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
        connection = await dial(host, { ...to, timeout });
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

// --- load ---

/** A decimal flag (`--duration 0.5`), from `min` (exclusive when `open`) to `max`. */
function decimal(values: Parsed["values"], name: string, fallback: number, min: number, max: number, open = false) {
  const text = values[name];
  if (text === undefined) return fallback;
  const value = typeof text === "string" && /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(open ? value > min : value >= min) || !(value <= max))
    throw new UsageError(
      `--${name} must be a number ${open ? "above" : "from"} ${min}${open ? " and at most" : " to"} ${max}, got ${JSON.stringify(text)}`,
    );
  return value;
}

/** Every flag is checked before the first connection. */
async function load(host: CliHost, { values, positionals }: Parsed): Promise<number> {
  if (positionals.length) throw new UsageError(`load takes no arguments, got ${JSON.stringify(positionals[0])}`);
  const mode = (values.mode ?? "pipeline") as LoadMode;
  if (!LOAD_MODES.includes(mode))
    throw new UsageError(`--mode must be one of ${LOAD_MODES.join(", ")}, got ${JSON.stringify(values.mode)}`);
  if (values["in-flight"] !== undefined && (mode === "pingpong" || mode === "churn"))
    throw new UsageError(
      `--in-flight goes with --mode pipeline or stream; ${mode} has one echo at a time on each connection`,
    );
  const plan = {
    mode,
    connections: count(values, "connections", 10, 1, LIMITS.connections),
    inFlight: mode === "pingpong" || mode === "churn" ? 1 : count(values, "in-flight", 16, 1, LIMITS.inFlight),
    size: count(values, "size", mode === "stream" ? 65_536 : 64, 1, LIMITS.size),
    duration: decimal(values, "duration", 10, 0, LIMITS.statsSeconds, true),
    warmup: decimal(values, "warmup", 0, 0, LIMITS.statsSeconds),
    rate: decimal(values, "rate", 0, 0, 1e9),
  };
  const timeout = count(values, "timeout", 2000, 1, MAX_MS);
  const to = await target(host, values);
  const json = values.json === true;
  const terminal = host.stderrIsTerminal === true;
  let line = false;
  // One options object for every connect: resolveConnectOptions only reads it.
  const options = { ...to, timeout, replyTimeout: timeout, drainTimeout: timeout };
  const report = await runLoad(
    {
      runtime: host.runtime,
      connect: () => dial(host, options),
      progress: (text) => {
        line = terminal;
        host.stderr(terminal ? `\r\x1b[K${text}` : `${text}\n`);
      },
      onSignal: host.onSignal,
    },
    { ...plan, where: formatEndpoint(to) },
  );
  if (line) host.stderr("\n");
  await host.stdout(json ? `${JSON.stringify(report)}\n` : formatLoadReport(report));
  return report.connectionsFailed > 0 || report.connectionsOpened === 0 ? EXIT.failure : EXIT.ok;
}
