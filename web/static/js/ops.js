// ops.js: the operator's dashboard. Every 2 s it reads GET /api/ops/overview (admin) and draws
// health tiles, three 15-minute charts (buys/s, viewers, chat/min) on hand-drawn canvases,
// the live streams and the recent sales; each sale's audit runs from its row. One show picked
// from the newest (a live one first) gets its analytics charted as in the studio (analytics.js).

import { downloadCsv, renderMinuteCharts, renderTotals } from "./analytics.js";
import { api, clearSession, token } from "./api.js";
import { LineChart } from "./chart.js";
import { $, button, el, show } from "./dom.js";
import { applyI18n, errorText, langSwitch, money, number, onLangChange, t, time } from "./i18n.js";
import { signInFor } from "./signinform.js";

const REFRESH_MS = 2000;
// A report rolls the show's counters into SQL first: fetched on a pick, then this often.
const ANALYTICS_MS = 30_000;
const audits = new Map(); // sale id -> {ok, problems} | "running"
let data = null;
let charts = null;
let failures = 0;
let picked = null; // the show whose analytics are charted
let analytics = null; // its last report

function tile(label, value, level, detail) {
  const li = el("li", `tile tile-${level}`);
  const dot = el("span", "tile-dot");
  dot.setAttribute("aria-hidden", "true");
  const head = el("span", "tile-label", label);
  li.append(dot, head, el("strong", "tile-value num", value));
  li.append(el("span", "tile-detail muted", detail || t(`ops.level.${level}`)));
  return li;
}

function renderTiles(h) {
  const lag = h.persister.unpersisted_events;
  const loop = h.loop_lag_ms;
  const byState = h.sales_by_state || {};
  $("tiles").replaceChildren(
    tile(t("ops.tile.redis"), h.redis.ok ? t("ops.ms", { ms: h.redis.ms }) : t("ops.down"), h.redis.ok ? (h.redis.ms > 50 ? "warn" : "ok") : "bad"),
    tile(t("ops.tile.db"), h.database.ok ? t("ops.ms", { ms: h.database.ms }) : t("ops.down"), h.database.ok ? (h.database.ms > 100 ? "warn" : "ok") : "bad"),
    tile(t("ops.tile.workers"), number(h.workers), "ok", t("ops.tile.workersDetail", { clients: number(h.room.clients), rooms: number(h.room.rooms) })),
    lag === null
      ? tile(t("ops.tile.persister"), t("ops.unknown"), "bad")
      : tile(
          t("ops.tile.persister"),
          t("ops.events", { count: number(lag) }),
          h.persister.mode === "off" ? "warn" : lag > 1000 ? "bad" : lag > 100 ? "warn" : "ok",
          t("ops.tile.persisterDetail", { mode: h.persister.mode, sales: number(h.persister.active_sales) }),
        ),
    tile(t("ops.tile.loop"), t("ops.ms", { ms: loop }), loop > 100 ? "bad" : loop > 25 ? "warn" : "ok"),
    tile(
      t("ops.tile.sales"),
      number(byState.open || 0),
      "ok",
      t("ops.tile.salesDetail", { scheduled: number(byState.scheduled || 0), closed: number(byState.closed || 0) }),
    ),
  );
}

function renderCharts(series, nowMs) {
  if (!charts) {
    const caption = (fmt) => (max) => t("ops.chart.max", { max: fmt(max) });
    charts = {
      buys: new LineChart($("chart-buys"), { color: "#ff4d2e", caption: caption((v) => number(Math.round(v * 10) / 10)) }),
      viewers: new LineChart($("chart-viewers"), { color: "#4da3ff", caption: caption((v) => number(v)) }),
      chat: new LineChart($("chart-chat"), { color: "#2fbf71", caption: caption((v) => number(Math.round(v))) }),
    };
  }
  const last = (a) => (a.length ? a[a.length - 1] : 0);
  charts.buys.draw(series.t, series.buys_per_s, nowMs);
  charts.viewers.draw(series.t, series.viewers, nowMs);
  charts.chat.draw(series.t, series.chat_per_min, nowMs);
  $("cv-buys").textContent = number(last(series.buys_per_s));
  $("cv-viewers").textContent = number(last(series.viewers));
  $("cv-chat").textContent = number(last(series.chat_per_min));
}

function cells(tr, values) {
  for (const v of values) tr.append(v instanceof Node ? wrapTd(v) : el("td", null, v));
}

function wrapTd(node) {
  const td = el("td");
  td.append(node);
  return td;
}

function renderStreams(streams) {
  $("streams").replaceChildren(
    ...streams.map((s) => {
      const tr = el("tr");
      const a = el("a", null, s.title || s.id);
      a.href = `/live/${encodeURIComponent(s.id)}`;
      // The show's analytics are charted in the panel above.
      const an = button(t("analytics.open"), "btn-small btn-ghost", () => pick(s.id));
      an.setAttribute("aria-label", t("ops.analytics.chartLabel", { title: s.title || s.id }));
      const title = el("span");
      title.append(a, " · ", an);
      // Its audience may be synthetic: the charts above leave it out.
      if (s.rehearsal) title.append(" ", el("span", "badge badge-rehearsal", t("studio.rehearsal.badge")));
      cells(tr, [
        title,
        s.host_id,
        number(s.viewers),
        s.bitrate_bps === null ? "–" : t("ops.kbps", { kbps: number(Math.round(s.bitrate_bps / 1000)) }),
        number(s.chat_per_min),
        number(s.likes),
      ]);
      return tr;
    }),
  );
  show($("streams-empty"), streams.length === 0);
}

