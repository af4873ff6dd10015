/** Behaviours measured from outside a server process: RSS, CPU at the descriptor limit, the CLI. */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { connect } from "../src/index.ts";
import {
  BUN,
  children,
  cpuTicks,
  killChildren,
  lines,
  randomBytes,
  rssKiB,
  sha256,
  spawnChild,
  until,
  writeUntilStalled,
} from "./helpers.ts";

const FIXTURE = new URL("./fixtures/server.ts", import.meta.url).pathname;
const CLI = new URL("../src/cli.ts", import.meta.url).pathname;

afterEach(() => killChildren());

/** Starts the fixture server (optionally under a command prefix such as prlimit); returns its pid and port. */
async function serverProcess(options: object = {}, prefix: string[] = []) {
  const child = spawnChild([...prefix, BUN, FIXTURE, JSON.stringify(options)]);
  const next = lines(child);
  const { port } = JSON.parse(await next()) as { port: number };
  const stats = async () => {
    child.stdin.write("stats\n");
    child.stdin.flush();
    return JSON.parse(await next()) as { active: number; errors: Record<string, number> };
  };
  return { child, port, stats };
}

describe("bun server process: memory stays bounded for a peer that never reads", () => {
  // Without pausing reads while the write queue is long, the server buffers
  // everything the peer sends (seen: 227 MB).
  test("a client writing 200 MB without reading stalls early and server RSS grows < 32 MB", async () => {
    const { child, port } = await serverProcess();
    await using warm = await connect({ port });
    await warm.echo(randomBytes(1024 * 1024));
    const before = rssKiB(child.pid);
    const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    socket.pause();
    const sent = await writeUntilStalled(socket, 200 * 1024 * 1024);
    const grownKiB = rssKiB(child.pid) - before;
    socket.terminate();
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    expect(grownKiB).toBeLessThan(32 * 1024);
  });
});

describe("bun server process: at the descriptor limit", () => {
  // Bun's accept loop retries EMFILE in a tight loop without telling JavaScript
  // (measured: ~100% of a core for as long as the limit is hit).
  test("under prlimit --nofile=64 with 120 clients the server does not spin, and serves again once descriptors free up", async () => {
    const { child, port, stats } = await serverProcess({}, ["prlimit", "--nofile=64:64"]);
    const held: Socket[] = [];
    const attempts = Array.from({ length: 120 }, () =>
      Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, connectError() {} } }).then(
        (socket) => void held.push(socket),
        () => {},
      ),
    );
    await Promise.all(attempts);
    await until(() => held.length > 0);
    await Bun.sleep(500);
    const begin = cpuTicks(child.pid);
    await Bun.sleep(2000);
    const ticks = cpuTicks(child.pid) - begin;
    // 100 ticks per second is one core; a spinning accept loop takes ~200 here.
    expect(ticks).toBeLessThan(50);
    expect((await stats()).errors.EMFILE).toBeGreaterThanOrEqual(1);
    for (const socket of held) socket.terminate();
    await until(async () => (await stats()).active === 0, 10_000);
    const payload = randomBytes(64 * 1024);
    let echoed: Uint8Array | undefined;
    await until(async () => {
      if (echoed) return true;
      try {
        await using client = await connect({ port, timeout: 1000 });
        echoed = await client.echo(payload, { timeout: 1000 });
      } catch {}
      return echoed !== undefined;
    }, 10_000);
    expect(sha256(echoed as Uint8Array)).toBe(sha256(payload));
  });
});

