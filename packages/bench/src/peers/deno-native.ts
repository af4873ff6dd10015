/**
 * The best hand-written echo server on Deno, as someone who knows Deno writes
 * it: per connection one read loop into one reused 64 KiB buffer, and a write
 * loop for each chunk (`conn.write` may take part of it); the next read waits
 * for the write, so the buffer is free again. After EOF, half-close.
 */
import { announce } from "./common.ts";

async function echo(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (let count = await conn.read(buffer); count !== null; count = await conn.read(buffer)) {
      for (let offset = 0; offset < count; ) offset += await conn.write(buffer.subarray(offset, count));
    }
    await conn.closeWrite();
  } catch {
    // A reset: nothing to echo to.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
announce((listener.addr as Deno.NetAddr).port);
for await (const conn of listener) {
  conn.setNoDelay(true);
  void echo(conn);
}
