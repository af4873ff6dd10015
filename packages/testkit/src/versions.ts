/**
 * Any version of a runtime, from the npm registry: `node@22` (the newest
 * 22.x.y), `bun@1.3.x`, `deno@2.9.6`. Each runtime publishes its binary as a
 * per-platform npm package; the first use downloads it with `npm pack` (so the
 * user's registry, proxy and auth settings apply) into a cache outside the tree,
 * `$XDG_CACHE_HOME/tcp-echo/runtimes` (default `~/.cache/...`), with a progress
 * line on stderr. Later runs use the cache and need no network.
 */

import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { pinned, RUNTIME_NAMES, type Runtime, type RuntimeName } from "./runtimes.ts";

const run = promisify(execFile);

/** A version that cannot be had (unknown, offline, unsupported platform): exit 2, naming it and its package. */
export class RuntimeError extends Error {}

export interface Wanted {
  readonly runtime: RuntimeName;
  /** `22`, `1.3.x`, `2.9.6`; undefined is the pinned one. */
  readonly version: string | undefined;
}

/** `node`, `node@22`, `bun@1.3.x`, `deno@2.9.6`. */
export function parseRuntime(spec: string): Wanted {
  const [name, version, extra] = spec.split("@");
  if (!(RUNTIME_NAMES as readonly string[]).includes(name ?? "") || extra !== undefined)
    throw new RuntimeError(`${spec}: expected node, bun or deno, optionally @VERSION (node@22, bun@1.3.x, deno@2.9.6)`);
  if (version !== undefined && !/^\d+(\.(\d+|x))?(\.(\d+|x))?$/.test(version))
    throw new RuntimeError(`${spec}: a version is MAJOR, MAJOR.MINOR.x or exact MAJOR.MINOR.PATCH`);
  return { runtime: name as RuntimeName, version };
}

/** The registry package that holds this platform's binary, and the binary's path inside it. */
function platformPackage(runtime: RuntimeName): { name: string; binary: string } {
  const { platform, arch } = process;
  switch (runtime) {
    case "node":
      return { name: `node-${platform}-${arch}`, binary: "bin/node" };
    case "bun":
      return { name: `@oven/bun-${platform}-${arch === "arm64" ? "aarch64" : arch}`, binary: "bin/bun" };
    case "deno":
      return {
        name: `@deno/${platform}-${arch}${platform === "linux" ? "-glibc" : ""}`,
        binary: platform === "win32" ? "deno.exe" : "deno",
      };
  }
}

export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "tcp-echo", "runtimes");
}

const NPM_TIMEOUT = 120_000;

/** The newest release matching `version` (`22`, `1.3.x`, `1.3`, or exact). */
export function newest(versions: readonly string[], version: string): string | undefined {
  const want = version.split(".").filter((part) => part !== "x");
  const matching = versions
    .filter((v) => /^\d+\.\d+\.\d+$/.test(v))
    .filter((v) => want.every((part, i) => v.split(".")[i] === part))
    .map((v) => v.split(".").map(Number) as [number, number, number]);
  matching.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  return matching.at(-1)?.join(".");
}

async function npm(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run("npm", args, { cwd, timeout: NPM_TIMEOUT, killSignal: "SIGKILL", encoding: "utf8" });
  return stdout;
}

/** The runtime at `wanted`, from the cache or downloaded into it. The pinned version is node_modules' own. */
export async function resolveRuntime(wanted: Wanted): Promise<Runtime> {
  const pin = pinned(wanted.runtime);
  if (wanted.version === undefined || wanted.version === pin.version) return pin;
  const pkg = platformPackage(wanted.runtime);
  const dir = cacheDir();
  // An exact version already fetched needs no registry.
  const cachedExact = join(dir, `${wanted.runtime}-${wanted.version}`, pkg.binary);
  if (/^\d+\.\d+\.\d+$/.test(wanted.version) && existsSync(cachedExact))
    return { runtime: wanted.runtime, version: wanted.version, binary: cachedExact, pinned: false };

  let versions: string[];
  try {
    const listed = JSON.parse(await npm(["view", pkg.name, "versions", "--json"])) as string[] | string;
    versions = Array.isArray(listed) ? listed : [listed];
  } catch (error) {
    // Offline: the line may still be in the cache from an earlier run.
    const cached = newest(
      existsSync(dir)
        ? readdirSync(dir)
            .filter((entry) => entry.startsWith(`${wanted.runtime}-`))
            .map((entry) => entry.slice(wanted.runtime.length + 1))
        : [],
      wanted.version,
    );
    if (cached)
      return {
        ...wanted,
        version: cached,
        binary: join(dir, `${wanted.runtime}-${cached}`, pkg.binary),
        pinned: false,
      };
    throw new RuntimeError(
      `${wanted.runtime}@${wanted.version}: cannot list the registry package ${pkg.name} (${firstLine(error)}); ` +
        "check the network or npm's registry setting",
    );
  }
  const version = newest(versions, wanted.version);
  if (version === undefined)
    throw new RuntimeError(
      `${wanted.runtime}@${wanted.version}: no such version of the registry package ${pkg.name} ` +
        `(newest: ${newest(versions, "x") ?? "none"})`,
    );
  if (version === pin.version) return pin;
  const target = join(dir, `${wanted.runtime}-${version}`);
  const binary = join(target, pkg.binary);
  if (!existsSync(binary)) await download(wanted.runtime, pkg.name, version, target, binary);
  return { runtime: wanted.runtime, version, binary, pinned: false };
}

async function download(runtime: RuntimeName, name: string, version: string, target: string, binary: string) {
  process.stderr.write(`fetching ${runtime}@${version} (${name}@${version} from the npm registry) into ${target}\n`);
  mkdirSync(join(target, ".."), { recursive: true });
  // Unpacked beside the target and renamed into place, so an interrupted download never looks complete.
  const work = mkdtempSync(`${target}.partial-`);
  try {
    const packed = JSON.parse(
      await npm(["pack", `${name}@${version}`, "--json", "--pack-destination", work], work),
    ) as {
      filename: string;
    }[];
    const tarball = join(work, packed[0]!.filename);
    await run("tar", ["-xzf", tarball, "-C", work, "--strip-components=1"], { timeout: NPM_TIMEOUT });
    rmSync(tarball);
    chmodSync(join(work, binary.slice(target.length + 1)), 0o755);
    renameSync(work, target);
  } catch (error) {
    rmSync(work, { recursive: true, force: true });
    throw new RuntimeError(`${runtime}@${version}: downloading ${name}@${version} failed: ${firstLine(error)}`);
  }
}

function firstLine(error: unknown): string {
  const text = (error as { stderr?: string }).stderr || (error instanceof Error ? error.message : String(error));
  return (
    text
      .split("\n")
      .find((line) => line.trim() && !line.includes("npm warn"))
      ?.trim() ?? "unknown error"
  );
}
