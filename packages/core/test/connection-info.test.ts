import { afterEach, describe, expect, test } from "vitest";
import type { EchoError } from "../src/_errors.ts";
import { resolveListenOptions } from "../src/_options.ts";
import type { SocketEvents } from "../src/_protocol.ts";
import { type AcceptedIO, ServerCore } from "../src/_server.ts";
import type {
  Address,
  ConnectionInfo,
  ConnectionSummary,
  ListenOptions,
  SocketAddress,
  UnixListenOptions,
} from "../src/types.ts";

const tcp = (hostname: string, port: number): SocketAddress => ({
  transport: "tcp",
  hostname,
  port,
  family: hostname.includes(":") ? "IPv6" : "IPv4",
});
const BOUND = tcp("127.0.0.1", 7007);
const PEER = tcp("127.0.0.1", 50123);

let running: ServerCore | undefined;
afterEach(async () => {
  await running?.close({ force: true });
  running = undefined;
});

function serverCore(options: ListenOptions | UnixListenOptions, bound: Address = BOUND): ServerCore {
  const core = new ServerCore("node", resolveListenOptions(options));
  core.attach({ address: bound, close() {} });
  running = core;
  return core;
}

/** A fake accepted socket that echoes at once and counts how often core asks where it is. */
function socket(core: ServerCore, local: SocketAddress = BOUND) {
  const asked = { remote: 0, local: 0 };
  const io: AcceptedIO = {
    remoteAddress: () => {
      asked.remote++;
      return PEER;
    },
    localAddress: () => {
      asked.local++;
      return local;
    },
    write: (chunk) => events.onFlushed(chunk.byteLength),
    pause() {},
    resume() {},
    closeWrite() {},
    close: () => events.onClose(),
    // As on a real socket, the close is reported later, to whatever accept returned.
    destroy: () => queueMicrotask(() => events.onClose()),
  };
  const events: SocketEvents = core.accept(io);
  return { events, asked };
}

describe("a connection's addresses (server core, fake sockets)", () => {
  test("without hooks or limits nothing asks a socket where it is: an idle connection holds no address objects", () => {
    const core = serverCore({ port: 0 });
    const { events, asked } = socket(core);
    events.onData(Uint8Array.of(1, 2, 3));
    events.onEnd();
    expect(core.stats).toMatchObject({ accepted: 1, bytesIn: 3, bytesOut: 3, active: 0 });
    expect(asked).toEqual({ remote: 0, local: 0 });
  });

  test("onConnection, onClose and onError get the peer from the socket, the local end from the bound address", async () => {
    const connections: ConnectionInfo[] = [];
    const closes: ConnectionSummary[] = [];
    const errors: [EchoError, ConnectionInfo | undefined][] = [];
    const core = serverCore({
      port: 0,
      onConnection: (info) => void connections.push(info),
      onClose: (summary) => void closes.push(summary),
      onError: (error, info) => void errors.push([error, info]),
    });
    const { events, asked } = socket(core);
    events.onError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
    await new Promise((resolve) => setTimeout(resolve, 0));
    const expected = { id: 1, localAddress: BOUND, remoteAddress: PEER };
    expect(connections).toEqual([expect.objectContaining(expected)]);
    expect(closes).toEqual([expect.objectContaining({ ...expected, reason: "error" })]);
    expect(errors).toHaveLength(1);
    const [error, info] = errors[0] as [EchoError, ConnectionInfo];
    expect(error.code).toBe("ECONNRESET");
    expect(error.message).toContain("127.0.0.1:50123");
    expect(info).toBe(connections[0]);
    // Asked once, at accept, while the socket still knows.
    expect(asked).toEqual({ remote: 1, local: 0 });
  });

  test("on a wildcard listener the local end is each socket's own", () => {
    const connections: ConnectionInfo[] = [];
    const core = serverCore({ port: 0, onConnection: (info) => void connections.push(info) }, tcp("0.0.0.0", 7007));
    const { asked } = socket(core, tcp("10.0.0.2", 7007));
    expect(connections[0]?.localAddress).toEqual(tcp("10.0.0.2", 7007));
    expect(asked).toEqual({ remote: 1, local: 1 });
  });

  test("a per-address limit asks for the peer at accept, and counts it", () => {
    const closes: ConnectionSummary[] = [];
    const core = serverCore({ port: 0, maxConnectionsPerAddress: 1, onClose: (summary) => void closes.push(summary) });
    const first = socket(core);
    socket(core);
    expect(closes).toEqual([expect.objectContaining({ id: 2, remoteAddress: PEER, reason: "limit" })]);
    expect(first.asked.remote).toBe(1);
  });

  test("a Unix socket's ends come from its path; the socket is never asked", () => {
    const connections: ConnectionInfo<Address>[] = [];
    const path = "/tmp/echo-info.sock";
    const core = serverCore(
      { transport: "unix", path, onConnection: (info) => void connections.push(info) },
      { transport: "unix", path },
    );
    const { asked } = socket(core);
    expect(connections[0]).toMatchObject({
      localAddress: { transport: "unix", path },
      remoteAddress: { transport: "unix", path: "" },
    });
    expect(asked).toEqual({ remote: 0, local: 0 });
  });
});
