import assert from "node:assert/strict";
import { DENO, decoder, run } from "./_helpers.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const TSC = `${ROOT}node_modules/typescript/bin/tsc`;

const APP = `
import { connect, listen } from "@tcp-echo/deno";
const server = await listen({ port: 0 });
const client = await connect({ port: server.address.port });
const reply = new TextDecoder().decode(await client.echo("embedded"));
await client.closeWrite();
await client.closed;
await server.close();
console.log(JSON.stringify({ runtime: server.runtime, reply }));
`;

// The packed npm package, installed with npm into a directory outside the
// workspace, is what a Deno app outside this repository gets.
Deno.test("an app outside the workspace embeds a server and a client from the packed npm package", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tcp-echo-deno-embed-" });
  try {
    for (const pkg of ["core", "deno"]) {
      const cwd = `${ROOT}packages/${pkg}`;
      const built = await run("node", [TSC, "-p", "tsconfig.build.json"], { cwd, timeoutMs: 120_000 });
      assert.equal(built.code, 0, decoder.decode(built.stdout) + built.stderr);
      const packed = await run("npx", ["-y", "pnpm@10", "pack", "--pack-destination", dir], {
        cwd,
        timeoutMs: 120_000,
      });
      assert.equal(packed.code, 0, packed.stderr);
    }
    await Deno.writeTextFile(
      `${dir}/package.json`,
      JSON.stringify({
        private: true,
        type: "module",
        dependencies: {
          "@tcp-echo/core": "file:./tcp-echo-core-0.1.0.tgz",
          "@tcp-echo/deno": "file:./tcp-echo-deno-0.1.0.tgz",
        },
      }),
    );
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify({ nodeModulesDir: "manual", lock: false }));
    await Deno.writeTextFile(`${dir}/app.ts`, APP);
    const installed = await run("npm", ["install", "--offline", "--no-audit", "--no-fund"], {
      cwd: dir,
      timeoutMs: 120_000,
    });
    assert.equal(installed.code, 0, installed.stderr);

    // The published declarations never reference Deno's types: a Node
    // consumer type-checks without them.
    const dist = `${dir}/node_modules/@tcp-echo/deno/dist`;
    for await (const entry of Deno.readDir(dist)) {
      if (!entry.name.endsWith(".d.ts")) continue;
      const code = (await Deno.readTextFile(`${dist}/${entry.name}`)).replace(/\/\*[\s\S]*?\*\//g, "");
      assert.doesNotMatch(code, /Deno\.|reference types/, entry.name);
    }

    const app = await run(DENO, ["run", "--allow-net=127.0.0.1", "--no-prompt", "app.ts"], {
      cwd: dir,
      timeoutMs: 60_000,
    });
    assert.equal(app.code, 0, app.stderr);
    assert.deepEqual(JSON.parse(decoder.decode(app.stdout)), { runtime: "deno", reply: "embedded" });

    const cli = await run(
      DENO,
      ["run", "--allow-net=127.0.0.1", "--no-prompt", "npm:@tcp-echo/deno/cli", "send", "--port", "1"],
      {
        cwd: dir,
        timeoutMs: 60_000,
      },
    );
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /^tcp-echo-deno: connect ECONNREFUSED 127\.0\.0\.1:1: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
