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
