/**
 * The best hand-written load client on Node, as someone who knows Node writes
 * it, doing what the C load generator does (loadgen.ts has its flags, bytes,
 * check and JSON line): `net.connect` with the `onread` option, so every
 * connection reads into one reused buffer, checked before the callback
 * returns; each read's newly allowed bytes go out as one `write()` of a view
 * of the table (one write per read, nothing copied). Bulk writes 64 KiB
 * chunks until `write()` says the kernel did not take one (Node has queued
 * it), then waits for `drain`. Churn: `end()` (the half-close) once the echo
 * is back, then the server's EOF, then `destroy()`.
 */
import * as net from "node:net";
import { type Connection, LoadRun } from "./loadgen.ts";

const run = new LoadRun(process.argv.slice(2));
const { host, port, mode, conns } = run.options;

// One buffer for every connection, as loadgen.c has one: libuv reads into it
// and calls back at once, and the callback has checked the bytes before it
// returns, so no read lands in it while another's bytes are still needed.
const buffer = Buffer.allocUnsafe(64 * 1024);

function open(): void {
  const c: Connection = run.connection();
  const write = () => {
    for (let chunk = c.pending(); chunk !== undefined; chunk = c.pending()) {
      c.sent += chunk.byteLength;
      if (!socket.write(chunk)) return;
    }
  };
  const socket = net.connect({
    host,
    port,
    noDelay: true,
    allowHalfOpen: true,
    onread: {
      buffer,
      callback: (count: number) => {
        if (!run.echoed(c, buffer, count)) {
          socket.destroy();
          return false;
        }
        if (mode !== "churn") run.afterLanes(write);
        else if (c.received === run.options.size && !c.halfClosed) {
          c.halfClosed = true;
          socket.end();
        }
        return true;
      },
    },
  });
  socket.on("connect", write);
  socket.on("drain", write);
  socket.on("end", () => {
    if (mode === "churn") run.ended(c);
    else run.closedMidStream();
    socket.destroy();
  });
  socket.on("error", (error) => run.noteError(c.received ? "read" : "connect", error));
  if (mode === "churn") socket.on("close", () => run.reopening && open());
}

run.time();
for (let i = 0; i < conns; i++) open();
