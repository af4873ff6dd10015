/**
 * What a matrix run will do and what it yields, as plain data: which cases run
 * in which cell (`planMatrix`), the sizes each cell runs with, each driver
 * case's hard limit, and the shapes of the results. No process, socket or timer:
 * `test/planning.test.ts` checks it without starting anything.
 */

import type { Runtime } from "@tcp-echo/testkit";
import { FAULT_CASES } from "./fault-cells.ts";
import type { RunningServer } from "./launchers.ts";
import { CLIENTS, type ClientSpec, HARNESS, participants, SERVERS, type ServerSpec } from "./participants.ts";
import { CASES, type CaseName, type CaseParams, type CaseSpec, type DriverResult, type Profile } from "./plan.ts";
import type { GridTransport, Transport } from "./transports.ts";
import type { Via } from "./via.ts";

/** One case's outcome: what the driver (or the runner) reported, and its known gap if the cell has one. */
export interface CaseResult extends DriverResult {
  /** A known runtime bug (`KNOWN_GAPS`, its why): failing as recorded does not fail the cell. */
  readonly knownGap?: string;
  /** What is wrong with the known gap's outcome: it passed, or failed another way. */
  readonly gapBroken?: string;
  /** Why the case could not be checked on this server (`ok` is false: never a pass); it neither passes nor fails the cell. */
  readonly notApplicable?: string;
}

/** The cases of a cell that were checked (not n/a): what its count and its status are of. */
export function checked(results: readonly CaseResult[]): CaseResult[] {
  return results.filter((result) => result.notApplicable === undefined);
}

/** The case did what the cell needs: passed, or failed exactly as its known gap records. */
export function casePassed(result: CaseResult): boolean {
  return result.knownGap ? result.gapBroken === undefined : result.ok;
}

/**
 * - `pass` / `fail`: every case passed / at least one failed.
 * - `expected-fail`: the negative control row failed at least one case (and our
 *   clients detected it): what must happen. `unexpected-pass`: it did not.
 * - `not-available`: the server or client cannot run here (`note` says why and how to fix it).
 */
export type CellStatus = "pass" | "fail" | "expected-fail" | "unexpected-pass" | "not-available";

export interface CellResult {
  readonly transport: GridTransport;
  readonly server: string;
  readonly client: string;
  readonly status: CellStatus;
  readonly cases: readonly CaseResult[];
  readonly ms: number;
  readonly note?: string;
}

export interface Participant {
  readonly name: string;
  readonly kind: string;
  /** What runs it (ours: node, bun or deno; a peer: its program) and its exact version. */
  readonly runtime?: string;
  readonly version?: string;
  readonly description: string;
  readonly missing?: string;
}

export interface MatrixResult {
  readonly profile: Profile["name"];
  readonly startedAt: string;
  readonly durationMs: number;
  readonly servers: readonly Participant[];
  readonly clients: readonly Participant[];
  /** `faults`: `pnpm matrix --faults`, whose cases are the faults. */
  readonly mode: "conformance" | "faults";
  readonly transports: readonly GridTransport[];
  readonly cases: readonly { name: string; proves: string }[];
  readonly cells: readonly CellResult[];
  /** `--via`: every row's server was behind this balancer. */
  readonly via?: Via;
  /** Every expected cell passed (and, with `requireAll`, nothing was unavailable). */
  readonly ok: boolean;
}

export interface MatrixOptions {
  readonly profile: Profile;
  readonly servers?: readonly string[];
  readonly clients?: readonly string[];
  readonly cases?: readonly string[];
  /** Count an unavailable server or client as a failure (CI, where everything is installed). */
  readonly requireAll?: boolean;
  /** Rows run at once. Default 1. */
  readonly jobs?: number;
  /** Run our clients x our servers through each fault of `FAULTS` instead of the conformance cases. */
  readonly faults?: boolean;
  /** The transports to run over (default tcp4); each is its own grid. */
  readonly transports?: readonly Transport[];
  /** Ours on these runtime versions (`--runtimes`) instead of the pinned ones. */
  readonly runtimes?: readonly Runtime[];
  /** Only the cells this accepts (the vitest suite's diagonal). */
  readonly only?: (server: string, client: string, transport: Transport) => boolean;
  /**
   * Participants from outside (`external.ts`). Each side replaces the default of
   * its own side (`--server-at` alone: that server against every client); the
   * negative control always runs with them, and with an outside server the
   * harness column (the server-only cases).
   */
  readonly outside?: { readonly servers: readonly ServerSpec[]; readonly clients: readonly ClientSpec[] };
  /** Each row's server behind a balancer of its own (`--via`, `via.ts`); the client-only row does not run. */
  readonly via?: Via;
}

/** Why a case cannot be checked through a balancer (`--via`), or undefined: it runs through it. */
export function notThroughBalancer(spec: CaseSpec, via: Via): string | undefined {
  if (spec.name === "reset-before-accept") {
    return `a client's reset ends at ${via}, which connects to the server only for a connection it accepted: the server's backlog is not reached (run it without --via)`;
  }
  if (spec.name === "drain") {
    return `it checks that the server stops accepting at once on SIGTERM, but ${via} in front still accepts (and closes the client when the server refuses it): it is checked without --via`;
  }
  return undefined;
}

