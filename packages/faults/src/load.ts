/**
 * The soak: a mixed, rate-bounded load against one runtime's server process,
 * sampling its RSS and descriptors over time. Fails on any lost or wrong byte,
 * any unexpected error, a descriptor not given back, or RSS growth past a bound.
 *
 * Clients are `@tcp-echo/node` connections (which check every echoed byte) and,
 * for resets, raw node:net sockets. The load, per session started:
 * - 50% echo: 1-5 pipelined echoes of 1 B-64 KiB, half-close, EOF;
 * - 20% stream: 256 KiB-1 MiB through write()/read(), half-close, sha256 compared;
 * - 15% reset: 32 KiB written, then a reset (RST) once the echo flows;
 * - 15% slow: three small writes 50 ms apart, half-close, EOF.
 */

import { createHash, randomBytes } from "node:crypto";
import * as net from "node:net";
import { errorCodeOf } from "@tcp-echo/core/tools";
import { connect } from "@tcp-echo/node";
import { fdCount, MiB, rssOf } from "@tcp-echo/testkit";
import { type RuntimeName, startServer } from "./servers.ts";

export interface SoakOptions {
  readonly server: RuntimeName;
  readonly seconds: number;
  /** Sessions started per second, at most. Default 40. */
  readonly rate?: number;
  /** Sessions in flight at most; a tick with no room starts none. Default 32. */
  readonly concurrency?: number;
  /** RSS allowed over the post-warm-up baseline at the end, in bytes. Default 64 MiB. */
  readonly rssBound?: number;
  /** Called with each sample, as it is taken (every `seconds / 10`, at least 1 s). */
  readonly onSample?: (sample: SoakSample) => void;
}

export interface SoakSample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly sessions: number;
  readonly inFlight: number;
  /** Bytes echoed back and verified. */
  readonly bytes: number;
  /** Unexpected errors so far, by code. */
  readonly errors: Readonly<Record<string, number>>;
  /** The server's resident memory and open descriptors. */
  readonly rss: number;
  readonly fds: number;
}

export interface SoakReport {
  readonly ok: boolean;
  /** Why it failed, one sentence each. */
  readonly failures: string[];
  readonly server: RuntimeName;
  readonly seconds: number;
  readonly sessions: number;
  readonly bytes: number;
  readonly resets: number;
  readonly errors: Readonly<Record<string, number>>;
  /** Descriptors of the idle server before the load, and after it drained. */
  readonly fds: { readonly before: number; readonly after: number };
  /** RSS at the end of the warm-up (the first 10%, at least 2 s), its peak, and after the load drained. */
  readonly rss: { readonly baseline: number; readonly peak: number; readonly after: number; readonly bound: number };
  readonly samples: SoakSample[];
}

type Kind = "echo" | "stream" | "reset" | "slow";

