// entrepot web page: plain JavaScript against the public /v1 API, no build step.
//
// Every view is a function of the URL query (so a search or a document can be bookmarked and
// loaded directly): /?q=…&type=…, /?doc=ID, /?view=hs&hs=HS2022/8806, /?view=network.
// All text from documents goes into the DOM with textContent, never innerHTML: documents come
// from other organizations and are data, not markup.
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
const docLink = (d, text) => h("a", { href: pageUrl({ doc: d.id }), class: "doc-link" }, text || d.title || short(d.id));
const typeBadge = (t) => h("span", { class: "badge type" }, t);
const validity = (d) => d.valid_from ? `${d.valid_from} → ${d.valid_to || "open"}` : "—";
const day = (iso) => (iso || "").slice(0, 10);

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
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD") ? c : h("td", {}, c)))))));
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

function summaryRows(docs) {
  return docs.map((d) => [
    docLink(d),
    typeBadge(d.doc_type),
    d.publisher,
    h("td", { class: "small nowrap" }, validity(d)),
    h("td", { class: "small muted nowrap" }, day(d.issued_at)),
  ]);
}

// Documents: filters (kept in the URL) and one page of results.
async function viewDocuments(p) {
  setActive("documents");
  const form = h("form", { class: "filters panel", method: "get", action: "/" },
    h("div", { class: "wide" }, field("Title contains", input("q", p.get("q"), "e.g. drone"))),
    field("Type", select("type", p.get("type"), TYPES, "Any type")),
    field("Publisher", input("publisher", p.get("publisher"), "e.g. WCO")),
    field("HS code", input("hs", p.get("hs"), "e.g. 8806.22")),
    field("Edition", select("edition", p.get("edition") || "HS2022", ["HS2022", "HS2017", "HS2012"])),
    field("In force on", input("in_force", p.get("in_force"), "YYYY-MM-DD")),
    h("div", {}, h("button", { type: "submit" }, "Search")));
  render(h("h1", {}, "Documents"),
    h("p", { class: "lede" }, "Every signed document this node holds, verified on arrival. Filter by type, publisher, HS code or validity."),
    form, h("p", { class: "muted", id: "results-status" }, "Searching…"));
  const query = {
    q: p.get("q"), type: p.get("type"), publisher: p.get("publisher"), in_force: p.get("in_force"),
    hs: p.get("hs"), edition: p.get("hs") ? (p.get("edition") || "HS2022") : "", cursor: p.get("cursor"), limit: 50,
  };
  try {
    const page = await api(apiUrl("/v1/documents", query));
    const status = document.getElementById("results-status");
    status.textContent = page.documents.length ? `${page.documents.length} document(s)${page.next_cursor ? ", more on the next page" : ""}` : "";
    const pager = h("div", { class: "pager" }, h("span"),
      page.next_cursor ? h("a", { class: "button secondary", href: pageUrl({ ...Object.fromEntries(p), cursor: page.next_cursor }) }, "Next page →") : null);
    document.getElementById("app").append(...present(
      h("div", { id: "results" }, table(["Title", "Type", "Publisher", "Validity", "Issued"], summaryRows(page.documents), "No document matches these filters.")),
      pager));
  } catch (e) {
    document.getElementById("results-status").replaceWith(h("p", { class: "error" }, e.message));
  }
}

function linkRows(links) {
  return links.map((l) => [
    h("span", { class: "badge" }, l.kind),
    l.document ? docLink(l.document) : h("span", { class: "mono" }, short(l.id)),
    l.document ? typeBadge(l.document.doc_type) : h("span", { class: "badge warn" }, "not held"),
    l.document ? l.document.publisher : "",
  ]);
}

