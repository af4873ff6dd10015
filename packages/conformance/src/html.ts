/**
 * `--html FILE`: the run as one self-contained page (inline CSS and script, no request to anywhere: its
 * Content-Security-Policy forbids every fetch). The grid per transport with the terminal's cell texts; a click on a
 * cell shows its cases with every check and failure message; the run's metadata; a filter by case and by
 * participant. Every text is rendered into the page here, escaped: participant names and failure messages come from
 * outside programs. The script only shows, hides and filters.
 *
 * Colours are Okabe-Ito blue (pass) and orange/vermillion (fail), which stay apart under deuteranopia and
 * protanopia, and never carry the meaning alone: each cell has its symbol (✓ ✗), its text and its status word,
 * and a failing cell is striped.
 */

import { escapeMarkup } from "./markup.ts";
import { type CaseOutcome, classifyCase, controlServers, OUTCOME_WORDS, STATUS_WORDS } from "./outcomes.ts";
import type { CellResult, MatrixResult, Participant } from "./planning.ts";
import { cellText, formatDuration, renderLegend } from "./report.ts";
import type { GridTransport } from "./transports.ts";

export interface HtmlMeta {
  /** The command that made the run, as typed. */
  readonly commandLine: string;
  /** What ran the matrix (package version, the runtime and the platform). */
  readonly generator: string;
}

const text = (value: string) => escapeMarkup(value);
const attribute = (value: string) => escapeMarkup(value, true);

const STYLE = `
:root { --blue: #0072b2; --blue-bg: #d8eaf6; --green: #009e73; --green-bg: #d5efe6; --orange: #d55e00;
  --orange-bg: #fbe1c6; --grey: #6b6b6b; --grey-bg: #ececec; --ink: #1a1a1a; }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--ink); margin: 1.5rem; max-width: 110rem; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
code, pre { font: 12.5px/1.4 ui-monospace, monospace; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
.verdict { display: inline-block; padding: .3rem .7rem; font-weight: 600; border-left: 6px solid; }
.verdict.ok { background: var(--blue-bg); border-color: var(--blue); }
.verdict.failed { background: var(--orange-bg); border-color: var(--orange); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
table { border-collapse: collapse; } th, td { border: 1px solid #c8c8c8; padding: .25rem .5rem; text-align: left;
  vertical-align: top; }
thead th { background: #f4f4f4; }
table.grid td.cell { padding: 0; min-width: 7rem; }
table.grid td.cell button { all: unset; box-sizing: border-box; display: block; width: 100%; padding: .3rem .5rem;
  cursor: pointer; border-left: 5px solid transparent; }
table.grid td.cell button:focus-visible { outline: 3px solid var(--ink); outline-offset: -3px; }
table.grid td.cell .word { display: block; font-size: 11px; text-transform: uppercase; letter-spacing: .03em; }
table.grid td.status-pass button { background: var(--blue-bg); border-color: var(--blue); }
table.grid td.status-expected-fail button { background: var(--green-bg); border-color: var(--green); }
table.grid td.status-fail button, table.grid td.status-unexpected-pass button { font-weight: 600;
  border-color: var(--orange); background: repeating-linear-gradient(135deg, var(--orange-bg) 0 8px, #f6cfa6 8px 16px); }
table.grid td.status-not-available button { background: var(--grey-bg); color: var(--grey); font-style: italic; }
table.grid td.cell.no-cell { color: var(--grey); padding: .3rem .5rem; vertical-align: middle; }
td.cell.selected button { outline: 3px solid var(--ink); outline-offset: -3px; }
td.cell.filtered { opacity: .25; }
.filters { display: flex; gap: 1.5rem; align-items: center; flex-wrap: wrap; padding: .5rem 0; }
.filters select { font: inherit; padding: .15rem; }
.cases td.outcome { white-space: nowrap; font-weight: 600; border-left: 5px solid transparent; }
.outcome-pass td.outcome, .outcome-caught td.outcome { background: var(--blue-bg); border-left-color: var(--blue); }
.outcome-fail td.outcome { background: var(--orange-bg); border-left-color: var(--orange); }
.outcome-known-gap td.outcome, .outcome-not-caught td.outcome { background: var(--green-bg);
  border-left-color: var(--green); }
.outcome-not-applicable td.outcome, .outcome-not-run td.outcome { background: var(--grey-bg); color: var(--grey); }
.message { background: #fff6ec; border-left: 3px solid var(--orange); padding: .2rem .4rem; margin-bottom: .3rem; }
.outcome-known-gap .message, .outcome-not-applicable .message, .outcome-not-run .message, .outcome-caught .message {
  background: #f4f4f4; border-left-color: var(--grey); }
ul.checks { margin: 0; padding-left: 1.1rem; }
.cell-detail { border: 1px solid #c8c8c8; padding: .5rem 1rem 1rem; margin-top: .5rem; }
.legend span { display: inline-block; margin-right: 1rem; padding: .1rem .4rem; border-left: 5px solid; }
[hidden] { display: none !important; }
`;

