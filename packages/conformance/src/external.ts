/**
 * Participants from outside: any echo server or byte-pipe client, in any
 * language, here or on another host.
 *
 * - `--server-at NAME=URL`: a server already running (`tcp://HOST:PORT`,
 *   `tcp://[::1]:PORT`, `tls://HOST:PORT` with `--tls-ca FILE`, `unix:/path`);
 * - `--server-cmd NAME=COMMAND`: a server the matrix starts (`sh -c`) and stops,
 *   with `{port}`, `{host}` and `{path}` filled in;
 * - `--client-cmd NAME=COMMAND`: a byte pipe (stdin to the server, the server's
 *   bytes to stdout, exit at the server's EOF), like `nc -N {host} {port}`;
 * - `--config FILE`: the same in JSON.
 *
 * Everything is checked here, before any socket opens: a bad value is a
 * `UsageError` naming it (exit 2).
 */

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { endpointFor, type RunningServer, reachServer, startCommandServer } from "./launchers.ts";
import type { ClientSpec, ServerSpec } from "./participants.ts";
import type { Endpoint, Transport } from "./transports.ts";

/** Bad input from the command line or the config file: the run does not start. */
export class UsageError extends Error {}

export interface ServerAt {
  readonly name: string;
  readonly url: string;
  /** `tls://`: the CA that signed the server's certificate (PEM). */
  readonly tlsCa?: string;
  /** `tls://`: the name its certificate is checked against; the URL's host by default. */
  readonly tlsServername?: string;
}

export interface ServerCommand {
  readonly name: string;
  readonly command: string;
  /** A line of its output that says it is ready; without it, ready is its port accepting. */
  readonly readyLine?: string;
  /** How long it may take to be ready. @default 30000 */
  readonly startTimeoutMs?: number;
}

export interface ClientCommand {
  readonly name: string;
  readonly command: string;
}

export interface Outside {
  readonly serversAt: readonly ServerAt[];
  readonly serverCommands: readonly ServerCommand[];
  readonly clientCommands: readonly ClientCommand[];
}

const START_TIMEOUT_MS = 30_000;

/** `NAME=VALUE` of `--server-at`, `--server-cmd` and `--client-cmd`. */
export function parseNamed(flag: string, value: string): { name: string; value: string } {
  const at = value.indexOf("=");
  if (at <= 0 || at === value.length - 1)
    throw new UsageError(`${flag} takes NAME=VALUE, got ${JSON.stringify(value)}`);
  return { name: value.slice(0, at), value: value.slice(at + 1) };
}

/** Where a `--server-at` URL points. */
export function endpointOf(url: string, what: string): Endpoint {
  if (url.startsWith("unix:")) {
    const path = url.slice("unix:".length);
    if (!path.startsWith("/"))
      throw new UsageError(`${what}: ${JSON.stringify(url)}: a Unix socket URL is unix:/absolute/path`);
    return { transport: "unix", path };
  }
  const match = /^(tcp|tls):\/\/(\[[0-9a-fA-F:.]+\]|[^\s/:[\]]+):(\d+)\/?$/.exec(url);
  if (!match) {
    throw new UsageError(
      `${what}: ${JSON.stringify(url)} is not tcp://HOST:PORT, tcp://[IPv6]:PORT, tls://HOST:PORT or unix:/path`,
    );
  }
  const [, scheme, rawHost, rawPort] = match as unknown as [string, string, string, string];
  const port = Number(rawPort);
  if (port < 1 || port > 65535) throw new UsageError(`${what}: port ${rawPort} is not between 1 and 65535`);
  const v6 = rawHost.startsWith("[");
  const host = v6 ? rawHost.slice(1, -1) : rawHost;
  if (scheme === "tls") return { transport: "tls", host, port };
  return { transport: v6 ? "tcp6" : "tcp4", host, port };
}

/** The transports a command can serve or reach: `{port}` TCP over IPv4 and IPv6 (`{host}` is 127.0.0.1 or ::1), `{path}` a Unix socket. */
function commandTransports(command: string, what: string): Transport[] {
  const transports: Transport[] = [];
  if (command.includes("{port}")) transports.push("tcp4", "tcp6");
  if (command.includes("{path}")) transports.push("unix");
  if (transports.length === 0) {
    throw new UsageError(
      `${what}: the command names neither {port} nor {path}, so it cannot be told where to listen or connect`,
    );
  }
  return transports;
}

/** The command for `endpoint`: `{host}`, `{port}` and `{path}` filled in (each quoted for `sh`). */
export function fillIn(command: string, endpoint: Endpoint): string {
  const quote = (text: string) => `'${text.replace(/'/g, "'\\''")}'`;
  return endpoint.transport === "unix"
    ? command.replaceAll("{path}", quote(endpoint.path))
    : command.replaceAll("{host}", quote(endpoint.host)).replaceAll("{port}", String(endpoint.port));
}

/** Where relative paths and commands are taken from: where `pnpm matrix` was started. */
function userDirectory(): string {
  return process.env.INIT_CWD ?? process.cwd();
}

