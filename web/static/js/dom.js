// dom.js: tiny DOM helpers for the landing page, studio and ops. Text always goes in through
// textContent, so user text can never become markup.
//
//   el("li", "row", "text")  -> <li class="row">text</li>
//   $("id")                  -> document.getElementById("id")
//   show(node, on)           -> node.hidden = !on

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export function $(id) {
  return document.getElementById(id);
}

export function show(node, on) {
  node.hidden = !on;
}

/** A button with a translated label; `onClick` receives the event. */
export function button(label, cls, onClick) {
  const b = el("button", `btn ${cls || ""}`.trim(), label);
  b.type = "button";
  if (onClick) b.addEventListener("click", onClick);
  return b;
}
