/**
 * Turns a running matrix into vitest tests: each cell x case is a named test.
 * The matrix runs on its own (two rows at a time, as `pnpm matrix` runs it) and
 * each test waits for its cell and checks its own case: a cell's cases run
 * together (one driver process per cell), so the tests read results, they do not
 * rerun them.
 */

import { afterAll, describe, expect, test } from "vitest";
import type { RunningMatrix } from "../src/matrix.ts";
import { knownGap } from "../src/plan.ts";
import { killAllAndWait } from "../src/processes.ts";

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
            const caughtBy = (await cell()).cases.filter((r) => !r.ok && r.case !== "client-detection");
            expect(
              caughtBy.map((r) => r.case),
              "no case caught the negative control",
            ).not.toEqual([]);
          });
          const detectionGap = knownGap(server.name, client.name, "client-detection", row.transport);
          const detects = planned.cases.some((spec) => spec.name === "client-detection");
          if (detects && detectionGap) {
            test(`${name}: client-detection: known gap: ${detectionGap}`, async () => {
              expect((await cell()).cases.find((r) => r.case === "client-detection")).toBeDefined();
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
            // Runs, and its outcome is in the matrix's report; a runtime bug cannot fail our suite.
            test(`${name}: ${spec.name}: known gap: ${gap}`, async () => {
              expect((await cell()).cases.find((r) => r.case === spec.name)).toBeDefined();
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
