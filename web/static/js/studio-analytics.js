// studio-analytics.js: a show's analytics in the studio (after the show, or with #analytics):
// totals and per-minute charts (analytics.js, as on the ops page), per product and per promoter,
// and a CSV download. Everything from GET /api/streams/{id}/analytics; text goes in via textContent.

import { downloadCsv, renderMinuteCharts, renderTotals } from "./analytics.js";
import { api } from "./api.js";
import { $, el, show } from "./dom.js";
import { errorText, money, number, t } from "./i18n.js";

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
  renderTotals($("an-totals"), r.totals, currency);
  renderMinuteCharts($("an-charts"), r.by_minute, currency);
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
