/**
 * Turns a running matrix into vitest tests: each cell x case is a named test.
 * The matrix runs on its own (two rows at a time, as `pnpm matrix` runs it) and
 * each test waits for its cell and checks its own case: a cell's cases run
 * together (one driver process per cell), so the tests read results, they do not
 * rerun them.
 */

import { killAllAndWait } from "@tcp-echo/testkit";
import { afterAll, describe, expect, test } from "vitest";
import type { RunningMatrix } from "../src/matrix.ts";
import { gapBroken, type KnownGap, knownGap } from "../src/plan.ts";
import { type CaseResult, isCatch } from "../src/planning.ts";

export function cellTests(matrix: RunningMatrix, prefix = ""): void {
  // Settled for the runner's sake; each test reports its own cell.
  matrix.result.catch(() => {});

  afterAll(async () => {
    await matrix.result;
    await killAllAndWait();
  });

  for (const row of matrix.rows) {
    const { server } = row;
    const over = matrix.rows.some((other) => other.transport !== "tcp4") ? ` over ${row.transport}` : "";
    describe(`${prefix}${server.name} server${over}`, () => {
      for (const planned of row.cells) {
        const { client } = planned;
        const name = `${server.name} server x ${client.name} client`;
        const missing = server.missing() ?? client.missing();
        if (missing) {
          test.skip(`${name}: ${missing}`, () => {});
          continue;
        }
        const cell = () => matrix.cell(server.name, client.name, row.transport);

        if (server.kind === "control") {
          test(`${name}: the broken server fails at least one case (expected fail)`, async () => {
            const { cases } = await cell();
            // A catch ran against the running control and failed its own check; a
            // control that did not start or died, or a driver that hung, catches nothing.
            const caughtBy = cases.filter((r) => isCatch(r) && r.case !== "client-detection");
            expect(
              caughtBy.map((r) => r.case),
              `no case caught the negative control; failures: ${cases.map((r) => `${r.case}: ${r.failure ?? "passed"}`).join(" | ")}`,
            ).not.toEqual([]);
          });
          const detectionGap = knownGap(server.name, client.name, "client-detection", row.transport);
          const detects = planned.cases.some((spec) => spec.name === "client-detection");
          if (detects && detectionGap) {
            test(`${name}: client-detection: known gap: ${detectionGap.why}`, async () => {
              expectGap(
                detectionGap,
                (await cell()).cases.find((r) => r.case === "client-detection"),
              );
            });
          } else if (detects) {
            test(`${name}: client-detection: the client reports the short echo with a clear error`, async () => {
              const result = (await cell()).cases.find((r) => r.case === "client-detection");
              expect(result?.failure).toBeUndefined();
              expect(result?.ok).toBe(true);
            });
          }
          continue;
        }

        for (const spec of planned.cases) {
          const gap = knownGap(server.name, client.name, spec.name, row.transport);
          if (gap) {
            test(`${name}: ${spec.name}: known gap: ${gap.why}`, async () => {
              expectGap(
                gap,
                (await cell()).cases.find((r) => r.case === spec.name),
              );
            });
            continue;
          }
          test(`${name}: ${spec.name}: ${spec.proves}`, async () => {
            const result = (await cell()).cases.find((r) => r.case === spec.name);
            expect(result?.failure).toBeUndefined();
            expect(result?.ok).toBe(true);
          });
        }
      }
    });
  }
}

/** A known gap still fails as recorded: a pass means the bug is gone, another failure is a real one. */
function expectGap(gap: KnownGap, result: CaseResult | undefined): void {
  expect(result, "the case did not run").toBeDefined();
  if (result) expect(gapBroken(gap, result), result.ok ? "passed" : `failed: ${result.failure}`).toBeUndefined();
}
