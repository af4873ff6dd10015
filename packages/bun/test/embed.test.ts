/**
 * Embedding: an app outside the workspace installs the packed packages (what
 * npm would publish: dist/, with `workspace:*` rewritten to the version) and
 * runs a server and a client from them on Bun.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN, killChildren, spawnChild } from "./helpers.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const app = mkdtempSync(join(tmpdir(), "tcp-echo-embed-"));

afterAll(() => {
  killChildren();
  rmSync(app, { recursive: true, force: true });
});

/** Runs a command to completion under a hard timeout; throws with its output on a non-zero exit. */
async function sh(cmd: string[], cwd: string, timeoutMs = 120_000): Promise<string> {
  const child = spawnChild(cmd, { cwd, timeoutMs });
  child.stdin.end();
  const [code, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}\n${stdout}\n${stderr}`);
  return stdout;
}

const APP = `import { connect, listen } from "@tcp-echo/bun";
const server = await listen({ port: 0 });
const client = await connect({ port: server.address.port });
const reply = new TextDecoder().decode(await client.echo("Hello, server!"));
await client.closeWrite();
await client.closed;
await server.close();
console.log(JSON.stringify({ runtime: server.runtime, reply, bytesOut: server.stats.bytesOut }));
`;

describe("embedding: the packed package in an app outside the workspace", () => {
  test("pnpm pack, npm install from the tarballs, and a server and client run on Bun", async () => {
    for (const name of ["core", "bun"]) {
      const dir = join(ROOT, "packages", name);
      await sh([BUN, TSC, "-p", "tsconfig.build.json"], dir);
      await sh(["npx", "-y", "pnpm@10", "pack", "--pack-destination", app], dir);
    }
    const tarballs = readdirSync(app).filter((file) => file.endsWith(".tgz"));
    const tarball = (name: string) => `file:./${tarballs.find((file) => file.startsWith(`tcp-echo-${name}-`))}`;
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({
        name: "embed-app",
        private: true,
        type: "module",
        dependencies: { "@tcp-echo/core": tarball("core"), "@tcp-echo/bun": tarball("bun") },
      }),
    );
    await sh(["npm", "install", "--offline", "--no-audit", "--no-fund"], app);
    writeFileSync(join(app, "app.ts"), APP);
    const output = await sh([BUN, "app.ts"], app, 30_000);
    expect(JSON.parse(output)).toEqual({ runtime: "bun", reply: "Hello, server!", bytesOut: 14 });

    // A consumer without Bun's types type-checks the published declarations cleanly.
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
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
      `import { type EchoServer, listen } from "@tcp-echo/bun";\nexport const start: () => Promise<EchoServer> = () => listen({ port: 0 });\n`,
    );
    await sh([BUN, TSC, "-p", "tsconfig.json"], app);
  }, 300_000);
});