// Shows one cell's cases on a click (or from the address's #cell-N), and filters the grids and the cases.
const SCRIPT = `
const cells = [...document.querySelectorAll("td.cell")];
const caseFilter = document.getElementById("filter-case");
const participantFilter = document.getElementById("filter-participant");
function open(id) {
  for (const article of document.querySelectorAll("article.cell-detail")) article.hidden = article.id !== id;
  for (const td of cells) {
    const button = td.querySelector("button");
    td.classList.toggle("selected", Boolean(button) && button.dataset.detail === id);
    if (button) button.setAttribute("aria-expanded", String(button.dataset.detail === id));
  }
  document.getElementById("details-hint").hidden = Boolean(document.getElementById(id));
}
for (const td of cells) {
  const button = td.querySelector("button");
  if (!button) continue;
  button.addEventListener("click", () => {
    history.replaceState(null, "", "#" + button.dataset.detail);
    open(button.dataset.detail);
    document.getElementById(button.dataset.detail).scrollIntoView({ block: "nearest" });
  });
}
for (const link of document.querySelectorAll("a[data-detail]")) {
  link.addEventListener("click", () => open(link.dataset.detail));
}
function filter() {
  const wanted = caseFilter.value;
  const who = participantFilter.value;
  let shown = 0;
  for (const grid of document.querySelectorAll("table.grid")) {
    const seen = new Set();
    for (const td of grid.querySelectorAll("td.cell")) {
      const cases = JSON.parse(td.dataset.cases);
      const match = (!who || td.dataset.server === who || td.dataset.client === who) && (!wanted || cases.includes(wanted));
      td.classList.toggle("filtered", !match);
      if (!match) continue;
      if (td.dataset.cases !== "[]") shown++;
      seen.add("server " + td.dataset.server);
      seen.add("client " + td.dataset.client);
    }
    const rows = [...grid.querySelectorAll("tbody tr")];
    for (const row of rows) row.hidden = !seen.has("server " + row.dataset.server);
    grid.querySelectorAll("thead th[data-client]").forEach((th, index) => {
      th.hidden = !seen.has("client " + th.dataset.client);
      for (const row of rows) row.children[index + 1].hidden = th.hidden;
    });
    grid.closest("section").hidden = seen.size === 0;
  }
  for (const row of document.querySelectorAll("tr[data-case]")) row.hidden = Boolean(wanted) && row.dataset.case !== wanted;
  document.getElementById("filter-count").textContent = shown + " cell(s) shown";
}
caseFilter.addEventListener("change", filter);
participantFilter.addEventListener("change", filter);
filter();
if (location.hash.startsWith("#cell-")) open(location.hash.slice(1));
`;

function participantsOf(
  result: MatrixResult,
  transport: GridTransport,
  list: readonly Participant[],
  role: "server" | "client",
) {
  return list.filter((participant) =>
    result.cells.some((cell) => cell.transport === transport && cell[role] === participant.name),
  );
}