export type MatrixEvent =
  | { type: "plan"; rows: readonly PlannedRow[] }
  | { type: "cell-start"; transport: Transport; server: string; client: string }
  | { type: "case"; transport: Transport; server: string; client: string; result: CaseResult }
  | { type: "cell"; cell: CellResult };

export interface PlannedCell {
  readonly client: ClientSpec;
  readonly cases: readonly CaseSpec[];
  /** Cases that apply to the pair but cannot be checked on this server, each with the reason: shown as n/a, never passed. */
  readonly notApplicable: readonly { readonly case: string; readonly reason: string }[];
  /** `--case` chose the cases: they may not include one that can catch the negative control. */
  readonly filtered: boolean;
}

export interface PlannedRow {
  readonly transport: Transport;
  readonly server: ServerSpec;
  readonly cells: readonly PlannedCell[];
}

function rowMatches(spec: CaseSpec, server: ServerSpec): boolean {
  switch (spec.rows) {
    case "servers":
      return (
        server.kind === "ours" || server.kind === "peer" || server.kind === "external" || server.kind === "control"
      );
    case "ours":
      return server.kind === "ours";
    case "control":
      return server.kind === "control";
    case "client-only":
      return server.kind === "client-only";
  }
}

/** The key of one cell, for lookups. */
export function cellKey(transport: GridTransport, server: string, client: string): string {
  return `${transport}|${server}|${client}`;
}

function playerMatches(spec: CaseSpec, client: ClientSpec): boolean {
  switch (spec.players) {
    case "api":
      return client.kind === "ours";
    case "pipe":
      return client.kind === "ours" || client.kind === "peer" || client.kind === "external";
    case "harness":
      return client.kind === "harness";
    case "cli":
      return client.kind === "ours" && client.cli !== undefined;
  }
}

/** Which cases run in which cell; a pair with no case is "n/a" and not planned. */
export function planMatrix(
  options: Pick<
    MatrixOptions,
    "servers" | "clients" | "cases" | "faults" | "transports" | "only" | "runtimes" | "outside" | "via"
  >,
): PlannedRow[] {
  // A family (`node`) names every version of it (`node@22.23.5`, `node@24.21.0`).
  const named = (item: { name: string; family?: string }, name: string) => item.name === name || item.family === name;
  const pick = <T extends { name: string }>(all: readonly T[], names: readonly string[] | undefined, what: string) => {
    if (!names?.length) return all;
    for (const name of names) {
      if (!all.some((item) => named(item, name))) {
        throw new Error(`unknown ${what} ${JSON.stringify(name)}; known: ${all.map((item) => item.name).join(", ")}`);
      }
    }
    return all.filter((item) => names.some((name) => named(item, name)));
  };
  const everyone = options.runtimes ? participants(options.runtimes) : { servers: SERVERS, clients: CLIENTS };
  const outside = options.outside ?? { servers: [], clients: [] };
  const allServers = [...everyone.servers, ...outside.servers];
  const allClients = [...everyone.clients, ...outside.clients, HARNESS];
  const chosenServers = options.servers?.length
    ? pick(allServers, options.servers, "server")
    : outside.servers.length
      ? outside.servers
      : everyone.servers;
  // A report on participants from outside always shows that the suite can fail.
  const control = everyone.servers.filter((server) => server.kind === "control");
  const servers =
    outside.servers.length + outside.clients.length > 0 ? [...new Set([...chosenServers, ...control])] : chosenServers;
  const chosenClients = options.clients?.length
    ? pick(allClients, options.clients, "client")
    : outside.clients.length
      ? outside.clients
      : [...everyone.clients, HARNESS];
  // The server-only cases are an outside server's own test: they run whatever clients are named.
  const clients = outside.servers.length ? [...new Set([...chosenClients, HARNESS])] : chosenClients;
  const cases = pick(options.faults ? FAULT_CASES : CASES, options.cases, options.faults ? "fault" : "case");
  const transports = transportsOf(options);
  if (options.faults && transports.some((transport) => transport !== "tcp4")) {
    throw new Error("--faults runs over tcp4 only: the fault proxy is a TCP proxy");
  }
  if (options.via && servers.some((server) => server.kind === "client-only") && options.servers?.length) {
    throw new Error(
      `--via ${options.via}: the client-only row has no server under test to put behind it (its servers are the clients' fixtures)`,
    );
  }
  const rows: PlannedRow[] = [];
  for (const transport of transports) {
    for (const server of servers) {
      if (!server.transports.includes(transport)) continue;
      // Its servers are the clients' own test fixtures (refusing, stalling), not a server under test.
      if (options.via && server.kind === "client-only") continue;
      const cells = clients
        .filter((client) => client.transports.includes(transport))
        .filter((client) => options.only?.(server.name, client.name, transport) ?? true)
        .map((client) => {
          const applies = cases.filter(
            (spec) =>
              rowMatches(spec, server) &&
              playerMatches(spec, client) &&
              (spec.transports ?? [transport]).includes(transport) &&
              !(
                (server.kind === "peer" || server.kind === "external") &&
                spec.peerServerClients &&
                !spec.peerServerClients.includes(client.name)
              ),
          );
          // Without a process to read, a case runs its client-observable form, or cannot be checked at all.
          const unchecked = (spec: CaseSpec) =>
            server.noProcess !== undefined && spec.needs === "process" && spec.withoutProcess === undefined;
          const reasonOf = (spec: CaseSpec) =>
            (options.via && notThroughBalancer(spec, options.via)) ||
            (unchecked(spec)
              ? `it needs the server's process (/proc memory, descriptors, connection table, CPU ticks or signals), and ${server.noProcess}`
              : undefined);
          return {
            client,
            filtered: Boolean(options.cases?.length),
            cases: applies.filter((spec) => reasonOf(spec) === undefined),
            notApplicable: applies.flatMap((spec) => {
              const reason = reasonOf(spec);
              return reason === undefined ? [] : [{ case: spec.name, reason }];
            }),
          };
        })
        .filter((cell) => cell.cases.length + cell.notApplicable.length > 0);
      if (cells.length > 0) rows.push({ transport, server, cells });
    }
  }
  // A participant from outside that nothing runs on is a mistake to say, not an empty row.
  for (const server of outside.servers) {
    if (!rows.some((row) => row.server === server)) {
      throw new Error(
        `no case of this run applies to server ${server.name} over ${transports.join(", ")} (it serves ${server.transports.join(", ")})`,
      );
    }
  }
  for (const client of outside.clients) {
    if (!rows.some((row) => row.cells.some((cell) => cell.client === client))) {
      throw new Error(
        `no case of this run applies to client ${client.name} over ${transports.join(", ")} (it connects over ${client.transports.join(", ")})`,
      );
    }
  }
  return rows;
}

