/**
 * What a user gets from a checkout: `pnpm pack:all`, then each runtime package's tarball installed alone into an
 * app outside the workspace by npm, pnpm and bun, and a server and a client from it echoing on its runtime.
 *
 * Deno installs through one of those into node_modules and runs from there: `deno install` of a tarball is not in
 * Deno 2.9 (https://github.com/denoland/deno/pull/34386); given a `file:` tarball in package.json it links the
 * .tgz file itself as the package directory.
 */

import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Packed,
  packAll,
  pinned,
  ROOT,
  RUN_MARKER,
  RUNTIME_PACKAGES,
  type RuntimePackage,
  spawnManaged,
} from "@tcp-echo/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const BUN = pinned("bun").binary;
const DENO = pinned("deno").binary;

const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const work = mkdtempSync(join(tmpdir(), "tcp-echo-install-"));
let packed: Packed;

// Every byte value, and more than one read's worth, so a lost or reordered chunk shows.
const PAYLOAD = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) % 256));

// The test runs under `pnpm test`: its npm_* variables (npm_config_local_prefix is the workspace root) would send
// an installer in the app back to the workspace. The app gets the environment of a shell, not of a pnpm script.
const SCRIPT_ENV = Object.keys(process.env).filter((key) => /^(npm_|pnpm_|INIT_CWD$)/i.test(key));

interface Result {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

async function run(
  argv: readonly string[],
  cwd: string,
  options: { input?: Buffer; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Result> {
  const unset = SCRIPT_ENV.flatMap((key) => ["-u", key]);
  const child = spawnManaged("env", [...unset, ...argv], {
    label: argv.join(" "),
    cwd,
    timeoutMs: options.timeoutMs ?? 120_000,
    stdin: options.input ? "pipe" : "ignore",
    ...(options.env ? { env: options.env } : {}),
  });
  const chunks: Buffer[] = [];
  child.child.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
  child.child.stdin?.end(options.input);
  const exit = await child.exited;
  const stderr = exit.timedOut ? `timed out\n${child.stderrTail()}` : child.stderrTail();
  return { code: exit.code, stdout: Buffer.concat(chunks), stderr };
}

async function ok(argv: readonly string[], cwd: string, options?: Parameters<typeof run>[2]): Promise<Buffer> {
  const result = await run(argv, cwd, options);
  // tsc reports on stdout.
  expect(result.code, `${argv.join(" ")}\n${result.stderr}\n${result.stdout.toString("utf8", 0, 4096)}`).toBe(0);
  return result.stdout;
}

type Installer = "npm" | "pnpm" | "bun";
const INSTALL: Record<Installer, (tarball: string) => string[]> = {
  npm: (tarball) => ["npm", "install", "--offline", "--no-audit", "--no-fund", tarball],
  pnpm: (tarball) => ["npx", "-y", "pnpm@10", "add", "--offline", tarball],
  bun: (tarball) => [BUN, "add", tarball],
};

/** A fresh app that installed `@tcp-echo/<name>` from its tarball alone, as a user types it. */
async function installApp(name: RuntimePackage, installer: Installer): Promise<string> {
  const app = mkdtempSync(join(work, `${name}-${installer}-`));
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  await ok(INSTALL[installer](packed.tarballs[name]), app);
  return app;
}

// `await using` is not in Node 20, the oldest Node the package supports.
const APP = (name: RuntimePackage) => `import { connect, listen } from "@tcp-echo/${name}";
const payload = Uint8Array.from({ length: ${PAYLOAD.length} }, (_, i) => (i * 7) % 256);
const server = await listen({ port: 0 });
const client = await connect({ port: server.address.port });
const echoed = await client.echo(payload);
await client.closeWrite();
await client.closed;
await server.close();
const base64 = btoa(Array.from(echoed, (byte) => String.fromCharCode(byte)).join(""));
console.log(JSON.stringify({ runtime: server.runtime, bytesOut: server.stats.bytesOut, echoed: base64 }));
`;

const RUN_APP: Record<RuntimePackage, { file: string; argv: string[] }> = {
  node: { file: "app.mjs", argv: [process.execPath, "app.mjs"] },
  bun: { file: "app.ts", argv: [BUN, "app.ts"] },
  deno: { file: "app.ts", argv: [DENO, "run", "--allow-net=127.0.0.1", "--no-prompt", "app.ts"] },
};

/** The installed command line, as its user runs it: `send -` streams stdin through the server to stdout. */
function cliSend(name: RuntimePackage, port: number): string[] {
  const send = ["send", "--port", String(port), "-"];
  if (name === "deno") return [DENO, "run", "--allow-net=127.0.0.1", "--no-prompt", "npm:@tcp-echo/deno/cli", ...send];
  return [`node_modules/.bin/tcp-echo-${name}`, ...send];
}

let echoServer: Server;
let echoPort: number;
/** Where `#!/usr/bin/env bun` finds Bun: the package's binary is named bun.exe. */
const binDir = join(work, "bin");

beforeAll(async () => {
  packed = await packAll(join(work, "tarballs"));
  mkdirSync(binDir);
  symlinkSync(BUN, join(binDir, "bun"));
  echoServer = createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echoServer.listen(0, "127.0.0.1", resolve));
  echoPort = (echoServer.address() as { port: number }).port;
}, 900_000);

afterAll(async () => {
  await new Promise((resolve) => echoServer?.close(resolve));
  rmSync(work, { recursive: true, force: true });
});

const CASES = RUNTIME_PACKAGES.flatMap((name) =>
  (["npm", "pnpm", "bun"] as const).map((installer) => [installer, name] as const),
);

describe("a runtime package's tarball, installed alone outside the workspace", () => {
  test.each(CASES)(
    "%s installs @tcp-echo/%s: a server and a client from it echo every byte on its runtime, and its CLI runs",
    async (installer, name) => {
      const app = await installApp(name, installer);
      writeFileSync(join(app, RUN_APP[name].file), APP(name));
      const report = JSON.parse((await ok(RUN_APP[name].argv, app, { timeoutMs: 60_000 })).toString("utf8"));
      expect({ runtime: report.runtime, bytesOut: report.bytesOut }).toEqual({
        runtime: name,
        bytesOut: PAYLOAD.length,
      });
      expect(Buffer.from(report.echoed, "base64").equals(PAYLOAD), "echoed bytes differ from those sent").toBe(true);

      const env = { PATH: `${binDir}:${process.env.PATH}` };
      const echoed = await ok(cliSend(name, echoPort), app, { input: PAYLOAD, env, timeoutMs: 60_000 });
      expect(echoed.length).toBe(PAYLOAD.length);
      expect(echoed.equals(PAYLOAD), "the CLI's output differs from its input").toBe(true);
    },
  );

  test.each(RUNTIME_PACKAGES)(
    "the declarations of @tcp-echo/%s type-check with the web globals alone (no Node, Bun or Deno types)",
    async (name) => {
      const app = await installApp(name, "npm");
      writeFileSync(
        join(app, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            // AbortSignal and the web streams, which Node, Bun and Deno all have.
            lib: ["ES2023", "ESNext.Disposable", "DOM"],
            types: [],
            strict: true,
            skipLibCheck: false,
            noEmit: true,
          },
          files: ["consumer.ts"],
        }),
      );
      writeFileSync(
        join(app, "consumer.ts"),
        `import { type EchoServer, type EchoConnection, connect, isEchoError, listen } from "@tcp-echo/${name}";
export const start: () => Promise<EchoServer> = () => listen({ port: 0 });
export const dial: (port: number) => Promise<EchoConnection> = (port) => connect({ port });
export const check: (error: unknown) => boolean = isEchoError;
`,
      );
      await ok([process.execPath, TSC, "-p", "tsconfig.json"], app);
    },
  );
});

