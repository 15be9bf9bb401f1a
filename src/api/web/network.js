// entrepot web page: the network view, feeds, peers (by organization), lag, forks and the
// charter in force (see app.js for the helpers). It re-reads the API when documents arrive on
// the event stream, and every NETWORK_REFRESH_MS for peers, which the stream does not carry.
"use strict";

const NETWORK_REFRESH_MS = 15000;

const stat = (k, v, id) => h("div", { class: "stat", id: id || null }, h("div", { class: "v" }, String(v)), h("div", { class: "k" }, k));

// An organization code with its name: "FR — Direction générale des douanes".
function orgLabel(code) {
  if (!code) return h("span", { class: "muted" }, "not certified");
  const name = orgName(code);
  return h("span", { class: "org" }, h("strong", {}, code), name && name !== code ? ` — ${name}` : "");
}

const CHARTER_STATES = { valid: "ok", expiring_soon: "warn", expired: "bad" };

// The charter in force: version, expiry and state, and its members.
function charterPanel(c) {
  if (!c) {
    return h("section", { class: "panel", id: "charter" }, h("h2", {}, "Charter"),
      h("p", { class: "muted" }, "This node is on a keyring network: the organizations it trusts are in its keyring, not in a charter."));
  }
  const days = Math.floor(c.seconds_left / 86400);
  const left = c.seconds_left >= 0 ? `${days} day${days === 1 ? "" : "s"} left` : `expired ${-days} day${days === -1 ? "" : "s"} ago`;
  return h("section", { class: "panel", id: "charter" },
    h("h2", {}, `Charter version ${c.version}`),
    h("p", {},
      h("span", { class: `badge ${CHARTER_STATES[c.state] || ""}`, id: "charter-state" }, c.state.replace(/_/g, " ")),
      ` expires ${day(c.expires)} (${left}) · ${c.organizations} member organization${c.organizations === 1 ? "" : "s"}`),
    h("p", { class: "muted small mono" }, `genesis ${short(c.genesis)} · version hash ${short(c.hash)}`),
    table(["Member", "Name", "Role", "Country", "Region", "May publish"], (c.members || []).map((m) => [
      h("a", { href: pageUrl({ publisher: m.id }), class: "mono" }, m.id), m.name, m.role, m.country || "—", m.region || "—",
      h("span", { class: "small" }, m.types.join(", ")),
    ]), "No member."));
}

// The network: charter, feeds, peers, lag and forks.
async function viewNetwork() {
  setActive("network");
  render(h("h1", {}, "Network"), h("p", { class: "lede" }, "The organizations of this network, the feeds this node holds, its peers, how far behind them it is, and any forks it has recorded."),
    h("p", { class: "muted", id: "net-status" }, "Loading…"), h("div", { id: "net" }));
  async function load() {
    const [feeds, peers, forks, charter] = await Promise.all([
      api("/v1/feeds"), api("/v1/peers"), api("/v1/forks"), api("/v1/charter").catch(() => null)]);
    const behind = peers.lag.filter((l) => l.lag > 0).length;
    const orgsOnline = new Set(peers.peers.map((x) => x.organization).filter(Boolean));
    document.getElementById("net-status").textContent = "";
    document.getElementById("net").replaceChildren(...present(
      h("div", { class: "stats" }, stat("Feeds", feeds.feeds.length, "stat-feeds"), stat("Peers", peers.peers.length),
        stat("Organizations connected", orgsOnline.size), stat("Feeds behind", behind), stat("Forks", forks.forks.length)),
      charterPanel(charter),
      h("h2", {}, "Peers"),
      peers.local_peer_id ? h("p", { class: "muted small mono" }, `This node: ${peers.local_peer_id}`) : null,
      table(["Organization", "Peer", "Address", "Admitted", "Feeds announced"], peers.peers.map((x) => [
        orgLabel(x.organization), h("span", { class: "mono", title: x.peer_id }, short(x.peer_id)), h("span", { class: "mono" }, x.address),
        x.admitted ? h("span", { class: "badge ok" }, "admitted") : h("span", { class: "badge warn" }, "not admitted"),
        Object.keys(x.heads || {}).length,
      ]), "No peer connected (an air-gapped replica is fed by bundles)."),
      h("h2", {}, "Feeds"),
      table(["Publisher", "Head", "Head document", "State"], feeds.feeds.map((f) => [
        publisherCell(f.publisher), h("span", { class: "mono" }, f.seq),
        h("a", { href: pageUrl({ doc: f.id }), class: "mono" }, short(f.id)),
        f.frozen ? h("span", { class: "badge bad" }, "frozen by fork") : h("span", { class: "badge ok" }, "ok"),
      ]), "This node holds no feed yet."),
      h("h2", {}, "Lag"),
      table(["Publisher", "Our head", "Best announced", "Lag"], peers.lag.map((l) => [
        publisherCell(l.publisher), l.local_seq, l.best_announced_seq,
        l.lag > 0 ? h("span", { class: "badge warn" }, `${l.lag} behind`) : h("span", { class: "badge ok" }, "up to date"),
      ]), "No feed known."),
      h("h2", {}, "Forks"),
      table(["Publisher", "Position", "Kept", "Conflicting"], forks.forks.map((f) => [
        publisherCell(f.publisher), f.seq, f.kept ? h("a", { href: pageUrl({ doc: f.kept }), class: "mono" }, short(f.kept)) : "—",
        h("span", { class: "mono" }, short(f.conflicting)),
      ]), "No fork recorded.")));
  }
  try {
    await load();
  } catch (e) {
    document.getElementById("net-status").replaceWith(h("p", { class: "error" }, e.message));
    return;
  }
  live.subscribe(() => load().catch(() => {}));
  const timer = setInterval(() => {
    if (new URLSearchParams(location.search).get("view") !== "network") return clearInterval(timer);
    load().catch(() => {});
  }, NETWORK_REFRESH_MS);
}
