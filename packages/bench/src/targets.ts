/**
 * What the bench compares: the servers (ours, the best hand-written native
 * server and the idiomatic alternative on each runtime, the C limits on epoll
 * and io_uring), the clients (each runtime's `load` command and its best
 * hand-written client, beside the C load generator), and the scenarios (a)-(f)
 * of issue 6.
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { cliOf, command, label, missing, pinned, ROOT, RUNTIME_NAMES, type RuntimeName } from "@tcp-echo/testkit";
import type { NativeBinaries } from "./native.ts";
import { PEERS_DIR } from "./paths.ts";

export type { RuntimeName };

export interface Runtime {
  readonly name: RuntimeName;
  /** The command that runs a TypeScript peer script on this runtime. */
  command(script: string): string[];
  /** Why this runtime cannot be benchmarked, or undefined when it can. */
  readonly missing: string | undefined;
  readonly version: string;
  /** Where our package for this runtime lives; missing until its helper has built it. */
  readonly packageEntry: string;
  /** The command that runs our `tcp-echo` CLI on this runtime. */
  readonly cli: string[];
  /** The same, able to run `serve --workers` (Deno: `--unstable-net` for SO_REUSEPORT, read access for its Web Workers). */
  readonly workersCli: string[];
}

/** The pinned runtimes (root package.json), from @tcp-echo/testkit's runtime table. */
export function detectRuntimes(): Record<RuntimeName, Runtime> {
  const entries = RUNTIME_NAMES.map((name): [RuntimeName, Runtime] => {
    const runtime = pinned(name);
    const why = missing(runtime);
    return [
      name,
      {
        name,
        command: (script) => command(runtime, script),
        missing: why && `${label(runtime)}: ${why}`,
        version: runtime.version,
        packageEntry: join(ROOT, `packages/${name}/src/index.ts`),
        cli: command(runtime, cliOf(name)),
        workersCli: command(runtime, cliOf(name), {
          unstableNet: true,
          read: [join(ROOT, "packages")],
        }),
      },
    ];
  });
  return Object.fromEntries(entries) as Record<RuntimeName, Runtime>;
}

/**
 * `native`: the best a user who knows the runtime writes by hand; `idiomatic`: the everyday one-liner;
 * `workers`: our CLI's `serve --workers N`, read against its own 1-worker row.
 */
export type ServerKind = "ours" | "native" | "idiomatic" | "limit" | "workers";

export interface Server {
  readonly id: string;
  readonly label: string;
  readonly runtime: RuntimeName | "c";
  readonly kind: ServerKind;
  readonly command: string[];
  /** Why it is left out of this run. */
  missing: string | undefined;
  /** The scenarios it runs in, unpinned only; every scenario and pin mode when absent. */
  readonly onlyUnpinned?: readonly Scenario["id"][];
  /** A `--workers N` row: the id of the same runtime's `--workers 1` row, which its ratio is taken against. */
  readonly oneWorker?: string;
}

export interface Client {
  readonly id: string;
  readonly label: string;
  readonly runtime: RuntimeName | "c";
  /**
   * `client`: our `tcp-echo load`; `native`: the hand-written client, which takes the C load generator's flags
   * and prints its JSON line; `floor`: that client with a promise per message (`--promises 1`).
   */
  readonly kind: "client" | "native" | "floor";
  readonly command: string[];
  missing: string | undefined;
  /** The client scenarios it runs in; every one when absent. */
  readonly onlyIn?: readonly ClientScenario["id"][];
}

function unavailable(runtime: Runtime, needsPackage: boolean): string | undefined {
  if (runtime.missing) return runtime.missing;
  if (needsPackage && !existsSync(runtime.packageEntry))
    return `@tcp-echo/${runtime.name} is not built yet (${runtime.packageEntry} missing)`;
  return undefined;
}

/** The hand-written best per runtime (`src/peers/<file>`). */
const NATIVE_PEERS: Record<RuntimeName, { file: string; label: string }> = {
  node: { file: "node-onread.ts", label: "node: net onread, pause/drain" },
  bun: { file: "bun-native.ts", label: "bun: Bun.listen, write queue" },
  deno: { file: "deno-native.ts", label: "deno: read loop, 64 KiB buffer" },
};