/** How a user runs the installed bin on each runtime: npx, bunx (`--bun`: plain bunx follows the `node` shebang), deno. */
const INVOCATIONS: Record<RuntimePackage, { argv: string[]; other: RuntimePackage }> = {
  node: { argv: ["npx", "--offline", "tcp-echo-conformance"], other: "bun" },
  bun: { argv: [BUN, "x", "--bun", "tcp-echo-conformance"], other: "deno" },
  // From the app's package.json and node_modules (nodeModulesDir "manual"): no registry, no JSR.
  deno: { argv: [DENO, "run", "-A", "npm:@tcp-echo/conformance"], other: "node" },
};

interface MatrixJson {
  servers: { name: string; runtime: string; version?: string }[];
  clients: { name: string; missing?: string }[];
  cells: { server: string; client: string; status: string }[];
}

describe("the conformance tarball, installed alone outside the workspace", () => {
  let app: string;
  beforeAll(async () => {
    app = mkdtempSync(join(work, "conformance-npm-"));
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    // No registry dependency: the workspace's packages are inside the tarball, compiled to JavaScript.
    await ok(["npm", "install", "--offline", "--no-audit", "--no-fund", packed.tarballs.conformance], app);
  }, 120_000);

  test("tcp-echo-conformance --help prints the matrix's options", async () => {
    expect((await ok(["node_modules/.bin/tcp-echo-conformance", "--help"], app)).toString("utf8")).toMatch(
      /--junit FILE/,
    );
  });

  test.each(RUNTIME_PACKAGES)(
    "run on %s: its own row passes, the negative control runs on it and is caught, another runtime's column is not available",
    async (self) => {
      const { argv, other } = INVOCATIONS[self];
      const quick = [
        "--server",
        `${self},control`,
        "--client",
        `${self},${other}`,
        "--profile",
        "quick",
        "--json",
        "-",
      ];
      // Without this test's run marker: the matrix kills every process carrying its marker when it ends, and the
      // `node` on PATH here is the workspace's shim, the parent of the Node that runs the matrix.
      const alone = ["env", "-u", RUN_MARKER, ...argv, ...quick];
      const result = JSON.parse((await ok(alone, app, { timeoutMs: 90_000 })).toString("utf8")) as MatrixJson;
      expect(result.cells.map((cell) => `${cell.server} x ${cell.client}: ${cell.status}`).sort()).toEqual(
        [
          `${self} x ${self}: pass`,
          `${self} x ${other}: not-available`,
          `control x ${self}: expected-fail`,
          `control x ${other}: not-available`,
        ].sort(),
      );
      // No runtime inside the tarball: the one running the bin is its row, column and the control's, with its version.
      const version = expect.stringMatching(/^\d+\.\d+\.\d+$/);
      expect(result.servers).toMatchObject([
        { name: self, runtime: self, version },
        { name: "control", runtime: self, version },
      ]);
      expect(result.clients.find((client) => client.name === other)?.missing).toMatch(
        new RegExp(`^not available: no ${other} inside the installed tcp-echo-conformance`),
      );
    },
  );
});
