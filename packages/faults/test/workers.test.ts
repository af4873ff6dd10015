/**
 * `serve --workers 2` on every runtime: two workers accept on one port (seen in
 * the `--json` worker ids), SIGTERM drains both and the supervisor exits 0; a
 * worker that dies is reported with the connections it took along, and restarted.
 */

import { connect, type EchoConnection } from "@tcp-echo/node";
import { cliOf, groupMembers, runManaged } from "@tcp-echo/testkit";
import { describe, expect, test } from "vitest";
import {
  commandFor,
  missing,
  RUNTIMES,
  type RuntimeName,
  type ServerEvent,
  type ServerProcess,
  startServer,
} from "../src/servers.ts";

/** Workers that logged a connection from one of `ports`, by the client port. */
function workersOf(server: ServerProcess, ports: number[]): Map<number, number> {
  const seen = new Map<number, number>();
  for (const event of server.events())
    if (event.event === "connection") {
      const port = Number(String(event.remote).split(":").pop());
      if (ports.includes(port)) seen.set(port, Number(event.worker));
    }
  return seen;
}

/** Waits until `server` logged `count` connections among `ports`. */
async function logged(server: ServerProcess, ports: number[]): Promise<Map<number, number>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const seen = workersOf(server, ports);
    if (seen.size === ports.length || Date.now() > deadline) return seen;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Echoes on new connections until both workers have served one (bounded), each echo checked. */
async function untilBothServe(server: ServerProcess): Promise<Set<number>> {
  const ports: number[] = [];
  for (let i = 0; i < 40; i++) {
    const connection = await connect({ port: server.port, replyTimeout: 5000 });
    ports.push(connection.localAddress.port);
    expect(new TextDecoder().decode(await connection.echo(`hello ${i}`))).toBe(`hello ${i}`);
    await connection.close();
    const workers = new Set((await logged(server, ports)).values());
    if (workers.size === 2) return workers;
  }
  return new Set((await logged(server, ports)).values());
}

describe.each(RUNTIMES.filter((runtime) => !missing(runtime)))("serve --workers 2 on %s", (runtime: RuntimeName) => {
  test("both workers serve connections on one port; SIGTERM drains both (an open connection finishes its echo) and exits 0", async () => {
    const server = await startServer(runtime, ["--workers", "2"]);
    try {
      const listening = server.events().filter((event) => event.event === "listening");
      expect(listening).toMatchObject([{ workers: 2, port: server.port }]);
      expect(await untilBothServe(server)).toEqual(new Set([1, 2]));

      const open = await connect({ port: server.port, replyTimeout: 5000 });
      await open.echo("before");
      const at = server.process.lines.length;
      server.process.child.kill("SIGTERM");
      // Both workers have stopped accepting once a new connection is refused...
      const deadline = Date.now() + 5000;
      for (let refused = false; !refused && Date.now() < deadline; ) {
        try {
          await (await connect({ port: server.port, timeout: 1000 })).close();
          await new Promise((resolve) => setTimeout(resolve, 20));
        } catch {
          refused = true;
        }
      }
      // ...and they are draining, not forcing: the open connection still echoes, then its close lets its worker finish.
      expect(new TextDecoder().decode(await open.echo("while draining"))).toBe("while draining");
      await open.close();
      const exit = await server.process.exited;
      expect(exit.code).toBe(0);
      const closed = server.process.lines.slice(at).map((line) => JSON.parse(line) as ServerEvent);
      // The totals are both workers' together: every connection and every byte either of them logged.
      const events = server.events();
      const connections = events.filter((event) => event.event === "connection").length;
      const bytesIn = events
        .filter((event) => event.event === "close")
        .reduce((sum, event) => sum + Number(event.bytesIn), 0);
      expect(closed.at(-1)).toMatchObject({ event: "closed", workers: 2, active: 0, accepted: connections, bytesIn });
    } finally {
      await server.stop();
    }
  });
});

describe.skipIf(missing("node"))("serve --workers 2 on node: a worker that dies", () => {
  test("is reported with the connections it took along, and restarted: it serves again", async () => {
    const server = await startServer("node", ["--workers", "2"]);
    try {
      // Held-open connections, spread over both workers by the kernel.
      const held: EchoConnection[] = [];
      for (let i = 0; i < 8; i++) {
        const connection = await connect({ port: server.port, replyTimeout: 5000 });
        await connection.echo("held");
        connection.closed.catch(() => {});
        held.push(connection);
      }
      const onWorker = await logged(
        server,
        held.map((connection) => connection.localAddress.port),
      );
      const workerPids = groupMembers(server.pid).filter((pid) => pid !== server.pid);
      expect(workerPids).toHaveLength(2);
      process.kill(workerPids[0] as number, "SIGKILL");
      const exitLine = await server.process.line((line) => line.includes('"worker-exit"'), 5000);
      const exit = JSON.parse(exitLine) as ServerEvent;
      const lost = [...onWorker.values()].filter((worker) => worker === exit.worker).length;
      expect(exit).toMatchObject({ event: "worker-exit", lost, restartInMs: 100 });
      // The restarted worker accepts again on the same port.
      const from = server.process.lines.length;
      const deadline = Date.now() + 10_000;
      let served = false;
      while (!served && Date.now() < deadline) {
        const connection = await connect({ port: server.port, replyTimeout: 5000 });
        await connection.echo("again");
        await connection.close();
        await new Promise((resolve) => setTimeout(resolve, 20));
        served = server.process.lines
          .slice(from)
          .some((line) => line.includes('"connection"') && (JSON.parse(line) as ServerEvent).worker === exit.worker);
      }
      expect(served).toBe(true);
      for (const connection of held) await connection.close();
    } finally {
      await server.stop();
    }
  });
});

test.skipIf(missing("deno"))(
  "Deno without --unstable-net: --reuse-port exits 2 saying to add it (Deno would end the process)",
  async () => {
    const [file, args] = commandFor("deno", cliOf("deno"), ["serve", "--port", "0", "--reuse-port"]);
    const finished = await runManaged(file, args, { timeoutMs: 30_000 });
    expect(finished.code).toBe(2);
    expect(finished.stderr).toContain("run deno with --unstable-net");
  },
);
