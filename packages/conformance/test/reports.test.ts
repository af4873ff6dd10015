/**
 * The report flags on a real run (the node server and the negative control, the node client, quick profile: a
 * few seconds): `--json -` is pure JSON on stdout with the table on stderr, and the `--html` and `--junit` files
 * of the same run agree with it. Bad output paths fail before any server starts.
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { checkOutputs } from "../src/outputs.ts";
import type { MatrixResult } from "../src/planning.ts";
import { cellText } from "../src/report.ts";
import { checkCounts, parseJunit } from "./_junit.ts";
import { matrixCli } from "./_matrix-cli.ts";

const work = mkdtempSync(join(tmpdir(), "tcp-echo-reports-"));
const matrix = (args: readonly string[]) => matrixCli(args, { cwd: work });

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the report flags on a real run", () => {
  const run = matrix([
    ...["--server", "node,control", "--client", "node", "--profile", "quick"],
    ...["--json", "-", "--html", "report.html", "--junit", "report.xml"],
  ]);

  test("--json - writes the result as JSON alone on stdout, and the table on stderr", async () => {
    const { code, stdout, stderr } = await run;
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as MatrixResult;
    expect(result.cells.map((cell) => `${cell.server} x ${cell.client}: ${cell.status}`).sort()).toEqual([
      "control x node: expected-fail",
      "node x node: pass",
    ]);
    expect(stderr).toMatch(/server \\ client/);
    expect(stderr).toMatch(/OK: every expected cell passed/);
  });

  test("the --junit file of the same run has a testsuite per cell and no failure", async () => {
    const result = JSON.parse((await run).stdout) as MatrixResult;
    const root = parseJunit(readFileSync(join(work, "report.xml"), "utf8"));
    expect(root.testsuite).toHaveLength(result.cells.length);
    const { failures } = checkCounts(root);
    expect(failures).toBe(0);
  });

  test("the --html file of the same run shows each cell's terminal text and the command line", async () => {
    const result = JSON.parse((await run).stdout) as MatrixResult;
    const html = readFileSync(join(work, "report.html"), "utf8");
    for (const cell of result.cells) expect(html).toContain(`>${cellText(cell)}<span class="word">`);
    expect(html).toContain("--server node,control --client node --profile quick --json - --html report.html");
  });
});

test("an output it cannot write is exit 2 before the run starts", async () => {
  const { code, stdout, stderr } = await matrix(["--server", "node", "--client", "node", "--html", "-"]);
  expect(code).toBe(2);
  expect(stderr).toContain("--html needs a FILE (only --json writes to stdout with -)");
  expect(stdout).not.toMatch(/Running/);
});

test.each([
  [
    "a directory that does not exist",
    { junit: "/nonexistent-directory/report.xml" },
    "cannot write in /nonexistent-directory",
  ],
  ["two flags naming one file", { json: "same.txt", html: "same.txt" }, "must name different files"],
  ["a directory where the file goes", { html: work }, `--html ${work} is a directory`],
])("the outputs are refused for %s", (_, outputs, message) => {
  expect(checkOutputs(outputs)).toContain(message);
});

test("--json - with --html and --junit files in a writable directory is accepted", () => {
  expect(checkOutputs({ json: "-", html: join(work, "report.html"), junit: join(work, "report.xml") })).toBeUndefined();
});
