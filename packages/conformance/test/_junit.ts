/** Reads a JUnit file back, for the tests of `--junit`. */

import { XMLParser, XMLValidator } from "fast-xml-parser";
import { expect } from "vitest";

interface Attributes {
  readonly [name: `@_${string}`]: string;
}
export type TestCase = Attributes & { failure?: Attributes & { "#text"?: string }; skipped?: Attributes };
type Suite = Attributes & { properties: { property: Attributes[] }; testcase: TestCase[] };

export function parseJunit(xml: string): Attributes & { testsuite: Suite[] } {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`not well-formed XML: ${JSON.stringify(valid.err)}`);
  const parsed = new XMLParser({
    ignoreAttributes: false,
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    // Decodes the numeric references (&#10; &#39;) besides the five named ones.
    htmlEntities: true,
    isArray: (name) => ["testsuite", "testcase", "property"].includes(name),
  }).parse(xml);
  return parsed.testsuites;
}

/** Every count attribute equals what its elements hold; returns the root's counts. */
export function checkCounts(root: Attributes & { testsuite: Suite[] }) {
  const totals = { tests: 0, failures: 0, skipped: 0 };
  for (const suite of root.testsuite) {
    const tests = suite.testcase.length;
    const failures = suite.testcase.filter((c) => c.failure !== undefined).length;
    const skipped = suite.testcase.filter((c) => c.skipped !== undefined).length;
    expect(
      {
        tests: suite["@_tests"],
        failures: suite["@_failures"],
        skipped: suite["@_skipped"],
        errors: suite["@_errors"],
      },
      suite["@_name"],
    ).toEqual({ tests: String(tests), failures: String(failures), skipped: String(skipped), errors: "0" });
    totals.tests += tests;
    totals.failures += failures;
    totals.skipped += skipped;
  }
  expect({ tests: root["@_tests"], failures: root["@_failures"], skipped: root["@_skipped"] }).toEqual({
    tests: String(totals.tests),
    failures: String(totals.failures),
    skipped: String(totals.skipped),
  });
  return totals;
}
