// entrepot web page: plain JavaScript against the public /v1 API, no build step.
//
// Every view is a function of the URL query (so a search or a document can be bookmarked and
// loaded directly): /?q=…&type=…, /?doc=ID, /?view=hs&hs=HS2022/8806, /?view=network.
// All text from documents goes into the DOM with textContent, never innerHTML: documents come
// from other organizations and are data, not markup.
//
// Files, loaded in order by index.html (classic scripts sharing these top-level names):
// app.js (this: helpers, HS code formatting, organization names, the live event stream, the
// router), bodies.js (a document's body by type), documents.js (lists and the document view),
// hs.js (the HS tracker), network.js (feeds, peers, charter). Views kept apart (transposition.js,
// search.js) register in window.entrepotViews; window.entrepotDocumentHooks are called with
// each document view (see documents.js).
"use strict";

const TYPES = [
  "classification.opinion", "classification.decision", "classification.ruling", "enforcement.notice",
  "hs.amendment", "hs.correlation", "hs.nomenclature",
  "lifecycle.supersede", "lifecycle.correct", "lifecycle.withdraw",
];

// h("a", {href: "/"}, "text", child…): an element with attributes and children.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return el;
}

async function api(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const msg = body && body.error ? body.error.message : `HTTP ${res.status}`;
    throw new Error(msg);
  }
  return body;
}

// A URL of this page with the given query (empty values dropped).
function pageUrl(query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `/?${s}` : "/";
}

// An API path with the given query (empty values dropped).
function apiUrl(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

const short = (id) => `${id.slice(0, 12)}…`;
const validity = (d) => d.valid_from ? `${d.valid_from} → ${d.valid_to || "open"}` : "—";
const day = (iso) => (iso || "").slice(0, 10);
// Text of a multilingual field ({en, fr, …}): the language asked, else English, else any.
const text = (t, lang) => (t && typeof t === "object") ? (t[lang || "en"] || t.en || Object.values(t)[0] || "") : (t || "");

// HS codes as people write them: chapter 88, heading 88.06, subheading 8806.10, national lines
// 8806.10.00 and 8806.10.00.00 (the WCO's and most tariffs' convention). Prefixes of odd length
// keep their digits: 8806.1. Anything that is not digits (dots and spaces allowed) is left as given.
function hsCode(code) {
  const d = hsDigits(code);
  if (!/^[0-9]+$/.test(d)) return String(code || "");
  if (d.length <= 2) return d;
  if (d.length <= 4) return d.length === 4 ? `${d.slice(0, 2)}.${d.slice(2)}` : d;
  const rest = d.slice(4).match(/.{1,2}/g) || [];
  return [d.slice(0, 4), ...rest].join(".");
}

// The digits of an HS code as a person may type it: 880610, 8806.10 and 8806 10 are one code.
const hsDigits = (code) => String(code || "").replace(/[.\s]/g, "");

// "HS2022:880622" (a summary's subject) as "HS2022 8806.22".
const subjectText = (s) => { const [ed, c] = s.split(":"); return `${ed} ${hsCode(c)}`; };

// The organizations this node trusts, by code (GET /v1/organizations), fetched once.
let orgsPromise = null;
let orgNames = new Map();
function loadOrganizations() {
  if (!orgsPromise) {
    orgsPromise = api("/v1/organizations")
      .then((o) => { orgNames = new Map(o.organizations.map((x) => [x.id, x])); return orgNames; })
      .catch(() => orgNames);
  }
  return orgsPromise;
}
const orgName = (code) => (orgNames.get(code) || {}).name || "";

// A publisher as "World Customs Organization (WCO)", linking to its documents.
function publisherCell(code) {
  const name = orgName(code);
  return h("span", { class: "publisher" },
    h("a", { href: pageUrl({ publisher: code }) }, name && name !== code ? name : code),
    name && name !== code ? h("span", { class: "muted small" }, ` ${code}`) : null);
}

function setActive(view) {
  for (const a of document.querySelectorAll(".nav a[data-view]")) a.classList.toggle("active", a.dataset.view === view);
}

// Nodes to insert, without the nulls of optional parts (DOM methods would print "null").
const present = (...xs) => xs.flat(Infinity).filter((x) => x !== null && x !== undefined && x !== false);

function render(...nodes) {
  document.getElementById("app").replaceChildren(...present(nodes));
}

function table(headers, rows, empty) {
  if (!rows.length) return h("div", { class: "table-wrap" }, h("div", { class: "empty" }, empty || "Nothing here."));
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((cells) => (cells instanceof Node && cells.tagName === "TR") ? cells
      : h("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD") ? c : h("td", {}, c)))))));
}

