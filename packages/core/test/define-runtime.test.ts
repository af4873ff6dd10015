import { describe, expect, test } from "vitest";
import { defineRuntime, type SocketEvents, type SocketIO, tcpAddress } from "../src/adapter.ts";
import { isEchoError } from "../src/index.ts";

/** A runtime table on pretend sockets that records what core asks of it. */
function fakeRuntime(files: Record<string, "socket" | "directory"> = {}, live: string[] = []) {
  const calls: string[] = [];
  const socket = (events: SocketEvents): SocketIO => ({
    write() {},
    pause() {},
    resume() {},
    closeWrite() {},
    close() {},
    destroy() {
      calls.push("destroy");
      events.onClose();
    },
  });
  const echo = defineRuntime({
    runtime: "node",
    bind: (config) => {
      calls.push(`bind ${config.transport}`);
      return {
        address:
          config.transport === "unix"
            ? { transport: "unix", path: config.path }
            : tcpAddress(config.hostname, config.port),
        close() {},
      };
    },
    dial: async (config, events) => {
      calls.push(`dial ${config.transport === "unix" ? config.path : config.port}`);
      if (config.transport === "unix" && !live.includes(config.path))
        throw Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
      const address = tcpAddress("127.0.0.1", 1);
      return { info: { localAddress: address, remoteAddress: address }, io: socket(events) };
    },
    unixFs: {
      stat: async (path) => {
        const kind = files[path];
        if (!kind) throw Object.assign(new Error("no such file"), { code: "ENOENT" });
        return { isSocket: () => kind === "socket", isDirectory: () => kind === "directory" };
      },
      unlink: async (path) => void calls.push(`unlink ${path}`),
    },
  });
  return { echo, calls };
}

describe("defineRuntime: what core does around an adapter's table", () => {
  test("a bad option is EINVAL before the table is called: no bind, no dial", async () => {
    const { echo, calls } = fakeRuntime();
    const listening = echo.listen({ port: -1 });
    await expect(listening).rejects.toSatisfy((error) => isEchoError(error, "EINVAL"));
    const connecting = echo.connect({ port: 70_000 });
    await expect(connecting).rejects.toSatisfy((error) => isEchoError(error, "EINVAL"));
    expect(calls).toEqual([]);
  });

  test("a stale Unix socket file is probed with the table's own dial, removed when refused, then bound", async () => {
    const { echo, calls } = fakeRuntime({ "/run": "directory", "/run/e.sock": "socket" });
    const server = await echo.listen({ transport: "unix", path: "/run/e.sock" });
    expect(server.address).toEqual({ transport: "unix", path: "/run/e.sock" });
    expect(calls).toEqual(["dial /run/e.sock", "unlink /run/e.sock", "bind unix"]);
    await server.close();
  });

  test("a live Unix socket's probe connection is destroyed, and the path is EADDRINUSE, never bound", async () => {
    const { echo, calls } = fakeRuntime({ "/run": "directory", "/run/e.sock": "socket" }, ["/run/e.sock"]);
    const listening = echo.listen({ transport: "unix", path: "/run/e.sock" });
    await expect(listening).rejects.toSatisfy((error) => isEchoError(error, "EADDRINUSE"));
    expect(calls).toEqual(["dial /run/e.sock", "destroy"]);
  });

  test("runtime, listen and connect are the table's: a TCP server reports the address bound", async () => {
    const { echo, calls } = fakeRuntime();
    expect(echo.runtime).toBe("node");
    const server = await echo.listen({ hostname: "::1", port: 7 });
    expect(server.address).toEqual({ transport: "tcp", hostname: "::1", port: 7, family: "IPv6" });
    const client = await echo.connect({ port: 9, drainTimeout: 0 });
    await client.close();
    expect(calls).toEqual(["bind tcp", "dial 9", "destroy"]);
    await server.close();
  });
});

describe("tcpAddress: one shape for every runtime's socket addresses", () => {
  test("the family follows from the numeric address", () => {
    expect(tcpAddress("127.0.0.1", 80)).toEqual({ transport: "tcp", hostname: "127.0.0.1", port: 80, family: "IPv4" });
    expect(tcpAddress("::ffff:127.0.0.1", 80).family).toBe("IPv6");
  });

  test("a socket reset before it was looked at has an unknown address, not a throw", () => {
    expect(tcpAddress(undefined, undefined)).toEqual({
      transport: "tcp",
      hostname: "unknown",
      port: 0,
      family: "IPv4",
    });
  });
});
