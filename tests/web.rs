//! The web page in a real browser: Debian's headless Chromium, driven over the DevTools
//! protocol (tests/common/browser.rs), loads the page served by a seeded node and the DOM shows
//! what an officer would read: a superseded or withdrawn document says so at the top, lists mark
//! it and name publishers, bodies are rendered by type, HS codes read as people write them and
//! are typed either way, the network view names organizations and shows the charter, and lists
//! update live from the event stream.
//!
//! Without `/usr/bin/chromium` the tests fail when `CI` is set (CI installs it; see .ci/run)
//! and are skipped with a message otherwise. Set `ENTREPOT_WEB_SCREENSHOTS=DIR` to also save
//! PNG screenshots of each page (.ci/run keeps them under the target directory).

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/seed.rs"]
mod seed;

use std::path::Path;

use entrepot::charter::{Member, Permission, Role};
use entrepot::document::{OrgId, Seq, TypeName};
use entrepot::hsdata::HsData;
use entrepot::service::PeerInfo;

use browser::{chromium_available, Browser, Page};
use common::charters::{genesis, grant, sign, FAR};
use common::key;
use http::{NodeOptions, TestServer};
use seed::{seed, Seeded, US_KEY, WCO_KEY};

/// Opens `path`, waits until the page has rendered its view and `condition` holds, saves a
/// screenshot when asked, and returns the page and its DOM.
fn open(b: &mut Browser, srv: &TestServer, path: &str, condition: &str) -> (Page, String) {
    let page = b.open(&srv.url(path));
    b.wait_for(&page, &format!("document.body && document.body.dataset.ready === '1' && ({condition})"), path);
    if let Some(dir) = std::env::var_os("ENTREPOT_WEB_SCREENSHOTS") {
        let name: String = path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(60).collect();
        b.screenshot(&page, &Path::new(&dir).join(format!("{name}.png")));
    }
    let dom = b.dom(&page);
    assert!(dom.contains("</html>"), "no DOM for {path}: {dom}");
    assert!(!dom.contains("null<") && !dom.contains(">undefined<"), "a missing value is printed on {path}: {dom}");
    (page, dom)
}

/// [`open`], then closes the page: its DOM.
fn load(b: &mut Browser, srv: &TestServer, path: &str, condition: &str) -> String {
    let (page, dom) = open(b, srv, path, condition);
    b.close(page);
    dom
}

fn seeded() -> (TestServer, Seeded) {
    let s = seed(&HsData::excerpt());
    let (wco, us) = (key(WCO_KEY), key(US_KEY));
    let srv = TestServer::start(
        &NodeOptions { org: Some("FR"), trust: &[("WCO", &wco), ("US", &us)], read_requires_token: false },
        s.envelopes.clone(),
    );
    (srv, s)
}

/// The text between the first `from` and the next `to` after it.
fn between<'a>(dom: &'a str, from: &str, to: &str) -> &'a str {
    let start = dom.find(from).unwrap_or_else(|| panic!("{from} not in {dom}"));
    let rest = &dom[start..];
    &rest[..rest.find(to).unwrap_or(rest.len())]
}

/// The first `href="/?doc=…"` in a DOM.
fn first_doc_link(dom: &str) -> Option<String> {
    let start = dom.find("href=\"/?doc=")? + "href=\"".len();
    let end = start + dom[start..].find('"')?;
    Some(dom[start..end].to_owned())
}

