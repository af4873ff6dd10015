import { describe, expect, test } from "vitest";
import { ClientConnection } from "../src/client.ts";
import type { EchoError } from "../src/errors.ts";
import { resolveConnectOptions } from "../src/options.ts";
import type { SocketIO } from "../src/protocol.ts";
import type { SocketAddress } from "../src/types.ts";

const address: SocketAddress = { transport: "tcp", hostname: "127.0.0.1", port: 7, family: "IPv4" };

/** A client over a socket that flushes every write at once and records what it was asked. */
function client() {
  const calls: string[] = [];
  const connection = new ClientConnection("node", resolveConnectOptions({ port: 7 }));
  const io: SocketIO = {
    write: (chunk) => connection.onFlushed(chunk.byteLength),
    pause: () => calls.push("pause"),
    resume: () => calls.push("resume"),
    closeWrite: () => calls.push("closeWrite"),
    close: () => calls.push("close"),
    destroy: () => calls.push("destroy"),
  };
  connection.attach({ info: { localAddress: address, remoteAddress: address }, io });
  return { connection, calls };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as EchoError).code;
  }
  return undefined;
}

describe("ClientConnection: how an early EOF is reported (no sockets)", () => {
  test("EOF after our half-close with bytes missing is a short echo: EPROTO", async () => {
    const { connection, calls } = client();
    const echo = connection.echo("abcdef");
    await connection.closeWrite();
    connection.onData(new TextEncoder().encode("abc"));
    connection.onEnd();
    expect(await codeOf(echo)).toBe("EPROTO");
    expect(calls).toContain("destroy");
  });

  test("EOF while we are still sending is a torn connection: ECONNRESET, as Linux reports some resets", async () => {
    const { connection, calls } = client();
    const echo = connection.echo("abcdef");
    connection.onData(new TextEncoder().encode("abc"));
    connection.onEnd();
    expect(await codeOf(echo)).toBe("ECONNRESET");
    expect(await codeOf(connection.closed)).toBe("ECONNRESET");
    expect(calls).toContain("destroy");
  });
});

describe("ClientConnection: writes per tick (no sockets)", () => {
  function recording() {
    const writes: number[] = [];
    const connection = new ClientConnection("node", resolveConnectOptions({ port: 7 }));
    const io: SocketIO = {
      write: (chunk) => {
        writes.push(chunk.byteLength);
        connection.onFlushed(chunk.byteLength);
      },
      pause: () => {},
      resume: () => {},
      closeWrite: () => writes.push(-1),
      close: () => {},
      destroy: () => {},
    };
    connection.attach({ info: { localAddress: address, remoteAddress: address }, io });
    return { connection, writes };
  }

  test("pipelined small echoes in one tick go to the socket as one write, and still match one by one", async () => {
    const { connection, writes } = recording();
    const replies = ["ab", "cd", "ef"].map((text) => connection.echo(text));
    expect(writes).toEqual([]);
    await Promise.resolve();
    expect(writes).toEqual([6]);
    connection.onData(new TextEncoder().encode("abcdef"));
    expect((await Promise.all(replies)).map((r) => new TextDecoder().decode(r))).toEqual(["ab", "cd", "ef"]);
  });

  test("a large write goes straight through, after the small ones queued before it", () => {
    const { connection, writes } = recording();
    void connection.echo("small");
    void connection.echo(new Uint8Array(64 * 1024));
    expect(writes).toEqual([5, 64 * 1024]);
  });

  test("closeWrite sends the FIN only after the gathered writes", async () => {
    const { connection, writes } = recording();
    void connection.echo("x");
    await connection.closeWrite();
    await Promise.resolve();
    expect(writes).toEqual([1, -1]);
  });
});

describe("ClientConnection: a TLS peer closing without close_notify (no sockets)", () => {
  // rustls (Deno) reports it as an error mentioning TLS; OpenSSL (Node, Bun) as a plain EOF.
  const truncation = Object.assign(new Error("peer closed connection without sending TLS close_notify"), {
    name: "UnexpectedEof",
  });

  test("with nothing outstanding it is a clean EOF, not ETLS", async () => {
    const { connection } = client();
    const echo = connection.echo("abc");
    connection.onData(new TextEncoder().encode("abc"));
    await echo;
    await connection.closeWrite();
    connection.onError(truncation);
    connection.onClose();
    await expect(connection.closed).resolves.toBeUndefined();
  });

  test("after our half-close with bytes missing it is a short echo: EPROTO", async () => {
    const { connection } = client();
    const echo = connection.echo("abcdef");
    await connection.closeWrite();
    connection.onData(new TextEncoder().encode("abc"));
    connection.onError(truncation);
    expect(await codeOf(echo)).toBe("EPROTO");
  });
});
