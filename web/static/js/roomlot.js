// roomlot.js: the room's auction lot card: current bid, leader, timer, a bid button.
//
//   const lots = new LotCard(room, streamId, { signIn, showName: () => bool });
//   lots.load()         the stream's latest lot (HTTP), on join and after a reconnect
//   lots.event(ev)      an "auction" room event (lot_opened, bid_accepted, lot_extended, lot_closed)
//   lots.tick()         redraw the timer (server clock: room.serverNow())
//   lots.redraw()       after a language change
//
// Bids go over the room socket (type "bid", a fresh idempotency key each tap; the same key on a
// retry). The leader's name shows only when they opted in; a bidder's id never reaches the room.

import { api, ids } from "./api.js";
import { clock, errorText, money, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

export class LotCard {
  constructor(room, streamId, { signIn, showName, onOrder = () => {} }) {
    this.onOrder = onOrder; // (order id) this viewer won a lot: their order is reserved
    this.room = room;
    this.streamId = streamId;
    this.signIn = signIn;
    this.showName = showName;
    this.lot = null;
    this.myBid = null; // {lot, cents}: this viewer's last accepted bid
    this.busy = false;
    this.el = {
      card: $("lot-card"), bid: $("lot-bid"), leader: $("lot-leader"), clock: $("lot-clock"),
      button: $("lot-bid-btn"), outcome: $("lot-outcome"), count: $("lot-count"),
    };
    this.el.button.addEventListener("click", () => this.bid());
  }

  async load() {
    try {
      const { lots } = await api(`/api/streams/${encodeURIComponent(this.streamId)}/lots`);
      if (lots.length) this.set(lots[0]);
    } catch {
      // The lot card waits for the next room event instead.
    }
  }

  event(ev) {
    if (ev.type !== "auction" || !ev.lot) return;
    // Events of an older lot must not replace a newer one's card.
    if (this.lot && ev.lot.id < this.lot.id) return;
    if (ev.event === "lot_closed" && ev.lot.state === "won") this.mine(ev.lot.id);
    this.set(ev.lot);
  }

  set(lot) {
    if (this.lot && this.lot.id === lot.id && lot.bids < this.lot.bids) return; // a stale read
    this.lot = lot;
    this.redraw();
  }

  async mine(lotId) {
    // Only the winner learns it's them (GET shows them their own order id).
    try {
      const lot = await api(`/api/lots/${lotId}`);
      if (lot.order_id) {
        this.won = lot;
        this.onOrder(lot.order_id);
        this.redraw();
      }
    } catch {
      // Signed out: nothing to show.
    }
  }

  remainingMs() {
    const now = this.room.serverNow ? this.room.serverNow() : Date.now();
    return Math.max(0, this.lot.ends_at_ms - now);
  }

  redraw() {
    const lot = this.lot;
    this.el.card.hidden = !lot || lot.state === "scheduled";
    if (!lot) return;
    const open = lot.state === "open" && this.remainingMs() > 0;
    const closed = lot.state === "won" || lot.state === "unsold";
    this.el.bid.textContent = !lot.bids
      ? t("lot.start", { amount: money(lot.start_cents) })
      : t(closed ? "lot.final" : "lot.current", { amount: money(lot.bid_cents) });
    this.el.count.textContent = t("lot.bids", { count: lot.bids });
    // Nobody "leads" a closed lot: the outcome line says who won.
    this.el.leader.textContent = lot.bids && !closed ? t("lot.leader", { name: lot.leader_name || t("common.someone") }) : "";
    this.el.button.hidden = !open;
    this.el.button.disabled = this.busy;
    this.el.button.textContent = t("lot.bidButton", { amount: money(lot.next_bid_cents) });
    if (lot.state === "won") {
      this.el.outcome.textContent = this.won && this.won.id === lot.id
        ? t("lot.youWon", { amount: money(lot.price_cents) })
        : t("lot.sold", { amount: money(lot.price_cents) });
    } else if (lot.state === "unsold") {
      this.el.outcome.textContent = t("lot.unsold");
    } else if (open && this.myBid && this.myBid.lot === lot.id) {
      // "Your bid leads" must not outlive a higher bid from someone else.
      this.el.outcome.textContent = lot.bid_cents > this.myBid.cents
        ? t("lot.outbid", { amount: money(lot.bid_cents) })
        : t("lot.yourBid", { amount: money(this.myBid.cents) });
    }
    this.tick();
  }

  tick() {
    if (!this.lot || this.lot.state !== "open") {
      if (this.lot) this.el.clock.textContent = t("lot.closed");
      return;
    }
    const left = this.remainingMs();
    this.el.clock.textContent = left > 0 ? t("lot.endsIn", { time: clock(left) }) : t("lot.closing");
    this.el.card.dataset.urgent = left < 10_000 ? "true" : "false";
    if (left <= 0) this.el.button.hidden = true;
  }

  async bid() {
    if (!this.lot || this.busy) return;
    try {
      await this.signIn();
    } catch {
      return;
    }
    this.busy = true;
    this.el.outcome.textContent = "";
    this.redraw();
    const ev = { type: "bid", lot_id: this.lot.id, key: ids.idempotencyKey(),
      amount_cents: this.lot.next_bid_cents, show_name: this.showName() };
    try {
      await this.room.request(ev);
      this.myBid = { lot: ev.lot_id, cents: ev.amount_cents };
    } catch (err) {
      this.el.outcome.textContent = t("lot.refused", { reason: errorText(err) });
      this.load();
    } finally {
      this.busy = false;
      this.redraw();
    }
  }
}
