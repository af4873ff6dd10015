/**
 * The cases the peer clients play (nc, ncat, socat, the Python client): the
 * runner feeds a byte pipe such as `nc -N` on its stdin and hashes what comes
 * out on its stdout.
 */

import { createHash, randomBytes } from "node:crypto";
import { spawnManaged } from "@tcp-echo/testkit";
import { fail } from "./deadline.ts";
import { describeExit } from "./launchers.ts";
import type { ClientSpec } from "./participants.ts";
import { type CaseName, type CaseParams, formatSize } from "./plan.ts";
import type { Endpoint, TransportSetup } from "./transports.ts";

type Checks = string[];

export const PIPE_CASES: Partial<
  Record<
    CaseName,
    (client: ClientSpec, endpoint: Endpoint, setup: TransportSetup, params: CaseParams) => Promise<Checks>
  >
> = {
  async tutorial(client, endpoint, setup) {
    const message = "Hello, server!";
    if (client.tutorial) {
      const run = await runPipe(client.name, client.tutorial(endpoint, message), 0, 0);
      const expected = `Received response from server: ${message}\n`;
      if (run.text !== expected) fail(`printed ${JSON.stringify(run.text)}, expected ${JSON.stringify(expected)}`);
      return [expected.trim()];
    }
    const run = await runPipe(client.name, client.pipe!(endpoint, setup), Buffer.from(message), 0);
    if (run.text !== message) fail(`got ${JSON.stringify(run.text)} back`);
    return [`"${message}" round-tripped`];
  },

  async payloads(client, endpoint, setup, params) {
    const checks: Checks = [];
    for (const size of params.payloads) {
      const run = await runPipe(client.name, client.pipe!(endpoint, setup), size, 0);
      if (run.bytes !== size) fail(`${formatSize(size)}: ${run.bytes} of ${size} bytes came back`);
      if (run.sent !== run.received) fail(`${formatSize(size)}: sha256 differs`);
      checks.push(`${formatSize(size)} sha256 ${run.sent.slice(0, 12)} ok`);
    }
    return checks;
  },

  async "half-close"(client, endpoint, setup, params) {
    const checks: Checks = [];
    for (const [size, delay] of [
      [params.halfClose, 0],
      [params.halfCloseLate, params.lateReadMs],
    ] as const) {
      const run = await runPipe(client.name, client.pipe!(endpoint, setup), size, delay);
      const what = `${formatSize(size)}, reading after ${delay} ms`;
      if (run.bytes !== size) fail(`${what}: ${run.bytes} of ${size} bytes came back before EOF`);
      if (run.sent !== run.received) fail(`${what}: sha256 differs`);
      checks.push(`${what}: exactly ${size} bytes, then EOF`);
    }
    return checks;
  },

  async "zero-byte"(client, endpoint, setup) {
    const run = await runPipe(client.name, client.pipe!(endpoint, setup), 0, 0);
    if (run.bytes !== 0) fail(`got ${run.bytes} bytes from a session that sent none`);
    return ["immediate half-close: clean EOF, no bytes"];
  },
};

interface PipeRun {
  sent: string;
  received: string;
  bytes: number;
  /** stdout as text, for short exchanges. */
  text: string;
}

/**
 * Runs a peer client, writes `input` (bytes, or a size of random bytes) to its
 * stdin and closes it, while a concurrent reader (started `readDelay` ms after
 * the first echoed byte) hashes its stdout. The client must exit 0 on its own.
 */
async function runPipe(label: string, argv: string[], input: Buffer | number, readDelay: number): Promise<PipeRun> {
  const size = typeof input === "number" ? input : input.byteLength;
  const [command, ...args] = argv as [string, ...string[]];
  // Far above a healthy run (16 MiB take about a second), low enough that a hung peer costs little.
  const timeoutMs = Math.round(10_000 + size / 10_000);
  // From where the matrix was started: a user's client command (`--client-cmd`) may name a relative path.
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const child = spawnManaged(command, args, { label, cwd, timeoutMs, stdin: "pipe" });
  const sentHash = createHash("sha256");
  const receivedHash = createHash("sha256");
  let bytes = 0;
  let head = "";
  const stdout = child.child.stdout!;
  stdout.pause();
  let startReading: () => void = () => {};
  const reading = new Promise<void>((resolve) => {
    startReading = () => {
      stdout.on("data", (chunk: Buffer) => {
        receivedHash.update(chunk);
        bytes += chunk.byteLength;
        if (head.length < 4096) head += chunk.toString("utf8");
      });
      stdout.once("end", resolve);
      stdout.resume();
    };
  });
  // The late reader waits from the first echoed byte, so a client that is slow to
  // start (or to connect) does not turn it into an early one.
  if (readDelay === 0) startReading();
  else stdout.once("readable", () => setTimeout(startReading, readDelay));
  const stdin = child.child.stdin!;
  if (typeof input === "number") {
    for (let offset = 0; offset < input && !child.exit; offset += 1024 * 1024) {
      const chunk = randomBytes(Math.min(1024 * 1024, input - offset));
      sentHash.update(chunk);
      if (!stdin.write(chunk))
        await Promise.race([new Promise((resolve) => stdin.once("drain", resolve)), child.exited]);
    }
  } else {
    sentHash.update(input);
    stdin.write(input);
  }
  stdin.end();
  const exit = await child.exited;
  await Promise.race([reading, new Promise((resolve) => setTimeout(resolve, 1000))]);
  if (exit.timedOut) {
    const tail = child.stderrTail().split("\n").slice(-3).join(" | ");
    fail(
      `${label} did not finish within ${timeoutMs} ms (${bytes} of ${size} bytes came back)${tail ? `: ${tail}` : ""}`,
    );
  }
  if (exit.code !== 0) {
    fail(
      `${label} ended with ${describeExit(exit)} after ${bytes} of ${size} bytes: ${child.stderrTail() || "no message"}`,
    );
  }
  return { sent: sentHash.digest("hex"), received: receivedHash.digest("hex"), bytes, text: head };
}
