/** One `serve --workers` worker on Deno (see `workers.ts`): the CLI, driven by messages. */
import { runCli, supervisedSignals } from "@tcp-echo/core/tools";
import { connect, listen, runtime } from "./adapter.ts";
import { type FromWorker, messageQueue, type ToWorker } from "./workers.ts";

const scope = self as unknown as {
  onmessage: ((message: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
  close(): void;
};
const commands = messageQueue<string>();
const decoder = new TextDecoder();

scope.onmessage = (message) => {
  const data = message.data;
  if ("command" in data) {
    commands.push(`${data.command}\n`);
    return;
  }
  void runCli({
    runtime,
    listen,
    connect,
    args: data.args,
    program: "tcp-echo-deno",
    stdout: (output) => scope.postMessage({ text: typeof output === "string" ? output : decoder.decode(output) }),
    // Whole lines, synchronously: a worker's stderr is shared with the other workers and the supervisor.
    stderr: (text) => {
      const bytes = new TextEncoder().encode(text);
      for (let offset = 0; offset < bytes.byteLength; ) offset += Deno.stderr.writeSync(bytes.subarray(offset));
    },
    stdin: () => Deno.stdin.readable,
    readFile: (path) => Deno.readFile(path),
    onSignal: supervisedSignals(commands.values),
  }).then((code) => {
    commands.done();
    scope.postMessage({ exit: code });
    scope.close();
  });
};
