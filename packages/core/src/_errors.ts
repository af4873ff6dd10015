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
  /** The TLS handshake failed: unknown CA, wrong name, expired, no client certificate... (the reason is in the message). */
  "ETLS",
  /** The operation needs an open connection or server, and it is closed. */
  "ECLOSED",
  /** One connection failed between the client's connect and the server's accept (reset in the backlog); the server carried on. */
  "ECONNABORTED",
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
  /** A Unix socket's path, instead of `hostname` and `port`. */
  path?: string;
}

export class EchoError extends Error {
  override readonly name = "EchoError";
  readonly code: EchoErrorCode;
  readonly hostname?: string;
  readonly port?: number;
  readonly path?: string;

  constructor(code: EchoErrorCode, message: string, options?: { cause?: unknown } & ErrorContext) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.hostname !== undefined) this.hostname = options.hostname;
    if (options?.port !== undefined) this.port = options.port;
    if (options?.path !== undefined) this.path = options.path;
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

/** Formats any endpoint: `127.0.0.1:7`, `[::1]:7`, `unix:/tmp/echo.sock` (`unix:(unnamed)` for a client end). */
export function formatEndpoint(
  address: { transport: "tcp"; hostname: string; port: number } | { transport: "unix"; path: string },
): string {
  return address.transport === "unix"
    ? `unix:${address.path || "(unnamed)"}`
    : formatAddress(address.hostname, address.port);
}

/** The error context for an endpoint. */
export function contextOf(address: { hostname: string; port: number } | { path: string }): ErrorContext {
  return "path" in address ? { path: address.path } : { hostname: address.hostname, port: address.port };
}

/** What to do next, per code: the second half of every message. */
const ADVICE: Partial<Record<EchoErrorCode, (where: string, context: ErrorContext & { cause?: unknown }) => string>> = {
  ECONNREFUSED: (where, context) =>
    `nothing is listening on ${where}; start a server there or check the ${context.path === undefined ? "port" : "path"}`,
  ECONNRESET: () => "the peer reset the connection",
  EADDRINUSE: (where, context) =>
    context.path === undefined
      ? `${where} is already in use; stop the other server or pick another port (0 picks a free one)`
      : `${where} is already in use by a live server; stop it or pick another path`,
  EADDRNOTAVAIL: (where) => `${where} is not an address of this machine`,
  EACCES: (where, context) => {
    if (isDenoPermission(context.cause))
      return context.path === undefined
        ? `Deno was not granted network access to ${where}; run it with --allow-net=${formatAddress(context.hostname, undefined)} (or --allow-net)`
        : `Deno was not granted access to ${where}; run it with --allow-read=${context.path} --allow-write=${context.path}`;
    return context.path === undefined
      ? `permission denied for ${where}; ports below 1024 need privileges (CAP_NET_BIND_SERVICE); use a port from 1024, or 0 for a free one`
      : `permission denied for ${where}; check the directory's permissions`;
  },
  ETIMEDOUT: (where, context) =>
    context.operation === "connect"
      ? `no answer from ${where} in time; check that the host is up and the port is right (a firewall that drops packets looks like this), or allow more time`
      : "the operation timed out",
  ENOTFOUND: (_where, context) => `the host name ${JSON.stringify(context.hostname)} could not be resolved`,
  ENETUNREACH: (where) => `no route to the network of ${where}`,
  EHOSTUNREACH: (where) => `no route to ${where}`,
  EPIPE: () => "the peer closed the connection while we were writing",
  EMFILE: () => "too many open files; raise the limit (ulimit -n) or lower maxConnections",
  ECLOSED: () => "the connection or server is closed",
  ECONNABORTED: (_where, context) =>
    `a connection was reset before it could be accepted (${describeCause(context.cause)}); the server keeps serving`,
  ETLS: (where, context) =>
    `TLS handshake with ${where} failed: ${describeCause(context.cause)}; check the CA (--tls-ca), the server name (--tls-servername), the certificates' dates, and the client certificate if the server asks for one`,
  EABORTED: () => "aborted by its signal",
};

/** Builds an `EchoError` with a message that names the address and what to do. */
export function echoError(code: EchoErrorCode, context: ErrorContext = {}, cause?: unknown): EchoError {
  const where =
    context.path !== undefined
      ? `unix:${context.path}`
      : formatAddress(context.hostname, context.port) || "the address";
  const advice = ADVICE[code]?.(where, { ...context, cause }) ?? describeCause(cause);
  const prefix = context.operation ? `${context.operation} ${code}` : code;
  const target =
    context.hostname !== undefined || context.port !== undefined || context.path !== undefined ? ` ${where}` : "";
  return new EchoError(code, `${prefix}${target}: ${advice}`, { cause, ...context });
}

/**
 * Deno's permission sandbox, as opposed to the OS refusing: `NotCapable` since
 * Deno 2 ("Requires net access to ..., run again with the --allow-net flag"),
 * `PermissionDenied` with the same message before it.
 */
