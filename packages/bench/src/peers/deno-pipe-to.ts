/** What a Deno user writes instead: the web-streams echo, `conn.readable.pipeTo(conn.writable)`. */
import { announce } from "./common.ts";

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
announce((listener.addr as Deno.NetAddr).port);
for await (const conn of listener) {
  // An unobserved rejection (a reset mid-pipe) would end the Deno process.
  conn.readable.pipeTo(conn.writable).catch(() => {});
}
