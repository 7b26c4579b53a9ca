// room.js: the viewer room /live/{stream_id}: video, chat, reactions, the sale card, sign-in.
// Everything users typed reaches the page through textContent only.

import { ApiError, api, guestSignIn, signInFromUrl, token, who } from "./api.js";
import { applyI18n, errorText, langSwitch, number, onLangChange, t, time } from "./i18n.js";
import { RoomSocket } from "./roomsocket.js";
import { RoomExtras } from "./roomextras.js";
import { RoomEffects } from "./roomfx.js";
import { DrawCard } from "./roomdraw.js";
import { LotCard } from "./roomlot.js";
import { SaleCard } from "./roomsale.js";
import { SocialPanel } from "./roomsocial.js";
import { video } from "./roomvideo.js";

const $ = (id) => document.getElementById(id);
const streamId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const MAX_CHAT = 100;

const ui = {
  body: document.body, video: $("video"), coverText: $("cover-text"), unmute: $("unmute"),
  stateText: $("state-text"), hostName: $("host-name"), hostAvatar: $("host-avatar"),
  title: $("show-title"), viewers: $("viewer-count"), banner: $("reconnect-banner"),
  chat: $("chat"), announcement: $("announcement"), announcementText: $("announcement-text"),
  composer: $("composer"), input: $("chat-input"), like: $("like"), endCard: $("end-card"),
  endText: $("end-text"), endTitle: $("end-title"), sheet: $("guest-sheet"), backdrop: $("sheet-backdrop"),
  guestName: $("guest-name"), guestError: $("guest-error"), guestCancel: $("guest-cancel"),
  showName: $("show-name"), signedIn: $("signed-in"), ordersBtn: $("orders-btn"),
  ordersClose: $("orders-close"),
};

const page = {
  stream: null, // {id, title, host_id, status}
  socket: "connecting",
  video: "connecting",
  myTaps: 0,
};

// -- the connection state shown on the page ----------------------------------------------------

function show() {
  const status = page.stream ? page.stream.status : null;
  let state = "starting";
  if (page.notFound) state = "notfound";
  else if (page.banned) state = "banned";
  else if (status === "ended") state = "ended";
  else if (page.socket === "reconnecting" || page.video === "reconnecting") state = "reconnecting";
  else if (page.video === "playing") state = "live";
  else if (status === "scheduled" || page.video === "waiting") state = "waiting";
  ui.body.dataset.state = state;
  const key = {
    starting: "room.state.starting", live: "room.state.live", reconnecting: "room.state.reconnecting",
    ended: "room.state.ended", waiting: "room.state.scheduled", notfound: "room.state.ended",
    banned: "room.state.ended",
  }[state];
  ui.stateText.textContent = t(key);
  ui.coverText.textContent = t(state === "waiting" ? "room.state.waiting" : key);
  ui.banner.hidden = state !== "reconnecting" || page.video !== "playing";
  const final = { ended: "room.ended.title", notfound: "room.notFound", banned: "room.banned" };
  ui.endCard.hidden = !final[state];
  if (final[state]) {
    ui.endTitle.textContent = t(final[state]);
    ui.endText.hidden = state !== "ended";
  }
  if (state === "ended") offerReplay();
}

// An ended show lives on as a shoppable replay once its recording exists: offer it first.
let replayAsked = false;
async function offerReplay() {
  if (replayAsked) return;
  replayAsked = true;
  try {
    const { recordings } = await api(`/api/streams/${encodeURIComponent(streamId)}/recordings`);
    if (!recordings.length) return;
  } catch {
    return;
  }
  const link = $("end-replay");
  link.href = `/replay/${encodeURIComponent(streamId)}`;
  link.hidden = false;
  $("end-home").classList.replace("btn-primary", "btn-ghost");
}

// -- chat ---------------------------------------------------------------------------------------

function chatLine(ev) {
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.seq = String(ev.seq);
  if (ev.role === "host" || ev.role === "moderator") {
    const badge = document.createElement("span");
    badge.className = `role role-${ev.role}`;
    // data-i18n: applyI18n re-labels badges already on screen when the language changes.
    badge.dataset.i18n = ev.role === "host" ? "room.chat.host" : "room.chat.mod";
    badge.textContent = t(badge.dataset.i18n);
    li.append(badge);
  }
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = ev.name;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = ev.text;
  li.append(name, text);
  return li;
}

function scrollChat() {
  const wrap = ui.chat.parentElement;
  wrap.scrollTop = wrap.scrollHeight;
}

function noteHost(ev) {
  // The stream knows only the host's id; its chat messages carry the display name.
  if (ev.role === "host" && ev.user_id === (page.stream && page.stream.host_id)) {
    page.hostName = ev.name;
    showHost();
  }
}

