/**
 * The client driver: one script that runs unchanged under Node (tsx), Bun and
 * Deno, imports the runtime package it is told to, and runs the named cases
 * against a server using only the public `EchoConnection` API. It prints one
 * JSON line per case (`DriverResult`), as each case finishes.
 *
 *   <runtime> driver.ts --package node --target '{"hostname":"127.0.0.1","port":4000}' --cases tutorial,payloads --params '{...}'
 *
 * `--target` is what `connect()` takes, for the transport under test: `{ hostname,
 * port }` (IPv4 or IPv6), `{ transport: "unix", path }`, or `{ hostname, port,
 * tls: { ca, serverName } }`.
 *
 * Only APIs all three runtimes share are used here (see @tcp-echo/testkit/drive).
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
import { CaseFailure, deadline, fail } from "./deadline.ts";
import { type CaseName, type CaseParams, type DriverResult, type FaultTarget, formatSize as label } from "./plan.ts";

/** `connect()`'s address part, for any transport (the runner builds it). */
type ConnectOptions = Record<string, unknown>;

interface Target {
  readonly pkg: RuntimePackage;
  readonly to: ConnectOptions;
  readonly params: CaseParams;
}

// --- cases ---

type CaseBody = (target: Target, checks: string[]) => Promise<void>;

