/**
 * `pnpm pack:all [DIR]`: the tarballs a user installs from a checkout while nothing is on the npm registry.
 *
 * Builds `dist/` of core and the three runtime packages from scratch, packs each with `pnpm pack` (which applies
 * `publishConfig` and rewrites `workspace:*` to the version), and writes to DIR (default `tarballs/` at the root,
 * gitignored):
 *
 *   tcp-echo-node-V.tgz, tcp-echo-bun-V.tgz, tcp-echo-deno-V.tgz   a runtime package with core bundled inside
 *   tcp-echo-core-V.tgz                                            core alone, for writing another adapter
 *   tcp-echo-conformance-V.tgz                                     the matrix, bin tcp-echo-conformance
 *                                                                  (pack-conformance.ts)
 *
 * Core is bundled because no installer takes an unpublished dependency from a second tarball: `pnpm add` and
 * `bun add` of the runtime tarball and the core tarball together still look `@tcp-echo/core@V` up on the registry
 * (404). Inside the tarball it is `node_modules/@tcp-echo/core`, named in `bundleDependencies` and not in
 * `dependencies`: Bun 1.4.5 looks even a bundled dependency up on the registry when it is also a dependency
 * (https://github.com/oven-sh/bun/issues/27418). `npm pack` leaves a bundled package out unless it is a
 * dependency, so the runtime tarballs are written with `tar`.
 */

import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stageConformance } from "./pack-conformance.ts";
import { spawnManaged } from "./processes.ts";
import { ROOT } from "./runtimes.ts";

export const RUNTIME_PACKAGES = ["node", "bun", "deno"] as const;
export type RuntimePackage = (typeof RUNTIME_PACKAGES)[number];

const USAGE = `usage: pnpm pack:all [DIR]

Builds and packs @tcp-echo/core, node, bun, deno and conformance into DIR (default: tarballs/ in the checkout).
Install a runtime package from its tarball alone, e.g. npm install DIR/tcp-echo-node-<version>.tgz;
the matrix: npx -p DIR/tcp-echo-conformance-<version>.tgz tcp-echo-conformance --help`;

export interface Packed {
  /** Tarball path by package directory name: core, node, bun, deno, conformance. */
  readonly tarballs: Record<"core" | RuntimePackage | "conformance", string>;
  readonly version: string;
}

async function run(command: string, args: readonly string[], cwd: string): Promise<void> {
  const child = spawnManaged(command, args, { label: `${command} ${args.join(" ")}`, cwd, timeoutMs: 180_000 });
  child.child.stdout?.resume();
  const exit = await child.exited;
  if (exit.code !== 0) {
    const why = exit.timedOut ? "timed out after 180 s" : `exited ${exit.code ?? exit.signal}`;
    throw new Error(`${command} ${args.join(" ")} (in ${relative(ROOT, cwd) || "."}) ${why}\n${child.stderrTail()}`);
  }
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

/** Builds and packs every published package into `out`; returns the tarballs. */
export async function packAll(out: string): Promise<Packed> {
  mkdirSync(out, { recursive: true });
  const staging = mkdtempSync(join(tmpdir(), "tcp-echo-pack-"));
  try {
    const packed: Partial<Record<"core" | RuntimePackage, string>> = {};
    let version = "";
    for (const name of ["core", ...RUNTIME_PACKAGES] as const) {
      const dir = join(ROOT, "packages", name);
      // From scratch: tsc never deletes the output of a source file that is gone.
      rmSync(join(dir, "dist"), { recursive: true, force: true });
      await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], dir);
      await run("npx", ["-y", "pnpm@10", "pack", "--pack-destination", staging], dir);
      version = String(readJson(join(dir, "package.json")).version);
      packed[name] = join(staging, `tcp-echo-${name}-${version}.tgz`);
    }
    const tarballs = { core: join(out, `tcp-echo-core-${version}.tgz`) } as Packed["tarballs"];
    writeFileSync(tarballs.core, readFileSync(packed.core!));
    for (const name of RUNTIME_PACKAGES) {
      const stage = join(staging, name);
      const pkg = join(stage, "package");
      const bundled = join(pkg, "node_modules/@tcp-echo/core");
      mkdirSync(bundled, { recursive: true });
      await run("tar", ["-xzf", packed[name]!, "-C", pkg, "--strip-components=1"], staging);
      await run("tar", ["-xzf", packed.core!, "-C", bundled, "--strip-components=1"], staging);
      const manifest = readJson(join(pkg, "package.json"));
      const dependencies = (manifest.dependencies ?? {}) as Record<string, string>;
      delete dependencies["@tcp-echo/core"];
      if (Object.keys(dependencies).length === 0) delete manifest.dependencies;
      manifest.bundleDependencies = ["@tcp-echo/core"];
      writeFileSync(join(pkg, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
      tarballs[name] = join(out, `tcp-echo-${name}-${version}.tgz`);
      await run("tar", ["-czf", tarballs[name], "-C", stage, "package"], staging);
    }
    const conformance = join(staging, "conformance");
    stageConformance(join(conformance, "package"));
    tarballs.conformance = join(out, `tcp-echo-conformance-${version}.tgz`);
    await run("tar", ["-czf", tarballs.conformance, "-C", conformance, "package"], staging);
    return { tarballs, version };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const args = argv[0] === "--" ? argv.slice(1) : argv;
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const flag = args.find((arg) => arg.startsWith("-"));
  if (flag !== undefined || args.length > 1) {
    process.stderr.write(`pack:all: ${flag ? `unknown option ${flag}` : "give at most one DIR"}\n${USAGE}\n`);
    return 2;
  }
  // pnpm runs root scripts in the root; INIT_CWD is where the user typed the command.
  const base = process.env.INIT_CWD ?? process.cwd();
  const out = args[0] === undefined ? join(ROOT, "tarballs") : isAbsolute(args[0]) ? args[0] : resolve(base, args[0]);
  const { tarballs } = await packAll(out);
  for (const [name, path] of Object.entries(tarballs)) {
    const kib = (statSync(path).size / 1024).toFixed(1);
    const bundled = { core: "", conformance: ", its workspace packages bundled" }[name] ?? ", core bundled";
    process.stdout.write(`@tcp-echo/${name.padEnd(11)} ${path} (${kib} KiB${bundled})\n`);
  }
  process.stdout.write(`install one: npm install ${tarballs.node}   (or pnpm add, bun add)\n`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`pack:all: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
