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
  const charts = CHARTS.map(([key, color]) => {
    const fig = el("figure", "an-chart");
    const canvas = el("canvas");
    canvas.dataset.key = key;
    canvas.setAttribute("role", "img");
    fig.append(el("figcaption", "", t(`analytics.${key}`)), canvas);
    box.append(fig);
    const format = key === "gmv_cents" ? (v) => money(v, currency) : number;
    const caption = (max, points) =>
      max <= 0 ? t(`analytics.none.${key}`)
      : points === 1 ? t("analytics.oneMinute", { value: format(max) })
      : t("analytics.max", { max: format(max) });
    const chart = new LineChart(canvas, { color, windowMs: span, caption, format, label: t(`analytics.${key}`) });
    return [chart, key];
  });
  // Drawn once every figure is in the grid: a canvas sized before its neighbours arrive takes
  // the whole row's width and its text comes out squeezed once the grid shares the row.
  for (const [chart, key] of charts) chart.draw(times, minutes.map((m) => m[key]), end);
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
