/**
 * UDP echo without sockets or clocks (sans-IO, like `_protocol.ts` for TCP):
 * what a server decides about each datagram (the source-port guard, the token
 * buckets, the counters), how a client matches the datagrams that come back to
 * the echoes it has in flight, and how `ping --udp` tells replies apart. The
 * caller passes `now` (ms); every runtime shares this file and its tests run
 * without the network or timers.
 */

import type { DatagramDropReason, DatagramRateLimit, DatagramServerStats } from "./types.ts";

/** The largest UDP payload each family carries: 65,535 less the IP and UDP headers (IPv6's header is not in its payload length). */
export const MAX_DATAGRAM = { IPv4: 65_507, IPv6: 65_527 } as const;

/**
 * Source ports below this are dropped unless allowed: they are the well-known
 * services (echo 7, chargen 19, daytime 13...), and answering them is how two
 * reflectors are made to answer each other forever (CVE-1999-0103). OpenBSD's
 * inetd drops them for the same reason.
 */
export const PRIVILEGED_PORTS = 1024;

export const DATAGRAM_DEFAULTS = {
  /** One source address: a thousand datagrams and 1 MiB a second, each bucket one second deep. */
  sourceRateLimit: { datagramsPerSecond: 1_000, bytesPerSecond: 1_048_576 },
  /** Every source together: what the server sends out in all, whatever the spoofed sources. */
  rateLimit: { datagramsPerSecond: 20_000, bytesPerSecond: 33_554_432 },
  /** Echoes waiting for the runtime's socket before new ones are dropped. */
  sendQueue: 1_024,
  /** Source addresses with a bucket at once; beyond it the least recently seen one is forgotten. */
  maxSources: 16_384,
} as const;

export const DROP_REASONS = ["sourcePort", "sourceRate", "rate", "sendQueue", "truncated"] as const;

/**
 * A token bucket: `rate` tokens a second, at most `rate` held (one second of
 * burst), starting full. `take` spends tokens if there are enough, else spends
 * none. Time only moves forward: a clock that steps back refills nothing.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private readonly rate: number;

  constructor(rate: number, now: number) {
    this.rate = rate;
    this.tokens = rate;
    this.updatedAt = now;
  }

  /** Whether `amount` tokens are there now. */
  has(amount: number, now: number): boolean {
    this.refill(now);
    return this.tokens >= amount;
  }

  /** Spends `amount` tokens if they are there; otherwise spends none. */
  take(amount: number, now: number): boolean {
    if (!this.has(amount, now)) return false;
    this.tokens -= amount;
    return true;
  }

  /** Whether the bucket has refilled completely by `now` (nothing is lost by forgetting it). */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.rate;
  }

  private refill(now: number): void {
    if (now > this.updatedAt) {
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.updatedAt) * this.rate) / 1000);
      this.updatedAt = now;
    }
  }
}

/**
 * A rate limit in datagrams and in bytes. A datagram larger than the whole
 * byte bucket could never pass; it is charged as a full bucket instead, so the
 * limit still lets one through a second.
 */
class RateGate {
  private readonly datagrams: TokenBucket | undefined;
  private readonly bytes: TokenBucket | undefined;
  private readonly byteRate: number;

  constructor(limit: DatagramRateLimit, now: number) {
    this.datagrams = limit.datagramsPerSecond > 0 ? new TokenBucket(limit.datagramsPerSecond, now) : undefined;
    this.bytes = limit.bytesPerSecond > 0 ? new TokenBucket(limit.bytesPerSecond, now) : undefined;
    this.byteRate = limit.bytesPerSecond;
  }

  /** Both buckets pay, or neither does. */
  admit(size: number, now: number): boolean {
    const bytes = Math.min(size, this.byteRate);
    if (!(this.datagrams?.has(1, now) ?? true) || !(this.bytes?.has(bytes, now) ?? true)) return false;
    this.datagrams?.take(1, now);
    this.bytes?.take(bytes, now);
    return true;
  }

  full(now: number): boolean {
    return (this.datagrams?.full(now) ?? true) && (this.bytes?.full(now) ?? true);
  }
}

export interface DatagramPolicyConfig {
  readonly allowPrivilegedSourcePorts: boolean;
  readonly sourceRateLimit: DatagramRateLimit | false;
  readonly rateLimit: DatagramRateLimit | false;
  readonly maxSources: number;
}

/**
 * What a server does with one datagram: echo it, or drop it and why. The
 * source's own bucket is asked before the global one, so a source over its
 * limit spends none of everyone's budget. Memory is bounded: at most
 * `maxSources` buckets, the least recently seen forgotten first (a forgotten
 * source starts again with a full bucket; the global limit still holds).
 */
export class DatagramPolicy {
  private readonly config: DatagramPolicyConfig;
  private readonly sources = new Map<string, RateGate>();
  private readonly global: RateGate | undefined;

  constructor(config: DatagramPolicyConfig, now: number) {
    this.config = config;
    this.global = config.rateLimit ? new RateGate(config.rateLimit, now) : undefined;
  }

  /** Source addresses with a bucket now. */
  get trackedSources(): number {
    return this.sources.size;
  }

  decide(hostname: string, port: number, size: number, now: number): DatagramDropReason | undefined {
    if (port < PRIVILEGED_PORTS && !this.config.allowPrivilegedSourcePorts) return "sourcePort";
    const limit = this.config.sourceRateLimit;
    if (limit) {
      let gate = this.sources.get(hostname);
      if (gate) {
        // Map order is insertion order: moving the source to the end keeps the least recent first.
        this.sources.delete(hostname);
      } else {
        gate = new RateGate(limit, now);
        this.forgetOne(now);
      }
      this.sources.set(hostname, gate);
      if (!gate.admit(size, now)) return "sourceRate";
    }
    if (this.global && !this.global.admit(size, now)) return "rate";
    return undefined;
  }

