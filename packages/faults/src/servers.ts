/**
 * Echo servers in child processes, one runtime each (its pinned version from
 * @tcp-echo/testkit's runtime table), started with `serve --json` and read
 * event by event.
 */

import {
  cliOf,
  command,
  type Lines,
  type ManagedProcess,
  missing as missingBinary,
  pinned,
  ROOT,
  RUNTIME_NAMES,
  type RuntimeName,
  spawnWithLines,
} from "@tcp-echo/testkit";

export type { RuntimeName };
export const RUNTIMES = RUNTIME_NAMES;

/**
 * argv that runs `script ...args` on the pinned `runtime`, reading the
 * workspace's packages (the driver imports the runtime package), with V8's heap
 * capped at `heapMiB` (see testkit's `Access.heapMiB`), as `[file, args]`.
 */
export function commandFor(
  runtime: RuntimeName,
  script: string,
  args: readonly string[],
  heapMiB?: number,
): [string, string[]] {
  // `serve --workers` shares the port with SO_REUSEPORT, which Deno keeps behind --unstable-net.
  const unstableNet = args.includes("--workers");
  const [file, ...rest] = command(pinned(runtime), script, { read: [`${ROOT}packages`], heapMiB, unstableNet }) as [
    string,
    ...string[],
  ];
  return [file, [...rest, ...args]];
}

/** Why `runtime` cannot run here, or undefined. */
export function missing(runtime: RuntimeName): string | undefined {
  const why = missingBinary(pinned(runtime));
  return why && `${runtime}: ${why}`;
}

/** A `serve --json` line. */
export interface ServerEvent {
  readonly event: "listening" | "connection" | "close" | "error" | "stats" | "closed";
  readonly [field: string]: unknown;
}

export interface ServerProcess {
  readonly runtime: RuntimeName;
  readonly process: ManagedProcess & Lines;
  readonly pid: number;
  readonly port: number;
  /** Every JSON event so far, in order. */
  events(): ServerEvent[];
  /** The latest `stats` event (needs `--stats`). */
  stats(): ServerEvent | undefined;
  /** Waits for the next `stats` event satisfying `predicate`. */
  statsWhere(predicate: (stats: ServerEvent) => boolean, timeoutMs: number): Promise<ServerEvent>;
  stop(): Promise<void>;
}

/** Starts `serve --port 0 --json ...extra` on `runtime` and waits for its listening line. */
export async function startServer(
  runtime: RuntimeName,
  extra: readonly string[] = [],
  options: { timeoutMs?: number; heapMiB?: number } = {},
): Promise<ServerProcess> {
  const [file, args] = commandFor(
    runtime,
    cliOf(runtime),
    ["serve", "--port", "0", "--json", ...extra],
    options.heapMiB,
  );
  const managed = spawnWithLines(file, args, {
    label: `${runtime} server`,
    cwd: ROOT,
    timeoutMs: options.timeoutMs ?? 120_000,
  });
  let port: number;
  try {
    const line = await managed.line((l) => l.includes('"listening"'), 30_000);
    port = (JSON.parse(line) as { port: number }).port;
  } catch (error) {
    await managed.kill();
    throw new Error(`${runtime} server did not start: ${(error as Error).message}`);
  }
  const events = () => managed.lines.flatMap((line) => (line.startsWith("{") ? [JSON.parse(line) as ServerEvent] : []));
  return {
    runtime,
    process: managed,
    pid: managed.pid,
    port,
    events,
    stats: () => events().findLast((event) => event.event === "stats"),
    async statsWhere(predicate, timeout) {
      const line = await managed.line(
        (l) => l.includes('"stats"') && predicate(JSON.parse(l) as ServerEvent),
        timeout,
        managed.lines.length,
      );
      return JSON.parse(line) as ServerEvent;
    },
    stop: async () => {
      await managed.kill();
    },
  };
}
