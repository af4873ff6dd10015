/** A misbehaving peer for the tests of a client's timeouts (the CLI tests and the matrix's `client-timeouts`). */

import * as net from "node:net";

/**
 * A server on 127.0.0.1 that breaks RFC 862 by waiting: `silent` reads everything and
 * answers nothing; `never-closes` echoes but ignores the client's half-close.
 * It records when each connection was accepted, so the bound runs from the
 * connect, not from the CLI's start-up (tsx and deno compile first).
 */
export async function stallingServer(kind: "silent" | "never-closes") {
  const accepted: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(performance.now());
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.on("data", (data: Buffer) => {
      if (kind === "never-closes") socket.write(data);
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * An echo server that gets the bytes wrong, for proving a client or load
 * generator checks them, on its first connection only (the others echo
 * faithfully): `flip` inverts the byte at stream offset `at`, `extra` sends one
 * byte more after offset `at`, `short` stops echoing at offset `at` (it still
 * reads, and closes after the client's EOF).
 */
export async function corruptingServer(kind: "flip" | "extra" | "short", at = 0) {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const faulty = accepted++ === 0;
    let offset = 0;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.on("end", () => socket.end());
    socket.on("data", (chunk: Buffer) => {
      if (!faulty) {
        socket.write(chunk);
        return;
      }
      const start = offset;
      offset += chunk.length;
      const inside = at >= start && at < offset;
      if (kind === "short") {
        if (start < at) socket.write(chunk.subarray(0, Math.min(chunk.length, at - start)));
        return;
      }
      if (kind === "flip" && inside) chunk[at - start] = (chunk[at - start] as number) ^ 0xff;
      socket.write(chunk);
      if (kind === "extra" && inside) socket.write(Buffer.from([0x2a]));
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
