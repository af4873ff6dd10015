/**
 * The `@tcp-echo/conformance` tarball of `pnpm pack:all`: `npx tcp-echo-conformance`, `bunx --bun
 * tcp-echo-conformance` and `deno run -A npm:@tcp-echo/conformance` against any echo server, without a clone of this
 * repo.
 *
 * The matrix runs scripts (its drivers, our servers and CLIs, the negative control) from the checkout's layout
 * (`ROOT/packages/NAME/src`, `ROOT/node_modules/{bun,deno}` for the pinned runtimes), so the tarball is that layout:
 * `package/packages/NAME/src` holds each package's sources compiled to JavaScript file by file (no tests, no
 * TypeScript: Deno does not strip types under node_modules, and Node needs no tsx), and
 * `package/node_modules/@tcp-echo/NAME`, bundled, is a package of one-line re-exports of them, so every import of
 * `@tcp-echo/NAME` reaches the one copy under `packages/` and `ROOT` is the installed package. Every spawn names the
 * `.ts` path, and `runnable()` (runtimes.ts) picks the `.js` beside it. No registry dependency, and no runtime inside
 * (a runtime each, ~100 MB): ours run on the runtime running the bin (`pinned()` falls back to it), and so does the
 * negative control (`runnerRuntime()`); the others show as not available.
 */

import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
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

// `#!/usr/bin/env node`: npx runs it on Node; `bunx --bun` on Bun (plain bunx honours the shebang and picks Node),
// `deno run npm:` on Deno (which ignores the line).
const BIN = `#!/usr/bin/env node
// tcp-echo-conformance: the matrix's CLI (packages/conformance/src/cli.ts, compiled).
await import("../packages/conformance/src/cli.js");
`;

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

/** `./src/x.ts` to `./src/x.js` in an exports or imports map (string values only: ours are). */
function compiledMap(map: unknown): unknown {
  if (typeof map !== "object" || map === null) return map;
  return Object.fromEntries(
    Object.entries(map).map(([key, target]) => [
      key,
      typeof target === "string" ? target.replace(/\.ts$/, ".js") : target,
    ]),
  );
}

/**
 * Copies `from` (a package's `src/`) to `to` with every `.ts` file compiled to `.js` beside where it was, imports
 * of `./x.ts` rewritten to `./x.js` (the sources run as they are; see tsconfig.base.json's
 * rewriteRelativeImportExtensions). File by file, no bundling: each script the matrix spawns stays a file of its own.
 */
function compileTree(from: string, to: string): void {
  // Loaded here, not imported: this module ships inside the tarball, which has no TypeScript.
  const ts = createRequire(import.meta.url)("typescript") as typeof import("typescript");
  const compilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    rewriteRelativeImportExtensions: true,
    verbatimModuleSyntax: true,
  };
  for (const entry of readdirSync(from, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const source = join(entry.parentPath, entry.name);
    const target = join(to, relative(from, source));
    mkdirSync(dirname(target), { recursive: true });
    if (!entry.name.endsWith(".ts")) {
      cpSync(source, target);
      continue;
    }
    const { outputText, diagnostics } = ts.transpileModule(readFileSync(source, "utf8"), {
      fileName: source,
      compilerOptions,
      reportDiagnostics: true,
    });
    if (diagnostics?.length) {
      const why = diagnostics.map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
      throw new Error(`cannot compile ${relative(ROOT, source)}: ${why.join("; ")}`);
    }
    writeFileSync(target.replace(/\.ts$/, ".js"), outputText);
  }
}

/** Lays out the conformance package in `pkg` (the tarball's `package/`). */
export function stageConformance(pkg: string): void {
  const conformance = readJson(join(ROOT, "packages/conformance/package.json"));
  for (const [name, extra] of Object.entries(INSIDE)) {
    const from = join(ROOT, "packages", name);
    const to = join(pkg, "packages", name);
    compileTree(join(from, "src"), join(to, "src"));
    for (const file of extra) cpSync(join(from, file), join(to, file), { recursive: true });
    const manifest = readJson(join(from, "package.json"));
    const copy = { ...manifest, ...(manifest.exports ? { exports: compiledMap(manifest.exports) } : {}) };
    writeFileSync(join(to, "package.json"), `${JSON.stringify(copy, null, 2)}\n`);
    if (extra.includes("deno.json")) {
      // The runtime table runs Deno with this config; its import map must name the compiled files too.
      const deno = readJson(join(from, "deno.json"));
      const compiled = { ...deno, exports: compiledMap(deno.exports), imports: compiledMap(deno.imports) };
      writeFileSync(join(to, "deno.json"), `${JSON.stringify(compiled, null, 2)}\n`);
    }
    const exports = manifest.exports as Record<string, string> | undefined;
    if (!exports) continue;
    const shim = join(pkg, "node_modules/@tcp-echo", name);
    const shimExports: Record<string, string> = {};
    for (const [key, target] of Object.entries(exports)) {
      const file = `${key === "." ? "index" : key.slice(2)}.js`;
      mkdirSync(dirname(join(shim, file)), { recursive: true });
      const back = "../".repeat(3 + file.split("/").length - 1);
      writeFileSync(join(shim, file), `export * from "${back}packages/${name}/${target.slice(2, -3)}.js";\n`);
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
  const manifest = {
    name: "@tcp-echo/conformance",
    version: conformance.version,
    description: conformance.description,
    license: conformance.license,
    type: "module",
    bin: { "tcp-echo-conformance": "bin/tcp-echo-conformance.mjs" },
    engines: { node: ">=20" },
    // Bundled and not dependencies: see pack.ts (Bun looks a bundled dependency up on the registry otherwise).
    bundleDependencies: Object.keys(INSIDE)
      .filter((name) => name !== "conformance")
      .map((name) => `@tcp-echo/${name}`),
  };
  writeFileSync(join(pkg, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
}
