import { expect, test } from "vitest";
import { type LoadHost, runLoad } from "../src/_load.ts";
import type { Address, EchoConnection } from "../src/types.ts";

/** A connection that echoes every write in the next macrotask (as a socket would: the load loop yields), recording what was written. */
function echoingConnection(writes: Uint8Array[]): EchoConnection<Address> {
  const echoed: Uint8Array[] = [];
  let reader: ((chunk: Uint8Array | null) => void) | undefined;
  let ended = false;
  const deliver = () => {
    if (!reader) return;
    const chunk = echoed.shift();
    if (chunk === undefined && !ended) return;
    const resolve = reader;
    reader = undefined;
    resolve(chunk ?? null);
  };
  const connection = {
    write(data: Uint8Array) {
      writes.push(data);
      setTimeout(() => {
        echoed.push(data);
        deliver();
      }, 0);
      return Promise.resolve();
    },
    read() {
      return new Promise<Uint8Array | null>((resolve) => {
        reader = resolve;
        deliver();
      });
    },
    closeWrite() {
      ended = true;
      deliver();
      return Promise.resolve();
    },
    closed: Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return connection as unknown as EchoConnection<Address>;
}

test("stream: each connection writes consecutive runs of one buffer, each chunk unlike the next", async () => {
  const lanes: Uint8Array[][] = [];
  const host: LoadHost = {
    runtime: "fake",
    connect: async () => {
      const writes: Uint8Array[] = [];
      lanes.push(writes);
      return echoingConnection(writes);
    },
    progress() {},
    onSignal: () => () => {},
  };
  const size = 4096;
  const report = await runLoad(host, {
    mode: "stream",
    connections: 2,
    inFlight: 4,
    size,
    duration: 0.05,
    warmup: 0,
    rate: 0,
    where: "fake",
  });
  expect(report.connectionsFailed).toBe(0);
  for (const writes of lanes) {
    expect(writes.length).toBeGreaterThan(8);
    let adjacent = 0;
    for (let i = 1; i < writes.length; i++) {
      const [before, chunk] = [writes[i - 1] as Uint8Array, writes[i] as Uint8Array];
      expect(chunk.byteLength).toBe(size);
      expect(before.every((byte, j) => byte === chunk[j])).toBe(false);
      if (chunk.buffer === before.buffer && chunk.byteOffset === before.byteOffset + size) adjacent++;
    }
    // All but where the run wraps to the buffer's start (once per MiB).
    expect(adjacent).toBeGreaterThanOrEqual(writes.length - 1 - Math.ceil((writes.length * size) / 2 ** 20));
  }
  // The lanes start apart.
  expect((lanes[0] as Uint8Array[])[0]?.byteOffset).not.toBe((lanes[1] as Uint8Array[])[0]?.byteOffset);
});
