/**
 * What each case of a cell means for the run, in one place for the HTML page and the JUnit file: on the negative
 * control a failure is the point (a catch), a known gap that failed as recorded is not a pass, and a case that did
 * not check anything is never called passing.
 */

import { type CaseResult, type CellResult, casePassed, isCatch, type MatrixResult } from "./planning.ts";

/**
 * - `pass`: every check passed.
 * - `fail`: the case fails the cell (`message` says why).
 * - `known-gap`: failed exactly as a recorded runtime bug (`KNOWN_GAPS`); the cell still passes, the case did not.
 * - `not-applicable`: the case has no form that can run against this participant (`message`: why).
 * - `caught`: on the negative control, failed its own check: the suite caught the broken server.
 * - `not-caught`: on the negative control, passed: another case of the cell must catch it.
 * - `not-run`: on the negative control, an error kept it from checking anything.
 */
export type CaseOutcome = "pass" | "fail" | "known-gap" | "not-applicable" | "caught" | "not-caught" | "not-run";

export interface ClassifiedCase {
  readonly outcome: CaseOutcome;
  /** What the reader needs besides the checks: the failure, the gap's why, the reason it is n/a. */
  readonly message?: string;
}

/** The servers the result names as the negative control. */
export function controlServers(result: MatrixResult): ReadonlySet<string> {
  return new Set(result.servers.filter((server) => server.kind === "control").map((server) => server.name));
}

export function classifyCase(result: CaseResult, onControl: boolean): ClassifiedCase {
  if (result.notApplicable !== undefined) return { outcome: "not-applicable", message: result.notApplicable };
  if (onControl && result.case !== "client-detection" && !result.knownGap) {
    if (isCatch(result)) return { outcome: "caught", ...(result.failure ? { message: result.failure } : {}) };
    if (result.ok) return { outcome: "not-caught" };
    return { outcome: "not-run", message: result.failure ?? "failed before checking the server" };
  }
  if (!casePassed(result)) {
    return { outcome: "fail", message: result.gapBroken ?? result.failure ?? "failed" };
  }
  if (result.knownGap && !result.ok) {
    return { outcome: "known-gap", message: `${result.knownGap} (failed as recorded: ${result.failure ?? "failed"})` };
  }
  return { outcome: "pass" };
}

/** The words for a cell's status, for a reader who cannot tell the colours apart. */
export const STATUS_WORDS: Record<CellResult["status"], string> = {
  pass: "passed",
  fail: "FAILED",
  "expected-fail": "negative control caught",
  "unexpected-pass": "FAILED: negative control not caught",
  "not-available": "not available",
};

/** The symbol and the word for a case's outcome. */
export const OUTCOME_WORDS: Record<CaseOutcome, string> = {
  pass: "✓ pass",
  fail: "✗ FAIL",
  "known-gap": "~ known gap",
  "not-applicable": "– n/a",
  caught: "✓ caught",
  "not-caught": "· did not catch",
  "not-run": "– did not run",
};
