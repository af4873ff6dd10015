/**
 * One error type, one code set, for every runtime. Node, Bun and Deno report the
 * same failure in different ways (a string `code`, a signed `errno`, an error
 * class name, or only a message): `toEchoError` folds them all onto these codes.
 */

export const ERROR_CODES = [
  "ECONNREFUSED",
  "ECONNRESET",
  "EADDRINUSE",
  "EADDRNOTAVAIL",
  "EACCES",
  "ETIMEDOUT",
  "ENOTFOUND",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "EPIPE",
  "EMFILE",
  "EINVAL",
  /** The peer broke the echo protocol: short, extra or different bytes. */
  "EPROTO",
  /** The operation needs an open connection or server, and it is closed. */
  "ECLOSED",
  /** An `AbortSignal` fired. */
  "EABORTED",
  /** A user hook (`onConnection`, `onClose`) threw or rejected; the server carried on. */
  "EHOOK",
  "EUNKNOWN",
] as const;

export type EchoErrorCode = (typeof ERROR_CODES)[number];

/** What was being done, for the message: `connect ECONNREFUSED 127.0.0.1:9: ...`. */
export interface ErrorContext {
  operation?: "listen" | "connect" | "accept" | "read" | "write" | "echo" | "close";
  hostname?: string;
  port?: number;
}

export class EchoError extends Error {
  override readonly name = "EchoError";
  readonly code: EchoErrorCode;
  readonly hostname?: string;
  readonly port?: number;

  constructor(code: EchoErrorCode, message: string, options?: { cause?: unknown } & ErrorContext) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.hostname !== undefined) this.hostname = options.hostname;
    if (options?.port !== undefined) this.port = options.port;
  }
}

export function isEchoError(value: unknown, code?: EchoErrorCode): value is EchoError {
  return value instanceof EchoError && (code === undefined || value.code === code);
}

/** Formats `host:port`, bracketing IPv6 literals. */
export function formatAddress(hostname: string | undefined, port: number | undefined): string {
  if (hostname === undefined) return port === undefined ? "" : `port ${port}`;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return port === undefined ? host : `${host}:${port}`;
}

/** What to do next, per code: the second half of every message. */
const ADVICE: Partial<Record<EchoErrorCode, (where: string, context: ErrorContext) => string>> = {
  ECONNREFUSED: (where) => `nothing is listening on ${where}; start a server there or check the port`,
  ECONNRESET: () => "the peer reset the connection",
  EADDRINUSE: (where) => `${where} is already in use; stop the other server or pick another port (0 picks a free one)`,
  EADDRNOTAVAIL: (where) => `${where} is not an address of this machine`,
  EACCES: (where) =>
    `permission denied for ${where}; ports below 1024 need privileges, and Deno needs --allow-net for this address`,
  ETIMEDOUT: (where, context) =>
    context.operation === "connect" ? `no answer from ${where} in time` : "the operation timed out",
  ENOTFOUND: (_where, context) => `the host name ${JSON.stringify(context.hostname)} could not be resolved`,
  ENETUNREACH: (where) => `no route to the network of ${where}`,
  EHOSTUNREACH: (where) => `no route to ${where}`,
  EPIPE: () => "the peer closed the connection while we were writing",
  EMFILE: () => "too many open files; raise the limit (ulimit -n) or lower maxConnections",
  ECLOSED: () => "the connection or server is closed",
  EABORTED: () => "aborted by its signal",
};

/** Builds an `EchoError` with a message that names the address and what to do. */
export function echoError(code: EchoErrorCode, context: ErrorContext = {}, cause?: unknown): EchoError {
  const where = formatAddress(context.hostname, context.port) || "the address";
  const advice = ADVICE[code]?.(where, context) ?? describeCause(cause);
  const prefix = context.operation ? `${context.operation} ${code}` : code;
  const target = context.hostname !== undefined || context.port !== undefined ? ` ${where}` : "";
  return new EchoError(code, `${prefix}${target}: ${advice}`, { cause, ...context });
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  if (cause === undefined) return "unknown error";
  return String(cause);
}

const KNOWN = new Set<string>(ERROR_CODES);

