// Elspeth view: a page over the JSON API of elspeth_view.server. Every value from the store is set as
// text (never as HTML), so a row's content cannot inject markup. Routes live in the URL's hash.
"use strict";
const main = document.getElementById("main");
const PAGE = 50;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}
const show = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v, null, 1) : String(v));
const pre = (v) => el("pre", {}, show(v));
const money = (v) => (v === null || v === undefined ? "-" : Number(v).toFixed(4));
const secs = (v) => (v === null || v === undefined ? "-" : v < 1 ? `${Math.round(v * 1000)} ms` : `${Number(v).toFixed(1)} s`);

async function api(path) {
  const res = await fetch("/api/" + path);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}
function table(head, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))), el("tbody", {}, ...rows));
}
function pager(page, go) {
  const end = page.offset + page.rows.length;
  const of = page.total == null ? (page.more ? "" : ` of ${end}`) : ` of ${page.total}`;  // no total: a scan would count it
  const text = page.rows.length ? `Rows ${page.offset + 1} to ${end}${of}` : "No rows match";
  return el("div", { class: "bar" },
    el("button", { id: "prev", onclick: () => go(Math.max(0, page.offset - page.limit)), ...(page.offset ? {} : { disabled: "" }) }, "Previous"),
    el("span", { id: "range" }, text),
    el("button", { id: "next", onclick: () => go(page.offset + page.limit), ...(page.more ? {} : { disabled: "" }) }, "Next"));
}

