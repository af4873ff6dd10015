/**
 * Unix domain socket paths, shared by every runtime: the checks
 * before `bind` and the stale-file decision. An adapter supplies its runtime's
 * `stat` and `unlink` (`UnixFs`), and core probes a path with the adapter's own
 * dialer; the decisions live here, so every runtime makes the same ones with
 * the same errors.
 */

import { EchoError, echoError, errorCodeOf } from "./_errors.ts";
import type { SocketInfo, UnixAddress } from "./types.ts";

/**
 * What an adapter supplies to serve Unix sockets: `node:fs/promises` has this
 * shape (Node and Bun pass `{ stat, unlink }` from it). Both reject the way
 * the runtime does when nothing is at `path` (`ENOENT`, Deno's `NotFound`).
 */
export interface UnixFs {
  /** What is at `path`, following symlinks. */
  stat(path: string): Promise<{ isSocket(): boolean; isDirectory(): boolean }>;
  unlink(path: string): Promise<void>;
}

/** Connects to the socket at `path` and closes at once: resolves if a server accepted, rejects with the runtime's error if not. */
export type UnixProbe = (path: string) => Promise<void>;

/** For `.catch`: "no such file" (Node/Bun `ENOENT`/`ENOTDIR`, Deno `NotFound`) becomes `undefined`; anything else is rethrown. */
function ifMissing(error: unknown): undefined {
  const { code, name } = error as { code?: unknown; name?: unknown };
  if (code === "ENOENT" || code === "ENOTDIR" || name === "NotFound") return undefined;
  throw error;
}

/** Both ends of a Unix socket connection: only the server's end has a path. */
export function unixSocketInfo(path: string, side: "server" | "client"): SocketInfo<UnixAddress> {
  const named: UnixAddress = { transport: "unix", path };
  const unnamed: UnixAddress = { transport: "unix", path: "" };
  return side === "server"
    ? { localAddress: named, remoteAddress: unnamed }
    : { localAddress: unnamed, remoteAddress: named };
}

/** The directory part of a path: `/tmp` for `/tmp/echo.sock`, `.` for `echo.sock`. */
export function directoryOf(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

/**
 * Makes `path` free to bind, or says why it cannot be:
 * - its directory is missing (or not a directory): `EINVAL` naming the directory;
 * - something that is not a socket is there: `EADDRINUSE`, and it is left alone;
 * - a socket a live server accepts on: `EADDRINUSE`;
 * - a socket nobody accepts on (a crashed server's): removed, so the bind can go on.
 */
export async function claimUnixPath(path: string, fs: UnixFs, probe: UnixProbe): Promise<void> {
  const directory = directoryOf(path);
  if (!(await fs.stat(directory).catch(ifMissing))?.isDirectory()) {
    throw new EchoError(
      "EINVAL",
      `invalid option path: the directory ${JSON.stringify(directory)} of ${JSON.stringify(path)} does not exist; create it first`,
      { path },
    );
  }
  const found = await fs.stat(path).catch(ifMissing);
  if (!found) return;
  const context = { operation: "listen" as const, path };
  if (!found.isSocket()) {
    const error = echoError("EADDRINUSE", context);
    error.message = `listen EADDRINUSE unix:${path}: a file that is not a socket is there; remove it yourself or pick another path`;
    throw error;
  }
  try {
    await probe(path);
  } catch (error) {
    // Refused: the file outlived its server (killed, crashed): nobody will
    // accept on it again, and binding needs the name free.
    if (errorCodeOf(error) === "ECONNREFUSED") {
      await fs.unlink(path).catch(ifMissing);
      return;
    }
    throw error;
  }
  throw echoError("EADDRINUSE", context);
}
