/**
 * @tcp-echo/core: the runtime-neutral contract and protocol. Apps use a runtime
 * package (`@tcp-echo/node`, `@tcp-echo/bun`, `@tcp-echo/deno`); adapters and
 * tools use the pieces below.
 */

export type { CliHost } from "./cli.ts";
export { EXIT, parseArguments, runCli } from "./cli.ts";
export type { Dialed, Dialer } from "./client.ts";
export { ClientConnection, openConnection } from "./client.ts";
export type { EchoErrorCode, ErrorContext } from "./errors.ts";
export {
  contextOf,
  EchoError,
  ERROR_CODES,
  echoError,
  errorCodeOf,
  formatAddress,
  formatEndpoint,
  isEchoError,
  toEchoError,
} from "./errors.ts";
export type {
  ConnectConfig,
  ListenConfig,
  TcpConnectConfig,
  TcpListenConfig,
  TlsClientConfig,
  TlsServerConfig,
  UnixConnectConfig,
  UnixListenConfig,
} from "./options.ts";
export {
  DEFAULTS,
  familyOf,
  isIPv4,
  isIPv6,
  normalizeHostname,
  parsePort,
  resolveConnectOptions,
  resolveListenOptions,
  toBytes,
  UNIX_PATH_MAX,
} from "./options.ts";
export type { SocketEvents, SocketIO } from "./protocol.ts";
export { concat, EchoLedger, EchoSession } from "./protocol.ts";
export type { Binder, Listener } from "./server.ts";
export { ServerCore, startServer } from "./server.ts";
export type { Summary } from "./stats.ts";
export { median, percentile, summarize } from "./stats.ts";
export type * from "./types.ts";
export type { UnixFs } from "./unix.ts";
export { claimUnixPath, directoryOf, ifMissing, unixSocketInfo } from "./unix.ts";
