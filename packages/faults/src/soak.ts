/**
 * `pnpm soak`: a mixed, rate-bounded load against one runtime's server, with
 * its RSS and descriptors over time. Exits 0 when nothing was lost or leaked,
 * 1 when something was, 2 on a usage error.
 *
 *   tsx packages/faults/src/soak.ts --server deno --minutes 1 [--rate 40] [--rss-bound 64] [--json]
 */

import { parseArguments } from "@tcp-echo/core/tools";
import { killAll, MiB } from "@tcp-echo/testkit";
import { runSoak, type SoakSample } from "./load.ts";
import { missing, RUNTIMES, type RuntimeName } from "./servers.ts";

const USAGE =
  "usage: soak --server node|bun|deno (--minutes N | --seconds N) [--rate SESSIONS_PER_SECOND] [--rss-bound MIB] [--json]";

function fail(message: string): never {
  process.stderr.write(`soak: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function positive(text: string | boolean | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (typeof text !== "string" || !/^\d+$/.test(text) || value <= 0) fail(`--${name} must be a positive integer`);
  return value;
}

// Whatever ends this process, the server it started goes with it.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArguments(process.argv.slice(2), {
    server: "string",
    minutes: "string",
    seconds: "string",
    rate: "string",
    "rss-bound": "string",
    json: "boolean",
  }));
} catch (error) {
  fail((error as Error).message);
}
const server = values.server as RuntimeName;
if (!RUNTIMES.includes(server)) fail(`--server must be one of ${RUNTIMES.join(", ")}`);
const unavailable = missing(server);
if (unavailable) fail(`${server} is not available: ${unavailable}`);
const seconds = (positive(values.minutes, "minutes") ?? 0) * 60 + (positive(values.seconds, "seconds") ?? 0);
if (seconds === 0) fail("give --minutes or --seconds");
const rate = positive(values.rate, "rate");
const bound = positive(values["rss-bound"], "rss-bound");
const json = values.json === true;

const mb = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const print = (line: string) => process.stdout.write(`${line}\n`);

const report = await runSoak({
  server,
  seconds,
  ...(rate ? { rate } : {}),
  ...(bound ? { rssBound: bound * MiB } : {}),
  onSample: (sample: SoakSample) =>
    print(
      json
        ? JSON.stringify({ event: "sample", ...sample })
        : `t=${sample.t}s sessions=${sample.sessions} in-flight=${sample.inFlight} verified=${mb(sample.bytes)} errors=${JSON.stringify(sample.errors)} server rss=${mb(sample.rss)} fds=${sample.fds}`,
    ),
});

if (json) print(JSON.stringify({ event: "report", ...report, samples: undefined }));
else {
  print(
    `${report.ok ? "ok" : "FAILED"}: ${server} server, ${seconds} s, ${report.sessions} sessions (${report.resets} resets), ${mb(report.bytes)} verified, errors ${JSON.stringify(report.errors)}`,
  );
  print(
    `descriptors ${report.fds.before} -> ${report.fds.after}; RSS baseline ${mb(report.rss.baseline)}, peak ${mb(report.rss.peak)}, after ${mb(report.rss.after)} (bound +${mb(report.rss.bound)})`,
  );
  for (const failure of report.failures) print(`  ${failure}`);
}
process.exit(report.ok ? 0 : 1);
