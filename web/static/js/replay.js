// replay.js: the shoppable replay of an ended show (/replay/{id}).
//
// The show is its recordings (one file per broadcast, each named by the wall-clock time of its
// first frame) plus its room timeline from SQL (/api/streams/{id}/timeline). The playhead is a
// wall-clock time: recording start + currentTime. The product card, the sale state and the chat
// are what the room showed at that time; a marker seeks to when a product was pinned or a sale
// opened or closed. A sale of the product on screen that is open *now* (still running, or opened
// again by the host for the replay, at whatever price it set) can be bought right here. User text
// goes in via textContent only.

import { api, guestSignIn, ids, who } from "./api.js";
import { $, el } from "./dom.js";
import { applyI18n, clock, errorText, langSwitch, money, onLangChange, t } from "./i18n.js";

const streamId = decodeURIComponent(location.pathname.split("/").pop() || "");
const video = $("video");
let recordings = [];
let events = [];
let playing = -1; // index in recordings of the file in the <video>
let shownChat = -1;

async function timeline() {
  const all = [];
  let after = 0;
  for (;;) {
    const page = await api(`/api/streams/${encodeURIComponent(streamId)}/timeline?after_seq=${after}`);
    all.push(...page.events);
    if (page.next_after_seq === null || page.events.length === 0) return all;
    after = page.next_after_seq;
  }
}

function showStart() {
  return recordings.length ? recordings[0].started_at_ms : 0;
}

function playheadMs() {
  const rec = recordings[playing];
  return rec ? rec.started_at_ms + video.currentTime * 1000 : 0;
}

function recordingAt(atMs) {
  let idx = 0;
  recordings.forEach((r, i) => {
    if (r.started_at_ms <= atMs) idx = i;
  });
  return idx;
}

function load(idx) {
  playing = idx;
  video.src = recordings[idx].url;
  return new Promise((resolve) => video.addEventListener("loadedmetadata", resolve, { once: true }));
}

/** Seek the show to wall-clock time ``atMs`` (switching file when it was another broadcast). */
export async function seekTo(atMs) {
  const idx = recordingAt(atMs);
  if (idx !== playing) await load(idx);
  video.currentTime = Math.max(0, (atMs - recordings[idx].started_at_ms) / 1000);
  video.play().catch(() => {});
  render();
}

function productName(id) {
  const pin = events.find((e) => e.type === "pinned" && e.product.id === id);
  return pin ? pin.product.name : t("replay.productN", { id });
}

function markers() {
  const list = [];
  for (const e of events) {
    if (e.type === "pinned") list.push({ e, label: e.product.name, kind: "pin" });
    if (e.type === "sale" && (e.phase === "opened" || e.phase === "closed")) {
      const id = `replay.sale.${e.phase}`;
      list.push({ e, label: t(id, { product: productName(e.sale.product_id) }), kind: e.phase });
    }
  }
  return list;
}

function drawMarkers() {
  const ol = $("markers");
  const list = markers();
  ol.replaceChildren(
    ...list.map(({ e, label, kind }) => {
      const li = el("li");
      const b = el("button", "btn btn-ghost btn-small replay-marker");
      b.type = "button";
      b.dataset.kind = kind;
      b.dataset.at = String(e.at_ms);
      if (kind === "pin") b.dataset.product = String(e.product.id);
      b.append(el("span", "when num", clock(e.at_ms - showStart())), el("span", "what", label));
      b.addEventListener("click", () => seekTo(e.at_ms));
      li.append(b);
      return li;
    }),
  );
  $("markers-empty").hidden = list.length > 0;
}

function stateAt(now) {
  let product = null;
  const sales = new Map();
  for (const e of events) {
    if (e.at_ms > now) break;
    if (e.type === "pinned") product = e.product;
    if (e.type === "unpinned") product = null;
    if (e.type === "sale") sales.set(e.sale.product_id, e);
  }
  return { product, sale: product ? sales.get(product.id) : null };
}

function drawProduct(now) {
  const { product, sale } = stateAt(now);
  const card = $("product-card");
  card.hidden = !product;
  for (const b of document.querySelectorAll(".replay-marker")) {
    b.setAttribute("aria-current", String(!!product && b.dataset.product === String(product.id)));
  }
  if (!product) {
    buying.product = null;
    return;
  }
  card.dataset.product = String(product.id);
  $("product-name").textContent = product.name;
  $("product-price").textContent = money(product.price_cents, product.currency);
  const img = $("product-img");
  img.hidden = !product.image_url;
  if (product.image_url && img.src !== product.image_url) img.src = product.image_url;
  $("sale-state").textContent = sale ? t(`replay.saleState.${sale.phase}`) : "";
  if (buying.product !== product.id) offerSale(product);
}

// -- buying from the replay ------------------------------------------------------------------

const buying = { product: null, sale: null, order: null, keys: new Map() };

