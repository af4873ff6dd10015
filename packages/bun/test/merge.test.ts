/**
 * The client's merge of adjacent large writes (`BunSocketIO.write`), seen
 * through Bun's own `socket.write`, wrapped on the socket prototype to record
 * the writes of views of the test's buffers.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type EchoServer, listen } from "../src/index.ts";
import { onSocketWrites, randomBytes } from "./helpers.ts";

const PIECE = 64 * 1024;
let server: EchoServer;
/** The byte lengths of `socket.write` calls on views of `watched`. */
const calls: number[] = [];
const watched = new Set<ArrayBufferLike>();
let restore: () => void;

beforeAll(async () => {
  server = await listen({ port: 0 });
  restore = await onSocketWrites(server.address.port, (chunk) => {
    if (chunk instanceof Uint8Array && watched.has(chunk.buffer)) calls.push(chunk.byteLength);
  });
});

afterAll(async () => {
  restore();
  await server.close({ force: true });
});

/** Reads `size` bytes of echo. */
async function readAll(client: { read(): Promise<Uint8Array | null> }, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let got = 0;
  while (got < size) {
    const chunk = await client.read();
    if (!chunk) throw new Error(`EOF after ${got} of ${size} bytes`);
    out.set(chunk, got);
    got += chunk.byteLength;
  }
  return out;
}

test("a tick's adjacent large writes go out as fewer, larger socket writes", async () => {
  const data = randomBytes(4 * PIECE);
  watched.add(data.buffer);
  calls.length = 0;
  await using client = await connect({ port: server.address.port });
  const written = [0, 1, 2, 3].map((i) => client.write(data.subarray(i * PIECE, (i + 1) * PIECE)));
  const echo = await readAll(client, data.byteLength);
  await Promise.all(written);
  expect(Buffer.compare(echo, data)).toBe(0);
  // Unmerged, no write is longer than one piece.
  expect(Math.max(...calls)).toBeGreaterThan(PIECE);
});

test("a write that does not continue the last one goes out after those waiting, in order", async () => {
  const a = randomBytes(3 * PIECE);
  const b = randomBytes(PIECE);
  watched.add(a.buffer);
  watched.add(b.buffer);
  await using client = await connect({ port: server.address.port });
  // a0 and a1 are adjacent (a1 waits); b is not, so a1 must go before it; a2 continues a1 in memory, not b.
  const pieces = [a.subarray(0, PIECE), a.subarray(PIECE, 2 * PIECE), b, a.subarray(2 * PIECE)];
  const written = pieces.map((piece) => client.write(piece));
  const expected = Buffer.concat(pieces);
  const echo = await readAll(client, expected.byteLength);
  await Promise.all(written);
  expect(Buffer.compare(echo, expected)).toBe(0);
});
