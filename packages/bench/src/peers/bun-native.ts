/**
 * The best hand-written echo server on Bun, as someone who knows Bun writes it:
 * `Bun.listen`, a write queue for what `write` did not take, reading paused
 * until `drain` has flushed it, and the close only after the peer's EOF and
 * the flush (`allowHalfOpen`, or Bun closes right after `end`).
 */
import { announce } from "./common.ts";

interface State {
  /** What `write` did not take, in order; reading is paused while it is not empty. */
  queue: Uint8Array[];
  ended: boolean;
}

/** Writes the queue in order; true once it is empty. Bun's write returns bytes taken, -1 when closed. */
function flush(socket: Bun.Socket<State>): boolean {
  const queue = socket.data.queue;
  while (queue.length) {
    const head = queue[0] as Uint8Array;
    const written = socket.write(head);
    if (written < 0) return false;
    if (written < head.byteLength) {
      queue[0] = head.subarray(written);
      return false;
    }
    queue.shift();
  }
  return true;
}

const server = Bun.listen<State>({
  hostname: "127.0.0.1",
  port: 0,
  allowHalfOpen: true,
  socket: {
    open(socket) {
      socket.data = { queue: [], ended: false };
    },
    data(socket, chunk) {
      socket.data.queue.push(chunk);
      if (!flush(socket)) socket.pause();
    },
    drain(socket) {
      if (!flush(socket)) return;
      if (socket.data.ended) socket.end();
      else socket.resume();
    },
    end(socket) {
      socket.data.ended = true;
      if (socket.data.queue.length === 0) socket.end();
    },
    error() {},
  },
});
announce(server.port);