export function listServers(runtimes: Record<RuntimeName, Runtime>, native: NativeBinaries): Server[] {
  const peer = (name: string) => join(PEERS_DIR, name);
  const uring = native.uringServer;
  const servers: Server[] = [
    { id: "c", label: "C epoll", runtime: "c", kind: "limit", command: [native.echoServer], missing: undefined },
    {
      id: "c-uring",
      label: "C io_uring",
      runtime: "c",
      kind: "limit",
      command: "binary" in uring ? [uring.binary] : [],
      missing: "missing" in uring ? uring.missing : undefined,
    },
  ];
  for (const runtime of Object.values(runtimes)) {
    const name = runtime.name;
    servers.push({
      id: name,
      label: `${name}: @tcp-echo/${name}`,
      runtime: name,
      kind: "ours",
      command: [...runtime.command(peer(`${name}.ts`)), "serve"],
      missing: unavailable(runtime, true),
    });
    servers.push({
      id: `${name}-native`,
      label: NATIVE_PEERS[name].label,
      runtime: name,
      kind: "native",
      command: runtime.command(peer(NATIVE_PEERS[name].file)),
      missing: unavailable(runtime, false),
    });
    servers.push({
      id: `${name}-net`,
      label: `${name}: node:net pipe`,
      runtime: name,
      kind: "idiomatic",
      command: runtime.command(peer("node-net.ts")),
      missing: unavailable(runtime, false),
    });
  }
  servers.push({
    id: "deno-pipeto",
    label: "deno: readable.pipeTo",
    runtime: "deno",
    kind: "idiomatic",
    command: runtimes.deno.command(peer("deno-pipe-to.ts")),
    missing: unavailable(runtimes.deno, false),
  });
  return servers;
}

/** The worker counts the bench compares (issue 15), and the scenarios it compares them in. */
export const WORKER_COUNTS = [1, 2] as const;
const WORKER_SCENARIOS: readonly Scenario["id"][] = ["b", "d"];

/**
 * `tcp-echo serve --workers N` on each runtime, N in `WORKER_COUNTS`: the CLI a user runs, which logs every
 * connection (each worker to the supervisor, which relays it), so its rows are read against each other, not
 * against the library rows. Unpinned only: pinning the group puts every worker on one core.
 */
export function listWorkerServers(runtimes: Record<RuntimeName, Runtime>): Server[] {
  return Object.values(runtimes).flatMap((runtime) =>
    WORKER_COUNTS.map((count) => ({
      id: `${runtime.name}-workers-${count}`,
      label: `${runtime.name}: serve --workers ${count}`,
      runtime: runtime.name,
      kind: "workers" as const,
      command: [...runtime.workersCli, "serve", "--port", "0", "--json", "--workers", String(count)],
      missing: unavailable(runtime, true),
      onlyUnpinned: WORKER_SCENARIOS,
      ...(count === 1 ? {} : { oneWorker: `${runtime.name}-workers-1` }),
    })),
  );
}

/** The servers that run in `scenario` with `pin` (the workers rows: in (b) and (d), unpinned). */
export function runningIn(servers: readonly Server[], scenario: Scenario, pin: "pinned" | "unpinned"): Server[] {
  return servers.filter((s) => !s.onlyUnpinned || (pin === "unpinned" && s.onlyUnpinned.includes(scenario.id)));
}

/** The hand-written load client per runtime (`src/peers/<file>`, on `loadgen.ts`): what the C load generator does, on the runtime's own sockets. */
const NATIVE_CLIENTS: Record<RuntimeName, string> = {
  node: "node-onread-load.ts",
  bun: "bun-native-load.ts",
  deno: "deno-native-load.ts",
};

/**
 * Each runtime's `tcp-echo load` command (the client figure is the command a
 * user can run), and beside it the best hand-written client on that runtime.
 * In (client-b) also that client driven through a promise per message, each
 * awaited by a lane of its own (`--promises 1`, `LoadRun.lane` in
 * `peers/loadgen.ts`): the floor of any client whose API is `await echo()`,
 * which ours is read against too (`x floor`).
 */
export function listClients(runtimes: Record<RuntimeName, Runtime>): Client[] {
  return Object.values(runtimes).flatMap((runtime): Client[] => [
    {
      id: `${runtime.name}-client`,
      label: `${runtime.name}: tcp-echo load`,
      runtime: runtime.name,
      kind: "client",
      command: [...runtime.cli, "load"],
      missing: unavailable(runtime, true),
    },
    {
      id: `${runtime.name}-native-client`,
      label: `${runtime.name}: hand-written client`,
      runtime: runtime.name,
      kind: "native",
      command: runtime.command(join(PEERS_DIR, NATIVE_CLIENTS[runtime.name])),
      missing: unavailable(runtime, false),
    },
    {
      id: `${runtime.name}-promise-client`,
      label: `${runtime.name}: hand-written, a promise per message`,
      runtime: runtime.name,
      kind: "floor",
      command: [...runtime.command(join(PEERS_DIR, NATIVE_CLIENTS[runtime.name])), "--promises", "1"],
      missing: unavailable(runtime, false),
      onlyIn: ["b"],
    },
  ]);
}

/** What a client is told to do in `scenario`, besides where and for how long: `load`'s flags, or the C load generator's. */
export function clientArgs(client: Pick<Client, "kind"> | undefined, scenario: ClientScenario): string[] {
  return client?.kind === "client" ? [...scenario.load, "--json"] : scenario.loadgen;
}

