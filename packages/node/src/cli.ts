#!/usr/bin/env node
/** The tcp-echo command line on Node: `serve`, `send`, `ping`, `load` (see `--help`). */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { childWorkers, processSignals, runCli, startedAsWorker, supervisedSignals } from "@tcp-echo/core/tools";
import { connect, listen, runtime } from "./adapter.ts";

let stdoutError: Error | undefined;
process.stdout.on("error", (error) => {
  stdoutError ??= error;
});
// With stderr gone there is nobody left to tell; it must not crash the command either.
process.stderr.on("error", () => {});
const code = await runCli({
  runtime,
  listen,
  connect,
  args: process.argv.slice(2),
  program: "tcp-echo-node",
  // A failed write (EPIPE: the reader is gone, as under `| head -c 10`) rejects,
  // so the command reports it in one line and exits 1 as on Bun and Deno; the
  // stream's 'error' event alone, with no listener, crashed with a stack trace.
  stdout: (data) =>
    new Promise<void>((resolve, reject) => {
      if (stdoutError) return reject(stdoutError);
      const taken = process.stdout.write(data, (error) => {
        if (error) reject(error);
      });
      if (taken) resolve();
      else process.stdout.once("drain", resolve);
    }),
  stderr: (text) => void process.stderr.write(text),
  stdin: () => process.stdin,
  readFile: (path) => readFile(path),
  stderrIsTerminal: process.stderr.isTTY === true,
  // A `serve --workers` worker takes its signals from the supervisor, on stdin.
  onSignal: startedAsWorker(process)
    ? supervisedSignals(process.stdin, processSignals(process))
    : processSignals(process),
  startWorker: childWorkers(spawn, process),
});
// process.exit() drops what is still queued: on POSIX, writes to a pipe or socket
// are asynchronous ("A note on process I/O",
// https://nodejs.org/api/process.html#a-note-on-process-io), and `write()` returns
// true with up to a highWaterMark (64 KiB in Node 22+) still queued in libuv. For
// `send -` into a slow reader that was the tail of the echo, with exit code 0.
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);

/**
 * Settles once everything written to `stream` so far has gone to the OS: writes
 * complete in order, so an empty write's callback runs after all earlier ones
 * (with an error too, e.g. EPIPE once the reader is gone: nothing left to wait for).
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableLength === 0 || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => stream.write(new Uint8Array(0), () => resolve()));
}
