// roomsocial.js: group buys and coupon drops in the viewer room.
//
//   const social = new SocialPanel(room, card, { signIn, showName, streamId, groupId });
//   social.snapshot(snap)  group_offers, groups, coupon of the join snapshot
//   social.event(ev)       group / coupon room events, group_result / coupon_result replies
//   social.coupon(order)   {id, cents}: the claimed coupon Pay applies to this order, or null
//   social.render()        redraw (the page calls it 4 times a second for the clocks)
//   social.setUser(who)    the signed-in viewer: are they a member of the host's store?
//
// A group shows a count, never who is in it. The share link is /live/{stream}?group=ID; a page
// opened with it highlights that group and offers Join (and unfurls into the group's card in
// chat apps: web/sharecard.py). Share uses the device's share sheet, else copies the link.
// Time left uses the server's clock.

import { api } from "./api.js";
import { clock, errorText, money, number, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const GONE = new Set(["coupons_gone", "coupon_expired"]);

export class SocialPanel {
  constructor(room, card, { signIn, showName, streamId, groupId, refBy }) {
    this.room = room;
    this.card = card;
    this.signIn = signIn;
    this.showName = showName;
    this.streamId = streamId;
    this.highlight = groupId || null;
    this.refBy = refBy || null; // who shared the link this page was opened from (?ref=)
    this.offers = new Map(); // sale id -> offer
    this.groups = new Map(); // group id -> group
    this.mine = new Map(); // group id -> order id (groups this viewer is in)
    this.drop = null; // the coupon drop on offer
    this.claimed = new Map(); // drop id -> drop, coupons this viewer holds
    this.gone = new Set(); // drop ids claimed out
    this.busy = false;
    this.rows = new Map(); // group id -> its list row's elements
    this.el = {
      box: $("groups"), title: $("groups-title"), open: $("group-open"), list: $("group-list"),
      share: $("group-share"), link: $("group-link"), shareGo: $("group-share-go"), note: $("group-note"),
      coupon: $("coupon"), couponText: $("coupon-text"), couponClock: $("coupon-clock"),
      claim: $("coupon-claim"), store: $("store"), storeJoin: $("store-join"),
      storeState: $("store-state"),
    };
    this.hostId = null;
    this.storeError = "";
    this.member = null; // the store membership {points, ...}, false when not a member, null: unknown
    this.el.storeJoin.addEventListener("click", () => this.joinStore());
    this.el.open.addEventListener("click", () => this.openGroup());
    this.el.claim.addEventListener("click", () => this.claim());
    this.el.shareGo.addEventListener("click", () => this.share());
    if (this.highlight) this.loadGroup(this.highlight);
  }

  // -- inputs ---------------------------------------------------------------------------------

  snapshot(snap) {
    if (snap.stream && snap.stream.host_id !== this.hostId) {
      this.hostId = snap.stream.host_id;
      this.loadMember();
    }
    if (snap.resync) {
      this.offers.clear();
      this.groups.clear();
    }
    for (const o of snap.group_offers || []) this.offers.set(o.sale_id, o);
    for (const g of snap.groups || []) this.take(g);
    if (snap.coupon) this.drop = snap.coupon;
    this.render();
  }

  event(ev) {
    switch (ev.type) {
      case "group":
        if (ev.phase === "offer") {
          if (ev.offer) this.offers.set(ev.offer.sale_id, ev.offer);
        } else {
          this.take(ev.group);
          if (ev.phase === "filled" && this.mine.has(ev.group.id)) {
            // The fill restarts every member's hold: the pay-by time is new.
            this.card.refreshOrder(this.mine.get(ev.group.id)).then(() => this.card.render());
            this.say(t("room.group.filledYou"));
          }
        }
        break;
      case "coupon":
        if (ev.phase === "claimed_out") this.gone.add(ev.coupon.id);
        if (!this.drop || this.drop.id === ev.coupon.id || ev.phase === "dropped") this.drop = ev.coupon;
        break;
      default:
        return;
    }
    this.render();
  }

  take(group) {
    const had = this.groups.get(group.id);
    // Events may come late from another server: a group never loses members it had.
    if (had && had.state !== "open" && group.state === "open") return;
    const members = had ? Math.max(had.members, group.members) : group.members;
    this.groups.set(group.id, { ...had, ...group, members });
  }

  async loadGroup(id) {
    try {
      this.take(await api(`/api/groups/${encodeURIComponent(id)}`));
    } catch {
      this.highlight = null; // an unknown group: nothing to point at
    }
    this.render();
  }

  setUser(user) {
    this.member = null;
    this.loadMember();
    if (user && this.refBy) {
      // Credit the promoter whose link brought this viewer (docs/social.md, attribution).
      const body = { ref: this.refBy };
      this.refBy = null;
      api(`/api/streams/${encodeURIComponent(this.streamId)}/touch`, { method: "POST", body }).catch(() => {});
    }
  }

  storePath() {
    return `/api/stores/${encodeURIComponent(this.hostId)}`;
  }

  async loadMember() {
    if (!this.hostId || !this.card.user) return this.render();
    try {
      const me = await api(`${this.storePath()}/me`);
      this.member = me.member ? me : false;
    } catch {
      this.member = null;
    }
    this.card.render();
    this.render();
  }

  async joinStore() {
    if (!this.hostId || !(await this.ensureUser())) return;
    this.storeError = "";
    try {
      this.member = await api(`${this.storePath()}/join`, { method: "POST" });
    } catch (e) {
      this.storeError = t("common.error", { message: errorText(e) });
    }
    this.card.render(); // joining reveals the member price
    this.render();
  }

  // -- actions --------------------------------------------------------------------------------

  async ensureUser() {
    if (this.card.user) return true;
    try {
      await this.signIn();
      return true;
    } catch {
      return false;
    }
  }

  async openGroup() {
    const sale = this.card.sale();
    if (!sale || this.busy || !(await this.ensureUser())) return;
    const key = `g-${sale.id}-${this.card.user.user_id}`.replace(/[^A-Za-z0-9_.:-]/g, "_").slice(0, 80);
    await this.groupCall({ type: "group_open", sale_id: sale.id, key, show_name: this.showName() });
  }

  async join(group) {
    if (this.busy || !(await this.ensureUser())) return;
    await this.groupCall({ type: "group_join", group_id: group.id, show_name: this.showName() });
  }

  async groupCall(ev) {
    this.busy = true;
    this.say("");
    this.render();
    try {
      const res = await this.room.request(ev);
      this.take(res.group);
      this.mine.set(res.group.id, res.order.id);
      this.card.keep(res.order);
      this.highlight = res.group.id;
      this.say(t(res.group.state === "filled" ? "room.group.filledYou" : "room.group.joined"));
    } catch (e) {
      this.say(t("room.group.failed", { reason: errorText(e) }));
    }
    this.busy = false;
    this.card.render();
    this.render();
  }

  async claim() {
    const drop = this.drop;
    if (!drop || this.busy || this.claimed.has(drop.id) || !(await this.ensureUser())) return;
    this.busy = true;
    this.render();
    try {
      const res = await this.room.request({ type: "coupon_claim", coupon_id: drop.id });
      this.claimed.set(drop.id, res.coupon);
      this.drop = { ...drop, left: Math.min(drop.left, res.coupon.left) };
      this.card.render();
    } catch (e) {
      if (GONE.has(e.code)) this.gone.add(drop.id);
      else this.el.couponText.textContent = t("room.coupon.failed", { reason: errorText(e) });
    }
    this.busy = false;
    this.render();
  }

  /** Share the group's link: the device's share sheet where there is one, else the clipboard. */
  async share() {
    const url = this.el.link.value;
    const product = this.card.product();
    const group = this.groups.get(this.el.shareGo.dataset.group);
    const text = product && group
      ? t("room.group.shareText", { product: product.name, price: money(group.price_cents, this.card.currency()) })
      : "";
    if (navigator.share) {
      try {
        await navigator.share({ title: text, text, url });
        return;
      } catch (e) {
        if (e && e.name === "AbortError") return; // the viewer closed the sheet
        // Refused (no sheet on this device, or not allowed here): copy instead.
      }
    }
    this.el.link.select();
    try {
      await navigator.clipboard.writeText(url);
      this.say(t("room.group.copied"));
    } catch {
      this.say(t("room.group.copyHint"));
    }
  }

  say(text) {
    this.el.note.textContent = text;
  }

  /** The claimed coupon Pay applies to ``order`` ({id, cents}), or null. */
  coupon(order) {
    const now = this.room.serverNow();
    for (const c of this.claimed.values()) {
      if (c.sale_id !== order.sale_id || c.expires_at_ms <= now || c.used) continue;
      if (order.total_cents < c.min_spend_cents) continue;
      const cents = c.kind === "amount"
        ? Math.min(c.value, order.total_cents)
        : Math.floor((order.total_cents * c.value) / 100);
      return { id: c.id, cents };
    }
    return null;
  }

  /** A coupon paid an order: it is spent. */
  isMember() {
    return Boolean(this.member);
  }

  pointsBalance() {
    return this.member ? this.member.points : 0;
  }

  pointsSpent(balance) {
    if (this.member) this.member = { ...this.member, points: balance };
    this.render();
  }

  spent(id) {
    const c = this.claimed.get(id);
    if (c) c.used = true;
    this.render();
  }

  // -- drawing --------------------------------------------------------------------------------

  render() {
    this.renderGroups();
    this.renderCoupon();
    this.renderStore();
  }

  renderStore() {
    const e = this.el;
    // Anonymous viewers are offered the tap too: it signs them in first.
    e.store.hidden = !this.hostId || (this.member === null && Boolean(this.card.user));
    if (e.store.hidden) return;
    e.storeJoin.hidden = Boolean(this.member);
    e.storeJoin.textContent = t("room.store.join");
    e.storeState.textContent = this.member
      ? t("room.store.member", { points: number(this.member.points) })
      : this.storeError || "";
  }

  renderGroups() {
    const e = this.el;
    const sale = this.card.sale();
    const offer = sale && this.offers.get(sale.id);
    const now = this.room.serverNow();
    const shown = [...this.groups.values()]
      .filter((g) => (sale && g.sale_id === sale.id) || g.id === this.highlight || this.mine.has(g.id))
      .filter((g) => g.state === "open" ? g.deadline_ms > now : g.id === this.highlight || this.mine.has(g.id))
      .sort((a, b) => (b.id === this.highlight) - (a.id === this.highlight) || a.deadline_ms - b.deadline_ms);
    const open = offer && offer.state === "open";
    e.box.hidden = !open && shown.length === 0;
    if (e.box.hidden) return;
    const currency = this.card.currency();
    e.title.textContent = offer
      ? t("room.group.title", { size: number(offer.size), price: money(offer.price_cents, currency) })
      : t("room.group.label");
    const inOpen = [...this.mine.keys()].some((id) => {
      const g = this.groups.get(id);
      return g && g.sale_id === (sale && sale.id) && g.state !== "expired";
    });
    e.open.hidden = !open || inOpen || this.card.phase(sale) !== "open";
    e.open.disabled = this.busy;
    const items = shown.slice(0, 6).map((g) => this.groupItem(g, now, currency));
    // Reorder only when the order changed: moving a node blurs the button focused in it.
    const same = items.length === e.list.children.length && items.every((li, i) => e.list.children[i] === li);
    if (!same) e.list.replaceChildren(...items);
    const mineOpen = shown.find((g) => this.mine.has(g.id) && g.state === "open");
    e.share.hidden = !mineOpen;
    if (mineOpen) {
      const link = new URL(mineOpen.share_path || `/live/${this.streamId}?group=${mineOpen.id}`, location.href).href;
      if (e.link.value !== link) e.link.value = link;
      e.shareGo.dataset.link = link;
      e.shareGo.dataset.group = mineOpen.id;
    }
  }

  groupItem(g, now, currency) {
    // Rows are kept and updated in place: the list redraws 4 times a second for the clocks,
    // and a Join button made anew each time would take a keyboard user's focus with it.
    let row = this.rows.get(g.id);
    if (!row) {
      const li = document.createElement("li");
      li.className = "group";
      li.dataset.group = g.id;
      const line = document.createElement("span");
      line.className = "group-line num";
      const bar = document.createElement("span");
      bar.className = "group-bar";
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-valuemin", "0");
      const fill = document.createElement("span");
      bar.append(fill);
      const state = document.createElement("span");
      state.className = "group-state num";
      const you = document.createElement("span");
      you.className = "group-you";
      const join = document.createElement("button");
      join.type = "button";
      join.className = "btn btn-small btn-primary group-join";
      join.addEventListener("click", () => this.join(this.groups.get(g.id)));
      li.append(line, bar, state, you, join);
      row = { li, line, bar, fill, state, you, join };
      this.rows.set(g.id, row);
    }
    row.li.dataset.state = g.state;
    row.li.dataset.highlight = g.id === this.highlight ? "1" : "";
    row.line.textContent = t("room.group.progress", { members: number(g.members), size: number(g.size) });
    row.bar.setAttribute("aria-valuemax", String(g.size));
    row.bar.setAttribute("aria-valuenow", String(g.members));
    row.bar.setAttribute("aria-label", row.line.textContent);
    row.fill.style.width = `${Math.round((100 * g.members) / g.size)}%`;
    row.state.textContent = g.state === "open"
      ? t("room.group.left", { time: clock(g.deadline_ms - now) })
      : t(g.state === "filled" ? "room.group.filled" : "room.group.expired");
    const mine = this.mine.has(g.id);
    row.you.hidden = !mine;
    row.you.textContent = t("room.group.you");
    row.join.hidden = mine || g.state !== "open";
    row.join.disabled = this.busy;
    row.join.textContent = t("room.group.join", { price: money(g.price_cents, currency) });
    return row.li;
  }

  renderCoupon() {
    const e = this.el;
    const d = this.drop;
    const now = this.room.serverNow();
    const mine = d && this.claimed.get(d.id);
    const expired = d && d.expires_at_ms <= now;
    e.coupon.hidden = !d || (expired && !mine);
    if (e.coupon.hidden) return;
    const currency = this.card.currency();
    const off = d.kind === "amount" ? money(d.value, currency) : `${d.value}%`;
    const min = d.min_spend_cents > 0 ? t("room.coupon.min", { amount: money(d.min_spend_cents, currency) }) : "";
    let state = "open";
    if (mine) state = mine.used ? "used" : "claimed";
    else if (this.gone.has(d.id) || d.left <= 0) state = "gone";
    e.coupon.dataset.state = state;
    const text = state === "claimed" ? t("room.coupon.claimed", { off })
      : state === "used" ? t("room.coupon.used")
        : state === "gone" ? t("room.coupon.gone")
          : t("room.coupon.offer", { off, min, left: number(d.left) });
    if (!this.busy && e.couponText.textContent !== text) e.couponText.textContent = text;
    e.couponClock.textContent = expired ? "" : t("room.coupon.clock", { time: clock(d.expires_at_ms - now) });
    e.claim.hidden = state !== "open";
    e.claim.disabled = this.busy;
    e.claim.textContent = t("room.coupon.claim");
  }
}
