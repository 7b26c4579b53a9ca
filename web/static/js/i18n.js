// i18n.js: every UI string of every page, in English and Simplified Chinese.
//
//   import { t, lang, setLang, applyI18n, money, number, clock } from "./i18n.js";
//   t("room.buy.payBy", { time: "04:59" })  -> "Pay within 04:59" (named parts; never build
//                                            sentences by concatenation)
//   applyI18n(document)   fills [data-i18n] (textContent), [data-i18n-placeholder],
//                         [data-i18n-aria-label], [data-i18n-title]; sets <html lang>
//   lang() -> "en" | "zh";  setLang("zh") saves the choice in localStorage and re-applies
//   onLangChange(fn)      called after setLang, so a page can redraw what it built in code
//   money(cents, currency), number(n), clock(ms) -> "mm:ss" (or "h:mm:ss")
//
// The language comes from localStorage["livesell.lang"], else navigator.language.
// Each page keeps its strings in its own delimited block below, keyed "<page>.<thing>".

const STRINGS = {
  en: {
    // ---- common (room helper) -----------------------------------------------------------
    "common.lang": "Language",
    "common.langName": "English",
    "common.close": "Close",
    "common.cancel": "Cancel",
    "common.retry": "Retry",
    "common.someone": "Someone",
    "common.error": "Something went wrong: {message}",
    "common.offline": "You are offline. Reconnecting…",
    // ---- room (viewer room, /live/{id}) ------------------------------------------------
    "room.title": "Live room",
    "room.state.starting": "Starting…",
    "room.state.live": "LIVE",
    "room.state.reconnecting": "Reconnecting…",
    "room.state.ended": "Ended",
    "room.state.scheduled": "Not started yet",
    "room.state.waiting": "Waiting for the host to go live…",
    "room.ended.title": "This show has ended",
    "room.ended.body": "Thanks for watching.",
    "room.ended.home": "See other shows",
    "room.notFound": "There is no show here.",
    "room.banned": "You can no longer take part in this room.",
    "room.viewers": "{count} watching",
    "room.viewersLabel": "Viewers",
    "room.unmute": "Tap to unmute",
    "room.muteLabel": "Sound",
    "room.chat.label": "Chat",
    "room.chat.placeholder": "Say something…",
    "room.chat.send": "Send",
    "room.chat.sendLabel": "Send message",
    "room.chat.host": "Host",
    "room.chat.mod": "Mod",
    "room.chat.rateLimited": "Slow down: try again in {seconds} s",
    "room.chat.slowMode": "Slow mode is on: one message every {seconds} s",
    "room.chat.muted": "You are muted until {time}",
    "room.chat.bannedWord": "That message contains a word this room does not allow",
    "room.chat.tooLong": "Messages can be at most 500 characters",
    "room.chat.notSent": "Not sent: {reason}",
    "room.like": "Send a heart",
    "room.announcement": "Announcement",
    "room.products": "Products",
    "room.pinned": "Pinned product",
    "room.sale.label": "Flash sale",
    "room.sale.startsIn": "Starts in {time}",
    "room.sale.left": "{count} left",
    "room.sale.of": "{left} of {total} left",
    "room.sale.limit": "Limit {count} per person",
    "room.sale.endsIn": "Ends in {time}",
    "room.buy.notOpen": "Not open yet",
    "room.buy.now": "Buy now",
    "room.buy.reserving": "Reserving…",
    "room.buy.reserved": "Reserved",
    "room.buy.payBy": "Pay within {time}",
    "room.buy.pay": "Pay {amount}",
    "room.buy.paying": "Paying…",
    "room.buy.cancel": "Cancel",
    "room.buy.soldOut": "Sold out",
    "room.buy.limit": "Limit reached",
    "room.buy.ended": "Sale ended",
    "room.buy.paid": "Paid. Thank you!",
    "room.buy.expired": "Your reservation expired",
    "room.buy.cancelled": "Reservation cancelled",
    "room.buy.failed": "Could not reserve: {reason}",
    "room.buy.showName": "Show my name when I buy",
    "room.toast.someone": "Someone just bought {product}",
    "room.toast.named": "{name} just bought {product}",
    "room.toast.many": "{count} people just bought {product}",
    "room.orders.title": "Your orders",
    "room.orders.none": "No orders yet.",
    "room.orders.open": "Your orders",
    "room.order.reserved": "Reserved, pay within {time}",
    "room.order.paid": "Paid",
    "room.order.expired": "Expired",
    "room.order.cancelled": "Cancelled",
    "room.order.line": "{qty} × {product} · {total}",
    "room.guest.title": "Join the chat",
    "room.guest.body": "Pick a name others will see. No account needed.",
    "room.guest.name": "Your name",
    "room.guest.go": "Continue",
    "room.guest.off": "Guest sign-in is turned off here. Sign in through the shop.",
    "room.guest.tooMany": "Too many sign-ins from your network. Try again in a minute.",
    "room.signedInAs": "Signed in as {name}",
    "room.product": "Product",
    // ---- end room --------------------------------------------------------------------------
  },
  zh: {
    // ---- common (room helper) -----------------------------------------------------------
    "common.lang": "语言",
    "common.langName": "简体中文",
    "common.close": "关闭",
    "common.cancel": "取消",
    "common.retry": "重试",
    "common.someone": "有人",
    "common.error": "出错了：{message}",
    "common.offline": "网络已断开，正在重连…",
    // ---- room (viewer room, /live/{id}) ------------------------------------------------
    "room.title": "直播间",
    "room.state.starting": "正在连接…",
    "room.state.live": "直播中",
    "room.state.reconnecting": "正在重连…",
    "room.state.ended": "已结束",
    "room.state.scheduled": "尚未开始",
    "room.state.waiting": "等待主播开播…",
    "room.ended.title": "直播已结束",
    "room.ended.body": "感谢观看。",
    "room.ended.home": "看看其他直播",
    "room.notFound": "这里没有直播。",
    "room.banned": "你已无法参与本直播间。",
    "room.viewers": "{count} 人在看",
    "room.viewersLabel": "观看人数",
    "room.unmute": "点击开启声音",
    "room.muteLabel": "声音",
    "room.chat.label": "聊天",
    "room.chat.placeholder": "说点什么…",
    "room.chat.send": "发送",
    "room.chat.sendLabel": "发送消息",
    "room.chat.host": "主播",
    "room.chat.mod": "房管",
    "room.chat.rateLimited": "发言太快，请 {seconds} 秒后再试",
    "room.chat.slowMode": "慢速模式：每 {seconds} 秒可发一条",
    "room.chat.muted": "你已被禁言，直到 {time}",
    "room.chat.bannedWord": "消息包含本直播间不允许的词语",
    "room.chat.tooLong": "消息最多 500 个字符",
    "room.chat.notSent": "未发送：{reason}",
    "room.like": "点亮爱心",
    "room.announcement": "公告",
    "room.products": "商品",
    "room.pinned": "置顶商品",
    "room.sale.label": "限时秒杀",
    "room.sale.startsIn": "{time} 后开抢",
    "room.sale.left": "剩余 {count} 件",
    "room.sale.of": "剩余 {left}/{total} 件",
    "room.sale.limit": "每人限购 {count} 件",
    "room.sale.endsIn": "{time} 后结束",
    "room.buy.notOpen": "尚未开抢",
    "room.buy.now": "立即抢购",
    "room.buy.reserving": "正在锁定…",
    "room.buy.reserved": "已锁定",
    "room.buy.payBy": "请在 {time} 内付款",
    "room.buy.pay": "付款 {amount}",
    "room.buy.paying": "正在付款…",
    "room.buy.cancel": "取消",
    "room.buy.soldOut": "已抢光",
    "room.buy.limit": "已达限购数量",
    "room.buy.ended": "秒杀已结束",
    "room.buy.paid": "付款成功，谢谢！",
    "room.buy.expired": "锁定已过期",
    "room.buy.cancelled": "已取消锁定",
    "room.buy.failed": "未能锁定：{reason}",
    "room.buy.showName": "购买时显示我的名字",
    "room.toast.someone": "有人刚刚买了 {product}",
    "room.toast.named": "{name} 刚刚买了 {product}",
    "room.toast.many": "{count} 人刚刚买了 {product}",
    "room.orders.title": "我的订单",
    "room.orders.none": "还没有订单。",
    "room.orders.open": "我的订单",
    "room.order.reserved": "已锁定，请在 {time} 内付款",
    "room.order.paid": "已付款",
    "room.order.expired": "已过期",
    "room.order.cancelled": "已取消",
    "room.order.line": "{qty} × {product} · {total}",
    "room.guest.title": "加入聊天",
    "room.guest.body": "起一个大家能看到的名字，无需注册。",
    "room.guest.name": "你的名字",
    "room.guest.go": "继续",
    "room.guest.off": "本站已关闭游客登录，请通过商店登录。",
    "room.guest.tooMany": "你的网络登录次数过多，请一分钟后再试。",
    "room.signedInAs": "当前身份：{name}",
    "room.product": "商品",
    // ---- end room --------------------------------------------------------------------------
  },
};