#[test]
fn a_person_searches_opens_a_document_and_tracks_a_code() {
    if !chromium_available() {
        return;
    }
    let (srv, s) = seeded();
    let mut b = Browser::start();

    // A search loaded straight from its URL.
    let results = load(
        &mut b,
        &srv,
        "/?q=a+camera+drone&type=classification.opinion",
        "document.querySelector('#results table')",
    );
    assert!(results.contains("Classification of a camera drone"), "{results}");
    assert!(!results.contains("Classification of camera drones (revised)"), "the filter applies");
    assert!(results.contains("value=\"a camera drone\""), "the search box keeps the query");
    let link = format!("/?doc={}", s.opinion_old);
    assert!(results.contains(&format!("href=\"{link}\"")), "a result links to its document");

    // Following the result: the document page with its verified mark and supersession chain.
    let doc = load(&mut b, &srv, &link, "document.getElementById('verified')");
    assert!(doc.contains("class=\"verified ok\""), "{doc}");
    assert!(doc.contains("Verified"));
    assert!(doc.contains("World Customs Organization"), "the publisher's name");
    assert!(doc.contains("2022-01-01 → open"), "validity is shown");
    assert!(doc.contains("Classification of camera drones (revised)"), "the successor in the chain");
    assert!(doc.contains(&format!("/?doc={}", s.opinion_new)));
    assert!(doc.contains("HSC/68/1"), "the content is shown");

    // The HS tracker: 8806 is new in HS2022 and comes from HS2017 8802, written as people do.
    let hs = load(&mut b, &srv, "/?view=hs&hs=HS2022/8806", "document.getElementById('hs-title')");
    assert!(hs.contains("Unmanned aircraft"), "{hs}");
    assert!(hs.contains(">8802.11<"), "correlation to HS2017 8802.11: {hs}");
    assert!(hs.contains("Classification of a camera drone"), "guidance citing it");
    let changes =
        load(&mut b, &srv, "/?view=hs&chapter=88&from=HS2017&to=HS2022", "document.querySelector('#hs-result h2')");
    assert!(changes.contains("Changes in 88 from HS2017 to HS2022"), "{changes}");
    assert!(changes.contains("88.03"), "the heading 8803 as 88.03: {changes}");

    // The network view: feeds and their state.
    let net = load(&mut b, &srv, "/?view=network", "document.getElementById('stat-feeds')");
    assert!(net.contains("Feeds") && net.contains("US") && net.contains("up to date"), "{net}");
    assert!(net.contains("No fork recorded."));
    assert!(net.contains("keyring network"), "no charter on this node, and the page says why: {net}");
}

#[test]
fn a_superseded_or_withdrawn_document_says_so_at_the_top_and_lists_mark_it() {
    if !chromium_available() {
        return;
    }
    let (srv, s) = seeded();
    let mut b = Browser::start();

    let old = load(&mut b, &srv, &format!("/?doc={}", s.opinion_old), "document.getElementById('lifecycle-banner')");
    let banner = between(&old, "id=\"lifecycle-banner\"", "</div>");
    assert!(banner.contains("Superseded on 2023-01-01 by "), "{banner}");
    assert!(
        banner.contains(&format!("href=\"/?doc={}\"", s.opinion_new)),
        "the banner links the replacement: {banner}"
    );
    assert!(banner.contains("Classification of camera drones (revised)"), "{banner}");
    assert!(banner.contains("Revised after the HSC 70th session."), "the act's reason: {banner}");
    assert!(banner.contains(&format!("href=\"/?doc={}\"", s.supersede_act)), "and the act itself: {banner}");
    let title = between(&old, "id=\"doc-title\"", "</h1>");
    assert!(title.contains("data-lifecycle=\"superseded\""), "the title carries the badge: {title}");
    assert!(old.contains("not in force today: superseded"), "the validity line says why: {old}");

    // The successor has no banner.
    let new = load(&mut b, &srv, &format!("/?doc={}", s.opinion_new), "document.getElementById('verified')");
    assert!(!new.contains("id=\"lifecycle-banner\""), "{new}");

    let ruling = load(&mut b, &srv, &format!("/?doc={}", s.ruling), "document.getElementById('lifecycle-banner')");
    let banner = between(&ruling, "id=\"lifecycle-banner\"", "</div>");
    assert!(banner.contains("Withdrawn on 2024-06-01: Issued on incomplete information."), "{banner}");

    // Lists: the badge, the verified mark and the publisher's name on each row, newest first.
    let list = load(&mut b, &srv, "/?type=classification.opinion", "document.querySelector('#results tbody tr')");
    let rows: Vec<&str> = between(&list, "<tbody>", "</tbody>").split("<tr").skip(1).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows[0].contains("Classification of camera drones (revised)"), "the newer first: {list}");
    assert!(!rows[0].contains("data-lifecycle"), "{}", rows[0]);
    assert!(
        rows[1].contains("Classification of a camera drone") && rows[1].contains("data-lifecycle=\"superseded\""),
        "{}",
        rows[1]
    );
    for row in &rows {
        assert!(row.contains("aria-label=\"Verified\""), "the verified mark: {row}");
        assert!(row.contains("World Customs Organization") && row.contains(" WCO<"), "name and code: {row}");
    }
    assert!(list.contains("newest issue first"), "the order is said: {list}");
    let us = load(&mut b, &srv, "/?publisher=US", "document.querySelector('#results tbody tr')");
    assert!(us.contains("U.S. Customs and Border Protection"), "{us}");
    let ruling_row = between(&us, "Advance ruling US-2023-000042", "</tr>");
    assert!(ruling_row.contains("data-lifecycle=\"withdrawn\""), "{ruling_row}");
}

