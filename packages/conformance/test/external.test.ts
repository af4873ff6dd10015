/** Participants from outside: --server-at, --server-cmd, --client-cmd and --config, passing and failing as they should. */

import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { killAllAndWait, spawnManaged } from "@tcp-echo/testkit";
import { tempDir } from "@tcp-echo/testkit/fixtures";
import { afterAll, describe, expect, test } from "vitest";
import {
  endpointOf,
  type OutsideFlags,
  outsideOf,
  outsideParticipants,
  readConfig,
  UsageError,
} from "../src/external.ts";
import { runMatrix } from "../src/matrix.ts";
import { CLIENTS, HARNESS, SERVERS } from "../src/participants.ts";
import { PROFILES } from "../src/plan.ts";
import type { CellResult, MatrixResult } from "../src/planning.ts";
import { accepts, freePort } from "../src/transports.ts";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const PYTHON_SERVER = fileURLToPath(new URL("../peers/echo_server.py", import.meta.url));
const TAKEN = [...SERVERS, ...CLIENTS, HARNESS].map((participant) => participant.name);
const dir = tempDir("tcp-echo-external-");

afterAll(async () => {
  await killAllAndWait();
  rmSync(dir, { recursive: true, force: true });
});

/** The negative control runs in every test, but not its harness column (10 s, and no outside participant in it). */
const withoutControlHarness = (server: string, client: string) => server !== "control" || client !== "harness";

function run(flags: OutsideFlags, selection: { servers?: string[]; clients?: string[]; cases: string[] }) {
  const outside = outsideParticipants(outsideOf(flags), TAKEN);
  return runMatrix({ profile: PROFILES.quick, outside, only: withoutControlHarness, ...selection });
}

function cell(result: MatrixResult, server: string, client: string): CellResult {
  const found = result.cells.find((c) => c.server === server && c.client === client);
  if (!found) throw new Error(`no ${server} x ${client} cell in ${result.cells.map((c) => `${c.server}x${c.client}`)}`);
  return found;
}

const failures = (c: CellResult) =>
  c.cases.filter((r) => !r.ok && !r.notApplicable).map((r) => `${r.case}: ${r.failure}`);

