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
 * Only APIs all three runtimes share are used (see @tcp-echo/testkit/drive).
 */

import {
  argument,
  codeOf,
  expectedFailure,
  loadPackage,
  type Progress,
  printLine,
  type RuntimePackage,
  randomBytes,
  runDriver,
  sameBytes,
  streamHalfClose,
} from "@tcp-echo/testkit/drive";

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

class Hang extends Error {}

/** Streams `size` random bytes with half-close and waits for the close after EOF. */
async function stream(pkg: RuntimePackage, hostname: string, port: number, size: number, counted: Progress) {
  const connection = await pkg.connect({ hostname, port });
  try {
    const streamed = await streamHalfClose(connection, size, counted);
    await connection.closed;
    return streamed;
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
    const code = codeOf(pkg, error);
    const message = error instanceof Error ? error.message : String(error);
    if (expectedFailure(expect, code, counted)) return { ...base, ok: true, code };
    return { ...base, ok: false, code, failure: `expected ${expect}, got ${code}: ${message}` };
  } finally {
    clearTimeout(timer);
  }
}

// --- main ---

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const pkg = await loadPackage(argument(args, "package") ?? "", (specifier) => import(specifier));
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
      await printLine(result);
    }),
  );
}

runDriver(main);
