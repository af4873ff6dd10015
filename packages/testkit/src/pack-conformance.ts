/**
 * The `@tcp-echo/conformance` tarball of `pnpm pack:all`: `npx tcp-echo-conformance` against any echo server,
 * without a clone of this repo.
 *
 * The matrix runs TypeScript (its drivers, our servers and CLIs, the negative control) from the checkout's layout
 * (`ROOT/packages/NAME/src`, `ROOT/node_modules/{bun,deno}` for the pinned runtimes), so the tarball is that layout:
 * `package/packages/NAME` holds each package's sources (no tests), and `package/node_modules/@tcp-echo/NAME`, bundled,
 * is a package of one-line re-exports of them, so every import of `@tcp-echo/NAME` reaches the one copy under
 * `packages/` and `ROOT` is the installed package. tsx (a registry dependency) runs it, in the bin's own process.
 * Bun and Deno are not inside (a runtime each, ~100 MB): their rows and columns show as not installed; Node is the one
 * running the bin (`pinned("node")` falls back to it).
 */

import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ROOT } from "./runtimes.ts";

/** Every workspace package the matrix loads, and the extra files it reads besides `src/`. */
const INSIDE: Record<string, readonly string[]> = {
  core: [],
  node: [],
  bun: [],
  deno: ["deno.json"],
  faults: [],
  testkit: [],
  conformance: ["peers", "README.md"],
};

const BIN = `#!/usr/bin/env node
// tcp-echo-conformance: the matrix's CLI, its TypeScript run by tsx's loader in this process, so signals reach it.
import { register } from "tsx/esm/api";

register();
await import("../packages/conformance/src/cli.ts");
`;

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

/** Lays out the conformance package in `pkg` (the tarball's `package/`). */
export function stageConformance(pkg: string): void {
  const conformance = readJson(join(ROOT, "packages/conformance/package.json"));
  const testkit = readJson(join(ROOT, "packages/testkit/package.json"));
  for (const [name, extra] of Object.entries(INSIDE)) {
    const from = join(ROOT, "packages", name);
    const to = join(pkg, "packages", name);
    cpSync(join(from, "src"), join(to, "src"), { recursive: true });
    for (const file of ["package.json", ...extra]) cpSync(join(from, file), join(to, file), { recursive: true });
    const manifest = readJson(join(from, "package.json"));
    const exports = manifest.exports as Record<string, string> | undefined;
    if (!exports) continue;
    const shim = join(pkg, "node_modules/@tcp-echo", name);
    const shimExports: Record<string, string> = {};
    for (const [key, target] of Object.entries(exports)) {
      const file = `${key === "." ? "index" : key.slice(2)}.ts`;
      mkdirSync(dirname(join(shim, file)), { recursive: true });
      const back = "../".repeat(3 + file.split("/").length - 1);
      writeFileSync(join(shim, file), `export * from "${back}packages/${name}/${target.slice(2)}";\n`);
      shimExports[key] = `./${file}`;
    }
    writeFileSync(
      join(shim, "package.json"),
      `${JSON.stringify({ name: `@tcp-echo/${name}`, version: manifest.version, type: "module", exports: shimExports }, null, 2)}\n`,
    );
  }
  cpSync(join(ROOT, "packages/conformance/README.md"), join(pkg, "README.md"));
  mkdirSync(join(pkg, "bin"), { recursive: true });
  writeFileSync(join(pkg, "bin/tcp-echo-conformance.mjs"), BIN, { mode: 0o755 });
  const tsx = (testkit.dependencies as Record<string, string>).tsx as string;
  const manifest = {
    name: "@tcp-echo/conformance",
    version: conformance.version,
    description: conformance.description,
    license: conformance.license,
    type: "module",
    bin: { "tcp-echo-conformance": "bin/tcp-echo-conformance.mjs" },
    engines: { node: ">=20.6" },
    dependencies: { tsx },
    // Bundled and not dependencies: see pack.ts (Bun looks a bundled dependency up on the registry otherwise).
    bundleDependencies: Object.keys(INSIDE)
      .filter((name) => name !== "conformance")
      .map((name) => `@tcp-echo/${name}`),
  };
  writeFileSync(join(pkg, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
}
