// studio-shop.js: the studio's products (create, list, edit, pin/unpin) and flash sales (create
// and start with a countdown; stock, reserved and paid as they change). A host lists and edits
// only their own products (`?mine=1`; the server refuses the rest); an admin sees every one.
//
// Live inputs: the room's snapshot (pinned, sale, and `sales` where the server sends it),
// `pinned`/`unpinned`, `sale` events (phase scheduled|countdown|opened|sold_out|restocked|
// closed), ephemeral `stock` events, and the stats poll (units reserved/paid by SQL).

import { api } from "./api.js";
import { $, button, el, show } from "./dom.js";
import { clearFieldErrors, showFieldError } from "./fielderror.js";
import { clock, errorText, money, number, t } from "./i18n.js";
import { productEditForm } from "./studio-product-edit.js";

const toCents = (v) => Math.round(parseFloat(v) * 100);

export class Shop {
  constructor({ streamId, request, serverNow, admin = false }) {
    this.streamId = streamId;
    this.request = request;
    this.serverNow = serverNow;
    this.admin = admin;
    this.products = [];
    this.own = new Set(); // ids of the products this user may edit
    this.editing = null; // {id, form} of the product being edited: kept across re-renders
    this.pinned = null;
    this.sale = null; // the sale shown on the card (the newest of this show)
    this.figs = new Map(); // sale id -> {reserved_units, paid_units}
    this.past = [];
    this.formOpen = false;
    $("sale-new").addEventListener("click", () => {
      this.formOpen = true;
      this._renderSale();
      $("sf-product").focus();
    });
    $("new-product").addEventListener("click", () => this._toggleForm());
    $("pf-cancel").addEventListener("click", () => this._toggleForm(false));
    $("product-form").addEventListener("submit", (ev) => this._createProduct(ev));
    $("sf-product").addEventListener("change", () => this._defaultPrice());
    $("sale-form").addEventListener("submit", (ev) => this._startSale(ev));
    $("sale-close").addEventListener("click", () => this._closeSale());
    setInterval(() => this._renderSale(), 250);
  }

  async load() {
    try {
      this.products = (await api(this.admin ? "/api/products" : "/api/products?mine=1")).products;
      this.own = new Set(this.products.map((p) => p.id));
    } catch {
      this.products = [];
    }
    this.render();
    this._defaultPrice();
  }

  currency() {
    const p = this.sale && this._product(this.sale.product_id);
    return (p && p.currency) || (this.products[0] && this.products[0].currency) || "USD";
  }

  _product(id) {
    return this.products.find((p) => p.id === id) || null;
  }

  // -- room events ---------------------------------------------------------------------------

  onEvent(ev) {
    switch (ev.type) {
      case "snapshot":
        this.pinned = ev.pinned ? ev.pinned.id : null;
        if (ev.pinned && !this._product(ev.pinned.id)) this.products.push(ev.pinned);
        this._takeSale(ev.sale || (ev.sales && ev.sales[ev.sales.length - 1]) || this.sale);
        this.render();
        break;
      case "pinned":
        this.pinned = ev.product.id;
        if (!this._product(ev.product.id)) this.products.push(ev.product);
        this._renderProducts();
        break;
      case "unpinned":
        this.pinned = null;
        this._renderProducts();
        break;
      case "sale":
        this._takeSale(ev.sale, ev.phase);
        break;
      case "stock":
        if (this.sale && ev.sale_id === this.sale.id) {
          this.sale.remaining = ev.remaining;
          this._renderSale();
        }
        break;
      default:
    }
  }

  _takeSale(sale, phase) {
    if (!sale || !sale.id) return;
    if (this.sale && sale.id < this.sale.id) return; // an older sale's late event
    const merged = this.sale && this.sale.id === sale.id ? { ...this.sale, ...sale } : { ...sale };
    if (sale.server_time_ms) merged.offset = sale.server_time_ms - Date.now();
    if (phase === "closed" || phase === "sold_out") merged.closed = phase;
    this.sale = merged;
    this._renderSale();
  }

  /** Figures from the stats poll: units by order state per sale, and the sale list. */
  figures(sales) {
    if (!Array.isArray(sales)) return;
    for (const s of sales) this.figs.set(s.id, s);
    const newest = sales[0];
    if (newest) this._takeSale(newest);
    this.past = sales.slice(1);
    this._renderPast();
  }

  // -- products ------------------------------------------------------------------------------

  render() {
    this._renderProducts();
    this._renderSaleProducts();
    this._renderSale();
    this._renderPast();
  }

