// studio.js: the host studio. /studio signs in and creates a show; /studio/{id} is the console:
// camera and "Go live" (studio-camera.js), products and flash sales (studio-shop.js), the chat
// with moderation (studio-chat.js), and live stats polled from GET /api/streams/{id}/stats.

import { api, token } from "./api.js";
import { $, el, show } from "./dom.js";
import { applyI18n, errorText, langSwitch, money, number, onLangChange, t } from "./i18n.js";
import { RoomSocket } from "./roomsocket.js";
import { showSignIn, signInFor } from "./signinform.js";
import { showAnalytics } from "./studio-analytics.js";
import { Camera } from "./studio-camera.js";
import { ChatDesk } from "./studio-chat.js";
import { DrawDesk } from "./studio-draw.js";
import { LotDesk } from "./studio-lot.js";
import { RehearsalDesk } from "./studio-rehearsal.js";
import { Shop } from "./studio-shop.js";
import { SocialDesk } from "./studio-social.js";

const STATS_EVERY_MS = 2000;
const path = location.pathname.split("/").filter(Boolean);
const streamId = path[1] ? decodeURIComponent(path[1]) : "";

function isHost(me) {
  return me && (me.role === "host" || me.role === "admin");
}

// -- /studio: create a show ------------------------------------------------------------------

function slug(title) {
  const base = title
    .normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  const tail = Array.from(crypto.getRandomValues(new Uint8Array(2)), (b) => b.toString(16).padStart(2, "0")).join("");
  return base ? `${base}-${tail}` : `show-${tail}`;
}

async function createView(me, wanted = "") {
  show($("view-create"), true);
  const title = $("create-title");
  const id = $("create-id");
  let edited = Boolean(wanted);
  const preview = () => {
    $("create-url").textContent = t("studio.create.url", { url: `${location.origin}/live/${id.value}` });
  };
  title.addEventListener("input", () => {
    if (!edited) id.value = slug(title.value);
    preview();
  });
  id.addEventListener("input", () => {
    edited = true;
    preview();
  });
  id.value = wanted || slug("");
  preview();
  $("create-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const rehearsal = $("create-rehearsal").checked;
      await api("/api/streams", { method: "POST", body: { id: id.value, title: title.value.trim(), rehearsal } });
      location.href = `/studio/${encodeURIComponent(id.value)}`;
    } catch (e) {
      $("create-error").textContent =
        e.code === "exists" ? t("studio.create.exists") : t("common.error", { message: errorText(e) });
    }
  });
  try {
    const { streams } = await api("/api/streams");
    const mine = streams.filter((s) => me.role === "admin" || s.host_id === me.user_id);
    const ul = $("my-shows");
    for (const s of mine.slice(0, 20)) {
      const li = el("li");
      const a = el("a", "show-link", s.title || s.id);
      a.href = `/studio/${encodeURIComponent(s.id)}`;
      li.append(a, el("span", `badge status-${s.status}`, t(`studio.status.${s.status}`)));
      if (s.rehearsal) li.append(" ", el("span", "badge badge-rehearsal", t("studio.rehearsal.badge")));
      ul.append(li);
    }
    show($("my-shows-card"), mine.length > 0);
  } catch {
    /* the list is a convenience */
  }
  title.focus();
}

// -- /studio/{id}: the console ---------------------------------------------------------------

function banner(text) {
  const b = $("banner");
  b.textContent = text || "";
  show(b, Boolean(text));
}

function renderStats(s) {
  $("st-viewers").textContent = number(s.viewers);
  $("st-likes").textContent = number(s.likes);
  $("st-chat").textContent = number(s.chat_per_min);
  $("st-orders").textContent = number(s.orders);
  $("st-gmv").textContent = money(s.gmv_cents, s.currency || "USD");
}