async function until(probe: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; !(await probe()); tries++) {
    if (tries === 100) throw new Error("socat did not start listening within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs `pnpm matrix` with `args`; its exit code and the --json result. */
async function matrixCli(args: string[]): Promise<{ code: number | null; stderr: string; result?: MatrixResult }> {
  const json = join(dir, `result-${Math.random().toString(36).slice(2)}.json`);
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args, "--json", json], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  try {
    return { code, stderr, result: JSON.parse(readFileSync(json, "utf8")) as MatrixResult };
  } catch {
    return { code, stderr };
  }
}

describe("--server-cmd", () => {
  test("the Python peer started by command passes, and the cases that read its process run on it", async () => {
    const result = await run(
      { "server-cmd": [`py=python3 -u ${PYTHON_SERVER} {host} {port}`] },
      { servers: ["py"], clients: ["nc"], cases: ["tutorial", "resets"] },
    );
    expect(failures(cell(result, "py", "nc"))).toEqual([]);
    expect(cell(result, "py", "nc").status).toBe("pass");
    const resets = cell(result, "py", "harness").cases.find((r) => r.case === "resets");
    expect(resets?.ok, resets?.failure).toBe(true);
    // Read from /proc: the matrix knows the command's process group.
    expect(resets?.checks.join(" ")).toMatch(/descriptors \d+ -> \d+/);
    // The negative control runs with participants from outside.
    expect(cell(result, "control", "nc").status).toBe("expected-fail");
  });

  test("ncat --exec /bin/cat, which drops the echo after the client's half-close, fails half-close", async () => {
    const result = await run(
      { "server-cmd": ["ncat-exec=ncat -l {host} {port} -k --exec /bin/cat"] },
      { servers: ["ncat-exec"], clients: ["nc"], cases: ["half-close"] },
    );
    expect(cell(result, "ncat-exec", "nc").status).toBe("fail");
    // ncat either closes after what it echoed or holds the connection open until nc gives up: short either way.
    expect(failures(cell(result, "ncat-exec", "nc")).join()).toMatch(/half-close: .*\b\d+ of \d+ bytes came back/);
    expect(result.ok).toBe(false);
  });

  test("a command that exits at once fails its cell with its output, an unreachable URL its own, and the run goes on", async () => {
    const closed = await freePort();
    const result = await run(
      {
        "server-cmd": ["quits=echo no such listener {port} >&2; exit 3"],
        "server-at": [`gone=tcp://127.0.0.1:${closed}`],
      },
      { clients: ["nc"], cases: ["tutorial"] },
    );
    expect(failures(cell(result, "quits", "nc")).join()).toMatch(
      /exited \(exit code 3\) before it was ready; its last output: no such listener \d+/,
    );
    expect(failures(cell(result, "gone", "nc")).join()).toMatch(
      /tcp:\/\/127\.0\.0\.1:\d+ is not reachable: ECONNREFUSED/,
    );
    expect(cell(result, "control", "nc").status).toBe("expected-fail");
    expect(result.ok).toBe(false);
  });
});

test("--server-cmd: ready by a line of its output, and a clear error with its last output when the line never comes", async () => {
  const python = `python3 -u ${PYTHON_SERVER} {host} {port}`;
  const outside = outsideParticipants(
    {
      serversAt: [],
      serverCommands: [
        { name: "by-line", command: python, readyLine: "^Server listening on" },
        {
          name: "never",
          command: "echo starting on {port}; exec sleep 30",
          readyLine: "^never printed$",
          startTimeoutMs: 2000,
        },
      ],
      clientCommands: [],
    },
    TAKEN,
  );
  const result = await runMatrix({ profile: PROFILES.quick, outside, clients: ["nc"], cases: ["tutorial"] });
  expect(cell(result, "by-line", "nc").status).toBe("pass");
  expect(failures(cell(result, "never", "nc")).join()).toMatch(
    /never was not ready within 2000 ms \(no line of its output matched \/\^never printed\$\/\); its last output: starting on \d+/,
  );
});

describe("--server-at", () => {
  test("socat started outside the matrix: exit 0, and the cases that need its process n/a with the reason", async () => {
    const port = await freePort();
    const socat = spawnManaged("socat", [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,backlog=1024`, "EXEC:cat"], {
      label: "socat",
      timeoutMs: 60_000,
    });
    try {
      const { code, stderr, result } = await matrixCli([
        "--server-at",
        `ext=tcp://127.0.0.1:${port}`,
        "--client",
        "nc",
        "--case",
        "tutorial,resets,reset-before-accept",
        "--profile",
        "quick",
      ]);
      expect(code, stderr).toBe(0);
      const harness = cell(result!, "ext", "harness");
      const unchecked = harness.cases.find((r) => r.case === "reset-before-accept");
      expect(unchecked?.ok).toBe(false);
      expect(unchecked?.notApplicable).toMatch(/needs the server's process .* reached by URL/);
      // The client-observable form: still serving, byte-exact, after the resets.
      const resets = harness.cases.find((r) => r.case === "resets");
      expect(resets?.ok, resets?.failure).toBe(true);
      expect(resets?.checks).toContain("the next client was served byte-exact");
      expect(cell(result!, "ext", "nc").status).toBe("pass");
      expect(cell(result!, "control", "nc").status).toBe("expected-fail");
    } finally {
      await socat.kill();
    }
  });
});

/** An echo server (Python) that stops serving once a client has reset a connection: what `resets` exists to catch. */
const BROKEN_BY_RESETS = `
import socket, sys, threading
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), reuse_port=False, backlog=128)
broken = False
def serve(connection):
    global broken
    try:
        while not broken:
            data = connection.recv(65536)
            if not data:
                break
            connection.sendall(data)
    except ConnectionResetError:
        broken = True
    except OSError:
        pass
    connection.close()
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
`;

describe("--server-at, failing", () => {
  test("a server that stops serving after a reset fails the client-observable form of resets", async () => {
    const port = await freePort();
    const script = join(dir, "broken_by_resets.py");
    writeFileSync(script, BROKEN_BY_RESETS);
    const server = spawnManaged("python3", [script, String(port)], { label: "broken server", timeoutMs: 60_000 });
    try {
      await until(() => accepts({ transport: "tcp4", host: "127.0.0.1", port }));
      const result = await run(
        { "server-at": [`broken=tcp://127.0.0.1:${port}`] },
        { servers: ["broken"], cases: ["resets"] },
      );
      expect(failures(cell(result, "broken", "harness")).join()).toMatch(
        /resets: (the next client got 0 of 65536 bytes right|the connection closed without EOF after 0 bytes)/,
      );
      expect(result.ok).toBe(false);
    } finally {
      await server.kill();
    }
  });
});

describe("--client-cmd", () => {
  test("nc -N by command passes; a client that sends only 3 bytes fails, named by its case", async () => {
    const result = await run(
      { "client-cmd": ["pipe=nc.openbsd -N {host} {port}", "short=head -c 3 | nc.openbsd -N {host} {port}"] },
      { servers: ["socat"], cases: ["tutorial", "half-close"] },
    );
    expect(failures(cell(result, "socat", "pipe"))).toEqual([]);
    expect(cell(result, "socat", "pipe").status).toBe("pass");
    expect(failures(cell(result, "socat", "short")).join()).toMatch(/tutorial: got "Hel" back/);
    // The control runs with an outside client too, and the client catches it.
    expect(cell(result, "control", "pipe").status).toBe("expected-fail");
  });
});

describe("bad input is refused before anything starts", () => {
  const config = (name: string, value: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify(value));
    return file;
  };

  test("the config file: an unknown key, a server with both url and command, a bad URL, a taken name", () => {
    expect(() => readConfig(config("a.json", { servers: [{ name: "go", comand: "x {port}" }] }))).toThrow(
      /servers\[0\]: unknown key "comand" \(known: name, command, readyLine, startTimeoutMs\)/,
    );
    expect(() => readConfig(config("b.json", { server: [] }))).toThrow(
      /unknown key "server" \(known: servers, clients\)/,
    );
    expect(() => readConfig(config("c.json", { servers: [{ name: "x", url: "tcp://a:1", command: "c" }] }))).toThrow(
      /servers\[0\]: has both "url" and "command"/,
    );
    const bad = readConfig(config("d.json", { servers: [{ name: "x", url: "http://a:1" }] }));
    expect(() => outsideParticipants(bad, TAKEN)).toThrow(UsageError);
    expect(() => outsideParticipants(bad, TAKEN)).toThrow(/"http:\/\/a:1" is not tcp:\/\/HOST:PORT/);
    const taken = readConfig(config("e.json", { clients: [{ name: "nc", command: "nc -N {host} {port}" }] }));
    expect(() => outsideParticipants(taken, TAKEN)).toThrow(/client nc: the matrix already has a participant named so/);
    expect(() => outsideParticipants(outsideOf({ "server-cmd": ["x=./serve"] }), TAKEN)).toThrow(
      /names neither \{port\} nor \{path\}/,
    );
  });

  test("URL forms: tcp over IPv4 and IPv6, tls, unix", () => {
    expect(endpointOf("tcp://127.0.0.1:7", "t")).toEqual({ transport: "tcp4", host: "127.0.0.1", port: 7 });
    expect(endpointOf("tcp://[::1]:7", "t")).toEqual({ transport: "tcp6", host: "::1", port: 7 });
    expect(endpointOf("tls://echo.example:7007", "t")).toEqual({ transport: "tls", host: "echo.example", port: 7007 });
    expect(endpointOf("unix:/run/echo.sock", "t")).toEqual({ transport: "unix", path: "/run/echo.sock" });
    expect(() => endpointOf("tcp://127.0.0.1:70000", "t")).toThrow(/port 70000/);
  });

  test("pnpm matrix --config with a bad key exits 2 naming it", async () => {
    const { code, stderr, result } = await matrixCli([
      "--config",
      config("f.json", { servers: [{ name: "go", url: "tcp://127.0.0.1:7", tlsca: "x" }] }),
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/servers\[0\]: unknown key "tlsca"/);
    expect(result).toBeUndefined();
  });
});