#[test]
fn bodies_are_rendered_by_type_with_the_raw_json_one_click_away() {
    if !chromium_available() {
        return;
    }
    let (srv, s) = seeded();
    let mut b = Browser::start();
    let (page, doc) = open(&mut b, &srv, &format!("/?doc={}", s.opinion_new), "document.getElementById('guidance')");
    let body = between(&doc, "id=\"doc-body\"", "id=\"raw-json\"");
    assert!(body.contains("HSC/70/4"), "reference: {body}");
    assert!(body.contains("Quadcopter with a 4K camera, take-off weight 0.9 kg, remote controlled"), "product: {body}");
    assert!(
        body.contains("id=\"classification\"") && body.contains(">HS2022 8806.22<"),
        "classification as written: {body}"
    );
    assert!(body.contains(">GIR 1<") && body.contains(">GIR 6<"), "GIRs: {body}");
    assert!(body.contains("HS2022 8525.89"), "codes considered: {body}");
    assert!(body.contains("Heading 8806 covers unmanned aircraft"), "reasons: {body}");
    assert!(!body.contains("\"classification\": {"), "the body is not the JSON: {body}");
    // The raw JSON: in a closed <details> that opens with one click.
    let raw = between(&doc, "id=\"raw-json\"", "</details>");
    assert!(raw.contains("\"code\": \"8806.22\""), "{raw}");
    assert!(!raw.contains(" open"), "closed until asked: {raw}");
    b.eval(&page, "document.querySelector('#raw-json summary').click()");
    assert_eq!(b.eval(&page, "document.getElementById('raw-json').open"), serde_json::json!(true));

    // An amendment: its operations with English and French side by side.
    let amendment = serde_json::json!({
        "title": { "en": "Amendment to subheading 8802.11", "fr": "Amendement de la sous-position 8802.11" },
        "recommendation": { "reference": "Recommendation of 28 June 2019", "adopted": "2019-06-28", "notified": "2019-07-01" },
        "edition_from": "HS2017", "edition_to": "HS2022", "set_number": 3, "entry_into_force": "2022-01-01",
        "validity": { "from": "2022-01-01" },
        "operations": [{
            "op": "delete_substitute", "target": { "kind": "subheading", "code": "8802.11" },
            "text": { "en": "-- Of an unladen weight of more than 250 g but not more than 2,000 kg",
                      "fr": "-- D'un poids à vide excédant 250 g mais n'excédant pas 2 000 kg" }
        }]
    });
    let published = srv.service.publish("hs.amendment", amendment.to_string().as_bytes()).unwrap();
    let am = load(&mut b, &srv, &format!("/?doc={}", published.id), "document.querySelector('.body.amendment')");
    let ops = between(&am, "Operations (1)", "</table>");
    assert!(ops.contains(">English<") && ops.contains(">Français<"), "{ops}");
    let row = between(ops, "<tbody>", "</tbody>");
    let (en, fr) = (row.find("more than 250 g").expect("English"), row.find("excédant 250 g").expect("French"));
    assert!(en < fr, "English then French on one row: {row}");
    assert!(row.contains(">8802.11<") && row.contains("delete substitute"), "{row}");

    // A correlation's rows and a notice's fields.
    let corr = load(&mut b, &srv, "/?type=hs.correlation&hs=8806", "document.querySelector('#results tbody tr')");
    let corr_link = first_doc_link(&corr).expect("a correlation is listed");
    let c = load(&mut b, &srv, &corr_link, "document.querySelector('.body.correlation')");
    assert!(c.contains("Rows (") && c.contains(">8802.11<") && c.contains(">8806.10<"), "{c}");
    let notice = load(&mut b, &srv, &format!("/?doc={}", s.notice), "document.getElementById('notice')");
    let fields = between(&notice, "id=\"notice\"", "</dl>");
    for want in ["alert", "tobacco", "HS2022 2404.11", "AM", "customs only", "all customs"] {
        assert!(fields.contains(want), "{want} in {fields}");
    }
}

