// Queue consumer controls (pause/resume, maximum concurrency) and the audit log view.
import { $, el, flash, when } from "./dom.js";
import { API, call } from "./api.js";

// Rows are made once per queue and then only updated, so focus and typed values survive the refresh.
export function renderControls(queues) {
  const body = $("controls-body");
  for (const q of queues) {
    let row = body.querySelector(`tr[data-queue="${CSS.escape(q.queue)}"]`);
    if (!row) {
      const input = el("input", { type: "number", min: "2", max: "1000", step: "1", "aria-label": `maximum concurrency of ${q.queue}`, class: "concurrency" });
      input.value = q.max_concurrency;
      row = el("tr", { "data-queue": q.queue },
        el("td", { "data-label": "Queue" }, q.queue), el("td", { "data-label": "Consumers", class: "state" }),
        el("td", { "data-label": "" }, el("button", { type: "button", class: "toggle", onclick: () => toggle(q.queue, row) })),
        el("td", { "data-label": "Max concurrency" }, input, " ", el("button", { type: "button", class: "set-concurrency", onclick: () => resize(q.queue, input) }, "Set")));
      body.append(row);
    }
    row.dataset.paused = q.paused ? "true" : "false";
    row.querySelector(".state").textContent = q.paused ? "paused" : `running, max ${q.max_concurrency}`;
    row.querySelector(".toggle").textContent = q.paused ? "Resume" : "Pause";
    const input = row.querySelector("input");
    if (document.activeElement !== input && !input.dataset.edited) input.value = q.max_concurrency;
    input.oninput = () => { input.dataset.edited = "1"; };
  }
}
async function toggle(queue, row) {
  const pause = row.dataset.paused !== "true";
  if (!window.confirm(pause ? `Pause the consumers of ${queue}? Its messages wait in the queue until you resume.` : `Resume the consumers of ${queue}?`)) return;
  try {
    const r = await call(`${API}queues/${queue}/${pause ? "pause" : "resume"}`, { method: "POST" });
    row.dataset.paused = r.paused ? "true" : "false";
    row.querySelector(".state").textContent = r.paused ? "paused" : `running, max ${r.max_concurrency}`;
    row.querySelector(".toggle").textContent = r.paused ? "Resume" : "Pause";
    flash(`${queue}: ${r.paused ? "paused" : "resumed"}`);
  } catch (error) { flash(error.message); }
}
async function resize(queue, input) {
  const value = Number(input.value);
  if (!window.confirm(`Set the maximum concurrency of ${queue} to ${value}?`)) return;
  try {
    const r = await call(`${API}queues/${queue}/concurrency`, { method: "PUT", json: { max_concurrency: value } });
    delete input.dataset.edited;
    flash(`${queue}: maximum concurrency ${r.max_concurrency}`);
  } catch (error) { flash(error.message); }
}

export async function showAudit() {
  let data;
  try { data = await call(`${API}audit`); } catch (error) { $("audit-error").textContent = error.message; return; }
  $("audit-error").textContent = "";
  $("audit-body").replaceChildren(...data.items.map((e) => el("tr", {},
    el("td", { "data-label": "When" }, when(e.at)), el("td", { "data-label": "Who" }, e.user), el("td", { "data-label": "What" }, e.action),
    el("td", { "data-label": "Target" }, e.target), el("td", { "data-label": "Detail" }, e.detail || ""))));
}
