/**
 * A real link between two network namespaces this test creates (a veth pair):
 * the server runs in one, the client in the other, and the link goes down mid
 * transfer. No proxy can fake this: nothing answers at all, no FIN, no RST.
 * The host's own interfaces and qdiscs are never touched. Needs root (and the
 * `ip` tool); skipped with the reason otherwise.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { cliOf, killAll, spawnWithLines } from "@tcp-echo/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { DriverResult } from "../src/driver.ts";
import { commandFor, missing, RUNTIMES } from "../src/servers.ts";

const DRIVER = fileURLToPath(new URL("../src/driver.ts", import.meta.url));

/** Names unique to this process: concurrent runs never share a namespace. */
const SERVER_NS = `tcp-echo-${process.pid}-s`;
const CLIENT_NS = `tcp-echo-${process.pid}-c`;
const SERVER_LINK = `te${process.pid}s`;
const CLIENT_LINK = `te${process.pid}c`;
const SERVER_IP = "10.99.0.1";

function ip(...args: string[]): { ok: boolean; stderr: string } {
  const result = spawnSync("ip", args, { encoding: "utf8", timeout: 10_000 });
  return { ok: result.status === 0, stderr: (result.stderr ?? result.error?.message ?? "").trim() };
}

/** Why namespaces cannot be used here, or undefined. Creates nothing. */
function unavailable(): string | undefined {
  if (process.platform !== "linux") return "network namespaces are Linux only";
  if (process.getuid?.() !== 0) return "creating network namespaces needs root";
  const probe = ip("netns", "list");
  if (!probe.ok) return `'ip netns' does not work here: ${probe.stderr}`;
  return undefined;
}

const why = unavailable();

afterAll(() => {
  killAll();
  // Deleting a namespace also deletes its end of the veth pair, and so the pair.
  ip("netns", "del", SERVER_NS);
  ip("netns", "del", CLIENT_NS);
});

describe.skipIf(why)(`netns: a link that goes down mid-transfer${why ? ` (skipped: ${why})` : ""}`, () => {
  beforeAll(() => {
    const steps: string[][] = [
      ["netns", "add", SERVER_NS],
      ["netns", "add", CLIENT_NS],
      ["link", "add", SERVER_LINK, "netns", SERVER_NS, "type", "veth", "peer", "name", CLIENT_LINK, "netns", CLIENT_NS],
      ["-n", SERVER_NS, "addr", "add", `${SERVER_IP}/30`, "dev", SERVER_LINK],
      ["-n", CLIENT_NS, "addr", "add", "10.99.0.2/30", "dev", CLIENT_LINK],
      ["-n", SERVER_NS, "link", "set", SERVER_LINK, "up"],
      ["-n", CLIENT_NS, "link", "set", CLIENT_LINK, "up"],
      ["-n", SERVER_NS, "link", "set", "lo", "up"],
      ["-n", CLIENT_NS, "link", "set", "lo", "up"],
    ];
    for (const step of steps) {
      const result = ip(...step);
      if (!result.ok) throw new Error(`ip ${step.join(" ")}: ${result.stderr}`);
    }
  });

  /** A server of `runtime` inside the server namespace, on the veth address. */
  async function serveInNamespace(runtime: (typeof RUNTIMES)[number]) {
    const [file, args] = commandFor(runtime, cliOf(runtime), [
      "serve",
      "--host",
      SERVER_IP,
      "--port",
      "0",
      "--json",
      "--idle-timeout",
      "3000",
    ]);
    const server = spawnWithLines("ip", ["netns", "exec", SERVER_NS, file, ...args], { timeoutMs: 90_000 });
    const port = (JSON.parse(await server.line((l) => l.includes('"listening"'), 30_000)) as { port: number }).port;
    return { server, port };
  }

  /** The driver of `runtime` in the client namespace: 256 KiB echoes, each with a 2 s timeout, for 4 s. */
  function clientInNamespace(runtime: (typeof RUNTIMES)[number], target: string) {
    const [file, args] = commandFor(runtime, DRIVER, [
      "--package",
      runtime,
      "--host",
      SERVER_IP,
      "--size",
      String(256 * 1024),
      "--echo-timeout",
      "2000",
      "--duration",
      "4000",
      "--deadline",
      "30000",
      "--targets",
      target,
    ]);
    return spawnWithLines("ip", ["netns", "exec", CLIENT_NS, file, ...args], { timeoutMs: 60_000 });
  }

  async function resultOf(driver: ReturnType<typeof clientInNamespace>): Promise<DriverResult> {
    await driver.ended;
    const line = driver.lines.find((l) => l.startsWith("{"));
    if (!line) throw new Error(`no result from the driver; stderr: ${driver.stderrTail()}`);
    return JSON.parse(line) as DriverResult;
  }

  const setLink = (state: "up" | "down") => ip("-n", CLIENT_NS, "link", "set", CLIENT_LINK, state);

  for (const runtime of RUNTIMES.filter((r) => !missing(r))) {
    test(`${runtime}: the link goes down for good mid-transfer: the client reports ETIMEDOUT (no hang), the server closes it by idle timeout`, async () => {
      const { server, port } = await serveInNamespace(runtime);
      const driver = clientInNamespace(runtime, `down=${port}:ETIMEDOUT`);
      try {
        await server.line((l) => l.includes('"connection"'), 30_000);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(setLink("down").ok).toBe(true);
        const result = await resultOf(driver);
        expect(result.failure).toBeUndefined();
        expect(result).toMatchObject({ ok: true, code: "ETIMEDOUT" });
        expect(result.bytes).toBeGreaterThan(0);
        // The server never hears of it (no FIN, no RST): only its idle timeout lets the connection go.
        const close = JSON.parse(await server.line((l) => l.includes('"close"'), 15_000));
        expect(close.reason).toBe("idle-timeout");
      } finally {
        setLink("up");
        await driver.kill();
        await server.kill();
      }
    }, 90_000);

    test(`${runtime}: the link flaps (down 500 ms, then up): TCP recovers and every echo comes back byte-exact`, async () => {
      const { server, port } = await serveInNamespace(runtime);
      const driver = clientInNamespace(runtime, `flap=${port}:echo`);
      try {
        await server.line((l) => l.includes('"connection"'), 30_000);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(setLink("down").ok).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(setLink("up").ok).toBe(true);
        const result = await resultOf(driver);
        expect(result.failure).toBeUndefined();
        expect(result.ok).toBe(true);
        expect(result.bytes).toBeGreaterThan(0);
      } finally {
        setLink("up");
        await driver.kill();
        await server.kill();
      }
    }, 90_000);
  }
});