function field(label, input) {
  return h("div", {}, h("label", { for: input.id }, label), input);
}

function input(name, value, placeholder) {
  return h("input", { id: `f-${name}`, name, value: value || "", placeholder: placeholder || "" });
}

function select(name, value, options, blank) {
  return h("select", { id: `f-${name}`, name },
    blank !== undefined ? h("option", { value: "" }, blank) : null,
    options.map((o) => h("option", { value: o, selected: o === value }, o)));
}

// The live event stream (GET /v1/stream): one EventSource for the page, shared by the views.
// A view subscribes with live(fn) when it renders; the router drops the subscriptions of the
// previous view. Bursts are coalesced: subscribers run at most once per LIVE_COALESCE_MS.
const LIVE_COALESCE_MS = 300;
const live = (() => {
  let source = null;
  let subscribers = [];
  let pending = [];
  let timer = null;
  const status = (s) => {
    const el = document.getElementById("live-status");
    if (el) { el.textContent = s; el.dataset.state = s; }
  };
  function flush() {
    timer = null;
    const events = pending;
    pending = [];
    for (const fn of subscribers) {
      try { fn(events); } catch (e) { console.error(e); }
    }
  }
  function connect() {
    if (source || typeof EventSource === "undefined") return;
    source = new EventSource("/v1/stream");
    source.addEventListener("open", () => status("live"));
    source.addEventListener("error", () => status(source.readyState === EventSource.CLOSED ? "offline" : "reconnecting"));
    source.addEventListener("document", (e) => {
      let ev = null;
      try { ev = JSON.parse(e.data); } catch (_) { return; }
      window.entrepotLiveReceived = (window.entrepotLiveReceived || 0) + 1;
      pending.push(ev);
      // Bounded: a burst keeps only the latest events; subscribers re-read the API anyway.
      if (pending.length > 256) pending.splice(0, pending.length - 256);
      if (!timer) timer = setTimeout(flush, LIVE_COALESCE_MS);
    });
  }
  return {
    connect,
    subscribe(fn) { subscribers.push(fn); connect(); },
    reset() { subscribers = []; },
  };
})();

async function nodeStatus() {
  try {
    const r = await api("/readyz");
    document.getElementById("node-status").textContent = `${r.network} · ${r.feeds} feed(s)`;
  } catch (_) {
    document.getElementById("node-status").textContent = "store not ready";
  }
}

function view(p) {
  if (p.get("doc")) return viewDocument(p.get("doc"));
  if (p.get("view") === "hs") return viewHs(p);
  if (p.get("view") === "network") return viewNetwork();
  const extra = window.entrepotViews && window.entrepotViews[p.get("view")];
  if (extra) return extra(p);
  return viewDocuments(p);
}

// Renders the view the URL asks for; body[data-ready] tells a reader (and the browser tests)
// that its first rendering is complete.
async function route() {
  const p = new URLSearchParams(location.search);
  live.reset();
  nodeStatus();
  await loadOrganizations();
  try {
    await view(p);
  } finally {
    document.body.dataset.ready = "1";
  }
}

document.addEventListener("DOMContentLoaded", route);
