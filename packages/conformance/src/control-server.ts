/**
 * The negative control: an echo server with two bugs seen in real ones, which
 * the suite must flag in every column. A suite that cannot fail proves nothing.
 *
 * 1. No backpressure: it keeps reading while the peer does not, so a client that
 *    never reads grows this process's memory without limit.
 * 2. The client's half-close is taken as the end of the conversation: on EOF the
 *    socket is destroyed, dropping the echo not yet written.
 *
 * It batches its writes on a short timer (to save syscalls, as servers do), so
 * bug 2 always shows: the last batch is still pending when the FIN arrives, with
 * any client, not only when the socket buffers happen to be full. Exchanges
 * where the client waits for its echo before half-closing still work, which is
 * exactly why such servers ship.
 *
 *   node --import tsx control-server.ts --host 127.0.0.1 --port 0
 */

import * as net from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { host: { type: "string" }, port: { type: "string" } } });
const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  let batch: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  socket.on("data", (chunk: Buffer) => {
    batch.push(chunk);
    timer ??= setTimeout(() => {
      timer = undefined;
      socket.write(Buffer.concat(batch));
      batch = [];
    }, 20);
  });
  socket.on("end", () => {
    clearTimeout(timer);
    socket.destroy();
  });
  socket.on("error", () => socket.destroy());
});
server.listen({ host: values.host ?? "127.0.0.1", port: Number(values.port ?? 0) }, () => {
  const { address, port } = server.address() as net.AddressInfo;
  process.stdout.write(`${JSON.stringify({ event: "listening", runtime: "control", hostname: address, port })}\n`);
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(0));
