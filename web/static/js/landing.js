// landing.js: the first page after `make serve`. Live shows first (with viewers), then the
// scheduled ones, then those that ended; each card opens the viewer room. A signed-in host or
// admin also gets "Start a show". Refreshes every 10 s. User text goes in via textContent only.

import { api, signInFromUrl, who } from "./api.js";
import { el } from "./dom.js";
import { applyI18n, langSwitch, number, onLangChange, t } from "./i18n.js";

const REFRESH_MS = 10000;
let streams = null;
let replays = new Set(); // ids of ended shows with a recording: their card opens the replay

function hue(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return h % 360;
}

function card(s) {
  const li = el("li");
  const a = el("a", `show-card show-${s.status}`);
  const replay = s.status === "ended" && replays.has(s.id);
  a.href = `/${replay ? "replay" : "live"}/${encodeURIComponent(s.id)}`;
  const thumb = el("div", "thumb");
  const h = hue(s.id);
  // Set through the CSSOM: the page's CSP allows no inline style attributes.
  thumb.style.background = `radial-gradient(120% 90% at 20% 10%, hsl(${h} 85% 62% / .9), transparent 60%),
    linear-gradient(150deg, hsl(${(h + 40) % 360} 70% 42%), hsl(${(h + 300) % 360} 60% 16%))`;
  const initial = el("span", "thumb-initial", (s.title || s.id).trim().charAt(0).toUpperCase());
  initial.setAttribute("aria-hidden", "true");
  thumb.append(initial);
  if (s.status === "live") {
    thumb.append(el("span", "badge badge-live thumb-badge", t("landing.liveBadge")));
    const v = el("span", "badge thumb-viewers num", t("landing.viewers", { count: number(s.viewers || 0) }));
    thumb.append(v);
  } else if (s.status === "scheduled") {
    thumb.append(el("span", "badge thumb-badge", t("landing.soon")));
  } else {
    thumb.append(el("span", "badge thumb-badge", t(replay ? "landing.replayBadge" : "landing.endedBadge")));
  }
  const meta = el("div", "meta");
  meta.append(el("h3", "title", s.title || s.id));
  meta.append(el("p", "host muted", t("landing.host", { host: s.host_id })));
  a.append(thumb, meta);
  li.append(a);
  return li;
}

function render() {
  if (!streams) return;
  const by = { live: [], scheduled: [], ended: [] };
  // A host's rehearsal is practice, never a show to watch: the server lists it only to its
  // host and admins, and even they do not find it here (their studio lists it).
  for (const s of streams) if (!s.rehearsal) (by[s.status] || by.ended).push(s);
  by.live.sort((a, b) => (b.viewers || 0) - (a.viewers || 0));
  const fill = (id, list) => {
    const ul = document.getElementById(id);
    ul.replaceChildren(...list.map(card));
    ul.setAttribute("aria-busy", "false");
  };
  fill("live-list", by.live);
  document.getElementById("live-empty").hidden = by.live.length > 0;
  fill("upcoming-list", by.scheduled);
  document.getElementById("upcoming").hidden = by.scheduled.length === 0;
  fill("ended-list", by.ended.slice(0, 12));
  document.getElementById("ended").hidden = by.ended.length === 0;
}

async function load() {
  const err = document.getElementById("load-error");
  try {
    const [all, recorded] = await Promise.all([api("/api/streams"), api("/api/replays")]);
    replays = new Set(recorded.replays.map((r) => r.id));
    streams = all.streams;
    err.hidden = true;
    render();
  } catch (e) {
    err.textContent = t("landing.loadFailed");
    err.hidden = false;
  }
}

async function main() {
  applyI18n();
  langSwitch(document.getElementById("lang"));
  onLangChange(render);
  try {
    await signInFromUrl();
  } catch {
    // A stale link: the page still works for watching.
  }
  const me = who();
  if (me && (me.role === "host" || me.role === "admin")) {
    document.getElementById("start-show").hidden = false;
  }
  if (me && me.role === "admin") document.getElementById("ops-link").hidden = false;
  await load();
  setInterval(load, REFRESH_MS);
}

main();
