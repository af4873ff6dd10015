/**
 * `serve --workers N`: one supervisor and N workers that share the port with
 * SO_REUSEPORT (`listen({ reusePort: true })`), so Linux spreads connections
 * across them. Each worker is the same CLI, `serve ... --json --reuse-port`,
 * started by the runtime (`CliHost.startWorker`: a child process on Node and
 * Bun, a Web Worker thread on Deno) and driven through its input, never by
 * signals: a terminal's Ctrl-C or systemd's SIGTERM reaches a whole process
 * group, and a worker that saw it too would count the supervisor's own as a
 * second signal and force. The supervisor prints the one `listening` line,
 * relays each worker's lines (`--json`: with its `worker` id), totals the
 * stats, drains every worker on SIGINT/SIGTERM (again to force), and restarts a
 * worker that died, with back-off, counting its open connections as lost.
 */

import type { CliHost } from "./_cli.ts";

/** A running worker, as the runtime started it. */
export interface CliWorker {
  /** Its standard output: the `serve --json` lines. */
  readonly output: AsyncIterable<string | Uint8Array>;
  /** `drain` (the first signal) or `force` (the second). */
  send(command: "drain" | "force"): void;
  /** Its exit code; `null` if it was killed or crashed. Never rejects. */
  readonly exited: Promise<number | null>;
}

/** What a worker's input says, as the signals it stands for. */
const COMMANDS: Record<string, true> = { drain: true, force: true };

/**
 * A worker's `onSignal`: the supervisor's commands on `input` are its signals
 * (each one a SIGTERM: the first drains, the second forces), and the end of
 * `input` (the supervisor is gone) forces. `ignore` silences the process's own
 * SIGINT and SIGTERM, which the supervisor handles for it.
 */
export function supervisedSignals(
  input: AsyncIterable<string | Uint8Array>,
  ignore?: CliHost["onSignal"],
): CliHost["onSignal"] {
  return (handler) => {
    let listening = true;
    const stopIgnoring = ignore?.(() => {});
    void (async () => {
      const decoder = new TextDecoder();
      let text = "";
      for await (const chunk of input) {
        text += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
        for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n")) {
          if (listening && COMMANDS[text.slice(0, end)]) handler("SIGTERM");
          text = text.slice(end + 1);
        }
      }
      if (listening) {
        handler("SIGTERM");
        handler("SIGTERM");
      }
    })().catch(() => {});
    return () => {
      listening = false;
      stopIgnoring?.();
    };
  };
}

/** The subset of `node:child_process`'s `spawn` a worker needs (Node and Bun both have it). */
type Spawn = (
  command: string,
  args: readonly string[],
  options: { stdio: ["pipe", "pipe", "inherit"]; env: Record<string, string | undefined> },
) => {
  stdin: { write(text: string): unknown; on(event: "error", listener: () => void): unknown } | null;
  stdout: AsyncIterable<string | Uint8Array> | null;
  once(event: "exit", listener: (code: number | null) => void): unknown;
};

/** The environment variable that tells a CLI it is a supervised worker. */
const WORKER_ENV = "TCP_ECHO_WORKER";

/**
 * Whether this process is a `serve --workers` worker (its supervisor set `WORKER_ENV`). Reading the environment
 * can throw: Deno runs the Node package (`node@deno`) without `--allow-env`, and its `process.env` then throws
 * `NotCapable` on every read. A process that cannot read its environment was not started by a supervisor.
 */
export function startedAsWorker(self: { readonly env: Record<string, string | undefined> }): boolean {
  try {
    return self.env[WORKER_ENV] === "1";
  } catch {
    return false;
  }
}

/** `CliHost.startWorker` for a runtime with `node:child_process`: this same script, run again with `args`. */
export function childWorkers(
  spawn: Spawn,
  self: {
    execPath: string;
    execArgv: readonly string[];
    argv: readonly string[];
    env: Record<string, string | undefined>;
  },
): NonNullable<CliHost["startWorker"]> {
  return (args) => {
    const child = spawn(self.execPath, [...self.execArgv, self.argv[1] as string, ...args], {
      stdio: ["pipe", "pipe", "inherit"],
      env: { ...self.env, [WORKER_ENV]: "1" },
    });
    // A worker that died cannot take a command: nothing to report, its exit is.
    child.stdin?.on("error", () => {});
    return {
      output: child.stdout ?? (async function* () {})(),
      send: (command) => void child.stdin?.write(`${command}\n`),
      exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))),
    };
  };
}