#[test]
fn hs_codes_read_as_people_write_them_and_are_typed_either_way() {
    if !chromium_available() {
        return;
    }
    let (srv, s) = seeded();
    let mut b = Browser::start();
    // The tracker's box accepts 8806 22, 8806.22 and 880622; the URL keeps digits only.
    for typed in ["8806+22", "8806.22", "880622"] {
        let (page, hs) =
            open(&mut b, &srv, &format!("/?view=hs&code={typed}&ed=HS2022"), "document.getElementById('hs-title')");
        assert!(hs.contains(">HS2022 8806.22<"), "{typed}: {hs}");
        assert_eq!(b.eval(&page, "location.search"), serde_json::json!("?view=hs&hs=HS2022%2F880622"), "{typed}");
        assert!(hs.contains("value=\"8806.22\""), "the box shows the code as written: {hs}");
        b.close(page);
    }
    // The list filter too, and the subjects column writes the code with its dot.
    for typed in ["8806+22", "8806.22", "880622"] {
        let list = load(
            &mut b,
            &srv,
            &format!("/?hs={typed}&type=classification.opinion"),
            "document.querySelector('#results tbody tr')",
        );
        let rows = between(&list, "<tbody>", "</tbody>");
        assert_eq!(rows.matches("<tr").count(), 2, "{typed}: {list}");
        assert!(rows.find(&s.opinion_new.to_hex()) < rows.find(&s.opinion_old.to_hex()), "newest first: {rows}");
        assert!(rows.contains("HS2022 8806.22"), "{rows}");
    }
    // Headings as 88.06 and national lines with their dots.
    let (page, _) = open(&mut b, &srv, "/", "true");
    let written = b.eval(&page, "['88', '8806', '880622', '88062200', '8806220010', '88062', '8806 22'].map(hsCode)");
    assert_eq!(
        written,
        serde_json::json!(["88", "88.06", "8806.22", "8806.22.00", "8806.22.00.10", "8806.2", "8806.22"])
    );
}

fn charter_member(id: &str, name: &str, role: Role, country: Option<&str>, k: u8) -> Member {
    Member {
        id: OrgId::new(id).unwrap(),
        name: name.into(),
        country: country.map(str::to_owned),
        region: Some("EU".into()).filter(|_| country == Some("FR")),
        role,
        keys: vec![grant(&key(k), 1, None)],
        permissions: ["classification.opinion", "classification.ruling"]
            .iter()
            .map(|t| Permission { doc_type: TypeName::new(t).unwrap(), hs_chapters: None, regions: None })
            .collect(),
    }
}

#[test]
fn the_network_view_names_organizations_shows_the_charter_and_updates_live() {
    if !chromium_available() {
        return;
    }
    let g = sign(
        &genesis(
            FAR,
            vec![
                charter_member("WCO", "World Customs Organization", Role::Secretariat, None, WCO_KEY),
                charter_member(
                    "FR",
                    "Direction générale des douanes et droits indirects",
                    Role::Customs,
                    Some("FR"),
                    3,
                ),
                charter_member("US", "U.S. Customs and Border Protection", Role::Customs, Some("US"), US_KEY),
            ],
        ),
        &[100, 101],
    );
    let srv = TestServer::start_charter("FR", &key(3), &g);
    // What the network layer records of a connected peer once its certificate admitted it.
    srv.service.peers.write().unwrap().peers.push(PeerInfo {
        peer_id: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo".into(),
        address: "/ip4/127.0.0.1/tcp/4001".into(),
        organization: Some(OrgId::new("US").unwrap()),
        admitted: true,
        penalty_points: 0,
        heads: [(OrgId::new("US").unwrap(), Seq(4))].into_iter().collect(),
    });
    let mut b = Browser::start();
    let (page, net) = open(&mut b, &srv, "/?view=network", "document.getElementById('charter')");
    let charter = between(&net, "id=\"charter\"", "</section>");
    assert!(charter.contains("Charter version 1"), "{charter}");
    assert!(charter.contains(">valid<") && charter.contains("expires 2099-01-01"), "state and expiry: {charter}");
    assert!(charter.contains("3 member organizations"), "{charter}");
    for want in [
        "World Customs Organization",
        "secretariat",
        "Direction générale des douanes et droits indirects",
        ">FR<",
        ">EU<",
        "U.S. Customs and Border Protection",
        "customs",
    ] {
        assert!(charter.contains(want), "{want} in {charter}");
    }
    let peers = between(&net, ">Peers</h2>", "</table>");
    assert!(
        peers.contains("<strong>US</strong> — U.S. Customs and Border Protection"),
        "the peer's organization by name: {peers}"
    );
    assert!(peers.contains("admitted"), "{peers}");
    assert_eq!(b.eval(&page, "document.querySelector('#stat-feeds .v').textContent"), serde_json::json!("0"));

    // Live: a document published on this node shows in the open view without a reload.
    let opinion = serde_json::json!({
        "title": { "en": "Classification of a delivery drone" }, "reference": "FR-2026-1",
        "product": { "description": { "en": "Drone carrying parcels up to 2 kg" } },
        "classification": { "edition": "HS2022", "code": "8806.22" }, "gir": ["1", "6"],
        "reasons": { "en": "Unmanned aircraft." }, "validity": { "from": "2026-01-01" }
    });
    srv.service.publish("classification.opinion", opinion.to_string().as_bytes()).unwrap();
    b.wait_for(&page, "document.querySelector('#stat-feeds .v').textContent === '1'", "the feed count updates live");
    let net = b.dom(&page);
    assert!(between(&net, ">Feeds</h2>", "</table>").contains("Direction générale des douanes"), "{net}");
}

