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
