// fielderror.js: a server's refusal shown where it happened. A 400 that names its `field`
// (docs/protocol.md) is shown under that input as a translated sentence (errorText), the input
// marked aria-invalid and focused; any other error goes to the form's own error line. Text only.
//
//   showFieldError(err, { price_cents: priceInput, ... }, formErrorLine)
//   clearFieldErrors(inputs, formErrorLine)

import { el } from "./dom.js";
import { errorText, t } from "./i18n.js";

// The note sits inside the input's <label>, so the label (and a screen reader) carries it.
const noteOf = (input) => (input.closest("label") || input.parentElement).querySelector(".field-error");

function clearOne(input) {
  input.removeAttribute("aria-invalid");
  const note = noteOf(input);
  if (note) note.remove();
}

/** Remove every note showFieldError left in `inputs` ({field: input}) and empty `line`. */
export function clearFieldErrors(inputs, line) {
  for (const input of Object.values(inputs)) clearOne(input);
  line.textContent = "";
}

/** Show `err` under the input its `field` names in `inputs`, else as a sentence in `line`. */
export function showFieldError(err, inputs, line) {
  clearFieldErrors(inputs, line);
  const input = err && err.field ? inputs[err.field] : null;
  if (!input) {
    line.textContent = t("common.error", { message: errorText(err) });
    return;
  }
  const note = el("span", "field-error", errorText(err));
  note.setAttribute("role", "alert");
  note.dataset.field = err.field;
  input.after(note);
  input.setAttribute("aria-invalid", "true");
  input.addEventListener("input", () => clearOne(input), { once: true });
  input.focus();
}
