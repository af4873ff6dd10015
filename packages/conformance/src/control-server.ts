/**
 * The negative control: an echo server with two bugs seen in real ones, which
 * the suite must flag in every column. A suite that cannot fail proves nothing.
 *
 * 1. No backpressure: it keeps reading while the peer does not, so a client that
 *    never reads grows this process's memory without limit.
 * 2. The client's half-close is taken as the end of the conversation: on EOF the
 *    socket is destroyed, dropping the echo not yet written.
 *
 * It batches its writes on a short timer (to save syscalls, as servers do) and
 * holds the last byte of each batch back until the peer has been quiet for
 * TAIL_MS ("more is coming"), so bug 2 shows with any client that half-closes
 * within TAIL_MS of its last bytes, whatever the socket buffers and the
 * scheduler do: that byte is never handed to the socket before the FIN, and is
 * dropped with it. A 20 ms timer alone let a client that stalled 20 ms between
 * its data and its FIN (a loaded machine, Bun under `bunx --bun`) get its whole
 * echo, and the control went uncaught. Exchanges where the client waits for
 * its echo before half-closing still work, TAIL_MS late, which is exactly why
 * such servers ship.
 *
 *   node --import tsx control-server.ts --host 127.0.0.1 --port 0 [--tls-cert F --tls-key F]
 *   node --import tsx control-server.ts --unix PATH
 */

import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    host: { type: "string" },
    port: { type: "string" },
    unix: { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
  },
});
const secure = values["tls-cert"] && values["tls-key"];
/** The most it hands the socket at once: what it still holds at the client's EOF is what it drops. */
const PIECE = 64 * 1024;
/** Its write batching: a batch goes out this long after its first chunk, but for its last byte. */
const BATCH_MS = 20;
/** The last byte goes out only after this long with nothing more from the peer: a FIN before then drops it. */
const TAIL_MS = 300;
const onConnection = (socket: net.Socket) => {
  // What it has read and not yet queued; after a batch, the byte it holds back.
  let held: Buffer[] = [];
  let batchTimer: NodeJS.Timeout | undefined;
  let tailTimer: NodeJS.Timeout | undefined;
  // Its own unbounded queue (bug 1), fed to the socket only as the socket drains: Bun 1.4's destroy() still sends the
  // write in flight (https://github.com/oven-sh/bun/pull/43250), where Node's drops it, so the echo bug 2 drops must
  // be bytes this process still holds.
  const queue: Buffer[] = [];
  const feed = () => {
    while (queue.length > 0 && socket.writableLength === 0) socket.write(queue.shift()!);
  };
  const enqueue = (echo: Buffer) => {
    for (let at = 0; at < echo.length; at += PIECE) queue.push(echo.subarray(at, at + PIECE));
    feed();
  };
  socket.on("data", (chunk: Buffer) => {
    clearTimeout(tailTimer);
    tailTimer = undefined;
    held.push(chunk);
    batchTimer ??= setTimeout(() => {
      batchTimer = undefined;
      const echo = Buffer.concat(held);
      held = [echo.subarray(echo.length - 1)];
      enqueue(echo.subarray(0, echo.length - 1));
      tailTimer = setTimeout(() => {
        tailTimer = undefined;
        enqueue(Buffer.concat(held));
        held = [];
      }, TAIL_MS);
    }, BATCH_MS);
  });
  socket.on("drain", feed);
  socket.on("end", () => {
    clearTimeout(batchTimer);
    clearTimeout(tailTimer);
    socket.destroy();
  });
  socket.on("error", () => socket.destroy());
};
const server = secure
  ? tls.createServer(
      { allowHalfOpen: true, cert: readFileSync(values["tls-cert"]!), key: readFileSync(values["tls-key"]!) },
      onConnection,
    )
  : net.createServer({ allowHalfOpen: true }, onConnection);
const listening = () => {
  const bound = server.address();
  const where = typeof bound === "string" ? { path: bound } : { hostname: bound?.address, port: bound?.port };
  process.stdout.write(`${JSON.stringify({ event: "listening", runtime: "control", ...where })}\n`);
};
if (values.unix) server.listen({ path: values.unix }, listening);
else server.listen({ host: values.host ?? "127.0.0.1", port: Number(values.port ?? 0) }, listening);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(0));
