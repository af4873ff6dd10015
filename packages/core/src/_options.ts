/**
 * Defaults and validation for every option, done before any syscall so each
 * runtime rejects the same bad input with the same `EINVAL`. In particular a bad
 * port is never passed on: Node would take the string `'abc'` as a Unix socket path.
 */

import { EchoError } from "./_errors.ts";
import { type Cidr, LOOPBACK, parseTrustList } from "./_proxy.ts";
import type {
  Address,
  ClientOptions,
  ConnectOptions,
  EchoOptions,
  ListenOptions,
  ServerOptions,
  TlsClientOptions,
  TlsServerOptions,
  UnixConnectOptions,
  UnixListenOptions,
} from "./types.ts";

export const DEFAULTS = {
  hostname: "127.0.0.1",
  port: 12345,
  noDelay: true,
  highWaterMark: 256 * 1024,
  maxConnections: 10_000,
  maxConnectionsPerAddress: 0,
  idleTimeout: 300_000,
  drainTimeout: 10_000,
  connectTimeout: 10_000,
} as const;

/** What every server config has, whatever its transport. */
interface ServerConfig {
  readonly highWaterMark: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly idleTimeout: number;
  readonly drainTimeout: number;
  readonly signal: AbortSignal | undefined;
  readonly onConnection: ServerOptions<Address>["onConnection"];
  readonly onClose: ServerOptions<Address>["onClose"];
  readonly onError: ServerOptions<Address>["onError"];
}

/** `ListenOptions` with every default filled in and every value checked. */
export interface TcpListenConfig extends ServerConfig {
  readonly transport: "tcp";
  readonly hostname: string;
  readonly port: number;
  readonly noDelay: boolean;
  readonly tls: TlsServerConfig | undefined;
  readonly reusePort: boolean;
  /** `proxyProtocol` on: whom to believe and how long to wait. */
  readonly proxy: ProxyConfig | undefined;
}

export interface ProxyConfig {
  readonly trusted: readonly Cidr[];
  readonly headerTimeout: number;
}

export interface UnixListenConfig extends ServerConfig {
  readonly transport: "unix";
  readonly path: string;
}

export type ListenConfig = TcpListenConfig | UnixListenConfig;

/** PEM text, checked: a file name passed by mistake is `EINVAL`, not a handshake failure. */
export interface TlsServerConfig {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
  readonly requestCert: boolean;
}

