#!/usr/bin/env node
/** The tcp-echo command line on Node: `serve`, `send`, `ping`, `load` (see `--help`). */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { childWorkers, processSignals, runCli, startedAsWorker, supervisedSignals } from "@tcp-echo/core/tools";
import { connect, listen, runtime } from "./adapter.ts";

const code = await runCli({
  runtime,
  listen,
  connect,
  args: process.argv.slice(2),
  program: "tcp-echo-node",
  stdout: (data) =>
    new Promise<void>((resolve) => {
      if (process.stdout.write(data)) resolve();
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
process.exit(code);
