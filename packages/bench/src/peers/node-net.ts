/**
 * What a user writes instead, on any runtime's `node:net`: the one-line echo
 * server. The only addition is the error listener, without which the first
 * reset (the load generator closing mid-echo) would crash the process.
 */
import * as net from "node:net";
import { announce } from "./common.ts";

const server = net.createServer((socket) => {
  socket.on("error", () => {});
  socket.pipe(socket);
});
server.listen(0, "127.0.0.1", () => announce((server.address() as net.AddressInfo).port));
