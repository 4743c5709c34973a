// The Tasks view (live list, filters, search) and one task's page.
import { $, abbrev, el, flash, when } from "./dom.js";
import { API, call } from "./api.js";

const LIVE_MS = 3000;
const FIELDS = ["status", "name", "q", "book", "since", "until"];
let listing = 0; // which listing the rows on screen belong to: a late answer of an older one is dropped

export const taskLink = (id) => el("a", { href: `#/tasks/${encodeURIComponent(id)}` }, id);
const bookLink = (t) => (t.book_id ? el("a", { href: `#/tasks?book=${encodeURIComponent(t.book_id)}`, title: t.book_id }, t.book_title || t.book_id) : "");
const json = (v) => (v == null ? "" : JSON.stringify(v));
const runtime = (t) => (t.runtime_ms == null ? null : `${(t.runtime_ms / 1000).toFixed(2)} s`);
const outcome = (t) => (t.error ? el("span", { class: "error-text", title: t.error }, abbrev(t.error, 60)) : abbrev(json(t.result), 60));

function query(params, cursor) {
  const q = new URLSearchParams();
  for (const [k, v] of params) if (v) q.set(k, (k === "since" || k === "until") && !v.endsWith("Z") ? v + "Z" : v);
  q.set("limit", "25");
  if (cursor) q.set("cursor", cursor);
  return q;
}
function rowOf(t) {
  const cells = [["Created", when(t.created_at)], ["Status", t.status, `status-${t.status}`], ["Name", t.name], ["Book", bookLink(t)],
    ["Args", el("code", { title: json(t.args) }, abbrev(json(t.args), 40))], ["Runtime", runtime(t), "num"], ["Attempts", t.attempts, "num"],
    ["Result / error", outcome(t)], ["Invocation", t.invocation ? abbrev(t.invocation, 13) : "–"], ["Id", taskLink(t.id)]];
  return el("tr", { "data-task": t.id, "data-status": t.status }, ...cells.map(([label, v, cls]) => el("td", { "data-label": label, ...(cls ? { class: cls } : {}) }, v == null ? "–" : v)));
}

// Returns the view's stop function (the router calls it when leaving).
export function showTasks(params) {
  const form = $("task-filter");
  for (const field of FIELDS) form.elements[field].value = (params.get(field) || "").replace(/Z$/, "");
  listing += 1;
  const mine = listing;
  let cursor = null;
  let timer = null;
  let refreshing = 0; // first-page reads on their way: a live tick waits for them (see tick)
  $("tasks-body").replaceChildren();
  const live = $("tasks-live");

  // `byTimer`: a live refresh, whose answer is dropped if the switch went off while it was on its
  // way (a paused list must not change under the reader).
  // "Next page" is disabled while its page is on the way: a second click would read the same
  // cursor again and append the same rows twice.
  async function load(more, byTimer = false) {
    $("tasks-error").textContent = "";
    if (more) $("tasks-more").disabled = true; else refreshing += 1;
    let page;
    try { page = await call(`${API}tasks?${query(params, more ? cursor : null)}`); } catch (error) { if (mine === listing) $("tasks-error").textContent = error.message; return; } finally { if (more) $("tasks-more").disabled = false; else refreshing -= 1; }
    if (mine !== listing || (byTimer && !live.checked)) return;
    const rows = page.items.map(rowOf);
    if (more) $("tasks-body").append(...rows); else $("tasks-body").replaceChildren(...rows);
    cursor = page.next_cursor;
    $("tasks-more").hidden = !cursor;
    $("tasks-more").textContent = page.items.length ? "Next page" : `Search on (${page.scanned} read, none matched yet)`;
    $("tasks-updated").textContent = `updated ${new Date().toISOString().replace(/\.\d{3}Z$/, "Z")}`;
  }
  // Live: the first page again every few seconds (new tasks and status changes); paused by the
  // switch, and while further pages are open (they would be lost). Never while the last one is
  // still on its way: a search reads up to 600 records, and under load one took longer than a
  // tick, so refreshes piled up on the API (each one more reads) until the list never answered.
  function tick() { if (live.checked && mine === listing && refreshing === 0) load(false, true); }
  $("tasks-more").onclick = () => { live.checked = false; load(true); };
  live.onchange = () => { if (live.checked) load(false); };
  $("tasks-retry").onclick = () => retryFailures(params);
  load(false);
  timer = setInterval(tick, LIVE_MS);
  return () => { clearInterval(timer); listing += 1; };
}

// Bounded: each request runs at most one page again; at most MAX_PAGES pages per click.
async function retryFailures(params) {
  const MAX_PAGES = 20;
  if (!window.confirm("Run every FAILURE of this filter again, each as a new run (permanent failures and those run again already are skipped)?")) return;
  let cursor = null, runs = 0, skipped = 0, pages = 0;
  try {
    do {
      const q = query(params, cursor); q.delete("limit"); q.delete("status");
      const r = await call(`${API}tasks/retry-failures?${q}`, { method: "POST" });
      runs += r.runs.length; skipped += r.skipped.length; cursor = r.next_cursor; pages += 1;
    } while (cursor && pages < MAX_PAGES);
    flash(`${runs} new run(s), ${skipped} skipped${cursor ? "; more remain: click again" : ""}`);
  } catch (error) { $("tasks-error").textContent = error.message; }
}

$("task-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(event.target)) if (v) q.set(k, v);
  location.hash = `#/tasks?${q}`;
});

