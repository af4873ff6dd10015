/**
 * What the client drivers share (the conformance driver's cases and faults, the
 * fault driver of @tcp-echo/faults): they run unchanged under Node (tsx), Bun
 * and Deno, so this file uses only APIs all three have (`node:crypto`'s
 * `createHash`, web crypto, timers) and imports nothing else from the testkit.
 */

import { createHash } from "node:crypto";
import type { EchoConnection, EchoError } from "@tcp-echo/core";

/** What a driver uses of a runtime package. */
export interface RuntimePackage {
  readonly runtime: string;
  connect(options: Record<string, unknown> & { timeout?: number }): Promise<EchoConnection>;
  isEchoError(value: unknown, code?: string): value is EchoError;
}

const PACKAGES = ["node", "bun", "deno"];

/**
 * Imports `@tcp-echo/<name>` (the driver's `--package`) through `load`, the
 * driver's own `import`, so the package resolves from the driver's package.
 */
export async function loadPackage(
  name: string,
  load: (specifier: string) => Promise<unknown>,
): Promise<RuntimePackage> {
  if (!PACKAGES.includes(name)) throw new Error(`--package must be one of ${PACKAGES.join(", ")}`);
  return (await load(`@tcp-echo/${name}`)) as RuntimePackage;
}

/** How far a stream got: updated as it goes, so a failure can say so. */
export interface Progress {
  bytes: number;
  halfClosed: boolean;
}

export interface Streamed {
  readonly sent: string;
  readonly received: string;
  readonly bytes: number;
}

const CHUNK = 64 * 1024;

/**
 * Writes `size` random bytes and half-closes, while a concurrent reader (started
 * `readDelay` ms after the first write) hashes everything until EOF; both
 * sha256 digests and the bytes read. The caller owns the connection.
 */
export async function streamHalfClose(
  connection: EchoConnection,
  size: number,
  progress: Progress = { bytes: 0, halfClosed: false },
  readDelay = 0,
): Promise<Streamed> {
  const sent = createHash("sha256");
  const received = createHash("sha256");
  const writer = (async () => {
    for (let offset = 0; offset < size; offset += CHUNK) {
      // A fresh chunk each time: the connection keeps it to check the echo.
      const chunk = randomBytes(Math.min(CHUNK, size - offset));
      sent.update(chunk);
      await connection.write(chunk);
    }
    progress.halfClosed = true;
    await connection.closeWrite();
  })();
  const reader = (async () => {
    if (readDelay > 0) await new Promise((resolve) => setTimeout(resolve, readDelay));
    for (let chunk = await connection.read(); chunk; chunk = await connection.read()) {
      received.update(chunk);
      progress.bytes += chunk.byteLength;
    }
  })();
  // Observe both at once: a failed reader must not leave the writer's rejection unhandled.
  writer.catch(() => {});
  reader.catch(() => {});
  await Promise.all([writer, reader]);
  return { sent: sent.digest("hex"), received: received.digest("hex"), bytes: progress.bytes };
}

/**
 * Whether a stream through a fault that expects the code `expected` failing
 * with `code` is the outcome the fault says. Linux often reports a reset that
 * arrives behind unread data as EOF (the next write would see ECONNRESET).
 * Before our half-close core reports that EOF as ECONNRESET; after it, an EOF
 * with bytes missing is all a client can see, and core reports the short echo
 * (EPROTO). Missing bytes either way: never success.
 */
export function expectedFailure(expected: string, code: string, progress: Progress): boolean {
  return code === expected || (expected === "ECONNRESET" && code === "EPROTO" && progress.halfClosed);
}

export function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB per call.
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65536)));
  }
  return bytes;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The `EchoError` code of `error`, or "not an EchoError". */
export function codeOf(pkg: RuntimePackage, error: unknown): string {
  return pkg.isEchoError(error) ? error.code : "not an EchoError";
}

/** The value after `--name` in `args`. */
export function argument(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
}

/** Prints one JSON line and waits until it is written (the driver exits right after). */
export function printLine(value: unknown): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify(value)}\n`, () => resolve()));
}

/** Runs a driver's `main`: exit 0 when it returns, 2 with the message when it throws. */
export function runDriver(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`driver: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(2);
    },
  );
}
