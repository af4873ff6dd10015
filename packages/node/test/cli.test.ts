import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as net from "node:net";
import { fileURLToPath } from "node:url";
import { cpuTicks, rssOf, stallingServer } from "@tcp-echo/testkit";
import { afterEach, describe, expect, test } from "vitest";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const children = new Set<ChildProcess>();

afterEach(() => {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
});

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the CLI to completion with a hard timeout; `input` goes to stdin, which then closes unless `keepStdinOpen`. */
function run(args: string[], input?: Uint8Array, timeoutMs = 20_000, keepStdinOpen = false): Promise<Run> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { stdio: "pipe" });
  children.add(child);
  const stdout: Buffer[] = [];
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => stdout.push(c));
  child.stderr.on("data", (c: Buffer) => {
    stderr += c;
  });
  child.stdin.on("error", () => {});
  if (keepStdinOpen) child.stdin.write(input ?? new Uint8Array(0));
  else child.stdin.end(input);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout: Buffer.concat(stdout), stderr });
    });
  });
}

/**
 * `run` with a slow reader: stdout is taken 4 KiB a millisecond, so the pipe stays
 * full and the CLI's last writes are still queued in the child when it is done.
 */
function runIntoSlowReader(args: string[], input: Uint8Array, timeoutMs = 30_000): Promise<Run> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { stdio: "pipe" });
  children.add(child);
  const stdout: Buffer[] = [];
  let stderr = "";
  child.stdout.on("readable", () => {});
  const reader = setInterval(() => {
    const chunk: Buffer | null = child.stdout.read(4096) ?? child.stdout.read();
    if (chunk) stdout.push(chunk);
  }, 1);
  child.stderr.on("data", (c: Buffer) => {
    stderr += c;
  });
  child.stdin.on("error", () => {});
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      clearInterval(reader);
      children.delete(child);
      resolve({ code, stdout: Buffer.concat(stdout), stderr });
    });
  });
}

/** Starts `serve` and waits for its first line; the process is killed after the test. */
async function serve(args: string[] = []): Promise<{ child: ChildProcess; port: number; lines: string[] }> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "serve", "--port", "0", ...args], { stdio: "pipe" });
  children.add(child);
  const lines: string[] = [];
  let buffered = "";
  const first = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start")), 15_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        if (lines.length === 1) {
          clearTimeout(timer);
          resolve(line);
        }
      }
    });
  });
  const line = await first;
  const port = args.includes("--json") ? JSON.parse(line).port : Number(/:(\d+)$/.exec(line)?.[1]);
  return { child, port, lines };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
}

const rssKiB = (pid: number): number => rssOf(pid) / 1024;

function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (predicate()) resolve();
      else if (Date.now() > deadline) reject(new Error("condition not met in time"));
      else setTimeout(check, 20);
    };
    check();
  });
}