/** Show "Buy now" when a sale of ``product`` in this show is open now. */
async function offerSale(product) {
  buying.product = product.id;
  buying.sale = null;
  $("buy-area").hidden = true;
  let open;
  try {
    open = (await api(`/api/streams/${encodeURIComponent(streamId)}/sales/open`)).sales;
  } catch {
    return;
  }
  const sale = open.find((s) => s.product_id === product.id);
  if (!sale || buying.product !== product.id) return; // none, or the playhead moved on meanwhile
  buying.sale = sale;
  $("buy").textContent = t("replay.buy", { price: money(sale.price_cents, product.currency) });
  $("buy").hidden = false;
  $("pay").hidden = true;
  $("buy-outcome").textContent = "";
  $("buy-area").hidden = false;
}

async function buy() {
  const sale = buying.sale;
  if (!sale) return;
  if (!who()) {
    $("guest-form").hidden = false;
    $("guest-name").focus();
    return;
  }
  if (!buying.keys.has(sale.id)) buying.keys.set(sale.id, ids.idempotencyKey());
  try {
    const res = await api(`/api/sales/${sale.id}/buy`, {
      method: "POST",
      body: { qty: 1 },
      idempotencyKey: buying.keys.get(sale.id),
    });
    buying.order = res.order;
    const minutes = Math.max(1, Math.round((res.order.expires_at_ms - Date.now()) / 60000));
    $("buy").hidden = true;
    // Without simulated pay, the shop's payment provider confirms the order: no Pay here.
    const simulated = (await api("/api/payments/config").catch(() => ({}))).simulated_pay !== false;
    $("buy-outcome").textContent = t(simulated ? "replay.reserved" : "replay.waiting", { minutes });
    if (!simulated) return;
    const product = stateAt(playheadMs()).product;
    $("pay").textContent = t("replay.pay", { amount: money(res.order.total_cents, product ? product.currency : "USD") });
    $("pay").hidden = false;
  } catch (e) {
    $("buy-outcome").textContent = t("replay.buyFailed", { reason: e.message });
  }
}

async function pay() {
  if (!buying.order) return;
  try {
    await api(`/api/orders/${encodeURIComponent(buying.order.id)}/pay`, { method: "POST" });
    $("pay").hidden = true;
    $("buy-outcome").textContent = t("replay.paid");
  } catch (e) {
    $("buy-outcome").textContent = t("replay.buyFailed", { reason: e.message });
  }
}

function wireBuying() {
  $("buy").addEventListener("click", buy);
  $("pay").addEventListener("click", pay);
  $("guest-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await guestSignIn($("guest-name").value.trim());
      $("guest-form").hidden = true;
      await buy();
    } catch (err) {
      $("buy-outcome").textContent = t("replay.buyFailed", { reason: err.message });
    }
  });
}

function drawChat(now) {
  const upto = events.findLastIndex((e) => e.at_ms <= now);
  if (upto === shownChat) return;
  shownChat = upto;
  const deleted = new Set(events.filter((e, i) => i <= upto && e.type === "deleted").map((e) => e.target));
  const lines = events
    .slice(0, upto + 1)
    .filter((e) => e.type === "chat" && !deleted.has(e.seq))
    .slice(-100)
    .map((e) => {
      const li = el("li");
      li.append(el("span", "who", e.name || e.user_id), el("span", "text", e.text));
      return li;
    });
  const ol = $("chat");
  ol.replaceChildren(...lines);
  ol.scrollTop = ol.scrollHeight;
  $("chat-empty").hidden = lines.length > 0;
}

function render() {
  const now = playheadMs();
  drawProduct(now);
  drawChat(now);
}

async function main() {
  applyI18n();
  langSwitch($("lang"));
  wireBuying();
  onLangChange(() => {
    drawMarkers();
    shownChat = -1;
    render();
  });
  const status = $("status");
  let listing;
  try {
    [listing, events] = await Promise.all([
      api(`/api/streams/${encodeURIComponent(streamId)}/recordings`),
      timeline(),
    ]);
  } catch (e) {
    status.textContent = e.status === 404 ? t("replay.notFound") : t("common.error", { message: errorText(e) });
    document.body.dataset.state = "error";
    return;
  }
  recordings = listing.recordings;
  $("title").textContent = listing.stream.title || listing.stream.id;
  $("host").textContent = t("replay.host", { host: listing.stream.host_id });
  events.sort((a, b) => a.at_ms - b.at_ms || a.seq - b.seq);
  drawMarkers();
  if (!recordings.length) {
    status.textContent = t("replay.noRecording");
    document.body.dataset.state = "empty";
    return;
  }
  status.hidden = true;
  video.addEventListener("timeupdate", render);
  video.addEventListener("seeked", render);
  video.addEventListener("ended", async () => {
    if (playing + 1 < recordings.length) {
      await load(playing + 1);
      video.play().catch(() => {});
    }
  });
  await load(0);
  document.body.dataset.state = "ready";
  render();
}

main();
