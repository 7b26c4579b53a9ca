// studio-chat.js: the room's chat as the host sees it, with moderation inline: each message has
// a menu (delete, mute, ban, make moderator); below, slow mode, the announcement and banned
// words. Everything goes over the room socket; user text is rendered with textContent only.

import { $, button, el, show } from "./dom.js";
import { errorText, t, time } from "./i18n.js";

const KEEP = 200;
const MUTE_S = 300;

export class ChatDesk {
  constructor({ request, me }) {
    this.request = request;
    this.me = me;
    this.names = new Map(); // user id -> display name, for moderation lines
    this.list = $("chat");
    $("chat-form").addEventListener("submit", (ev) => this._send(ev));
    $("slow-mode").addEventListener("change", () =>
      this._do({ type: "slow_mode", seconds: Number($("slow-mode").value) }),
    );
    $("announce-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._do({ type: "announce", text: $("announce-input").value.trim() });
    });
    $("announce-clear").addEventListener("click", () => {
      $("announce-input").value = "";
      this._do({ type: "announce", text: "" });
    });
    $("words-form").addEventListener("submit", (ev) => this._saveWords(ev));
  }

  connection(state, detail) {
    const badge = $("chat-conn");
    if (state === "open") {
      show(badge, false);
      return;
    }
    const key = state === "closed" && detail.code === 4004 ? "studio.chat.gone" : "studio.chat.reconnecting";
    badge.textContent = t(key);
    badge.className = "badge badge-warn";
    show(badge, state !== "connecting");
  }

  relabel() {
    for (const li of this.list.querySelectorAll("li[data-seq]")) {
      const summary = li.querySelector("summary");
      if (summary) summary.setAttribute("aria-label", t("studio.chat.actions", { name: li.dataset.name }));
    }
  }

  onEvent(ev) {
    switch (ev.type) {
      case "snapshot":
        this.list.replaceChildren();
        for (const m of ev.messages || []) this._add(m);
        $("slow-mode").value = String(ev.slow_mode_s || 0);
        if (ev.announcement) $("announce-input").value = ev.announcement.text || "";
        break;
      case "chat":
        this._add(ev);
        break;
      case "deleted":
        this.list.querySelector(`li[data-seq="${Number(ev.target)}"]`)?.remove();
        break;
      case "moderation":
        this._system(t(`studio.mod.did.${ev.action}`, { name: this.names.get(ev.user_id) || ev.user_id }));
        break;
      case "announcement":
        if (ev.text) this._system(t("studio.mod.announced", { text: ev.text }), "announce");
        break;
      case "slow_mode":
        $("slow-mode").value = String(ev.seconds);
        break;
      default:
    }
  }

  _stick() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
  }

  _append(li) {
    const stick = this._stick();
    this.list.append(li);
    show($("chat-empty"), false);
    while (this.list.children.length > KEEP) this.list.firstElementChild.remove();
    if (stick) this.list.scrollTop = this.list.scrollHeight;
  }

  _system(text, cls = "") {
    this._append(el("li", `sys ${cls}`.trim(), text));
  }

  _add(m) {
    this.names.set(m.user_id, m.name);
    const li = el("li", `msg role-${m.role || "viewer"}`);
    li.dataset.seq = String(m.seq);
    li.dataset.name = m.name;
    const head = el("div", "msg-head");
    const name = el("span", "msg-name", m.name);
    head.append(name);
    if (m.role === "host") head.append(el("span", "badge badge-role", t("room.chat.host")));
    if (m.role === "moderator") head.append(el("span", "badge badge-role", t("room.chat.mod")));
    const when = el("time", "msg-time muted", m.at_ms ? time(m.at_ms) : "");
    head.append(when);
    const text = el("p", "msg-text", m.text);
    li.append(head, text);
    if (m.user_id !== this.me.user_id && m.role !== "host") li.append(this._menu(m));
    this._append(li);
  }

  _menu(m) {
    const d = el("details", "msg-menu");
    const s = el("summary", "btn btn-ghost btn-small", "⋯");
    s.setAttribute("aria-label", t("studio.chat.actions", { name: m.name }));
    const menu = el("div", "menu");
    const act = (key, ev) =>
      button(t(key), "btn-small btn-ghost", async () => {
        d.open = false;
        await this._do(ev);
      });
    menu.append(
      act("studio.mod.delete", { type: "delete", seq: m.seq }),
      act("studio.mod.mute", { type: "mute", user_id: m.user_id, seconds: MUTE_S }),
      act("studio.mod.ban", { type: "ban", user_id: m.user_id }),
    );
    if (m.role !== "moderator") menu.append(act("studio.mod.promote", { type: "promote", user_id: m.user_id }));
    else menu.append(act("studio.mod.demote", { type: "demote", user_id: m.user_id }));
    d.append(s, menu);
    return d;
  }

  async _do(ev) {
    $("mod-error").textContent = "";
    try {
      await this.request(ev);
      return true;
    } catch (e) {
      $("mod-error").textContent = t("studio.mod.failed", { message: errorText(e) });
      return false;
    }
  }

  async _send(ev) {
    ev.preventDefault();
    const input = $("chat-input");
    const text = input.value.trim();
    if (!text) return;
    try {
      await this.request({ type: "chat", text });
      input.value = "";
      $("chat-error").textContent = "";
    } catch (e) {
      $("chat-error").textContent = t("room.chat.notSent", { reason: errorText(e) });
    }
  }

  async _saveWords(ev) {
    ev.preventDefault();
    const words = $("words-input")
      .value.split(/[\n,]/)
      .map((w) => w.trim())
      .filter(Boolean);
    if (await this._do({ type: "banned_words", words })) {
      $("words-saved").textContent = t("studio.mod.wordsSaved", { count: words.length });
    }
  }
}