describe("cli: serve, send, ping", () => {
  test("serve prints the tutorial's lines; send gets 'Hello, server!' back", async () => {
    const { port, lines } = await serve();
    expect(lines[0]).toBe(`Server listening on 127.0.0.1:${port}`);
    const result = await run(["send", "--port", String(port)]);
    expect(result.stdout.toString()).toBe("Received response from server: Hello, server!\n");
    expect(result.code).toBe(0);
    await until(() => lines.some((l) => /^New connection from 127\.0\.0\.1:\d+$/.test(l)));
  });

  test("serve --json: the first line is one JSON object with the real port, then one per event", async () => {
    const { port, lines } = await serve(["--json"]);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      event: "listening",
      runtime: "node",
      hostname: "127.0.0.1",
      port,
    });
    await run(["send", "--port", String(port), "two", "words"]);
    await until(() => lines.length >= 3);
    expect(JSON.parse(lines[1] as string)).toMatchObject({ event: "connection" });
    expect(JSON.parse(lines[2] as string)).toMatchObject({ event: "close", reason: "eof", bytesIn: 9, bytesOut: 9 });
  });

  test("send - streams stdin to stdout byte-exact (binary)", async () => {
    const { port } = await serve();
    const input = randomBytes(3 * 1024 * 1024);
    const result = await run(["send", "--port", String(port), "-"], input);
    expect(result.code).toBe(0);
    const hash = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    expect(hash(result.stdout)).toBe(hash(input));
  });

  test("send - into a slow stdout reader: all of the echo arrives, none left queued at exit", async () => {
    const { port } = await serve();
    // Not a multiple of 64 KiB, so the last write to stdout is a short one: write()
    // takes it without asking for 'drain' even when the pipe is full. Three at once,
    // as whether the pipe is full at that moment varies from run to run.
    const inputs = [1, 2, 3].map(() => randomBytes(3 * 1024 * 1024 - 12_345));
    const results = await Promise.all(
      inputs.map((input) => runIntoSlowReader(["send", "--port", String(port), "-"], input)),
    );
    const hash = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    for (const [i, result] of results.entries()) {
      const input = inputs[i] as Buffer;
      expect({ code: result.code, bytes: result.stdout.length }).toEqual({ code: 0, bytes: input.length });
      expect(hash(result.stdout)).toBe(hash(input));
    }
  });

  test("send - whose stdout reader goes away (| head -c 10): exit 1 with one EPIPE line, no crash", async () => {
    const { port } = await serve();
    const child = spawn(process.execPath, ["--import", "tsx", CLI, "send", "--port", String(port), "-"], {
      stdio: "pipe",
    });
    children.add(child);
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      stderr += c;
    });
    child.stdin.on("error", () => {});
    // Like `head -c 10`: take the first chunk, then close the read end of the pipe.
    child.stdout.once("data", () => child.stdout.destroy());
    child.stdin.end(randomBytes(8 * 1024 * 1024));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    clearTimeout(timer);
    expect(code).toBe(1);
    expect(stderr.trim()).toMatch(/^tcp-echo-node: .*EPIPE/);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });

  test("send exits 1 naming the problem when nothing listens", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((r) => probe.close(r));
    const result = await run(["send", "--port", String(port)]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`ECONNREFUSED 127.0.0.1:${port}`);
  });

  test("send exits 1 on a short echo instead of hanging", async () => {
    // Echoes 3 bytes, then closes: a broken echo server.
    const broken = net.createServer({ allowHalfOpen: true }, (s) => {
      s.once("data", (d: Buffer) => s.end(d.subarray(0, 3)));
      s.on("error", () => {});
    });
    await new Promise<void>((r) => broken.listen(0, "127.0.0.1", r));
    const { port } = broken.address() as net.AddressInfo;
    const result = await run(["send", "--port", String(port)]);
    broken.close();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/short echo .*echoing 3 of 14 bytes/);
  });

  test("ping prints one line per reply, then min/avg/max/mdev, and exits 0", async () => {
    const { port } = await serve();
    const result = await run(["ping", "--port", String(port), "--count", "3", "--interval", "10", "--size", "32"]);
    const text = result.stdout.toString();
    expect(result.code).toBe(0);
    expect(text.match(/^32 bytes from 127\.0\.0\.1:\d+: seq=\d time=[\d.]+ ms$/gm)).toHaveLength(3);
    expect(text).toMatch(/3 sent, 3 received, 0% loss/);
    expect(text).toMatch(/rtt min\/avg\/max\/mdev = [\d.]+\/[\d.]+\/[\d.]+\/[\d.]+ ms/);
  });

  test.each([
    [["serve", "--port", "abc"], /--port: expected an integer from 0 to 65535, got "abc"/],
    [["serve", "--port", "70000"], /expected an integer from 0 to 65535/],
    [["send", "--host", ""], /--host/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [["ping", "--count", "x"], /--count must be an integer/],
    [["serve", "--bogus"], /unknown option --bogus/],
  ])("usage error %j exits 2 with a one-line hint, no stack trace", async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("cli: shutdown on signals", () => {
  test("SIGTERM drains: an open connection finishes its echo, then the server exits 0", async () => {
    const { child, port } = await serve();
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    socket.on("error", () => {});
    await new Promise((r) => socket.once("connect", r));
    const received: Buffer[] = [];
    socket.on("data", (c: Buffer) => received.push(c));
    socket.write("first ");
    await until(() => received.length > 0);
    child.kill("SIGTERM");
    // The server stops accepting but lets this connection finish.
    await new Promise((r) => setTimeout(r, 200));
    socket.end("second");
    await new Promise((r) => socket.once("end", r));
    socket.destroy();
    expect(Buffer.concat(received).toString()).toBe("first second");
    expect(await exited(child)).toBe(0);
  });

  test("a second signal forces open connections closed", async () => {
    const { child, port } = await serve();
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    socket.on("error", () => {});
    await new Promise((r) => socket.once("connect", r));
    // Forced closed: a FIN (this socket is half-open, so "end") or a reset ("close").
    const closed = new Promise((r) => {
      socket.once("end", r);
      socket.once("close", r);
    });
    child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 200));
    const forced = performance.now();
    child.kill("SIGINT");
    expect(await exited(child)).toBe(0);
    await closed;
    // Far below the 10 s drain timeout the first signal alone waits for.
    expect(performance.now() - forced).toBeLessThan(2000);
    socket.destroy();
  });
});

describe("node server process: memory stays bounded for a peer that never reads", () => {
  test("a client writing 200 MB without reading stalls early and server RSS grows < 32 MB", async () => {
    const { child, port } = await serve();
    const pid = child.pid as number;
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.on("error", () => {});
    await new Promise((r) => socket.once("connect", r));
    socket.pause();
    await new Promise((r) => setTimeout(r, 300));
    const idle = rssKiB(pid);
    let peak = idle;
    let written = 0;
    const chunk = Buffer.alloc(256 * 1024, 1);
    while (written < 200 * 1024 * 1024) {
      written += chunk.byteLength;
      if (!socket.write(chunk)) {
        const drained = await Promise.race([
          new Promise((r) => socket.once("drain", () => r(true))),
          new Promise((r) => setTimeout(() => r(false), 1000)),
        ]);
        peak = Math.max(peak, rssKiB(pid));
        if (!drained) break;
      }
    }
    peak = Math.max(peak, rssKiB(pid));
    socket.destroy();
    // Stalled: kernel buffers on both sides plus the server's high-water mark, far from 200 MB.
    expect(written).toBeLessThan(64 * 1024 * 1024);
    expect(peak - idle).toBeLessThan(32 * 1024);
  }, 60_000);
});

