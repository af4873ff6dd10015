import { createHash } from "node:crypto";
import * as net from "node:net";
import * as tls from "node:tls";
import type {
  Address,
  ConnectOptions,
  EchoConnection,
  EchoError,
  EchoRuntime,
  EchoServer,
  ListenOptions,
  UnixAddress,
  UnixConnectOptions,
  UnixListenOptions,
} from "@tcp-echo/core";
import { makeCerts, roundTrip, tempDir } from "../fixtures.ts";

export { makeCerts, tempDir };

/** A runtime package as the suite takes it: its `index.ts`. */
export interface RuntimePackage extends EchoRuntime {
  isEchoError(value: unknown): value is EchoError;
}

/** The one thing the suite needs from a test runner. */
export interface TestApi {
  test(name: string, fn: () => Promise<void>, options: { timeout: number }): void;
}

/**
 * One case's resources, released last-first when the case ends whatever its
 * outcome, and the runtime under test with what a case asks of it.
 */
export class Scope {
  private readonly steps: Array<() => unknown> = [];
  readonly runtime: RuntimePackage;

  constructor(runtime: RuntimePackage) {
    this.runtime = runtime;
  }

  defer(step: () => unknown): void {
    this.steps.push(step);
  }

  /** The runtime's `listen`, the server force-closed when the case ends. */
  listen(options: UnixListenOptions): Promise<EchoServer<UnixAddress>>;
  listen(options?: ListenOptions): Promise<EchoServer>;
  async listen(options: ListenOptions | UnixListenOptions = { port: 0 }): Promise<EchoServer<Address>> {
    const server = await (options.transport === "unix" ? this.runtime.listen(options) : this.runtime.listen(options));
    this.defer(() => server.close({ force: true }));
    return server;
  }

  /** The runtime's `connect`, the connection closed when the case ends. */
  connect(options: UnixConnectOptions): Promise<EchoConnection<UnixAddress>>;
  connect(options?: ConnectOptions): Promise<EchoConnection>;
  async connect(options: ConnectOptions | UnixConnectOptions = {}): Promise<EchoConnection<Address>> {
    const client = await (options.transport === "unix" ? this.runtime.connect(options) : this.runtime.connect(options));
    this.defer(() => client.close());
    return client;
  }

  /** The `EchoError` a promise rejects with; anything else fails the case. */
  async failure(promise: Promise<unknown>): Promise<EchoError> {
    try {
      await promise;
    } catch (error) {
      if (this.runtime.isEchoError(error)) return error;
      throw new Error(`not an EchoError: ${String(error)}`);
    }
    throw new Error("resolved, expected a failure");
  }

  /** The code a promise rejects with; undefined when it resolves. */
  async codeOf(promise: Promise<unknown>): Promise<string | undefined> {
    try {
      await promise;
    } catch (error) {
      return this.runtime.isEchoError(error) ? error.code : `not an EchoError: ${String(error)}`;
    }
    return undefined;
  }

  /** Echoes `payload` on a new connection, half-closes, waits for the close; any error rejects. */
  roundTrip(options: ConnectOptions | UnixConnectOptions, payload: Uint8Array | string): Promise<Uint8Array> {
    return roundTrip(this.runtime, options, payload);
  }

  async dispose(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step();
  }
}

/** A case body, given its scope. */
export type Case = (t: Scope) => Promise<void>;
export type AddCase = (name: string, body: Case, timeout?: number) => void;

/**
 * Registers `body` as `name`, bounded by `timeout`: at the deadline the scope is
 * released (closing what the case opened, which unblocks it) and the case fails,
 * on every runner alike (`Deno.test` has no timeout of its own).
 */
export function caseAdder(runtime: RuntimePackage, api: TestApi): AddCase {
  return (name, body, timeout = 30_000) =>
    api.test(
      name,
      async () => {
        const scope = new Scope(runtime);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${name}: over ${timeout} ms`)), timeout);
        });
        try {
          await Promise.race([body(scope), deadline]);
        } finally {
          clearTimeout(timer);
          await scope.dispose();
        }
      },
      // The runner's own timeout is only a backstop behind the deadline above.
      { timeout: timeout + 10_000 },
    );
}

export const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
export const text = (data: Uint8Array) => new TextDecoder().decode(data);
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` every 10 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await delay(10);
  }
}

export type Certs = ReturnType<typeof makeCerts>;

/** A raw peer, destroyed when the case ends; resolves once connected (after the handshake for TLS). */
export function rawPeer(
  t: Scope,
  target: { port: number; host?: string; localAddress?: string } | { path: string } | { port: number; ca: string },
): Promise<net.Socket> {
  const socket =
    "ca" in target
      ? // Node passes allowHalfOpen on to the TLS socket; its types leave it out.
        tls.connect({ host: "127.0.0.1", ...target, allowHalfOpen: true } as tls.ConnectionOptions)
      : net.connect({ host: "127.0.0.1", ...target, allowHalfOpen: true } as net.NetConnectOpts);
  t.defer(() => socket.destroy());
  return new Promise((resolve, reject) => {
    socket.once("ca" in target ? "secureConnect" : "connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Reads a raw peer to EOF (or its close, on a reset). */
export function readToEnd(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    socket.once("end", () => resolve(Buffer.concat(chunks)));
    socket.once("close", () => resolve(Buffer.concat(chunks)));
    socket.once("error", reject);
  });
}

/**
 * Sends `payload` and half-closes before reading anything; reads to EOF only
 * after `pauseMs`, so the server's queue is full when the FIN arrives.
 */
export async function halfCloseSlowReader(socket: net.Socket, payload: Uint8Array, pauseMs = 500): Promise<Buffer> {
  socket.pause();
  socket.end(payload);
  await delay(pauseMs);
  const echoed = readToEnd(socket);
  socket.resume();
  return echoed;
}

/** Our client writes `payload` and half-closes, and reads to EOF only after `pauseMs`: the slow reader. */
export async function slowReader(client: EchoConnection<Address>, payload: Uint8Array, pauseMs = 500): Promise<Buffer> {
  const writing = client.write(payload).then(() => client.closeWrite());
  await delay(pauseMs);
  const chunks: Uint8Array[] = [];
  for (let chunk = await client.read(); chunk; chunk = await client.read()) chunks.push(chunk);
  await writing;
  await client.closed;
  return Buffer.concat(chunks);
}

/**
 * Writes to a raw peer that never reads until the writes stall (nothing drains
 * for 1 s: both sides' kernel buffers are full) or `limit` bytes, then waits
 * until `progress` (the server's count of bytes read) holds still for 500 ms;
 * returns the bytes written.
 */
export async function writeUntilStalled(socket: net.Socket, limit: number, progress: () => number): Promise<number> {
  socket.pause();
  const chunk = Buffer.alloc(64 * 1024, 7);
  let written = 0;
  while (written < limit) {
    written += chunk.byteLength;
    if (socket.write(chunk)) continue;
    const drained = await Promise.race([
      new Promise((resolve) => socket.once("drain", () => resolve(true))),
      delay(1000).then(() => false),
    ]);
    if (!drained) break;
  }
  for (let i = 0, last = -1; i < 20 && progress() !== last; i++) {
    last = progress();
    await delay(500);
  }
  return written;
}
