/** Errors only Deno raises: its own error classes mapped to core's codes, and a missing permission. */
import assert from "node:assert/strict";
import { errorCodeOf } from "@tcp-echo/core/tools";
import { CONFIG, DENO, run } from "./_helpers.ts";

// Deno's own errors for the same inputs carry no `code`: core must still map
// each one (a bare RangeError or TypeError for a port, a URIError for a host,
// a plain Error for DNS) should any reach it unvalidated.
Deno.test("every error Deno raises here maps to core's code", async () => {
  const raw = async (attempt: () => unknown): Promise<unknown> => {
    try {
      const resource = await attempt();
      (resource as { close(): void }).close();
    } catch (error) {
      return error;
    }
    throw new Error("expected a failure");
  };
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const cases: Array<[string, () => unknown]> = [
      ["EINVAL", () => Deno.connect({ port: 70000 })],
      ["EINVAL", () => Deno.connect({ port: -1 })],
      ["EINVAL", () => Deno.connect({ port: 1.5 })],
      ["EINVAL", () => Deno.listen({ port: "abc" as unknown as number })],
      ["EINVAL", () => Deno.connect({ hostname: "", port: 7 })],
      ["EINVAL", () => Deno.listen({ hostname: "::zz", port: 0 })],
      ["ENOTFOUND", () => Deno.connect({ hostname: "no-such-host.invalid", port: 7 })],
      ["ECONNREFUSED", () => Deno.connect({ hostname: "127.0.0.1", port: 1 })],
      ["EADDRINUSE", () => Deno.listen({ hostname: "127.0.0.1", port: held.addr.port })],
    ];
    for (const [code, attempt] of cases) {
      const error = await raw(attempt);
      assert.equal(errorCodeOf(error), code, `${code} from ${String(error)}`);
    }
  } finally {
    held.close();
  }
});

Deno.test("a missing --allow-net is EACCES for listen and connect, not a crash", async () => {
  const script = `
    import { connect, listen } from "${new URL("../src/index.ts", import.meta.url).href}";
    const codes = [];
    for (const attempt of [() => listen({ port: 0 }), () => connect({ port: 7 })]) {
      try { await attempt(); } catch (error) { codes.push(error.code); }
    }
    console.log(codes.join(","));
  `;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, script);
    const result = await run(DENO, ["run", "--no-prompt", "--config", CONFIG, file], { timeoutMs: 30_000 });
    assert.equal(new TextDecoder().decode(result.stdout).trim(), "EACCES,EACCES");
    assert.equal(result.code, 0);
  } finally {
    await Deno.remove(file);
  }
});