const NO_PROCESS = "the server was reached by URL, so the matrix has no process of it to read";

function serverAt({ name, url, tlsCa, tlsServername }: ServerAt): ServerSpec {
  const what = `--server-at ${name}`;
  const endpoint = endpointOf(url, what);
  let tls: ServerSpec["tls"];
  if (endpoint.transport === "tls") {
    if (!tlsCa)
      throw new UsageError(`${what}: a tls:// server needs --tls-ca FILE (the CA that signed its certificate)`);
    const ca = resolve(userDirectory(), tlsCa);
    let caPem: string;
    try {
      caPem = readFileSync(ca, "utf8");
    } catch (error) {
      throw new UsageError(`${what}: cannot read --tls-ca ${tlsCa}: ${(error as NodeJS.ErrnoException).code}`);
    }
    tls = { ca, caPem, serverName: tlsServername ?? endpoint.host };
  } else if (tlsCa || tlsServername) {
    throw new UsageError(`${what}: --tls-ca and --tls-servername apply to a tls:// URL only`);
  }
  return {
    name,
    kind: "external",
    description: `already running at ${url} (--server-at)`,
    missing: () => undefined,
    transports: [endpoint.transport],
    noProcess: NO_PROCESS,
    ...(tls ? { tls } : {}),
    start: () => reachServer(url, endpoint),
  };
}

function serverCommand({ name, command, readyLine, startTimeoutMs }: ServerCommand): ServerSpec {
  const what = `--server-cmd ${name}`;
  let ready: RegExp | undefined;
  try {
    ready = readyLine === undefined ? undefined : new RegExp(readyLine);
  } catch (error) {
    throw new UsageError(
      `${what}: --ready-line ${JSON.stringify(readyLine)} is not a regular expression: ${(error as Error).message}`,
    );
  }
  const timeout = startTimeoutMs ?? START_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || timeout < 1)
    throw new UsageError(`${what}: the start timeout must be a positive number of ms`);
  return {
    name,
    kind: "external",
    description: `${command} (--server-cmd)`,
    missing: () => undefined,
    transports: commandTransports(command, what),
    start: async ({ transport, setup }): Promise<RunningServer> => {
      const endpoint = await endpointFor(transport, setup, name);
      return startCommandServer(name, fillIn(command, endpoint), endpoint, {
        ...(ready ? { readyLine: ready } : {}),
        startTimeoutMs: timeout,
      });
    },
  };
}

function clientCommand({ name, command }: ClientCommand): ClientSpec {
  return {
    name,
    kind: "external",
    description: `${command} (--client-cmd)`,
    missing: () => undefined,
    transports: commandTransports(command, `--client-cmd ${name}`),
    pipe: (endpoint) => ["sh", "-c", fillIn(command, endpoint)],
  };
}

/**
 * The servers and clients from outside, checked: names are unique and not
 * taken by a participant of the matrix (`taken`), URLs and commands are well-formed.
 */
export function outsideParticipants(
  outside: Outside,
  taken: readonly string[],
): { servers: ServerSpec[]; clients: ClientSpec[] } {
  const names = (list: readonly { name: string }[], flag: string) => {
    const seen = new Set<string>();
    for (const { name } of list) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
        throw new UsageError(`${flag} ${JSON.stringify(name)}: a name is letters, digits, '.', '_' and '-'`);
      }
      if (taken.includes(name)) throw new UsageError(`${flag} ${name}: the matrix already has a participant named so`);
      if (seen.has(name)) throw new UsageError(`${flag} ${name}: the name is given twice`);
      seen.add(name);
    }
  };
  names([...outside.serversAt, ...outside.serverCommands], "server");
  names(outside.clientCommands, "client");
  return {
    servers: [...outside.serversAt.map(serverAt), ...outside.serverCommands.map(serverCommand)],
    clients: outside.clientCommands.map(clientCommand),
  };
}

// --- the config file ---

const CONFIG_KEYS = ["servers", "clients"] as const;
const SERVER_AT_KEYS = ["name", "url", "tlsCa", "tlsServername"] as const;
const SERVER_COMMAND_KEYS = ["name", "command", "readyLine", "startTimeoutMs"] as const;
const CLIENT_KEYS = ["name", "command"] as const;

/**
 * Reads `--config FILE`:
 *
 *   { "servers": [{ "name": "go", "command": "./echo -port {port}", "readyLine": "listening" },
 *                 { "name": "prod", "url": "tls://echo.example:7007", "tlsCa": "ca.pem" }],
 *     "clients": [{ "name": "mine", "command": "nc -N {host} {port}" }] }
 *
 * A server has `url` or `command`, not both. Every error names the key.
 */
