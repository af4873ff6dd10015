/** `--junit`: the JUnit XML CI systems render, checked by parsing it back. */

import { describe, expect, test } from "vitest";
import { renderJunit } from "../src/junit.ts";
import { checkCounts, parseJunit } from "./_junit.ts";
import { FAILURE_SHOWN, FIXTURE, HOSTILE, NOT_APPLICABLE } from "./_report-fixture.ts";

describe("--junit", () => {
  const root = parseJunit(renderJunit(FIXTURE));
  const suite = (name: string) => root.testsuite.find((s) => s["@_name"] === name);
  const testcase = (suiteName: string, name: string) => suite(suiteName)?.testcase.find((c) => c["@_name"] === name);

  test("one testsuite per cell inside testsuites, named as the terminal names the cell", () => {
    expect(root.testsuite.map((s) => s["@_name"])).toEqual(
      FIXTURE.cells.map((cell) => `${cell.server} server x ${cell.client} client over ${cell.transport}`),
    );
  });

  test("the count attributes of every testsuite and of testsuites equal their testcases, failures and skips", () => {
    // 3 + 2 + 1 + 2 + (4 + 1) + (3 + 1) + 1 testcases; node x bun's half-close and the control not caught by bun fail;
    // the known gap, the n/a case, nc not installed and the control's case that did not run are skipped.
    expect(checkCounts(root)).toEqual({ tests: 18, failures: 2, skipped: 4 });
  });

  test("a failing case has <failure message> with its whole message, markup and control characters escaped", () => {
    const failure = testcase("node server x bun client over tcp4", "half-close")?.failure;
    expect(failure?.["@_message"]).toBe(FAILURE_SHOWN);
    expect(failure?.["#text"]).toBe(FAILURE_SHOWN);
    expect(testcase("node server x bun client over tcp4", "tutorial")?.failure).toBeUndefined();
  });

  test("an n/a case, a known gap and a cell that could not run are <skipped message>, never a pass", () => {
    expect(testcase(`${HOSTILE} server x node client over tcp4`, "backpressure")?.skipped?.["@_message"]).toBe(
      `n/a: ${NOT_APPLICABLE}`,
    );
    expect(testcase("node server x node client over tcp4", "half-close")?.skipped?.["@_message"]).toMatch(
      /^known gap: bun#1234 \(failed as recorded: EPIPE after 3 bytes\)$/,
    );
    expect(testcase("node server x nc client over tcp4", "cell")?.skipped?.["@_message"]).toBe(
      "not available: not installed: apt-get install netcat-openbsd",
    );
  });

  test("the negative control: a catch is no failure, a control nothing caught is one", () => {
    expect(testcase("control server x node client over tcp4", "payloads")?.failure).toBeUndefined();
    expect(testcase("control server x node client over tcp4", "negative control caught")?.failure).toBeUndefined();
    expect(testcase("control server x node client over tcp4", "half-close")?.skipped?.["@_message"]).toMatch(
      /^did not run against the negative control: the node driver ended/,
    );
    expect(
      testcase("control server x bun client over tcp4", "negative control caught")?.failure?.["@_message"],
    ).toMatch(/no case caught the broken server/);
  });

  test("each testsuite names its participants' versions and the terminal's cell text", () => {
    const properties = Object.fromEntries(
      suite("node server x bun client over tcp4")!.properties.property.map((p) => [p["@_name"], p["@_value"]]),
    );
    expect(properties).toMatchObject({
      "server version": "node 24.21.0",
      "client version": "bun 1.4.5",
      cell: "✗ 1/2 half-close",
    });
  });
});
