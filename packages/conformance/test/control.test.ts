/**
 * The negative control's second bug (it takes the client's half-close as the
 * end, dropping the echo it still holds) must show with any client that
 * half-closes soon after its data, not only one whose data and FIN arrive
 * within one batch timer: a loaded machine can stall a client that long, and
 * the control then went uncaught. And it must stay a server that works for a
 * client that waits for its echo, as such servers do.
 */

import * as net from "node:net";
import { fileURLToPath } from "node:url";
import { type ManagedProcess, spawnManaged } from "@tcp-echo/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const CONTROL = fileURLToPath(new URL("../src/control-server.ts", import.meta.url));

let control: ManagedProcess;
let port: number;

beforeAll(async () => {
  control = spawnManaged(process.execPath, ["--import", "tsx", CONTROL, "--host", "127.0.0.1", "--port", "0"], {
    label: "control-server",
    timeoutMs: 60_000,
  });
  const line = await new Promise<string>((resolve, reject) => {
    let text = "";
    control.child.stdout?.setEncoding("utf8");
    control.child.stdout?.on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("\n")) resolve(text.slice(0, text.indexOf("\n")));
    });
    void control.exited.then(() => reject(new Error(`the control exited: ${control.stderrTail()}`)));
  });
  port = (JSON.parse(line) as { port: number }).port;
});

afterAll(async () => {
  await control?.kill();
});

/**
 * Sends `payload`, then half-closes `stallMs` later (or, with `waitForEcho`, once the whole echo is back), and
 * collects what comes back until the server closes.
 */
function exchange(payload: Buffer, how: { stallMs: number } | { waitForEcho: true }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => {
      socket.write(payload);
      if ("stallMs" in how) setTimeout(() => socket.end(), how.stallMs);
    });
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if ("waitForEcho" in how && length === payload.length) socket.end();
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks)));
    socket.setTimeout(10_000, () => socket.destroy(new Error("no close from the control within 10 s")));
  });
}

const payload = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 251));

describe("the negative control", () => {
  test.each([0, 100])(
    "a client that half-closes %i ms after its data (the batch timer is 20 ms) loses the tail of its echo",
    async (stallMs) => {
      const echoed = await exchange(payload, { stallMs });
      expect(echoed.length).toBeLessThan(payload.length);
      // What it does echo is the stream's start, in order: the bug is a drop, not garbling.
      expect(echoed.equals(payload.subarray(0, echoed.length))).toBe(true);
    },
  );

  test("a client that waits for its echo before half-closing gets all of it", async () => {
    const echoed = await exchange(payload, { waitForEcho: true });
    expect(echoed.equals(payload)).toBe(true);
  });
});
