import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { resolveListenOptions } from "../src/_options.ts";
import type { SocketEvents } from "../src/_protocol.ts";
import { type AcceptedIO, ServerCore } from "../src/_server.ts";
import type { SocketAddress } from "../src/types.ts";

const BOUND: SocketAddress = { transport: "tcp", hostname: "127.0.0.1", port: 7007, family: "IPv4" };
const PEER: SocketAddress = { transport: "tcp", hostname: "127.0.0.1", port: 50123, family: "IPv4" };
/** 1 s: the sweep ticks every 250 ms. */
const IDLE = 1000;
const TICK = 250;

let core: ServerCore;
beforeEach(() => {
  vi.useFakeTimers();
  core = new ServerCore("node", resolveListenOptions({ port: 0, idleTimeout: IDLE }));
  core.attach({ address: BOUND, close() {} });
});
afterEach(async () => {
  await core.close({ force: true });
  vi.useRealTimers();
});

/** A fake accepted socket that echoes at once; `closed` says whether the server let it go. */
function accepted() {
  const state = { closed: false };
  const io: AcceptedIO = {
    remoteAddress: () => PEER,
    localAddress: () => BOUND,
    write: (chunk) => events.onFlushed(chunk.byteLength),
    pause() {},
    resume() {},
    closeWrite() {},
    close: () => events.onClose(),
    destroy: () => {
      state.closed = true;
      queueMicrotask(() => events.onClose());
    },
  };
  const events: SocketEvents = core.accept(io);
  return { events, state };
}

/** The event loop held up for `ms`: the clock moves, no timer or read runs meanwhile. */
const stall = (ms: number) => vi.setSystemTime(Date.now() + ms);

describe("the idle sweep", () => {
  test("closes a silent connection after the timeout, within a tick, counted once, and leaves a chatty one open", () => {
    const silent = accepted();
    const chatty = accepted();
    for (let elapsed = 0; elapsed < IDLE + 2 * TICK; elapsed += 100) {
      chatty.events.onData(new Uint8Array([1]));
      vi.advanceTimersByTime(100);
    }
    expect(silent.state.closed).toBe(true);
    expect(chatty.state.closed).toBe(false);
    expect(core.stats.idleClosed).toBe(1);
  });

  test("after a stall longer than the timeout, a connection whose bytes waited in the kernel is read, not closed as idle", () => {
    const chatty = accepted();
    const silent = accepted();
    // Both seen by a sweep; the chatty one just sent a byte.
    vi.advanceTimersByTime(TICK);
    chatty.events.onData(new Uint8Array([1]));
    vi.advanceTimersByTime(TICK);
    // The loop is held up 1.5 s; the chatty peer's next byte arrives meanwhile. The
    // first timer to run after it is the sweep, before the loop reads that byte.
    stall(1500);
    vi.advanceTimersByTime(TICK);
    expect(chatty.state.closed).toBe(false);
    expect(silent.state.closed).toBe(false);
    // Then the read runs.
    chatty.events.onData(new Uint8Array([2]));
    vi.advanceTimersByTime(TICK);
    expect(chatty.state.closed).toBe(false);
    // The silent one is still closed, by its idle time the server could watch.
    for (let i = 0; i < 5 && !silent.state.closed; i++) vi.advanceTimersByTime(TICK);
    expect(silent.state.closed).toBe(true);
    expect(chatty.state.closed).toBe(false);
  });

  test("a server late at every sweep still closes idle connections: only one late sweep in a row is let pass", () => {
    const silent = accepted();
    for (let i = 0; i < 12 && !silent.state.closed; i++) {
      stall(2 * TICK);
      vi.advanceTimersByTime(TICK);
    }
    expect(silent.state.closed).toBe(true);
  });
});
