// Analytics pages show the viewer's own time zone. The browser's zone is kept in a cookie,
// which the server reads for a page whose URL names no `tz`; the first page, drawn before
// the cookie was there, is asked for again in that zone, once.
"use strict";

(function useViewersZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  document.cookie = `tautan_tz=${zone}; path=/; max-age=31536000; SameSite=Lax`; // zone names are cookie-safe
  const picker = document.querySelector("select[data-viewer-zone]");
  const url = new URL(window.location.href);
  if (!picker || url.searchParams.has("tz") || zone === picker.value) return;
  if (!Array.from(picker.options).some((option) => option.value === zone)) return;
  url.searchParams.set("tz", zone);
  window.location.replace(url.toString());
})();