function isDenoPermission(cause: unknown): boolean {
  if (typeof cause !== "object" || cause === null) return false;
  const { name, message } = cause as { name?: unknown; message?: unknown };
  return (
    name === "NotCapable" ||
    (name === "PermissionDenied" && typeof message === "string" && /requires \w+ access/i.test(message))
  );
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message.replace(/\s+/g, " ").trim();
  if (cause === undefined) return "unknown error";
  return String(cause);
}

const KNOWN = new Set<string>(ERROR_CODES);

/** Linux errno values, as Node (negative) and Bun (either sign) report them. */
const ERRNO: Record<number, EchoErrorCode> = {
  // ENOENT: connecting to a Unix socket path where no file is: nothing listens there.
  2: "ECONNREFUSED",
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
  NotFound: "ECONNREFUSED",
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

/**
 * TLS failures, however each runtime words them. Node and Bun: OpenSSL's
 * verify codes (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `CERT_HAS_EXPIRED`...),
 * `ERR_TLS_*` and `ERR_SSL_*`; Bun reports an alert from the peer as `EPROTO`
 * with "SSL routines" in the message. Deno (rustls): `InvalidData` with "invalid
 * peer certificate: UnknownIssuer" or "received fatal alert: CertificateRequired".
 */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_)|CERT|UNABLE_TO_|SELF_SIGNED|_SIGNATURE|HOSTNAME_MISMATCH/;
const TLS_MESSAGE =
  /SSL routines|invalid peer certificate|fatal alert|certificate|handshake|tls|ssl|CaUsedAsEndEntity|UnknownIssuer/i;

function isTlsFailure(code: unknown, name: unknown, message: unknown): boolean {
  if (typeof code === "string" && TLS_CODE.test(code)) return true;
  if (typeof message !== "string") return false;
  return (code === undefined || code === "EPROTO" || name === "InvalidData") && TLS_MESSAGE.test(message);
}

/**
 * A TLS peer that closed its TCP connection without `close_notify`. OpenSSL
 * (Node, Bun) reports that as a plain EOF; rustls (Deno) as an error whose
 * message mentions TLS, which must not read as a handshake failure. The protocol
 * treats it as EOF: the echo ledger still catches any byte it cut off.
 */
export function isTlsTruncation(error: unknown): boolean {
  const message = typeof error === "object" && error !== null ? (error as { message?: unknown }).message : undefined;
  return typeof message === "string" && /close_notify|unexpected eof/i.test(message);
}

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
  if (isTlsTruncation(error)) return "ECONNRESET";
  if (isTlsFailure(code, name, message)) return "ETLS";
  if (typeof code === "string") {
    // An open connection aborted under us is a reset to the user; ECONNABORTED is
    // only what the server's accept policy reports (`ServerCore.acceptFailed`).
    if (code === "ECONNABORTED") return "ECONNRESET";
    if (KNOWN.has(code)) return code as EchoErrorCode;
    if (code === "EAI_AGAIN" || code === "EAI_NONAME" || code === "EAI_FAIL" || code === "DNSException")
      return "ENOTFOUND";
    if (code === "ENFILE") return "EMFILE";
    if (code === "ENOENT") return "ECONNREFUSED";
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

/** POSIX names of the Linux errno values an accept can fail with. */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  12: "ENOMEM",
  23: "ENFILE",
  24: "EMFILE",
  64: "ENONET",
  71: "EPROTO",
  92: "ENOPROTOOPT",
  95: "EOPNOTSUPP",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  103: "ECONNABORTED",
  104: "ECONNRESET",
  105: "ENOBUFS",
  107: "ENOTCONN",
  110: "ETIMEDOUT",
  112: "EHOSTDOWN",
  113: "EHOSTUNREACH",
};

/** Deno's classes for the same errors (`Deno.errors.*`, Rust's `io::ErrorKind`). */
const ERRNO_OF_NAME: Record<string, string> = {
  NotConnected: "ENOTCONN",
  ConnectionAborted: "ECONNABORTED",
  ConnectionReset: "ECONNRESET",
  TimedOut: "ETIMEDOUT",
  OutOfMemory: "ENOMEM",
};

/**
 * The POSIX name (`ENOTCONN`) of a runtime's system error, however it carries
 * it: Node's and Bun's string `code` or signed `errno`, Deno's class name, or
 * only "os error 107" in the message. `undefined` when it names none.
 */
export function systemErrorName(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, errno, name, message } = error as {
    code?: unknown;
    errno?: unknown;
    name?: unknown;
    message?: unknown;
  };
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code;
  if (typeof errno === "number" && ERRNO_NAMES[Math.abs(errno)]) return ERRNO_NAMES[Math.abs(errno)];
  if (typeof name === "string" && ERRNO_OF_NAME[name]) return ERRNO_OF_NAME[name];
  const os = typeof message === "string" ? /os error (\d+)/.exec(message) : null;
  return os ? ERRNO_NAMES[Number(os[1])] : undefined;
}

/** Normalizes any runtime's error into an `EchoError` with context; `EchoError`s pass through. */
export function toEchoError(error: unknown, context: ErrorContext = {}): EchoError {
  if (error instanceof EchoError) return error;
  return echoError(errorCodeOf(error), context, error);
}