async function consoleView(me) {
  let stream;
  try {
    stream = await api(`/api/streams/${encodeURIComponent(streamId)}`);
  } catch (e) {
    banner(e.status === 404 ? t("studio.notFound") : t("common.error", { message: errorText(e) }));
    show($("view-console"), true);
    // Only the banner: the console's controls would act on a show that is not there. A link
    // that names no show gets the create form, with that link name filled in.
    for (const col of document.querySelectorAll("#view-console > .col")) col.hidden = true;
    if (e.status === 404) await createView(me, streamId);
    return;
  }
  if (me.role !== "admin" && stream.host_id !== me.user_id) {
    show($("view-console"), false);
    showSignIn(me, null, "studio.signin.notYours");
    return;
  }
  show($("view-console"), true);
  $("show-title").textContent = stream.title || stream.id;
  document.title = t("studio.docTitleShow", { title: stream.title || stream.id });
  const roomLink = $("room-link");
  roomLink.href = `/live/${encodeURIComponent(streamId)}`;
  show(roomLink, true);

  let room = null;
  const shop = new Shop({
    streamId, request: (ev) => room.request(ev), serverNow: () => room.serverNow(), admin: me.role === "admin",
  });
  const chat = new ChatDesk({ request: (ev) => room.request(ev), me });
  const social = new SocialDesk({
    streamId, hostId: stream.host_id, sale: () => shop.sale, currency: () => shop.currency(),
    serverNow: () => room.serverNow(),
  });
  const lots = new LotDesk({ streamId });
  const draws = new DrawDesk({ streamId, serverNow: () => room.serverNow() });
  const rehearsal = new RehearsalDesk({ streamId, stream });
  // One obvious action at a time: "Go live" until the show is live, then "Start sale".
  const onPhase = (phase) => $("sf-start").classList.toggle("btn-primary", phase === "live");
  const camera = new Camera({ streamId, token, banner, onPhase });
  room = new RoomSocket(streamId, {
    token,
    onEvent: (ev) => {
      if (ev.type === "viewers") $("st-viewers").textContent = number(ev.count);
      if (ev.type === "reactions" && ev.totals) {
        $("st-likes").textContent = number(Object.values(ev.totals).reduce((a, b) => a + b, 0));
      }
      if (ev.type === "snapshot") {
        $("st-viewers").textContent = number(ev.viewers || 0);
        camera.streamStatus(ev.stream.status, true);
        rehearsal.streamStatus(ev.stream.status);
      }
      if (ev.type === "stream") {
        camera.streamStatus(ev.status, false);
        rehearsal.streamStatus(ev.status);
        // The show just ended: what worked, now, rather than after a reload.
        if (ev.status === "ended") showAnalytics(streamId, shop.currency());
      }
      shop.onEvent(ev);
      social.onEvent(ev);
      chat.onEvent(ev);
      lots.onEvent(ev);
    },
    onState: (state, detail) => chat.connection(state, detail),
  });
  room.connect();
  onLangChange(() => {
    shop.render();
    social.relabel();
    chat.relabel();
    camera.relabel();
    rehearsal.relabel();
  });
  await shop.load();
  await draws.load();
  camera.init();
  // After the show (or on request) the studio shows what worked: studio-analytics.js.
  if (stream.status === "ended" || location.hash === "#analytics") showAnalytics(streamId, shop.currency());

  const poll = async () => {
    try {
      const stats = await api(`/api/streams/${encodeURIComponent(streamId)}/stats`);
      stats.currency = shop.currency();
      renderStats(stats);
      shop.figures(stats.sales, stats.server_time_ms);
      social.poll();
    } catch {
      /* the next poll retries; the room socket shows connection trouble */
    }
    const bps = await camera.bitrate();
    $("st-bitrate").textContent = bps === null ? "–" : number(Math.round(bps / 1000));
  };
  poll();
  setInterval(poll, STATS_EVERY_MS);
}

async function main() {
  applyI18n();
  langSwitch($("lang"));
  const me = await signInFor(isHost, "studio.signin.notHost");
  if (!me) return;
  $("me").textContent = t("studio.signedInAs", { name: me.name });
  show($("ops-link"), me.role === "admin");
  if (!streamId) await createView(me);
  else await consoleView(me);
}

main();