/** Linux errno values, as Node (negative) and Bun (either sign) report them. */
const ERRNO: Record<number, EchoErrorCode> = {
  13: "EACCES",
  24: "EMFILE",
  23: "EMFILE", // ENFILE: the system-wide table is full; same remedy
  32: "EPIPE",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  104: "ECONNRESET",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};

/** Deno's error classes (`Deno.errors.*`) carry the meaning in `name`, often with no `code`. */
const ERROR_NAMES: Record<string, EchoErrorCode> = {
  ConnectionRefused: "ECONNREFUSED",
  ConnectionReset: "ECONNRESET",
  ConnectionAborted: "ECONNRESET",
  AddrInUse: "EADDRINUSE",
  AddrNotAvailable: "EADDRNOTAVAIL",
  PermissionDenied: "EACCES",
  NotCapable: "EACCES",
  TimedOut: "ETIMEDOUT",
  BrokenPipe: "EPIPE",
  BadResource: "ECLOSED",
  Interrupted: "ECLOSED",
  NotConnected: "ECLOSED",
  AbortError: "EABORTED",
  TimeoutError: "ETIMEDOUT",
  // A bad port or address reaching a runtime's API unvalidated.
  RangeError: "EINVAL",
  URIError: "EINVAL",
};

/** Last resort, for errors that carry only a message (Deno's DNS failures, Bun's listen-side lookup). */
const MESSAGE_PATTERNS: Array<[RegExp, EchoErrorCode]> = [
  [/os error 111|connection refused/i, "ECONNREFUSED"],
  [/os error 104|connection reset/i, "ECONNRESET"],
  [/os error 98|address already in use/i, "EADDRINUSE"],
  [/os error 99|cannot assign requested address/i, "EADDRNOTAVAIL"],
  [/os error 110|timed out/i, "ETIMEDOUT"],
  [/os error 113|no route to host/i, "EHOSTUNREACH"],
  [/os error 101|network is unreachable/i, "ENETUNREACH"],
  [/os error 32|broken pipe/i, "EPIPE"],
  [/os error 24|too many open files/i, "EMFILE"],
  [/lookup|getaddrinfo|name or service not known|nodename nor servname|no address associated|dns/i, "ENOTFOUND"],
  [/requires net access|permission denied|NotCapable/i, "EACCES"],
  [/bad resource|closed/i, "ECLOSED"],
];

/** Finds our code for any runtime's error value. */
export function errorCodeOf(error: unknown): EchoErrorCode {
  if (error instanceof EchoError) return error.code;
  if (typeof error !== "object" || error === null) return "EUNKNOWN";
  const { code, errno, name, message } = error as {
    code?: unknown;
    errno?: unknown;
    name?: unknown;
    message?: unknown;
  };
  if (typeof code === "string") {
    if (KNOWN.has(code)) return code as EchoErrorCode;
    if (code === "EAI_AGAIN" || code === "EAI_NONAME" || code === "EAI_FAIL" || code === "DNSException")
      return "ENOTFOUND";
    if (code === "ENFILE") return "EMFILE";
    if (code === "ABORT_ERR") return "EABORTED";
    if (code === "ERR_SOCKET_BAD_PORT" || code === "ERR_INVALID_ARG_VALUE" || code === "ERR_INVALID_ARG_TYPE")
      return "EINVAL";
    if (code === "ERR_SOCKET_CLOSED" || code === "ERR_STREAM_DESTROYED" || code === "ERR_STREAM_WRITE_AFTER_END")
      return "ECLOSED";
  }
  if (typeof errno === "number" && ERRNO[Math.abs(errno)]) return ERRNO[Math.abs(errno)] as EchoErrorCode;
  if (typeof name === "string" && ERROR_NAMES[name]) return ERROR_NAMES[name] as EchoErrorCode;
  if (typeof message === "string") {
    for (const [pattern, mapped] of MESSAGE_PATTERNS) if (pattern.test(message)) return mapped;
  }
  if (error instanceof TypeError) return "EINVAL";
  return "EUNKNOWN";
}

/** Normalizes any runtime's error into an `EchoError` with context; `EchoError`s pass through. */
export function toEchoError(error: unknown, context: ErrorContext = {}): EchoError {
  if (error instanceof EchoError) return error;
  return echoError(errorCodeOf(error), context, error);
}