// One document: verified mark, facts, supersession chain, references both ways, body.
async function viewDocument(id) {
  setActive("documents");
  render(h("p", { class: "muted" }, "Loading document…"));
  let d;
  try {
    d = await api(`/v1/documents/${encodeURIComponent(id)}`);
  } catch (e) {
    render(h("h1", {}, "Document"), h("p", { class: "error" }, e.message));
    return;
  }
  const s = d.summary;
  const v = d.verification;
  // Receipts: witness cosignatures of checkpoints covering it (docs/PROTOCOL.md §13.4).
  const receipts = await api(`/v1/documents/${encodeURIComponent(id)}/receipts`).catch(() => null);
  const mark = v.valid
    ? h("div", { class: "verified ok", id: "verified" }, h("div", { class: "mark" }, "✓"),
      h("div", {}, h("strong", {}, "Verified"), h("span", {}, `Signature valid (ed25519, strict) and the key is one of ${s.publisher}'s keys in this node's keyring.`)))
    : h("div", { class: "verified bad", id: "verified" }, h("div", { class: "mark" }, "✗"),
      h("div", {}, h("strong", {}, "Not verified"), h("span", {}, `${v.code || ""}: ${v.reason || "unknown reason"}`)));
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Publisher"), h("dd", {}, h("a", { href: pageUrl({ publisher: s.publisher }) }, s.publisher), ` · feed position ${s.seq}`),
    h("dt", {}, "Type"), h("dd", {}, typeBadge(s.doc_type)),
    h("dt", {}, "Validity"), h("dd", {}, validity(s), " ",
      d.in_force_today ? h("span", { class: "badge ok" }, "in force today") : h("span", { class: "badge" }, "not in force today")),
    h("dt", {}, "Issued"), h("dd", {}, s.issued_at),
    h("dt", {}, "HS subjects"), h("dd", {}, s.subjects.length
      ? s.subjects.map((x, i) => [i ? ", " : "", h("a", { href: pageUrl({ view: "hs", hs: x.replace(":", "/") }) }, x)])
      : "—", s.subject_count > s.subjects.length ? ` and ${s.subject_count - s.subjects.length} more` : ""),
    h("dt", {}, "Held by"), h("dd", { id: "held-by" }, heldBy(receipts)),
    h("dt", {}, "Id"), h("dd", { class: "mono" }, d.summary.id),
    h("dt", {}, "Signed bytes"), h("dd", {}, h("a", { href: `/v1/documents/${s.id}/raw` }, `download (${d.size_bytes} bytes)`), h("span", { class: "muted small" }, " — verify offline with entrepot verify")));
  const chain = d.supersession.length
    ? h("ol", { class: "chain" }, d.supersession.map((c) => h("li", { class: c.relation },
      c.relation === "this" ? c.document.title : docLink(c.document),
      h("span", { class: "muted small" }, ` · ${c.relation} · ${validity(c.document)}`))))
    : h("p", { class: "muted" }, "Not part of a supersession chain.");
  render(
    h("p", { class: "small" }, h("a", { href: "/" }, "← Documents")),
    h("h1", { id: "doc-title" }, s.title || short(s.id)),
    mark,
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, h("h2", {}, "Facts"), facts),
      h("div", { class: "panel" }, h("h2", {}, "Supersession"), chain)),
    h("h2", {}, "References from this document"),
    table(["How", "Document", "Type", "Publisher"], linkRows(d.references), "This document refers to no other."),
    h("h2", {}, "Referred to by"),
    table(["How", "Document", "Type", "Publisher"], linkRows(d.referred_by), "No held document refers to this one."),
    h("h2", {}, "Content"),
    h("pre", { class: "json" }, JSON.stringify(d.body, null, 2)),
    d.sealed_payload ? sealedPayload(s.id, d.sealed_payload) : null);
  document.title = `${s.title || s.id} — entrepot`;
}

// "held by N member organizations", from the document's receipts.
function heldBy(r) {
  if (!r) return h("span", { class: "muted" }, "unknown");
  const n = r.organizations;
  const orgs = [...new Set(r.receipts.map((x) => x.organization))].join(", ");
  return [`held by ${n} member organization${n === 1 ? "" : "s"}`, n ? h("span", { class: "muted small" }, ` (${orgs})`) : ""];
}

// A sealed notice: its payload goes only to its audience, so the page (which reads the public
// API) shows the signed commitment and whether this node holds the payload, never the payload.
function sealedPayload(id, p) {
  return h("div", { class: "panel", id: "sealed-payload" },
    h("h2", {}, "Sealed payload"),
    h("p", {}, "The payload of this notice is sealed: only its audience receives it. Every node holds the signed commitment below, so the feed verifies without it."),
    h("dl", { class: "facts" },
      h("dt", {}, "SHA-256"), h("dd", { class: "mono" }, p.sha256),
      h("dt", {}, "Size"), h("dd", {}, `${p.bytes} bytes`),
      h("dt", {}, "This node"), h("dd", {}, p.held
        ? [h("span", { class: "badge ok" }, "holds the payload"), h("span", { class: "muted small" }, ` — systems with the API token read it at /v1/documents/${id}/payload`)]
        : h("span", { class: "badge" }, "does not hold the payload"))));
}

