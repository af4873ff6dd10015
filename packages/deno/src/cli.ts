#!/usr/bin/env -S deno run --allow-net
/** The tcp-echo command line on Deno: `serve`, `send`, `ping`, `load` (see `--help`). */
import { runCli } from "@tcp-echo/core/tools";
import { connect, listen, runtime } from "./adapter.ts";
import { startWorker } from "./workers.ts";

const encoder = new TextEncoder();
/** Every write to stdout and stderr, in order; awaited before `Deno.exit`, which would drop what is pending. */
let written: Promise<void> = Promise.resolve();

const code = await runCli({
  runtime,
  listen,
  connect,
  args: Deno.args,
  program: "tcp-echo-deno",
  stdout: (data) => output(Deno.stdout, typeof data === "string" ? encoder.encode(data) : data),
  stderr: (text) => void output(Deno.stderr, encoder.encode(text)),
  stdin: () => Deno.stdin.readable,
  readFile: (path) => Deno.readFile(path),
  stderrIsTerminal: Deno.stderr.isTerminal(),
  onSignal: (handler) => {
    const onInterrupt = () => handler("SIGINT");
    const onTerminate = () => handler("SIGTERM");
    Deno.addSignalListener("SIGINT", onInterrupt);
    Deno.addSignalListener("SIGTERM", onTerminate);
    return () => {
      Deno.removeSignalListener("SIGINT", onInterrupt);
      Deno.removeSignalListener("SIGTERM", onTerminate);
    };
  },
  startWorker,
});
await written;
Deno.exit(code);

/**
 * Queues `data` after every earlier write: `serve` logs without awaiting, and
 * concurrent partial writes would interleave. The returned promise rejects if
 * the stream is closed (`send -` then fails); it is marked handled, since an
 * unhandled rejection would end the process with a stack trace.
 */
function output(target: { write(data: Uint8Array): Promise<number> }, data: Uint8Array): Promise<void> {
  const writing = written.then(async () => {
    // `write` may take only part of the buffer, on stdio as on sockets.
    for (let offset = 0; offset < data.byteLength; ) offset += await target.write(data.subarray(offset));
  });
  written = writing.catch(() => {});
  return writing;
}
