/**
 * Bad networks, per client x server cell: the server of one runtime behind one
 * proxy per fault, and the driver of each client runtime streaming 4 MiB with
 * half-close through every proxy at once.
 */
import { fileURLToPath } from "node:url";
import { killAll, spawnWithLines } from "@tcp-echo/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { DriverResult } from "../src/driver.ts";
import { FAULT_PAYLOAD, FAULTS } from "../src/faults.ts";
import { type FaultProxy, startProxy } from "../src/proxy.ts";
import { commandFor, missing, RUNTIMES, type ServerProcess, startServer } from "../src/servers.ts";

const DRIVER = fileURLToPath(new URL("../src/driver.ts", import.meta.url));

afterAll(killAll);

for (const serverRuntime of RUNTIMES) {
  const serverMissing = missing(serverRuntime);
  describe.skipIf(serverMissing)(`faults: ${serverRuntime} server${serverMissing ? ` (${serverMissing})` : ""}`, () => {
    let server: ServerProcess;
    const proxies = new Map<string, FaultProxy>();

    beforeAll(async () => {
      server = await startServer(serverRuntime);
      for (const fault of FAULTS) {
        proxies.set(
          fault.name,
          await startProxy({ target: { hostname: "127.0.0.1", port: server.port }, toxics: fault.toxics }),
        );
      }
    });

    afterAll(async () => {
      await Promise.all([...proxies.values()].map((proxy) => proxy.close()));
      await server?.stop();
    });

    for (const clientRuntime of RUNTIMES) {
      const clientMissing = missing(clientRuntime);
      describe.skipIf(clientMissing)(`${clientRuntime} client${clientMissing ? ` (${clientMissing})` : ""}`, () => {
        const results = new Map<string, DriverResult>();

        beforeAll(async () => {
          const targets = FAULTS.map((f) => `${f.name}=${proxies.get(f.name)?.address.port}:${f.expect}`);
          const [file, args] = commandFor(clientRuntime, DRIVER, [
            "--package",
            clientRuntime,
            "--size",
            String(FAULT_PAYLOAD),
            "--deadline",
            "30000",
            "--targets",
            targets.join(","),
          ]);
          const driver = spawnWithLines(file, args, { timeoutMs: 90_000 });
          const { code } = await driver.exited;
          await driver.ended;
          for (const line of driver.lines) {
            const result = JSON.parse(line) as DriverResult;
            results.set(result.target, result);
          }
          if (code !== 0 || results.size !== FAULTS.length)
            throw new Error(`driver exited ${code} with ${results.size} results; stderr: ${driver.stderrTail()}`);
        }, 120_000);

        test.each(FAULTS.map((fault) => [fault.proves, fault] as const))("%s", (_proves, fault) => {
          const result = results.get(fault.name);
          expect(result?.failure).toBeUndefined();
          if (fault.expect === "echo") expect(result).toMatchObject({ ok: true, bytes: FAULT_PAYLOAD });
          else {
            // ECONNRESET; or, once the client has half-closed, the short echo (EPROTO)
            // that is all Linux shows of some resets (see driver.ts).
            const expected = result?.halfClosed ? [fault.expect, "EPROTO"] : [fault.expect];
            expect(expected).toContain(result?.code);
            // A reset mid-stream never looks like a complete echo.
            expect(result?.bytes).toBeLessThan(FAULT_PAYLOAD);
          }
        });
      });
    }

    test("the server served every faulted connection and holds none afterwards", async () => {
      const resets = [...proxies.values()].reduce((sum, proxy) => sum + proxy.stats.resets, 0);
      const clients = RUNTIMES.filter((runtime) => !missing(runtime)).length;
      expect(resets).toBe(2 * clients);
      for (const proxy of proxies.values()) expect(proxy.stats.active).toBe(0);
      // The last close event leaves nothing open: accepted = closed. The server logs a
      // close from its own event loop, which can come after the proxy has let go of a
      // reset connection: wait for it, bounded. (A Bun server once held a reset-server
      // connection here for good: see writeFailed in packages/bun/src/adapter.ts.)
      const count = (event: string) => server.events().filter((e) => e.event === event).length;
      const opened = count("connection");
      expect(opened).toBe(FAULTS.length * clients);
      const deadline = Date.now() + 10_000;
      while (count("close") < opened && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(count("close")).toBe(opened);
    });
  });
}