/**
 * A client scenario: the `load` command's flags and the C load generator's for
 * the same traffic (the hand-written clients take the C one's), against a
 * fresh C epoll server.
 */
export interface ClientScenario {
  readonly id: "a" | "b" | "c" | "d" | "e";
  readonly title: string;
  readonly load: string[];
  readonly loadgen: string[];
  readonly unit: string;
}

export const CLIENT_SCENARIOS: readonly ClientScenario[] = [
  {
    id: "a",
    title: "ping-pong: 1 conn, 64 B, 1 in flight",
    load: ["--mode", "pingpong", "--connections", "1", "--size", "64"],
    loadgen: ["--mode", "pipelined", "--conns", "1", "--size", "64", "--depth", "1"],
    unit: "msg/s",
  },
  {
    id: "b",
    title: "50 conns, 64 B, 16 echo() in flight",
    load: ["--mode", "pipeline", "--connections", "50", "--in-flight", "16", "--size", "64"],
    loadgen: ["--mode", "pipelined", "--conns", "50", "--size", "64", "--depth", "16"],
    unit: "msg/s",
  },
  {
    id: "c",
    title: "bulk: 4 conns, write()/read() of 64 KiB (16 ahead)",
    load: ["--mode", "stream", "--connections", "4", "--in-flight", "16", "--size", "65536"],
    loadgen: ["--mode", "bulk", "--conns", "4", "--size", "65536"],
    unit: "MB/s",
  },
  {
    id: "d",
    title: "churn: connect, echo 64 B, half-close, close (16 at a time)",
    load: ["--mode", "churn", "--connections", "16", "--size", "64"],
    loadgen: ["--mode", "churn", "--conns", "16", "--size", "64"],
    unit: "conn/s",
  },
  {
    // (b) through the streaming API: the same traffic (64 B, 16 ahead, on 50
    // connections), so the C load generator and the hand-written clients run (b) here.
    id: "e",
    title: "50 conns, write()/read() of 64 B (16 ahead)",
    load: ["--mode", "stream", "--connections", "50", "--in-flight", "16", "--size", "64"],
    loadgen: ["--mode", "pipelined", "--conns", "50", "--size", "64", "--depth", "16"],
    unit: "msg/s",
  },
];

export interface Scenario {
  readonly id: "a" | "b" | "c" | "d" | "e" | "f";
  readonly title: string;
  /** What the loadgen is asked to do, besides the port. */
  readonly args: string[];
  readonly unit: string;
  readonly better: "higher" | "lower";
  /** Timed scenarios measure speed; the others (flood, idle) measure memory. */
  readonly timed: boolean;
  /** The scenario's figure, from the loadgen's JSON line. */
  value(result: Record<string, number>): number;
}

export interface ScenarioSizes {
  readonly floodBytes: number;
  readonly idleConnections: number;
}

const MB = 1e6;

export function listScenarios(sizes: ScenarioSizes): Scenario[] {
  return [
    {
      id: "a",
      title: "ping-pong: 1 conn, 64 B, 1 in flight",
      args: ["--mode", "pipelined", "--conns", "1", "--size", "64", "--depth", "1"],
      unit: "msg/s",
      better: "higher",
      timed: true,
      value: (r) => r.msgs_per_s as number,
    },
    {
      id: "b",
      title: "50 conns, 64 B, 16 in flight",
      args: ["--mode", "pipelined", "--conns", "50", "--size", "64", "--depth", "16"],
      unit: "msg/s",
      better: "higher",
      timed: true,
      value: (r) => r.msgs_per_s as number,
    },
    {
      id: "c",
      title: "bulk stream: 4 conns, 64 KiB writes",
      args: ["--mode", "bulk", "--conns", "4", "--size", "65536"],
      unit: "MB/s",
      better: "higher",
      timed: true,
      value: (r) => r.mb_per_s as number,
    },
    {
      id: "d",
      title: "churn: connect, echo 64 B, half-close, close (16 at a time)",
      args: ["--mode", "churn", "--conns", "16", "--size", "64"],
      unit: "conn/s",
      better: "higher",
      timed: true,
      value: (r) => r.msgs_per_s as number,
    },
    {
      id: "e",
      title: `flood: write ${sizes.floodBytes / MB} MB without reading`,
      args: ["--mode", "flood", "--bytes", String(sizes.floodBytes), "--stall", "1000"],
      unit: "MB RSS growth",
      better: "lower",
      timed: false,
      value: (r) => (((r.rss_peak_kb as number) - (r.rss_idle_kb as number)) * 1024) / MB,
    },
    {
      id: "f",
      title: `${sizes.idleConnections.toLocaleString("en-US")} idle connections`,
      args: ["--mode", "idle", "--conns", String(sizes.idleConnections)],
      unit: "KB RSS/conn",
      better: "lower",
      timed: false,
      value: (r) => (r.bytes_per_conn as number) / 1e3,
    },
  ];
}