const CASES: Partial<Record<CaseName, CaseBody>> = {
  async tutorial({ pkg, to }, checks) {
    const connection = await pkg.connect(to);
    try {
      const reply = new TextDecoder().decode(await connection.echo("Hello, server!", { timeout: 10_000 }));
      if (reply !== "Hello, server!") fail(`got ${JSON.stringify(reply)} back`);
      await connection.closeWrite();
      await deadline(connection.closed, 10_000, "the server's EOF after the exchange");
      checks.push(`Received response from server: ${reply}`);
    } finally {
      await connection.close();
    }
  },

  async payloads(target, checks) {
    for (const size of target.params.payloads) {
      const { sent, received, bytes } = await streamThrough(target, size, 0);
      if (bytes !== size) fail(`${label(size)}: ${bytes} of ${size} bytes came back`);
      if (sent !== received) fail(`${label(size)}: sha256 differs (sent ${sent}, got ${received})`);
      checks.push(`${label(size)} sha256 ${sent.slice(0, 12)} ok`);
    }
  },

  async pipelining({ pkg, to }, checks) {
    const connection = await pkg.connect(to);
    try {
      const payloads = Array.from({ length: 1000 }, () => randomBytes(1 + Math.floor(Math.random() * 8192)));
      const order: number[] = [];
      // All 1,000 calls are issued before any echo returns: they are in flight together.
      const replies = await deadline(
        Promise.all(
          payloads.map(async (payload, i) => {
            const reply = await connection.echo(payload);
            order.push(i);
            return reply;
          }),
        ),
        60_000,
        "1,000 pipelined echoes",
      );
      replies.forEach((reply, i) => {
        if (!sameBytes(reply, payloads[i] as Uint8Array)) fail(`echo #${i} came back different`);
      });
      if (order.some((value, i) => value !== i)) fail("echoes resolved out of call order");
      await connection.closeWrite();
      await deadline(connection.closed, 10_000, "EOF after the pipelined echoes");
      const total = payloads.reduce((sum, payload) => sum + payload.byteLength, 0);
      checks.push(`1000 echoes (${label(total)}) matched in order`);
    } finally {
      await connection.close();
    }
  },

  async "half-close"(target, checks) {
    for (const [size, readDelay] of [
      [target.params.halfClose, 0],
      [target.params.halfCloseLate, target.params.lateReadMs],
    ] as const) {
      const { sent, received, bytes } = await streamThrough(target, size, readDelay);
      const what = `${label(size)}, reading after ${readDelay} ms`;
      if (bytes !== size) fail(`${what}: ${bytes} of ${size} bytes came back before EOF`);
      if (sent !== received) fail(`${what}: sha256 differs`);
      checks.push(`${what}: exactly ${size} bytes, then EOF`);
    }
  },

  async "zero-byte"({ pkg, to }, checks) {
    const connection = await pkg.connect(to);
    try {
      await connection.closeWrite();
      const chunk = await deadline(connection.read(), 10_000, "EOF after an immediate half-close");
      if (chunk !== null) fail(`got ${chunk.byteLength} bytes from a session that sent none`);
      await deadline(connection.closed, 10_000, "the connection to close");
      checks.push("immediate half-close: clean EOF, no bytes");
    } finally {
      await connection.close();
    }
  },

  async "many-connections"({ pkg, to, params }, checks) {
    const count = params.connections;
    const one = async () => {
      const connection = await pkg.connect({ ...to, timeout: 30_000 });
      try {
        const payload = randomBytes(1 + Math.floor(Math.random() * 4096));
        const reply = await connection.echo(payload, { timeout: 30_000 });
        if (!sameBytes(reply, payload)) fail("an echo came back different");
        await connection.closeWrite();
        await connection.closed;
      } finally {
        await connection.close();
      }
    };
    const outcomes = await deadline(
      Promise.allSettled(Array.from({ length: count }, one)),
      60_000,
      `${count} connections`,
    );
    const failures = outcomes.filter((outcome) => outcome.status === "rejected");
    if (failures.length > 0) {
      const first = (failures[0] as PromiseRejectedResult).reason;
      fail(`${failures.length} of ${count} connections failed; first: ${describe(first, codeOf(pkg, first))}`);
    }
    checks.push(`${count} concurrent connections, all byte-exact`);
  },

  async "client-detection"(target, checks) {
    // Against the negative control, which drops its queued echo at our half-close:
    // the client must say so (a short echo), not hang and not report success.
    try {
      const { bytes } = await streamThrough(target, target.params.halfCloseLate, target.params.lateReadMs);
      fail(`the client reported success (${bytes} bytes) against a server that drops echoes`);
    } catch (error) {
      if (error instanceof CaseFailure) throw error;
      const code = codeOf(target.pkg, error);
      if (code !== "EPROTO") fail(`expected EPROTO (short echo), got ${describe(error, code)}`);
      checks.push(`${code}: ${(error as Error).message}`);
    }
  },

  async errors({ pkg, to, params }, checks) {
    // The client-only row is TCP on 127.0.0.1: bad ports need a TCP address.
    const { hostname } = to;
    const expectCode = async (what: string, code: string, attempt: () => Promise<unknown>) => {
      try {
        await deadline(attempt(), 10_000, what);
      } catch (error) {
        if (error instanceof CaseFailure) throw error;
        const got = codeOf(pkg, error);
        if (got !== code) fail(`${what}: expected ${code}, got ${describe(error, got)}`);
        checks.push(`${what}: ${code}`);
        return;
      }
      fail(`${what}: succeeded, expected ${code}`);
    };
    await expectCode("refused connection", "ECONNREFUSED", () => pkg.connect({ hostname, port: params.refusedPort }));
    for (const bad of [70000, -1, 1.5, "abc"]) {
      await expectCode(`port ${JSON.stringify(bad)}`, "EINVAL", () =>
        pkg.connect({ hostname, port: bad as unknown as number }),
      );
    }
    // `port` is a server that resets every connection once it has read from it.
    await expectCode("server reset mid-echo", "ECONNRESET", async () => {
      const connection = await pkg.connect(to);
      try {
        await connection.echo(randomBytes(64 * 1024));
      } finally {
        await connection.close();
      }
    });
    await expectCode("echo after close()", "ECLOSED", async () => {
      const connection = await pkg.connect(to);
      await connection.close();
      await connection.echo("too late");
    });
  },

  async "graceful-close"({ pkg, params }, checks) {
    const { counting } = params;
    if (!counting) fail("no counting server: this case runs on the client-only row");
    const hostname = "127.0.0.1";
    for (const size of CLOSE_SIZES) {
      const connection = await pkg.connect({ hostname, port: counting.port });
      const clientPort = (connection.localAddress as { port: number }).port;
      // Every other chunk by write() and by echo(), none awaited: close() comes
      // while all of it is still queued in the client.
      const writes: Promise<void>[] = [];
      const echoes: Promise<Uint8Array>[] = [];
      for (let offset = 0, i = 0; offset < size; offset += CHUNK, i++) {
        const chunk = randomBytes(Math.min(CHUNK, size - offset));
        if (i % 2 === 0) writes.push(connection.write(chunk));
        else echoes.push(connection.echo(chunk));
      }
      const settled = Promise.allSettled([...writes, ...echoes]);
      await deadline(connection.close(), 15_000, `close() with ${label(size)} queued`);
      await deadline(connection.closed, 1000, "closed after close() resolved");
      const outcomes = await deadline(settled, 1000, "the writes and echoes to settle");
      const writeFailures = outcomes.slice(0, writes.length).filter((outcome) => outcome.status === "rejected");
      if (writeFailures.length > 0) {
        const first = (writeFailures[0] as PromiseRejectedResult).reason;
        fail(`${writeFailures.length} write() calls rejected: ${describe(first, codeOf(pkg, first))}`);
      }
      for (const outcome of outcomes.slice(writes.length)) {
        const code = outcome.status === "rejected" ? codeOf(pkg, outcome.reason) : "resolved";
        if (code !== "ECLOSED") fail(`an echo pending at close() ended ${code}, expected ECLOSED`);
      }
      const seen = await deadline(countedBy(counting.reportUrl, clientPort), 10_000, "the counting server's report");
      if (seen.end !== "fin" || seen.bytes !== size) {
        fail(`${label(size)} queued at close(): the server received ${seen.bytes} bytes, then ${seen.end}`);
      }
      checks.push(
        `${label(size)} queued at close(): the server received all ${size} bytes, then FIN; ${echoes.length} pending echoes ECLOSED`,
      );
    }
    const drainTimeout = 500;
    const connection = await pkg.connect({ hostname, port: counting.stalledPort, drainTimeout });
    const writes = Array.from({ length: STALLED_BYTES / CHUNK }, () => connection.write(randomBytes(CHUNK)));
    const settled = Promise.allSettled(writes);
    const started = performance.now();
    await deadline(connection.close(), drainTimeout + 1000, `close() against a server that never reads`);
    const ms = Math.round(performance.now() - started);
    // Earlier than the bound would mean the queue was dropped, not drained.
    if (ms < drainTimeout - 50) fail(`close() gave up after ${ms} ms, before drainTimeout ${drainTimeout}`);
    const code = await connection.closed.then(
      () => "resolved",
      (error) => codeOf(pkg, error),
    );
    if (code !== "ETIMEDOUT") fail(`closed after a drain that timed out: ${code}, expected ETIMEDOUT`);
    await deadline(settled, 1000, "the writes to settle");
    checks.push(`a server that never reads: close() returned after ${ms} ms (drainTimeout ${drainTimeout}), ETIMEDOUT`);
  },
};