function addChat(ev) {
  noteHost(ev);
  if (ui.chat.querySelector(`[data-seq="${ev.seq}"]`)) return;
  ui.chat.append(chatLine(ev));
  while (ui.chat.childElementCount > MAX_CHAT) ui.chat.firstElementChild.remove();
  scrollChat();
}

function systemLine(text) {
  const li = document.createElement("li");
  li.className = "msg system";
  li.textContent = text;
  ui.chat.append(li);
  scrollChat();
  setTimeout(() => li.remove(), 8000);
}

function setAnnouncement(a) {
  const text = a && a.text ? a.text : "";
  ui.announcement.hidden = !text;
  ui.announcementText.textContent = text;
}

// -- sign-in --------------------------------------------------------------------------------------

let sheetWaiters = [];

function signIn() {
  if (who()) return Promise.resolve(who());
  if (ui.sheet.hidden) page.focusBeforeSheet = document.activeElement;
  ui.sheet.hidden = ui.backdrop.hidden = false;
  ui.guestError.textContent = "";
  ui.guestName.focus();
  return new Promise((resolve, reject) => sheetWaiters.push({ resolve, reject }));
}

function closeSheet(user) {
  ui.sheet.hidden = ui.backdrop.hidden = true;
  const waiters = sheetWaiters;
  sheetWaiters = [];
  if (!user && page.focusBeforeSheet) page.focusBeforeSheet.focus(); // back where they were
  for (const w of waiters) (user ? w.resolve(user) : w.reject(new Error("cancelled")));
}

async function onSignedIn(user) {
  ui.signedIn.textContent = user ? t("room.signedInAs", { name: user.name }) : "";
  extras.signedIn(user);
  sale.setUser(user);
  social.setUser(user);
  if (user && room.state === "open") await room.auth(token()).catch(() => {});
}

ui.sheet.addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = ui.guestName.value.trim();
  if (!name) return;
  try {
    const user = await guestSignIn(name);
    await onSignedIn(user);
    closeSheet(user);
  } catch (err) {
    const code = err instanceof ApiError ? err.code : "";
    ui.guestError.textContent =
      code === "guest_login_off" ? t("room.guest.off")
        : code === "rate_limited" ? t("room.guest.tooMany")
          : t("common.error", { message: errorText(err) });
  }
});
ui.guestCancel.addEventListener("click", () => closeSheet(null));
ui.backdrop.addEventListener("click", () => closeSheet(null));
ui.sheet.addEventListener("keydown", (e) => e.key === "Escape" && closeSheet(null));

// -- the room socket ------------------------------------------------------------------------------

const effects = new RoomEffects($("hearts"), $("toasts"));
const room = new RoomSocket(streamId, {
  token,
  onState(state, detail) {
    page.socket = state;
    if (state === "closed" && detail.code === 4004) page.notFound = true;
    if (state === "closed" && detail.code === 4003) page.banned = true;
    if (page.notFound || page.banned) viewer.stop();
    if (state === "open") room.send({ type: "ping", t: Date.now() });
    show();
  },
  onEvent,
});
const extras = new RoomExtras(streamId); // reviews, analytics beacon, "Your data"
extras.watch();
extras.wireMyData();
const coupons = { coupon: (order) => social.coupon(order), spent: (id) => social.spent(id) };
const store = {
  member: () => social.isMember(),
  points: () => social.pointsBalance(),
  spent: (balance) => social.pointsSpent(balance),
};
const drawSales = new Set(); // sale ids run as fair draws (roomdraw.js fills it)
const sale = new SaleCard(room, {
  signIn, showName: () => ui.showName.checked, effects, coupons, store, skip: (id) => drawSales.has(id),
});
const social = new SocialPanel(room, sale, {
  signIn, showName: () => ui.showName.checked, streamId,
  groupId: new URLSearchParams(location.search).get("group"),
  refBy: new URLSearchParams(location.search).get("ref"),
});
const lots = new LotCard(room, streamId, {
  signIn, showName: () => ui.showName.checked,
  onOrder: (orderId) => sale.refreshOrder(orderId).then(() => sale.render()),
});
const draw = new DrawCard(room, streamId, {
  signIn, drawSales, onWon: (saleId) => sale.loadMine(saleId), onList: () => sale.reconsider(),
});

function showHost() {
  const name = page.hostName || (page.stream && page.stream.host_id) || "";
  ui.hostName.textContent = name;
  ui.hostAvatar.textContent = (name || "?").slice(0, 1).toUpperCase();
}

function setStream(stream) {
  const was = page.stream && page.stream.status;
  page.stream = stream;
  showHost();
  ui.title.textContent = stream.title || "";
  $("rehearsal-badge").hidden = !stream.rehearsal;
  document.title = stream.title ? `${stream.title} · livesell` : t("room.title");
  if (stream.status === "ended") viewer.stop();
  else if (stream.status === "live" && was !== "live" && page.video !== "playing") viewer.retry();
  show();
}

