// entrepot web page: a document's body rendered by type (fields as schemas/*.json define them).
// A type without a renderer here, or a body that is not an object, shows as its JSON; every
// document view also keeps the raw JSON one click away (documents.js).
"use strict";

// A subject {edition, code} as "HS2022 8806.22", linking to the HS tracker.
function hsSubject(s) {
  if (!s || !s.code) return "—";
  const ed = s.edition || "HS2022";
  return h("a", { href: pageUrl({ view: "hs", hs: `${ed}/${hsDigits(s.code)}` }), class: "mono hs-code" }, `${ed} ${hsCode(s.code)}`);
}

// A definition list of [label, value] pairs, leaving out empty values.
function facts(pairs, id) {
  return h("dl", { class: "facts", id: id || null }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// A multilingual text, English first, with each other language labelled.
function texts(t) {
  if (!t || typeof t !== "object") return t || "";
  const langs = Object.keys(t).sort((a, b) => (a === "en" ? -1 : b === "en" ? 1 : a.localeCompare(b)));
  return langs.map((l) => h("p", { class: "text", lang: l }, langs.length > 1 ? h("span", { class: "lang" }, l.toUpperCase()) : null, t[l]));
}

function guidanceBody(b) {
  const product = b.product || {};
  return h("div", { class: "body guidance" },
    facts([
      ["Reference", b.reference],
      ["Classification", h("span", { id: "classification" }, hsSubject(b.classification))],
      ["Product", texts(product.description)],
      ["Composition", product.composition],
      ["Function", product.function],
      ["General Interpretative Rules", (b.gir || []).map((g) => h("span", { class: "badge gir" }, `GIR ${g}`))],
      ["Other codes considered", (b.cites || []).map((c, i) => [i ? ", " : "", hsSubject(c)])],
    ], "guidance"),
    h("h3", {}, "Reasons"),
    h("div", { class: "reasons", id: "reasons" }, texts(b.reasons)));
}

// An amendment's operations with the English and French texts side by side.
function amendmentBody(b) {
  const rec = b.recommendation || {};
  const ops = b.operations || [];
  const langText = (op, lang) => {
    if (op.op === "amend_text") {
      const f = text(op.find, lang), r = text(op.replace, lang);
      return f || r ? [f ? h("del", {}, f) : null, f && r ? " → " : "", r ? h("ins", {}, r) : null] : "";
    }
    return op.text && (op.text[lang] || "") ? op.text[lang] : (op.text && lang === "fr" ? h("span", { class: "muted" }, "—") : "");
  };
  const target = (t) => t ? (t.code ? [t.kind ? `${t.kind.replace("_", " ")} ` : "", h("span", { class: "mono" }, hsCode(t.code))] : `${(t.kind || "").replace(/_/g, " ")} ${t.note || ""}`) : "";
  return h("div", { class: "body amendment" },
    facts([
      ["Editions", `${b.edition_from || "?"} → ${b.edition_to || "?"}`],
      ["Set", b.set_number],
      ["Entry into force", b.entry_into_force],
      ["Recommendation", rec.reference],
      ["Adopted", rec.adopted],
    ]),
    h("h3", {}, `Operations (${ops.length})`),
    table(["Operation", "Target", "English", "Français"], ops.map((op) => [
      h("span", { class: "badge" }, (op.op || "").replace(/_/g, " ")), target(op.target),
      h("td", { lang: "en" }, langText(op, "en")), h("td", { lang: "fr" }, langText(op, "fr")),
    ]), "No operation."),
    b.correlation && b.correlation.length ? [h("h3", {}, "Correlation"), correlationTable(b.correlation, b.edition_from, b.edition_to)] : null,
    b.rationale ? [h("h3", {}, "Rationale"), texts(b.rationale)] : null);
}

function correlationTable(rows, from, to) {
  const link = (ed, c) => h("a", { href: pageUrl({ view: "hs", hs: `${ed}/${hsDigits(c)}` }), class: "mono" }, hsCode(c));
  return table([from || "From", "Relationship", to || "To"], rows.map((r) => [
    link(from, r.from), h("span", { class: "badge" }, r.relationship || ""), link(to, r.to),
  ]), "No row.");
}

function correlationBody(b) {
  return h("div", { class: "body correlation" },
    facts([
      ["Editions", `${b.edition_from || "?"} → ${b.edition_to || "?"}`],
      ["Chapter", b.chapter],
      ["Status", b.guide_only ? "for guidance only (no legal status)" : null],
    ]),
    h("h3", {}, `Rows (${(b.rows || []).length})`),
    correlationTable(b.rows || [], b.edition_from, b.edition_to));
}

function nomenclatureBody(b) {
  const entries = b.entries || [];
  return h("div", { class: "body nomenclature" },
    facts([["Edition", b.edition], ["Section", b.section], ["Chapter", b.chapter]]),
    table(["Code", "Level", "Description"], entries.map((e) => [
      h("a", { href: pageUrl({ view: "hs", hs: `${b.edition}/${hsDigits(e.code)}` }), class: "mono" }, hsCode(e.code)),
      e.level, text(e.description),
    ]), "No entry."));
}

function noticeBody(b) {
  const hd = b.header || {};
  const aud = b.audience || {};
  const audience = aud.scope === "region" ? `region ${aud.region || "?"}` : aud.scope === "group" ? `group: ${(aud.group || []).join(", ")}` : (aud.scope || "").replace(/_/g, " ");
  return h("div", { class: "body notice" },
    facts([
      ["Kind", (hd.kind || "").replace(/_/g, " ")],
      ["Risk area", (hd.risk_area || "").replace(/_/g, " ")],
      ["HS codes", (hd.hs || []).map((c, i) => [i ? ", " : "", hsSubject(c)])],
      ["Region", hd.region],
      ["Handling", (hd.handling || "").replace(/_/g, " ")],
      ["Audience", audience],
    ], "notice"),
    b.payload ? [h("h3", {}, "Payload"), h("pre", { class: "json" }, JSON.stringify(b.payload, null, 2))] : null);
}

function lifecycleBody(type, b) {
  return h("div", { class: "body lifecycle" },
    facts([
      ["Target", b.target ? h("a", { href: pageUrl({ doc: b.target }), class: "mono" }, short(b.target)) : null],
      ["Replacement", b.replacement ? h("a", { href: pageUrl({ doc: b.replacement }), class: "mono" }, short(b.replacement)) : null],
      ["Takes effect", b.validity && b.validity.from],
      ["Reason", texts(b.reason)],
    ]),
    type === "lifecycle.correct" && b.corrections ? table(["Field", "Corrected text"], b.corrections.map((c) => [h("span", { class: "mono" }, c.path), texts(c.text)]), "") : null);
}

const BODY_RENDERERS = {
  "classification.opinion": guidanceBody,
  "classification.decision": guidanceBody,
  "classification.ruling": guidanceBody,
  "hs.amendment": amendmentBody,
  "hs.correlation": correlationBody,
  "hs.nomenclature": nomenclatureBody,
  "enforcement.notice": noticeBody,
  "lifecycle.supersede": (b) => lifecycleBody("lifecycle.supersede", b),
  "lifecycle.correct": (b) => lifecycleBody("lifecycle.correct", b),
  "lifecycle.withdraw": (b) => lifecycleBody("lifecycle.withdraw", b),
};

// The body of a document of `type`.
function renderBody(type, body) {
  const r = BODY_RENDERERS[type];
  if (!r || !body || typeof body !== "object") return h("pre", { class: "json" }, JSON.stringify(body, null, 2));
  try {
    return r(body);
  } catch (e) {
    console.error(e);
    return h("pre", { class: "json" }, JSON.stringify(body, null, 2));
  }
}
