/**
 * A run with one of everything a report must show: a pass, a failure whose message carries markup, quotes and a
 * control character, a known gap, an n/a case, the negative control caught and not caught, a cell that could not
 * run, a participant whose name is HTML, and a second transport.
 */

import type { CaseResult, MatrixResult } from "../src/planning.ts";

export const HOSTILE = `evil<script>window.pwned=1</script>"'&`;
export const FAILURE = `half-close: got 0 of 1048576 bytes <b>&"'</b>\nthen \u001b[31mEOF\u001b[0m`;
/** `FAILURE` as a report shows it: the escape character, which XML cannot hold, written out. */
export const FAILURE_SHOWN = `half-close: got 0 of 1048576 bytes <b>&"'</b>\nthen \\u001b[31mEOF\\u001b[0m`;
/** What our client says of xinetd's truncated answer (the UDP negative control). */
export const UDP_TRUNCATED =
  "send --udp of 8192 bytes: exit 1, EPROTO: a 2048-byte answer equals no datagram in flight";
export const NOT_APPLICABLE = "reads the server's /proc: a server reached by URL has no process here";

const ok = (name: string, checks: string[] = [`${name}: ok`]): CaseResult => ({ case: name, ok: true, ms: 12, checks });

export const FIXTURE: MatrixResult = {
  profile: "quick",
  mode: "conformance",
  transports: ["tcp4", "tls"],
  startedAt: "2026-12-01T23:00:00.000Z",
  durationMs: 65_000,
  servers: [
    { name: "node", kind: "ours", runtime: "node", version: "24.21.0", description: "packages/node" },
    { name: HOSTILE, kind: "peer", runtime: "socat", version: "1.7.4.4", description: `a peer called ${HOSTILE}` },
    { name: "control", kind: "control", runtime: "node", version: "24.21.0", description: "the broken server" },
  ],
  clients: [
    { name: "node", kind: "ours", runtime: "node", version: "24.21.0", description: "packages/node" },
    { name: "bun", kind: "ours", runtime: "bun", version: "1.4.5", description: "packages/bun" },
    {
      name: "nc",
      kind: "peer",
      description: "OpenBSD netcat",
      missing: "not installed: apt-get install netcat-openbsd",
    },
  ],
  cases: [
    { name: "tutorial", proves: "the tutorial's exchange" },
    { name: "payloads", proves: "every size comes back byte-exact" },
    { name: "half-close", proves: "every byte, then EOF" },
    { name: "backpressure", proves: "a client that stops reading stalls the server" },
    { name: "client-detection", proves: "our clients catch the broken server" },
  ],
  cells: [
    {
      transport: "tcp4",
      server: "node",
      client: "node",
      status: "pass",
      ms: 1500,
      cases: [
        ok("tutorial"),
        ok("payloads", ["0 B ok", "1 B ok"]),
        { case: "half-close", ok: false, ms: 40, checks: [], failure: "EPIPE after 3 bytes", knownGap: "bun#1234" },
      ],
    },
    {
      transport: "tcp4",
      server: "node",
      client: "bun",
      status: "fail",
      ms: 2500,
      cases: [ok("tutorial"), { case: "half-close", ok: false, ms: 900, checks: ["1 MiB sent"], failure: FAILURE }],
    },
    {
      transport: "tcp4",
      server: "node",
      client: "nc",
      status: "not-available",
      ms: 0,
      cases: [],
      note: "not installed: apt-get install netcat-openbsd",
    },
    {
      transport: "tcp4",
      server: HOSTILE,
      client: "node",
      status: "pass",
      ms: 800,
      cases: [ok("tutorial"), { case: "backpressure", ok: false, ms: 0, checks: [], notApplicable: NOT_APPLICABLE }],
    },
    {
      transport: "tcp4",
      server: "control",
      client: "node",
      status: "expected-fail",
      ms: 700,
      cases: [
        ok("tutorial"),
        { case: "payloads", ok: false, ms: 5, checks: [], failure: "short echo: 0 of 1 bytes", verdict: true },
        {
          case: "half-close",
          ok: false,
          ms: 0,
          checks: [],
          failure: "the node driver ended (exit 1) before this case",
        },
        ok("client-detection"),
      ],
    },
    {
      transport: "tcp4",
      server: "control",
      client: "bun",
      status: "unexpected-pass",
      ms: 600,
      cases: [ok("tutorial"), ok("payloads"), ok("client-detection")],
    },
    { transport: "tls", server: "node", client: "node", status: "pass", ms: 300, cases: [ok("tutorial")] },
  ],
  ok: false,
};

/** A udp grid (`--transport udp`): ours passing, socat with its known gap, xinetd the negative control caught. */
export const UDP_FIXTURE: MatrixResult = {
  ...FIXTURE,
  transports: ["udp"],
  servers: [
    { name: "node", kind: "ours", runtime: "node", version: "24.21.0", description: "packages/node CLI" },
    { name: "socat", kind: "peer", runtime: "socat", version: "1.7.4.4", description: "socat UDP4-RECVFROM" },
    { name: "xinetd", kind: "control", runtime: "xinetd", version: "2.3.15", description: "truncates at 2,048 B" },
  ],
  clients: [{ name: "node", kind: "ours", runtime: "node", version: "24.21.0", description: "packages/node CLI" }],
  cases: [
    { name: "tutorial", proves: '"Hello, server!" comes back in one datagram' },
    { name: "sizes", proves: "datagrams of 1 to 65,507 B come back whole" },
    { name: "empty", proves: "a 0-byte datagram is answered with a 0-byte datagram" },
  ],
  cells: [
    {
      transport: "udp",
      server: "node",
      client: "node",
      status: "pass",
      ms: 2000,
      cases: [ok("tutorial"), ok("sizes"), ok("empty")],
    },
    {
      transport: "udp",
      server: "socat",
      client: "node",
      status: "pass",
      ms: 4000,
      cases: [
        ok("tutorial"),
        ok("sizes"),
        {
          case: "empty",
          ok: false,
          ms: 1600,
          checks: [],
          failure: "send --udp of 0 bytes: exit 1, ETIMEDOUT",
          verdict: true,
          knownGap: "socat takes an empty datagram for EOF",
        },
      ],
    },
    {
      transport: "udp",
      server: "xinetd",
      client: "node",
      status: "expected-fail",
      ms: 4000,
      cases: [
        ok("tutorial"),
        { case: "sizes", ok: false, ms: 900, checks: [], failure: UDP_TRUNCATED, verdict: true },
        ok("empty"),
      ],
    },
  ],
  ok: true,
};
