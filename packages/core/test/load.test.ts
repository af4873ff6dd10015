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

/** `load --mode stream` on `host`, timed from the start (no warm-up, no pacing). */
function stream(host: LoadHost, run: { connections: number; inFlight: number; size: number; duration: number }) {
  return runLoad(host, { mode: "stream", ...run, warmup: 0, rate: 0, where: "fake" });
}

/** A host whose every connection is `make`'s, each recording its writes in `lanes`. */
function fakeHost(make: (writes: Uint8Array[]) => EchoConnection<Address>) {
  const lanes: Uint8Array[][] = [];
  const host: LoadHost = {
    runtime: "fake",
    connect: async () => {
      const writes: Uint8Array[] = [];
      lanes.push(writes);
      return make(writes);
    },
    progress() {},
    onSignal: () => () => {},
  };
  return { host, lanes };
}

test("stream: each connection writes consecutive runs of one buffer, each chunk unlike the next", async () => {
  const { host, lanes } = fakeHost(echoingConnection);
  const size = 4096;
  const report = await stream(host, { connections: 2, inFlight: 4, size, duration: 0.05 });
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

test("stream: each chunk's view is made once and shared: a lane that comes round the pattern writes the same views again", async () => {
  const { host, lanes } = fakeHost(echoingConnection);
  // 64 KiB chunks: the 1 MiB pattern has 16 of them, so a lane comes round every 16 writes.
  const report = await stream(host, { connections: 2, inFlight: 4, size: 65536, duration: 0.1 });
  expect(report.connectionsFailed).toBe(0);
  const [first, second] = lanes as [Uint8Array[], Uint8Array[]];
  expect(first.length).toBeGreaterThan(16);
  expect(second.length).toBeGreaterThan(16);
  for (const writes of lanes) for (let i = 16; i < writes.length; i++) expect(writes[i]).toBe(writes[i - 16]);
  // The second lane writes the first one's views, from another start.
  const views = new Set(first.slice(0, 16));
  expect(views.size).toBe(16);
  for (const chunk of second.slice(0, 16)) expect(views.has(chunk)).toBe(true);
  expect(second[0]).not.toBe(first[0]);
});

test("stream: chunks under 16 B, too many to keep a view each, are still consecutive runs of one buffer", async () => {
  const { host, lanes } = fakeHost(echoingConnection);
  const report = await stream(host, { connections: 1, inFlight: 4, size: 8, duration: 0.05 });
  expect(report.connectionsFailed).toBe(0);
  const writes = lanes[0] as Uint8Array[];
  expect(writes.length).toBeGreaterThan(8);
  for (let i = 1; i < writes.length; i++) {
    const [before, chunk] = [writes[i - 1] as Uint8Array, writes[i] as Uint8Array];
    expect(chunk).not.toBe(before);
    expect(chunk.byteLength).toBe(8);
    expect(chunk.buffer).toBe(before.buffer);
    expect(chunk.byteOffset).toBe(before.byteOffset + 8);
  }
});

/** A connection that takes every write and echoes nothing until the half-close, then ends: a server stalled on us. */
function silentConnection(writes: Uint8Array[]): EchoConnection<Address> {
  let ended = false;
  let reader: ((chunk: Uint8Array | null) => void) | undefined;
  return {
    write(data: Uint8Array) {
      writes.push(data);
      return Promise.resolve();
    },
    read: () =>
      ended
        ? Promise.resolve(null)
        : new Promise<Uint8Array | null>((resolve) => {
            reader = resolve;
          }),
    closeWrite() {
      ended = true;
      reader?.(null);
      return Promise.resolve();
    },
    closed: Promise.resolve(),
    close: () => Promise.resolve(),
  } as unknown as EchoConnection<Address>;
}

test("stream: a lane waiting for room in its window stops when the run ends, having written exactly its window", async () => {
  const { host, lanes } = fakeHost(silentConnection);
  const report = await stream(host, { connections: 3, inFlight: 4, size: 100, duration: 0.05 });
  expect(report.connectionsOpened).toBe(3);
  expect(report.messages).toBe(0);
  expect(lanes.map((writes) => writes.length)).toEqual([4, 4, 4]);
});