// The HS tracker: one code across editions, and what changed in a chapter.
async function viewHs(p) {
  setActive("hs");
  const [edition, code] = (p.get("hs") || "").split("/");
  const form = h("form", { class: "filters panel", method: "get", action: "/" },
    h("input", { type: "hidden", name: "view", value: "hs" }),
    field("HS code", h("input", { id: "f-code", name: "code", value: code || "", placeholder: "e.g. 8806 or 8806.22" })),
    field("Edition", select("ed", edition || "HS2022", ["HS2022", "HS2017", "HS2012"])),
    h("div", {}, h("button", { type: "submit" }, "Track")));
  const changes = h("form", { class: "filters panel", method: "get", action: "/" },
    h("input", { type: "hidden", name: "view", value: "hs" }),
    field("Chapter", h("input", { id: "f-chapter", name: "chapter", value: p.get("chapter") || "", placeholder: "e.g. 88" })),
    field("From", select("from", p.get("from") || "HS2017", ["HS2012", "HS2017", "HS2022"])),
    field("To", select("to", p.get("to") || "HS2022", ["HS2017", "HS2022", "HS2028"])),
    h("div", {}, h("button", { type: "submit", class: "secondary" }, "What changed")));
  render(h("h1", {}, "HS tracker"),
    h("p", { class: "lede" }, "Follow a code across editions: its description, the amendments that touched it, its correlations, and the guidance and notices that cite it."),
    form, changes, h("div", { id: "hs-result" }));
  // The forms submit code+ed or chapter+from+to; fold them into the canonical query.
  if (!p.get("hs") && p.get("code")) {
    location.replace(pageUrl({ view: "hs", hs: `${p.get("ed") || "HS2022"}/${p.get("code").replace(/\./g, "")}` }));
    return;
  }
  const out = document.getElementById("hs-result");
  try {
    if (p.get("chapter")) {
      const c = await api(apiUrl("/v1/hs/changes", { chapter: p.get("chapter"), from: p.get("from") || "HS2017", to: p.get("to") || "HS2022" }));
      const sets = new Map(c.documents.map((d) => [d.id, d]));
      out.append(...present(h("h2", {}, `Changes in ${c.chapter} from ${c.from} to ${c.to}`),
        h("p", { class: "muted" }, Object.entries(c.counts).map(([k, n]) => `${n} ${k}`).join(" · ") || "No amendment operations held."),
        table(["Code", "Operation", "New text", "Amendment set"], c.operations.map((o) => [
          h("a", { href: pageUrl({ view: "hs", hs: `${o.op === "delete" ? o.edition_from : o.edition_to}/${o.code}` }), class: "mono" }, o.code),
          h("span", { class: "badge" }, o.op), o.text || "",
          sets.has(o.document) ? docLink(sets.get(o.document)) : h("a", { href: pageUrl({ doc: o.document }), class: "mono" }, short(o.document)),
        ]), "No operation on this chapter.")));
    }
    if (edition && code) {
      const t = await api(`/v1/hs/${encodeURIComponent(edition)}/${encodeURIComponent(code)}`);
      const hsLink = (ed, c) => h("a", { href: pageUrl({ view: "hs", hs: `${ed}/${c}` }), class: "mono" }, c);
      const corr = (rows) => table(["Code", "Other edition", "Other code", "Relationship", "Source"], rows.map((r) => [
        hsLink(t.edition, r.code), r.other_edition, hsLink(r.other_edition, r.other_code),
        h("span", { class: r.direct ? "badge" : "badge warn" }, r.relationship + (r.direct ? "" : " (partner)")),
        h("a", { href: pageUrl({ doc: r.document }) }, short(r.document)),
      ]), "No correlation held.");
      out.append(...present(
        h("h2", { id: "hs-title" }, `${t.edition} ${t.code}`),
        h("p", { class: "lede", id: "hs-description" }, t.description || "No nomenclature document held describes exactly this code."),
        t.truncated ? h("p", { class: "notice" }, "Some lists reached their bound; narrow the code to see everything.") : null,
        h("h3", {}, "Nomenclature"),
        table(["Code", "Level", "Description"], t.entries.map((e) => [hsLink(t.edition, e.code), e.level, e.description]), "No nomenclature document held for this code."),
        h("h3", {}, "Amendments that touched it"),
        table(["Set", "Operation", "Code", "Text", "In force"], t.amendments.flatMap((a) => a.operations.map((o) => [
          h("td", { class: "nowrap" }, docLink(a.document, `Set ${a.set_number || "?"}`)), h("span", { class: "badge" }, o.op),
          hsLink(t.edition, o.code), o.text || "", h("td", { class: "nowrap" }, a.entry_into_force || ""),
        ])), "No amendment held touches this code."),
        h("div", { class: "grid2" },
          h("div", {}, h("h3", {}, "Previous editions"), corr(t.previous)),
          h("div", {}, h("h3", {}, "Next editions"), corr(t.next))),
        h("h3", {}, "Classification guidance citing it"),
        table(["Title", "Type", "Publisher", "Validity", "Issued"], summaryRows(t.guidance), "No guidance held cites this code."),
        h("h3", {}, "Enforcement notices citing it"),
        table(["Title", "Type", "Publisher", "Validity", "Issued"], summaryRows(t.notices), "No notice held cites this code.")));
    }
  } catch (e) {
    out.append(h("p", { class: "error" }, e.message));
  }
}

