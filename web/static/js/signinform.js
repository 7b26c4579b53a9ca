// signinform.js: getting into the studio or the ops page. Takes a one-time code (or a shop's
// #token=) from the URL; when the caller is not allowed, shows the page's #view-signin form,
// which accepts the code or the whole printed link and reloads signed in.
//
//   const me = await signInFor((me) => me.role === "admin", "ops.signin.notAdmin");
//   if (!me) return;   // the sign-in form is showing

import { api, setSession, signInFromUrl, who } from "./api.js";
import { $, show } from "./dom.js";
import { t } from "./i18n.js";

export function showSignIn(me, failed, notAllowedKey) {
  show($("view-signin"), true);
  const err = $("signin-error");
  if (me) err.textContent = t(notAllowedKey, { name: me.name });
  else if (failed) err.textContent = t("studio.signin.failed");
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let code = $("signin-code").value.trim();
    try {
      code = new URL(code).searchParams.get("code") || code;
    } catch {
      /* not a URL: the code itself */
    }
    try {
      const res = await api("/api/login", { method: "POST", body: { code } });
      setSession(res.token);
      location.reload();
    } catch {
      err.textContent = t("studio.signin.failed");
    }
  });
}

export async function signInFor(allowed, notAllowedKey) {
  let failed = null;
  try {
    await signInFromUrl();
  } catch (e) {
    failed = e;
  }
  const me = who();
  if (me && allowed(me)) return me;
  showSignIn(me, failed, notAllowedKey);
  return null;
}
