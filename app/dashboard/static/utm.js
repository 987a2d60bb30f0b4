// The link form's live destination preview. mergeUtm follows app/core/urls.py merge_utm
// step by step, so the preview is the destination the server will save; a test runs both
// on the same cases.
"use strict";

const UTM_FIELDS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];

// Python's quote(value, safe=""): encodeURIComponent leaves !'()* as they are, quote does not.
function quote(value) {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

// Python's unquote_plus: "+" is a space, runs of %XX are UTF-8 (bad bytes become U+FFFD)
// and a malformed escape stays as it is, where decodeURIComponent would throw.
function unquotePlus(text) {
  return text
    .replace(/\+/g, " ")
    .replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      const bytes = run.slice(1).split("%").map((hex) => parseInt(hex, 16));
      return new TextDecoder().decode(new Uint8Array(bytes));
    });
}

// A UTM parameter already in the URL is replaced where it stands, the others are
// appended; every other parameter is kept byte for byte.
function mergeUtm(url, utm) {
  const wanted = new Map(UTM_FIELDS.filter((name) => utm[name]).map((name) => [name, utm[name]]));
  if (wanted.size === 0) return url;
  const hashAt = url.indexOf("#");
  const base = hashAt < 0 ? url : url.slice(0, hashAt);
  const fragment = hashAt < 0 ? "" : url.slice(hashAt);
  const queryAt = base.indexOf("?");
  const path = queryAt < 0 ? base : base.slice(0, queryAt);
  const query = queryAt < 0 ? "" : base.slice(queryAt + 1);
  const pairs = [];
  const done = new Set();
  for (const pair of query ? query.split("&") : []) {
    const key = unquotePlus(pair.split("=", 1)[0]);
    if (wanted.has(key)) {
      if (!done.has(key)) {
        pairs.push(`${key}=${quote(wanted.get(key))}`);
        done.add(key);
      }
      continue;
    }
    pairs.push(pair);
  }
  for (const [name, value] of wanted) {
    if (!done.has(name)) pairs.push(`${name}=${quote(value)}`);
  }
  return `${path}?${pairs.join("&")}${fragment}`;
}

// A UTM template chosen on the new-link form fills the fields left blank, as the server
// does; its option carries its values (data-utm-source …).
function templateValue(form, name) {
  const select = form.elements.utm_template;
  const option = select ? select.selectedOptions[0] : undefined;
  const key = name.replace(/_(\w)/g, (_, c) => c.toUpperCase());
  return (option && option.dataset[key]) || "";
}

function watchForm(form) {
  const output = document.getElementById("destination-preview");
  const update = () => {
    const url = form.elements.url.value.trim();
    const utm = Object.fromEntries(
      UTM_FIELDS.map((name) => [name, form.elements[name].value.trim() || templateValue(form, name)]),
    );
    output.textContent = url ? mergeUtm(url, utm) : "";
  };
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
}

const utmForm = document.querySelector("form[data-utm-preview]");
if (utmForm) watchForm(utmForm);