  /** Makes room for one more source: the least recent goes, after any that have refilled anyway. */
  private forgetOne(now: number): void {
    if (this.sources.size < this.config.maxSources) return;
    for (const [hostname, gate] of this.sources) {
      if (this.sources.size < this.config.maxSources) return;
      if (gate.full(now)) this.sources.delete(hostname);
      else break;
    }
    if (this.sources.size >= this.config.maxSources) {
      const oldest = this.sources.keys().next().value as string;
      this.sources.delete(oldest);
    }
  }
}

/** The counters of a datagram server, as plain numbers. */
export class DatagramCounters {
  datagramsIn = 0;
  datagramsOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  readonly dropped: Record<DatagramDropReason, number> = {
    sourcePort: 0,
    sourceRate: 0,
    rate: 0,
    sendQueue: 0,
    truncated: 0,
  };
  readonly errors: Record<string, number> = {};

  snapshot(): DatagramServerStats {
    return {
      datagramsIn: this.datagramsIn,
      datagramsOut: this.datagramsOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      dropped: { ...this.dropped },
      errors: { ...this.errors },
    };
  }
}

// --- client: matching replies to echoes ---

/** What one received datagram turned out to be. */
export type MatchResult =
  /** The reply to echo `id`. */
  | { readonly kind: "reply"; readonly id: number }
  /** A second copy of a reply we were due (the echo was retransmitted, or given up on before its reply came). */
  | { readonly kind: "late" }
  /** It answers nothing in flight: echo `id`, the oldest in flight, fails with EPROTO. */
  | { readonly kind: "mismatch"; readonly id: number }
  /** It answers nothing, and nothing is in flight to blame. */
  | { readonly kind: "unexpected" };

interface InFlight {
  readonly payload: Uint8Array;
  sends: number;
}

/** How many finished echoes whose late copies are still expected are remembered. */
const LATE_MEMORY = 256;

/**
 * Matches replies to echoes by content: `echo()` sends the caller's bytes as
 * they are (no sequence number), so a reply is the echo whose payload it
 * equals, the oldest first when several are equal. A copy of a reply is
 * expected only when we caused it, by sending the echo more than once or by
 * giving up on it before its reply came; any other reply that matches nothing
 * in flight is a protocol error of the server (a reply that differs, answers
 * another request, or repeats one unasked), blamed on the oldest echo in flight.
 */
export class EchoMatcher {
  private readonly inFlight = new Map<number, InFlight>();
  /** Payloads with copies still due, oldest first. */
  private readonly due: Array<{ payload: Uint8Array; copies: number }> = [];

  get pending(): number {
    return this.inFlight.size;
  }

  sent(id: number, payload: Uint8Array): void {
    const entry = this.inFlight.get(id);
    if (entry) entry.sends++;
    else this.inFlight.set(id, { payload, sends: 1 });
  }

  /** Echo `id` is given up on (timeout, abort, close): its replies may still come. */
  abandon(id: number): void {
    const entry = this.inFlight.get(id);
    if (!entry) return;
    this.inFlight.delete(id);
    this.expect(entry.payload, entry.sends);
  }

  received(datagram: Uint8Array): MatchResult {
    for (const [id, entry] of this.inFlight) {
      if (!equal(entry.payload, datagram)) continue;
      this.inFlight.delete(id);
      this.expect(entry.payload, entry.sends - 1);
      return { kind: "reply", id };
    }
    const index = this.due.findIndex((late) => equal(late.payload, datagram));
    if (index >= 0) {
      const late = this.due[index] as { payload: Uint8Array; copies: number };
      if (--late.copies === 0) this.due.splice(index, 1);
      return { kind: "late" };
    }
    const oldest = this.inFlight.keys().next();
    if (oldest.done) return { kind: "unexpected" };
    this.inFlight.delete(oldest.value);
    return { kind: "mismatch", id: oldest.value };
  }

  private expect(payload: Uint8Array, copies: number): void {
    if (copies <= 0) return;
    this.due.push({ payload, copies });
    if (this.due.length > LATE_MEMORY) this.due.shift();
  }
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

// --- ping ---

/** Bytes of the sequence number at the start of every `ping --udp` probe. */
export const PING_HEADER = 4;

/** Probe `seq` of `size` bytes: the sequence number (big-endian), then a pattern that depends on it. */
export function pingProbe(seq: number, size: number): Uint8Array {
  const probe = new Uint8Array(size);
  new DataView(probe.buffer).setUint32(0, seq >>> 0);
  for (let i = PING_HEADER; i < size; i++) probe[i] = (seq + i) & 0xff;
  return probe;
}

/**
 * What `ping --udp` reports per reply and at the end: a reply that comes after
 * one to a later probe is out of order (reordered on the way, or late).
 */
export class PingTally {
  sent = 0;
  received = 0;
  reordered = 0;
  private highest = 0;

  reply(seq: number): { reordered: boolean } {
    this.received++;
    const reordered = seq < this.highest;
    if (reordered) this.reordered++;
    else this.highest = seq;
    return { reordered };
  }

  get lossPercent(): number {
    return this.sent === 0 ? 0 : Math.round(((this.sent - this.received) / this.sent) * 100);
  }
}
