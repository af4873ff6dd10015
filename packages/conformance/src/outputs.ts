/**
 * The files a run writes besides the terminal's table: `--json FILE` (or `-`: stdout), `--html FILE`,
 * `--junit FILE`. Checked before the run starts, so a typo in a path fails at once and not after minutes.
 */

import { accessSync, constants, readFileSync, statSync, writeFileSync } from "node:fs";
import { arch, platform } from "node:os";
import { dirname, resolve } from "node:path";
import { type HtmlMeta, renderHtml } from "./html.ts";
import { renderJunit } from "./junit.ts";
import type { MatrixResult } from "./planning.ts";

export interface Outputs {
  readonly json?: string | undefined;
  readonly html?: string | undefined;
  readonly junit?: string | undefined;
}

/** Why the outputs cannot be written (a missing or read-only directory, `-` where only --json takes it), if so. */
export function checkOutputs(outputs: Outputs): string | undefined {
  for (const [flag, path] of Object.entries(outputs) as [keyof Outputs, string | undefined][]) {
    if (path === undefined) continue;
    if (path === "-") {
      if (flag === "json") continue;
      return `--${flag} needs a FILE (only --json writes to stdout with -)`;
    }
    if (path === "") return `--${flag} needs a FILE`;
    const directory = dirname(resolve(path));
    try {
      if (!statSync(directory).isDirectory()) return `--${flag} ${path}: ${directory} is not a directory`;
      accessSync(directory, constants.W_OK);
    } catch (error) {
      return `--${flag} ${path}: cannot write in ${directory} (${(error as NodeJS.ErrnoException).code})`;
    }
    if (statSync(resolve(path), { throwIfNoEntry: false })?.isDirectory()) return `--${flag} ${path} is a directory`;
  }
  const files = Object.values(outputs)
    .filter((path) => path !== undefined && path !== "-")
    .map((path) => resolve(path));
  if (new Set(files).size !== files.length) return "--json, --html and --junit must name different files";
  return undefined;
}

/** Writes each output asked for; `--json -` goes to stdout (and has been flushed when this resolves). */
export async function writeOutputs(result: MatrixResult, outputs: Outputs, meta: HtmlMeta): Promise<void> {
  const json = `${JSON.stringify(result, null, 2)}\n`;
  // A pipe is asynchronous on macOS: the process must not exit before the JSON is out.
  if (outputs.json === "-") await new Promise((resolve) => process.stdout.write(json, resolve));
  else if (outputs.json !== undefined) writeFileSync(outputs.json, json);
  if (outputs.html !== undefined) writeFileSync(outputs.html, renderHtml(result, meta));
  if (outputs.junit !== undefined) writeFileSync(outputs.junit, renderJunit(result));
}

/** An argument as a POSIX shell reads it back. */
function shellQuote(argument: string): string {
  return /^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replace(/'/g, "'\\''")}'`;
}

/** The command line of this process as its user typed it (through `pnpm matrix`, or the bin), for the page. */
export function commandLine(argv: readonly string[], invokedAs: string): string {
  return [invokedAs, ...argv.map(shellQuote)].join(" ");
}

/** This package's name and version, and what it runs on. */
export function generator(): string {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    name: string;
    version: string;
  };
  return `${manifest.name} ${manifest.version} on Node ${process.version} (${platform()} ${arch()})`;
}
