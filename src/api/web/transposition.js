// entrepot web page, issue 14 views: the transposition progress of members per HS edition
// change (/?view=transposition&from=HS2017&to=HS2022) and edition menus limited to the
// editions this node holds. Kept apart from app.js, which it hooks into only through
// window.entrepotViews (app.js's router asks it for views it does not know).
"use strict";

(function () {
  // el("td", {class: "x"}, "text", child…): this file's own small element builder, so that it
  // does not depend on app.js's helpers' names.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v; else e.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  async function get(path) {
    const res = await fetch(path, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new Error(body && body.error ? body.error.message : `HTTP ${res.status}`);
    return body;
  }

  // The editions this node holds, fetched once.
  let held = null;
  function heldEditions() {
    if (!held) held = get("/v1/hs/editions").then((v) => v.editions).catch(() => null);
    return held;
  }

  // Edition menus (any <select> whose options are HS editions) offer only held editions.
  async function limitMenu(select) {
    if (select.dataset.editionsChecked) return;
    const options = Array.from(select.options);
    if (!options.length || !options.every((o) => /^HS\d{4}$/.test(o.value))) return;
    select.dataset.editionsChecked = "1";
    const editions = await heldEditions();
    if (!editions || !editions.length) return;
    const current = select.value;
    select.replaceChildren(...editions.slice().reverse().map((e) => el("option", { value: e }, e)));
    select.value = editions.includes(current) ? current : editions[editions.length - 1];
  }
  function limitMenus(root) {
    root.querySelectorAll("select").forEach(limitMenu);
  }
  new MutationObserver(() => limitMenus(document)).observe(document.documentElement, { childList: true, subtree: true });

  const RELATIONSHIPS = ["unchanged", "description_changed", "split", "merged", "moved", "deleted"];

  // A bar of the lines by relationship, drawn by hand in SVG.
  function bar(counts) {
    const total = RELATIONSHIPS.reduce((n, r) => n + (counts[r] || 0), 0) || 1;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 300 14");
    svg.setAttribute("width", "300");
    svg.setAttribute("height", "14");
    svg.setAttribute("class", "relbar");
    let x = 0;
    RELATIONSHIPS.forEach((r, i) => {
      const w = (300 * (counts[r] || 0)) / total;
      if (!w) return;
      const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      rect.setAttribute("x", String(x)); rect.setAttribute("y", "0");
      rect.setAttribute("width", String(w)); rect.setAttribute("height", "14");
      rect.setAttribute("fill", ["#8a9", "#59c", "#e93", "#c6c", "#fc5", "#d44"][i]);
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = `${r}: ${counts[r]}`;
      rect.appendChild(title);
      svg.appendChild(rect);
      x += w;
    });
    return svg;
  }

  // Horizontal bars of the change by chapter (the chapters most changed first), in SVG.
  function impactChart(chapters) {
    const kinds = ["split", "merged", "moved", "deleted", "description_changed", "created"];
    const colors = ["#e93", "#c6c", "#fc5", "#d44", "#59c", "#4a4"];
    const total = (c) => kinds.reduce((n, k) => n + (c[k] || 0), 0);
    const top = chapters.filter((c) => total(c) > 0).sort((a, b) => total(b) - total(a)).slice(0, 20);
    const max = Math.max(1, ...top.map(total));
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const rowH = 16;
    svg.setAttribute("viewBox", `0 0 420 ${rowH * top.length + 4}`);
    svg.setAttribute("width", "420");
    svg.setAttribute("class", "impact-chart");
    top.forEach((c, i) => {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", "0"); label.setAttribute("y", String(i * rowH + 12));
      label.setAttribute("font-size", "11");
      label.textContent = `ch. ${c.chapter}`;
      svg.appendChild(label);
      let x = 40;
      kinds.forEach((k, j) => {
        const w = (370 * (c[k] || 0)) / max;
        if (!w) return;
        const r = document.createElementNS(ns, "rect");
        r.setAttribute("x", String(x)); r.setAttribute("y", String(i * rowH + 2));
        r.setAttribute("width", String(w)); r.setAttribute("height", String(rowH - 4));
        r.setAttribute("fill", colors[j]);
        const t = document.createElementNS(ns, "title");
        t.textContent = `chapter ${c.chapter} ${k}: ${c[k]}`;
        r.appendChild(t);
        svg.appendChild(r);
        x += w;
      });
    });
    return el("figure", { id: "impact" }, svg,
      el("figcaption", { class: "muted small" }, "Subheadings by chapter: " + kinds.map((k) => k.replace("_", " ")).join(", ")));
  }

  async function viewTransposition(p) {
    const app = document.getElementById("app");
    const from = p.get("from") || "HS2017";
    const to = p.get("to") || "HS2022";
    const status = el("p", { class: "muted", id: "tr-status" }, "Loading…");
    app.replaceChildren(
      el("h1", {}, "Transposition"),
      el("p", { class: "lede" }, "Which members have published the transposition of their national tariff (or WTO schedule) to the new edition, from their signed hs.transposition documents. Administrations draft theirs with the workbench: ",
        el("code", {}, "entrepot transpose"), " or ", el("code", {}, "POST /v1/transposition/workbench"), "."),
      el("form", { method: "get", action: "/", class: "filters" },
        el("input", { type: "hidden", name: "view", value: "transposition" }),
        el("label", {}, "From ", el("select", { name: "from" }, ["HS2012", "HS2017", "HS2022"].map((e) => el("option", { value: e, selected: e === from || null }, e)))),
        el("label", {}, "To ", el("select", { name: "to" }, ["HS2017", "HS2022", "HS2028"].map((e) => el("option", { value: e, selected: e === to || null }, e)))),
        el("button", { type: "submit" }, "Show")),
      status);
    try {
      const v = await get(`/v1/transposition/progress?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
      const rows = v.members.map((m) => el("tr", {},
        el("td", {}, m.administration), el("td", {}, m.publisher), el("td", {}, m.scope.replace("_", " ")),
        el("td", { class: "mono" }, m.chapters.join(" ")), el("td", {}, m.lines),
        el("td", {}, Object.entries(m.status).map(([k, n]) => `${k} ${n}`).join(", ")),
        el("td", {}, bar(m.relationships)),
        el("td", {}, m.documents.slice(0, 3).map((d) => el("a", { href: `/?doc=${d}`, class: "mono doc-link" }, `${d.slice(0, 12)}… `)))));
      status.replaceWith(el("section", { id: "transposition-progress" },
        el("h2", {}, `${v.from} → ${v.to}: ${v.members.length} member(s) transposed`),
        v.members.length
          ? el("table", {}, el("thead", {}, el("tr", {}, ["Administration", "Publisher", "Scope", "Chapters", "Lines", "Status", "Relationships", "Documents"].map((c) => el("th", {}, c)))), el("tbody", {}, rows))
          : el("p", { class: "muted" }, "No member's transposition of this edition change is held yet."),
        el("p", { class: "muted small" }, RELATIONSHIPS.join(" · "))));
      const impact = await get(`/v1/analytics/impact?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`).catch(() => null);
      if (impact) {
        document.getElementById("transposition-progress").after(el("section", {},
          el("h2", {}, `What ${impact.from} → ${impact.to} changed, by chapter`), impactChart(impact.chapters)));
      }
    } catch (e) {
      status.replaceWith(el("p", { class: "error" }, e.message));
    }
  }

  window.entrepotViews = Object.assign(window.entrepotViews || {}, { transposition: viewTransposition });
})();