  _renderProducts() {
    const ul = $("products");
    ul.replaceChildren(
      ...this.products.map((p) => {
        const li = el("li", `product${p.id === this.pinned ? " is-pinned" : ""}`);
        const img = el("div", "product-img");
        if (p.image_url) {
          const i = el("img");
          i.src = p.image_url;
          i.alt = "";
          i.loading = "lazy";
          img.append(i);
        } else {
          img.textContent = (p.name || "?").trim().charAt(0).toUpperCase();
          img.setAttribute("aria-hidden", "true");
        }
        const info = el("div", "product-info");
        info.append(el("span", "product-name", p.name), el("span", "product-price num", money(p.price_cents, p.currency)));
        const pinned = p.id === this.pinned;
        const b = button(t(pinned ? "studio.unpin" : "studio.pin"), `btn-small ${pinned ? "btn-success" : ""}`, () =>
          this._pin(pinned ? null : p.id, b),
        );
        b.setAttribute("aria-pressed", String(pinned));
        b.setAttribute("aria-label", t(pinned ? "studio.unpinLabel" : "studio.pinLabel", { name: p.name }));
        li.append(img, info, b);
        if (pinned) info.append(el("span", "badge badge-pinned", t("studio.pinnedBadge")));
        if (!this.own.has(p.id)) return [li];
        const edit = button(t("studio.product.edit"), "btn-small btn-ghost", () => this._edit(p));
        edit.setAttribute("aria-label", t("studio.product.editLabel", { name: p.name }));
        li.append(edit);
        const form = this.editing && this.editing.id === p.id ? this.editing.form : null;
        return form ? [li, form] : [li];
      }).flat(),
    );
    show($("products-empty"), this.products.length === 0);
  }

  _edit(product) {
    const close = () => {
      this.editing = null;
      this._renderProducts();
    };
    const saved = (p) => {
      this.products = this.products.map((q) => (q.id === p.id ? p : q));
      this.editing = null;
      this.render();
    };
    this.editing = { id: product.id, form: el("li", "product-edit-row") };
    this.editing.form.append(productEditForm(product, { onSaved: saved, onCancel: close }));
    this._renderProducts();
    this.editing.form.querySelector("input").focus();
  }

  async _pin(productId, btn) {
    btn.disabled = true;
    try {
      await this.request(productId ? { type: "pin", product_id: productId } : { type: "unpin" });
    } catch (e) {
      $("sf-error").textContent = t("studio.pinFailed", { message: errorText(e) });
    } finally {
      btn.disabled = false;
    }
  }

  _toggleForm(on) {
    const form = $("product-form");
    const open = on === undefined ? form.hidden : on;
    show(form, open);
    $("new-product").setAttribute("aria-expanded", String(open));
    if (open) $("pf-name").focus();
  }

  async _createProduct(ev) {
    ev.preventDefault();
    const body = {
      name: $("pf-name").value.trim(),
      price_cents: toCents($("pf-price").value),
      currency: $("pf-currency").value,
      description: $("pf-description").value,
      image_url: $("pf-image").value.trim(),
    };
    const member = $("pf-member-price").value.trim();
    if (member) body.member_price_cents = toCents(member);
    const inputs = {
      name: $("pf-name"), price_cents: $("pf-price"), currency: $("pf-currency"),
      member_price_cents: $("pf-member-price"), image_url: $("pf-image"),
      description: $("pf-description"),
    };
    clearFieldErrors(inputs, $("pf-error"));
    try {
      const p = await api("/api/products", { method: "POST", body });
      this.products.push(p);
      this.own.add(p.id);
      $("product-form").reset();
      this._toggleForm(false);
      this.render();
      $("sf-product").value = String(p.id);
      this._defaultPrice();
    } catch (e) {
      showFieldError(e, inputs, $("pf-error"));
    }
  }

  // -- sales ---------------------------------------------------------------------------------

  _renderSaleProducts() {
    // The sale form and the auction and draw desks pick the product by name: the host never
    // sees a product's id, so a number field asked for something the studio does not show.
    for (const id of ["sf-product", "lf-product", "df-product"]) {
      const sel = $(id);
      const keep = sel.value;
      sel.replaceChildren(
        ...this.products.map((p) => {
          const o = el("option", null, `${p.name} · ${money(p.price_cents, p.currency)}`);
          o.value = String(p.id);
          return o;
        }),
      );
      if (keep && this._product(Number(keep))) sel.value = keep;
      else if (this.pinned) sel.value = String(this.pinned);
    }
    for (const id of ["sf-start", "lf-create", "df-create"]) $(id).disabled = this.products.length === 0;
  }

