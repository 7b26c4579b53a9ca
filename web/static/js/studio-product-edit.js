// studio-product-edit.js: the inline form that edits one of the host's own products (name,
// price, member price, description, image URL) through PATCH /api/products/{id}. The server
// validates as on create; its error is shown as text. Sales already made keep their price.

import { api } from "./api.js";
import { button, el } from "./dom.js";
import { errorText, t } from "./i18n.js";

const toCents = (v) => Math.round(parseFloat(v) * 100);
const amount = (cents) => (cents === null || cents === undefined ? "" : (cents / 100).toFixed(2));

function input(type, value, attrs) {
  const i = el(type === "textarea" ? "textarea" : "input", "input");
  if (type !== "textarea") i.type = type;
  i.value = value;
  Object.assign(i, attrs);
  return i;
}

function labelled(key, control) {
  const label = el("label", "field");
  label.append(el("span", null, t(key)), control);
  return label;
}

/** A form editing `product`: `onSaved(product)` gets what the server saved, `onCancel()` closes. */
export function productEditForm(product, { onSaved, onCancel }) {
  const form = el("form", "stack product-form product-edit");
  form.dataset.product = String(product.id);
  const money = { min: "0", step: "0.01", inputMode: "decimal" };
  const name = input("text", product.name, { name: "name", maxLength: 200, required: true });
  const price = input("number", amount(product.price_cents), { name: "price", required: true, ...money });
  const member = input("number", amount(product.member_price_cents), { name: "member_price", ...money });
  const description = input("textarea", product.description || "", { name: "description", maxLength: 5000, rows: 2 });
  const image = input("url", product.image_url || "", { name: "image_url", maxLength: 500, spellcheck: false });
  const error = el("p", "form-error");
  error.setAttribute("role", "alert");
  const save = el("button", "btn btn-small btn-primary", t("studio.product.save"));
  save.type = "submit";
  const actions = el("div", "row-end");
  actions.append(button(t("common.cancel"), "btn-ghost btn-small", onCancel), save);
  const prices = el("div", "row");
  prices.append(labelled("studio.product.price", price), labelled("studio.product.memberPrice", member));
  form.append(
    labelled("studio.product.name", name),
    prices,
    labelled("studio.product.description", description),
    labelled("studio.product.image", image),
    actions,
    error,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const m = member.value.trim();
    // Said here, in words: the server's refusal would only say "not valid".
    if (m && toCents(m) >= toCents(price.value)) {
      error.textContent = t("studio.product.memberAbove");
      return;
    }
    const body = {
      name: name.value.trim(),
      price_cents: toCents(price.value),
      member_price_cents: m ? toCents(m) : null, // empty clears the member price
      description: description.value,
      image_url: image.value.trim(),
    };
    save.disabled = true;
    error.textContent = "";
    try {
      onSaved(await api(`/api/products/${product.id}`, { method: "PATCH", body }));
    } catch (e) {
      error.textContent = t("common.error", { message: errorText(e) });
    } finally {
      save.disabled = false;
    }
  });
  return form;
}
