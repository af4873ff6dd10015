/**
 * tcp-echo over `node:net`. The protocol, limits and bookkeeping are core's; this
 * file is only the table of how a Node socket carries them out.
 */

import * as net from "node:net";
import {
  type ConnectOptions,
  type EchoConnection,
  type EchoServer,
  type ListenOptions,
  openConnection,
  type SocketAddress,
  type SocketEvents,
  type SocketInfo,
  type SocketIO,
  startServer,
} from "@tcp-echo/core";

// --- types ---

export const runtime = "node";

// --- adapter ---

export function listen(options?: ListenOptions): Promise<EchoServer> {
  return startServer(runtime, options, (config, server) => {
    // allowHalfOpen: Node defaults to false and would close our side as soon as
    // the client half-closes, dropping the echo still queued.
    const listener = net.createServer({ allowHalfOpen: true, noDelay: config.noDelay });
    listener.on("connection", (socket) => {
      socket.setNoDelay(config.noDelay);
      const { io, wire } = adapt(socket);
      wire(server.accept(infoOf(socket), io));
    });
    return new Promise((resolve, reject) => {
      listener.once("error", reject);
      listener.listen({ host: config.hostname, port: config.port }, () => {
        listener.off("error", reject);
        // After binding, errors are accept failures (EMFILE): libuv keeps the
        // listener open, so report and keep serving.
        listener.on("error", (error) => server.reportError(error));
        resolve({
          address: addressOf(listener.address() as net.AddressInfo),
          // Stops accepting at once; Node's own close callback would wait for
          // every connection, which core's drain handles instead.
          close: () => void listener.close(),
        });
      });
    });
  });
}

export function connect(options?: ConnectOptions): Promise<EchoConnection> {
  return openConnection(runtime, options, (config, events, signal) => {
    const socket = net.connect({
      host: config.hostname,
      port: config.port,
      allowHalfOpen: true,
      noDelay: config.noDelay,
    });
    return new Promise((resolve, reject) => {
      const onAbort = () => socket.destroy();
      signal.addEventListener("abort", onAbort, { once: true });
      socket.once("error", reject);
      socket.once("connect", () => {
        signal.removeEventListener("abort", onAbort);
        socket.off("error", reject);
        const { io, wire } = adapt(socket);
        wire(events);
        resolve({ info: infoOf(socket), io });
      });
    });
  });
}

/**
 * How core's protocol maps onto a Node socket: `io` carries out core's actions,
 * `wire` forwards the socket's events to core.
 */
function adapt(socket: net.Socket): { io: SocketIO; wire(events: SocketEvents): void } {
  let events: SocketEvents | undefined;
  return {
    io: {
      // Node buffers every write; the callback fires once the chunk is in the kernel.
      write: (chunk) => {
        socket.write(chunk, (error) => {
          if (!error) events?.onFlushed(chunk.byteLength);
        });
      },
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      closeWrite: () => socket.end(),
      // FIN after the last write, then release the descriptor without waiting for
      // the peer's FIN (a server only closes after the peer's EOF anyway).
      close: () => socket.end(() => socket.destroy()),
      destroy: () => socket.destroy(),
    },
    // Every socket gets an 'error' listener: without one, a reset crashes Node.
    wire: (target) => {
      events = target;
      socket.on("data", (chunk: Buffer) => target.onData(chunk));
      socket.on("end", () => target.onEnd());
      socket.on("error", (error) => target.onError(error));
      socket.on("close", () => target.onClose());
    },
  };
}

// --- utils ---

function infoOf(socket: net.Socket): SocketInfo {
  return {
    localAddress: endpoint(socket.localAddress, socket.localPort, socket.localFamily),
    remoteAddress: endpoint(socket.remoteAddress, socket.remotePort, socket.remoteFamily),
  };
}

function addressOf(info: net.AddressInfo): SocketAddress {
  return endpoint(info.address, info.port, info.family);
}

/** A socket reset before we look at it has no addresses left; report it as unknown rather than throw. */
function endpoint(hostname: string | undefined, port: number | undefined, family: string | undefined): SocketAddress {
  return {
    transport: "tcp",
    hostname: hostname ?? "unknown",
    port: port ?? 0,
    family: family === "IPv6" ? "IPv6" : "IPv4",
  };
}
