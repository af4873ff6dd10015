/**
 * The conformance cases and the sizes they use. Plain data, no runtime APIs: the
 * runner, the vitest suite, the report and the client driver (which runs on
 * Node, Bun and Deno) all read it.
 */

import type { Transport } from "./transports.ts";

export type CaseName =
  | "tutorial"
  | "payloads"
  | "pipelining"
  | "half-close"
  | "zero-byte"
  | "many-connections"
  | "backpressure"
  | "resets"
  | "reset-before-accept"
  | "slow-peer"
  | "client-detection"
  | "errors"
  | "client-timeouts"
  | "graceful-close"
  | "max-connections"
  | "max-per-address"
  | "idle-timeout"
  | "emfile"
  | "drain";

/**
 * Who plays the client in a case:
 * - `api`: our clients only (the driver), because the case needs the `EchoConnection` API;
 * - `pipe`: our clients and the real peer clients (nc, ncat, socat, Python), for
 *   what any byte pipe can do: send stdin, half-close at EOF, print the echo;
 * - `harness`: a raw `node:net` client inside the runner, for cases that test the
 *   server alone (the client column is "harness");
 * - `cli`: our clients as their command line (`send`), run by the runner, for
 *   what a user sees: exit codes and output.
 */
export type Players = "api" | "pipe" | "harness" | "cli";

/** Which servers a case runs against. */
export type Rows = "servers" | "ours" | "control" | "client-only";

export interface CaseSpec {
  /** A `CaseName`, or a fault's name under `--faults`. */
  readonly name: string;
  /** The behaviour it proves, as a sentence: the test's name. */
  readonly proves: string;
  /** Why the case exists: the bug it would catch. */
  readonly reason: string;
  readonly players: Players;
  readonly rows: Rows;
  /** The transports it applies to (default all). */
  readonly transports?: readonly Transport[];
  /** Against the peer servers, only these clients run the case (see `many-connections`). */
  readonly peerServerClients?: readonly string[];
  /**
   * What the case reads: `connection`, only what a client sees; `process`, the
   * server's process too (/proc memory, descriptors, the connection table, CPU
   * ticks, signals), which a server reached by URL (`--server-at`) does not give.
   */
  readonly needs: "connection" | "process";
  /** With `needs: "process"`: what the case checks on a server with no process to read; without it the case is n/a there. */
  readonly withoutProcess?: string;
}

