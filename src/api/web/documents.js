// entrepot web page: the document lists and the document view (see app.js for the helpers).
"use strict";

const docLink = (d, label) => h("a", { href: pageUrl({ doc: d.id }), class: "doc-link" }, label || d.title || short(d.id));
const typeBadge = (t) => h("span", { class: "badge type" }, t);

// The badge of a superseded, corrected or withdrawn document (summary.lifecycle).
const LIFECYCLE_BADGES = { superseded: "bad", withdrawn: "bad", corrected: "warn" };
function lifecycleBadge(state) {
  if (!state) return null;
  return h("span", { class: `badge ${LIFECYCLE_BADGES[state] || ""} lifecycle`, "data-lifecycle": state }, state);
}

// The verified mark of a list row: re-verified by this node when the list was read.
function verifiedMark(d) {
  if (d.verified === false) return h("span", { class: "vmark bad", title: "Not verified", role: "img", "aria-label": "Not verified" }, "✗");
  if (d.verified === true) return h("span", { class: "vmark ok", title: "Verified: signature and keyring", role: "img", "aria-label": "Verified" }, "✓");
  return h("span", { class: "vmark muted", title: "Not checked", role: "img", "aria-label": "Not checked" }, "·");
}

const SUMMARY_HEADERS = ["✓", "Title", "Type", "Publisher", "HS", "Validity", "Issued"];

function summaryRow(d, isNew) {
  const subjects = d.subjects.slice(0, 3).map(subjectText).join(", ") + (d.subject_count > 3 ? ` +${d.subject_count - 3}` : "");
  return h("tr", { class: isNew ? "new" : null, "data-id": d.id },
    h("td", { class: "nowrap" }, verifiedMark(d)),
    h("td", {}, docLink(d), " ", lifecycleBadge(d.lifecycle), isNew ? h("span", { class: "badge ok" }, "new") : null),
    h("td", {}, typeBadge(d.doc_type)),
    h("td", {}, publisherCell(d.publisher)),
    h("td", { class: "small mono" }, subjects),
    h("td", { class: "small nowrap" }, validity(d)),
    h("td", { class: "small muted nowrap" }, day(d.issued_at)));
}

function summaryRows(docs, known) {
  return docs.map((d) => summaryRow(d, known && !known.has(d.id)));
}

const ORDER_TEXT = {
  issued: "newest issue first",
  feed: "newest feed position first",
  valid_from: "latest start of validity first",
  code: "in HS code order (too many entries under this code to sort by date)",
};

