// roomextras.js: what the room adds around the product card: its verified reviews (average and
// the latest few, text via textContent), anonymous card view/click counts for show analytics
// (one beacon every few seconds at most), and "Your data" (export / erase) for signed-in users.
//
//   const extras = new RoomExtras(streamId);  extras.watch();  extras.signedIn(user)

import { api, who } from "./api.js";
import { $, el, show } from "./dom.js";
import { errorText, number, t } from "./i18n.js";

const BEACON_EVERY_MS = 5000;

export class RoomExtras {
  constructor(streamId) {
    this.streamId = streamId;
    this.productId = null;
    this.saleId = null;
    this.pending = { card_view: new Set(), card_click: new Set() };
  }

  /** Follow the product card: reviews for its product, a view per sale shown, clicks on Buy. */
  watch() {
    const card = $("product-card");
    new MutationObserver(() => this._cardChanged(card)).observe(card, {
      attributes: true, attributeFilter: ["hidden", "data-product-id", "data-sale-id"],
    });
    $("buy").addEventListener("click", () => this.saleId && this.pending.card_click.add(this.saleId));
    setInterval(() => this._flush(), BEACON_EVERY_MS);
    this._cardChanged(card);
  }

  _cardChanged(card) {
    const pid = card.hidden ? null : Number(card.dataset.productId) || null;
    const sid = card.hidden ? null : Number(card.dataset.saleId) || null;
    if (sid && sid !== this.saleId) this.pending.card_view.add(sid);
    this.saleId = sid;
    if (pid !== this.productId) {
      this.productId = pid;
      if (pid) this._reviews(pid);
      else show($("product-reviews"), false);
    }
  }

  async _reviews(pid) {
    const box = $("product-reviews");
    let r;
    try {
      r = await api(`/api/products/${pid}/reviews`);
    } catch {
      return;
    }
    if (pid !== this.productId) return;
    box.replaceChildren(
      el("p", "reviews-summary", r.count ? t("reviews.summary", { avg: r.average, count: number(r.count) }) : t("reviews.none")),
    );
    for (const rv of r.latest) {
      const p = el("p", "review");
      p.append(el("span", "review-stars", "★".repeat(rv.rating)), " ",
        el("span", "review-text", rv.text), " ",
        el("small", "muted", `— ${rv.name || t("reviews.verified")}`));
      box.append(p);
    }
    show(box, true);
  }

  _flush() {
    const body = {};
    for (const [k, ids] of Object.entries(this.pending)) {
      if (ids.size) body[k] = [...ids].slice(0, 20);
      ids.clear();
    }
    if (!Object.keys(body).length) return;
    fetch(`/api/streams/${encodeURIComponent(this.streamId)}/beacon`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), keepalive: true,
    }).catch(() => {});
  }

  /** Show "Your data" to a signed-in user. */
  signedIn(user) {
    show($("mydata"), Boolean(user));
  }

  /** Wire the "Your data" buttons (export downloads JSON; erase asks first). */
  wireMyData() {
    $("mydata-export").addEventListener("click", async () => {
      try {
        const data = await api("/api/me/data");
        const a = el("a");
        a.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
        a.download = "livesell-my-data.json";
        a.click();
      } catch (e) {
        $("mydata-msg").textContent = t("common.error", { message: errorText(e) });
      }
    });
    $("mydata-erase").addEventListener("click", async () => {
      if (!who() || !confirm(t("mydata.confirm"))) return;
      try {
        await api("/api/me/data", { method: "DELETE" });
        $("mydata-msg").textContent = t("mydata.erased");
      } catch (e) {
        $("mydata-msg").textContent = t("common.error", { message: errorText(e) });
      }
    });
  }
}
