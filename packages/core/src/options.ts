/**
 * Defaults and validation for every option, done before any syscall so each
 * runtime rejects the same bad input with the same `EINVAL`. In particular a bad
 * port is never passed on: Node would take the string `'abc'` as a Unix socket path.
 */

import { EchoError } from "./errors.ts";
import type { ConnectOptions, EchoOptions, ListenOptions } from "./types.ts";

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

/** `ListenOptions` with every default filled in and every value checked. */
export interface ListenConfig {
  readonly hostname: string;
  readonly port: number;
  readonly noDelay: boolean;
  readonly highWaterMark: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly idleTimeout: number;
  readonly drainTimeout: number;
  readonly signal: AbortSignal | undefined;
  readonly onConnection: ListenOptions["onConnection"];
  readonly onClose: ListenOptions["onClose"];
  readonly onError: ListenOptions["onError"];
}

export interface ConnectConfig {
  readonly hostname: string;
  readonly port: number;
  readonly noDelay: boolean;
  readonly timeout: number;
  readonly highWaterMark: number;
  readonly signal: AbortSignal | undefined;
}

function invalid(option: string, expected: string, value: unknown): EchoError {
  return new EchoError("EINVAL", `invalid option ${option}: expected ${expected}, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined)
    return String(value);
  return typeof value;
}

function integer(option: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw invalid(option, range, value);
  }
  return value;
}

function boolean(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalid(option, "true or false", value);
  return value;
}

function hook<T>(option: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== "function") throw invalid(option, "a function", value);
  return value;
}

function signal(value: unknown): AbortSignal | undefined {
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
  return IPV4.test(text);
}

/**
 * Checks a host name or IP literal and strips IPv6 brackets: `[::1]` becomes `::1`.
 * Resolution is left to the runtime; only the syntax is checked here.
 */
export function normalizeHostname(value: unknown, option = "hostname"): string {
  if (value === undefined) return DEFAULTS.hostname;
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

export function resolveListenOptions(options: ListenOptions = {}): ListenConfig {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  return {
    hostname: normalizeHostname(options.hostname),
    port: integer("port", options.port, DEFAULTS.port, 0, 65535),
    noDelay: boolean("noDelay", options.noDelay, DEFAULTS.noDelay),
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
    onConnection: hook("onConnection", options.onConnection),
    onClose: hook("onClose", options.onClose),
    onError: hook("onError", options.onError),
  };
}

export function resolveConnectOptions(options: ConnectOptions = {}): ConnectConfig {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  return {
    hostname: normalizeHostname(options.hostname),
    port: integer("port", options.port, DEFAULTS.port, 1, 65535),
    noDelay: boolean("noDelay", options.noDelay, DEFAULTS.noDelay),
    timeout: integer("timeout", options.timeout, DEFAULTS.connectTimeout, 0, 2 ** 31 - 1),
    highWaterMark: integer("highWaterMark", options.highWaterMark, DEFAULTS.highWaterMark, 1, MAX),
    signal: signal(options.signal),
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

/** The address family a numeric hostname implies. */
export function familyOf(hostname: string): "IPv4" | "IPv6" {
  return hostname.includes(":") ? "IPv6" : "IPv4";
}
