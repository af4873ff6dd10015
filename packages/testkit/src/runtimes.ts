/**
 * How to run a TypeScript script on each runtime: the one table the launcher
 * (`./tcp-echo`) and the conformance matrix start every runtime from.
 *
 * A runtime is a name, an exact version and the real binary: the pinned ones
 * come from `pnpm install` (root package.json), any other version from the npm
 * registry into a cache (`versions.ts`). Always the binary itself, never
 * `node_modules/.bin/*`: those are shell shims that run it as a child a signal
 * does not reach.
 */

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export const RUNTIME_NAMES = ["node", "bun", "deno"] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

export interface Runtime {
  readonly runtime: RuntimeName;
  /** Exact version, `24.21.0`. */
  readonly version: string;
  /** The executable itself. */
  readonly binary: string;
  /** Whether it is the version pinned in the root package.json. */
  readonly pinned: boolean;
}

/** What a script may read and write (Deno asks for both; the others ignore it). */
export interface Access {
  /** Read: packages (a dynamic import), certificate files, Unix socket dirs. */
  readonly read?: readonly string[];
  /** Write: Unix socket dirs (binding or connecting to a socket file). */
  readonly write?: readonly string[];
  /**
   * Caps V8's old space, in MiB (Node, Deno; Bun's JavaScriptCore has no such
   * flag). Under the default limit V8 collects lazily, so RSS keeps rising for a
   * while after load even with nothing leaked (Deno: 58 -> 146 MiB over 12,000
   * resets, flat at 93 MiB with a 24 MiB cap). With a cap, garbage stays bounded
   * and a real leak ends in an out-of-memory crash: growth means a leak.
   */
  readonly heapMiB?: number;
  /**
   * Deno's `--unstable-net`: Deno 2.9 has `Deno.listenDatagram` (UDP) and `listen({ reusePort })` (`serve
   * --workers`, `--reuse-port`) only with it. The others need nothing.
   */
  readonly unstableNet?: boolean;
}

const DENO_CONFIG = join(ROOT, "packages/deno/deno.json");
// tsx as an --import hook keeps one process (the tsx CLI runs node as a child); resolved here so the script runs
// from any working directory, and only for TypeScript: the installed tcp-echo-conformance is JavaScript, without tsx.
const tsxHook = (script: string) => (script.endsWith(".ts") ? ["--import", import.meta.resolve("tsx")] : []);

interface Table {
  /** The npm package `pnpm install` puts it in, and its binary inside that package. */
  readonly pinnedPackage: string;
  readonly pinnedBinary: string;
  /** argv that runs `script` with `binary`. */
  command(binary: string, script: string, access: Access): string[];
}

const TABLE: Record<RuntimeName, Table> = {
  node: {
    pinnedPackage: "node",
    pinnedBinary: "bin/node",
    command: (binary, script, { heapMiB }) => [
      binary,
      ...(heapMiB ? [`--max-old-space-size=${heapMiB}`] : []),
      ...tsxHook(script),
      script,
    ],
  },
  bun: {
    pinnedPackage: "bun",
    pinnedBinary: "bin/bun.exe",
    command: (binary, script) => [binary, script],
  },
  deno: {
    pinnedPackage: "deno",
    pinnedBinary: "deno",
    // Deno's own config, so it never rewrites the workspace's package.json.
    command: (binary, script, access) => [
      binary,
      "run",
      "--allow-net",
      ...(access.unstableNet ? ["--unstable-net"] : []),
      ...(access.read?.length ? [`--allow-read=${access.read.join(",")}`] : []),
      ...(access.write?.length ? [`--allow-write=${access.write.join(",")}`] : []),
      ...(access.heapMiB ? [`--v8-flags=--max-old-space-size=${access.heapMiB}`] : []),
      "--config",
      DENO_CONFIG,
      script,
    ],
  },
};

/** The runtime running this process. */
const SELF: RuntimeName = process.versions.bun ? "bun" : process.versions.deno ? "deno" : "node";

/** The version `pnpm install` put in node_modules (the root package.json's pin). */
export function pinned(runtime: RuntimeName): Runtime {
  const dir = join(ROOT, "node_modules", TABLE[runtime].pinnedPackage);
  const manifest = join(dir, "package.json");
  // An installed @tcp-echo/conformance (pack-conformance.ts) has no runtime of its own: the one running it is the pin.
  if (runtime === SELF && !existsSync(manifest)) {
    return { runtime, version: process.versions[SELF] as string, binary: process.execPath, pinned: true };
  }
  const version = existsSync(manifest)
    ? (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version
    : "not installed";
  return { runtime, version, binary: join(dir, TABLE[runtime].pinnedBinary), pinned: true };
}

/**
 * The runtime running this process, as `pinned()` gives it: the runner's own servers (the negative control) run on
 * it, so an installed tcp-echo-conformance needs no second runtime (npx: Node, bunx --bun: Bun, deno run: Deno).
 */
export function runnerRuntime(): Runtime {
  return pinned(SELF);
}

/** Why `runtime` cannot run here, or undefined. */
export function missing(runtime: Runtime): string | undefined {
  if (!existsSync(runtime.binary))
    return runtime.pinned
      ? existsSync(join(ROOT, "pnpm-workspace.yaml"))
        ? `${runtime.binary} is missing: run npx -y pnpm@10 install`
        : `no ${runtime.runtime} inside the installed tcp-echo-conformance: ours run on the runtime running it (npx: Node; bunx --bun: Bun; deno run npm:@tcp-echo/conformance: Deno)`
      : `${runtime.binary} is missing: fetch it again (pnpm matrix --runtimes ${runtime.runtime}@${runtime.version})`;
  if (runtime.runtime === "deno" && !existsSync(DENO_CONFIG)) return "packages/deno/deno.json is missing";
  return undefined;
}

/**
 * The file that runs `script` (a .ts path): itself in a checkout, its JavaScript build beside it in the installed
 * tcp-echo-conformance, which has no TypeScript (Deno does not strip types under node_modules:
 * ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING, https://github.com/denoland/deno/issues/24093).
 */
export function runnable(script: string): string {
  return script.endsWith(".ts") && !existsSync(script) ? `${script.slice(0, -3)}.js` : script;
}

/** argv that runs `script` (a .ts file, or its build: `runnable`) on `runtime`. */
export function command(runtime: Runtime, script: string, access: Access = {}): string[] {
  return TABLE[runtime.runtime].command(runtime.binary, runnable(script), access);
}

/** The `tcp-echo` CLI of a runtime package (`packages/node/src/cli.ts`). */
export function cliOf(pkg: string): string {
  return join(ROOT, "packages", pkg, "src/cli.ts");
}

/** `node@24.21.0`: how a runtime is named in tables and messages. */
export function label(runtime: Runtime): string {
  return `${runtime.runtime}@${runtime.version}`;
}
