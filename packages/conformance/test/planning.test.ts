/** Planning is pure: which cases run in which cell, the sizes and limits, the result predicates. No socket opens here. */

import { expect, test } from "vitest";
import { outsideOf, outsideParticipants } from "../src/external.ts";
import { CLIENTS, SERVERS } from "../src/participants.ts";
import { PROFILES } from "../src/plan.ts";
import {
  budget,
  type CaseResult,
  type CellResult,
  casePassed,
  cellKey,
  clientsOf,
  isCatch,
  paramsFor,
  planMatrix,
  runPassed,
  transportsOf,
} from "../src/planning.ts";

const casesOf = (server: string, client: string, transport: "tcp4" | "unix" = "tcp4") =>
  planMatrix({ servers: [server], clients: [client], transports: [transport] })[0]?.cells[0]?.cases.map(
    (spec) => spec.name,
  );

test("a peer client plays only the pipe cases; our client adds the API cases", () => {
  expect(casesOf("socat", "nc")).toEqual(["tutorial", "payloads", "half-close", "zero-byte"]);
  expect(casesOf("node", "bun")).toEqual([
    "tutorial",
    "payloads",
    "pipelining",
    "half-close",
    "zero-byte",
    "many-connections",
  ]);
});

test("the harness column runs the server-only cases, and the hardening ones on our servers only", () => {
  expect(casesOf("socat", "harness")).toEqual(["backpressure", "resets", "reset-before-accept", "slow-peer"]);
  expect(casesOf("node", "harness")).toContain("drain");
  // A Unix socket has no RST to send.
  expect(casesOf("node", "harness", "unix")).not.toContain("resets");
});

test("against a peer server only the clients it names run many-connections", () => {
  expect(casesOf("socat", "node")).toContain("many-connections");
  expect(casesOf("socat", "bun")).not.toContain("many-connections");
});

test("the negative control row runs client-detection for our clients, and a pair with no case is not planned", () => {
  expect(casesOf("control", "node")).toContain("client-detection");
  expect(casesOf("control", "nc")).not.toContain("client-detection");
  expect(planMatrix({ servers: ["client-only"], clients: ["nc"] })).toEqual([]);
});

test("bad names and --faults over a non-TCP transport are refused before anything runs", () => {
  expect(() => planMatrix({ servers: ["go"] })).toThrow(/unknown server "go"; known: node,/);
  expect(() => planMatrix({ cases: ["half-closed"] })).toThrow(/unknown case "half-closed"/);
  expect(() => planMatrix({ faults: true, transports: ["tls"] })).toThrow(/tcp4 only/);
});

test("the 256 MiB payload runs on the full profile's diagonal only", () => {
  const [node, bun] = [SERVERS[0]!, SERVERS[1]!];
  const nodeClient = CLIENTS.find((client) => client.name === "node")!;
  const full = PROFILES.full;
  expect(paramsFor(full, node, nodeClient, 9).payloads).toContain(full.bigPayload);
  expect(paramsFor(full, bun, nodeClient, 9).payloads).not.toContain(full.bigPayload);
  expect(paramsFor(PROFILES.quick, node, nodeClient, 9).payloads).not.toContain(full.bigPayload);
  expect(paramsFor(full, node, nodeClient, 9).refusedPort).toBe(9);
});

test("a driver case's hard limit grows with the bytes it moves", () => {
  const params = paramsFor(PROFILES.quick, SERVERS[0]!, CLIENTS[0]!, 9);
  expect(budget("payloads", { ...params, payloads: [256 * 1024 * 1024] })).toBeGreaterThan(budget("payloads", params));
  expect(budget("tutorial", params)).toBe(25_000);
});

test("columns keep the table's order, whatever order the rows list them in", () => {
  const rows = planMatrix({ servers: ["socat", "node"], clients: ["harness", "nc", "deno", "node"] });
  expect(clientsOf(rows).map((client) => client.name)).toEqual(["node", "deno", "nc", "harness"]);
  expect(cellKey("tls", "node", "nc")).not.toBe(cellKey("tcp4", "node", "nc"));
});

