/**
 * The best hand-written load client on Deno, as someone who knows Deno writes
 * it, doing what the C load generator does (loadgen.ts has its flags, bytes,
 * check and JSON line): per connection a read loop into one reused 64 KiB
 * buffer and a write loop (`conn.write` may take part of what it is given),
 * which writes everything allowed so far as one view of the table and sleeps
 * until the read loop allows more. Churn: `closeWrite()` (the half-close) once
 * the echo is back, then read to EOF, then `close()`.
 */
import { LoadRun } from "./loadgen.ts";

const run = new LoadRun(process.argv.slice(2));
const { host, port, mode, conns, size } = run.options;

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

async function dial(): Promise<Deno.TcpConn | undefined> {
  try {
    const conn = await Deno.connect({ hostname: host, port });
    conn.setNoDelay(true);
    return conn;
  } catch (error) {
    run.noteError("connect", error);
    return undefined;
  }
}

/** Pipelined and bulk: one connection for the whole run. */
async function stream(): Promise<void> {
  const c = run.connection();
  const conn = await dial();
  if (!conn) return;
  const buffer = new Uint8Array(64 * 1024);
  let wake: (() => void) | undefined;
  const writer = async () => {
    for (;;) {
      const chunk = c.pending();
      if (chunk === undefined) await new Promise<void>((resolve) => (wake = resolve));
      else c.sent += await conn.write(chunk);
    }
  };
  const reader = async () => {
    for (let count = await conn.read(buffer); count !== null; count = await conn.read(buffer)) {
      if (!run.echoed(c, buffer, count)) return;
      const waiting = wake;
      wake = undefined;
      waiting?.();
    }
    run.closedMidStream();
  };
  try {
    await Promise.race([writer(), reader()]);
  } catch (error) {
    if (!run.stopped) run.noteError("socket", error);
  } finally {
    close(conn);
  }
}

/** Churn: one of `conns` lanes, a connection at a time. */
async function churn(): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  while (run.reopening) {
    const c = run.connection();
    const conn = await dial();
    if (!conn) continue;
    try {
      for (let chunk = c.pending(); chunk !== undefined; chunk = c.pending()) c.sent += await conn.write(chunk);
      let count = await conn.read(buffer);
      for (; count !== null; count = await conn.read(buffer)) {
        if (!run.echoed(c, buffer, count)) break;
        if (c.received === size && !c.halfClosed) {
          c.halfClosed = true;
          await conn.closeWrite();
        }
      }
      if (count === null) run.ended(c);
    } catch (error) {
      run.noteError("socket", error);
    } finally {
      close(conn);
    }
  }
}

run.time();
for (let i = 0; i < conns; i++) void (mode === "churn" ? churn() : stream());
