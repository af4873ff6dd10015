import { expect, test } from "vitest";
import { type CliHost, runCli } from "../src/_cli.ts";
import type { EchoServer } from "../src/types.ts";

test("serve listens for signals before it prints the listening line, and a signal closes it with exit 0", async () => {
  const events: string[] = [];
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const server = {
    runtime: "node",
    address: { transport: "tcp", hostname: "127.0.0.1", port: 4321, family: "IPv4" },
    connections: 0,
    stats: { active: 0, accepted: 0, rejected: 0, idleClosed: 0, bytesIn: 0, bytesOut: 0, errors: {} },
    closed,
    close: async () => resolveClosed(),
  } as unknown as EchoServer;
  let signal: ((name: string) => void) | undefined;
  const code = runCli({
    runtime: "node",
    program: "tcp-echo-test",
    args: ["serve", "--port", "0"],
    // A fake for both overloads (TCP and Unix); only the TCP one is called.
    listen: (async () => server) as CliHost["listen"],
    connect: (() => Promise.reject(new Error("not used"))) as CliHost["connect"],
    stdout: (data) => void events.push(`stdout ${String(data).trim()}`),
    stderr: () => {},
    stdin: () => (async function* () {})(),
    onSignal: (handler) => {
      events.push("onSignal");
      signal = handler;
      return () => {};
    },
  });
  await Promise.resolve();
  await Promise.resolve();
  expect(events).toEqual(["onSignal", "stdout Server listening on 127.0.0.1:4321"]);
  signal?.("SIGTERM");
  expect(await code).toBe(0);
});
