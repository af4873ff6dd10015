/**
 * The transports interoperate: each runtime's CLI client against each runtime's
 * CLI server, over a Unix socket and over TLS (the servers are started the way
 * the conformance matrix starts them).
 */
import { rmSync } from "node:fs";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { certs, DIR, portOf, RUNTIMES, runCleanup, runCli, serveCli, socketPath, TLS_SERVE } from "./_transports.ts";

afterEach(runCleanup);
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe("cross-runtime: every client talks to every server over unix and TLS", () => {
  for (const server of RUNTIMES) {
    test(`${server} server: unix, then TLS, from node, bun and deno clients`, async () => {
      const path = socketPath();
      await serveCli(server, ["--unix", path]);
      const { line } = await serveCli(server, TLS_SERVE());
      const port = String(portOf(line));
      for (const client of RUNTIMES) {
        const overUnix = await runCli(client, ["send", "--unix", path, `${client} to ${server}`]);
        expect(overUnix, `${client} -> ${server} over unix`).toMatchObject({
          code: 0,
          stdout: `Received response from server: ${client} to ${server}\n`,
        });
        const overTls = await runCli(client, ["send", "--port", port, "--tls-ca", certs.file("ca.pem"), "tls"]);
        expect(overTls, `${client} -> ${server} over TLS`).toMatchObject({
          code: 0,
          stdout: "Received response from server: tls\n",
        });
      }
    }, 120_000);
  }
});
