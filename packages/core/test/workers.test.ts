import { describe, expect, test } from "vitest";
import { supervisedSignals } from "../src/_workers.ts";

/** Input the test writes to, as a worker's stdin; `end()` is the supervisor going away. */
function input() {
  const chunks: (string | Uint8Array)[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  const iterable: AsyncIterable<string | Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (chunks.length) yield chunks.shift() as string | Uint8Array;
        if (ended) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
  return {
    iterable,
    write: (chunk: string | Uint8Array) => {
      chunks.push(chunk);
      wake?.();
    },
    end: () => {
      ended = true;
      wake?.();
    },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

/** A supervised worker's input, and the signals its handler has seen. */
function watched() {
  const from = input();
  const signals: string[] = [];
  supervisedSignals(from.iterable)((signal) => signals.push(signal));
  return { from, signals };
}

describe("a supervised worker's signals come from its supervisor", () => {
  test("each command is one SIGTERM (the first drains, the second forces), split across reads or not", async () => {
    const { from, signals } = watched();
    from.write("dr");
    await settle();
    expect(signals).toEqual([]);
    from.write(new TextEncoder().encode("ain\nforce\n"));
    await settle();
    expect(signals).toEqual(["SIGTERM", "SIGTERM"]);
  });

  test("the supervisor going away (end of input) forces", async () => {
    const { from, signals } = watched();
    from.end();
    await settle();
    expect(signals).toEqual(["SIGTERM", "SIGTERM"]);
  });

  test("the process's own SIGINT and SIGTERM are ignored while supervised, and unignored after", async () => {
    const from = input();
    let ignoring = 0;
    const ignore = () => {
      ignoring++;
      return () => {
        ignoring--;
      };
    };
    const stop = supervisedSignals(from.iterable, ignore)(() => {});
    expect(ignoring).toBe(1);
    stop();
    expect(ignoring).toBe(0);
    from.write("drain\n");
  });

  test("unknown lines are not signals", async () => {
    const { from, signals } = watched();
    from.write("hello\n\n");
    await settle();
    expect(signals).toEqual([]);
  });
});