/**
 * The transports of a run: those asked for, or tcp4; a server reached by URL
 * brings its own (`tls://` is TLS), and those of a server command that cannot
 * serve tcp4 (`{path}`: unix).
 */
export function transportsOf(options: Pick<MatrixOptions, "transports" | "outside">): readonly Transport[] {
  if (options.transports) return options.transports;
  const outside = options.outside?.servers ?? [];
  const own = outside.map((server) => (server.transports.includes("tcp4") ? "tcp4" : server.transports[0]!));
  return own.length ? [...new Set(own)] : ["tcp4"];
}

/** The sizes a cell runs with. The 256 MiB payload runs where the profile says. */
export function paramsFor(
  profile: Profile,
  server: ServerSpec,
  client: ClientSpec,
  refusedPort: number,
  running?: RunningServer,
): CaseParams {
  const big = profile.bigPayloadOn === "diagonal" && server.kind === "ours" && server.name === client.name;
  const counting = running?.counting;
  return {
    payloads: big ? [...profile.payloads, profile.bigPayload] : profile.payloads,
    halfClose: profile.halfClose,
    halfCloseLate: profile.halfCloseLate,
    lateReadMs: 500,
    connections: profile.connections,
    refusedPort,
    ...(counting
      ? { counting: { port: counting.port, stalledPort: counting.stalledPort, reportUrl: counting.reportUrl } }
      : {}),
  };
}

/** Hard limit per driver case: far above a healthy run, so only a hang reaches it. */
export function budget(name: string, params: CaseParams): number {
  const bytes = params.payloads.reduce((sum, size) => sum + size, 0);
  const budgets: Partial<Record<CaseName, number>> = {
    payloads: Math.round(30_000 + bytes / 10_000),
    "half-close": 60_000,
    pipelining: 70_000,
    "many-connections": 70_000,
    "client-detection": 45_000,
    errors: 60_000,
    "graceful-close": 45_000,
  };
  return budgets[name as CaseName] ?? 25_000;
}

/** The clients of a plan, in column order. */
export function clientsOf(rows: readonly PlannedRow[]): ClientSpec[] {
  return [...new Map(rows.flatMap((row) => row.cells.map((cell) => [cell.client.name, cell.client]))).values()].sort(
    (a, b) => columnIndex(a) - columnIndex(b),
  );
}

function columnIndex(client: ClientSpec): number {
  const index = CLIENTS.indexOf(client);
  return index >= 0 ? index : CLIENTS.length;
}

/** A negative-control case that caught the break: it failed its own check on a running server. */
export function isCatch(result: CaseResult): boolean {
  return !result.ok && result.verdict === true;
}

/**
 * The run's verdict: every expected cell passed, at least one cell ran (a run in which nothing could run proved
 * nothing), and with `requireAll` nothing was unavailable.
 */
export function runPassed(cells: readonly Pick<CellResult, "status">[], requireAll: boolean): boolean {
  const unavailable = cells.filter((cell) => cell.status === "not-available").length;
  return (
    unavailable < cells.length &&
    cells.every((cell) => cell.status !== "fail" && cell.status !== "unexpected-pass") &&
    !(requireAll && unavailable > 0)
  );
}
