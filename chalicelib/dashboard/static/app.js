// Bookshelf dashboard: plain DOM and SVG, ES modules, no build step. Data only via textContent (never innerHTML).
import { $, el, flash, iso, num, when } from "./dom.js";
import { API, call, hasSession, setCsrf, whenSignedOut } from "./api.js";
import { showTask, showTasks, taskLink } from "./tasks.js";
import { COLORS, drawChart } from "./chart.js";
import { showStats } from "./stats.js";
import { renderControls, showAudit } from "./controls.js";

{
  const WINDOW_MS = 60 * 60 * 1000;
  const HISTORY_KEY = "bookshelf-dashboard-history";
  const RECEIVES_NOTE = "How often its queue delivered the message before it was dead-lettered (looking at this list does not count).";
  let stopView = null;

  // ------------------------------------------------------------ session
  function showLogin() {
    stop();
    setCsrf("");
    document.querySelectorAll("main > section").forEach((s) => { s.hidden = s.id !== "login"; });
    $("nav").hidden = true; $("logout").hidden = true; $("who").textContent = "";
  }
  function signedIn(session) {
    setCsrf(session.csrf_token);
    $("login").hidden = true; $("nav").hidden = false; $("logout").hidden = false;
    $("who").textContent = `signed in as ${session.user}`;
    route();
  }
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      const session = await call("dashboard/login", { method: "POST", json: { key: $("key").value } });
      $("key").value = "";
      signedIn(session);
    } catch (error) { $("login-error").textContent = error.message; }
  });
  $("logout").addEventListener("click", async () => { await call("dashboard/logout", { method: "POST" }).catch(() => {}); showLogin(); });

  // ------------------------------------------------------------ routing
  function stop() { if (stopView) stopView(); stopView = null; }
  function show(id) {
    document.querySelectorAll("main > section").forEach((s) => { s.hidden = s.id !== id; });
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", location.hash.startsWith(a.getAttribute("href"))));
  }
  function route() {
    if (!hasSession()) return;
    stop();
    const [path, search] = (location.hash.slice(1) || "/queues").split("?");
    const params = new URLSearchParams(search || "");
    if (path.startsWith("/tasks/")) { show("view-task"); return showTask(decodeURIComponent(path.slice(7))); }
    if (path === "/tasks") { show("view-tasks"); stopView = showTasks(params); return; }
    if (path === "/dead-letters") return showDeadLetters();
    if (path === "/audit") { show("view-audit"); return showAudit(); }
    if (path === "/stats") { show("view-stats"); stopView = showStats(params); return; }
    if (path === "/workers") return poll("view-workers", loadWorkers, 5000);
    return poll("view-queues", loadQueues, 3000);
  }
  function poll(view, load, every) {
    show(view);
    load();
    const timer = setInterval(load, every);
    stopView = () => clearInterval(timer);
  }
  window.addEventListener("hashchange", route);

  // ------------------------------------------------------------ queues
  function history() {
    try { return JSON.parse(sessionStorage.getItem(HISTORY_KEY)) || []; } catch { return []; }
  }
  async function loadQueues() {
    let data;
    try { data = await call(API + "queues"); } catch (error) { flash(error.message); return; }
    const body = $("queues-body");
    body.replaceChildren(...data.queues.map((q) => el("tr", { "data-queue": q.queue },
      el("td", {}, q.queue), num(q.visible), num(q.in_flight), num(q.delayed), num(q.oldest_age_seconds),
      num(q.max_concurrency), num(q.batch_size), num(q.dead_letter.visible), num(q.dead_letter.in_flight),
      num(q.dead_letter.oldest_age_seconds))));
    renderControls(data.queues);
    $("schedules-body").replaceChildren(...(data.schedules || []).map((p) => el("tr", { "data-schedule": p.name },
      el("td", {}, p.name), el("td", {}, p.schedule), el("td", {}, p.running ? "yes" : "no"), num(p.runs), num(p.skipped),
      el("td", {}, when(p.last_run_at)), el("td", {}, p.last_status || "–"), el("td", {}, p.last_error || ""))));
    const now = Date.now();
    // Minute points kept server-side (they survive a reload or another browser), then this
    // tab's own samples every few seconds since it opened.
    const samples = history().filter((p) => now - p.t < WINDOW_MS);
    samples.push({ t: now, d: Object.fromEntries(data.queues.map((q) => [q.queue, q.visible + q.in_flight + q.delayed])) });
    sessionStorage.setItem(HISTORY_KEY, JSON.stringify(samples));
    const kept = (data.depth_series || []).map((p) => ({ t: Date.parse(p.t), d: p.depths })).filter((p) => p.t < samples[0].t);
    const points = [...kept, ...samples];
    const names = data.queues.map((q) => q.queue);
    drawChart($("chart-depth"), names, points.map((p) => ({ t: p.t, v: p.d })), WINDOW_MS);
    drawChart($("chart-rate"), names, rates(points, names), WINDOW_MS);
    $("legend").replaceChildren(...names.map((n, i) => el("span", { class: `c${i % COLORS.length}` }, `■ ${n}  `)));
    $("queues-updated").textContent = `updated ${iso(now)}`;
    $("depth-source").textContent = data.depth_source === "cloudwatch" ? "CloudWatch AWS/SQS, maximum per minute" : "DynamoDB, a point per minute";
  }
  // Messages leaving a queue per second, estimated from the fall of its depth between two samples
  // (SQS has no delete counter without CloudWatch; a queue that fills while it drains shows less).
  function rates(points, names) {
    const out = [];
    for (let i = 1; i < points.length; i++) {
      const dt = (points[i].t - points[i - 1].t) / 1000;
      if (dt <= 0) continue;
      out.push({ t: points[i].t, v: Object.fromEntries(names.map((n) => [n, Math.max(0, ((points[i - 1].d[n] || 0) - (points[i].d[n] || 0)) / dt)])) });
    }
    return out;
  }
  // ------------------------------------------------------------ dead letters
  async function showDeadLetters() {
    show("view-dead-letters");
    $("dl-error").textContent = "";
    let overview;
    try { overview = await call(API + "queues"); } catch (error) { $("dl-error").textContent = error.message; return; }
    const boxes = await Promise.all(overview.queues.map((q) => deadLetterBox(q.queue)));
    $("dl-queues").replaceChildren(...boxes);
  }
  async function deadLetterBox(queue) {
    const box = el("div", { class: "dlq", "data-queue": queue });
    let data;
    try { data = await call(`${API}queues/${queue}/dead-letters?limit=20`); } catch (error) { box.append(el("p", { class: "error" }, error.message)); return box; }
    const redrive = el("button", { type: "button", class: "redrive", onclick: async () => {
      if (!window.confirm(`Send every dead letter of ${queue} back to its queue?`)) return;
      try { const r = await call(`${API}queues/${queue}/redrive`, { method: "POST" }); flash(`redrive of ${queue}: ${r.moved ?? r.method}`); showDeadLetters(); } catch (error) { $("dl-error").textContent = error.message; }
    } }, `Redrive ${queue}`);
    const rows = data.items.map((m) => el("tr", { "data-message": m.message_id },
      el("td", {}, taskLink(m.task_id)), el("td", {}, m.task), el("td", {}, m.failure_reason || "(moved by the redrive policy)"),
      num(m.receive_count), el("td", {}, m.sent_at ? when(m.sent_at * 1000) : ""),
      el("td", {}, el("button", { type: "button", class: "redrive-one", onclick: () => redriveOne(queue, m) }, "Redrive"), " ",
        el("button", { type: "button", class: "danger purge", onclick: () => purge(queue, m) }, "Purge"))));
    box.append(el("h3", {}, `${queue}: ${data.dead_letter_queue}`),
      el("p", { class: "dl-count" }, `${data.visible} visible, ${data.in_flight} in flight`), redrive,
      el("table", {}, el("thead", {}, el("tr", {}, ...[["Task"], ["Name"], ["Reason"], ["Receives", RECEIVES_NOTE], ["Sent (UTC)"], [""]].map(([h, title]) => el("th", title ? { title } : {}, h)))), el("tbody", {}, ...rows)));
    return box;
  }
  async function redriveOne(queue, message) {
    if (!window.confirm(`Send the dead letter of task ${message.task_id} back to ${queue}?`)) return;
    try { await call(`${API}queues/${queue}/dead-letters/redrive`, { method: "POST", json: { message_id: message.message_id } }); flash("redriven"); showDeadLetters(); } catch (error) { $("dl-error").textContent = error.message; }
  }
  async function purge(queue, message) {
    if (!window.confirm(`Delete the dead letter of task ${message.task_id} for good? It cannot be redriven afterwards.`)) return;
    try { await call(`${API}queues/${queue}/dead-letters/purge`, { method: "POST", json: { message_id: message.message_id } }); flash("purged"); showDeadLetters(); } catch (error) { $("dl-error").textContent = error.message; }
  }

  // ------------------------------------------------------------ workers
  async function loadWorkers() {
    let data;
    try { data = await call(API + "workers"); } catch (error) { flash(error.message); return; }
    const source = data.source === "cloudwatch" ? `CloudWatch, last ${data.window_minutes} min (timeouts, warm sandboxes: not exposed by AWS; – is no data)` : "local runtime counters";
    $("workers-note").textContent = data.available ? `${source}, updated ${iso(data.updated_at) || "?"}` : `Not available: ${data.reason}`;
    $("workers-body").replaceChildren(...Object.entries(data.functions || {}).map(([name, f]) => el("tr", { "data-function": name },
      el("td", {}, name), el("td", {}, f.queue || ""), num(f.in_use == null ? null : `${f.in_use} / ${f.max_concurrency ?? "–"}`),
      num(f.invocations), num(f.errors), num(f.timeouts), num(f.throttles), num(f.cold_starts),
      num(f.p50_ms == null ? null : f.p50_ms.toFixed(1)), num(f.p95_ms == null ? null : f.p95_ms.toFixed(1)),
      num(f.warm_sandboxes), num(f.memory_mb), num(f.timeout_seconds))));
  }

  // ------------------------------------------------------------ start
  whenSignedOut(showLogin);
  call(API + "session").then(signedIn, () => showLogin());
}