export function readConfig(file: string): Outside {
  const where = `--config ${file}`;
  let text: string;
  try {
    text = readFileSync(resolve(userDirectory(), file), "utf8");
  } catch (error) {
    throw new UsageError(`${where}: cannot read it: ${(error as NodeJS.ErrnoException).code}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where}: not JSON: ${(error as Error).message}`);
  }
  const config = object(parsed, where, CONFIG_KEYS);
  const serversAt: ServerAt[] = [];
  const serverCommands: ServerCommand[] = [];
  array(config.servers, `${where}: servers`).forEach((item, index) => {
    const at = `${where}: servers[${index}]`;
    const entry = item as Record<string, unknown>;
    if (typeof entry === "object" && entry !== null && "url" in entry && "command" in entry) {
      throw new UsageError(`${at}: has both "url" and "command"; a server is reached by URL or started by command`);
    }
    if (typeof entry === "object" && entry !== null && "url" in entry) {
      const server = object(item, at, SERVER_AT_KEYS);
      serversAt.push({
        name: string(server.name, `${at}.name`),
        url: string(server.url, `${at}.url`),
        ...optional(server.tlsCa, `${at}.tlsCa`, "tlsCa"),
        ...optional(server.tlsServername, `${at}.tlsServername`, "tlsServername"),
      });
      return;
    }
    const server = object(item, at, SERVER_COMMAND_KEYS);
    if (server.command === undefined) throw new UsageError(`${at}: needs "url" (a running server) or "command"`);
    if (server.startTimeoutMs !== undefined && typeof server.startTimeoutMs !== "number") {
      throw new UsageError(`${at}.startTimeoutMs: must be a number of ms`);
    }
    serverCommands.push({
      name: string(server.name, `${at}.name`),
      command: string(server.command, `${at}.command`),
      ...optional(server.readyLine, `${at}.readyLine`, "readyLine"),
      ...(server.startTimeoutMs === undefined ? {} : { startTimeoutMs: server.startTimeoutMs as number }),
    });
  });
  const clientCommands = array(config.clients, `${where}: clients`).map((item, index) => {
    const at = `${where}: clients[${index}]`;
    const client = object(item, at, CLIENT_KEYS);
    return { name: string(client.name, `${at}.name`), command: string(client.command, `${at}.command`) };
  });
  return { serversAt, serverCommands, clientCommands };
}

function object(value: unknown, where: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new UsageError(`${where}: must be an object`);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key))
      throw new UsageError(`${where}: unknown key ${JSON.stringify(key)} (known: ${keys.join(", ")})`);
  }
  return value as Record<string, unknown>;
}

function array(value: unknown, where: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new UsageError(`${where}: must be an array`);
  return value;
}

function string(value: unknown, where: string): string {
  if (typeof value !== "string" || value === "") throw new UsageError(`${where}: must be a non-empty string`);
  return value;
}

function optional<K extends string>(value: unknown, where: string, key: K): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: string(value, where) } as Partial<Record<K, string>>);
}

/** The outside participants of a command line: its flags, and the `--config` file's. */
export interface OutsideFlags {
  readonly "server-at"?: readonly string[];
  readonly "server-cmd"?: readonly string[];
  readonly "client-cmd"?: readonly string[];
  readonly "tls-ca"?: string;
  readonly "tls-servername"?: string;
  readonly "ready-line"?: string;
  readonly "start-timeout"?: string;
  readonly config?: string;
}

export function outsideOf(flags: OutsideFlags): Outside {
  const fromFile = flags.config ? readConfig(flags.config) : { serversAt: [], serverCommands: [], clientCommands: [] };
  const startTimeout = flags["start-timeout"];
  if (startTimeout !== undefined && !/^[1-9]\d*$/.test(startTimeout)) {
    throw new UsageError(`--start-timeout takes a number of ms, got ${JSON.stringify(startTimeout)}`);
  }
  const serversAt = (flags["server-at"] ?? []).map((value) => {
    const { name, value: url } = parseNamed("--server-at", value);
    return {
      name,
      url,
      ...(flags["tls-ca"] ? { tlsCa: flags["tls-ca"] } : {}),
      ...(flags["tls-servername"] ? { tlsServername: flags["tls-servername"] } : {}),
    };
  });
  if ((flags["tls-ca"] || flags["tls-servername"]) && !serversAt.some(({ url }) => url.startsWith("tls://"))) {
    throw new UsageError("--tls-ca and --tls-servername go with a --server-at tls:// URL");
  }
  const serverCommands = (flags["server-cmd"] ?? []).map((value) => {
    const { name, value: command } = parseNamed("--server-cmd", value);
    return {
      name,
      command,
      ...(flags["ready-line"] ? { readyLine: flags["ready-line"] } : {}),
      ...(startTimeout ? { startTimeoutMs: Number(startTimeout) } : {}),
    };
  });
  if ((flags["ready-line"] || startTimeout) && serverCommands.length === 0) {
    throw new UsageError("--ready-line and --start-timeout go with --server-cmd");
  }
  const clientCommands = (flags["client-cmd"] ?? []).map((value) => {
    const { name, value: command } = parseNamed("--client-cmd", value);
    return { name, command };
  });
  return {
    serversAt: [...fromFile.serversAt, ...serversAt],
    serverCommands: [...fromFile.serverCommands, ...serverCommands],
    clientCommands: [...fromFile.clientCommands, ...clientCommands],
  };
}
