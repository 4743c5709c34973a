// Line charts in SVG, no library: one path per name, time on x.
export const COLORS = ["#2456c7", "#c2410c", "#047857", "#7c3aed", "#b42318", "#0e7490"];

export function drawChart(svg, names, series, windowMs) {
  const W = 600, H = 160, L = 40, B = 18, ns = "http://www.w3.org/2000/svg";
  const now = Date.now();
  const start = Math.max(now - windowMs, series.length ? series[0].t : now - 60000);
  const span = Math.max(now - start, 1000);
  const max = Math.max(1, ...series.flatMap((p) => names.map((n) => p.v[n] || 0)));
  const x = (t) => L + ((t - start) / span) * (W - L - 5);
  const y = (v) => H - B - (v / max) * (H - B - 8);
  const node = (tag, attrs, text) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text != null) n.textContent = text; return n; };
  const parts = [node("line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }), node("line", { class: "axis", x1: L, y1: 4, x2: L, y2: H - B }),
    node("text", { x: 2, y: 12 }, Number.isInteger(max) ? max : max.toFixed(1)), node("text", { x: 2, y: H - B }, "0"),
    node("text", { x: L, y: H - 4 }, span >= 60000 ? `-${Math.round(span / 60000)} min` : `-${Math.round(span / 1000)} s`), node("text", { x: W - 30, y: H - 4 }, "now")];
  names.forEach((n, i) => {
    if (series.length === 0) return;
    const d = series.map((p, j) => `${j ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v[n] || 0).toFixed(1)}`).join(" ");
    parts.push(node("path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 2, "data-queue": n }));
  });
  svg.replaceChildren(...parts);
}
