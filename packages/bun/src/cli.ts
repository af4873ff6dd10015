#!/usr/bin/env bun
/** The tcp-echo command line on Bun: `serve`, `send`, `ping`, `load` (see `--help`). */
import { spawn } from "node:child_process";
import { childWorkers, processSignals, runCli, startedAsWorker, supervisedSignals } from "@tcp-echo/core/tools";
import { connect, listen, runtime } from "./adapter.ts";

// FileSinks buffer: flush() settles once the descriptor has taken everything,
// which is the backpressure `send -` waits on, and nothing is lost at exit.
const out = Bun.stdout.writer();
const err = Bun.stderr.writer();

const code = await runCli({
  runtime,
  listen,
  connect,
  args: Bun.argv.slice(2),
  program: "tcp-echo-bun",
  stdout: async (data) => {
    out.write(data);
    await out.flush();
  },
  stderr: (text) => {
    err.write(text);
    void err.flush();
  },
  stdin: () => Bun.stdin.stream(),
  readFile: (path) => Bun.file(path).bytes(),
  stderrIsTerminal: process.stderr.isTTY === true,
  // A `serve --workers` worker takes its signals from the supervisor, on stdin.
  onSignal: startedAsWorker(process)
    ? supervisedSignals(process.stdin, processSignals(process))
    : processSignals(process),
  startWorker: childWorkers(spawn, process),
});
await out.end();
await err.end();
process.exit(code);