#[test]
fn a_document_published_while_a_list_is_open_appears_in_it() {
    if !chromium_available() {
        return;
    }
    let (srv, _) = seeded();
    let mut b = Browser::start();
    let (page, _) = open(&mut b, &srv, "/?type=classification.opinion", "document.querySelector('#results tbody tr')");
    b.wait_for(&page, "document.getElementById('live-status').dataset.state === 'live'", "the event stream is open");
    let opinion = serde_json::json!({
        "title": { "en": "Classification of a crop-spraying drone" }, "reference": "FR-2026-7",
        "product": { "description": { "en": "Drone with a 10 l tank for spraying crops" } },
        "classification": { "edition": "HS2022", "code": "8806.22" }, "gir": ["1", "6"],
        "reasons": { "en": "Unmanned aircraft." }, "validity": { "from": "2026-01-01" }
    });
    assert_eq!(b.eval(&page, "document.getElementById('results').dataset.loads"), serde_json::json!("1"));
    let published = srv.service.publish("classification.opinion", opinion.to_string().as_bytes()).unwrap();
    b.wait_for(
        &page,
        "document.querySelectorAll('#results tbody tr').length === 3",
        "the new document appears in the open list",
    );
    let dom = b.dom(&page);
    let first = between(&dom, "<tbody>", "</tr>");
    assert!(
        first.contains("Classification of a crop-spraying drone") && first.contains(">new<"),
        "newest first, marked new: {first}"
    );
    assert!(first.contains(&published.id.to_hex()));
    assert!(dom.contains("1 new since you opened this page"), "{dom}");
    assert!(b.eval(&page, "window.entrepotLiveReceived").as_u64().unwrap_or(0) >= 1, "it came from the stream");
    // Another type's document does not enter this list.
    let ruling = serde_json::json!({
        "title": { "en": "Ruling on a drone battery" }, "reference": "FR-2026-8",
        "product": { "description": { "en": "Lithium battery for drones" } },
        "classification": { "edition": "HS2022", "code": "8507.60" }, "gir": ["1"],
        "reasons": { "en": "A battery." }, "validity": { "from": "2026-01-01" }
    });
    srv.service.publish("classification.ruling", ruling.to_string().as_bytes()).unwrap();
    b.wait_for(&page, "window.entrepotLiveReceived >= 2", "the second event arrives");
    b.wait_for(&page, "Number(document.getElementById('results').dataset.loads) >= 3", "the list is read again");
    assert_eq!(b.eval(&page, "document.querySelectorAll('#results tbody tr').length"), serde_json::json!(3));
    assert!(!b.dom(&page).contains("Ruling on a drone battery"), "the list's filter applies to live documents");
}

#[test]
fn a_secretariat_sees_who_transposed_and_menus_offer_only_held_editions() {
    if !chromium_available() {
        return;
    }
    let (srv, _) = seeded();
    let mut b = Browser::start();
    let empty = load(
        &mut b,
        &srv,
        "/?view=transposition&from=HS2017&to=HS2022",
        "document.body.innerText.includes('transposed')",
    );
    assert!(empty.contains("0 member(s) transposed"), "{empty}");
    let body = serde_json::json!({
        "title": { "en": "FR national tariff HS2017→HS2022: chapter 88" },
        "administration": "FR", "scope": "national_tariff", "edition_from": "HS2017", "edition_to": "HS2022",
        "chapter": "88", "status": "published",
        "lines": [
            { "old": "88021100", "relationship": "split", "new": ["88062100", "88021100"] },
            { "old": "88031000", "relationship": "merged", "new": ["88073000"] }
        ]
    });
    srv.service.publish("hs.transposition", body.to_string().as_bytes()).unwrap();
    let page = load(
        &mut b,
        &srv,
        "/?view=transposition&from=HS2017&to=HS2022",
        "document.body.innerText.includes('What HS2017 → HS2022 changed')",
    );
    assert!(page.contains("HS2017 → HS2022: 1 member(s) transposed"), "{page}");
    assert!(page.contains("national tariff") && page.contains("published 1"), "{page}");
    assert!(page.contains("<svg") && page.contains("split: 1"), "the relationships are drawn: {page}");
    assert!(
        page.contains("What HS2017 → HS2022 changed, by chapter") && page.contains("chapter 88 "),
        "the impact chart: {page}"
    );
    // Edition menus: the node holds HS2017 and HS2022 only.
    let hs = load(
        &mut b,
        &srv,
        "/?view=hs&hs=HS2022/8806",
        "document.getElementById('hs-title') && !document.querySelector('option[value=\"HS2012\"]')",
    );
    assert!(hs.contains("<option value=\"HS2017\""), "{hs}");
}