// The network: feeds, peers, lag and forks.
async function viewNetwork() {
  setActive("network");
  render(h("h1", {}, "Network"), h("p", { class: "lede" }, "The feeds this node holds, its peers, how far behind them it is, and any forks it has recorded."),
    h("p", { class: "muted", id: "net-status" }, "Loading…"));
  try {
    const [feeds, peers, forks] = await Promise.all([api("/v1/feeds"), api("/v1/peers"), api("/v1/forks")]);
    const behind = peers.lag.filter((l) => l.lag > 0).length;
    const stat = (k, v) => h("div", { class: "stat" }, h("div", { class: "v" }, String(v)), h("div", { class: "k" }, k));
    document.getElementById("net-status").replaceWith(...present(
      h("div", { class: "stats" }, stat("Feeds", feeds.feeds.length), stat("Peers", peers.peers.length),
        stat("Feeds behind", behind), stat("Forks", forks.forks.length)),
      h("h2", {}, "Feeds"),
      table(["Publisher", "Head", "Head document", "State"], feeds.feeds.map((f) => [
        h("a", { href: pageUrl({ publisher: f.publisher }) }, f.publisher), h("span", { class: "mono" }, f.seq),
        h("a", { href: pageUrl({ doc: f.id }), class: "mono" }, short(f.id)),
        f.frozen ? h("span", { class: "badge bad" }, "frozen by fork") : h("span", { class: "badge ok" }, "ok"),
      ]), "This node holds no feed yet."),
      h("h2", {}, "Lag"),
      table(["Publisher", "Our head", "Best announced", "Lag"], peers.lag.map((l) => [
        l.publisher, l.local_seq, l.best_announced_seq,
        l.lag > 0 ? h("span", { class: "badge warn" }, `${l.lag} behind`) : h("span", { class: "badge ok" }, "up to date"),
      ]), "No feed known."),
      h("h2", {}, "Peers"),
      peers.local_peer_id ? h("p", { class: "muted small mono" }, `This node: ${peers.local_peer_id}`) : null,
      table(["Peer", "Address", "Feeds announced"], peers.peers.map((x) => [
        h("span", { class: "mono" }, short(x.peer_id)), h("span", { class: "mono" }, x.address), Object.keys(x.heads || {}).length,
      ]), "No peer connected (an air-gapped replica is fed by bundles)."),
      h("h2", {}, "Forks"),
      table(["Publisher", "Position", "Kept", "Conflicting"], forks.forks.map((f) => [
        f.publisher, f.seq, h("a", { href: pageUrl({ doc: f.kept }), class: "mono" }, short(f.kept)), h("span", { class: "mono" }, short(f.conflicting)),
      ]), "No fork recorded.")));
  } catch (e) {
    document.getElementById("net-status").replaceWith(h("p", { class: "error" }, e.message));
  }
}

async function nodeStatus() {
  try {
    const r = await api("/readyz");
    document.getElementById("node-status").textContent = `${r.network} · ${r.feeds} feed(s)`;
  } catch (_) {
    document.getElementById("node-status").textContent = "store not ready";
  }
}

function route() {
  const p = new URLSearchParams(location.search);
  nodeStatus();
  if (p.get("doc")) return viewDocument(p.get("doc"));
  if (p.get("view") === "hs") return viewHs(p);
  if (p.get("view") === "network") return viewNetwork();
  const extra = window.entrepotViews && window.entrepotViews[p.get("view")];
  if (extra) return extra(p);
  return viewDocuments(p);
}

document.addEventListener("DOMContentLoaded", route);
