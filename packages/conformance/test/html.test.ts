/**
 * `--html`: the page opened in a real browser (Debian's chromium, headless, driven by playwright-core): its grid
 * shows the terminal's cell texts, a click on a failing cell shows its cases and failure message, the filters hide
 * rows, nothing the page holds runs as markup, the screenshot is not blank, and the page asks the network for nothing.
 */

import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { renderHtml } from "../src/html.ts";
import type { MatrixResult } from "../src/planning.ts";
import { cellText } from "../src/report.ts";
import { FAILURE_SHOWN, FIXTURE, HOSTILE, UDP_FIXTURE, UDP_TRUNCATED } from "./_report-fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
// CI installs chromium (.ci/run): there a missing browser is a failure; on a laptop without it, a named skip.
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `${CHROMIUM} is not installed (apt-get install chromium)` : "";

const profile = mkdtempSync(join(tmpdir(), "tcp-echo-html-profile-"));
let browser: Promise<BrowserContext> | undefined;

afterAll(async () => {
  await (await browser)?.close();
  rmSync(profile, { recursive: true, force: true });
});

/** `result`'s page in a new tab of the one headless chromium, with every request it made and every dialog it opened. */
async function openPage(work: string, result: MatrixResult) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is not installed: .ci/run installs the chromium package`);
  const file = join(work, "report.html");
  const requests: string[] = [];
  const dialogs: string[] = [];
  writeFileSync(file, renderHtml(result, { commandLine: "pnpm matrix --html report.html", generator: "test" }));
  browser ??= chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser;
  const page = context.pages().find((open) => open.url() === "about:blank") ?? (await context.newPage());
  page.on("request", (request) => requests.push(request.url()));
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.goto(pathToFileURL(file).href);
  return { page, file, requests, dialogs };
}

describe.skipIf(skip)(`--html in headless chromium${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const work = mkdtempSync(join(tmpdir(), "tcp-echo-html-"));
  let page: Page;
  let page_: string;
  let requests: string[];
  let dialogs: string[];

  beforeAll(async () => {
    ({ page, file: page_, requests, dialogs } = await openPage(work, FIXTURE));
  }, 60_000);

  afterAll(async () => {
    await page?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test("each grid cell shows the terminal's text for that cell", async () => {
    const shown = await page.$$eval("td.cell button", (buttons) =>
      buttons.map((button) => button.firstChild?.textContent ?? ""),
    );
    expect(shown.sort()).toEqual(FIXTURE.cells.map((cell) => cellText(cell)).sort());
  });

  test("a click on a failing cell shows its cases, their checks and the whole failure message", async () => {
    const detail = page.locator("article.cell-detail", { hasText: "node server x bun client over tcp4" });
    await expect(detail.isVisible()).resolves.toBe(false);
    await page.locator('td.cell[data-server="node"][data-client="bun"]').first().locator("button").click();
    await expect(detail.isVisible()).resolves.toBe(true);
    const rows = detail.locator("tr[data-case]");
    expect(await rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.case))).toEqual([
      "tutorial",
      "half-close",
    ]);
    const halfClose = detail.locator('tr[data-case="half-close"]');
    expect(await halfClose.locator("td.outcome").textContent()).toBe("✗ FAIL");
    expect(await halfClose.locator("pre.message").textContent()).toBe(FAILURE_SHOWN);
    expect(await halfClose.locator("ul.checks li").allTextContents()).toEqual(["1 MiB sent"]);
    // Only the clicked cell is open.
    expect(await page.locator("article.cell-detail:visible").count()).toBe(1);
  });

  test("a participant's name and a failure message show as text and never run", async () => {
    expect(await page.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(await page.locator("table.grid tbody th").allTextContents()).toContain(HOSTILE);
  });

  test("the case filter hides the rows and grids without that case; the participant filter those without them", async () => {
    const visibleRows = () =>
      page.$$eval("table.grid tbody tr", (rows) =>
        rows
          .filter((row) => (row as HTMLElement).offsetParent !== null)
          .map((row) => `${row.closest("section")?.dataset.transport} ${(row as HTMLElement).dataset.server}`),
      );
    expect(await visibleRows()).toEqual(["tcp4 node", `tcp4 ${HOSTILE}`, "tcp4 control", "tls node"]);

    await page.selectOption("#filter-case", "half-close");
    expect(await visibleRows()).toEqual(["tcp4 node", "tcp4 control"]);
    expect(await page.locator('section[data-transport="tls"]').isVisible()).toBe(false);
    // The open cell's other cases are hidden too.
    expect(await page.locator("article.cell-detail:visible tr[data-case]:visible").count()).toBe(1);

    await page.selectOption("#filter-case", "");
    await page.selectOption("#filter-participant", HOSTILE);
    expect(await visibleRows()).toEqual([`tcp4 ${HOSTILE}`]);
    expect(await page.locator("#filter-count").textContent()).toBe("1 cell(s) shown");

    await page.selectOption("#filter-participant", "");
    expect(await visibleRows()).toHaveLength(4);
  });

  test("the screenshot is not blank", async () => {
    const png = PNG.sync.read(await page.screenshot());
    const colours = new Set<number>();
    for (let i = 0; i < png.data.length && colours.size < 50; i += 4) colours.add(png.data.readUInt32BE(i));
    expect(png.width).toBe(1280);
    // Text, the blue and orange cells and the grey table lines: far more than a blank or one-colour page.
    expect(colours.size).toBeGreaterThanOrEqual(50);
  });

  test("the page made no request but for itself", () => {
    expect(requests).toEqual([pathToFileURL(page_).href]);
  });
});

