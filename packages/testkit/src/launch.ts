/**
 * The launcher behind the root `./tcp-echo` script: prints, shell-quoted, the
 * argv that runs one of our CLIs on a runtime, and the script `exec`s it. The
 * server is then that very process: a signal (Ctrl-C, `kill -TERM`, `kill %1`)
 * reaches it once, its exit code is the command's, and Ctrl-C twice forces.
 * A launcher that stayed as a parent would either not forward signals (the
 * package manager's shims) or deliver Ctrl-C twice (the terminal signals the
 * whole foreground group, the parent forwards it again).
 *
 *   ./tcp-echo [--runtime node|bun|deno[@VERSION]] [--package node|bun|deno] serve|send|ping [ARGS...]
 */

import { dirname, join, resolve } from "node:path";
import {
  type Access,
  cliOf,
  command,
  missing,
  pinned,
  ROOT,
  RUNTIME_NAMES,
  type Runtime,
  type RuntimeName,
} from "./runtimes.ts";
import { parseRuntime, RuntimeError, resolveRuntime } from "./versions.ts";

const USAGE =
  "usage: ./tcp-echo [--runtime node|bun|deno[@VERSION]] [--package node|bun|deno] serve|send|ping [ARGS...]";

class UsageError extends Error {}

interface Launch {
  readonly runtime: string;
  readonly pkg: RuntimeName | undefined;
  readonly args: readonly string[];
}

function parse(argv: readonly string[]): Launch {
  let runtime = "node";
  let pkg: RuntimeName | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const flag = argv[i];
    if (flag !== "--runtime" && flag !== "--package") break;
    const value = argv[++i];
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    if (flag === "--runtime") runtime = value;
    else if ((RUNTIME_NAMES as readonly string[]).includes(value)) pkg = value as RuntimeName;
    else throw new UsageError(`--package ${value}: expected one of ${RUNTIME_NAMES.join(", ")}`);
  }
  const args = argv.slice(i);
  if (args.length === 0) throw new UsageError("no command: expected serve, send or ping");
  return { runtime, pkg, args };
}

/** Deno's permissions for what the arguments name (a Unix socket's directory, the TLS files), and --unstable-net for UDP and SO_REUSEPORT. */
function accessFor(args: readonly string[]): Access {
  const read: string[] = [];
  const write: string[] = [];
  args.forEach((arg, i) => {
    const value = args[i + 1];
    if (value === undefined) return;
    if (arg === "--unix") {
      const dir = dirname(resolve(value));
      read.push(dir);
      write.push(dir);
    }
    if (arg === "--tls-cert" || arg === "--tls-key" || arg === "--tls-ca") read.push(resolve(value));
  });
  const unstableNet = args.some(
    (arg) => arg === "--udp" || arg === "--reuse-port" || arg === "--workers" || arg.startsWith("--workers="),
  );
  // Deno's `--workers` are Web Workers, whose module Deno loads under --allow-read.
  if (args.some((arg) => arg === "--workers" || arg.startsWith("--workers="))) read.push(join(ROOT, "packages"));
  return { read, write, ...(unstableNet ? { unstableNet } : {}) };
}

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

async function main(argv: readonly string[]): Promise<number> {
  let launch: Launch;
  let runtime: Runtime;
  try {
    launch = parse(argv);
    const wanted = parseRuntime(launch.runtime);
    runtime = wanted.version === undefined ? pinned(wanted.runtime) : await resolveRuntime(wanted);
  } catch (error) {
    if (error instanceof UsageError || error instanceof RuntimeError) {
      process.stderr.write(`tcp-echo: ${error.message}\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
  const gap = missing(runtime);
  if (gap) {
    process.stderr.write(`tcp-echo: ${gap}\n`);
    return 2;
  }
  const script = cliOf(launch.pkg ?? runtime.runtime);
  process.stdout.write(
    `${[...command(runtime, script, accessFor(launch.args)), ...launch.args].map(quote).join(" ")}\n`,
  );
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
