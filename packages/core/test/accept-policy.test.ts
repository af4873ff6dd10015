import { afterEach, describe, expect, test } from "vitest";
import { type EchoError, errorCodeOf } from "../src/_errors.ts";
import { resolveListenOptions } from "../src/_options.ts";
import type { SocketEvents } from "../src/_protocol.ts";
import { type AcceptedIO, ServerCore } from "../src/_server.ts";
import type { SocketAddress } from "../src/types.ts";

const ADDRESS: SocketAddress = { transport: "tcp", hostname: "127.0.0.1", port: 4321, family: "IPv4" };

let running: ServerCore | undefined;

/** A server core on a pretend listener, collecting what it reports. */
function serverCore(): { server: ServerCore; reported: EchoError[] } {
  const reported: EchoError[] = [];
  const server = new ServerCore(
    "node",
    resolveListenOptions({
      port: 0,
      onError: (error) => {
        reported.push(error);
      },
    }),
  );
  server.attach({ address: ADDRESS, close() {} });
  running = server;
  return { server, reported };
}

afterEach(async () => {
  await running?.close({ force: true });
  running = undefined;
});

/** What each runtime hands an accept loop for one failed connection. */
const ONE_CONNECTION: [string, unknown][] = [
  [
    "Deno's NotConnected (a reset in the backlog)",
    Object.assign(new Error("Transport endpoint is not connected (os error 107)"), { name: "NotConnected" }),
  ],
  ["Node's ECONNABORTED", Object.assign(new Error("accept ECONNABORTED"), { code: "ECONNABORTED", errno: -103 })],
  ["a signed errno only (EPROTO)", { errno: 71 }],
  ["only an os error in the message (ENETDOWN)", new Error("Network is down (os error 100)")],
  ["ECONNRESET", Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })],
];

describe("accept policy: when an accept loop accepts again", () => {
  test.each(ONE_CONNECTION)(
    "%s: accept again at once, reported as ECONNABORTED naming the bound address",
    (_, error) => {
      const { server, reported } = serverCore();
      expect(server.acceptFailed(error)).toBeUndefined();
      expect(reported.map((failure) => failure.code)).toEqual(["ECONNABORTED"]);
      expect(reported[0]!.port).toBe(4321);
      expect(reported[0]!.hostname).toBe("127.0.0.1");
      expect(reported[0]!.cause).toBe(error);
      expect(server.stats.errors).toEqual({ ECONNABORTED: 1 });
    },
  );

  test("a storm of them yields to the event loop once every 64, never waits longer", () => {
    const { server } = serverCore();
    const error = Object.assign(new Error("os error 107"), { name: "NotConnected" });
    const waits = Array.from({ length: 200 }, () => server.acceptFailed(error));
    const yields = waits.flatMap((wait, i) => (wait === undefined ? [] : [[i + 1, wait]]));
    expect(yields).toEqual([
      [64, 0],
      [128, 0],
      [192, 0],
    ]);
    expect(server.stats.errors).toEqual({ ECONNABORTED: 200 });
  });

  test.each([
    ["EMFILE", { code: "EMFILE", errno: -24 }, "EMFILE"],
    ["ENFILE", { code: "ENFILE" }, "EMFILE"],
    ["ENOBUFS", { errno: 105 }, "EUNKNOWN"],
    ["ENOMEM (Deno's message)", new Error("Cannot allocate memory (os error 12)"), "EUNKNOWN"],
    ["an error it cannot place", new Error("something else"), "EUNKNOWN"],
  ])("%s: backs off, doubling from 10 ms to 1 s, reported under its own code", (_, error, code) => {
    const { server, reported } = serverCore();
    const waits = Array.from({ length: 9 }, () => server.acceptFailed(error));
    expect(waits).toEqual([10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    expect(new Set(reported.map((failure) => failure.code))).toEqual(new Set([code]));
  });

  test("the back-off starts again at 10 ms once a connection is accepted", () => {
    const { server } = serverCore();
    const emfile = { code: "EMFILE" };
    expect([server.acceptFailed(emfile), server.acceptFailed(emfile), server.acceptFailed(emfile)]).toEqual([
      10, 20, 40,
    ]);
    const io: AcceptedIO = {
      write() {},
      pause() {},
      resume() {},
      closeWrite() {},
      close() {},
      destroy() {},
      remoteAddress: () => ({ ...ADDRESS, port: 5 }),
      localAddress: () => ADDRESS,
    };
    const events: SocketEvents = server.accept(io);
    events.onClose();
    expect(server.acceptFailed(emfile)).toBe(10);
  });

  test("an accept that failed for one connection also ends the back-off (a descriptor was free for it)", () => {
    const { server } = serverCore();
    expect([server.acceptFailed({ code: "EMFILE" }), server.acceptFailed({ code: "EMFILE" })]).toEqual([10, 20]);
    expect(server.acceptFailed({ code: "ECONNABORTED" })).toBeUndefined();
    expect(server.acceptFailed({ code: "EMFILE" })).toBe(10);
  });

  test("outside accept, an aborted open connection is a reset (ECONNABORTED is the accept policy's own)", () => {
    expect(errorCodeOf({ code: "ECONNABORTED" })).toBe("ECONNRESET");
  });
});