export const CASES: readonly CaseSpec[] = [
  {
    name: "tutorial",
    proves: 'the tutorial exchange: "Hello, server!" round-trips',
    reason: "The first thing anyone tries; if this fails nothing else matters.",
    players: "pipe",
    rows: "servers",
    needs: "connection",
  },
  {
    name: "payloads",
    proves:
      "payloads of 0 B, 1 B, 64 KiB, 16 MiB (and 256 MiB) come back byte-exact, hash-compared with a concurrent reader",
    reason:
      "Catches truncation, reordering and corruption at every scale, including partial writes (Deno's write may take part of a buffer; Bun's write returns a count) that only show past the socket buffer size.",
    players: "pipe",
    rows: "servers",
    needs: "connection",
  },
  {
    name: "pipelining",
    proves: "1,000 echoes of random sizes in flight on one connection are each matched in order",
    reason:
      "A client must split one byte stream back into the calls that produced it; a server must not reorder or coalesce-and-drop under many small writes.",
    players: "api",
    rows: "servers",
    needs: "connection",
  },
  {
    name: "half-close",
    proves: "after a half-close the client receives exactly N bytes then EOF, also when it starts reading 500 ms late",
    reason:
      "The server must finish echoing after the client's FIN. Node's allowHalfOpen defaults to false and Bun's end() is a full close: both drop the queued echo, which only shows when the queue is full as the FIN arrives (the late reader).",
    players: "pipe",
    rows: "servers",
    needs: "connection",
  },
  {
    name: "zero-byte",
    proves: "a session that connects and half-closes at once ends with a clean EOF",
    reason:
      "The empty session is where 'wait for data before anything else' servers hang, and where clients mistake EOF for an error.",
    players: "pipe",
    rows: "servers",
    needs: "connection",
  },
  {
    name: "many-connections",
    proves: "500 concurrent connections each echo byte-exact",
    reason:
      "Accept loops that serialize clients, small listen backlogs and per-connection leaks only show with many sockets at once, on both ends.",
    players: "api",
    rows: "servers",
    needs: "connection",
    // socat and xinetd fork (and socat execs cat) per connection: one client
    // proves they take 500 at once; five would only time fork() on 2 cores.
    peerServerClients: ["node"],
  },
  {
    name: "backpressure",
    proves: "a client that writes 200 MB without reading stalls, and the server's RSS stays bounded",
    reason:
      "An echo server that keeps reading while it cannot write (the naive on('data', write) server) buffers without limit: one slow peer exhausts its memory. Measured from /proc, not from the server's own account.",
    players: "harness",
    rows: "servers",
    needs: "process",
    withoutProcess:
      "the client that writes without reading stalls before the server has taken 64 MiB, then gets every byte back (no RSS to read)",
  },
  {
    name: "resets",
    proves: "after 100 clients reset mid-stream (RST) the server serves the next client and holds no connection",
    reason:
      "A reset is routine for a server. Node crashes on a socket 'error' without a listener; Bun crashes on a rejected async handler; leaked sockets show as connections that never close.",
    players: "harness",
    rows: "servers",
    needs: "process",
    withoutProcess:
      "after the resets the server still serves the next client byte-exact (no connection table or descriptors to read)",
    // A Unix socket has no RST to send.
    transports: ["tcp4", "tcp6", "tls"],
  },
  {
    name: "reset-before-accept",
    proves:
      "300 clients that connect, send 200 KiB and reset while the server is stopped (SIGSTOP) are accepted without a stall once it resumes; then a new client is served byte-exact within 1 s, and no connection is held",
    reason:
      "A connection reset in the backlog makes accept fail for that connection only (Deno's accept rejects with NotConnected): an accept loop that backs off on every error, as it should on EMFILE, lets one peer stall the server for minutes.",
    players: "harness",
    rows: "servers",
    needs: "process",
    // A Unix socket has no RST to send. TLS accepts the TCP connection first, on
    // another path in each runtime; TCP over IPv6 takes the same path as IPv4.
    transports: ["tcp4", "tls"],
  },
  {
    name: "slow-peer",
    proves: "a client sending one byte a second for a few seconds gets every byte back promptly",
    reason:
      "Servers that wait to fill a buffer before echoing, or cut slow peers with a coarse idle timer (Bun's timeout ticks in 4 s steps), fail here.",
    players: "harness",
    rows: "servers",
    needs: "connection",
  },
  {
    name: "client-detection",
    proves: "against the broken server the client reports a short echo with a clear error and never hangs",
    reason:
      "A suite whose clients would accept a short echo proves nothing: our clients must catch what the negative control gets wrong.",
    players: "api",
    rows: "control",
    needs: "connection",
  },
  {
    name: "errors",
    proves: "a refused connection, a bad port, a server reset and an echo after close each report core's code",
    reason:
      "One error code set across runtimes is the contract: ECONNREFUSED, EINVAL before any syscall (Node would take 'abc' as a socket path), ECONNRESET, ECLOSED.",
    players: "api",
    rows: "client-only",
    needs: "connection",
  },
  {
    name: "client-timeouts",
    proves:
      "send --timeout 2000, with a message and with -, against a silent server and one that never closes: exit 1 with ETIMEDOUT within 2 s + 1 s of the connect, after printing what came back",
    reason:
      "A client whose timeout covers only the connect hangs for ever on a server that reads and never answers, or echoes and never closes after the half-close (seen with ncat --exec /bin/cat deadlocking); a script calling it hangs with it.",
    players: "cli",
    rows: "client-only",
    needs: "connection",
  },
  {
    name: "graceful-close",
    proves:
      "close() right after writing delivers every byte before the FIN (counted by the server), and against a server that never reads it gives up after drainTimeout",
    reason:
      "close() is the call everyone makes last: Deno's adapter dropped the bytes still queued, Node's and Bun's waited for them without limit, so the same program lost data on one runtime and hung on two. One behaviour, bounded, on every client.",
    players: "api",
    rows: "client-only",
    needs: "connection",
  },
  {
    name: "max-connections",
    proves:
      'with --max-connections 3 the 4th concurrent connection is closed at once, the first 3 still echo, and the log says "limit"',
    reason:
      "A limit must cost the excess connection, not the server: one that stops accepting leaves clients hanging in the backlog, one that closes the wrong socket or crashes loses accepted work, and an uncounted rejection is invisible to the operator.",
    players: "harness",
    rows: "ours",
    needs: "connection",
  },
  {
    name: "max-per-address",
    proves:
      "with --max-connections-per-address 1 a second connection from 127.0.0.1 is closed at once while one from 127.0.0.2 echoes",
    reason:
      "One host must not take every slot, and the limit must count per remote address, not in total: a server that keys it wrongly refuses the second host or admits the second connection. TCP over IPv4 only: loopback has one IPv6 address, and Unix clients have none.",
    players: "harness",
    rows: "ours",
    needs: "connection",
    transports: ["tcp4"],
  },
  {
    name: "idle-timeout",
    proves:
      "with --idle-timeout 1000 a silent connection is closed within 1 s + 1 s, and one echoing a byte every 400 ms is not",
    reason:
      "Idle connections are how a server runs out of descriptors. The bound is the issue's (T + 1 s): Bun's socket timeout ticks in 4 s steps, and a timer that is not reset by traffic closes busy clients.",
    players: "harness",
    rows: "ours",
    needs: "connection",
  },
  {
    name: "emfile",
    proves:
      "under prlimit --nofile=64, 120 connection attempts leave the server's CPU idle; it serves a new client once descriptors free up, and never exits",
    reason:
      "Out of descriptors, accept() fails at once and the connection stays in the backlog: a loop that retries spins a core, and Deno's `for await` accept loop simply ends (the server stops serving but stays up).",
    players: "harness",
    rows: "ours",
    needs: "process",
  },
  {
    name: "drain",
    proves:
      "after SIGTERM new connections are refused at once, an echo in progress finishes byte-exact after its half-close, and the server exits 0",
    reason:
      "Graceful shutdown is our CLI's promise (SIGTERM and SIGINT drain): servers that stop mid-echo lose data on every deploy, and servers that keep accepting while draining never finish.",
    players: "harness",
    rows: "ours",
    needs: "process",
  },
];

