// roomsale.js: the room's product card, flash-sale strip, buy button and the viewer's orders.
//
//   const card = new SaleCard(room, { signIn, showName: () => bool });
//   card.snapshot(snap)   pinned product + sale (+ sales when the server sends them)
//   card.event(ev)        pinned / unpinned / sale / stock / buy_result events
//   card.setUser(who)     the signed-in viewer (null: anonymous); loads their orders
//   card.tick()           redraw clocks (the page calls it 4 times a second)
//   card.redraw()         draw everything again (after a language change)
//
// The countdown uses room.serverNow() (the server's clock), never the device's alone. The
// sale's state comes from sale.state plus that clock, so a server that announces "opened" at
// open time during a countdown and one that sends a "countdown" phase both show correctly.

import { api, ApiError, ids } from "./api.js";
import { clock, errorText, money, number, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const FINAL = new Set(["paid", "expired", "cancelled"]);
const RETRYABLE = new Set(["disconnected", "offline", "timeout", "network"]);
const OUTCOME_TEXT = {
  sold_out: "room.buy.soldOut",
  limit_reached: "room.buy.limit",
  not_open: "room.buy.notOpen",
  ended: "room.buy.ended",
};

export class SaleCard {
  constructor(room, { signIn, showName, effects, coupons, store, skip = () => false }) {
    this.room = room;
    this.skip = skip; // (sale id) -> true for a sale the card must not sell (a fair draw's)
    // coupons: { coupon(order) -> {id, cents} | null, spent(id) } (roomsocial.js), optional.
    this.coupons = coupons || { coupon: () => null, spent: () => {} };
    // store: { member() -> bool, points() -> balance, spent(balance) } (roomsocial.js), optional.
    this.store = store || { member: () => false, points: () => 0, spent: () => {} };
    this.signIn = signIn;
    this.showName = showName;
    this.effects = effects;
    this.products = new Map();
    this.pinned = null;
    this.sales = new Map();
    this.orderSales = new Map(); // sale id -> product id, for orders of sales the room never offers
    this.saleId = null;
    this.busy = null; // sale id being reserved
    this.refused = new Map(); // sale id -> error code that settles the button (limit, sold out)
    this.orders = new Map();
    this.user = null;
    this.el = {
      card: $("product-card"), img: $("product-img"), ph: $("product-ph"),
      name: $("product-name"), price: $("product-price"), was: $("product-was"),
      sale: $("sale"), clock: $("sale-clock"), left: $("sale-left"), bar: $("stockbar"),
      fill: $("stockbar-fill"), limit: $("sale-limit"), buy: $("buy"), reserved: $("reserved"),
      memberNote: $("member-note"), usePointsRow: $("use-points-row"), usePoints: $("use-points"),
      usePointsLabel: $("use-points-label"), payBy: $("pay-by"), pay: $("pay"), cancel: $("cancel"), outcome: $("outcome"),
      list: $("order-list"), none: $("orders-none"), dot: $("orders-dot"),
      shelf: $("shelf-list"), shelfEmpty: $("shelf-empty"),
    };
    this.shelfDirty = true;
    this.el.buy.addEventListener("click", () => this.buy());
    this.el.pay.addEventListener("click", () => this.settle("pay"));
    this.el.cancel.addEventListener("click", () => this.settle("cancel"));
    this.el.usePoints.addEventListener("change", () => this.render());
    this.productsLoaded = null;
    // Whether buyers pay here (development) or the shop's payment provider confirms payment
    // (production, LIVESELL_SIMULATED_PAY=0): then the card says "waiting for payment".
    this.simulatedPay = true;
    this.lastPoll = 0;
    api("/api/payments/config")
      .then((c) => {
        this.simulatedPay = c.simulated_pay !== false;
        this.render();
      })
      .catch(() => {});
  }

  // -- inputs ---------------------------------------------------------------------------------

  snapshot(snap) {
    this.pinned = snap.pinned || null;
    if (this.pinned) this.products.set(this.pinned.id, this.pinned);
    if (snap.resync) this.sales.clear();
    for (const s of snap.sales || []) this.sales.set(s.id, s);
    if (snap.sale) this.sales.set(snap.sale.id, snap.sale);
    this.choose();
    this.shelfDirty = true;
  }

  event(ev) {
    switch (ev.type) {
      case "pinned":
        this.pinned = ev.product;
        this.products.set(ev.product.id, ev.product);
        break;
      case "unpinned":
        this.pinned = null;
        break;
      case "sale":
        this.sales.set(ev.sale.id, { ...this.sales.get(ev.sale.id), ...ev.sale });
        if (ev.phase === "restocked") this.refused.delete(ev.sale.id);
        this.choose();
        break;
      case "stock": {
        const s = this.sales.get(ev.sale_id);
        if (s) s.remaining = ev.remaining;
        if (ev.bought > 0) this.toast(ev, s);
        break;
      }
      default:
        return;
    }
    if (ev.type !== "stock") this.shelfDirty = true;
    this.render();
  }

  setUser(user) {
    this.user = user;
    this.orders.clear();
    if (user) {
      for (const o of this.stored()) this.orders.set(o.id, o);
      this.refreshOrders();
      this.loadMine();
    }
    this.render();
  }

  /**
   * The buyer's orders in this show as the server knows them: orders won rather than tapped
   * (an auction lot, a fair draw) or bought in another tab. With ``saleId``, retries for a
   * few seconds until an order of that sale shows up (SQL learns it from the persister).
   */
  async loadMine(saleId = null) {
    for (let attempt = 0; attempt < 6 && this.user; attempt++) {
      try {
        const path = `/api/me/orders?stream_id=${encodeURIComponent(this.room.streamId)}`;
        const { orders } = await api(path);
        for (const o of orders) this.keep(o);
      } catch {
        return;
      }
      this.render();
      if (saleId === null || [...this.orders.values()].some((o) => o.sale_id === saleId)) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  // -- which sale ---------------------------------------------------------------------------

  phase(s) {
    const now = this.room.serverNow();
    if (s.state === "ended" || (s.ends_at_ms && now >= s.ends_at_ms)) return "ended";
    if (s.starts_at_ms && now < s.starts_at_ms) return "countdown";
    if (s.state === "scheduled") return "scheduled";
    return s.remaining > 0 ? "open" : "soldout";
  }

  choose() {
    // The sale that matters now: open, then counting down, then scheduled, then the last ended.
    const rank = { open: 0, soldout: 1, countdown: 2, scheduled: 3, ended: 4 };
    let best = null;
    for (const s of this.offered()) {
      const r = rank[this.phase(s)];
      if (!best || r < best.r || (r === best.r && s.id > best.s.id)) best = { s, r };
    }
    this.saleId = best ? best.s.id : null;
    const s = this.sale();
    if (s && !this.products.has(s.product_id)) this.loadProducts();
  }

  sale() {
    return this.saleId === null ? null : this.sales.get(this.saleId);
  }

  /** The sales the card and the shelf offer for buying. */
  offered() {
    return [...this.sales.values()].filter((s) => !this.skip(s.id));
  }

  /** The skipped sales changed (a draw became known): choose and draw again. */
  reconsider() {
    this.choose();
    this.shelfDirty = true;
    this.render();
  }

  /** The product of the sale on the card (or the pinned one), or null. */
  product() {
    const s = this.sale();
    return (s && this.products.get(s.product_id)) || this.pinned || null;
  }

  currency() {
    const p = this.product();
    return (p && p.currency) || "USD";
  }

  async loadProducts() {
    if (this.productsLoaded) return;
    this.productsLoaded = api("/api/products")
      .then((r) => {
        for (const p of r.products) if (!this.products.has(p.id)) this.products.set(p.id, p);
        this.shelfDirty = true;
        this.render();
      })
      .catch(() => {
        this.productsLoaded = null;
      });
  }

  // -- buying -------------------------------------------------------------------------------

  buttonState(s) {
    if (this.busy === s.id) return "reserving";
    if (this.reservedOrder(s.id)) return "reserved";
    const phase = this.phase(s);
    if (phase === "ended") return "ended";
    const refused = this.refused.get(s.id);
    if (refused === "limit_reached" || this.boughtQty(s.id) >= s.per_user_limit) return "limit";
    if (phase === "soldout" || refused === "sold_out") return "soldout";
    if (phase === "countdown" || phase === "scheduled") return "notopen";
    return "open";
  }

  async buy() {
    const s = this.sale();
    if (!s || this.buttonState(s) !== "open") return;
    if (!this.user) {
      try {
        await this.signIn();
      } catch {
        return; // the viewer closed the sign-in sheet
      }
      if (this.buttonState(s) !== "open") return this.render();
    }
    this.busy = s.id;
    this.say("");
    this.render();
    const key = ids.idempotencyKey();
    const body = { qty: 1, show_name: this.showName() };
    let res;
    try {
      res = await this.room.request({ type: "buy", sale_id: s.id, key, ...body });
    } catch (e) {
      if (RETRYABLE.has(e.code)) res = await this.buyOverHttp(s.id, key, body);
      else res = { error: e };
    }
    this.busy = null;
    if (res.error) {
      const code = res.error.code;
      if (code === "limit_reached" || code === "sold_out") this.refused.set(s.id, code);
      this.say(t(OUTCOME_TEXT[code] || "room.buy.failed", { reason: errorText(res.error) }));
    } else {
      this.keep(res.order);
      if (typeof res.remaining === "number") s.remaining = res.remaining;
      this.say(t("room.buy.reserved"));
    }
    this.render();
  }

  async buyOverHttp(saleId, key, body) {
    // The socket dropped mid-buy: the same idempotency key returns the same order, never two.
    try {
      return await api(`/api/sales/${saleId}/buy`, { method: "POST", body, idempotencyKey: key });
    } catch (e) {
      return { error: e };
    }
  }

  async settle(action, chosen = null) {
    const s = this.sale();
    const order = chosen || (s && this.reservedOrder(s.id));
    if (!order) return;
    this.el.pay.disabled = this.el.cancel.disabled = true;
    if (action === "pay") this.el.pay.textContent = t("room.buy.paying");
    const points = action === "pay" ? this.pointsFor(order) : 0;
    const coupon = action === "pay" && !points ? this.coupons.coupon(order) : null;
    try {
      if (points) {
        const paid = await api(`/api/orders/${order.id}/pay-with-points`, { method: "POST", body: { points } });
        this.keep(paid);
        this.store.spent(paid.points_balance);
        this.el.usePoints.checked = false;
      } else if (coupon) {
        const body = { coupon_id: coupon.id };
        this.keep(await api(`/api/orders/${order.id}/pay-with-coupon`, { method: "POST", body }));
        this.coupons.spent(coupon.id);
      } else {
        this.keep(await api(`/api/orders/${order.id}/${action}`, { method: "POST" }));
      }
      this.say(t(action === "pay" ? "room.buy.paid" : "room.buy.cancelled"));
    } catch (e) {
      if (e instanceof ApiError && (e.status === 409 || e.status === 410)) await this.refreshOrder(order.id);
      this.say(e.code === "expired" ? t("room.buy.expired") : t("common.error", { message: errorText(e) }));
    }
    this.el.pay.disabled = this.el.cancel.disabled = false;
    this.render();
  }

  say(text) {
    this.el.outcome.textContent = text;
  }

  pointsFor(order) {
    // One point is one cent; never more than the order costs (docs/social.md).
    if (!this.el.usePoints.checked || !this.store.member()) return 0;
    return Math.max(0, Math.min(this.store.points(), order.total_cents));
  }

  // -- orders -------------------------------------------------------------------------------

  storeKey() {
    return `livesell.orders.${this.user ? this.user.user_id : "-"}`;
  }

  stored() {
    try {
      return JSON.parse(sessionStorage.getItem(this.storeKey()) || "[]");
    } catch {
      return [];
    }
  }

  keep(order) {
    if (!order || !this.user || order.user_id !== this.user.user_id) return;
    this.orders.set(order.id, order);
    const all = [...this.orders.values()].slice(-30);
    sessionStorage.setItem(this.storeKey(), JSON.stringify(all));
  }

  async refreshOrder(id) {
    try {
      this.keep(await api(`/api/orders/${encodeURIComponent(id)}`));
    } catch {
      /* unknown to the server now: keep what we had */
    }
  }

  async refreshOrders() {
    await Promise.all(
      [...this.orders.values()].filter((o) => !FINAL.has(o.state)).map((o) => this.refreshOrder(o.id)),
    );
    this.render();
  }

  reservedOrder(saleId) {
    for (const o of this.orders.values()) {
      if (o.sale_id === saleId && o.state === "reserved" && o.expires_at_ms > this.room.serverNow()) {
        return o;
      }
    }
    return null;
  }

  boughtQty(saleId) {
    let n = 0;
    for (const o of this.orders.values()) {
      if (o.sale_id === saleId && (o.state === "paid" || o.state === "reserved")) n += o.qty;
    }
    return n;
  }

  // -- drawing ------------------------------------------------------------------------------

  toast(ev, s) {
    const p = s && this.products.get(s.product_id);
    const product = p ? p.name : t("room.product");
    const buyers = ev.buyers || [];
    const named = buyers.filter((b) => typeof b === "string");
    let text;
    if (buyers.length > 1) text = t("room.toast.many", { count: number(buyers.length), product });
    else if (named.length) text = t("room.toast.named", { name: named[0], product });
    else text = t("room.toast.someone", { product });
    this.effects.toast(text);
  }

  tick() {
    const s = this.sale();
    const phase = s ? this.phase(s) : "";
    if (phase !== this.lastPhase) this.shelfDirty = true; // a countdown ran out, a sale ended
    this.lastPhase = phase;
    const waiting = !this.simulatedPay && s && this.reservedOrder(s.id);
    if (waiting && Date.now() - this.lastPoll > 3000) {
      // The payment arrives from the provider's webhook, not from this page: look every 3 s.
      this.lastPoll = Date.now();
      this.refreshOrder(waiting.id).then(() => this.render());
    }
    if (s || this.orders.size) this.render();
  }

  /** Draw everything again (after a language change). */
  redraw() {
    this.shelfDirty = true;
    this.render();
  }

  render() {
    const e = this.el;
    if (this.shelfDirty) this.renderShelf();
    const s = this.sale();
    const product = (s && this.products.get(s.product_id)) || this.pinned;
    e.card.hidden = !product && !s;
    if (e.card.hidden) {
      this.renderOrders();
      return;
    }
    e.card.dataset.productId = product ? product.id : (s && s.product_id) || ""; // roomextras.js
    e.card.dataset.saleId = s ? s.id : "";
    const currency = (product && product.currency) || "USD";
    e.name.textContent = product ? product.name : t("room.product");
    if (product && product.image_url) {
      if (e.img.getAttribute("src") !== product.image_url) e.img.src = product.image_url;
      e.img.hidden = false;
      e.ph.hidden = true;
    } else {
      e.img.hidden = true;
      e.ph.hidden = false;
    }
    const base = s ? s.price_cents : product.price_cents;
    // The server applies the member price the same way (flashsale/memberprice.py).
    const mp = product ? product.member_price_cents : null;
    const memberPrice = mp != null && mp < base ? mp : null;
    const member = memberPrice !== null && this.store.member();
    e.price.textContent = money(member ? memberPrice : base, currency);
    const was = member ? base : product && s && product.price_cents > s.price_cents ? product.price_cents : 0;
    e.was.hidden = !was;
    if (was) e.was.textContent = money(was, currency);
    e.memberNote.hidden = memberPrice === null || member;
    if (!e.memberNote.hidden) e.memberNote.textContent = t("room.member.note", { price: money(memberPrice, currency) });
    e.sale.hidden = !s;
    e.buy.hidden = !s;
    e.reserved.hidden = true;
    if (!s) {
      e.card.dataset.state = "product";
      this.renderOrders();
      return;
    }
    const now = this.room.serverNow();
    const phase = this.phase(s);
    const state = this.buttonState(s);
    e.card.dataset.state = state;
    e.card.dataset.phase = phase;
    let until = "";
    if (phase === "countdown") until = t("room.sale.startsIn", { time: clock(s.starts_at_ms - now) });
    else if (phase === "open" && s.ends_at_ms) until = t("room.sale.endsIn", { time: clock(s.ends_at_ms - now) });
    e.clock.textContent = until;
    e.clock.parentElement.hidden = !until;
    const left = Math.max(0, s.remaining ?? s.quantity);
    e.left.textContent = t("room.sale.of", { left: number(left), total: number(s.quantity) });
    const pct = s.quantity ? Math.round((100 * left) / s.quantity) : 0;
    e.fill.style.width = `${pct}%`;
    e.bar.setAttribute("aria-valuenow", String(pct));
    e.bar.dataset.low = pct <= 20 ? "1" : "";
    e.limit.textContent = t("room.sale.limit", { count: number(s.per_user_limit) });
    const labels = {
      notopen: "room.buy.notOpen", open: "room.buy.now", reserving: "room.buy.reserving",
      soldout: "room.buy.soldOut", limit: "room.buy.limit", ended: "room.buy.ended",
    };
    e.outcome.classList.toggle("sr-only", state === "reserved");
    if (state === "reserved") {
      const order = this.reservedOrder(s.id);
      e.buy.hidden = true;
      e.reserved.hidden = false;
      const time = clock(order.expires_at_ms - now);
      e.payBy.textContent = t(this.simulatedPay ? "room.buy.payBy" : "room.buy.waiting", { time });
      e.pay.hidden = !this.simulatedPay;
      e.card.dataset.payment = this.simulatedPay ? "simulated" : "provider";
      const balance = this.store.member() && this.simulatedPay ? this.store.points() : 0;
      e.usePointsRow.hidden = balance <= 0;
      if (balance > 0) {
        const usable = Math.min(balance, order.total_cents);
        e.usePointsLabel.textContent = t("room.points.use", { points: number(usable), off: money(usable, currency) });
      }
      const points = this.pointsFor(order);
      const coupon = points || !this.simulatedPay ? null : this.coupons.coupon(order);
      const amount = money(order.total_cents - (coupon ? coupon.cents : 0) - points, currency);
      const label = points
        ? t("room.points.pay", { amount, off: money(points, currency) })
        : coupon
          ? t("room.coupon.pay", { amount, off: money(coupon.cents, currency) })
          : t("room.buy.pay", { amount });
      if (!e.pay.disabled) e.pay.textContent = label;
    } else {
      let label = t(labels[state]);
      if (state === "notopen" && phase === "countdown") label = `${label} · ${clock(s.starts_at_ms - now)}`;
      if (e.buy.textContent !== label) e.buy.textContent = label;
      e.buy.disabled = state !== "open";
      e.buy.dataset.state = state;
      e.buy.setAttribute("aria-busy", state === "reserving" ? "true" : "false");
    }
    this.renderOrders();
  }

  renderShelf() {
    // The show's products: the one on screen, then each sale's, the live ones first.
    this.shelfDirty = false;
    const rank = { open: 0, countdown: 1, scheduled: 1, soldout: 2, ended: 3 };
    const tags = {
      open: "room.shelf.open", countdown: "room.shelf.soon", scheduled: "room.shelf.soon",
      soldout: "room.shelf.soldOut", ended: "room.shelf.ended",
    };
    const rows = new Map();
    if (this.pinned) rows.set(this.pinned.id, { product: this.pinned, tag: "pinned", r: -1 });
    const sales = this.offered().map((s) => ({ s, phase: this.phase(s) }));
    sales.sort((a, b) => rank[a.phase] - rank[b.phase] || b.s.id - a.s.id);
    for (const { s, phase } of sales) {
      const product = this.products.get(s.product_id);
      if (!product || (rows.has(product.id) && rows.get(product.id).sale)) continue;
      const row = rows.get(product.id) || { product, r: rank[phase] };
      rows.set(product.id, { ...row, sale: s, tag: row.tag === "pinned" && phase === "ended" ? "pinned" : phase });
    }
    const current = this.sale() ? this.sale().product_id : this.pinned && this.pinned.id;
    const items = [...rows.values()].map(({ product, sale, tag }) => {
      const li = document.createElement("li");
      li.className = "shelf-item";
      li.dataset.current = product.id === current ? "1" : "";
      let img;
      if (product.image_url) {
        img = document.createElement("img");
        img.className = "product-img";
        img.alt = "";
        img.src = product.image_url;
      } else {
        img = document.createElement("div");
        img.className = "product-img placeholder";
        const icon = document.createElement("span");
        icon.className = "icon icon-bag";
        img.append(icon);
      }
      const lines = document.createElement("div");
      lines.className = "shelf-lines";
      const name = document.createElement("span");
      name.className = "shelf-name";
      name.textContent = product.name;
      const meta = document.createElement("span");
      meta.className = "shelf-meta";
      const price = document.createElement("span");
      price.className = "price-small num";
      const live = sale && tag !== "ended";
      price.textContent = money(live ? sale.price_cents : product.price_cents, product.currency || "USD");
      const label = document.createElement("span");
      label.className = "shelf-tag";
      label.dataset.kind = tag;
      label.textContent = t(tag === "pinned" ? "room.shelf.pinned" : tags[tag]);
      meta.append(price, label);
      lines.append(name, meta);
      li.append(img, lines);
      return li;
    });
    this.el.shelf.replaceChildren(...items);
    this.el.shelfEmpty.hidden = items.length > 0;
  }

  /**
   * The product id of an order's sale that is not on the card (an auction lot's, a fair draw's),
   * asked for once so the order is named by its product rather than "#<sale id>".
   */
  orderSale(saleId) {
    if (!this.orderSales.has(saleId)) {
      this.orderSales.set(saleId, undefined);
      api(`/api/sales/${saleId}`)
        .then((sale) => {
          this.orderSales.set(saleId, sale.product_id);
          if (!this.products.has(sale.product_id)) {
            this.productsLoaded = null; // a product added after the room loaded its list
            this.loadProducts();
          }
          this.renderOrders();
        })
        .catch(() => {}); // the order keeps its "#<sale id>" name; no retry on every render
    }
    return this.orderSales.get(saleId);
  }

  renderOrders() {
    const e = this.el;
    const now = this.room.serverNow();
    const orders = [...this.orders.values()].reverse();
    e.none.hidden = orders.length > 0;
    e.dot.hidden = !orders.some((o) => o.state === "reserved" && o.expires_at_ms > now);
    const items = orders.map((o) => {
      const li = document.createElement("li");
      li.className = "order";
      const sale = this.sales.get(o.sale_id);
      const productId = sale ? sale.product_id : this.orderSale(o.sale_id);
      const p = productId !== undefined ? this.products.get(productId) : null;
      const currency = (p && p.currency) || "USD";
      const line = document.createElement("span");
      line.textContent = t("room.order.line", {
        qty: number(o.qty), product: p ? p.name : `#${o.sale_id}`, total: money(o.total_cents, currency),
      });
      const state = document.createElement("span");
      let st = o.state;
      if (st === "reserved" && o.expires_at_ms <= now) st = "expired";
      state.className = `order-state ${st}`;
      state.textContent = st === "reserved"
        ? t("room.order.reserved", { time: clock(o.expires_at_ms - now) })
        : t(`room.order.${st}`);
      li.dataset.state = st;
      li.append(line, state);
      if (st === "reserved") {
        // Won orders (a lot, a draw) have no buy button of their own: pay them from here.
        const pay = document.createElement("button");
        pay.type = "button";
        pay.className = "btn btn-small btn-primary order-pay";
        pay.textContent = t("room.buy.pay", { amount: money(o.total_cents, currency) });
        pay.addEventListener("click", () => this.settle("pay", o));
        li.append(pay);
      }
      return li;
    });
    e.list.replaceChildren(...items);
  }
}