  _defaultPrice() {
    const p = this._product(Number($("sf-product").value));
    if (p) $("sf-price").value = (p.price_cents / 100).toFixed(2);
  }

  async _startSale(ev) {
    ev.preventDefault();
    const err = $("sf-error");
    err.textContent = "";
    const productId = Number($("sf-product").value);
    const btn = $("sf-start");
    btn.disabled = true;
    try {
      // Viewers see the sale on the pinned product's card: pin it first if it is not.
      if (this.pinned !== productId) await this.request({ type: "pin", product_id: productId });
      const sale = await api("/api/sales", {
        method: "POST",
        body: {
          product_id: productId,
          stream_id: this.streamId,
          price_cents: toCents($("sf-price").value),
          quantity: Number($("sf-qty").value),
          per_user_limit: Number($("sf-limit").value),
          duration_s: Number($("sf-duration").value),
          hold_s: Number($("sf-hold").value),
        },
      });
      const opened = await api(`/api/sales/${sale.id}/open`, {
        method: "POST",
        body: { countdown_s: Number($("sf-countdown").value) },
      });
      this.formOpen = false;
      this._takeSale(opened);
    } catch (e) {
      err.textContent = t("studio.sale.failed", { message: errorText(e) });
    } finally {
      btn.disabled = false;
    }
  }

  async _closeSale() {
    if (!this.sale) return;
    try {
      this._takeSale(await api(`/api/sales/${this.sale.id}/close`, { method: "POST" }), "closed");
    } catch (e) {
      $("sf-error").textContent = t("common.error", { message: errorText(e) });
    }
  }

  /** The sale's state now, by the server's clock. */
  _phase(s, now) {
    if (s.closed === "closed" || s.state === "ended" || (s.ends_at_ms && now >= s.ends_at_ms)) return "ended";
    if (s.remaining === 0) return "soldout";
    if (s.starts_at_ms && now < s.starts_at_ms) return "countdown";
    if (s.state === "scheduled") return "scheduled";
    return "open";
  }

  _renderSale() {
    const s = this.sale;
    show($("sale-now"), Boolean(s));
    if (!s) return;
    $("sale-now").dataset.sale = String(s.id);
    const now = Date.now() + (s.offset || 0);
    const phase = this._phase(s, now);
    const badge = $("sale-state");
    badge.textContent = t(`studio.sale.phase.${phase}`);
    badge.className = `badge sale-${phase}`;
    const p = this._product(s.product_id);
    $("sale-product").textContent = p ? p.name : t("studio.sale.productN", { id: s.product_id });
    $("sale-price").textContent = money(s.price_cents, (p && p.currency) || "USD");
    let c = "";
    if (phase === "countdown") c = t("studio.sale.startsIn", { time: clock(s.starts_at_ms - now) });
    else if (phase === "open" && s.ends_at_ms) c = t("studio.sale.endsIn", { time: clock(s.ends_at_ms - now) });
    $("sale-clock").textContent = c;
    const total = s.quantity || 1;
    const left = Math.max(0, s.remaining ?? total);
    $("sale-bar-fill").style.width = `${(100 * left) / total}%`;
    const bar = $("sale-bar");
    bar.setAttribute("aria-valuemax", String(total));
    bar.setAttribute("aria-valuenow", String(left));
    $("sale-left").textContent = number(left);
    const f = this.figs.get(s.id) || {};
    $("sale-reserved").textContent = number(f.reserved_units || 0);
    $("sale-paid").textContent = number(f.paid_units || 0);
    const running = phase === "open" || phase === "countdown" || phase === "scheduled";
    show($("sale-close"), running);
    // One obvious action at a time: while a sale runs, its setup form folds away.
    show($("sale-form"), !running || this.formOpen);
    show($("sale-new"), running && !this.formOpen);
    $("sf-start").textContent = t(running ? "studio.sale.startAnother" : "studio.sale.start");
  }

  _renderPast() {
    const rows = this.past.map((s) => {
      const tr = el("tr");
      const phase = this._phase(s, s.server_time_ms || Date.now());
      for (const v of [`#${s.id}`, t(`studio.sale.phase.${phase}`), number(s.remaining), number(s.reserved_units || 0), number(s.paid_units || 0)]) {
        tr.append(el("td", null, v));
      }
      return tr;
    });
    $("past-sales-body").replaceChildren(...rows);
    show($("past-sales"), rows.length > 0);
  }
}