const LANG_KEY = "livesell.lang";
const listeners = [];

function detect() {
  let saved = null;
  try {
    saved = localStorage.getItem(LANG_KEY);
  } catch {
    saved = null;
  }
  if (saved && STRINGS[saved]) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

let current = detect();

export function lang() {
  return current;
}

export function locale() {
  return current === "zh" ? "zh-CN" : navigator.language || "en";
}

export function t(id, parts = {}) {
  const s = STRINGS[current][id] ?? STRINGS.en[id] ?? id;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in parts ? String(parts[k]) : m));
}

export function applyI18n(root = document) {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const [attr, key] of [
    ["placeholder", "i18nPlaceholder"],
    ["aria-label", "i18nAriaLabel"],
    ["title", "i18nTitle"],
  ]) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      el.setAttribute(attr, t(el.dataset[key]));
    }
  }
}

export function setLang(code) {
  if (!STRINGS[code]) return;
  current = code;
  try {
    localStorage.setItem(LANG_KEY, code);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  applyI18n();
  for (const fn of listeners) fn(code);
}

export function onLangChange(fn) {
  listeners.push(fn);
}

/** A <select> that switches the language; fills its options itself. */
export function langSwitch(select) {
  select.replaceChildren();
  for (const code of Object.keys(STRINGS)) {
    const opt = document.createElement("option");
    opt.value = code;
    opt.textContent = STRINGS[code]["common.langName"];
    select.append(opt);
  }
  select.value = current;
  select.addEventListener("change", () => setLang(select.value));
}

export function money(cents, currency = "USD") {
  try {
    return new Intl.NumberFormat(locale(), { style: "currency", currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

export function number(n) {
  return new Intl.NumberFormat(locale()).format(n);
}

export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function time(ms) {
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit" }).format(ms);
}
