// entrepot web page: the HS tracker, one code across editions and what changed in a chapter
// (see app.js for the helpers). Codes show as people write them (hsCode) and are typed either
// way (8806.10, 880610, 8806 10): the URL keeps digits only.
"use strict";

// The HS tracker: one code across editions, and what changed in a chapter.
async function viewHs(p) {
  setActive("hs");
  const [edition, code] = (p.get("hs") || "").split("/");
  const form = h("form", { class: "filters panel", method: "get", action: "/" },
    h("input", { type: "hidden", name: "view", value: "hs" }),
    field("HS code", h("input", { id: "f-code", name: "code", value: code ? hsCode(code) : "", placeholder: "e.g. 88.06 or 8806.22" })),
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
    location.replace(pageUrl({ view: "hs", hs: `${p.get("ed") || "HS2022"}/${hsDigits(p.get("code"))}` }));
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
          h("a", { href: pageUrl({ view: "hs", hs: `${o.op === "delete" ? o.edition_from : o.edition_to}/${o.code}` }), class: "mono" }, hsCode(o.code)),
          h("span", { class: "badge" }, o.op), o.text || "",
          sets.has(o.document) ? docLink(sets.get(o.document)) : h("a", { href: pageUrl({ doc: o.document }), class: "mono" }, short(o.document)),
        ]), "No operation on this chapter.")));
    }
    if (edition && code) {
      const t = await api(`/v1/hs/${encodeURIComponent(edition)}/${encodeURIComponent(code)}`);
      const hsLink = (ed, c) => h("a", { href: pageUrl({ view: "hs", hs: `${ed}/${hsDigits(c)}` }), class: "mono" }, hsCode(c));
      const corr = (rows) => table(["Code", "Other edition", "Other code", "Relationship", "Source"], rows.map((r) => [
        hsLink(t.edition, r.code), r.other_edition, hsLink(r.other_edition, r.other_code),
        h("span", { class: r.direct ? "badge" : "badge warn" }, r.relationship + (r.direct ? "" : " (partner)")),
        h("a", { href: pageUrl({ doc: r.document }) }, short(r.document)),
      ]), "No correlation held.");
      out.append(...present(
        h("h2", { id: "hs-title" }, `${t.edition} ${hsCode(t.code)}`),
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
        table(SUMMARY_HEADERS, summaryRows(t.guidance), "No guidance held cites this code."),
        h("h3", {}, "Enforcement notices citing it"),
        table(SUMMARY_HEADERS, summaryRows(t.notices), "No notice held cites this code.")));
    }
  } catch (e) {
    out.append(h("p", { class: "error" }, e.message));
  }
}