async function runsView() {
  const runs = await api("runs");
  const picked = new Set();
  const rows = runs.map((r) => el("tr", { "data-run": r.run_id },
    el("td", {}, el("input", { type: "checkbox", class: "pick", onchange: (e) => (e.target.checked ? picked.add(r.run_id) : picked.delete(r.run_id)) })),
    el("td", {}, el("a", { href: `#/run/${encodeURIComponent(r.run_id)}` }, r.run_id)),
    el("td", {}, r.name), el("td", { class: r.status === "completed" ? "" : "failed" }, r.status), el("td", {}, r.orchestrator),
    el("td", {}, r.started_at), el("td", {}, r.finished_at ?? "-"), el("td", { class: "duration" }, secs(r.duration_s)),
    el("td", {}, r.rows_total ?? "-"), el("td", { class: "cost" }, money(r.cost)), el("td", {}, `${r.prompt_tokens ?? 0}+${r.completion_tokens ?? 0}`),
    el("td", {}, r.llm_calls ?? "-"), el("td", {}, r.attempts)));
  const diff = el("button", { id: "diff", onclick: () => {
    const [a, b] = [...picked];
    if (picked.size === 2) location.hash = `#/diff/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
    else alert("Pick two runs to compare");
  } }, "Diff the two picked runs");
  main.replaceChildren(el("h1", {}, `${runs.length} runs`), diff,
    table(["", "Run", "Name", "Status", "Orchestrator", "Started", "Finished", "Duration", "Rows", "Cost", "Tokens", "LLM calls", "Attempts"], rows));
}

function figureValue(v) {
  if (Array.isArray(v)) return `[${v.map(figureValue).join(", ")}]`;
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4).replace(/\.?0+$/, "");
  return show(v);
}
function sideBySide(experiments) {
  if (!experiments.names.length) return el("p", {}, "This run kept no per-experiment figures.");
  const rows = experiments.figures.map(([name, ...values]) => el("tr", {}, el("th", {}, name), ...values.map((v) => el("td", {}, figureValue(v)))));
  return table(["Figure", ...experiments.names], rows);
}
function comparisonsView(found) {
  if (!found.length) return el("p", {}, "No comparisons with the baseline in this run.");
  return el("div", { class: "cards" }, ...found.map((c) => {
    const f = c.figures;
    const verdict = Object.keys(f).filter((k) => k.endsWith(".significant")).map((k) => `${k.replace(/\.significant$/, "")}: ${f[k] ? "significant" : "not significant"}`);
    return el("section", { class: "card comparison", "data-variant": c.variant },
      el("h3", {}, `${c.variant} vs baseline · ${c.plugin}`), el("p", { class: "verdict" }, verdict.join("; ")),
      table(["Figure", "Value"], Object.entries(f).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, figureValue(v))))));
  }));
}

async function runView(runId) {
  // The rows and the run come at once, without counts; the counts (a quarter of a second per million
  // rows on the server) follow in a request of their own and fill the tables and the pager when they come.
  const base = `runs/${encodeURIComponent(runId)}`;
  const firstPage = api(`${base}/rows?offset=0&limit=${PAGE}&count=0`);
  firstPage.catch(() => {});  // an unknown run is reported by the run's own request
  const run = await api(`${base}?counts=0`);
  const names = run.groups.map((g) => g.name);
  const state = { group: names.length ? names[0] : "", status: "", q: "", limit: PAGE };
  let counts = null;  // by group, once they come
  let shown = null;  // the page on screen
  const holder = el("div", { id: "rows" });
  const countsTable = el("div", { id: "counts" }, table(["Experiment", "Finished", "Failed"],
    names.map((n) => el("tr", {}, el("td", {}, n || "(none)"), el("td", { colspan: 2 }, "counting…")))));
  const pick = el("select", { id: "group", title: "experiment whose rows are paged", onchange: (e) => { state.group = e.target.value; load(0); } },
    ...names.map((n) => el("option", { value: n }, n || "(none)")));
  const status = el("select", { id: "status", onchange: (e) => { state.status = e.target.value; load(0); } },
    el("option", { value: "" }, "all rows"), el("option", { value: "ok" }, "finished"), el("option", { value: "failed" }, "failed"));
  const size = el("select", { id: "limit", onchange: (e) => { state.limit = Number(e.target.value); load(0); } },
    ...[25, 50, 100, 500].map((n) => el("option", { value: n, ...(n === PAGE ? { selected: "" } : {}) }, `${n} a page`)));
  const search = el("input", { id: "search", type: "search", placeholder: "search inputs, replies, errors (Enter)" });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") { state.q = search.value; load(0); } });
  function total(filters) {
    const c = counts && counts[filters.group];
    if (!c || filters.q) return null;  // a search's matches are not counted: that would read every row
    return filters.status === "ok" ? c.done : filters.status === "failed" ? c.failed : c.done + c.failed;
  }
  function draw() {
    const { page, filters } = shown;
    const rows = page.rows.map((r) => {
      const first = Object.values(r.groups)[0] || {};
      return el("tr", { class: "row", "data-row": r.row_id },
        el("td", {}, el("a", { href: `#/row/${encodeURIComponent(runId)}/${encodeURIComponent(r.row_id)}` }, r.row_id)),
        el("td", {}, pre(first.inputs)), ...names.map((n) => cell(r.groups[n])));
    });
    holder.replaceChildren(el("div", { id: "pagerslot" }), table(["Row", "Inputs", ...names.map((n) => n || "(none)")], rows));
    drawPager();
  }
  function drawPager() {  // alone when the counts come, so the rows a person is reading stay as they are
    holder.querySelector("#pagerslot").replaceChildren(pager({ ...shown.page, total: total(shown.filters) }, load));
  }
  let asked = 0;  // a quick change of filters sends several requests: only the last one's answer is shown
  async function load(offset, ready) {
    const mine = ++asked;
    const filters = { ...state };
    const q = new URLSearchParams({ group: filters.group, status: filters.status, q: filters.q, offset, limit: filters.limit, count: 0 });
    const page = await (ready || api(`${base}/rows?${q}`));
    if (mine !== asked) return;
    shown = { page, filters };
    draw();
  }
  const t = run.metadata || {};
  main.replaceChildren(
    el("h1", {}, `Run ${run.run_id}`),
    el("p", { id: "summary" }, `${run.name} · ${run.orchestrator} · ${run.status} · started ${run.started_at} · ${secs(run.duration_s)} · cost ${money(run.cost)} · ${run.llm_calls ?? 0} LLM calls · ${run.prompt_tokens ?? 0}+${run.completion_tokens ?? 0} tokens`),
    t.error ? el("p", { class: "error" }, t.error) : "",
    el("h2", {}, "Experiments"), countsTable,
    el("div", { id: "experiments" }, sideBySide(run.experiments)),
    el("h2", {}, "Comparisons"), el("div", { id: "comparisons" }, comparisonsView(run.comparisons)),
    el("h2", {}, "Rows"), el("div", { class: "bar" }, pick, status, search, size), holder);
  const counted = api(`${base}/counts`).then((found) => {
    counts = Object.fromEntries(found.map((g) => [g.name, g]));
    countsTable.replaceChildren(table(["Experiment", "Finished", "Failed"], found.map((g) =>
      el("tr", { class: "count" }, el("td", {}, g.name || "(none)"), el("td", {}, g.done), el("td", { class: g.failed ? "failed" : "" }, g.failed)))));
    if (shown) drawPager();
  });
  await load(0, firstPage);  // the server pages the first experiment when none is named, as state.group says
  await counted;
}
function scores(metrics) {
  const s = (metrics || {}).scores;
  return s ? Object.entries(s).map(([k, v]) => (k === "default" ? `score ${v}` : `${k} ${v}`)).join(", ") : "";
}
function cell(item) {
  if (!item) return el("td", {}, "—");
  if (!item.ok) return el("td", { class: "failed" }, `failed at ${item.stage}: ${item.error}`);
  const answer = Object.values(item.outputs || {}).map(show).join("\n");
  return el("td", {}, el("div", { class: "score" }, scores(item.metrics)), el("pre", { class: "reply" }, answer));
}

