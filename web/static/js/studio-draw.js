// studio-draw.js: the studio's fair-draw desk: set up a drop as a draw (a sale that never
// opens first-come-first-served), watch the entries come in, close it, and show the proof
// (commitment before, seed and entry-list hash after) that anyone can check with
// `livesell verify-draw`.
//
//   const desk = new DrawDesk({ streamId, serverNow });

import { api } from "./api.js";
import { $ } from "./dom.js";
import { clock, errorText, number, t } from "./i18n.js";
import { latestDraw, pollDraw } from "./roomdraw.js";

const POLL_MS = 2000;
const num = (id) => parseInt($(id).value, 10);

export class DrawDesk {
  constructor({ streamId, serverNow }) {
    this.streamId = streamId;
    this.serverNow = serverNow;
    this.draw = null;
    $("draw-form").addEventListener("submit", (ev) => this.create(ev));
    $("draw-close").addEventListener("click", () => this.closeNow());
    pollDraw(this, POLL_MS, () => this.refresh(), () => this.render());
  }

  /** The stream's latest draw, if any (after a reload of the studio). */
  async load() {
    const draw = await latestDraw(this.streamId);
    if (draw === undefined) return;
    this.draw = draw;
    this.render();
  }

  async create(ev) {
    ev.preventDefault();
    $("df-error").textContent = "";
    const btn = $("df-create");
    btn.disabled = true;
    try {
      const sale = await api("/api/sales", {
        method: "POST",
        body: {
          product_id: num("df-product"), stream_id: this.streamId, price_cents: num("df-price"),
          quantity: num("df-units"), per_user_limit: 1, hold_s: num("df-hold"),
        },
      });
      this.draw = await api(`/api/sales/${sale.id}/draw`, { method: "POST", body: { window_s: num("df-window") } });
      this.render();
    } catch (err) {
      $("df-error").textContent = errorText(err);
    } finally {
      btn.disabled = false;
    }
  }

  async refresh() {
    try {
      this.draw = await api(`/api/sales/${this.draw.sale_id}/draw`);
    } catch {
      return;
    }
    this.render();
  }

  async closeNow() {
    if (!this.draw) return;
    $("draw-close").disabled = true;
    try {
      this.draw = await api(`/api/sales/${this.draw.sale_id}/draw/close`, { method: "POST", body: { now: true } });
    } catch (err) {
      $("df-error").textContent = errorText(err);
    } finally {
      $("draw-close").disabled = false;
    }
    this.render();
  }

  render() {
    const d = this.draw;
    $("draw-now").hidden = !d;
    if (!d) return;
    const args = { id: d.sale_id, count: number(d.entries) };
    const now = this.serverNow ? this.serverNow() : Date.now();
    let status;
    if (d.state === "awarded") status = t("studio.draw.awarded", { ...args, winners: number(d.winner_entries.length) });
    else if (now < d.ends_at_ms) status = t("studio.draw.open", { ...args, time: clock(d.ends_at_ms - now) });
    else status = t("studio.draw.closing", args);
    $("draw-status").textContent = status;
    $("draw-proof").textContent = d.state === "awarded"
      ? t("studio.draw.proof", { seed: d.seed, hash: d.entries_hash, commitment: d.commitment, winners: d.winners })
      : t("studio.draw.commitment", { hash: d.commitment });
    const link = $("draw-entries-link");
    link.hidden = d.state !== "awarded";
    link.href = `/api/sales/${d.sale_id}/draw/entries`;
    $("draw-close").hidden = d.state === "awarded";
    $("draw-form").hidden = d.state !== "awarded";
  }
}