export const CASE_NAMES: readonly string[] = CASES.map((spec) => spec.name);

/**
 * A runtime bug the matrix shows but our code cannot fix: the case still runs,
 * and it must still fail the way recorded here. A different failure is a real
 * one, and a pass fails too (the gap is gone: remove it), so neither hides.
 */
export interface KnownGap {
  readonly server?: string;
  readonly client?: string;
  /** Only over this transport; every transport when absent. */
  readonly transport?: string;
  /** Only on these versions of the server's or client's runtime (a prefix: `1.3.`); every version when absent. */
  readonly serverVersion?: string;
  readonly clientVersion?: string;
  readonly case: string;
  readonly why: string;
  /** How the case fails while the bug is there: its failure message matches. */
  readonly fails: RegExp;
  /** The bug bites on some runs only (a race): a pass is not taken as the bug gone. */
  readonly intermittent?: true;
}

/** A client (harness, peer tool or driver) still waiting for an EOF that never came, when its deadline hit. */
const WAITED_FOR_EOF = /timed out after \d+ ms|did not finish within \d+ ms|hung and was killed/;
/** A peer client that got nothing back, or the echo cut short. */
const SHORT_ECHO = /printed "", expected|got "" back|: \d+ of \d+ bytes came back/;

/** Our driver's read to EOF that ended with the echo cut short. */
const LOST_AFTER_HALF_CLOSE = /\d+ of \d+ bytes came back/;

