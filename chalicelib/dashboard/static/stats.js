// Statistics per task name (1 h / 24 h / 7 d) and the outcome chart, from the server's series
// (DynamoDB buckets under `make run`, CloudWatch when deployed: `data.source`).
import { $, el, num } from "./dom.js";
import { API, call } from "./api.js";
import { COLORS, drawChart } from "./chart.js";

const OUTCOMES = ["succeeded", "failed", "retried", "revoked"];
const SPAN = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
const ms = (v) => (v == null ? null : v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${v} ms`);

export function showStats(params) {
  const chosen = SPAN[params.get("window")] ? params.get("window") : "1h";
  $("stats-window").value = chosen;
  $("stats-window").onchange = () => { location.hash = `#/stats?window=${$("stats-window").value}`; };
  async function load() {
    let data;
    try { data = await call(`${API}stats?window=${chosen}`); } catch (error) { $("stats-error").textContent = error.message; return; }
    $("stats-error").textContent = "";
    $("stats-body").replaceChildren(...Object.entries(data.tasks).map(([name, s]) => el("tr", { "data-name": name },
      el("td", { "data-label": "Task" }, el("a", { href: `#/tasks?name=${encodeURIComponent(name)}` }, name)),
      ...["processed", ...OUTCOMES].map((k) => { const c = num(s[k]); c.dataset.label = k; c.dataset.stat = k; return c; }),
      ...["runtime_p50_ms", "runtime_p95_ms", "runtime_max_ms"].map((k) => { const c = num(ms(s[k])); c.dataset.label = k.split("_")[1]; return c; }))));
    const series = data.series.map((p) => ({ t: Date.parse(p.t.length === 13 ? `${p.t}:00:00Z` : `${p.t}:00Z`), v: p }));
    drawChart($("chart-outcomes"), OUTCOMES, series, SPAN[chosen]);
    $("stats-legend").replaceChildren(...OUTCOMES.map((n, i) => el("span", { class: `c${i % COLORS.length}` }, `■ ${n}  `)));
    const source = data.source === "cloudwatch" ? "CloudWatch (the workers' EMF metrics); runtimes exact" : "DynamoDB buckets; runtimes are histogram estimates (within ×1.41)";
    $("stats-note").textContent = data.reason ? `Not available: ${data.reason}` : `per ${data.bucket}, from ${source}`;
  }
  load();
  const timer = setInterval(load, 10000);
  return () => clearInterval(timer);
}
