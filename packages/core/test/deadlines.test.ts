import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { ClientConnection, openConnection } from "../src/_client.ts";
import { Deadlines } from "../src/_deadlines.ts";
import type { EchoError } from "../src/_errors.ts";
import { resolveConnectOptions } from "../src/_options.ts";
import type { SocketIO } from "../src/_protocol.ts";
import type { SocketAddress } from "../src/types.ts";

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("Deadlines: timeouts of one length on one timer", () => {
  test("each item fires at its own time, in order; a cancelled one never does", () => {
    const fired: string[] = [];
    const deadlines = new Deadlines<string>(100, (item) => fired.push(item));
    deadlines.add("a");
    vi.advanceTimersByTime(30);
    const b = deadlines.add("b");
    vi.advanceTimersByTime(30);
    deadlines.add("c");
    b.cancel();
    vi.advanceTimersByTime(39);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(["a"]);
    vi.advanceTimersByTime(59);
    expect(fired).toEqual(["a"]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(["a", "c"]);
    expect(deadlines.size).toBe(0);
  });

  test("with every item cancelled no timer is left armed (an idle process can exit)", () => {
    const deadlines = new Deadlines<number>(10_000, () => {});
    const entries = [1, 2, 3].map((n) => deadlines.add(n));
    expect(vi.getTimerCount()).toBe(1);
    for (const entry of entries) entry.cancel();
    expect(vi.getTimerCount()).toBe(0);
    expect(deadlines.size).toBe(0);
  });

  test("an item added while others fire still fires on time", () => {
    const fired: string[] = [];
    const deadlines = new Deadlines<string>(50, (item) => {
      fired.push(item);
      if (item === "a") deadlines.add("again");
    });
    deadlines.add("a");
    vi.advanceTimersByTime(10);
    deadlines.add("b");
    vi.advanceTimersByTime(40);
    expect(fired).toEqual(["a"]);
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(["a", "b"]);
    vi.advanceTimersByTime(40);
    expect(fired).toEqual(["a", "b", "again"]);
  });
});

const address: SocketAddress = { transport: "tcp", hostname: "127.0.0.1", port: 7, family: "IPv4" };

/** A dial that opens when told to, recording what happened to its socket. */
function pendingDial() {
  const calls: string[] = [];
  let open: () => void = () => {};
  const io: SocketIO = {
    write: () => {},
    pause: () => {},
    resume: () => {},
    closeWrite: () => {},
    close: () => calls.push("close"),
    destroy: () => calls.push("destroy"),
  };
  const dial = (_config: unknown, _events: unknown, attempt: { onAbort: (() => void) | undefined }) => {
    attempt.onAbort = () => calls.push("onAbort");
    return new Promise<{ info: { localAddress: SocketAddress; remoteAddress: SocketAddress }; io: SocketIO }>(
      (resolve) => {
        open = () => resolve({ info: { localAddress: address, remoteAddress: address }, io });
      },
    );
  };
  return { dial, calls, open: () => open() };
}

async function failureOf(promise: Promise<unknown>): Promise<EchoError> {
  try {
    await promise;
  } catch (error) {
    return error as EchoError;
  }
  throw new Error("expected a rejection");
}

describe("openConnection: the connect timeout and the caller's signal (no sockets)", () => {
  test("a dial still pending at the timeout fails ETIMEDOUT, is told to give up, and its late socket is destroyed", async () => {
    const { dial, calls, open } = pendingDial();
    const connecting = openConnection("node", { port: 7, timeout: 100 }, dial);
    const failure = failureOf(connecting);
    await vi.advanceTimersByTimeAsync(100);
    expect((await failure).code).toBe("ETIMEDOUT");
    expect(calls).toEqual(["onAbort"]);
    open();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual(["onAbort", "destroy"]);
  });

  test("a dial that opens in time leaves no timer armed and no listener on the caller's signal", async () => {
    const { dial, calls, open } = pendingDial();
    const controller = new AbortController();
    const connecting = openConnection("node", { port: 7, timeout: 100, signal: controller.signal }, dial);
    open();
    const connection = await connecting;
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toEqual([]);
    // Aborting now fails the open connection (its own listener), not the finished connect.
    controller.abort();
    expect((await failureOf(connection.closed)).code).toBe("EABORTED");
    expect(calls).toEqual(["destroy"]);
  });

  test("the caller's signal aborting mid-connect fails it EABORTED at once", async () => {
    const { dial, calls } = pendingDial();
    const controller = new AbortController();
    const connecting = openConnection("node", { port: 7, signal: controller.signal }, dial);
    const failure = failureOf(connecting);
    controller.abort();
    expect((await failure).code).toBe("EABORTED");
    expect(calls).toEqual(["onAbort"]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("ClientConnection: replyTimeout's timers are gone once a connection is done (no sockets)", () => {
  function timed() {
    const connection = new ClientConnection("node", resolveConnectOptions({ port: 7, replyTimeout: 100 }));
    const io: SocketIO = {
      write: (chunk) => connection.onFlushed(chunk.byteLength),
      pause: () => {},
      resume: () => {},
      closeWrite: () => {},
      close: () => {},
      destroy: () => {},
    };
    connection.attach({ info: { localAddress: address, remoteAddress: address }, io });
    return connection;
  }
  const bytes = (text: string) => new TextEncoder().encode(text);
  /** The half-close, the server's EOF and the socket's close, as a clean end goes. */
  async function endCleanly(connection: ClientConnection) {
    await connection.closeWrite();
    connection.onEnd();
    connection.onClose();
    await connection.closed;
  }

  test("an echo, the half-close and the server's EOF leave no timer armed", async () => {
    const connection = timed();
    const echo = connection.echo("hello");
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(1);
    connection.onData(bytes("hello"));
    await echo;
    await endCleanly(connection);
    expect(vi.getTimerCount()).toBe(0);
  });

  test("after a re-arm for the rest of a window, too", async () => {
    const connection = timed();
    const echo = connection.echo("hello");
    await vi.advanceTimersByTimeAsync(60);
    connection.onData(bytes("he"));
    // The window's first timer finds progress and arms one for what is left.
    await vi.advanceTimersByTimeAsync(50);
    expect(vi.getTimerCount()).toBe(1);
    connection.onData(bytes("llo"));
    await echo;
    await endCleanly(connection);
    expect(vi.getTimerCount()).toBe(0);
  });

  test("many connections share one timer, and a silent server still fails each at its time", async () => {
    const connections = [timed(), timed(), timed()];
    const failures = connections.map((connection) => failureOf(connection.closed));
    for (const connection of connections) void connection.write("hi").catch(() => {});
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    for (const failure of failures) expect((await failure).code).toBe("ETIMEDOUT");
  });
});
