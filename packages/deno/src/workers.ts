/**
 * `serve --workers` on Deno: each worker is a Web Worker (its own isolate on
 * its own thread, listening with `reusePort`, as `deno serve --parallel` does),
 * not a child process: a child would need this process's permission flags,
 * which Deno does not expose. A worker inherits them, and `--unstable-net`.
 * The worker is `worker.ts`; commands and output travel as messages.
 */
import type { CliWorker } from "@tcp-echo/core/tools";

/** What the supervisor and a worker say to each other. */
export type ToWorker = { args: readonly string[] } | { command: string };
export type FromWorker = { text: string } | { exit: number };

/** Messages as an async iterable, ending when `done` is called. */
export function messageQueue<T>(): { push(value: T): void; done(): void; values: AsyncIterable<T> } {
  const queued: T[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  return {
    push(value) {
      queued.push(value);
      wake?.();
    },
    done() {
      ended = true;
      wake?.();
    },
    values: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (queued.length > 0) yield queued.shift() as T;
          if (ended) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      },
    },
  };
}

export function startWorker(args: readonly string[]): CliWorker {
  // This module's own extension: worker.ts beside the sources, worker.js in a build (dist/, tcp-echo-conformance).
  const extension = import.meta.url.slice(import.meta.url.lastIndexOf("."));
  const worker = new Worker(new URL(`./worker${extension}`, import.meta.url).href, { type: "module" });
  const output = messageQueue<string>();
  const exited = new Promise<number | null>((resolve) => {
    worker.onmessage = (message: MessageEvent<FromWorker>) => {
      const data = message.data;
      if ("text" in data) output.push(data.text);
      else {
        output.done();
        worker.terminate();
        resolve(data.exit);
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      output.done();
      worker.terminate();
      resolve(null);
    };
  });
  worker.postMessage({ args } satisfies ToWorker);
  return {
    output: output.values,
    send: (command) => worker.postMessage({ command } satisfies ToWorker),
    exited,
  };
}