// --- the supervisor ------------------------------------------------------------

type Event = Record<string, unknown> & { event?: string };

interface Slot {
  readonly id: number;
  worker: CliWorker | undefined;
  /** Connections open on it now, from its connection and close lines. */
  active: number;
  stats: Event | undefined;
  closed: Event | undefined;
  startedAt: number;
  failures: number;
  exitCode: number | null | undefined;
}

export interface SupervisorOptions {
  readonly count: number;
  /** The worker's `serve` arguments, without `--workers`. */
  readonly args: readonly string[];
  readonly json: boolean;
  readonly statsSeconds: number;
}

/** Back-off before restarting a worker that died: doubling from 100 ms to 5 s, from the start again after 10 s of life. */
const RESTART = { first: 100, max: 5000, healthy: 10_000 };
const COUNTERS = ["active", "accepted", "rejected", "idleClosed", "bytesIn", "bytesOut"] as const;

export async function superviseWorkers(
  host: CliHost & { startWorker: NonNullable<CliHost["startWorker"]> },
  options: SupervisorOptions,
): Promise<number> {
  const { count, json } = options;
  const print = (event: Event, text?: string) => {
    if (json) host.stdout(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
    else if (text) host.stdout(`${text}\n`);
  };
  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    worker: undefined,
    active: 0,
    stats: undefined,
    closed: undefined,
    startedAt: 0,
    failures: 0,
    exitCode: undefined,
  }));
  /** Counters of workers that died, so totals do not go backwards. */
  const retired: Record<string, number> = {};
  const retiredErrors: Record<string, number> = {};
  let stopping = 0;
  let port: number | undefined;
  let wakeAll: () => void = () => {};
  const allExited = new Promise<void>((resolve) => {
    wakeAll = resolve;
  });
  const restartTimers = new Set<ReturnType<typeof setTimeout>>();

  const relay = (slot: Slot, event: Event) => {
    if (event.event === "connection") slot.active++;
    else if (event.event === "close") slot.active = Math.max(0, slot.active - 1);
    if (event.event === "stats") slot.stats = event;
    else if (event.event === "closed") slot.closed = event;
    if (event.event === "listening" || event.event === "stats" || event.event === "closed") return;
    if (json) {
      host.stdout(`${JSON.stringify({ ...event, worker: slot.id })}\n`);
      return;
    }
    if (event.event === "connection")
      host.stdout(`New connection from ${event.remote}${event.via ? ` via ${event.via}` : ""}\n`);
    else if (event.event === "error" && event.code !== "ECONNRESET" && event.code !== "EPIPE")
      host.stderr(`worker ${slot.id}: ${event.remote ? `connection from ${event.remote}: ` : ""}${event.message}\n`);
  };

  /** Starts `slot`'s worker; resolves with its listening event, or its exit code if it ended first. */
  const start = (slot: Slot): Promise<Event | number | null> => {
    const worker = host.startWorker([
      ...options.args,
      "--json",
      "--reuse-port",
      ...(port === undefined ? [] : ["--port", String(port)]),
    ]);
    slot.worker = worker;
    slot.active = 0;
    slot.stats = undefined;
    slot.startedAt = Date.now();
    slot.exitCode = undefined;
    let listening: ((event: Event) => void) | undefined;
    const ready = new Promise<Event>((resolve) => {
      listening = resolve;
    });
    void (async () => {
      const decoder = new TextDecoder();
      let text = "";
      for await (const chunk of worker.output) {
        text += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
        for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n")) {
          const line = text.slice(0, end);
          text = text.slice(end + 1);
          let event: Event;
          try {
            event = JSON.parse(line) as Event;
          } catch {
            continue;
          }
          if (event.event === "listening") listening?.(event);
          relay(slot, event);
        }
      }
    })().catch(() => {});
    void worker.exited.then((code) => exited(slot, worker, code));
    return Promise.race([ready, worker.exited]);
  };

  const exited = (slot: Slot, worker: CliWorker, code: number | null) => {
    if (slot.worker !== worker) return;
    slot.exitCode = code;
    if (stopping > 0 || port === undefined) {
      if (slots.every((each) => each.exitCode !== undefined)) wakeAll();
      return;
    }
    // Died on its own: its connections are gone with it, and counted.
    const lost = slot.active;
    for (const name of COUNTERS)
      if (name !== "active") retired[name] = (retired[name] ?? 0) + Number(slot.stats?.[name] ?? 0);
    for (const [name, value] of Object.entries((slot.stats?.errors as Record<string, number>) ?? {}))
      retiredErrors[name] = (retiredErrors[name] ?? 0) + value;
    if (lost > 0) retiredErrors.EWORKER = (retiredErrors.EWORKER ?? 0) + lost;
    slot.failures = Date.now() - slot.startedAt > RESTART.healthy ? 1 : slot.failures + 1;
    const delay = Math.min(RESTART.first * 2 ** (slot.failures - 1), RESTART.max);
    print({ event: "worker-exit", worker: slot.id, code, lost, restartInMs: delay }, undefined);
    if (!json)
      host.stderr(
        `worker ${slot.id} exited (code ${code}); ${lost} connection(s) lost with it; restarting in ${delay} ms\n`,
      );
    const timer = setTimeout(() => {
      restartTimers.delete(timer);
      if (stopping === 0) void start(slot);
      else {
        slot.exitCode = code;
        if (slots.every((each) => each.exitCode !== undefined)) wakeAll();
      }
    }, delay);
    restartTimers.add(timer);
  };

  // The first worker binds (port 0 picks one); the others join its port.
  const [first, ...rest] = slots as [Slot, ...Slot[]];
  const bound = await start(first);
  if (typeof bound !== "object" || bound === null) return typeof bound === "number" && bound !== 0 ? bound : 1;
  port = Number(bound.port);
  const others = await Promise.all(rest.map((slot) => start(slot)));
  const failed = others.find((result) => typeof result !== "object" || result === null);
  if (failed !== undefined) {
    for (const slot of slots) slot.worker?.send("force");
    stopping = 2;
    host.stderr(`a worker failed to start (exit ${failed}); stopping the others\n`);
    await allExited;
    return 1;
  }

  const stop = host.onSignal((signal) => {
    stopping++;
    if (stopping === 1) {
      if (!json) {
        const open = slots.reduce((sum, slot) => sum + slot.active, 0);
        host.stderr(
          `${signal}: closing ${count} workers; waiting for ${open} connection(s) to finish (again to force)\n`,
        );
      }
      for (const timer of restartTimers) clearTimeout(timer);
      for (const slot of slots) {
        if (!slot.worker || slot.exitCode !== undefined) slot.exitCode ??= 0;
        else slot.worker.send("drain");
      }
      if (slots.every((slot) => slot.exitCode !== undefined)) wakeAll();
    } else {
      for (const slot of slots) slot.worker?.send("force");
    }
  });
  const hostname = String(bound.hostname);
  print(
    { event: "listening", runtime: host.runtime, transport: "tcp", tls: bound.tls, hostname, port, workers: count },
    `Server listening on ${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
  );
  const totals = (
    from: "stats" | "closed",
  ): Record<(typeof COUNTERS)[number], number> & { errors: Record<string, number> } => {
    const sum: Record<string, number> = { ...retired };
    const errors: Record<string, number> = { ...retiredErrors };
    for (const slot of slots) {
      const event = slot[from];
      for (const name of COUNTERS) sum[name] = (sum[name] ?? 0) + Number(event?.[name] ?? 0);
      for (const [name, value] of Object.entries((event?.errors as Record<string, number>) ?? {}))
        errors[name] = (errors[name] ?? 0) + value;
    }
    return { ...(sum as Record<(typeof COUNTERS)[number], number>), errors };
  };
  const statsTimer =
    options.statsSeconds > 0
      ? setInterval(() => {
          const stats = totals("stats");
          print(
            { event: "stats", workers: count, ...stats },
            `stats (${count} workers): active ${stats.active}, accepted ${stats.accepted}, rejected ${stats.rejected}, idle-closed ${stats.idleClosed}, bytes in ${stats.bytesIn}, out ${stats.bytesOut}, errors ${JSON.stringify(stats.errors)}`,
          );
        }, options.statsSeconds * 1000)
      : undefined;
  await allExited;
  stop();
  clearInterval(statsTimer);
  print({ event: "closed", workers: count, ...totals("closed") });
  return slots.every((slot) => slot.exitCode === 0) ? 0 : 1;
}
