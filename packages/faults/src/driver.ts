/**
 * The fault driver: runs unchanged under Node (tsx), Bun and Deno, imports the
 * runtime package it is told to, and streams a random payload with half-close
 * to each target at once (one connection each), printing one JSON line per
 * target (`DriverResult`) as it finishes.
 *
 *   <runtime> driver.ts --package bun --size 4194304 --targets latency=4001:echo,reset-client=4002:ECONNRESET
 *
 * `echo` expects every byte back (sha256 compared), then EOF; a code expects the
 * connection to fail with exactly that `EchoError` code. With `--echo-timeout MS
 * --duration MS` each target instead gets `echo()` calls of `--size` bytes, each
 * with that timeout, one after another for the duration, then a half-close: the
 * shape of a client that must notice a dead network by itself. Either way a target
 * that takes longer than `--deadline` ms is a failure: a hang is never a pass.
 * Only APIs all three runtimes share are used: `node:crypto`'s `createHash`,
 * `node:process`, web crypto, timers.
 */

import { createHash } from "node:crypto";
import process from "node:process";
import type { EchoConnection, EchoError } from "@tcp-echo/core";

export interface DriverResult {
  readonly target: string;
  readonly ok: boolean;
  /** Bytes echoed back before EOF or the error. */
  readonly bytes: number;
  readonly ms: number;
  /** The `EchoError` code the connection failed with, if it did. */
  readonly code?: string;
  /** The client had half-closed when the failure came. */
  readonly halfClosed?: boolean;
  readonly failure?: string;
}

interface RuntimePackage {
  connect(options: { hostname: string; port: number; timeout?: number }): Promise<EchoConnection>;
  isEchoError(value: unknown): value is EchoError;
}

const PACKAGES: Record<string, string> = {
  node: "../../node/src/index.ts",
  bun: "../../bun/src/index.ts",
  deno: "../../deno/src/index.ts",
};

const CHUNK = 64 * 1024;

class Hang extends Error {}

interface Progress {
  bytes: number;
  halfClosed: boolean;
}

/** Streams `size` random bytes and half-closes, while a concurrent reader hashes the echo until EOF. */
async function stream(pkg: RuntimePackage, hostname: string, port: number, size: number, counted: Progress) {
  const connection = await pkg.connect({ hostname, port });
  try {
    const sent = createHash("sha256");
    const received = createHash("sha256");
    const writer = (async () => {
      for (let offset = 0; offset < size; offset += CHUNK) {
        // A fresh chunk each time: the connection keeps it to check the echo.
        const chunk = randomBytes(Math.min(CHUNK, size - offset));
        sent.update(chunk);
        await connection.write(chunk);
      }
      counted.halfClosed = true;
      await connection.closeWrite();
    })();
    const reader = (async () => {
      for (let chunk = await connection.read(); chunk; chunk = await connection.read()) {
        received.update(chunk);
        counted.bytes += chunk.byteLength;
      }
    })();
    // Observe both: a failed reader must not leave the writer's rejection unhandled.
    writer.catch(() => {});
    reader.catch(() => {});
    await Promise.all([writer, reader]);
    await connection.closed;
    return { sent: sent.digest("hex"), received: received.digest("hex") };
  } finally {
    await connection.close();
  }
}

/** Echoes `size` bytes at a time, each call with `timeout`, until `duration` ms have passed; then half-closes. */
async function echoFor(
  pkg: RuntimePackage,
  hostname: string,
  port: number,
  size: number,
  timing: Timing,
  counted: Progress,
) {
  const connection = await pkg.connect({ hostname, port });
  try {
    const started = performance.now();
    while (performance.now() - started < timing.duration) {
      const payload = randomBytes(size);
      const reply = await connection.echo(payload, { timeout: timing.echoTimeout });
      // The connection already checks every byte (EPROTO); this guards the driver itself.
      if (!sameBytes(reply, payload)) throw new Error("an echo came back different");
      counted.bytes += size;
    }
    counted.halfClosed = true;
    await connection.closeWrite();
    await connection.closed;
    return { sent: "", received: "" };
  } finally {
    await connection.close();
  }
}

interface Timing {
  readonly echoTimeout: number;
  readonly duration: number;
}

async function run(
  pkg: RuntimePackage,
  hostname: string,
  target: string,
  port: number,
  expect: string,
  size: number,
  deadlineMs: number,
  timing: Timing | undefined,
): Promise<DriverResult> {
  const started = performance.now();
  const counted: Progress = { bytes: 0, halfClosed: false };
  const elapsed = () => Math.round(performance.now() - started);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Hang(`no result within ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    const work = timing
      ? echoFor(pkg, hostname, port, size, timing, counted)
      : stream(pkg, hostname, port, size, counted);
    const { sent, received } = await Promise.race([work, hang]);
    const base = { target, bytes: counted.bytes, ms: elapsed() };
    if (expect !== "echo") return { ...base, ok: false, failure: `succeeded, expected ${expect}` };
    if (!timing && counted.bytes !== size)
      return { ...base, ok: false, failure: `${counted.bytes} of ${size} bytes came back` };
    if (sent !== received) return { ...base, ok: false, failure: "sha256 of the echo differs from what was sent" };
    return { ...base, ok: true };
  } catch (error) {
    const base = { target, bytes: counted.bytes, ms: elapsed(), halfClosed: counted.halfClosed };
    if (error instanceof Hang) return { ...base, ok: false, failure: error.message };
    const code = pkg.isEchoError(error) ? error.code : "not an EchoError";
    const message = error instanceof Error ? error.message : String(error);
    if (code === expect) return { ...base, ok: true, code };
    // Linux often reports a reset that arrives behind unread data as EOF (the next
    // write would see ECONNRESET). Before our half-close core reports that EOF as
    // ECONNRESET; after it, an EOF with bytes missing is all a client can see, and
    // core reports the short echo (EPROTO). Missing bytes either way: never success.
    if (expect === "ECONNRESET" && code === "EPROTO" && counted.halfClosed) return { ...base, ok: true, code };
    return { ...base, ok: false, code, failure: `expected ${expect}, got ${code}: ${message}` };
  } finally {
    clearTimeout(timer);
  }
}

// --- utils ---

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB per call.
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65536)));
  }
  return bytes;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function argument(args: string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
}

// --- main ---

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const path = PACKAGES[argument(args, "package") ?? ""];
  if (!path) throw new Error(`--package must be one of ${Object.keys(PACKAGES).join(", ")}`);
  const pkg = (await import(new URL(path, import.meta.url).href)) as RuntimePackage;
  const hostname = argument(args, "host") ?? "127.0.0.1";
  const size = Number(argument(args, "size") ?? 4 * 1024 * 1024);
  const deadlineMs = Number(argument(args, "deadline") ?? 30_000);
  const targets = (argument(args, "targets") ?? "").split(",").filter(Boolean);
  const echoTimeout = argument(args, "echo-timeout");
  const timing = echoTimeout
    ? { echoTimeout: Number(echoTimeout), duration: Number(argument(args, "duration") ?? 5000) }
    : undefined;
  await Promise.all(
    targets.map(async (spec) => {
      const [name = "", rest = ""] = spec.split("=");
      const [port = "", expect = "echo"] = rest.split(":");
      const result = await run(pkg, hostname, name, Number(port), expect, size, deadlineMs, timing);
      await new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(result)}\n`, () => resolve()));
    }),
  );
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`driver: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
