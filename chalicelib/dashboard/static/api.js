// The dashboard's JSON API: same-origin cookie session, CSRF token on every POST/PUT.
let csrf = "";
let onSignedOut = () => {};

export const API = "dashboard/api/";
export const setCsrf = (token) => { csrf = token; };
export const hasSession = () => csrf !== "";
export const whenSignedOut = (handler) => { onSignedOut = handler; };

export async function call(path, options = {}) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
  if (init.method === "POST" || init.method === "PUT") {
    init.headers = { ...init.headers, "Content-Type": "application/json", "X-CSRF-Token": csrf };
    init.body = JSON.stringify(options.json || {});
  }
  const response = await fetch(path, init);
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 && path !== "dashboard/login") { onSignedOut(); throw new Error(body.message || "signed out"); }
  if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
  return body;
}