test("a case passes as is, or as its known gap records; a catch is a verdict, not an error", () => {
  const failed: CaseResult = { case: "emfile", ok: false, ms: 1, checks: [], failure: "x" };
  expect(casePassed({ ...failed, ok: true })).toBe(true);
  expect(casePassed(failed)).toBe(false);
  expect(casePassed({ ...failed, knownGap: "why" })).toBe(true);
  expect(casePassed({ ...failed, knownGap: "why", gapBroken: "now passes" })).toBe(false);
  expect(isCatch({ ...failed, verdict: true })).toBe(true);
  expect(isCatch(failed)).toBe(false);
});

test("a server from outside brings the control row and the harness column; what needs its process is n/a with the reason", () => {
  const outside = outsideParticipants(outsideOf({ "server-at": ["ext=tcp://127.0.0.1:7"] }), []);
  const rows = planMatrix({ outside, clients: ["node"] });
  expect(rows.map((row) => row.server.name)).toEqual(["ext", "control"]);
  const harness = rows[0]!.cells.find((cell) => cell.client.name === "harness")!;
  expect(harness.cases.map((spec) => spec.name)).toEqual(["backpressure", "resets", "slow-peer"]);
  expect(harness.notApplicable).toEqual([
    { case: "reset-before-accept", reason: expect.stringMatching(/needs the server's process .* reached by URL/) },
  ]);
  // The control has a process: nothing is n/a there.
  expect(rows[1]!.cells.flatMap((cell) => cell.notApplicable)).toEqual([]);
  expect(
    transportsOf({ outside: outsideParticipants(outsideOf({ "server-at": ["u=unix:/run/e.sock"] }), []) }),
  ).toEqual(["unix"]);
  expect(() => planMatrix({ outside, transports: ["unix"] })).toThrow(/no case of this run applies to server ext/);
});

test("a run passes only when a cell ran and none failed; with requireAll, none may be unavailable", () => {
  const cells = (...statuses: CellResult["status"][]) => statuses.map((status) => ({ status }));
  expect(runPassed(cells("pass", "expected-fail", "not-available"), false)).toBe(true);
  expect(runPassed(cells("pass", "not-available"), true)).toBe(false);
  expect(runPassed(cells("pass", "fail"), false)).toBe(false);
  expect(runPassed(cells("unexpected-pass"), false)).toBe(false);
  expect(runPassed(cells("not-available", "not-available"), false)).toBe(false);
  expect(runPassed(cells(), false)).toBe(false);
});

test("--via: the cases a balancer in front cannot carry are n/a with the reason, and the client-only row is left out", () => {
  const rows = planMatrix({ servers: ["node"], clients: ["harness", "node"], via: "haproxy" });
  expect(rows.map((row) => row.server.name)).toEqual(["node"]);
  const harness = rows[0]?.cells.find((cell) => cell.client.name === "harness");
  expect(harness?.notApplicable.map((entry) => entry.case)).toEqual(["reset-before-accept", "drain"]);
  expect(harness?.notApplicable[0]?.reason).toMatch(/ends at haproxy/);
  expect(harness?.cases.map((spec) => spec.name)).toEqual([
    "backpressure",
    "resets",
    "slow-peer",
    "max-connections",
    "max-per-address",
    "idle-timeout",
    "emfile",
  ]);
  expect(() => planMatrix({ servers: ["client-only"], via: "nginx" })).toThrow(/client-only row has no server/);
  expect(planMatrix({ via: "haproxy" }).some((row) => row.server.kind === "client-only")).toBe(false);
  const direct = planMatrix({ servers: ["node"], clients: ["harness"] })[0]?.cells[0];
  expect(direct?.notApplicable).toEqual([]);
  expect(direct?.cases.map((spec) => spec.name)).toContain("drain");
});