function pickKind(): Kind {
  const roll = Math.random();
  if (roll < 0.5) return "echo";
  if (roll < 0.7) return "stream";
  if (roll < 0.85) return "reset";
  return "slow";
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Rejects if `promise` is not settled in `ms`: a session never hangs the soak. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(Object.assign(new Error(`${what}: no result in ${ms} ms`), { code: "EHANG" })),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** One session; resolves with the bytes verified. Throws on anything the model does not expect. */
async function session(kind: Kind, port: number): Promise<number> {
  if (kind === "reset") {
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => socket.write(randomBytes(32 * 1024)));
      socket.once("data", () => resolve());
      socket.once("close", () => reject(Object.assign(new Error("closed before any echo"), { code: "ECLOSED" })));
    });
    socket.resetAndDestroy();
    return 0;
  }
  const connection = await connect({ port, timeout: 10_000 });
  try {
    if (kind === "echo") {
      const payloads = Array.from({ length: 1 + Math.floor(Math.random() * 5) }, () =>
        randomBytes(1 + Math.floor(Math.random() * 64 * 1024)),
      );
      // The connection checks every byte (EPROTO on any difference); the compare is belt and braces.
      const replies = await Promise.all(payloads.map((payload) => connection.echo(payload)));
      replies.forEach((reply, i) => {
        if (!Buffer.from(reply).equals(payloads[i] as Buffer))
          throw Object.assign(new Error("echo differs"), { code: "EPROTO" });
      });
      await connection.closeWrite();
      await connection.closed;
      return payloads.reduce((sum, payload) => sum + payload.byteLength, 0);
    }
    if (kind === "slow") {
      let total = 0;
      for (let i = 0; i < 3; i++) {
        const reply = await connection.echo(randomBytes(16));
        total += reply.byteLength;
        await sleep(50);
      }
      await connection.closeWrite();
      await connection.closed;
      return total;
    }
    const size = 256 * 1024 + Math.floor(Math.random() * 768 * 1024);
    const sent = createHash("sha256");
    const received = createHash("sha256");
    let bytes = 0;
    const reader = (async () => {
      for (let chunk = await connection.read(); chunk; chunk = await connection.read()) {
        received.update(chunk);
        bytes += chunk.byteLength;
      }
    })();
    reader.catch(() => {});
    for (let offset = 0; offset < size; offset += 64 * 1024) {
      const chunk = randomBytes(Math.min(64 * 1024, size - offset));
      sent.update(chunk);
      await connection.write(chunk);
    }
    await connection.closeWrite();
    await reader;
    await connection.closed;
    if (bytes !== size || sent.digest("hex") !== received.digest("hex"))
      throw Object.assign(new Error(`stream: ${bytes} of ${size} bytes, or different bytes`), { code: "EPROTO" });
    return bytes;
  } finally {
    await connection.close();
  }
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const rate = options.rate ?? 40;
  const concurrency = options.concurrency ?? 32;
  const rssBound = options.rssBound ?? 64 * MiB;
  const server = await startServer(options.server, ["--stats", "1"], { timeoutMs: (options.seconds + 120) * 1000 });
  const failures: string[] = [];
  const errors: Record<string, number> = {};
  const samples: SoakSample[] = [];
  let sessions = 0;
  let resets = 0;
  let bytes = 0;
  let inFlight = 0;
  try {
    await sleep(500);
    const fdsBefore = fdCount(server.pid);
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    const warmUp = Math.max(2, options.seconds / 10);
    const sampleEvery = Math.max(1, options.seconds / 10);
    let baselineRss = 0;
    let peak = 0;
    let nextSample = sampleEvery;
    const running = new Set<Promise<void>>();
    const start = () => {
      const kind = pickKind();
      inFlight++;
      const done = within(session(kind, server.port), 30_000, kind).then(
        (verified) => {
          bytes += verified;
          if (kind === "reset") resets++;
        },
        (error: unknown) => {
          const code = (error as { code?: string }).code ?? errorCodeOf(error);
          errors[code] = (errors[code] ?? 0) + 1;
          if (failures.length < 10) failures.push(`${kind} session failed: ${code}: ${(error as Error).message}`);
        },
      );
      const tracked = done.finally(() => {
        inFlight--;
        sessions++;
        running.delete(tracked);
      });
      running.add(tracked);
    };
    // Ticks of 25 ms, each starting its share of the rate: bounded and smooth.
    const perTick = rate / 40;
    let credit = 0;
    while (elapsed() < options.seconds) {
      credit += perTick;
      for (; credit >= 1; credit--) if (inFlight < concurrency) start();
      if (baselineRss === 0 && elapsed() >= warmUp) baselineRss = rssOf(server.pid);
      if (elapsed() >= nextSample) {
        nextSample += sampleEvery;
        const sample: SoakSample = {
          t: Math.round(elapsed()),
          sessions,
          inFlight,
          bytes,
          errors: { ...errors },
          rss: rssOf(server.pid),
          fds: fdCount(server.pid),
        };
        peak = Math.max(peak, sample.rss);
        samples.push(sample);
        options.onSample?.(sample);
      }
      await sleep(25);
    }
    await Promise.all(running);
    // Every session is over on our side; the server must let every connection go.
    await server
      .statsWhere((stats) => stats.active === 0, 15_000)
      .catch(() => {
        failures.push(
          `the server still holds connections 15 s after the load stopped: ${JSON.stringify(server.stats())}`,
        );
      });
    const fdsAfter = fdCount(server.pid);
    const rssAfter = rssOf(server.pid);
    baselineRss ||= rssAfter;
    peak = Math.max(peak, rssAfter);
    if (fdsAfter > fdsBefore) failures.push(`descriptors leaked: ${fdsBefore} before the load, ${fdsAfter} after it`);
    if (rssAfter - baselineRss > rssBound)
      failures.push(
        `RSS grew ${((rssAfter - baselineRss) / MiB).toFixed(1)} MiB past its warm-up baseline (bound ${rssBound / MiB} MiB)`,
      );
    if (sessions === 0) failures.push("no session completed");
    return {
      ok: failures.length === 0,
      failures,
      server: options.server,
      seconds: options.seconds,
      sessions,
      bytes,
      resets,
      errors,
      fds: { before: fdsBefore, after: fdsAfter },
      rss: { baseline: baselineRss, peak, after: rssAfter, bound: rssBound },
      samples,
    };
  } finally {
    await server.stop();
  }
}
