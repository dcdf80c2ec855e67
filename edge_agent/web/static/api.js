// The agent's JSON API, with the session's CSRF token on every change.
import { page } from "./store.js";

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function get(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const r = await fetch(path + query, { cache: "no-store", credentials: "same-origin" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, body.error || `HTTP ${r.status}`);
  return body;
}

// Answers [status, body]: a refusal is shown to the person, not thrown.
export async function post(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (page.me.csrf) headers["X-CSRF-Token"] = page.me.csrf;
  try {
    const r = await fetch(path, {
      method: "POST", headers, body: JSON.stringify(body || {}), credentials: "same-origin",
    });
    return [r.status, await r.json().catch(() => ({}))];
  } catch (error) {
    return [0, { error: String(error) }];
  }
}
