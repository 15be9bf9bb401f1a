//! The web page in a real browser: Debian's headless Chromium loads the page served by a
//! seeded node, follows a search to a document, and the DOM shows what a person would read.
//!
//! Without `/usr/bin/chromium` the test fails when `CI` is set (CI installs it; see .ci/run)
//! and is skipped with a message otherwise. Set `ENTREPOT_WEB_SCREENSHOTS=DIR` to also save
//! PNG screenshots of each page, for looking at the page by eye.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/seed.rs"]
mod seed;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use entrepot::hsdata::HsData;

use common::key;
use http::{NodeOptions, TestServer};
use seed::{seed, US_KEY, WCO_KEY};

const CHROMIUM: &str = "/usr/bin/chromium";
/// One browser run (start, load, scripts, fetches, dump) must end within this.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

fn chromium_available() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} is missing: CI must install Debian's chromium (apt-get install -y chromium) for the browser test");
    }
    println!("skipped: {CHROMIUM} is missing; install it with `apt-get install -y chromium` to run the browser test");
    false
}

/// Runs headless Chromium on `url` with `mode` (`--dump-dom` or `--screenshot=…`); its stdout.
fn chromium(url: &str, mode: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(mode)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // Read stdout on a thread so a large DOM never blocks the browser on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {url} within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

fn dom(srv: &TestServer, path: &str) -> String {
    let url = srv.url(path);
    if let Some(dir) = std::env::var_os("ENTREPOT_WEB_SCREENSHOTS") {
        let name: String = path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(60).collect();
        let file = Path::new(&dir).join(format!("{name}.png"));
        chromium(&url, &[format!("--screenshot={}", file.display()), "--window-size=1280,2000".into()]);
    }
    let dom = chromium(&url, &["--dump-dom".into()]);
    assert!(dom.contains("</html>"), "no DOM for {path}: {dom}");
    assert!(!dom.contains("null<"), "a missing value is printed as null on {path}: {dom}");
    dom
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
    let s = seed(&HsData::excerpt());
    let (wco, us) = (key(WCO_KEY), key(US_KEY));
    let srv = TestServer::start(
        &NodeOptions { org: Some("FR"), trust: &[("WCO", &wco), ("US", &us)], read_requires_token: false },
        s.envelopes.clone(),
    );

    // A search loaded straight from its URL.
    let results = dom(&srv, "/?q=a+camera+drone&type=classification.opinion");
    assert!(results.contains("Classification of a camera drone"), "{results}");
    assert!(!results.contains("Classification of camera drones (revised)"), "the filter applies");
    assert!(results.contains("value=\"a camera drone\""), "the search box keeps the query");
    let link = first_doc_link(&results).expect("a result links to its document");
    assert_eq!(link, format!("/?doc={}", s.opinion_old));

    // Following the result: the document page with its verified mark and supersession chain.
    let doc = dom(&srv, &link);
    assert!(doc.contains("class=\"verified ok\""), "{doc}");
    assert!(doc.contains("Verified"));
    assert!(doc.contains("WCO"));
    assert!(doc.contains("2022-01-01 → open"), "validity is shown");
    assert!(doc.contains("Classification of camera drones (revised)"), "the successor in the chain");
    assert!(doc.contains(&format!("/?doc={}", s.opinion_new)));
    assert!(doc.contains("HSC/68/1"), "the content is shown");

    // The HS tracker: 8806 is new in HS2022 and comes from HS2017 8802.
    let hs = dom(&srv, "/?view=hs&hs=HS2022/8806");
    assert!(hs.contains("Unmanned aircraft"), "{hs}");
    assert!(hs.contains("880211"), "correlation to HS2017 8802.11");
    assert!(hs.contains("Classification of a camera drone"), "guidance citing it");
    let changes = dom(&srv, "/?view=hs&chapter=88&from=HS2017&to=HS2022");
    assert!(changes.contains("Changes in 88 from HS2017 to HS2022"), "{changes}");
    assert!(changes.contains("8803"));

    // The network view: feeds and their state.
    let net = dom(&srv, "/?view=network");
    assert!(net.contains("Feeds") && net.contains("US") && net.contains("up to date"), "{net}");
    assert!(net.contains("No fork recorded."));
}

#[test]
fn a_secretariat_sees_who_transposed_and_menus_offer_only_held_editions() {
    if !chromium_available() {
        return;
    }
    let s = seed(&HsData::excerpt());
    let (wco, us) = (key(WCO_KEY), key(US_KEY));
    let srv = TestServer::start(
        &NodeOptions { org: Some("FR"), trust: &[("WCO", &wco), ("US", &us)], read_requires_token: false },
        s.envelopes.clone(),
    );
    let empty = dom(&srv, "/?view=transposition&from=HS2017&to=HS2022");
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
    let page = dom(&srv, "/?view=transposition&from=HS2017&to=HS2022");
    assert!(page.contains("HS2017 → HS2022: 1 member(s) transposed"), "{page}");
    assert!(page.contains("national tariff") && page.contains("published 1"), "{page}");
    assert!(page.contains("<svg") && page.contains("split: 1"), "the relationships are drawn: {page}");
    assert!(
        page.contains("What HS2017 → HS2022 changed, by chapter") && page.contains("chapter 88 "),
        "the impact chart: {page}"
    );
    // Edition menus: the node holds HS2017 and HS2022 only.
    let hs = dom(&srv, "/?view=hs&hs=HS2022/8806");
    assert!(hs.contains("<option value=\"HS2017\"") && !hs.contains("<option value=\"HS2012\""), "{hs}");
}
