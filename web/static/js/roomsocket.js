// roomsocket.js: the live-room websocket client (docs/protocol.md).
//
//   import { RoomSocket, RoomError } from "./roomsocket.js";
//   const room = new RoomSocket(streamId, {
//     token: () => sessionToken,        // called on each (re)connect; null = anonymous
//     onEvent: (ev) => {},               // every event in order: snapshot, resumed, chat, sale, ...
//     onState: (state, detail) => {},    // "connecting" | "open" | "reconnecting" | "closed"
//   });
//   room.connect();
//   await room.request({ type: "chat", text })   -> the ack / buy_result; rejects with RoomError
//                                                   {code, message, retryAfterMs, untilMs}
//   room.send({ type: "react", kind: "heart" })  -> fire and forget (false when not open)
//   await room.auth(token)                       -> auth_ok (after a guest signs in)
//   room.serverNow()                             -> Date.now() corrected to the server's clock
//   room.seq                                     -> the highest seq applied
//   room.close()
//
// Batches are unpacked; sequenced events at or below room.seq are dropped, so a replay after a
// reconnect never doubles anything. Reconnects back off (0.5 s .. 8 s) and resume with
// ?since=seq; the server answers "resumed" + the missed events, or a snapshot with resync: true
// (replace local state). A ping every 10 s that goes unanswered for 5 s counts as a lost link.
// Close codes 4001 (bad token: retried anonymously), 4003 (banned) and 4004 (no such stream)
// end the socket with state "closed" and detail {code}. A server that shuts down sends
// "server_restarting" {retry_after_ms} and closes with 1001: the reconnect waits that hint
// (spread per socket by the server) instead of the first back-off step, then resumes.

import { decode, encode } from "../vendor/msgpack.mjs";

export class RoomError extends Error {
  constructor(ev) {
    super(ev.message || ev.code);
    this.code = ev.code;
    this.retryAfterMs = ev.retry_after_ms || 0;
    this.untilMs = ev.until_ms || 0;
  }
}

const FINAL = new Set([4003, 4004]);
const PING_EVERY_MS = 10000;
const PONG_WITHIN_MS = 5000;
const REQUEST_TIMEOUT_MS = 10000;

export class RoomSocket {
  constructor(streamId, { token = () => null, onEvent = () => {}, onState = () => {} } = {}) {
    this.streamId = streamId;
    this.token = token;
    this.onEvent = onEvent;
    this.onState = onState;
    this.seq = 0;
    this.synced = false; // a snapshot was applied: later joins may resume with since
    this.offsetMs = 0;
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.nextRef = 1;
    this.pending = new Map();
    this.timers = {};
    this.stopped = false;
    this.anonymous = false;
    this.restartHintMs = null; // from server_restarting: when to come back
    addEventListener("offline", () => this._lost());
    addEventListener("online", () => this._reconnectNow());
  }