describe("node server process: the descriptor limit", () => {
  test("under prlimit --nofile=64, 120 connection attempts: CPU stays idle, the server lives and serves again", async () => {
    const child = spawn(
      "prlimit",
      ["--nofile=64:64", process.execPath, "--import", "tsx", CLI, "serve", "--port", "0"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    children.add(child);
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("server did not start")), 15_000);
      child.stdout?.on("data", (chunk: Buffer) => {
        const match = /:(\d+)\n/.exec(chunk.toString());
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
    });
    const pid = child.pid as number;
    const ticks = () => cpuTicks(pid);
    const sockets = Array.from({ length: 120 }, () => {
      const socket = net.connect(port, "127.0.0.1");
      socket.on("error", () => {});
      return socket;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const before = ticks();
    await new Promise((r) => setTimeout(r, 2000));
    // A spinning accept loop would burn ~200 ticks (2 s of one core); allow a noisy machine 1/4 of that.
    expect(ticks() - before).toBeLessThan(50);
    for (const socket of sockets) socket.destroy();
    await new Promise((r) => setTimeout(r, 500));
    const result = await run(["send", "--port", String(port), "after", "the", "storm"]);
    expect(result.stdout.toString()).toBe("Received response from server: after the storm\n");
    expect(child.exitCode).toBeNull();
  }, 60_000);
});

describe("cli: send --timeout against a server that stalls", () => {
  const TIMEOUT = 2000;
  test.each([
    ["silent", "hello", ""],
    ["silent", "-", ""],
    ["never-closes", "hello", "Received response from server: hello\n"],
    ["never-closes", "-", "streamed\n"],
  ] as const)(
    "%s server, send %s: exit 1 with ETIMEDOUT within the timeout + 1 s, after printing what came back",
    async (kind, mode, printed) => {
      const server = await stallingServer(kind);
      try {
        // Against the silent server stdin stays open: the client must not wait on it.
        const input = mode === "-" ? Buffer.from("streamed\n") : undefined;
        const result = await run(
          ["send", "--port", String(server.port), "--timeout", String(TIMEOUT), mode],
          input,
          20_000,
          kind === "silent",
        );
        const ended = performance.now();
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(/^tcp-echo-node: read ETIMEDOUT 127\.0\.0\.1:\d+: .*--timeout/);
        expect(result.stdout.toString()).toBe(printed);
        expect(server.accepted).toHaveLength(1);
        expect(ended - (server.accepted[0] as number)).toBeLessThan(TIMEOUT + 1000);
        expect(ended - (server.accepted[0] as number)).toBeGreaterThanOrEqual(TIMEOUT);
      } finally {
        await server.close();
      }
    },
  );
});

describe("cli: bad input is rejected before any socket opens", () => {
  // The port is held by a listener of ours: a CLI that bound or connected first
  // would fail with EADDRINUSE (exit 1) or show up as an accepted connection.
  test.each([
    [["serve", "--stats", "x"], "--stats must be an integer from 0 to 2147483,"],
    [["serve", "--stats", "2147484"], "--stats must be an integer from 0 to 2147483,"],
    [["serve", "--idle-timeout", "2147483648"], "--idle-timeout must be an integer from 0 to 2147483647,"],
    [["ping", "--interval", "2147483648"], "--interval must be an integer from 0 to 2147483647,"],
    [["ping", "--size", String(64 * 1024 * 1024 + 1)], "--size must be an integer from 1 to 67108864,"],
    [["ping", "--count", "1000001"], "--count must be an integer from 1 to 1000000,"],
    [["send", "--timeout", "2147483648"], "--timeout must be an integer from 0 to 2147483647,"],
  ])("%j exits 2 naming the flag and its range, and opens no socket", async (args, message) => {
    let connections = 0;
    const holder = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    const { port } = holder.address() as net.AddressInfo;
    try {
      const result = await run([...args, "--port", String(port)]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stdout.toString()).toBe("");
      expect(connections).toBe(0);
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });
});

describe("cli: messages that point the right way", () => {
  test("a plain client against a TLS server: EPROTO, and the message says to connect with TLS", async () => {
    // A TLS server answers plain text with an alert record (0x15 0x03 ...), as Bun's does.
    const tlsLike = net.createServer((socket) => {
      socket.on("error", () => {});
      socket.once("data", () => socket.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32])));
    });
    await new Promise<void>((r) => tlsLike.listen(0, "127.0.0.1", r));
    const { port } = tlsLike.address() as net.AddressInfo;
    try {
      const result = await run(["send", "--port", String(port)]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/got 0x15; the reply looks like a TLS record.*--tls-ca/);
    } finally {
      await new Promise((r) => tlsLike.close(r));
    }
  });
});