function onEvent(ev) {
  switch (ev.type) {
    case "snapshot":
      setStream(ev.stream);
      ui.viewers.textContent = number(ev.viewers || 0);
      setAnnouncement(ev.announcement);
      ui.chat.replaceChildren(...(ev.messages || []).map(chatLine));
      (ev.messages || []).forEach(noteHost);
      scrollChat();
      sale.snapshot(ev);
      sale.render();
      social.snapshot(ev);
      lots.load();
      draw.load();
      break;
    case "chat":
      addChat(ev);
      break;
    case "deleted": {
      const li = ui.chat.querySelector(`[data-seq="${ev.target}"]`);
      if (li) li.remove();
      break;
    }
    case "announcement":
      setAnnouncement(ev);
      break;
    case "viewers":
      ui.viewers.textContent = number(ev.count);
      break;
    case "reactions": {
      const total = Object.values(ev.delta || {}).reduce((a, b) => a + b, 0);
      const others = Math.max(0, total - page.myTaps);
      page.myTaps = Math.max(0, page.myTaps - total);
      effects.hearts(others);
      break;
    }
    case "stream":
      setStream({ ...page.stream, status: ev.status });
      break;
    case "slow_mode":
      if (ev.seconds) systemLine(t("room.chat.slowMode", { seconds: ev.seconds }));
      break;
    case "group":
    case "coupon":
      social.event(ev);
      break;
    case "auction":
      lots.event(ev);
      break;
    default:
      if (ev.type === "sale" && ev.phase === "scheduled") draw.saleScheduled();
      sale.event(ev);
  }
}

// -- composing and reacting ----------------------------------------------------------------------

const CHAT_ERRORS = {
  rate_limited: (e) => t("room.chat.rateLimited", { seconds: Math.ceil(e.retryAfterMs / 1000) }),
  slow_mode: (e) => t("room.chat.rateLimited", { seconds: Math.ceil(e.retryAfterMs / 1000) }),
  muted: (e) => t("room.chat.muted", { time: time(e.untilMs) }),
  banned_word: () => t("room.chat.bannedWord"),
  too_long: () => t("room.chat.tooLong"),
};

ui.input.addEventListener("beforeinput", (e) => {
  // Watching needs no name; the first keystroke asks for one.
  if (who()) return;
  e.preventDefault();
  signIn()
    .then(() => ui.input.focus())
    .catch(() => {});
});

ui.composer.addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = ui.input.value.trim();
  if (!text) return;
  if (!who()) {
    try {
      await signIn();
    } catch {
      return;
    }
  }
  try {
    await room.request({ type: "chat", text });
    ui.input.value = "";
  } catch (err) {
    const f = CHAT_ERRORS[err.code];
    systemLine(f ? f(err) : t("room.chat.notSent", { reason: errorText(err) }));
  }
});

ui.like.addEventListener("click", () => {
  page.myTaps += 1;
  room.send({ type: "react", kind: "heart" });
  effects.hearts(1);
});

ui.unmute.addEventListener("click", () => {
  ui.video.muted = false;
  ui.video.play().catch(() => {});
  ui.unmute.hidden = true;
});

ui.ordersBtn.addEventListener("click", () => {
  ui.body.classList.toggle("orders-open");
  if (ui.body.classList.contains("orders-open")) ui.ordersClose.focus();
});
ui.ordersClose.addEventListener("click", () => {
  ui.body.classList.remove("orders-open");
  ui.ordersBtn.focus();
});

// Phones: chat over the video. Desktops: the same column centred, chat beside it.
const wide = matchMedia("(min-width: 960px)");
function place() {
  const chatWrap = $("chat-wrap");
  const shelf = $("shelf");
  if (wide.matches) {
    document.querySelector(".side").prepend(chatWrap, ui.composer);
    document.querySelector(".layout").prepend(shelf);
  } else {
    document.querySelector(".side").insertBefore(shelf, $("orders"));
    document.querySelector(".overlay").insertBefore(chatWrap, $("product-card"));
    document.querySelector(".overlay").append(ui.composer);
  }
  chatWrap.scrollTop = chatWrap.scrollHeight;
}
wide.addEventListener("change", place);
place();

// -- start ------------------------------------------------------------------------------------------

const viewer = video.viewer;
video.onState((state) => {
  page.video = state;
  if (state === "playing" && ui.video.muted) ui.unmute.hidden = false;
  show();
});

applyI18n();
langSwitch($("lang"));
onLangChange(() => {
  show();
  sale.redraw();
  social.render();
  lots.redraw();
  draw.redraw();
});
show();
room.connect();
setInterval(() => {
  sale.tick();
  social.render();
  lots.tick();
}, 250);
signInFromUrl()
  .catch(() => null)
  .then(() => onSignedIn(who()));