/** `graceful-close`: what a counting server saw of the connection from `clientPort`. */
async function countedBy(reportUrl: string, clientPort: number): Promise<{ bytes: number; end: string }> {
  const response = await fetch(`${reportUrl}/${clientPort}`);
  return (await response.json()) as { bytes: number; end: string };
}

// --- faults ---

/** Hard limit per fault: a hang is never a pass. */
const FAULT_DEADLINE = 30_000;

/**
 * `pnpm matrix --faults`: streams `size` bytes with half-close through one
 * fault proxy. `echo` expects every byte back, then EOF; a code expects exactly
 * that failure (see the EPROTO exception below).
 */
async function throughFault(pkg: RuntimePackage, to: ConnectOptions, fault: FaultTarget, checks: string[]) {
  const progress = { bytes: 0, halfClosed: false };
  const target: Target = { pkg, to: { ...to, port: fault.port }, params: {} as CaseParams };
  try {
    const { sent, received, bytes } = await deadline(
      streamThrough(target, fault.size, 0, progress),
      FAULT_DEADLINE,
      `${label(fault.size)} through ${fault.name}`,
    );
    if (fault.expect !== "echo") fail(`succeeded (${bytes} bytes back), expected ${fault.expect}`);
    if (bytes !== fault.size) fail(`${bytes} of ${fault.size} bytes came back`);
    if (sent !== received) fail("sha256 of the echo differs from what was sent");
    checks.push(`${label(fault.size)} byte-exact, then EOF`);
  } catch (error) {
    if (error instanceof CaseFailure) throw error;
    const code = codeOf(pkg, error);
    if (!expectedFailure(fault.expect, code, progress))
      fail(`expected ${fault.expect}, got ${describe(error, code)} after ${progress.bytes} bytes`);
    checks.push(`${code} after ${label(progress.bytes)} back${progress.halfClosed ? " (had half-closed)" : ""}`);
  }
}

