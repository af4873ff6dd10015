/**
 * The transport dimension (`pnpm matrix --transport tcp4|tcp6|unix|tls|all`):
 * where a server listens and how every client reaches it. One set-up per run: a
 * temp dir for Unix socket paths and, for TLS, a CA and a leaf it signs made
 * with openssl (Deno's rustls rejects a self-signed leaf: CaUsedAsEndEntity).
 * Nothing is committed; the dir is removed when the run ends.
 */

import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import * as tls from "node:tls";
import { freePort, makeCerts, tempDir } from "@tcp-echo/testkit/fixtures";

export { freePort };

export type Transport = "tcp4" | "tcp6" | "unix" | "tls";
export const TRANSPORTS: readonly Transport[] = ["tcp4", "tcp6", "unix", "tls"];
/** A grid of a report: one of the stream transports above, or `udp`, the datagram grid (`udp.ts`: its own servers, clients and cases). */
export type GridTransport = Transport | "udp";

/** The certificate's name; the leaf also carries 127.0.0.1 and ::1. */
export const TLS_SERVER_NAME = "localhost";

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** The CA certificate's PEM text, for clients that take it inline. */
  readonly caPem: string;
  /** The name clients check the server's certificate against (`TLS_SERVER_NAME` for the run's own). */
  readonly serverName: string;
}

/** Where a server listens. TLS is TCP on 127.0.0.1 with the run's certificates. */
export type Endpoint =
  | { readonly transport: "tcp4" | "tcp6" | "tls"; readonly host: string; readonly port: number }
  | { readonly transport: "unix"; readonly path: string };

/** What the run prepared for its transports, and what it could not. */
export interface TransportSetup {
  readonly dir: string;
  readonly tls: TlsFiles | undefined;
  /** Why a transport cannot run here ("not available: no ::1 on lo"), if so. */
  missing(transport: Transport): string | undefined;
  /** A fresh socket path in the run's dir. */
  unixPath(label: string): string;
  cleanup(): void;
}

export function hostOf(transport: Transport): string {
  return transport === "tcp6" ? "::1" : "127.0.0.1";
}

export function prepareTransports(transports: readonly Transport[]): TransportSetup {
  const dir = tempDir("tcp-echo-matrix-");
  const gaps = new Map<Transport, string>();
  if (transports.includes("tcp6") && !hasLoopback6()) gaps.set("tcp6", "not available: ::1 is not configured on lo");
  let files: TlsFiles | undefined;
  if (transports.includes("tls")) {
    try {
      files = makeCertificates(dir);
    } catch (error) {
      gaps.set("tls", `not available: openssl could not make test certificates (${(error as Error).message})`);
    }
  }
  let sockets = 0;
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  // Also on Ctrl-C: the exit handlers end the run with process.exit, which runs this.
  process.once("exit", cleanup);
  return {
    dir,
    tls: files,
    missing: (transport) => gaps.get(transport),
    // Short names: a Unix socket path has a 107-byte limit.
    unixPath: (label) => join(dir, `${label.replace(/[^a-z0-9]/gi, "")}-${++sockets}.sock`),
    cleanup,
  };
}

/** `ip -6 addr show lo` lists ::1 (a container may run without IPv6). */
function hasLoopback6(): boolean {
  try {
    return /inet6 ::1\//.test(execFileSync("ip", ["-6", "addr", "show", "lo"], { encoding: "utf8" }));
  } catch {
    return false;
  }
}

/** The run's CA and server leaf (SAN localhost, 127.0.0.1, ::1), from the testkit's `make-certs.sh`. */
function makeCertificates(dir: string): TlsFiles {
  const certs = makeCerts(dir);
  return {
    ca: certs.file("ca.pem"),
    cert: certs.file("server.pem"),
    key: certs.file("server.key"),
    caPem: certs.ca,
    serverName: TLS_SERVER_NAME,
  };
}

// --- the runner's own connections ---

/** The TCP socket under a TLS one, for a reset (a TLS socket cannot send an RST itself). */
const underlying = new WeakMap<net.Socket, net.Socket>();

/**
 * Connects the runner to `endpoint` (half-open allowed); resolves once it is
 * usable (for TLS, after the handshake). A reset never crashes the runner.
 */
export function connectTo(endpoint: Endpoint, files: TlsFiles | undefined, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const raw =
      endpoint.transport === "unix"
        ? net.connect({ path: endpoint.path, allowHalfOpen: true })
        : net.connect({
            host: endpoint.host,
            port: endpoint.port,
            allowHalfOpen: true,
            ...(localAddress ? { localAddress } : {}),
          });
    const socket =
      endpoint.transport === "tls"
        ? // allowHalfOpen reaches the TLSSocket (Node passes it through), though the types omit it.
          tls.connect({
            socket: raw,
            ca: files?.caPem,
            servername: files?.serverName ?? TLS_SERVER_NAME,
            allowHalfOpen: true,
          } as tls.ConnectionOptions)
        : raw;
    if (socket !== raw) {
      underlying.set(socket, raw);
      raw.on("error", () => {});
    }
    socket.once(socket === raw ? "connect" : "secureConnect", () => {
      socket.off("error", reject);
      socket.on("error", () => {});
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** A plain connection attempt (no TLS handshake): what the kernel's backlog sees. */
export function dial(endpoint: Endpoint): net.Socket {
  const socket =
    endpoint.transport === "unix"
      ? net.connect({ path: endpoint.path })
      : net.connect({ host: endpoint.host, port: endpoint.port });
  socket.on("error", () => {});
  return socket;
}

/** Sends an RST (on the TCP socket under TLS). */
export function resetSocket(socket: net.Socket): void {
  (underlying.get(socket) ?? socket).resetAndDestroy();
  socket.destroy();
}

/** True if a connection is accepted (refused, or no socket file, is false). */
export function accepts(endpoint: Endpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dial(endpoint);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", (error: NodeJS.ErrnoException) =>
      resolve(error.code !== "ECONNREFUSED" && error.code !== "ENOENT"),
    );
  });
}
