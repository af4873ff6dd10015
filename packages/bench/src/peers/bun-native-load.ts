/**
 * The best hand-written load client on Bun, as someone who knows Bun writes
 * it, doing what the C load generator does (loadgen.ts has its flags, bytes,
 * check and JSON line): `Bun.connect`, whose `write` takes what the kernel
 * takes and returns the count; what it leaves is the write queue, written
 * again on `drain`. The queue needs no copies: what is unsent is always one
 * run of the (never changed) table, from `sent` to `allowed`. Each read's
 * newly allowed bytes go out as one write. Churn: `shutdown()` (the
 * half-close) once the echo is back, then the server's EOF, then close.
 */
import { type Connection, LoadRun } from "./loadgen.ts";

const run = new LoadRun(process.argv.slice(2));
const { host, port, mode, conns, size } = run.options;

/** Writes what is allowed until the kernel stops taking it (then `drain` calls again). */
function write(socket: Bun.Socket<Connection>): void {
  const c = socket.data;
  for (let chunk = c.pending(); chunk !== undefined; chunk = c.pending()) {
    const written = socket.write(chunk);
    if (written <= 0) return;
    c.sent += written;
    if (written < chunk.byteLength) return;
  }
}

const handlers: Bun.SocketHandler<Connection> = {
  open: write,
  data(socket, chunk) {
    const c = socket.data;
    if (!run.echoed(c, chunk, chunk.byteLength)) {
      socket.terminate();
      return;
    }
    if (mode !== "churn") {
      c.flush ??= () => write(socket);
      run.afterLanes(c.flush);
    } else if (c.received === size && !c.halfClosed) {
      c.halfClosed = true;
      socket.shutdown();
    }
  },
  drain: write,
  end(socket) {
    if (mode === "churn") run.ended(socket.data);
    else run.closedMidStream();
    socket.end();
  },
  close(socket, error) {
    const c = socket.data;
    if (error) run.noteError("read", error);
    // After our shutdown(), the server's FIN closes the socket without calling
    // `end` (uSockets' eof branch for a shut-down socket,
    // https://github.com/oven-sh/bun/pull/35947): this is the EOF.
    else if (mode === "churn" && c.halfClosed) run.ended(c);
    if (mode === "churn" && run.reopening) open();
  },
  error(_socket, error) {
    run.noteError("socket", error);
  },
  connectError(_socket, error) {
    run.noteError("connect", error);
    if (mode === "churn" && run.reopening) open();
  },
};

function open(): void {
  Bun.connect<Connection>({
    hostname: host,
    port,
    allowHalfOpen: true,
    data: run.connection(),
    socket: handlers,
  }).catch(() => {});
}

run.time();
for (let i = 0; i < conns; i++) open();