// Documents: filters (kept in the URL) and one page of results, kept up to date live.
async function viewDocuments(p) {
  setActive("documents");
  const form = h("form", { class: "filters panel", method: "get", action: "/" },
    h("div", { class: "wide" }, field("Title contains", input("q", p.get("q"), "e.g. drone"))),
    field("Type", select("type", p.get("type"), TYPES, "Any type")),
    field("Publisher", input("publisher", p.get("publisher"), "e.g. WCO")),
    field("HS code", input("hs", p.get("hs"), "e.g. 8806.22 or 880622")),
    field("Edition", select("edition", p.get("edition") || "HS2022", ["HS2022", "HS2017", "HS2012"])),
    field("In force on", input("in_force", p.get("in_force"), "YYYY-MM-DD")),
    h("div", {}, h("button", { type: "submit" }, "Search")));
  render(h("h1", {}, "Documents"),
    h("p", { class: "lede" }, "Every signed document this node holds, verified on arrival. Filter by type, publisher, HS code or validity."),
    form,
    h("p", { class: "muted", id: "results-status", "aria-live": "polite" }, "Searching…"),
    h("div", { id: "results" }),
    h("div", { class: "pager", id: "pager" }));
  const query = {
    q: p.get("q"), type: p.get("type"), publisher: p.get("publisher"), in_force: p.get("in_force"),
    hs: p.get("hs") ? hsDigits(p.get("hs")) : "", edition: p.get("hs") ? (p.get("edition") || "HS2022") : "",
    cursor: p.get("cursor"), limit: 50,
  };
  let known = null;
  let added = 0;
  async function load() {
    const page = await api(apiUrl("/v1/documents", query));
    const isNew = known ? new Set(page.documents.filter((d) => !known.has(d.id)).map((d) => d.id)) : new Set();
    added += isNew.size;
    const rows = summaryRows(page.documents, known);
    known = new Set(page.documents.map((d) => d.id));
    const status = document.getElementById("results-status");
    const order = ORDER_TEXT[page.order] ? `, ${ORDER_TEXT[page.order]}` : "";
    status.textContent = page.documents.length
      ? `${page.documents.length} document(s)${order}${page.next_cursor ? "; more on the next page" : ""}` : "";
    if (added) status.append(h("span", { class: "badge ok", id: "live-added" }, `${added} new since you opened this page`));
    const results = document.getElementById("results");
    results.replaceChildren(table(SUMMARY_HEADERS, rows, "No document matches these filters."));
    results.dataset.loads = String(Number(results.dataset.loads || 0) + 1);
    document.getElementById("pager").replaceChildren(h("span"),
      page.next_cursor ? h("a", { class: "button secondary", href: pageUrl({ ...Object.fromEntries(p), cursor: page.next_cursor }) }, "Next page →") : "");
  }
  try {
    await load();
  } catch (e) {
    document.getElementById("results-status").replaceWith(h("p", { class: "error" }, e.message));
    return;
  }
  // Live: the first page re-reads the API when documents arrive (the API filters and orders;
  // later pages stay as their cursor left them).
  if (!p.get("cursor")) live.subscribe(() => load().catch(() => {}));
}

function linkRows(links) {
  return links.map((l) => [
    h("span", { class: "badge" }, l.kind),
    l.document ? [docLink(l.document), " ", lifecycleBadge(l.document.lifecycle)] : h("span", { class: "mono" }, short(l.id)),
    l.document ? typeBadge(l.document.doc_type) : h("span", { class: "badge warn" }, "not held"),
    l.document ? publisherCell(l.document.publisher) : "",
  ]);
}

// The banner at the top of a superseded, corrected or withdrawn document: one line per act.
const LIFECYCLE_VERBS = { superseded: "Superseded", corrected: "Corrected", withdrawn: "Withdrawn" };
function lifecycleBanner(events) {
  if (!events.length) return null;
  const final = events.some((e) => e.state !== "corrected" && e.in_effect);
  return h("div", { class: `banner ${final ? "bad" : "warn"}`, id: "lifecycle-banner", role: "note" },
    events.map((e) => {
      const when = e.in_effect ? `on ${e.on}` : `from ${e.on}`;
      const verb = LIFECYCLE_VERBS[e.state] || e.state;
      const reason = text(e.reason);
      let head;
      if (e.state === "superseded") {
        const r = e.replacement;
        const target = r && r.document ? docLink(r.document) : (r ? h("span", { class: "mono" }, short(r.id)) : docLink(e.by));
        head = [`${verb} ${when} by `, target];
      } else if (e.state === "corrected") {
        head = [`${verb} ${when} by `, docLink(e.by)];
      } else {
        head = [`${verb} ${when}`, reason ? `: ${reason}` : ""];
      }
      return h("p", { class: "banner-line", "data-state": e.state },
        h("strong", {}, head),
        e.state !== "withdrawn" && reason ? h("span", {}, ` — ${reason}`) : null,
        e.by.doc_type.startsWith("lifecycle.") ? h("span", { class: "muted small" }, " (", docLink(e.by, "the act"), ` by ${orgName(e.by.publisher) || e.by.publisher})`) : null);
    }));
}

