/**
 * The best hand-written echo server on Node, as someone who knows Node writes
 * it: each connection reads into one reused 64 KiB buffer (`net.Socket`'s
 * `onread` option: no allocation per chunk), writes it straight back, and
 * reads again only once the kernel has taken it all (until then the buffer
 * is still the write's: reading is paused, resumed when the write completes);
 * after EOF, `end()` once everything is flushed.
 *
 * `net.Server` does not pass `onread` to the sockets it accepts (the option is
 * read by the `Socket` constructor only, https://github.com/nodejs/node/issues/53792),
 * so each accepted connection, paused on connect, is wrapped again with it.
 */
import * as net from "node:net";
import { announce } from "./common.ts";

type WithHandle = net.Socket & { _handle: unknown };

function echo(accepted: net.Socket): void {
  const handle = (accepted as WithHandle)._handle;
  (accepted as WithHandle)._handle = null;
  accepted.destroy();
  const buffer = Buffer.allocUnsafe(64 * 1024);
  let paused = false;
  const flushed = () => {
    if (paused && socket.writableLength === 0) {
      paused = false;
      socket.resume();
    }
  };
  const socket: net.Socket = new net.Socket({
    handle,
    allowHalfOpen: true,
    readable: true,
    writable: true,
    onread: {
      buffer,
      callback: (count: number) => {
        socket.write(buffer.subarray(0, count), flushed);
        // Not all taken at once: the queued write still points into the buffer.
        if (socket.writableLength > 0) paused = true;
        return !paused;
      },
    },
  } as net.SocketConstructorOpts);
  socket.setNoDelay(true);
  socket.on("error", () => {});
  socket.on("end", () => socket.end());
}

const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, echo);
server.listen(0, "127.0.0.1", () => announce((server.address() as net.AddressInfo).port));
