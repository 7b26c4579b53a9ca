// analytics.js: a show's report (GET /api/streams/{id}/analytics) drawn as totals tiles and
// per-minute charts (chart.js), and its CSV download. Shared by the studio (studio-analytics.js)
// and the ops dashboard (ops.js); text goes in via textContent.

import { token } from "./api.js";
import { LineChart } from "./chart.js";
import { el } from "./dom.js";
import { money, number, t } from "./i18n.js";

const TILES = [
  ["viewers_peak", number], ["viewers_avg", number], ["watch_s", (s) => number(Math.round(s / 60))],
  ["chat_messages", number], ["reactions", number], ["card_views", number], ["card_clicks", number],
  ["buy_attempts", number], ["orders", number], ["paid_orders", number],
  ["conversion", (c) => `${(c * 100).toFixed(1)}%`],
];
const CHARTS = [
  ["viewers_peak", "#4f8cff"], ["chat_messages", "#2bb673"], ["orders", "#ff5a36"], ["gmv_cents", "#f5a524"],
];

/** The report's totals as tiles in the <dl> `box` (each tile's dd holds its key in data-key). */
export function renderTotals(box, totals, currency = "USD") {
  box.replaceChildren();
  for (const [key, fmt] of [...TILES, ["gmv_cents", (c) => money(c, currency)]]) {
    const d = el("div", "an-tile");
    const dd = el("dd", "num", fmt(totals[key] || 0));
    dd.dataset.key = key;
    d.append(el("dt", "", t(`analytics.${key}`)), dd);
    box.append(d);
  }
}

/** The report's figures by minute as one chart per series in `box`. */
export function renderMinuteCharts(box, minutes, currency = "USD") {
  const times = minutes.map((m) => m.minute_ms + 30_000);
  const end = minutes.length ? minutes[minutes.length - 1].minute_ms + 60_000 : Date.now();
  const span = Math.max(60_000, end - (minutes.length ? minutes[0].minute_ms : end));
  box.replaceChildren();
  const canvases = CHARTS.map(([key]) => {
    const fig = el("figure", "an-chart");
    const canvas = el("canvas");
    canvas.dataset.key = key;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", t(`analytics.${key}`));
    fig.append(el("figcaption", "", t(`analytics.${key}`)), canvas);
    box.append(fig);
    return canvas;
  });
  // Drawn once every chart is in the grid: a chart sized while it was alone in its row was
  // then squeezed into its column, squashing its caption's text.
  CHARTS.forEach(([key, color], i) => {
    const fmt = key === "gmv_cents" ? (v) => money(v, currency) : number;
    new LineChart(canvases[i], { color, windowMs: span, caption: (max) => t("analytics.max", { max: fmt(max) }) })
      .draw(times, minutes.map((m) => m[key]), end);
  });
}

/** Download the show's figures by minute as CSV (the route needs the bearer token). */
export async function downloadCsv(streamId) {
  const resp = await fetch(`/api/streams/${encodeURIComponent(streamId)}/analytics?format=csv`, {
    headers: { Authorization: `Bearer ${token()}` },
  });
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a");
  a.href = url;
  a.download = `${streamId}-analytics.csv`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
