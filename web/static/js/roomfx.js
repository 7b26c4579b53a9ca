// roomfx.js: the room's passing effects: floating hearts and "someone just bought" toasts.
//
//   const fx = new RoomEffects(heartsEl, toastsEl);
//   fx.hearts(n)            float n hearts up the right edge (none with prefers-reduced-motion)
//   fx.toast(text)          queue a toast; at most one shows every 2 s, later ones coalesce

const TOAST_EVERY_MS = 2000;
const TOAST_SHOWN_MS = 2600;
const MAX_HEARTS = 24;
const HEART_COLOURS = ["#ff4d6d", "#ff8fab", "#ff9f43", "#f472b6", "#ef4444"];

export class RoomEffects {
  constructor(heartsEl, toastsEl) {
    this.heartsEl = heartsEl;
    this.toastsEl = toastsEl;
    this.reduced = matchMedia("(prefers-reduced-motion: reduce)");
    this.nextToastAt = 0;
    this.queued = null;
    this.timer = null;
  }

  hearts(n) {
    if (this.reduced.matches) return;
    const room = MAX_HEARTS - this.heartsEl.childElementCount;
    for (let i = 0; i < Math.min(n, room, 8); i++) {
      const h = document.createElement("span");
      h.className = "heart icon icon-heart";
      h.style.color = HEART_COLOURS[Math.floor(Math.random() * HEART_COLOURS.length)];
      h.style.setProperty("--drift", `${Math.round(Math.random() * 40 - 20)}px`);
      h.style.animationDelay = `${i * 120}ms`;
      h.addEventListener("animationend", () => h.remove());
      this.heartsEl.append(h);
    }
  }

  toast(text) {
    this.queued = text; // a newer sale supersedes one still waiting: freshest news wins
    const wait = this.nextToastAt - Date.now();
    if (wait <= 0) this._show();
    else if (!this.timer) this.timer = setTimeout(() => this._show(), wait);
  }

  _show() {
    this.timer = null;
    if (this.queued === null) return;
    const el = document.createElement("p");
    el.className = "toast";
    el.textContent = this.queued;
    this.queued = null;
    this.nextToastAt = Date.now() + TOAST_EVERY_MS;
    this.toastsEl.replaceChildren(el);
    setTimeout(() => el.classList.add("leaving"), TOAST_SHOWN_MS - 300);
    setTimeout(() => el.remove(), TOAST_SHOWN_MS);
  }
}