function attemptsTable(attempts) {
  if (!attempts || !attempts.length) return "";
  const keys = ["attempt", "status", "error_type", "error", "duration_s", "delay_s"];
  return table(keys, attempts.map((a) => el("tr", { class: "attempt" }, ...keys.map((k) => el("td", {}, show(a[k]))))));
}
async function rowView(runId, rowId) {
  const row = await api(`runs/${encodeURIComponent(runId)}/rows/${encodeURIComponent(rowId)}`);
  const parts = row.groups.map((g) => {
    const p = g.prompts || {};
    const prompts = p.error ? el("span", { class: "failed" }, p.error) : el("div", {}, el("h4", {}, "system"), pre(p.system), el("h4", {}, "user"), pre(p.user));
    const fields = [
      ["Prompts", prompts], ["Response", pre(g.ok ? g.outputs : g.output)], ["Scores", scores(g.metrics)], ["Metrics", pre(g.metrics)],
      ["Error", g.ok ? "" : `${g.stage}: ${g.error}`], ["Attempts", attemptsTable(g.attempts)], ["Spend", pre(g.spend)], ["Run attempt", show(g.attempt)],
    ];
    return el("section", { class: "group", "data-group": g.group },
      el("h2", {}, `${g.group || "(none)"}: ${g.ok ? "finished" : "failed"}`),
      table(["Field", "Value"], fields.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: k === "Error" && v ? "failed" : "" }, v)))));
  });
  const inputs = row.groups.length ? row.groups[0].inputs : {};
  main.replaceChildren(el("p", {}, el("a", { href: `#/run/${encodeURIComponent(runId)}` }, `← run ${runId}`)), el("h1", {}, `Row ${rowId}`),
    el("h2", {}, "Inputs"), table(["Column", "Value"], Object.entries(inputs || {}).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, show(v))))),
    el("div", { class: "groups" }, ...parts));
}

async function diffView(a, b) {
  let changed = true;
  const holder = el("div", { id: "diffrows" });
  const toggle = el("input", { type: "checkbox", id: "changed", checked: "", onchange: (e) => { changed = e.target.checked; load(0); } });
  let asked = 0;
  async function load(offset) {
    const mine = ++asked;
    const q = new URLSearchParams({ a, b, changed: changed ? "1" : "0", offset, limit: PAGE });
    const page = await api(`diff?${q}`);
    if (mine !== asked) return;
    const rows = page.rows.map((r) => {
      const differs = !r.b || r.a.ok !== r.b.ok || show(r.a.outputs) !== show(r.b.outputs);
      return el("tr", { class: "row" }, el("td", {}, r.group || "(none)"), el("td", {}, r.row_id),
        side(r.a, differs), side(r.b, differs));
    });
    holder.replaceChildren(pager(page, load), el("p", {}, `${page.only_in_b} rows only in ${b}`), table(["Experiment", "Row", a, b], rows));
  }
  main.replaceChildren(el("h1", {}, `Diff ${a} → ${b}`), el("label", {}, toggle, " changed rows only"), holder);
  await load(0);
}
function side(item, differs) {
  if (!item) return el("td", { class: "changed" }, "(missing)");
  const cls = differs ? "changed" : "";
  return item.ok ? el("td", { class: cls }, pre(item.outputs)) : el("td", { class: `${cls} failed` }, `failed: ${item.error}`);
}

async function route() {
  const [view, ...args] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (view === "run") await runView(args[0]);
    else if (view === "row") await rowView(args[0], args[1]);
    else if (view === "diff") await diffView(args[0], args[1]);
    else await runsView();
  } catch (err) {
    main.replaceChildren(el("p", { class: "error" }, err.message));
  }
}
window.addEventListener("hashchange", route);
route();