describe("cli: serve, send, ping", () => {
  /** `keepStdinOpen`: write `input` and leave stdin open, as a terminal with nothing more to type would. */
  function run(args: string[], input?: Uint8Array, keepStdinOpen = false) {
    const child = spawnChild([BUN, CLI, ...args], { timeoutMs: 30_000 });
    if (input) child.stdin.write(input);
    if (keepStdinOpen) child.stdin.flush();
    else child.stdin.end();
    return Promise.all([child.exited, new Response(child.stdout).bytes(), new Response(child.stderr).text()]).then(
      ([code, stdout, stderr]) => {
        children.delete(child);
        return { code, stdout, stderr };
      },
    );
  }

  async function serve() {
    const child = spawnChild([BUN, CLI, "serve", "--port", "0"]);
    const next = lines(child);
    const first = await next();
    return { child, next, first, port: Number(/:(\d+)$/.exec(first)?.[1]) };
  }

  test("serve prints the tutorial's lines; send gets 'Hello, server!' back and exits 0", async () => {
    const { next, first, port } = await serve();
    expect(first).toMatch(/^Server listening on 127\.0\.0\.1:\d+$/);
    const sent = await run(["send", "--port", String(port)]);
    expect(sent.code).toBe(0);
    expect(new TextDecoder().decode(sent.stdout)).toBe("Received response from server: Hello, server!\n");
    expect(await next()).toMatch(/^New connection from 127\.0\.0\.1:\d+$/);
  });

  test("send - streams stdin to stdout byte-exact (binary)", async () => {
    const { port } = await serve();
    const input = randomBytes(3 * 1024 * 1024);
    const sent = await run(["send", "--port", String(port), "-"], input);
    expect(sent.code).toBe(0);
    expect(sha256(sent.stdout)).toBe(sha256(input));
  });

  test("ping prints one line per reply, then min/avg/max/mdev, and exits 0", async () => {
    const { port } = await serve();
    const pinged = await run(["ping", "--port", String(port), "--count", "3", "--interval", "10"]);
    expect(pinged.code).toBe(0);
    const out = new TextDecoder().decode(pinged.stdout);
    expect(out.match(/seq=\d+ time=/g)?.length).toBe(3);
    expect(out).toMatch(/3 sent, 3 received, 0% loss/);
  });

  test("SIGTERM closes the server gracefully: exit 0", async () => {
    const { child } = await serve();
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
  });

  test.each([
    ["send to a port nothing listens on", ["send", "--port", "1"], 1],
    ["a bad port", ["send", "--port", "abc"], 2],
    ["an unknown command", ["frobnicate"], 2],
    ["no command", [], 2],
  ])("exit code for %s", async (_name, args, code) => {
    const result = await run(args as string[]);
    expect(result.code).toBe(code as number);
    expect(result.stderr).toContain("tcp-echo-bun");
  });
});

describe("cli: send --timeout against a server that stalls", () => {
  const TIMEOUT = 2000;

  /**
   * Breaks RFC 862 by waiting: `silent` reads and never answers; `never-closes`
   * echoes but ignores the client's half-close. It records when it accepted, so
   * the bound is measured from the connect, not from the CLI's start-up.
   */
  function stallingServer(kind: "silent" | "never-closes") {
    const accepted: number[] = [];
    const server = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      allowHalfOpen: true,
      socket: {
        open: () => void accepted.push(performance.now()),
        data: (socket, data) => {
          if (kind === "never-closes") socket.write(data);
        },
        // Ignores the client's FIN: what the test is about.
        end: () => {},
      },
    });
    return { port: server.port, accepted, stop: () => server.stop(true) };
  }

  function runCli(args: string[], input: Uint8Array | undefined, keepStdinOpen: boolean) {
    const child = spawnChild([BUN, CLI, ...args], { timeoutMs: 30_000 });
    if (input) child.stdin.write(input);
    if (keepStdinOpen) child.stdin.flush();
    else child.stdin.end();
    return Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]);
  }

  test.each([
    ["silent", "hello", ""],
    ["silent", "-", ""],
    ["never-closes", "hello", "Received response from server: hello\n"],
    ["never-closes", "-", "streamed\n"],
  ] as const)(
    "%s server, send %s: exit 1 with ETIMEDOUT within the timeout + 1 s, after printing what came back",
    async (kind, mode, printed) => {
      const server = stallingServer(kind);
      try {
        // Against the silent server stdin stays open: the client must not wait on it.
        const input = mode === "-" ? new TextEncoder().encode("streamed\n") : undefined;
        const [code, stdout, stderr] = await runCli(
          ["send", "--port", String(server.port), "--timeout", String(TIMEOUT), mode],
          input,
          kind === "silent",
        );
        const ended = performance.now();
        expect(code).toBe(1);
        expect(stderr).toMatch(/^tcp-echo-bun: read ETIMEDOUT 127\.0\.0\.1:\d+: .*--timeout/);
        expect(stdout).toBe(printed);
        expect(server.accepted).toHaveLength(1);
        expect(ended - (server.accepted[0] as number)).toBeGreaterThanOrEqual(TIMEOUT);
        expect(ended - (server.accepted[0] as number)).toBeLessThan(TIMEOUT + 1000);
      } finally {
        server.stop();
      }
    },
    40_000,
  );

  test("serve --stats 2147484 exits 2 naming the flag and range, before binding (the port is held)", async () => {
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => {} } });
    try {
      const [code, stdout, stderr] = await runCli(
        ["serve", "--port", String(holder.port), "--stats", "2147484"],
        undefined,
        false,
      );
      expect(code).toBe(2);
      expect(stderr).toMatch(/^tcp-echo-bun: --stats must be an integer from 0 to 2147483, got "2147484"/);
      expect(stdout).toBe("");
    } finally {
      holder.stop(true);
    }
  });
});
