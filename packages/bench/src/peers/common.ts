/**
 * What every peer script shares. A peer is a server or a client run inside one
 * runtime (Node, Bun or Deno) by the bench, so this file uses only APIs all three
 * have: the global `process` (Deno 2 has it too) and web standards.
 */

import type { EchoConnection, EchoRuntime, EchoServer } from "@tcp-echo/core";

/**
 * The bench reads the first stdout line, `{"port":P,"pid":N}`, and measures the
 * server's memory through that pid (a wrapper such as a shim has its own).
 * The peer exits when its stdin closes, so a bench that dies (even by SIGKILL)
 * leaves no server behind, and after `lifetime` seconds in any case.
 */
export function announce(port: number, lifetime = 900): void {
  console.log(JSON.stringify({ port, pid: process.pid }));
  process.stdin.on("data", () => {});
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  setTimeout(() => process.exit(0), lifetime * 1000).unref?.();
}

/** `--name value` pairs into numbers. */
export function numbers(args: readonly string[]): Record<string, number> {
  const values: Record<string, number> = {};
  for (let i = 0; i + 1 < args.length; i += 2) {
    const name = (args[i] as string).replace(/^--/, "");
    const value = Number(args[i + 1]);
    if (!Number.isFinite(value)) throw new Error(`--${name}: expected a number, got ${args[i + 1]}`);
    values[name] = value;
  }
  return values;
}

/**
 * `serve`: our server, through the package's public `listen`, with defaults
 * except the port. `maxConnections` is lifted only so the 10,000-connection
 * scenario measures memory, not the default limit of exactly 10,000.
 * `client`: our client, `connect().echo()` pipelined: `depth` echo calls in
 * flight on each of `conns` connections, for `duration` seconds after `warmup`.
 */
export async function main(runtime: EchoRuntime, args: readonly string[]): Promise<void> {
  const [command, ...rest] = args;
  if (command === "serve") {
    const server: EchoServer = await runtime.listen({ port: 0, maxConnections: 0 });
    announce(server.address.port);
    return;
  }
  if (command === "client") {
    const result = await drive(runtime, numbers(rest));
    console.log(JSON.stringify(result));
    process.exit(0);
  }
  throw new Error(`usage: <peer> serve | client --port P [--conns C --size S --depth D --duration S --warmup S]`);
}

async function drive(runtime: EchoRuntime, options: Record<string, number>) {
  const { port, conns = 50, size = 64, depth = 16, duration = 3, warmup = 1 } = options;
  if (!port) throw new Error("client: --port is required");
  const pattern = new Uint8Array(1 << 16);
  crypto.getRandomValues(pattern);
  const connections: EchoConnection[] = [];
  for (let i = 0; i < conns; i++) connections.push(await runtime.connect({ port }));
  let measuring = false;
  let stopped = false;
  let messages = 0;
  let errors = 0;
  let wrongBytes = 0;
  let firstError = "";
  const lane = async (connection: EchoConnection, seed: number) => {
    for (let offset = seed; !stopped; offset = (offset + size + 1) % (pattern.length - size)) {
      const payload = pattern.subarray(offset, offset + size);
      const echoed = await connection.echo(payload);
      // The connection already compares every byte (a mismatch rejects with
      // EPROTO); this is the bench's own check on what `echo()` hands back.
      for (let i = 0; i < size; i++) if (echoed[i] !== payload[i]) wrongBytes++;
      if (measuring) messages++;
    }
  };
  const lanes: Promise<void>[] = [];
  connections.forEach((connection, c) => {
    for (let d = 0; d < depth; d++)
      lanes.push(
        lane(connection, (c * 7919 + d * 104729) % (pattern.length - size)).catch((error: unknown) => {
          errors++;
          const code = (error as { code?: string }).code;
          if (code === "EPROTO") wrongBytes++;
          firstError ||= String((error as Error).message ?? error);
        }),
      );
  });
  await sleep(warmup * 1000);
  measuring = true;
  const start = performance.now();
  await sleep(duration * 1000);
  measuring = false;
  const seconds = (performance.now() - start) / 1000;
  stopped = true;
  await Promise.all(lanes);
  for (const connection of connections) await connection.close();
  return {
    runtime: runtime.runtime,
    conns,
    size,
    depth,
    seconds,
    msgs: messages,
    msgs_per_s: messages / seconds,
    mb_per_s: (messages * size) / seconds / 1e6,
    errors,
    wrong_bytes: wrongBytes,
    ...(firstError ? { first_error: firstError } : {}),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
