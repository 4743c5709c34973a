// DOM helpers shared by the views: data only via textContent (never innerHTML).
export const $ = (id) => document.getElementById(id);

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child == null ? "" : String(child)));
  return node;
}
export const num = (v) => el("td", { class: "num" }, v == null ? "–" : v);

// Every time on the page in one form: ISO 8601 UTC to the second (never the browser's local 12-hour clock).
export const iso = (v) => {
  if (v == null || v === "") return "";
  const moment = new Date(typeof v === "number" ? v : String(v));
  return Number.isNaN(moment.getTime()) ? String(v) : moment.toISOString().replace(/\.\d{3}Z$/, "Z");
};
// How long ago, in the largest whole unit ("42 s", "3 min", "5 h", "2 d").
export function age(v) {
  const ms = Date.now() - new Date(typeof v === "number" ? v : String(v)).getTime();
  if (Number.isNaN(ms)) return "";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
// A time as shown everywhere: the ISO UTC form, and its age beside it.
export const when = (v) => (v ? el("span", { class: "when" }, el("time", { datetime: iso(v) }, iso(v)), " ", el("small", { class: "age" }, age(v))) : "");
export const abbrev = (text, n = 48) => { const s = text == null ? "" : String(text); return s.length > n ? `${s.slice(0, n - 1)}…` : s; };

export function flash(text) {
  $("flash").textContent = text;
  setTimeout(() => { if ($("flash").textContent === text) $("flash").textContent = ""; }, 4000);
}
