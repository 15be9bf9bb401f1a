// entrepot web page, issue 14 views: full-text search (/?view=search&q=drone&hs=8806…), the
// "similar classifications" panel of a ruling's or opinion's page, divergences by chapter
// (/?view=divergences&chapter=88) and the counts over time (/?view=analytics), drawn as inline
// SVG. Uses app.js's and documents.js's helpers (h, api, hsCode, publisherCell, verifiedMark,
// lifecycleBadge, docLink…); hooks in only through window.entrepotViews and
// window.entrepotDocumentHooks.
"use strict";

(function () {
  const CLASSIFICATION_TYPES = ["classification.ruling", "classification.opinion", "classification.decision"];
  // "HS2022:880622" as "8806.22" (the edition apart).
  const codeText = (c) => { if (!c) return "—"; const [ed, digits] = c.split(":"); return `${hsCode(digits)} (${ed})`; };
  const pct = (x) => `${Math.round((x || 0) * 100)} %`;
  const divergentBadge = (yes) => yes
    ? h("span", { class: "badge bad divergent", "data-divergent": "true" }, "divergent heading")
    : h("span", { class: "badge ok", "data-divergent": "false" }, "same heading");

  async function viewSearch(p) {
    setActive("search");
    const q = p.get("q") || "";
    const f = { q, hs: p.get("hs") || "", type: p.get("type") || "", publisher: p.get("publisher") || "", from: p.get("from") || "", to: p.get("to") || "", cursor: p.get("cursor") || "" };
    const status = h("p", { class: "muted", id: "search-status" }, "Searching…");
    render(
      h("h1", {}, "Search"),
      h("p", { class: "lede" }, "Titles, product descriptions and reasons, in English and French, ranked by relevance. Withdrawn or superseded documents are found too, and marked."),
      h("form", { method: "get", action: "/", class: "filters", id: "search-form" },
        h("input", { type: "hidden", name: "view", value: "search" }),
        field("Words", input("q", q, "camera drone, \"waste batteries\"…")),
        field("HS code", input("hs", f.hs, "8806 or 8806.22")),
        field("Type", select("type", f.type, TYPES, "any")),
        field("Publisher", input("publisher", f.publisher, "WCO, FR…")),
        field("Issued from", h("input", { id: "f-from", name: "from", type: "date", value: f.from })),
        field("to", h("input", { id: "f-to", name: "to", type: "date", value: f.to })),
        h("div", {}, h("button", { type: "submit" }, "Search"))),
      status);
    try {
      const v = await api(apiUrl("/v1/search", f));
      const rows = v.results.map((r) => {
        const d = r.document;
        return h("tr", { "data-id": d.id, class: "search-hit" },
          h("td", { class: "nowrap" }, verifiedMark(d)),
          h("td", {}, docLink(d), " ", lifecycleBadge(d.lifecycle)),
          h("td", {}, typeBadge(d.doc_type)),
          h("td", {}, publisherCell(d.publisher)),
          h("td", { class: "small mono hs" }, d.subjects.slice(0, 3).map(subjectText).join(", ")),
          h("td", { class: "small muted nowrap" }, day(d.issued_at)),
          h("td", { class: "small muted" }, r.score === null || r.score === undefined ? "" : r.score.toFixed(2)));
      });
      const behind = v.store_arrival > v.indexed_arrival
        ? h("p", { class: "muted small" }, `The index is catching up: ${v.indexed_arrival} of ${v.store_arrival} arrivals indexed.`) : null;
      status.replaceWith(h("section", { id: "search-results" },
        h("p", { class: "muted", id: "search-count" }, `${v.total} document(s) match`),
        behind,
        table(["✓", "Title", "Type", "Publisher", "HS", "Issued", "Score"], rows, "No document matches."),
        v.next_cursor ? h("p", {}, h("a", { href: pageUrl({ view: "search", ...f, cursor: v.next_cursor }), id: "search-next" }, "Next page →")) : null));
    } catch (e) {
      status.replaceWith(h("p", { class: "error", id: "search-error" }, e.message));
    }
  }

  // The similar classifications panel of a ruling's, opinion's or decision's page.
  async function similarPanel(doc, container) {
    const s = doc.summary;
    if (!CLASSIFICATION_TYPES.includes(s.doc_type)) return;
    const section = h("section", { id: "similar" }, h("h2", {}, "Similar classifications by other administrations"),
      h("p", { class: "muted", id: "similar-status" }, "Looking for similar products…"));
    container.appendChild(section);
    try {
      const v = await api(`/v1/documents/${s.id}/similar`);
      const rows = v.similar.map((x) => h("tr", { class: x.divergent ? "divergent" : null, "data-id": x.document.id },
        h("td", { class: "nowrap" }, verifiedMark(x.document)),
        h("td", {}, docLink(x.document), " ", lifecycleBadge(x.document.lifecycle)),
        h("td", {}, publisherCell(x.document.publisher)),
        h("td", { class: "mono hs" }, codeText(x.classification)),
        h("td", {}, divergentBadge(x.divergent)),
        h("td", { class: "small muted" }, pct(x.similarity))));
      section.replaceChildren(
        h("h2", {}, "Similar classifications by other administrations"),
        h("p", { class: "muted small" }, `This document classifies under ${codeText(v.classification)}. Products of other publishers with the nearest descriptions, and their codes:`),
        table(["✓", "Document", "Publisher", "Code", "Heading", "Similarity"], rows, "No other administration has classified a similar product (in what this node holds)."));
    } catch (e) {
      section.appendChild(h("p", { class: "error" }, e.message));
    }
  }

  async function viewDivergences(p) {
    setActive("divergences");
    const chapter = p.get("chapter") || "";
    const status = h("p", { class: "muted", id: "div-status" }, chapter ? "Looking for divergences…" : "Choose a chapter.");
    render(
      h("h1", {}, "Divergences"),
      h("p", { class: "lede" }, "Similar products that different administrations classified under different headings, both in force today: what the HS Committee is there to resolve."),
      h("form", { method: "get", action: "/", class: "filters" },
        h("input", { type: "hidden", name: "view", value: "divergences" }),
        field("Chapter", input("chapter", chapter, "88")),
        h("div", {}, h("button", { type: "submit" }, "Show"))),
      status);
    if (!chapter) return;
    try {
      const v = await api(apiUrl("/v1/divergences", { chapter }));
      const side = (c) => h("div", { class: "div-side" }, verifiedMark(c.document), " ", docLink(c.document), " ",
        h("div", { class: "small" }, publisherCell(c.document.publisher), " · ", h("span", { class: "mono hs" }, codeText(c.classification))));
      const rows = v.divergences.map((d) => h("tr", { class: "divergence" },
        h("td", {}, side(d.a)), h("td", {}, side(d.b)),
        h("td", { class: "mono" }, `${hsCode(d.a.heading)} ≠ ${hsCode(d.b.heading)}`),
        h("td", { class: "small muted" }, pct(d.similarity))));
      status.replaceWith(h("section", { id: "divergences" },
        h("p", { class: "muted", id: "div-count" }, `Chapter ${v.chapter} (${v.edition}): ${v.divergences.length} divergence(s) among ${v.examined} classification(s) examined${v.truncated ? " (the newest 200 only)" : ""}.`),
        table(["Classification", "Other administration", "Headings", "Similarity"], rows, "No divergence in this chapter.")));
    } catch (e) {
      status.replaceWith(h("p", { class: "error", id: "div-error" }, e.message));
    }
  }

  // Stacked columns of documents by year of issue, one colour per type, in SVG.
  function countsChart(v) {
    const ns = "http://www.w3.org/2000/svg";
    const years = Object.keys(v.by_year).sort();
    const types = Array.from(new Set(years.flatMap((y) => Object.keys(v.by_type[y] || {})))).sort();
    const colors = ["#59c", "#e93", "#4a4", "#c6c", "#d44", "#fc5", "#8a9", "#36a", "#a63", "#999", "#6cc"];
    const max = Math.max(1, ...years.map((y) => v.by_year[y]));
    const W = 560, H = 220, left = 44, bottom = 24, colW = Math.min(60, (W - left) / Math.max(1, years.length));
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("width", String(W));
    svg.setAttribute("id", "counts-chart");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Documents by year of issue and type");
    const add = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, val] of Object.entries(attrs)) e.setAttribute(k, String(val));
      if (text !== undefined) e.textContent = text;
      svg.appendChild(e);
      return e;
    };
    add("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: "#888" });
    add("text", { x: 0, y: 12, "font-size": 11 }, String(max));
    add("text", { x: 0, y: H - bottom, "font-size": 11 }, "0");
    years.forEach((y, i) => {
      const x = left + i * colW + 4;
      let top = H - bottom;
      types.forEach((t, j) => {
        const n = (v.by_type[y] || {})[t] || 0;
        if (!n) return;
        const hgt = ((H - bottom - 16) * n) / max;
        top -= hgt;
        const r = add("rect", { x, y: top, width: colW - 8, height: hgt, fill: colors[j % colors.length], class: "bar" });
        const title = document.createElementNS(ns, "title");
        title.textContent = `${y} ${t}: ${n}`;
        r.appendChild(title);
      });
      add("text", { x: x + 2, y: H - 8, "font-size": 11 }, y);
    });
    const legend = h("p", { class: "small legend" }, types.map((t, j) =>
      h("span", { class: "legend-item" }, h("span", { class: "swatch", "data-color": colors[j % colors.length] }, "■ "), `${t}  `)));
    // Colours through the DOM property, not a style attribute (the CSP allows no inline style).
    legend.querySelectorAll(".swatch").forEach((s) => { s.style.color = s.dataset.color; });
    return h("figure", {}, svg, h("figcaption", {}, legend));
  }

  async function viewAnalytics() {
    setActive("analytics");
    const status = h("p", { class: "muted" }, "Counting…");
    render(h("h1", {}, "Analytics"), h("p", { class: "lede" }, "Documents this node holds, by year of issue and type (GET /v1/analytics/counts)."), status);
    try {
      const v = await api("/v1/analytics/counts");
      const pubs = Array.from(new Set(Object.values(v.by_publisher).flatMap((x) => Object.keys(x)))).sort();
      const years = Object.keys(v.by_year).sort();
      status.replaceWith(h("section", { id: "analytics" },
        h("p", { class: "muted", id: "counts-total" }, `${v.documents} document(s)${v.truncated ? " (the first ones only)" : ""}`),
        countsChart(v),
        h("h2", {}, "By publisher"),
        table(["Publisher", ...years], pubs.map((p) => [publisherCell(p), ...years.map((y) => String((v.by_publisher[y] || {})[p] || 0))]))));
    } catch (e) {
      status.replaceWith(h("p", { class: "error" }, e.message));
    }
  }

  window.entrepotViews = Object.assign(window.entrepotViews || {}, {
    search: viewSearch, divergences: viewDivergences, analytics: viewAnalytics,
  });
  window.entrepotDocumentHooks = [...(window.entrepotDocumentHooks || []), similarPanel];
})();