export async function showTask(id) {
  $("task-id").textContent = id;
  $("task-error").textContent = "";
  for (const part of ["task-fields", "task-history", "task-links"]) $(part).replaceChildren();
  $("task-traceback").textContent = ""; $("task-rerun").hidden = true; $("task-revoke").hidden = true; $("task-logs").textContent = "";
  $("task-log-attempts").replaceChildren();
  let t;
  try { t = await call(`${API}tasks/${encodeURIComponent(id)}`); } catch (error) { $("task-error").textContent = error.message; return; }
  const code = (v) => el("code", {}, JSON.stringify(v));
  const rows = [["Status", el("span", { class: `status-${t.status}` }, t.status)], ["Name", t.name], ["Queue", t.queue],
    ["Book", bookLink(t)], ["Owner", t.owner], ["Args", code(t.args)], ["Kwargs", code(t.kwargs)],
    ["Result", code(t.result)], ["Error", t.error], ["Attempts", t.attempts], ["Created", when(t.created_at)],
    ["Started", when(t.started_at)], ["Finished", when(t.finished_at)], ["Duration", duration(t)], ["Updated", when(t.updated_at)],
    ["Invocation", t.invocation || "–"]];
  $("task-fields").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const links = [["Run again of", t.rerun_of ? [t.rerun_of] : []], ["Re-runs", t.reruns], ["Sent by", t.parent_id ? [t.parent_id] : []],
    ["Sent", t.children]].filter(([, ids]) => ids.length);
  $("task-links").replaceChildren(...links.flatMap(([k, ids]) => [el("dt", {}, k), el("dd", { "data-link": k }, ...ids.flatMap((i) => [taskLink(i), " "]),
    k === "Sent" && t.children_sent > ids.length ? `(and ${t.children_sent - ids.length} more)` : "")]));
  $("task-history").replaceChildren(...(t.history || []).map((a) => el("tr", { "data-attempt": a.number },
    el("td", { "data-label": "#", class: "num" }, a.number), el("td", { "data-label": "Outcome" }, a.outcome),
    el("td", { "data-label": "Started" }, when(a.started_at)), el("td", { "data-label": "Finished" }, when(a.finished_at)),
    el("td", { "data-label": "Duration", class: "num" }, a.duration_ms == null ? "–" : `${(a.duration_ms / 1000).toFixed(3)} s`),
    el("td", { "data-label": "Error" }, a.error || ""), el("td", { "data-label": "Invocation" }, a.invocation || "–"),
    el("td", { "data-label": "Traceback" }, a.traceback ? el("details", {}, el("summary", {}, "traceback"), el("pre", {}, a.traceback)) : ""))));
  $("task-traceback").textContent = t.traceback || "(none)";
  if (t.logs) {
    $("task-logs").textContent = `Log groups ${t.logs.log_groups}:\n${t.logs.insights_query}`;
    $("task-logs-console").href = t.logs.console_url;
  }
  showLogs(id, t.history || []);
  const revoke = $("task-revoke");
  revoke.hidden = !["PENDING", "RETRY", "STARTED"].includes(t.status);
  revoke.onclick = async () => {
    if (!window.confirm(`Revoke task ${id} (${t.name})? It will not run, or stops at its next check.`)) return;
    try { await call(`${API}tasks/${encodeURIComponent(id)}/revoke`, { method: "POST" }); flash("revoked"); showTask(id); } catch (error) { $("task-error").textContent = error.message; }
  };
  const rerun = $("task-rerun");
  rerun.hidden = !t.rerunnable;
  if (t.status === "FAILURE" && !t.rerunnable) $("task-error").textContent = "Failed permanently: running it again would fail the same way.";
  rerun.onclick = async () => {
    if (!window.confirm(`Run task ${id} (${t.name}) again as a new run?`)) return;
    try {
      const run = await call(`${API}tasks/${encodeURIComponent(id)}/rerun`, { method: "POST" });
      flash(`queued again as ${run.id}`);
      location.hash = `#/tasks/${encodeURIComponent(run.id)}`;
    } catch (error) { $("task-error").textContent = error.message; }
  };
}
function duration(t) {
  if (!t.started_at || !t.finished_at) return "";
  return `${((Date.parse(t.finished_at) - Date.parse(t.started_at)) / 1000).toFixed(3)} s (last attempt)`;
}

// Each attempt's lines from its invocation's log stream (GET …/logs?attempt=N), fetched when its
// <details> opens (the last attempt's opens by itself). Text only, never markup.
function showLogs(id, attempts) {
  const boxes = attempts.map((a) => {
    const out = el("pre", { class: "log-lines", "data-logs": a.number });
    const box = el("details", { "data-attempt-logs": a.number }, el("summary", {}, `Attempt ${a.number} (${a.outcome})`), out);
    let loaded = false;
    box.addEventListener("toggle", async () => {
      if (!box.open || loaded) return;
      loaded = true;
      out.textContent = "loading…";
      try {
        const got = await call(`${API}tasks/${encodeURIComponent(id)}/logs?attempt=${a.number}`);
        const lines = got.lines.map((l) => `${l.timestamp.replace(/\+00:00$/, "Z")} ${l.message}`);
        if (!got.available) lines.push(`(no lines: ${got.reason})`);
        else if (!lines.length) lines.push("(no lines found yet: CloudWatch Logs may still be receiving them)");
        if (got.truncated || !got.available) lines.push(`(more in CloudWatch: Logs Insights on ${got.log_group || "the workers' log groups"}: ${got.insights.insights_query})`);
        out.textContent = lines.join("\n");
      } catch (error) { loaded = false; out.textContent = error.message; }
    });
    return box;
  });
  $("task-log-attempts").replaceChildren(...(boxes.length ? boxes : [el("p", {}, "No attempt has ended yet.")]));
  if (boxes.length) boxes[boxes.length - 1].open = true;
}
