/** Shared by the transport tests: certificates made at test time, socket paths, every runtime's CLI. */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import type * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ConnectOptions, connect, type EchoError, isEchoError, type UnixConnectOptions } from "../src/index.ts";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAKE_CERTS = join(ROOT, "packages/core/test/fixtures/make-certs.sh");
/** Every runtime's CLI, as the matrix starts it: the real binaries, never the .bin shims. */
export const CLI = {
  node: [process.execPath, "--import", "tsx", join(ROOT, "packages/node/src/cli.ts")],
  bun: [join(ROOT, "node_modules/bun/bin/bun.exe"), join(ROOT, "packages/bun/src/cli.ts")],
  deno: [
    join(ROOT, "node_modules/deno/deno"),
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--no-prompt",
    "--config",
    join(ROOT, "packages/deno/deno.json"),
    join(ROOT, "packages/deno/src/cli.ts"),
  ],
} as const;
export type Runtime = keyof typeof CLI;
export const RUNTIMES = Object.keys(CLI) as Runtime[];

// Short: a Unix socket path holds at most 107 bytes.
export const DIR = mkdtempSync(join(tmpdir(), "echo-"));
export const certs = makeCerts();

/** A CA, a server leaf for localhost/127.0.0.1/::1 and a client leaf, made now with openssl; never committed. */
function makeCerts() {
  const dir = join(DIR, "certs");
  const made = spawnSync("sh", [MAKE_CERTS, dir], { timeout: 30_000 });
  if (made.status !== 0) throw new Error(`make-certs.sh failed: ${made.stderr}`);
  const file = (name: string) => join(dir, name);
  const read = (name: string) => readFileSync(file(name), "utf8");
  return {
    file,
    ca: read("ca.pem"),
    otherCa: read("other-ca.pem"),
    server: { cert: read("server.pem"), key: read("server.key") },
    client: { cert: read("client.pem"), key: read("client.key") },
  };
}

let sockets = 0;
export const socketPath = () => join(DIR, `s${++sockets}.sock`);

/** Teardown steps of the running test, run last first by `runCleanup` (each test file's `afterEach`). */
export const cleanup: Array<() => unknown> = [];

export async function runCleanup(): Promise<void> {
  for (const step of cleanup.splice(0).reverse()) await step();
}

export async function start<T extends { close(options?: { force?: boolean }): Promise<void> }>(server: Promise<T>) {
  const started = await server;
  cleanup.push(() => started.close({ force: true }));
  return started;
}

export const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
export const text = (data: Uint8Array) => new TextDecoder().decode(data);

export async function failure(promise: Promise<unknown>): Promise<EchoError> {
  try {
    await promise;
  } catch (error) {
    if (isEchoError(error)) return error;
    throw new Error(`not an EchoError: ${String(error)}`);
  }
  throw new Error("resolved, expected a failure");
}

/** Echoes `payload` on a new connection (any error rejects: connect, handshake or echo). */
export async function roundTrip(options: ConnectOptions | UnixConnectOptions, payload: Uint8Array | string) {
  const client = options.transport === "unix" ? await connect(options) : await connect(options);
  try {
    const echoed = await client.echo(payload, { timeout: 20_000 });
    await client.closeWrite();
    await client.closed;
    return echoed;
  } finally {
    await client.close();
  }
}

/** Sends `payload` and half-closes before reading anything; reads to EOF after a pause. */
export async function halfCloseSlowReader(socket: net.Socket, payload: Uint8Array): Promise<Buffer> {
  socket.pause();
  socket.end(payload);
  await new Promise((r) => setTimeout(r, 300));
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.resume();
  await new Promise((resolve, reject) => {
    socket.once("end", resolve);
    socket.once("error", reject);
  });
  socket.destroy();
  return Buffer.concat(chunks);
}

export function opened(socket: net.Socket, event = "connect"): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    socket.once(event, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** A runtime's CLI `serve`, killed after the test; resolves with its first stdout line. */
export async function serveCli(runtime: Runtime, args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const [command, ...prefix] = CLI[runtime];
  const child = spawn(command, [...prefix, "serve", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  cleanup.push(() => {
    clearTimeout(timer);
    child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    const wait = setTimeout(() => reject(new Error(`${runtime} serve did not start: ${stderr}`)), 30_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk;
      const newline = buffered.indexOf("\n");
      if (newline >= 0) {
        clearTimeout(wait);
        resolve(buffered.slice(0, newline));
      }
    });
    child.once("exit", (code) => reject(new Error(`${runtime} serve exited ${code}: ${stderr}`)));
  });
  return { child, line };
}

/** Runs a runtime's CLI to completion with a hard timeout. */
export function runCli(
  runtime: Runtime,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [command, ...prefix] = CLI[runtime];
  const child = spawn(command, [...prefix, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
}

export const portOf = (line: string) => Number(/:(\d+)$/.exec(line)?.[1]);
export const TLS_SERVE = () => [
  "--port",
  "0",
  "--tls-cert",
  certs.file("server.pem"),
  "--tls-key",
  certs.file("server.key"),
];