// --- streaming ---

/**
 * `streamHalfClose` on a fresh connection, bounded in time (longer for more
 * bytes), and the connection's close after EOF.
 */
async function streamThrough(
  { pkg, to }: Target,
  size: number,
  readDelay: number,
  progress: Progress = { bytes: 0, halfClosed: false },
) {
  const connection = await pkg.connect(to);
  try {
    const streamed = await deadline(
      streamHalfClose(connection, size, progress, readDelay),
      Math.round(20_000 + size / 50_000),
      `${label(size)} to come back`,
    );
    await deadline(connection.closed, 10_000, "the connection to close after EOF");
    return streamed;
  } finally {
    await connection.close();
  }
}

// --- utils ---

const CHUNK = 64 * 1024;
/** `graceful-close`: one more than a write, and more than the loopback socket buffers hold. */
const CLOSE_SIZES = [320 * 1024, 16 * 1024 * 1024];
/** Written to a server that never reads: more than the kernel buffers take, so some stays queued. */
const STALLED_BYTES = 32 * 1024 * 1024;

function describe(error: unknown, code: string): string {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return `${code} (${message})`;
}

// --- main ---

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const pkg = await loadPackage(argument(args, "package") ?? "", (specifier) => import(specifier));
  const base: Target = {
    pkg,
    to: JSON.parse(argument(args, "target") ?? "{}") as ConnectOptions,
    params: JSON.parse(argument(args, "params") ?? "{}") as CaseParams,
  };
  if (base.params.faults) {
    // All faults at once, one connection each: each proxy is its own network.
    await Promise.all(
      base.params.faults.map((fault) => runCase(fault.name, (checks) => throughFault(pkg, base.to, fault, checks))),
    );
    return;
  }
  for (const name of (argument(args, "cases") ?? "").split(",").filter(Boolean)) {
    const body = CASES[name as CaseName];
    await runCase(name, body ? (checks) => body(base, checks) : undefined);
  }

  /** Runs one case and prints its `DriverResult` line; never throws. */
  async function runCase(name: string, body: ((checks: string[]) => Promise<void>) | undefined): Promise<void> {
    const started = performance.now();
    const checks: string[] = [];
    let result: DriverResult;
    if (!body) result = { case: name, ok: false, ms: 0, checks, failure: `unknown case ${name}` };
    else {
      try {
        await body(checks);
        result = { case: name, ok: true, ms: Math.round(performance.now() - started), checks };
      } catch (error) {
        const code = codeOf(pkg, error);
        const failure = error instanceof CaseFailure ? error.message : describe(error, code).replace(/\s+/g, " ");
        // A check of the case failed, or our client found the echo wrong (EPROTO):
        // the case's verdict. Anything else (refused, reset, timed out) kept it from one.
        const verdict = error instanceof CaseFailure || code === "EPROTO";
        result = { case: name, ok: false, ms: Math.round(performance.now() - started), checks, failure, verdict };
      }
    }
    await printLine(result);
  }
}

runDriver(main);
