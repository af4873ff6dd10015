/**
 * `pnpm matrix --via haproxy` on a real run (the node server and the negative control, the node, nc and harness
 * clients, the cases that prove the path end to end, quick profile: about 7 s): each server behind a HAProxy of
 * its own. Our server runs `serve --proxy-protocol`, which closes any connection that does not start with a PROXY
 * header, so its cells pass only through the balancer. Usage errors exit 2 before anything starts.
 */

import { missingBalancer } from "@tcp-echo/faults";
import { describe, expect, test } from "vitest";
import { isCatch, type MatrixResult } from "../src/planning.ts";
import { matrixCli } from "./_matrix-cli.ts";

const matrix = (args: readonly string[]) => matrixCli(args, { timeoutMs: 60_000 });

// CI installs haproxy (.ci/run): there a missing balancer is a failure; elsewhere without it, a named skip.
const missing = process.env.CI ? undefined : missingBalancer("haproxy");

describe.skipIf(missing)(`the matrix through HAProxy (--via haproxy)${missing ? ` (skipped: ${missing})` : ""}`, () => {
  // Started by the first test that needs it: a skipped describe still runs this body.
  let started: ReturnType<typeof matrix> | undefined;
  const run = () =>
    (started ??= matrix([
      ...["--via", "haproxy", "--server", "node,control", "--client", "node,nc,harness"],
      ...["--case", "payloads,half-close,backpressure,max-per-address", "--profile", "quick", "--json", "-"],
    ]));
  const result = async () => JSON.parse((await run()).stdout) as MatrixResult;
  const cell = async (server: string, client: string) =>
    (await result()).cells.find((c) => c.server === server && c.client === client)!;

  test("every cell of our server passes through the balancer, half-close and backpressure included", async () => {
    const { code, stderr } = await run();
    expect(code, stderr).toBe(0);
    expect((await result()).via).toBe("haproxy");
    for (const client of ["node", "nc", "harness"]) expect((await cell("node", client)).status).toBe("pass");
    for (const client of ["node", "nc"]) {
      const halfClose = (await cell("node", client)).cases.find((c) => c.case === "half-close")!;
      expect(halfClose.ok, halfClose.failure).toBe(true);
      expect(halfClose.checks.join("; ")).toMatch(/16 MiB, reading after 500 ms: exactly 16777216 bytes, then EOF/);
    }
    const backpressure = (await cell("node", "harness")).cases.find((c) => c.case === "backpressure")!;
    expect(backpressure.ok, backpressure.failure).toBe(true);
    // The balancer's own buffering was measured and bounded, besides the server's.
    expect(backpressure.checks.join("; ")).toMatch(/stalled after .*; balancer RSS \+/);
    // Only a PROXY header carries 127.0.0.2 through the balancer: the per-address limit sees each client.
    expect((await cell("node", "harness")).cases.find((c) => c.case === "max-per-address")?.ok).toBe(true);
  });

  test("the negative control is caught through the balancer in every column", async () => {
    for (const client of ["node", "nc", "harness"]) {
      const control = await cell("control", client);
      expect(control.status).toBe("expected-fail");
      expect(control.cases.some(isCatch)).toBe(true);
    }
    expect((await cell("control", "nc")).cases.find((c) => c.case === "half-close")?.verdict).toBe(true);
  });

  test("the grid names each row with its balancer", async () => {
    const { stderr } = await run();
    expect(stderr).toMatch(/every server behind haproxy/);
    expect(stderr).toMatch(/^node via haproxy +✓ 2\/2 +✓ 2\/2 +✓ 2\/2$/m);
    expect(stderr).toMatch(/^control via haproxy +✓ caught/m);
  });
});

describe("--via usage errors exit 2 before anything starts", () => {
  test.each([
    [["--via", "squid"], /--via must be haproxy or nginx, got "squid"/],
    [["--via", "haproxy", "--transport", "tcp6"], /--via runs over tcp4 and tls only .*not tcp6/],
    [["--via", "nginx", "--transport", "udp"], /--via runs over tcp4 and tls only, not udp/],
    [["--via", "haproxy", "--faults"], /--via and --faults do not combine/],
  ])("%j", async (args, message) => {
    const { code, stdout, stderr } = await matrix(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stdout).not.toMatch(/Running/);
  });
});
