// roomdraw.js: the room's fair-draw card: the published commitment, an "Enter the draw" button
// (the entry goes over the room socket: being in the room is the presence check), and after
// the close the revealed seed and whether the viewer's entry won.
//
//   const draw = new DrawCard(room, streamId, { signIn });
//   draw.load()   the stream's latest draw (HTTP); polled while it takes entries
//   draw.redraw() after a language change

import { api } from "./api.js";
import { clock, errorText, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 3000;

/**
 * Calls ``refresh`` every ``ms`` while the holder's draw takes entries (entries arrive over
 * other viewers' sockets, so only polling sees them), else ``idle`` (a clock tick).
 */
export function pollDraw(holder, ms, refresh, idle) {
  return setInterval(() => (holder.draw && holder.draw.state !== "awarded" ? refresh() : idle()), ms);
}

/** The stream's latest draws, newest first; undefined when the server could not be asked. */
export async function streamDraws(streamId) {
  try {
    return (await api(`/api/streams/${encodeURIComponent(streamId)}/draws`)).draws;
  } catch {
    return undefined;
  }
}

/** The stream's latest draw, or null; undefined when the server could not be asked. */
export async function latestDraw(streamId) {
  const draws = await streamDraws(streamId);
  return draws === undefined ? undefined : draws[0] || null;
}

export class DrawCard {
  constructor(room, streamId, { signIn, onWon = () => {}, drawSales = new Set(), onList = () => {} }) {
    this.room = room;
    // The sales run as draws: entered here, never bought on the sale card (which skips them).
    this.drawSales = drawSales;
    this.onList = onList;
    this.onWon = onWon; // (sale id) the viewer's entry won: their order is reserved
    this.streamId = streamId;
    this.signIn = signIn;
    this.draw = null;
    this.entry = null; // this viewer's entry id
    this.el = {
      card: $("draw-card"), info: $("draw-info"), commit: $("draw-commit"),
      button: $("draw-enter"), outcome: $("draw-outcome"),
    };
    this.el.button.addEventListener("click", () => this.enter());
    pollDraw(this, POLL_MS, () => this.load(), () => this.tick());
  }

  async load() {
    const draws = await streamDraws(this.streamId);
    if (draws === undefined) return;
    this.draw = draws[0] || null;
    const known = this.drawSales.size;
    for (const d of draws) this.drawSales.add(d.sale_id);
    if (this.drawSales.size !== known) this.onList();
    this.redraw();
  }

  /** A sale was just set up in the room: it may be a new draw's (the host creates the sale,
   * then the draw), so look again shortly, and once more in case the host was slow. */
  saleScheduled() {
    for (const ms of [1000, 4000]) setTimeout(() => this.load(), ms);
  }

  async enter() {
    try {
      await this.signIn();
    } catch {
      return;
    }
    try {
      const reply = await this.room.request({ type: "enter_draw", sale_id: this.draw.sale_id });
      this.entry = reply.entry_id;
      this.el.outcome.textContent = t("draw.entered", { entry: this.entry.slice(0, 8) });
    } catch (err) {
      this.el.outcome.textContent = errorText(err);
    }
    this.redraw();
  }

  tick() {
    if (!this.draw || this.draw.state !== "open") return;
    const now = this.room.serverNow ? this.room.serverNow() : Date.now();
    const left = Math.max(0, this.draw.ends_at_ms - now);
    this.el.info.textContent = t("draw.open", { count: this.draw.entries, time: clock(left) });
  }

  redraw() {
    const d = this.draw;
    this.el.card.hidden = !d;
    if (!d) return;
    this.el.commit.textContent = t("draw.commitment", { hash: d.commitment.slice(0, 16) });
    this.el.button.hidden = d.state !== "open" || Boolean(this.entry);
    if (d.state === "awarded") {
      this.el.info.textContent = t("draw.closed", { count: d.entries, winners: d.winner_entries.length });
      this.el.commit.textContent = t("draw.seed", { seed: (d.seed || "").slice(0, 16) });
      if (this.entry) {
        const won = d.winner_entries.includes(this.entry);
        this.el.outcome.textContent = t(won ? "draw.won" : "draw.lost");
        if (won && this.told !== d.sale_id) {
          this.told = d.sale_id;
          this.onWon(d.sale_id);
        }
      }
    }
    this.tick();
  }
}