#[test]
fn a_classification_specialist_searches_sees_similar_classifications_and_divergences() {
    if !chromium_available() {
        return;
    }
    let (srv, s) = seeded();
    // France rules the same camera drone under the camera heading.
    let body = serde_json::json!({
        "title": { "en": "Quadcopter camera drone (French ruling)", "fr": "Drone quadricoptère avec caméra" },
        "reference": "FR-BTI-2026-9",
        "product": { "description": { "en": "Quadcopter with a 4K camera, take-off weight 0.9 kg, remote controlled" } },
        "classification": { "edition": "HS2022", "code": "8525.89" },
        "gir": ["1", "3 (b)"],
        "reasons": { "en": "The camera gives the essential character." },
        "validity": { "from": "2026-01-01" }
    });
    let fr = srv.service.publish("classification.ruling", body.to_string().as_bytes()).unwrap().id.to_hex();
    let mut b = Browser::start();

    let found = load(&mut b, &srv, "/?view=search&q=camera+drone", "document.querySelector('#search-results')");
    let results = between(&found, "id=\"search-results\"", "</table>");
    assert!(results.contains("3 document(s) match"), "{results}");
    assert!(results.contains("Quadcopter camera drone (French ruling)"), "{results}");
    assert!(results.contains("World Customs Organization"), "publisher names: {results}");
    assert!(results.contains("data-lifecycle=\"superseded\""), "the superseded opinion is marked: {results}");
    assert!(results.contains("vmark ok"), "verified marks: {results}");
    assert!(results.contains("HS2022 8806.22"), "codes as people write them: {results}");
    let filtered =
        load(&mut b, &srv, "/?view=search&q=drone&publisher=FR&hs=8525", "document.querySelector('#search-results')");
    assert!(between(&filtered, "id=\"search-results\"", "</table>").contains("1 document(s) match"), "{filtered}");
    let bad = load(&mut b, &srv, "/?view=search&q=drone&hs=88A", "document.querySelector('#search-error')");
    assert!(bad.contains("must be 1 to 10 digits"), "{bad}");

    let page = load(&mut b, &srv, &format!("/?doc={fr}"), "document.querySelector('#similar table')");
    let similar = between(&page, "id=\"similar\"", "</table>");
    assert!(similar.contains("classifies under 8525.89 (HS2022)"), "{similar}");
    assert!(similar.contains(&s.opinion_new.to_hex()), "WCO's revised opinion is similar: {similar}");
    assert!(similar.contains("8806.22 (HS2022)") && similar.contains("divergent heading"), "{similar}");
    assert!(similar.contains("World Customs Organization"), "{similar}");

    let div = load(&mut b, &srv, "/?view=divergences&chapter=88", "document.querySelector('#divergences')");
    let section = between(&div, "id=\"divergences\"", "</table>");
    assert!(section.contains("1 divergence(s)"), "{section}");
    assert!(section.contains("88.06") && section.contains("85.25"), "the two headings: {section}");
    assert!(section.contains(&fr) && section.contains(&s.opinion_new.to_hex()), "{section}");
    assert!(!section.contains(&s.opinion_old.to_hex()), "a superseded opinion is no current divergence: {section}");

    let charts = load(&mut b, &srv, "/?view=analytics", "document.querySelector('#counts-chart rect')");
    assert!(charts.contains("id=\"counts-chart\"") && charts.contains("classification.opinion"), "{charts}");
    assert!(charts.contains(": 1</title>") || charts.contains(": 2</title>"), "bars carry their counts: {charts}");
}