export const KNOWN_GAPS: readonly KnownGap[] = [
  {
    server: "node@bun",
    case: "emfile",
    fails: /its accept loop spins/,
    why: "Bun's node:net listener retries accept() at once on EMFILE and spins a core (usockets has no back-off: https://github.com/oven-sh/bun/pull/32705); Bun.listen, which the bun package uses, passes",
  },
  {
    server: "node@deno",
    case: "emfile",
    fails: /no new client was served within 10 s/,
    why: "Deno's node:net listener stops accepting for good after EMFILE (the process stays up and serves nothing, no error is emitted; no upstream issue found); Deno.listen, which the deno package uses, passes",
  },
  // Deno 2.9.6's node:tls: a FIN (or close_notify) that arrives while the socket
  // is paused never becomes 'end', so whoever waits for that EOF waits forever.
  // Reproduced without our code (a node:tls server that pauses 10 ms on its first
  // chunk, a client sending 1 MB then end(): no 'end'); the node package pauses
  // at its high-water mark, so only the cases large enough to pause fail. The
  // deno package (Deno.listenTls/Deno.connectTls) passes them.
  ...["payloads", "half-close"].map((name) => ({
    server: "node@deno",
    transport: "tls",
    case: name,
    fails: WAITED_FOR_EOF,
    why: "Deno's node:tls loses a FIN that arrives while the socket is paused ('end' never fires), and the node package pauses at its high-water mark; the deno package passes",
  })),
  {
    server: "node@deno",
    transport: "tls",
    case: "backpressure",
    fails: /never stalled: .* RSS grew by/,
    why: "Deno's node:tls keeps reading while the socket is paused (the server took all 200 MB from a client that reads nothing, RSS +188 MiB); the deno package stalls within its high-water mark",
  },
  {
    server: "node@deno",
    transport: "tls",
    case: "resets",
    fails: /the server still holds \d+ connection\(s\)/,
    why: "over Deno's node:tls, 11 connections the clients reset were still held 10 s later, where the same code over Deno's node:net lets go of all of them; the deno package passes",
  },
  ...["payloads", "half-close", "client-detection"].map((name) => ({
    client: "node@deno",
    transport: "tls",
    case: name,
    fails: WAITED_FOR_EOF,
    // Its 1 MiB with a late read pauses only on some runs: 1 pass in 3 seen.
    ...(name === "client-detection" ? { intermittent: true as const } : {}),
    why: "Deno's node:tls loses a FIN that arrives while the socket is paused ('end' never fires), and the node package pauses while its reader is behind; the deno package passes",
  })),
  // Between two peers no one here wrote: ncat half-closes with a bare FIN (no
  // close_notify), and socat 1.7.4 on OpenSSL 3 takes that as a fatal
  // "unexpected eof while reading": its next SSL_write fails and it exits, so
  // the echo stops there (socat -d -d logs it). Our servers treat it as EOF and pass.
  ...["tutorial", "payloads", "half-close"].map((name) => ({
    server: "socat",
    client: "ncat",
    transport: "tls",
    case: name,
    fails: SHORT_ECHO,
    why: "ncat half-closes TLS with a bare FIN; socat 1.7.4 on OpenSSL 3 takes it as a fatal 'unexpected eof while reading' and stops echoing, so nothing or a truncated echo comes back (peer x peer; every server of ours echoes ncat over TLS)",
  })),
  // Older runtimes' node:net clients: reproduced without our code (a node:net
  // client with allowHalfOpen writes one byte, then end(): 'end' comes with no
  // echo on Bun 1.3.14 and Deno 2.5.7, the byte on Bun 1.4.5 and Deno 2.9.6).
  ...["payloads", "half-close"].flatMap((name) => [
    {
      client: "node@bun",
      clientVersion: "1.3.",
      case: name,
      why: "Bun 1.3's node:net client loses the echo that arrives after its half-close (end() with allowHalfOpen: 'end' with no data); fixed by Bun 1.4.5",
      fails: LOST_AFTER_HALF_CLOSE,
    },
    {
      client: "node@deno",
      clientVersion: "2.5.",
      case: name,
      why: "Deno 2.5's node:net client loses the echo that arrives after its half-close (end() with allowHalfOpen: 'end' with no data); fixed by Deno 2.9.6, and the deno package passes on 2.5",
      fails: LOST_AFTER_HALF_CLOSE,
    },
  ]),
  // The udp grid (src/udp.ts): socat 1.7.4.4's UDP4-RECVFROM,fork, reproduced with
  // three Python sockets and no code of ours.
  {
    server: "socat",
    transport: "udp",
    case: "burst",
    fails: /another source got [0-4]\/5 after the burst/,
    // A race with socat's forks: in 4 runs here the other source got 0/5, 1/5, 5/5 and 5/5.
    intermittent: true,
    why: "socat forks a process per datagram (91 to 98 answers to the 10,000 in 2 to 5 s here), so after a burst another source waits behind it on most runs",
  },
  {
    server: "socat",
    transport: "udp",
    case: "empty",
    fails: /^send --udp of 0 bytes: exit [1-9]|^a 0-byte datagram: \{"answered":false/,
    why: "socat's UDP4-RECVFROM,fork takes an empty datagram for EOF: no answer, and after a few it answers no source at all (its forked children hang)",
  },
  ...["reset-client", "reset-server"].map((name) => ({
    client: "node@deno",
    case: name,
    fails: /expected ECONNRESET, got EPIPE/,
    why: "Deno's node:net reports a write to a reset connection as EPIPE where Node reports ECONNRESET, and core passes EPIPE through; the deno package (Deno.connect) reports ECONNRESET",
  })),
];

/** `node@bun-1.4.5` is `node@bun` at 1.4.5, `node@22.23.5` is `node` at 22.23.5 (`--runtimes` names). */
function familyOf(name: string): string {
  return /^(.*?)(?:[@-]\d+\.\d+\.\d+)?$/.exec(name)![1]!;
}

/** The version in a `--runtimes` name; the pinned participants' names carry none. */
function versionOf(name: string): string | undefined {
  return /[@-](\d+\.\d+\.\d+)$/.exec(name)?.[1];
}

const onVersion = (prefix: string | undefined, name: string) =>
  prefix === undefined || (versionOf(name)?.startsWith(prefix) ?? false);

/** The known gap of a case in this cell, if it has one. */
export function knownGap(server: string, client: string, name: string, transport = "tcp4"): KnownGap | undefined {
  return KNOWN_GAPS.find(
    (gap) =>
      (gap.server ?? familyOf(server)) === familyOf(server) &&
      (gap.client ?? familyOf(client)) === familyOf(client) &&
      (gap.transport ?? transport) === transport &&
      onVersion(gap.serverVersion, server) &&
      onVersion(gap.clientVersion, client) &&
      gap.case === name,
  );
}

/** What is wrong with a known gap's outcome (it passed, or failed another way); undefined while it holds. */
export function gapBroken(gap: KnownGap, result: { ok: boolean; failure?: string }): string | undefined {
  if (result.ok) return gap.intermittent ? undefined : "now PASSES: remove it from KNOWN_GAPS in src/plan.ts";
  if (!gap.fails.test(result.failure ?? ""))
    return `fails, but not as KNOWN_GAPS records (${gap.fails}): a real failure`;
  return undefined;
}

/** What a driver or harness case is given: the sizes of one cell. */
export interface CaseParams {
  /** `payloads` sizes, in bytes. */
  readonly payloads: readonly number[];
  /** `half-close`: bytes read at once, and bytes read only after `lateReadMs`. */
  readonly halfClose: number;
  readonly halfCloseLate: number;
  readonly lateReadMs: number;
  readonly connections: number;
  /** `errors`: a port nothing listens on. */
  readonly refusedPort: number;
  /** `graceful-close`: the client-only row's counting servers (see launchers.ts). */
  readonly counting?: { readonly port: number; readonly stalledPort: number; readonly reportUrl: string };
  /** `--faults`: the proxies to stream through, all at once. */
  readonly faults?: readonly FaultTarget[];
}

/** One fault proxy, as the driver sees it. */
export interface FaultTarget {
  readonly name: string;
  readonly port: number;
  /** `echo`: byte-exact, then EOF; otherwise the `EchoError` code the client must report. */
  readonly expect: string;
  readonly size: number;
}

/** One line of driver output. */
export interface DriverResult {
  readonly case: string;
  readonly ok: boolean;
  readonly ms: number;
  /** What was verified, for the report. */
  readonly checks: readonly string[];
  readonly failure?: string;
  /** The failure is the case's own verdict (a check failed), not an error that kept it from running. */
  readonly verdict?: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export interface Profile {
  readonly name: "full" | "quick";
  readonly payloads: readonly number[];
  /** The 256 MiB payload, only where `bigPayloadOn` says (it dominates the run time). */
  readonly bigPayload: number;
  readonly bigPayloadOn: "diagonal" | "nowhere";
  readonly halfClose: number;
  readonly halfCloseLate: number;
  readonly connections: number;
  readonly backpressureBytes: number;
  readonly resets: number;
  readonly slowPeerBytes: number;
}

const FULL: Profile = {
  name: "full",
  payloads: [0, 1, 64 * KiB, 16 * MiB],
  bigPayload: 256 * MiB,
  bigPayloadOn: "diagonal",
  halfClose: 1 * MiB,
  // Larger than the loopback socket buffers a reader that has not started can
  // hold, so the server's queue is full when the FIN arrives.
  halfCloseLate: 16 * MiB,
  connections: 500,
  backpressureBytes: 200 * 1000 * 1000,
  resets: 100,
  slowPeerBytes: 4,
};

/**
 * `full` is what `pnpm matrix` runs; `quick` is the vitest suite inside `pnpm
 * test`, with the same cases and the same counts but without the 256 MiB payload.
 */
export const PROFILES: Record<Profile["name"], Profile> = {
  full: FULL,
  quick: { ...FULL, name: "quick", bigPayloadOn: "nowhere" },
};

export function formatSize(size: number): string {
  if (size >= MiB) return `${Math.round(size / MiB)} MiB`;
  if (size >= KiB) return `${Math.round(size / KiB)} KiB`;
  return `${size} B`;
}
