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
const money = (v) => (v ? Number(v).toFixed(4) : "-");
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
  const of = page.total === null ? (page.more ? "" : ` of ${end}`) : ` of ${page.total}`;
  const text = page.rows.length ? `Rows ${page.offset + 1}–${end}${of}` : "No rows match";
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
    el("td", {}, r.started_at), el("td", {}, secs(r.duration_s)), el("td", {}, money(r.cost)), el("td", {}, r.llm_calls ?? "-"),
    el("td", {}, r.attempts)));
  const diff = el("button", { id: "diff", onclick: () => {
    const [a, b] = [...picked];
    if (picked.size === 2) location.hash = `#/diff/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
    else alert("Pick two runs to compare");
  } }, "Diff the two picked runs");
  main.replaceChildren(el("h1", {}, `${runs.length} runs`), diff,
    table(["", "Run", "Name", "Status", "Orchestrator", "Started", "Duration", "Cost", "LLM calls", "Attempts"], rows));
}

async function runView(runId) {
  const run = await api(`runs/${encodeURIComponent(runId)}`);
  const groups = run.groups.map((g) => el("tr", {}, el("td", {}, g.name || "(none)"), el("td", {}, g.done), el("td", { class: g.failed ? "failed" : "" }, g.failed)));
  const meta = run.metadata || {};
  const state = { group: run.groups.length ? run.groups[0].name : "", status: "", q: "", offset: 0 };
  const holder = el("div", { id: "rows" });
  const pick = el("select", { id: "group", onchange: (e) => { state.group = e.target.value; load(0); } },
    ...run.groups.map((g) => el("option", { value: g.name }, g.name || "(none)")));
  const status = el("select", { id: "status", onchange: (e) => { state.status = e.target.value; load(0); } },
    el("option", { value: "" }, "all rows"), el("option", { value: "ok" }, "finished"), el("option", { value: "failed" }, "failed"));
  const search = el("input", { id: "search", type: "search", placeholder: "search rows" });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") { state.q = search.value; load(0); } });
  async function load(offset) {
    state.offset = offset;
    const q = new URLSearchParams({ group: state.group, status: state.status, q: state.q, offset, limit: PAGE });
    const page = await api(`runs/${encodeURIComponent(runId)}/rows?${q}`);
    const names = run.groups.map((g) => g.name);
    const rows = page.rows.map((r) => el("tr", { class: "row" },
      el("td", {}, el("a", { href: `#/row/${encodeURIComponent(runId)}/${encodeURIComponent(r.row_id)}` }, r.row_id)),
      ...names.map((n) => cell(r.groups[n]))));
    holder.replaceChildren(pager(page, load), table(["Row", ...names.map((n) => n || "(none)")], rows));
  }
  main.replaceChildren(
    el("h1", {}, `Run ${run.run_id}`),
    el("p", {}, `${run.name} · ${run.orchestrator} · ${run.status} · ${secs(run.duration_s)} · cost ${money(run.cost)} · ${run.llm_calls ?? 0} LLM calls`),
    el("h2", {}, "Experiments"), table(["Experiment", "Finished", "Failed"], groups),
    el("h2", {}, "Comparisons"), el("div", { id: "comparisons" }, pre(meta.comparisons ?? meta.experiments ?? meta)),
    el("h2", {}, "Rows"), el("div", { class: "bar" }, pick, status, search), holder);
  await load(0);
}
function cell(item) {
  if (!item) return el("td", {}, "—");
  if (!item.ok) return el("td", { class: "failed" }, `failed at ${item.stage}: ${item.error}`);
  return el("td", {}, pre(item.outputs), pre(item.metrics));
}

async function rowView(runId, rowId) {
  const row = await api(`runs/${encodeURIComponent(runId)}/rows/${encodeURIComponent(rowId)}`);
  const parts = row.groups.map((g) => el("section", { class: "group" },
    el("h2", {}, `${g.group || "(none)"}: ${g.ok ? "finished" : "failed"}`),
    table(["Field", "Value"], [
      ["Inputs", g.inputs], ["Outputs", g.ok ? g.outputs : g.output], ["Metrics", g.metrics],
      ["Error", g.ok ? "" : `${g.stage}: ${g.error}`], ["Attempts", g.attempts ?? ""], ["Spend", g.spend], ["Run attempt", g.attempt],
    ].map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, pre(v)))))));
  main.replaceChildren(el("p", {}, el("a", { href: `#/run/${encodeURIComponent(runId)}` }, `← run ${runId}`)), el("h1", {}, `Row ${rowId}`), ...parts);
}

async function diffView(a, b) {
  let changed = true;
  const holder = el("div", { id: "diffrows" });
  const toggle = el("input", { type: "checkbox", id: "changed", checked: "", onchange: (e) => { changed = e.target.checked; load(0); } });
  async function load(offset) {
    const q = new URLSearchParams({ a, b, changed: changed ? "1" : "0", offset, limit: PAGE });
    const page = await api(`diff?${q}`);
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