describe.skipIf(skip)(`--html of a udp grid in headless chromium${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const work = mkdtempSync(join(tmpdir(), "tcp-echo-html-udp-"));
  let page: Page;

  beforeAll(async () => {
    ({ page } = await openPage(work, UDP_FIXTURE));
  }, 60_000);

  afterAll(async () => {
    await page?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test("the udp grid shows the terminal's cell texts, the known gap and the control caught", async () => {
    const grid = page.locator('section[data-transport="udp"]');
    expect(await grid.locator("h2").textContent()).toBe("udp");
    const shown = await grid
      .locator("td.cell button")
      .evaluateAll((buttons) =>
        buttons.map((button) => `${button.firstChild?.textContent} (${button.querySelector(".word")?.textContent})`),
      );
    expect(shown).toEqual([
      "✓ 3/3 (passed)",
      "✓ 2/3 (known gap: empty) (passed)",
      "✓ caught 1/3 (negative control caught)",
    ]);
    expect(shown.map((text) => text.replace(/ \([^()]*\)$/, ""))).toEqual(
      UDP_FIXTURE.cells.map((cell) => cellText(cell)),
    );
  });

  test("a click on the control's cell shows its sizes case caught with our client's message, its others not catching", async () => {
    await page.locator('td.cell[data-server="xinetd"][data-client="node"] button').click();
    const detail = page.locator("article.cell-detail:visible");
    expect(await detail.locator("h3").textContent()).toBe("xinetd server x node client over udp");
    const outcomes = await detail
      .locator("tr[data-case]")
      .evaluateAll((rows) =>
        rows.map((row) => `${(row as HTMLElement).dataset.case}: ${row.querySelector("td.outcome")?.textContent}`),
      );
    expect(outcomes).toEqual(["tutorial: · did not catch", "sizes: ✓ caught", "empty: · did not catch"]);
    expect(await detail.locator('tr[data-case="sizes"] pre.message').textContent()).toBe(UDP_TRUNCATED);
  });

  test("the page's legend is the udp grid's", async () => {
    const legend = await page.locator("#cases-legend pre").textContent();
    expect(legend).toContain("our clients (send --udp, ping --udp)");
    expect(legend).not.toContain("EchoConnection");
  });
});