  connect() {
    this.stopped = false;
    clearTimeout(this.timers.retry);
    const base = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
    const since = this.synced ? `?since=${this.seq}` : "";
    const ws = new WebSocket(`${base}/ws/rooms/${encodeURIComponent(this.streamId)}${since}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this._setState(this.attempt ? "reconnecting" : "connecting");
    ws.onopen = () => {
      const t = this.anonymous ? null : this.token();
      // The token goes in an auth event, not the URL: URLs end up in logs and history.
      if (t) this._send({ type: "auth", token: t, ref: "auth" });
      this._startPing();
    };
    ws.onmessage = (m) => this._frame(m.data);
    ws.onclose = (e) => this._closed(ws, e.code);
    ws.onerror = () => {};
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timers.retry);
    this._stopPing();
    if (this.ws) this.ws.close(1000);
    this._setState("closed", { code: 1000 });
  }

  serverNow() {
    return Date.now() + this.offsetMs;
  }

  /** Learn the server clock from a server timestamp received just now. */
  syncClock(serverMs) {
    if (typeof serverMs === "number" && serverMs > 0) this.offsetMs = serverMs - Date.now();
  }

  send(ev) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.state !== "open") return false;
    this._send(ev);
    return true;
  }

  request(ev, timeoutMs = REQUEST_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      if (this.state !== "open") {
        reject(new RoomError({ code: "offline", message: "not connected" }));
        return;
      }
      const ref = `r${this.nextRef++}`;
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new RoomError({ code: "timeout", message: "no answer" }));
      }, timeoutMs);
      this.pending.set(ref, { resolve, reject, timer });
      this._send({ ...ev, ref });
    });
  }

  auth(token) {
    this.anonymous = false;
    const p = this.request({ type: "auth", token });
    this.authRef = `r${this.nextRef - 1}`; // auth_ok carries no ref: matched by this instead
    return p;
  }

  _send(ev) {
    this.ws.send(encode(ev));
  }

  _setState(state, detail = {}) {
    if (this.state === state && state !== "closed") return;
    this.state = state;
    this.onState(state, detail);
  }

  _frame(data) {
    let msg;
    try {
      msg = decode(new Uint8Array(data));
    } catch {
      return;
    }
    const events = msg && msg.type === "batch" ? msg.events : [msg];
    for (const ev of events) this._event(ev);
  }

  _event(ev) {
    if (!ev || typeof ev.type !== "string") return;
    const t = ev.type;
    if (t === "snapshot") {
      this.seq = ev.seq || 0;
      this.synced = true;
      // Only fresh stamps set the clock: a replayed sale event's server_time_ms is old.
      if (ev.sale && ev.sale.server_time_ms) this.syncClock(ev.sale.server_time_ms);
      this._opened();
      this.onEvent(ev);
      return;
    }
    if (t === "resumed") {
      this._opened();
      this.onEvent(ev);
      return;
    }
    if (t === "pong") {
      clearTimeout(this.timers.pong);
      // The server stamped its clock about halfway through the round trip.
      const now = Date.now();
      const sent = typeof ev.t === "number" && ev.t <= now ? ev.t : now;
      if (typeof ev.server_ms === "number") this.offsetMs = ev.server_ms - (sent + now) / 2;
      return;
    }
    if (t === "server_restarting") {
      const hint = Number(ev.retry_after_ms);
      this.restartHintMs = Number.isFinite(hint) ? Math.min(Math.max(hint, 0), 30000) : 1000;
    }
    if (t === "auth_ok" && this.authRef && this.pending.has(this.authRef)) {
      ev = { ...ev, ref: this.authRef };
      this.authRef = null;
    }
    if (typeof ev.seq === "number" && t !== "ack") {
      if (ev.seq <= this.seq) return; // already applied (snapshot or replay)
      this.seq = ev.seq;
    }
    if (ev.ref !== undefined && this.pending.has(String(ev.ref))) {
      const p = this.pending.get(String(ev.ref));
      this.pending.delete(String(ev.ref));
      clearTimeout(p.timer);
      if (t === "error") p.reject(new RoomError(ev));
      else p.resolve(ev);
      if (t === "ack" || t === "error") return;
    }
    if (t === "error" && ev.ref === "auth" && ev.code === "unauthorized") {
      this.anonymous = true; // a stale token: keep watching without it
    }
    this.onEvent(ev);
  }

  _opened() {
    this.attempt = 0;
    this._setState("open");
  }

  _startPing() {
    this._stopPing();
    this.timers.ping = setInterval(() => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      this._send({ type: "ping", t: Date.now() });
      clearTimeout(this.timers.pong);
      this.timers.pong = setTimeout(() => this._lost(), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  _stopPing() {
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.pong);
  }

  _lost() {
    // The link is gone even if the browser has not noticed: drop the socket and start over.
    if (this.stopped || !this.ws) return;
    const ws = this.ws;
    try {
      ws.close(4000);
    } catch {
      /* already closing */
    }
    this._closed(ws, 1006);
  }

  _reconnectNow() {
    if (this.stopped || this.state === "open" || this.state === "closed") return;
    this.attempt = Math.max(this.attempt, 1);
    clearTimeout(this.timers.retry);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(4000);
    this.connect();
  }

  _closed(ws, code) {
    if (ws !== this.ws) return; // an older socket finishing its close
    this.ws = null;
    this._stopPing();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new RoomError({ code: "disconnected", message: "connection lost" }));
    }
    this.pending.clear();
    if (this.stopped) return;
    if (FINAL.has(code)) {
      this.stopped = true;
      this._setState("closed", { code });
      return;
    }
    if (code === 4001) this.anonymous = true;
    this.attempt += 1;
    this._setState("reconnecting", { code });
    let delay = Math.min(8000, 500 * 2 ** (this.attempt - 1)) * (0.75 + Math.random() / 2);
    if (this.restartHintMs !== null) {
      delay = this.restartHintMs; // the server spread its room's returns; resume with since
      this.restartHintMs = null;
    }
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }
}