function stockCell(s) {
  const wrap = el("div", "stock");
  const bar = el("span", "stock-bar");
  const fill = el("span");
  fill.style.width = `${(100 * Math.max(0, s.remaining)) / Math.max(1, s.quantity)}%`;
  bar.append(fill);
  bar.setAttribute("aria-hidden", "true");
  wrap.append(bar, el("span", null, t("ops.stock", { left: number(s.remaining), total: number(s.quantity) })));
  return wrap;
}

async function runAudit(id) {
  audits.set(id, "running");
  renderSales(data.sales);
  try {
    const res = await fetch(`/api/sales/${id}/audit`, { headers: { Authorization: `Bearer ${token()}` } });
    const body = await res.json();
    audits.set(id, { ok: res.status === 200 && body.ok, problems: body.problems || [body.message] });
  } catch (e) {
    audits.set(id, { ok: false, problems: [String(e)] });
  }
  renderSales(data.sales);
}

function auditCell(s) {
  const wrap = el("div", "audit");
  const a = audits.get(s.id);
  if (a === "running") {
    wrap.append(el("span", "audit-run muted", t("ops.audit.running")));
  } else if (a) {
    const mark = el("span", a.ok ? "audit-ok" : "audit-bad", a.ok ? t("ops.audit.ok") : t("ops.audit.bad"));
    if (!a.ok) mark.title = a.problems.join("\n");
    wrap.append(mark);
  } else {
    wrap.append(el("span", "muted", "–"));
  }
  const b = button(t("ops.audit.run"), "btn-small btn-ghost", () => runAudit(s.id));
  b.setAttribute("aria-label", t("ops.audit.runLabel", { id: s.id }));
  b.disabled = a === "running";
  wrap.append(b);
  return wrap;
}

function renderSales(sales) {
  const titles = new Map((data.streams || []).map((s) => [s.id, s.title]));
  $("sales").replaceChildren(
    ...sales.map((s) => {
      const tr = el("tr");
      tr.dataset.sale = String(s.id);
      const state = el("span", `badge state-${s.state}`, t(`ops.state.${s.state}`));
      cells(tr, [
        `#${s.id}`,
        s.lot_stream_id
          ? t("ops.lotOf", { stream: titles.get(s.lot_stream_id) || s.lot_stream_id })
          : (s.stream_id && titles.get(s.stream_id)) || s.stream_id || "–",
        state,
        stockCell(s),
        number(s.reserved_units),
        number(s.paid_units),
        number(s.expired_units),
        money(s.gmv_cents, "USD"),
        auditCell(s),
      ]);
      return tr;
    }),
  );
  show($("sales-empty"), sales.length === 0);
}

function renderShows(shows) {
  const select = $("an-stream");
  if (!picked && shows.length) picked = (shows.find((s) => s.status === "live") || shows[0]).id;
  const options = shows.map((s) => {
    const o = el("option", null, `${s.title || s.id} · ${t(`ops.analytics.status.${s.status}`)}`);
    o.value = s.id;
    return o;
  });
  if (picked && !shows.some((s) => s.id === picked)) {
    const o = el("option", null, picked);
    o.value = picked;
    options.push(o);
  }
  select.replaceChildren(...options);
  select.value = picked || "";
  show($("an-empty"), !picked);
  show($("an-csv"), Boolean(picked));
}

function renderAnalytics() {
  if (!analytics) return;
  renderTotals($("an-totals"), analytics.totals);
  renderMinuteCharts($("an-charts"), analytics.by_minute);
}

async function loadAnalytics() {
  if (!picked) return;
  const id = picked;
  try {
    const r = await api(`/api/streams/${encodeURIComponent(id)}/analytics`);
    if (id !== picked) return; // another show was picked meanwhile
    analytics = r;
    $("an-error").textContent = "";
    renderAnalytics();
  } catch (e) {
    if (id === picked) $("an-error").textContent = t("common.error", { message: errorText(e) });
  }
}

function pick(id) {
  picked = id;
  analytics = null;
  $("an-totals").replaceChildren();
  $("an-charts").replaceChildren();
  if (data) renderShows(data.shows || []);
  $("show-analytics").scrollIntoView({ block: "nearest" });
  loadAnalytics();
}

function render() {
  if (!data) return;
  renderShows(data.shows || []);
  renderTiles(data.health);
  renderCharts(data.series, data.server_time_ms);
  renderStreams(data.streams);
  renderSales(data.sales);
  renderAnalytics();
  $("updated").textContent = t("ops.updated", { time: time(data.server_time_ms) });
}

async function refresh() {
  try {
    data = await api("/api/ops/overview");
    failures = 0;
    show($("stale"), false);
    render();
  } catch (e) {
    failures += 1;
    if (e.status === 401 || e.status === 403) {
      clearSession(); // an expired or foreign token: back to the sign-in form
      location.reload();
      return;
    }
    if (failures >= 2) {
      $("stale").textContent = t("ops.stale");
      show($("stale"), true);
    }
  }
}

async function main() {
  applyI18n();
  langSwitch($("lang"));
  onLangChange(render);
  const me = await signInFor((m) => m.role === "admin", "ops.signin.notAdmin");
  if (!me) return;
  show($("view-ops"), true);
  $("an-stream").addEventListener("change", (e) => pick(e.target.value));
  $("an-csv").addEventListener("click", () => picked && downloadCsv(picked));
  await refresh();
  await loadAnalytics();
  setInterval(refresh, REFRESH_MS);
  setInterval(loadAnalytics, ANALYTICS_MS);
  addEventListener("resize", () => {
    if (data) renderCharts(data.series, data.server_time_ms);
    renderAnalytics();
  });
}

main();