function renderGrid(result: MatrixResult, transport: GridTransport, ids: ReadonlyMap<CellResult, string>): string {
  const servers = participantsOf(result, transport, result.servers, "server");
  const clients = participantsOf(result, transport, result.clients, "client");
  const head = clients.map(
    (client) => `<th scope="col" data-client="${attribute(client.name)}">${text(client.name)}</th>`,
  );
  const rows = servers.map((server) => {
    const tds = clients.map((client) => {
      const cell = result.cells.find(
        (c) => c.transport === transport && c.server === server.name && c.client === client.name,
      );
      const where = `data-server="${attribute(server.name)}" data-client="${attribute(client.name)}"`;
      if (!cell) return `<td class="cell no-cell" ${where} data-cases="[]">n/a</td>`;
      const cases = attribute(JSON.stringify(cell.cases.map((r) => r.case)));
      return `<td class="cell status-${cell.status}" ${where} data-cases="${cases}"><button type="button" aria-expanded="false" aria-controls="${ids.get(cell)}" data-detail="${ids.get(cell)}">${text(cellText(cell))}<span class="word">${text(STATUS_WORDS[cell.status])}</span></button></td>`;
    });
    return `<tr data-server="${attribute(server.name)}"><th scope="row">${text(server.name)}</th>${tds.join("")}</tr>`;
  });
  return `<section class="transport" data-transport="${attribute(transport)}"><h2>${text(transport)}</h2>
<table class="grid"><thead><tr><th scope="col">server \\ client</th>${head.join("")}</tr></thead>
<tbody>${rows.join("\n")}</tbody></table></section>`;
}

function renderCaseRow(
  outcome: CaseOutcome,
  name: string,
  ms: number,
  message: string | undefined,
  checks: readonly string[],
) {
  const detail = [
    message ? `<pre class="message">${text(message)}</pre>` : "",
    checks.length ? `<ul class="checks">${checks.map((check) => `<li>${text(check)}</li>`).join("")}</ul>` : "",
  ].join("");
  return `<tr class="outcome-${outcome}" data-case="${attribute(name)}"><td>${text(name)}</td><td class="outcome">${text(OUTCOME_WORDS[outcome])}</td><td>${ms} ms</td><td>${detail || "no checks recorded"}</td></tr>`;
}

function renderDetail(result: MatrixResult, cell: CellResult, id: string, onControl: boolean): string {
  const over = result.transports.length > 1 || cell.transport !== "tcp4" ? ` over ${cell.transport}` : "";
  const rows = cell.cases.map((r) => {
    const { outcome, message } = classifyCase(r, onControl);
    return renderCaseRow(outcome, r.case, r.ms, message, r.checks);
  });
  const table = rows.length
    ? `<table class="cases"><thead><tr><th>case</th><th>outcome</th><th>time</th><th>failure and checks</th></tr></thead><tbody>${rows.join("\n")}</tbody></table>`
    : "";
  return `<article class="cell-detail status-${cell.status}" id="${id}" hidden>
<h3>${text(`${cell.server} server x ${cell.client} client${over}`)}</h3>
<p><strong>${text(STATUS_WORDS[cell.status])}</strong>: ${text(cellText(cell))} (${text(formatDuration(cell.ms))})</p>
${cell.note ? `<pre class="message">${text(cell.note)}</pre>` : ""}${table}</article>`;
}

function renderParticipants(result: MatrixResult): string {
  const row = (role: string, p: Participant) =>
    `<tr><td>${role}</td><td>${text(p.name)}</td><td>${text(p.kind)}</td><td>${text([p.runtime, p.version].filter(Boolean).join(" "))}</td><td>${text(p.description)}${p.missing ? `<pre class="message">${text(p.missing)}</pre>` : ""}</td></tr>`;
  return `<table id="participants"><thead><tr><th>role</th><th>name</th><th>kind</th><th>runs on (version)</th><th>description</th></tr></thead><tbody>
${[...result.servers.map((p) => row("server", p)), ...result.clients.map((p) => row("client", p))].join("\n")}
</tbody></table>`;
}

