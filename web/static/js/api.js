// api.js: the page's bearer token and a fetch wrapper with JSON errors.
//
//   import { api, ApiError, token, who, setSession, clearSession, signInFromUrl, guestSignIn } from "./api.js";
//   await api("/api/streams")                          -> parsed JSON (GET)
//   await api("/api/sales/3/buy", { method: "POST", body: {qty: 1}, idempotencyKey: k })
//        throws ApiError { status, code, message, retryAfterMs, field } for any non-2xx or
//        network failure (status 0, code "network"); `field` names the input at fault, or null.
//   token()  -> the token in sessionStorage["livesell.token"], or null
//   who()    -> { user_id, role, name } from the token's claims, or null
//   setSession(token) / clearSession()
//   await signInFromUrl() -> who() after taking ?code= (one-time login code, exchanged with
//        POST /api/login) or #token= (a shop's own token) from the URL; both are then removed
//        from the address bar with history.replaceState. Returns null when neither is there.
//   await guestSignIn(name) -> who() after POST /api/guest.
//   ids.idempotencyKey() -> a fresh random key for a buy.

const KEY = "livesell.token";

export class ApiError extends Error {
  constructor(status, code, message, retryAfterMs = 0, field = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
    this.field = field;
  }
}

export function token() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

function claims(t) {
  try {
    const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0)));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

export function who() {
  const t = token();
  const c = t && claims(t);
  if (!c || (c.exp && c.exp * 1000 < Date.now())) return null;
  return { user_id: c.sub, role: c.role || "viewer", name: c.name || c.sub };
}

export function setSession(t) {
  sessionStorage.setItem(KEY, t);
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

export async function api(path, { method = "GET", body, headers = {}, idempotencyKey } = {}) {
  const h = { ...headers };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (idempotencyKey) h["Idempotency-Key"] = idempotencyKey;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", String(e && e.message ? e.message : e));
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const retry = Number(resp.headers.get("Retry-After") || 0) * 1000;
    throw new ApiError(
      resp.status,
      (data && data.error) || `http_${resp.status}`,
      (data && data.message) || resp.statusText,
      retry,
      (data && typeof data.field === "string" && data.field) || null,
    );
  }
  return data;
}

export async function signInFromUrl() {
  const url = new URL(location.href);
  const code = url.searchParams.get("code");
  const frag = new URLSearchParams(url.hash.slice(1));
  const shopToken = frag.get("token");
  if (!code && !shopToken) return null;
  // Strip the secret from the address bar (and history) before anything else can read it.
  url.searchParams.delete("code");
  frag.delete("token");
  url.hash = frag.toString();
  history.replaceState(null, "", url.pathname + url.search + url.hash);
  if (shopToken) {
    setSession(shopToken);
    return who();
  }
  const res = await api("/api/login", { method: "POST", body: { code } });
  setSession(res.token);
  return who();
}

export async function guestSignIn(name) {
  const res = await api("/api/guest", { method: "POST", body: { name } });
  setSession(res.token);
  return who();
}

export const ids = {
  idempotencyKey() {
    const b = crypto.getRandomValues(new Uint8Array(12));
    return "k" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  },
};
