// studio-analytics.js: a show's analytics in the studio (after the show, or with #analytics):
// totals, per-minute charts (chart.js, as on the ops page), per product and per promoter, and a
// CSV download. Everything from GET /api/streams/{id}/analytics; text goes in via textContent.

import { api, token } from "./api.js";
import { LineChart } from "./chart.js";
import { $, el, show } from "./dom.js";
import { errorText, money, number, t } from "./i18n.js";

const TILES = [
  ["viewers_peak", number], ["viewers_avg", number], ["watch_s", (s) => number(Math.round(s / 60))],
  ["chat_messages", number], ["reactions", number], ["card_views", number], ["card_clicks", number],
  ["buy_attempts", number], ["orders", number], ["paid_orders", number],
  ["conversion", (c) => `${(c * 100).toFixed(1)}%`],
];
const CHARTS = [
  ["viewers_peak", "#4f8cff"], ["chat_messages", "#2bb673"], ["orders", "#ff5a36"], ["gmv_cents", "#f5a524"],
];

function table(head, rows) {
  const tbl = el("table", "mini-table num");
  const tr = el("tr");
  for (const h of head) tr.append(el("th", "", h));
  const thead = el("thead");
  thead.append(tr);
  const tbody = el("tbody");
  for (const r of rows) {
    const row = el("tr");
    for (const v of r) row.append(el("td", "", v));
    tbody.append(row);
  }
  tbl.append(thead, tbody);
  return tbl;
}

async function downloadCsv(streamId) {
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

/** Fill the #analytics section with the show's report; `currency` formats GMV. */
export async function showAnalytics(streamId, currency = "USD") {
  const box = $("analytics");
  show(box, true);
  let r;
  try {
    r = await api(`/api/streams/${encodeURIComponent(streamId)}/analytics`);
  } catch (e) {
    $("an-error").textContent = t("common.error", { message: errorText(e) });
    return;
  }
  const tiles = $("an-totals");
  tiles.replaceChildren();
  for (const [key, fmt] of [...TILES, ["gmv_cents", (c) => money(c, currency)]]) {
    const d = el("div", "an-tile");
    d.append(el("dt", "", t(`analytics.${key}`)), el("dd", "num", fmt(r.totals[key] || 0)));
    tiles.append(d);
  }
  const minutes = r.by_minute;
  const times = minutes.map((m) => m.minute_ms + 30_000);
  const end = minutes.length ? minutes[minutes.length - 1].minute_ms + 60_000 : Date.now();
  const span = Math.max(60_000, end - (minutes.length ? minutes[0].minute_ms : end));
  const charts = $("an-charts");
  charts.replaceChildren();
  for (const [key, color] of CHARTS) {
    const fig = el("figure", "an-chart");
    const canvas = el("canvas");
    fig.append(el("figcaption", "", t(`analytics.${key}`)), canvas);
    charts.append(fig);
    const fmt = key === "gmv_cents" ? (v) => money(v, currency) : number;
    new LineChart(canvas, { color, windowMs: span, caption: (max) => t("analytics.max", { max: fmt(max) }) })
      .draw(times, minutes.map((m) => m[key]), end);
  }
  $("an-products").replaceChildren(
    table(
      [t("analytics.product"), t("analytics.card_views"), t("analytics.card_clicks"), t("analytics.buy_attempts"),
        t("analytics.orders"), t("analytics.paid_orders"), t("analytics.gmv_cents")],
      r.products.map((p) => [p.name, number(p.card_views), number(p.card_clicks), number(p.buy_attempts),
        number(p.orders), number(p.paid_orders), money(p.gmv_cents, currency)]),
    ),
  );
  $("an-promoters").replaceChildren(
    r.promoters.length
      ? table(
          [t("analytics.promoter"), t("analytics.orders"), t("analytics.paid_orders"), t("analytics.gmv_cents")],
          r.promoters.map((p) => [p.promoter_id, number(p.orders), number(p.paid_orders), money(p.gmv_cents, currency)]),
        )
      : el("p", "muted small", t("analytics.noPromoters")),
  );
  $("an-csv").onclick = () => downloadCsv(streamId);
}
