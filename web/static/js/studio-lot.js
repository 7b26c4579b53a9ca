// studio-lot.js: the studio's auction desk: create and open a lot, watch its bids (with bidder
// ids: the host sees them, the room never does), offer a lapsed lot to the runner-up.
//
//   const desk = new LotDesk({ streamId });
//   desk.onEvent(ev)   "auction" room events refresh the bid list

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { errorText, money, t } from "./i18n.js";

const num = (id) => parseInt($(id).value, 10);

export class LotDesk {
  constructor({ streamId }) {
    this.streamId = streamId;
    this.lot = null;
    $("lot-form").addEventListener("submit", (ev) => this.create(ev));
    $("lot-runner-up").addEventListener("click", () => this.runnerUp());
  }

  async create(ev) {
    ev.preventDefault();
    $("lf-error").textContent = "";
    const body = {
      product_id: num("lf-product"), start_cents: num("lf-start"), increment_cents: num("lf-inc"),
      duration_s: num("lf-duration"), reserve_cents: num("lf-reserve") || 0, stream_id: this.streamId,
    };
    try {
      const lot = await api("/api/lots", { method: "POST", body });
      this.lot = await api(`/api/lots/${lot.id}/open`, { method: "POST" });
      this.render([]);
    } catch (err) {
      $("lf-error").textContent = errorText(err);
    }
  }

  async onEvent(ev) {
    if (ev.type !== "auction" || !ev.lot) return;
    this.lot = ev.lot;
    try {
      const { bids } = await api(`/api/lots/${ev.lot.id}/bids`);
      this.render(bids);
    } catch {
      this.render([]);
    }
  }

  render(bids) {
    const lot = this.lot;
    if (!lot) return;
    const head = lot.bids ? t("lot.current", { amount: money(lot.bid_cents) }) : t("lot.start", { amount: money(lot.start_cents) });
    const state = t(`studio.lot.state.${lot.state}`); // words, not the server's state code
    $("lot-status").textContent = t("studio.lot.status", { id: lot.id, state, price: head });
    $("lot-bids").replaceChildren(
      ...(bids.length ? bids.slice(0, 20).map((b) => el("li", "", t("studio.lot.bid", { user: b.user_id, amount: money(b.amount_cents) })))
        : [el("li", "muted", t("studio.lot.none"))]),
    );
    $("lot-runner-up").hidden = lot.state !== "won";
  }

  async runnerUp() {
    try {
      this.lot = await api(`/api/lots/${this.lot.id}/runner-up`, { method: "POST" });
      this.render([]);
    } catch (err) {
      $("lf-error").textContent = errorText(err);
    }
  }
}
