import { pinned, type Runtime } from "@tcp-echo/testkit";
import { expect, test } from "vitest";
import { participants } from "../src/participants.ts";
import { knownGap } from "../src/plan.ts";
import { planMatrix } from "../src/planning.ts";

// Planning never starts a process: versions that are not on this machine are enough.
const version = (runtime: Runtime["runtime"], exact: string): Runtime => ({
  runtime,
  version: exact,
  binary: `/nonexistent/${runtime}-${exact}`,
  pinned: false,
});
const runtimes = [version("node", "22.23.5"), pinned("node"), version("bun", "1.3.14")];

test("--runtimes: every version is a row and a column, named package@version or node@runtime-version", () => {
  const { servers, clients } = participants(runtimes);
  const ours = (list: readonly { name: string; kind: string }[]) =>
    list.filter((p) => p.kind === "ours").map((p) => p.name);
  const expected = [
    "node@22.23.5",
    `node@${pinned("node").version}`,
    "bun@1.3.14",
    `deno@${pinned("deno").version}`,
    "node@bun-1.3.14",
    `node@deno-${pinned("deno").version}`,
  ];
  expect(ours(servers)).toEqual(expected);
  expect(ours(clients)).toEqual(expected);
  const bun = servers.find((p) => p.name === "node@bun-1.3.14")!;
  expect([bun.family, bun.runtime, bun.installedVersion?.()]).toEqual(["node@bun", "bun", "1.3.14"]);
});

test("--server names a family (every version of it) or one version", () => {
  const rows = (server: string) =>
    planMatrix({ runtimes, servers: [server], clients: ["bun"] }).map((row) => row.server.name);
  expect(rows("node")).toEqual(["node@22.23.5", `node@${pinned("node").version}`]);
  expect(rows("node@22.23.5")).toEqual(["node@22.23.5"]);
  expect(rows("node@bun")).toEqual(["node@bun-1.3.14"]);
  expect(() => rows("node@20.0.0")).toThrow(/unknown server "node@20.0.0"/);
});

test("a known gap limited to a version holds on that version only", () => {
  expect(knownGap("node@24.21.0", "node@bun-1.3.14", "half-close")?.why).toMatch(/Bun 1.3/);
  expect(knownGap("node@24.21.0", "node@bun-1.4.5", "half-close")).toBeUndefined();
  expect(knownGap("node", "node@bun", "half-close")).toBeUndefined();
  // Gaps without a version hold on every version of the family.
  expect(knownGap("node@bun-1.4.5", "harness", "emfile")).toBe(knownGap("node@bun", "harness", "emfile"));
  expect(knownGap("node@bun-1.4.5", "harness", "emfile")).toBeDefined();
});