export interface TlsClientConfig {
  readonly ca: string | undefined;
  /** The name the certificate must carry: `serverName`, else the hostname connected to. */
  readonly serverName: string;
  /**
   * What to send as SNI: `serverName` when it is a host name. An IP literal is
   * only checked against the certificate, never sent (RFC 6066 allows host names
   * only; Node warns, DEP0123).
   */
  readonly sni: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

interface ClientConfig {
  readonly timeout: number;
  readonly replyTimeout: number;
  readonly highWaterMark: number;
  readonly drainTimeout: number;
  readonly signal: AbortSignal | undefined;
}

export interface TcpConnectConfig extends ClientConfig {
  readonly transport: "tcp";
  readonly hostname: string;
  readonly port: number;
  readonly noDelay: boolean;
  readonly tls: TlsClientConfig | undefined;
}

export interface UnixConnectConfig extends ClientConfig {
  readonly transport: "unix";
  readonly path: string;
}

export type ConnectConfig = TcpConnectConfig | UnixConnectConfig;

/**
 * Longest Unix socket path on Linux, in bytes: `sun_path` is 108 bytes with
 * the terminating NUL. A longer one fails in `bind` (Node: EINVAL; Deno: "path
 * must be shorter than SUN_LEN"), or is silently truncated by some runtimes.
 */
export const UNIX_PATH_MAX = 107;

export function invalid(option: string, expected: string, value: unknown): EchoError {
  return new EchoError("EINVAL", `invalid option ${option}: expected ${expected}, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined)
    return String(value);
  return typeof value;
}

export function integer(option: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw invalid(option, range, value);
  }
  return value;
}

export function boolean(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalid(option, "true or false", value);
  return value;
}

export function hook<T>(option: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== "function") throw invalid(option, "a function", value);
  return value;
}

export function signal(value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null || typeof (value as AbortSignal).aborted !== "boolean")
    throw invalid("signal", "an AbortSignal", value);
  return value as AbortSignal;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOST_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** True for a valid IPv6 literal (without brackets or zone). */
export function isIPv6(text: string): boolean {
  let head = text;
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    if (!IPV4.test(text.slice(lastColon + 1))) return false;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split("::");
  if (halves.length > 2) return false;
  const groups = halves.map((half) => (half === "" ? [] : half.split(":")));
  if (!groups.every((list) => list.every((group) => /^[0-9A-Fa-f]{1,4}$/.test(group)))) return false;
  const count = groups.reduce((sum, list) => sum + list.length, 0);
  return halves.length === 2 ? count < 8 : count === 8;
}

export function isIPv4(text: string): boolean {
  if (text === lastIPv4.text) return lastIPv4.result;
  const result = IPV4.test(text);
  lastIPv4 = { text, result };
  return result;
}

/**
 * The last answer of `isIPv4` and of `normalizeHostname`: a client asks both
 * for the same host at every connect (the options, then the adapter's
 * `infoOf`), and the regular expressions were 1% of the Node client's
 * profile under connection churn.
 */
let lastIPv4 = { text: "", result: false };
let lastHostname: { readonly value: string; readonly name: string } | undefined;

/**
 * Checks a host name or IP literal and strips IPv6 brackets: `[::1]` becomes `::1`.
 * Resolution is left to the runtime; only the syntax is checked here.
 */
export function normalizeHostname(value: unknown, option = "hostname"): string {
  if (value === undefined) return DEFAULTS.hostname;
  if (value === lastHostname?.value) return (lastHostname as { name: string }).name;
  const name = checkHostname(value, option);
  lastHostname = { value: value as string, name };
  return name;
}

function checkHostname(value: unknown, option: string): string {
  if (typeof value !== "string" || value.trim() === "")
    throw invalid(option, "a host name or IP address such as 127.0.0.1, ::1 or localhost", value);
  const unbracketed = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  if (unbracketed.includes(":")) {
    if (!isIPv6(unbracketed)) throw invalid(option, "a valid IPv6 address such as ::1", value);
    return unbracketed.toLowerCase();
  }
  if (isIPv4(unbracketed)) return unbracketed;
  const name = unbracketed.endsWith(".") ? unbracketed.slice(0, -1) : unbracketed;
  if (/^[\d.]+$/.test(name)) throw invalid(option, "a valid IPv4 address such as 127.0.0.1", value);
  if (name.length > 253 || !name.split(".").every((label) => HOST_LABEL.test(label)))
    throw invalid(option, "a host name made of letters, digits, '-' and '.'", value);
  return name;
}

/**
 * Parses a port from the command line: digits only, so `'abc'`, `'1.5'`, `'-1'`
 * and `'0x50'` are usage errors, never a path or a coerced number.
 */
export function parsePort(text: string, option = "port", min = 0): number {
  if (!/^\d{1,5}$/.test(text)) throw invalid(option, `an integer from ${min} to 65535`, text);
  return integer(option, Number(text), 0, min, 65535);
}

const MAX = Number.MAX_SAFE_INTEGER;

export function resolveListenOptions(options?: ListenOptions): TcpListenConfig;
export function resolveListenOptions(options: UnixListenOptions): UnixListenConfig;
export function resolveListenOptions(options?: ListenOptions | UnixListenOptions): ListenConfig;
export function resolveListenOptions(options: ListenOptions | UnixListenOptions = {}): ListenConfig {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  const common: ServerConfig = {
    highWaterMark: integer("highWaterMark", options.highWaterMark, DEFAULTS.highWaterMark, 1, MAX),
    maxConnections: integer("maxConnections", options.maxConnections, DEFAULTS.maxConnections, 0, MAX),
    maxConnectionsPerAddress: integer(
      "maxConnectionsPerAddress",
      options.maxConnectionsPerAddress,
      DEFAULTS.maxConnectionsPerAddress,
      0,
      MAX,
    ),
    idleTimeout: integer("idleTimeout", options.idleTimeout, DEFAULTS.idleTimeout, 0, 2 ** 31 - 1),
    drainTimeout: integer("drainTimeout", options.drainTimeout, DEFAULTS.drainTimeout, 0, 2 ** 31 - 1),
    signal: signal(options.signal),
    // The hooks of a Unix server take Unix addresses: the server core only ever
    // passes it what its own adapter reports.
    onConnection: hook("onConnection", options.onConnection as ServerConfig["onConnection"]),
    onClose: hook("onClose", options.onClose as ServerConfig["onClose"]),
    onError: hook("onError", options.onError as ServerConfig["onError"]),
  };
  if (transport(options) === "unix") {
    return { transport: "unix", path: unixPath((options as UnixListenOptions).path, options), ...common };
  }
  const tcp = options as ListenOptions;
  return {
    transport: "tcp",
    hostname: normalizeHostname(tcp.hostname),
    port: integer("port", tcp.port, DEFAULTS.port, 0, 65535),
    noDelay: boolean("noDelay", tcp.noDelay, DEFAULTS.noDelay),
    tls: tcp.tls === undefined ? undefined : tlsServer(tcp.tls),
    proxy: proxyConfig(tcp),
    reusePort: boolean("reusePort", tcp.reusePort, false),
    ...common,
  };
}

export function resolveConnectOptions(options?: ConnectOptions): TcpConnectConfig;
export function resolveConnectOptions(options: UnixConnectOptions): UnixConnectConfig;
export function resolveConnectOptions(options?: ConnectOptions | UnixConnectOptions): ConnectConfig;
export function resolveConnectOptions(options: ConnectOptions | UnixConnectOptions = {}): ConnectConfig {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  const common: ClientConfig = {
    timeout: integer("timeout", options.timeout, DEFAULTS.connectTimeout, 0, 2 ** 31 - 1),
    replyTimeout: integer("replyTimeout", options.replyTimeout, 0, 0, 2 ** 31 - 1),
    highWaterMark: integer("highWaterMark", options.highWaterMark, DEFAULTS.highWaterMark, 1, MAX),
    drainTimeout: integer("drainTimeout", options.drainTimeout, DEFAULTS.drainTimeout, 0, 2 ** 31 - 1),
    signal: signal(options.signal),
  };
  if (transport(options) === "unix") {
    return { transport: "unix", path: unixPath((options as UnixConnectOptions).path, options), ...common };
  }
  const tcp = options as ConnectOptions;
  const hostname = normalizeHostname(tcp.hostname);
  return {
    transport: "tcp",
    hostname,
    port: integer("port", tcp.port, DEFAULTS.port, 1, 65535),
    noDelay: boolean("noDelay", tcp.noDelay, DEFAULTS.noDelay),
    tls: tcp.tls === undefined ? undefined : tlsClient(tcp.tls === true ? {} : tcp.tls, hostname),
    ...common,
  };
}

function transport(options: ListenOptions | UnixListenOptions | ClientOptions): "tcp" | "unix" {
  const value = (options as { transport?: unknown }).transport;
  if (value === undefined || value === "tcp" || value === "unix") return value ?? "tcp";
  throw invalid("transport", '"tcp" or "unix"', value);
}

/**
 * A Unix socket path: non-empty, no NUL, at most `UNIX_PATH_MAX` bytes. The
 * TCP-only options are refused rather than ignored, so `{ transport: "unix",
 * path, port: 0 }` is not silently a different server than the caller thinks.
 */
function unixPath(value: unknown, options: object): string {
  for (const option of ["hostname", "port", "noDelay", "tls", "reusePort", ...PROXY_OPTIONS])
    if ((options as Record<string, unknown>)[option] !== undefined)
      throw new EchoError("EINVAL", `invalid option ${option}: it applies to TCP only, not to a Unix socket`);
  if (typeof value !== "string" || value === "" || value.includes("\0"))
    throw invalid("path", "a file system path for the Unix socket, such as /tmp/echo.sock", value);
  const bytes = new TextEncoder().encode(value).byteLength;
  if (bytes > UNIX_PATH_MAX)
    throw new EchoError(
      "EINVAL",
      `invalid option path: ${JSON.stringify(value)} is ${bytes} bytes, over the ${UNIX_PATH_MAX}-byte limit of a Unix socket path on Linux (sun_path is 108 bytes with the NUL); use a shorter path, e.g. under /tmp`,
      { path: value },
    );
  return value;
}

const PROXY_OPTIONS = ["proxyProtocol", "proxyFrom", "proxyHeaderTimeout"] as const;

/** `proxyProtocol` and its two companions, which mean nothing without it and are refused alone. */
function proxyConfig(options: ListenOptions): ProxyConfig | undefined {
  if (!boolean("proxyProtocol", options.proxyProtocol, false)) {
    const stray = PROXY_OPTIONS.find((option) => options[option] !== undefined && option !== "proxyProtocol");
    if (stray) throw new EchoError("EINVAL", `invalid option ${stray}: it needs proxyProtocol: true`);
    return undefined;
  }
  if (options.tls !== undefined)
    throw new EchoError(
      "EINVAL",
      "invalid option proxyProtocol: not with tls (the PROXY header precedes the TLS handshake, which the runtime owns); terminate TLS at the balancer, or pass it through without the PROXY protocol",
    );
  return {
    trusted: parseTrustList(options.proxyFrom ?? LOOPBACK),
    headerTimeout: integer("proxyHeaderTimeout", options.proxyHeaderTimeout, 3000, 1, 2 ** 31 - 1),
  };
}

function pem(option: string, value: unknown): string {
  const text = value instanceof Uint8Array ? new TextDecoder().decode(value) : value;
  if (typeof text !== "string" || !text.includes("-----BEGIN "))
    throw invalid(
      option,
      "PEM text (the file's contents, not its name)",
      typeof text === "string" ? "text without a PEM block" : value,
    );
  return text;
}

function optionalPem(option: string, value: unknown): string | undefined {
  return value === undefined ? undefined : pem(option, value);
}

function tlsServer(options: TlsServerOptions): TlsServerConfig {
  if (typeof options !== "object" || options === null) throw invalid("tls", "an object with cert and key", options);
  const requestCert = boolean("tls.requestCert", options.requestCert, false);
  const ca = optionalPem("tls.ca", options.ca);
  if (requestCert && ca === undefined)
    throw new EchoError(
      "EINVAL",
      "invalid option tls.requestCert: it needs tls.ca, the CA that signs client certificates",
    );
  return { cert: pem("tls.cert", options.cert), key: pem("tls.key", options.key), ca, requestCert };
}

function tlsClient(options: TlsClientOptions, hostname: string): TlsClientConfig {
  if (typeof options !== "object" || options === null) throw invalid("tls", "true or an object", options);
  const cert = optionalPem("tls.cert", options.cert);
  const key = optionalPem("tls.key", options.key);
  if ((cert === undefined) !== (key === undefined))
    throw new EchoError("EINVAL", "invalid option tls.cert/tls.key: a client certificate needs both");
  const serverName =
    options.serverName === undefined ? hostname : normalizeHostname(options.serverName, "tls.serverName");
  return {
    ca: optionalPem("tls.ca", options.ca),
    serverName,
    sni: isIPv4(serverName) || isIPv6(serverName) ? undefined : serverName,
    cert,
    key,
  };
}

export function resolveEchoOptions(options: EchoOptions = {}): { timeout: number; signal: AbortSignal | undefined } {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  return {
    timeout: integer("timeout", options.timeout, 0, 0, 2 ** 31 - 1),
    signal: signal(options.signal),
  };
}

/** Strings are sent as UTF-8. */
export function toBytes(data: Uint8Array | string, option = "payload"): Uint8Array {
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (data instanceof Uint8Array) return data;
  throw invalid(option, "a Uint8Array or a string", data);
}
