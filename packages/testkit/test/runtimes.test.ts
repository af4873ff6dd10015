import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";
import { command, pinned, ROOT, runnable } from "../src/runtimes.ts";
import { newest, parseRuntime } from "../src/versions.ts";

const run = promisify(execFile);

test("pnpm test runs on the pinned Node (the root package.json's devDependency), not the system's", async () => {
  const manifest = (await import(join(ROOT, "package.json"), { with: { type: "json" } })) as {
    default: { devDependencies: Record<string, string> };
  };
  expect(process.versions.node).toBe(manifest.default.devDependencies.node);
  expect(pinned("node").version).toBe(process.versions.node);
});

describe("scripts named by their .ts path", () => {
  test("run as themselves beside their sources, as the .js beside them in a build without TypeScript", () => {
    const dir = mkdtempSync(join(tmpdir(), "tcp-echo-runnable-"));
    try {
      writeFileSync(join(dir, "source.ts"), "");
      writeFileSync(join(dir, "built.js"), "");
      expect(runnable(join(dir, "source.ts"))).toBe(join(dir, "source.ts"));
      expect(runnable(join(dir, "built.ts"))).toBe(join(dir, "built.js"));
      // Node loads tsx only for TypeScript: the installed tcp-echo-conformance has no tsx.
      expect(command(pinned("node"), join(dir, "source.ts"))).toContain("--import");
      expect(command(pinned("node"), join(dir, "built.ts"))).toEqual([pinned("node").binary, join(dir, "built.js")]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("runtime versions", () => {
  test("a line picks its newest release, never a prerelease", () => {
    const versions = ["1.3.13", "1.3.14", "1.3.14-canary.20260519.1", "1.3.2", "1.4.5"];
    expect(newest(versions, "1.3.x")).toBe("1.3.14");
    expect(newest(versions, "1")).toBe("1.4.5");
    expect(newest(versions, "1.3.2")).toBe("1.3.2");
    expect(newest(versions, "1.5.x")).toBeUndefined();
  });

  test.each(["nod@22", "node@22@1", "node@latest", "bun@1.x.3x"])("%s is refused, naming the spec", (spec) => {
    expect(() => parseRuntime(spec)).toThrow(spec);
  });

  /** `./tcp-echo` with the given environment; resolves with its exit code and stderr. */
  const launch = (args: string[], env: Record<string, string> = {}) =>
    run(join(ROOT, "tcp-echo"), args, { env: { ...process.env, ...env }, timeout: 60_000 }).then(
      () => ({ code: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );

  test("an unknown version exits 2, naming the version and the registry package", async () => {
    const { code, stderr } = await launch(["--runtime", "node@99", "send"]);
    expect(code).toBe(2);
    expect(stderr).toContain(
      `node@99: no such version of the registry package node-${process.platform}-${process.arch}`,
    );
  });

  test("offline (the registry refuses), a version not in the cache exits 2, naming it and the package", async () => {
    const { code, stderr } = await launch(["--runtime", "deno@2.0.99", "send"], {
      npm_config_registry: "http://127.0.0.1:1/",
      npm_config_fetch_retries: "0",
    });
    expect(code).toBe(2);
    expect(stderr).toContain("deno@2.0.99: cannot list the registry package @deno/");
  });
});
