// studio-social.js: the studio's group buys and coupon drops on the current sale, and figures.
//
//   const desk = new SocialDesk({ streamId, hostId, sale: () => shop.sale, currency, serverNow });
//   desk.onEvent(ev)   snapshot (group_offers, groups, coupon) and group / coupon room events
//   desk.poll()        the leaderboard, the member count and the drop's claims (with the stats)
//
// Groups draw their units from the sale's own stock (docs/social.md), so the offer has no stock
// of its own: the sale's quantity is the ceiling of flash and group units together.

import { api } from "./api.js";
import { $, el, show } from "./dom.js";
import { clock, errorText, money, number, t } from "./i18n.js";

const toCents = (v) => Math.round(parseFloat(v) * 100);

export class SocialDesk {
  constructor({ streamId, hostId, sale, currency, serverNow }) {
    this.streamId = streamId;
    this.hostId = hostId;
    this.sale = sale;
    this.currency = currency;
    this.serverNow = serverNow;
    this.offers = new Map(); // sale id -> offer
    this.groups = new Map(); // group id -> state
    this.drops = new Map(); // drop id -> drop (with left)
    $("group-form").addEventListener("submit", (ev) => this.offer(ev));
    $("coupon-form").addEventListener("submit", (ev) => this.drop(ev));
    $("cf-kind").addEventListener("change", () => this.relabel());
    setInterval(() => this.render(), 500);
    this.relabel();
  }

  onEvent(ev) {
    if (ev.type === "snapshot") {
      for (const o of ev.group_offers || []) this.offers.set(o.sale_id, o);
      for (const g of ev.groups || []) this.groups.set(g.id, g.state);
      if (ev.coupon) this.drops.set(ev.coupon.id, ev.coupon);
    } else if (ev.type === "group") {
      if (ev.phase === "offer" && ev.offer) this.offers.set(ev.offer.sale_id, ev.offer);
      else if (ev.group) this.groups.set(ev.group.id, ev.group.state);
    } else if (ev.type === "coupon") {
      this.drops.set(ev.coupon.id, { ...this.drops.get(ev.coupon.id), ...ev.coupon });
    } else {
      return;
    }
    this.render();
  }

  async offer(ev) {
    ev.preventDefault();
    const body = () => ({
      price_cents: toCents($("gf-price").value),
      size: parseInt($("gf-size").value, 10),
      ttl_s: Math.round(parseFloat($("gf-minutes").value) * 60),
    });
    const offer = await this.post("gf", "group-offer", body);
    if (!offer) return;
    this.offers.set(offer.sale_id, offer);
    $("gf-note").textContent = t("studio.social.offered");
    this.render();
  }

  async drop(ev) {
    ev.preventDefault();
    const body = () => {
      const kind = $("cf-kind").value;
      const raw = $("cf-value").value;
      return {
        kind,
        value: kind === "amount" ? toCents(raw) : parseInt(raw, 10),
        count: parseInt($("cf-count").value, 10),
        min_spend_cents: toCents($("cf-min").value || "0"),
        expires_s: Math.round(parseFloat($("cf-minutes").value) * 60),
      };
    };
    const d = await this.post("cf", "coupons", body);
    if (!d) return;
    this.drops.set(d.id, d);
    $("cf-note").textContent = t("studio.social.dropped", { count: number(d.total) });
    this.render();
  }

  /** POST a form's body to the current sale's ``path``; the reply, or null (said in the form). */
  async post(form, path, body) {
    const s = this.sale();
    const err = $(`${form}-error`);
    err.textContent = s ? "" : t("studio.social.noSale");
    if (!s) return null;
    try {
      return await api(`/api/sales/${s.id}/${path}`, { method: "POST", body: body() });
    } catch (e) {
      err.textContent = t("common.error", { message: errorText(e) });
      return null;
    }
  }

  async poll() {
    const id = encodeURIComponent(this.streamId);
    try {
      const board = await api(`/api/streams/${id}/promoters`);
      this.renderBoard(board.promoters || []);
    } catch {
      /* the next poll retries */
    }
    try {
      const store = await api(`/api/stores/${encodeURIComponent(this.hostId)}/members`);
      $("fig-members").textContent = number(store.members);
    } catch {
      /* an admin looking at another host's show: the count is the host's */
    }
    const now = this.serverNow();
    for (const d of this.drops.values()) {
      if (d.expires_at_ms < now - 60000) continue;
      try {
        this.drops.set(d.id, { ...d, ...(await api(`/api/coupons/${encodeURIComponent(d.id)}`)) });
      } catch {
        /* keep what we had */
      }
    }
    this.render();
  }

  relabel() {
    const pct = $("cf-kind").value === "percent";
    $("cf-value-label").textContent = t(pct ? "studio.social.percent" : "studio.social.amount");
    $("cf-value").step = pct ? "1" : "0.01";
    $("cf-value").max = pct ? "100" : "";
  }

  render() {
    const s = this.sale();
    const offer = s && this.offers.get(s.id);
    const cur = this.currency();
    const status = $("gf-status");
    status.textContent = offer && offer.state === "open"
      ? t("studio.social.offerOn", { size: number(offer.size), price: money(offer.price_cents, cur) })
      : "";
    const counts = { open: 0, filled: 0, expired: 0 };
    for (const st of this.groups.values()) counts[st] = (counts[st] || 0) + 1;
    $("fig-groups-open").textContent = number(counts.open);
    $("fig-groups-filled").textContent = number(counts.filled);
    $("fig-groups-expired").textContent = number(counts.expired);
    let claimed = 0;
    let active = null;
    const now = this.serverNow();
    for (const d of this.drops.values()) {
      claimed += d.total - d.left;
      if (d.expires_at_ms > now && d.left > 0) active = d;
    }
    $("fig-coupons-claimed").textContent = number(claimed);
    const live = $("cf-live");
    show(live, Boolean(active));
    if (active) {
      live.textContent = t("studio.social.live", {
        left: number(active.left), total: number(active.total), time: clock(active.expires_at_ms - now),
      });
    }
  }

  renderBoard(rows) {
    const body = $("promoters-body");
    const cur = this.currency();
    body.replaceChildren(...rows.slice(0, 10).map((r, i) => {
      const tr = el("tr");
      tr.append(el("td", "", number(i + 1)), el("td", "", r.promoter_id), el("td", "num", number(r.visits)),
        el("td", "num", number(r.orders)), el("td", "num", money(r.paid_cents, cur)));
      return tr;
    }));
    show($("promoters-empty"), rows.length === 0);
  }
}