// One document: lifecycle banner, verified mark, facts, supersession chain, references both
// ways, body by type with the raw JSON one click away.
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
  const publisher = orgName(s.publisher) || s.publisher;
  const mark = v.valid
    ? h("div", { class: "verified ok", id: "verified" }, h("div", { class: "mark", "aria-hidden": "true" }, "✓"),
      h("div", {}, h("strong", {}, "Verified"), h("span", {}, `Signature valid (ed25519, strict) and the key is one of ${publisher}'s keys in this node's keyring.`)))
    : h("div", { class: "verified bad", id: "verified" }, h("div", { class: "mark", "aria-hidden": "true" }, "✗"),
      h("div", {}, h("strong", {}, "Not verified"), h("span", {}, `${v.code || ""}: ${v.reason || "unknown reason"}`)));
  const inForce = d.in_force_today ? h("span", { class: "badge ok" }, "in force today")
    : h("span", { class: "badge" }, s.lifecycle && s.lifecycle !== "corrected" ? `not in force today: ${s.lifecycle}` : "not in force today");
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Publisher"), h("dd", {}, publisherCell(s.publisher), ` · feed position ${s.seq}`),
    h("dt", {}, "Type"), h("dd", {}, typeBadge(s.doc_type)),
    h("dt", {}, "Validity"), h("dd", { id: "validity" }, validity(s), " ", inForce),
    h("dt", {}, "Issued"), h("dd", {}, s.issued_at),
    h("dt", {}, "HS subjects"), h("dd", {}, s.subjects.length
      ? s.subjects.map((x, i) => [i ? ", " : "", h("a", { href: pageUrl({ view: "hs", hs: x.replace(":", "/") }), class: "mono" }, subjectText(x))])
      : "—", s.subject_count > s.subjects.length ? ` and ${s.subject_count - s.subjects.length} more` : ""),
    h("dt", {}, "Held by"), h("dd", { id: "held-by" }, heldBy(receipts)),
    h("dt", {}, "Id"), h("dd", { class: "mono" }, d.summary.id),
    h("dt", {}, "Signed bytes"), h("dd", {}, h("a", { href: `/v1/documents/${s.id}/raw` }, `download (${d.size_bytes} bytes)`), h("span", { class: "muted small" }, " — verify offline with entrepot verify")));
  const chain = d.supersession.length
    ? h("ol", { class: "chain" }, d.supersession.map((c) => h("li", { class: c.relation },
      c.relation === "this" ? c.document.title : docLink(c.document),
      h("span", { class: "muted small" }, ` · ${c.relation} · ${validity(c.document)}`))))
    : h("p", { class: "muted" }, "Not part of a supersession chain.");
  const extra = h("div", { id: "doc-extra" });
  render(
    h("p", { class: "small" }, h("a", { href: "/" }, "← Documents")),
    lifecycleBanner(d.lifecycle || []),
    h("h1", { id: "doc-title" }, s.title || short(s.id), " ", lifecycleBadge(s.lifecycle)),
    mark,
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, h("h2", {}, "Facts"), facts),
      h("div", { class: "panel" }, h("h2", {}, "Supersession"), chain)),
    h("h2", {}, "Content"),
    h("div", { id: "doc-body" }, renderBody(s.doc_type, d.body)),
    h("details", { class: "raw", id: "raw-json" }, h("summary", {}, "Raw JSON of the signed body"),
      h("pre", { class: "json" }, JSON.stringify(d.body, null, 2))),
    d.sealed_payload ? sealedPayload(s.id, d.sealed_payload) : null,
    h("h2", {}, "References from this document"),
    table(["How", "Document", "Type", "Publisher"], linkRows(d.references), "This document refers to no other."),
    h("h2", {}, "Referred to by"),
    table(["How", "Document", "Type", "Publisher"], linkRows(d.referred_by), "No held document refers to this one."),
    extra);
  document.title = `${s.title || s.id} — entrepot`;
  // Views kept in other files (e.g. similar classifications) add sections here:
  // window.entrepotDocumentHooks = [...(window.entrepotDocumentHooks || []), (doc, container) => …].
  for (const hook of window.entrepotDocumentHooks || []) {
    try { hook(d, extra); } catch (e) { console.error(e); }
  }
}

// "held by N member organizations", from the document's receipts.
function heldBy(r) {
  if (!r) return h("span", { class: "muted" }, "unknown");
  const n = r.organizations;
  const orgs = [...new Set(r.receipts.map((x) => orgName(x.organization) || x.organization))].join(", ");
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