/** The page for one run. */
export function renderHtml(result: MatrixResult, meta: HtmlMeta): string {
  const control = controlServers(result);
  const ids = new Map(result.cells.map((cell, index) => [cell, `cell-${index}`]));
  const failing = result.cells.filter((cell) => cell.status === "fail" || cell.status === "unexpected-pass");
  const unavailable = result.cells.filter((cell) => cell.status === "not-available").length;
  const verdict = result.ok
    ? `✓ OK: every expected cell passed (${result.cells.length - unavailable} run, ${unavailable} not available)`
    : `✗ FAILED: ${failing.length} cell(s) failed`;
  const title =
    result.mode === "faults"
      ? "tcp-echo fault matrix"
      : `tcp-echo conformance matrix (${result.profile} profile${result.via ? `, every server behind ${result.via}` : ""})`;
  const caseNames = [
    ...new Set([...result.cases.map((c) => c.name), ...result.cells.flatMap((c) => c.cases.map((r) => r.case))]),
  ];
  const names = [...new Set([...result.servers, ...result.clients].map((p) => p.name))];
  const option = (value: string) => `<option value="${attribute(value)}">${text(value)}</option>`;
  const facts = [
    ["started", result.startedAt],
    ["duration", formatDuration(result.durationMs)],
    ["profile", result.profile],
    ["transports", result.transports.join(", ")],
    ...(result.via ? [["via", `every server behind ${result.via} (pnpm matrix --via)`]] : []),
    ["cells", `${result.cells.length} (${failing.length} failing, ${unavailable} not available)`],
    ["command", meta.commandLine],
    ["generated by", meta.generator],
  ];
  const failures = failing.length
    ? `<h2>Failures</h2><ul id="failures">${failing.map((cell) => `<li><a href="#${ids.get(cell)}" data-detail="${ids.get(cell)}">${text(`${cell.server} server x ${cell.client} client over ${cell.transport}`)}</a>: ${text(cellText(cell))}</li>`).join("")}</ul>`
    : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${text(`${title}: ${result.ok ? "OK" : "FAILED"}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${text(title)}</h1><p class="verdict ${result.ok ? "ok" : "failed"}" id="verdict">${text(verdict)}</p></header>
<section id="run"><h2>Run</h2>
<dl class="meta">${facts.map(([key, value]) => `<dt>${text(key!)}</dt><dd>${key === "command" ? `<code>${text(value!)}</code>` : text(value!)}</dd>`).join("")}</dl>
<h2>Participants</h2>${renderParticipants(result)}</section>
<div class="filters" role="search">
<label>Case <select id="filter-case"><option value="">all cases</option>${caseNames.map(option).join("")}</select></label>
<label>Participant <select id="filter-participant"><option value="">everyone</option>${names.map(option).join("")}</select></label>
<span id="filter-count"></span></div>
<p class="legend"><span class="status-pass" style="border-color: var(--blue); background: var(--blue-bg)">✓ passed</span><span style="border-color: var(--green); background: var(--green-bg)">✓ caught: the negative control failed, as it must</span><span style="border-color: var(--orange); background: var(--orange-bg)">✗ FAILED (striped)</span><span style="border-color: var(--grey); background: var(--grey-bg)">not available / n/a</span></p>
<div id="grids">
${result.transports.map((transport) => renderGrid(result, transport, ids)).join("\n")}
</div>
${failures}
<section id="details"><h2>Cell details</h2><p id="details-hint">Click a cell of the grid to see its cases, every check and every failure message.</p>
${result.cells.map((cell) => renderDetail(result, cell, ids.get(cell)!, control.has(cell.server))).join("\n")}
</section>
<section id="cases-legend"><h2>Cases</h2>
<dl class="meta">${result.cases.map((c) => `<dt>${text(c.name)}</dt><dd>${text(c.proves)}</dd>`).join("")}</dl>
<pre>${text(renderLegend(result.mode, result.transports))}</pre></section>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
