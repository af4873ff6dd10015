/**
 * The README's embed example (`await using`), extracted from README.md and run
 * as written on every supported runtime version, from the packed packages in an
 * app outside the workspace: `node app.ts` (Node 24+), `bun app.ts`,
 * `deno run --allow-net=127.0.0.1 app.ts`. Node 22 has no `await using`: there
 * the README says to run it with tsx, and the test proves both halves.
 */

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  packAll,
  parseRuntime,
  pinned,
  ROOT,
  RUNTIME_PACKAGES,
  type Runtime,
  resolveRuntime,
  SUPPORTED,
} from "@tcp-echo/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const run = promisify(execFile);
const TSX = import.meta.resolve("tsx");
const app = mkdtempSync(join(tmpdir(), "tcp-echo-readme-embed-"));

/** The first ```ts block of the README's "Install and embed" section. */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Install and embed"));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error("README.md: no ```ts block under ## Install and embed");
  return block;
}

beforeAll(async () => {
  // The tarballs a user installs (`pnpm pack:all`): each runtime package with core bundled.
  const { tarballs } = await packAll(join(app, "tarballs"));
  const dependencies = Object.fromEntries(RUNTIME_PACKAGES.map((name) => [`@tcp-echo/${name}`, tarballs[name]]));
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module", dependencies }),
  );
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund"], { cwd: app, timeout: 120_000 });
}, 600_000);

afterAll(() => rmSync(app, { recursive: true, force: true }));

/** Runs the example as `file` with `argv`; resolves with its exit code and output, within a hard timeout. */
async function example(runtime: Runtime, file: string, argv: (file: string) => string[]) {
  const code = readmeExample().replace('"@tcp-echo/node"', `"@tcp-echo/${runtime.runtime}"`);
  writeFileSync(join(app, file), code);
  const [command, ...args] = argv(file) as [string, ...string[]];
  return run(command, args, { cwd: app, timeout: 60_000, killSignal: "SIGKILL" }).then(
    ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

const versions = await Promise.all(SUPPORTED.map((spec) => resolveRuntime(parseRuntime(spec))));

test("the example is the README's: await using, a server and a client", () => {
  expect(readmeExample()).toMatch(/await using server = await listen/);
  expect(pinned("node").version).toBe(versions.find((v) => v.runtime === "node" && v.pinned)?.version);
});

describe.each(versions.map((runtime) => [`${runtime.runtime}@${runtime.version}`, runtime] as const))(
  "the README's embed example on %s",
  (_, runtime) => {
    const major = Number(runtime.version.split(".")[0]);
    const native: Record<Runtime["runtime"], (file: string) => string[]> = {
      node: (file) => [runtime.binary, file],
      bun: (file) => [runtime.binary, file],
      deno: (file) => [runtime.binary, "run", "--allow-net=127.0.0.1", file],
    };
    if (runtime.runtime === "node" && major < 24) {
      test("node app.ts is a SyntaxError (no await using before Node 24); with tsx it prints the echo", async () => {
        const plain = await example(runtime, "app-plain.ts", native.node);
        expect(plain.code).not.toBe(0);
        expect(plain.stderr).toMatch(/SyntaxError/);
        const tsx = await example(runtime, "app-tsx.ts", (file) => [runtime.binary, "--import", TSX, file]);
        expect(tsx).toEqual({ code: 0, stdout: "Hello, server!\n", stderr: "" });
      });
    } else {
      test("run as written, it prints the echo and exits 0", async () => {
        const result = await example(runtime, `app-${runtime.runtime}.ts`, native[runtime.runtime]);
        expect(result).toEqual({ code: 0, stdout: "Hello, server!\n", stderr: "" });
      });
    }
  },
);
