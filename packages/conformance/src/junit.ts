/**
 * `--junit FILE`: the run as JUnit XML, the format CI systems render. One `<testsuite>` per cell, one `<testcase>`
 * per case; a failing case carries `<failure message>`, an n/a case, a known gap and a cell that could not run carry
 * `<skipped message>`, never a pass. A negative-control cell has one more testcase, "negative control caught", which
 * fails when no case caught the broken server.
 */

import { escapeMarkup } from "./markup.ts";
import { classifyCase, controlServers } from "./outcomes.ts";
import { type CaseResult, type CellResult, isCatch, type MatrixResult, type Participant } from "./planning.ts";
import { cellText } from "./report.ts";

interface TestCase {
  readonly name: string;
  readonly seconds: number;
  readonly failure?: string;
  readonly skipped?: string;
  readonly output?: string;
}

const attribute = (text: string) => escapeMarkup(text, true);
const seconds = (ms: number) => (ms / 1000).toFixed(3);

/** The JUnit name of a cell, as the terminal names it. */
export function suiteName(cell: CellResult): string {
  return `${cell.server} server x ${cell.client} client over ${cell.transport}`;
}

function caseOf(result: CaseResult, onControl: boolean): TestCase {
  const { outcome, message } = classifyCase(result, onControl);
  const checks = result.checks.join("\n");
  const base = { name: result.case, seconds: result.ms / 1000 };
  switch (outcome) {
    case "fail":
      return { ...base, failure: message ?? "failed", ...(checks ? { output: checks } : {}) };
    case "known-gap":
      return { ...base, skipped: `known gap: ${message}` };
    case "not-applicable":
      return { ...base, skipped: `n/a: ${message}` };
    case "not-run":
      return { ...base, skipped: `did not run against the negative control: ${message}` };
    case "caught":
      return { ...base, output: `caught the broken server: ${message ?? ""}${checks ? `\n${checks}` : ""}` };
    case "not-caught":
      return { ...base, output: `did not catch the broken server (another case of the cell must)\n${checks}` };
    case "pass":
      return { ...base, ...(checks ? { output: checks } : {}) };
  }
}

function casesOf(cell: CellResult, onControl: boolean): TestCase[] {
  if (cell.cases.length === 0) {
    return [{ name: "cell", seconds: 0, skipped: `not available: ${cell.note ?? cell.status}` }];
  }
  const cases = cell.cases.map((result) => caseOf(result, onControl));
  if (!onControl) return cases;
  const catches = cell.cases.filter((r) => r.case !== "client-detection" && isCatch(r)).map((r) => r.case);
  const caught: TestCase =
    cell.status === "not-available"
      ? { name: "negative control caught", seconds: 0, skipped: cell.note ?? "not available" }
      : catches.length > 0
        ? { name: "negative control caught", seconds: 0, output: `caught by ${catches.join(", ")}` }
        : {
            name: "negative control caught",
            seconds: 0,
            failure: "no case caught the broken server: the suite would pass a server that breaks the echo",
          };
  return [...cases, caught];
}

function renderCase(test: TestCase, classname: string): string {
  const open = `    <testcase name="${attribute(test.name)}" classname="${attribute(classname)}" time="${test.seconds.toFixed(3)}"`;
  const body = [
    test.failure !== undefined
      ? `      <failure message="${attribute(test.failure)}" type="failure">${escapeMarkup(test.failure)}</failure>`
      : undefined,
    test.skipped !== undefined ? `      <skipped message="${attribute(test.skipped)}"/>` : undefined,
    test.output ? `      <system-out>${escapeMarkup(test.output)}</system-out>` : undefined,
  ].filter((line) => line !== undefined);
  return body.length === 0 ? `${open}/>` : `${open}>\n${body.join("\n")}\n    </testcase>`;
}

function version(participant: Participant | undefined): string {
  if (!participant) return "";
  return [participant.runtime, participant.version].filter(Boolean).join(" ");
}

/** The whole run as one JUnit XML document. */
export function renderJunit(result: MatrixResult): string {
  const control = controlServers(result);
  // JUnit's timestamp has no zone and no fraction; the run's is UTC.
  const timestamp = result.startedAt.slice(0, 19);
  const totals = { tests: 0, failures: 0, skipped: 0 };
  const suites = result.cells.map((cell) => {
    const tests = casesOf(cell, control.has(cell.server));
    const failures = tests.filter((test) => test.failure !== undefined).length;
    const skipped = tests.filter((test) => test.skipped !== undefined).length;
    totals.tests += tests.length;
    totals.failures += failures;
    totals.skipped += skipped;
    const name = suiteName(cell);
    const properties = [
      ["transport", cell.transport],
      ["server", cell.server],
      ["server version", version(result.servers.find((p) => p.name === cell.server))],
      ["client", cell.client],
      ["client version", version(result.clients.find((p) => p.name === cell.client))],
      ["status", cell.status],
      ["cell", cellText(cell)],
    ]
      .filter(([, value]) => value)
      .map(([key, value]) => `      <property name="${attribute(key!)}" value="${attribute(value!)}"/>`);
    return [
      `  <testsuite name="${attribute(name)}" tests="${tests.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds(cell.ms)}" timestamp="${timestamp}">`,
      `    <properties>\n${properties.join("\n")}\n    </properties>`,
      ...tests.map((test) => renderCase(test, name)),
      "  </testsuite>",
    ].join("\n");
  });
  const title =
    result.mode === "faults"
      ? "tcp-echo fault matrix"
      : `tcp-echo conformance matrix (${result.profile}${result.via ? `, via ${result.via}` : ""})`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${attribute(title)}" tests="${totals.tests}" failures="${totals.failures}" errors="0" skipped="${totals.skipped}" time="${seconds(result.durationMs)}" timestamp="${timestamp}">`,
    ...suites,
    "</testsuites>",
    "",
  ].join("\n");
}
