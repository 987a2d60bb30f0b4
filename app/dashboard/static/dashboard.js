// Analytics pages show the viewer's own time zone: a page opened without a `tz` in its URL
// is asked for again with the browser's zone, once. Every link of the page then carries it.
"use strict";

(function useViewersZone() {
  const picker = document.querySelector("select[data-viewer-zone]");
  const url = new URL(window.location.href);
  if (!picker || url.searchParams.has("tz")) return;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const known = Array.from(picker.options).some((option) => option.value === zone);
  if (!zone || !known || zone === picker.value) return;
  url.searchParams.set("tz", zone);
  window.location.replace(url.toString());
})();
