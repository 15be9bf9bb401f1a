//! What secretariats and administrations do with the data (issue 14), end to end over the HTTP
//! API on a node seeded with real HS documents: integrity at publish (codes that exist in
//! their edition, real editions and dates, idempotent publishes, one document per natural
//! key), the tracker's completeness, transposition, search and analytics.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/seed.rs"]
mod seed;

use entrepot::hsdata::{amendment_documents, HsData};
use serde_json::{json, Value};

use common::key;
use http::{request, NodeOptions, TestServer};
use seed::{seed, Seeded, US_KEY, WCO_KEY};

fn start_seeded(data: &HsData) -> (TestServer, Seeded) {
    let s = seed(data);
    let (wco, us) = (key(WCO_KEY), key(US_KEY));
    let opts = NodeOptions { org: Some("FR"), trust: &[("WCO", &wco), ("US", &us)], read_requires_token: false };
    (TestServer::start(&opts, s.envelopes.clone()), s)
}

fn ruling(code: &str, edition: &str, from: &str) -> Value {
    json!({
        "title": { "en": format!("Advance ruling on {code}") },
        "reference": format!("FR-BTI-{code}-{edition}-{from}"),
        "product": { "description": { "en": "A product presented for a ruling" } },
        "classification": { "edition": edition, "code": code },
        "gir": ["1", "6"],
        "reasons": { "en": "The terms of the heading." },
        "validity": { "from": from }
    })
}

fn post_with(srv: &TestServer, path: &str, body: &[u8], extra: &[(&str, &str)]) -> http::Response {
    let auth = format!("Bearer {}", srv.token);
    let mut headers = vec![("Content-Type", "application/json"), ("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    request(srv.addr, "POST", path, &headers, body)
}

fn fr_head(srv: &TestServer) -> u64 {
    let feeds = srv.get("/v1/feeds").json();
    feeds["feeds"].as_array().unwrap().iter().find(|f| f["publisher"] == "FR").map_or(0, |f| f["seq"].as_u64().unwrap())
}

const RULING: &str = "/v1/documents?type=classification.ruling";

#[test]
fn publish_refuses_what_a_careful_secretariat_would_never_sign() {
    let (srv, _) = start_seeded(&HsData::excerpt());
    let feeds_before = srv.get("/v1/feeds").json();
    // Each of these was accepted, signed and queued for replication before (issue 14).
    let refused = [
        (ruling("8803.10", "HS2022", "2026-01-01"), "hs_code_unknown", "8803.10"),
        (ruling("0000.00", "HS2022", "2026-01-01"), "hs_code_unknown", "0000.00"),
        (ruling("8806.22", "HS2099", "2026-01-01"), "edition_unknown", "HS2099"),
        (ruling("8806.22", "HS2022", "0000-01-01"), "date_implausible", "0000-01-01"),
    ];
    for (body, code, named) in &refused {
        let r = post_with(&srv, RULING, body.to_string().as_bytes(), &[]);
        assert_eq!(r.error(422), *code, "{body}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(named), "the message names what is wrong: {message}");
    }
    assert_eq!(srv.get("/v1/feeds").json(), feeds_before, "nothing was stored");

    // The same code in HS2017, where 8803 still existed, is fine; and a code this node holds
    // no nomenclature chapter for is not second-guessed.
    let hs2017 = post_with(&srv, RULING, ruling("8803.10", "HS2017", "2021-01-01").to_string().as_bytes(), &[]);
    assert_eq!(hs2017.status, 201, "{}", hs2017.text());
    let elsewhere = post_with(&srv, RULING, ruling("8471.30", "HS2022", "2026-01-01").to_string().as_bytes(), &[]);
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.text());
    let good = post_with(&srv, RULING, ruling("8806.22", "HS2022", "2026-01-01").to_string().as_bytes(), &[]);
    assert_eq!(good.status, 201, "{}", good.text());
}

#[test]
fn publish_is_idempotent_by_body_and_by_idempotency_key() {
    let (srv, _) = start_seeded(&HsData::excerpt());
    let body = ruling("8806.22", "HS2022", "2026-01-01").to_string();
    let first = post_with(&srv, RULING, body.as_bytes(), &[]);
    assert_eq!(first.status, 201, "{}", first.text());
    let first = first.json();
    // The same body again (reformatted: the same JSON value) returns the existing document.
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    let again = post_with(&srv, RULING, pretty.as_bytes(), &[]);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["id"], first["id"]);
    assert_eq!(again.json()["existing"], true);
    assert_eq!(fr_head(&srv), 1, "one document signed");

    // An Idempotency-Key: a retry returns the document; the key with another body is refused.
    let other = ruling("8806.21", "HS2022", "2026-01-01").to_string();
    let keyed = post_with(&srv, RULING, other.as_bytes(), &[("Idempotency-Key", "tariff-run-42")]);
    assert_eq!(keyed.status, 201, "{}", keyed.text());
    let retry = post_with(&srv, RULING, other.as_bytes(), &[("Idempotency-Key", "tariff-run-42")]);
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json()["id"], keyed.json()["id"]);
    let reused = post_with(&srv, RULING, body.as_bytes(), &[("Idempotency-Key", "tariff-run-42")]);
    assert_eq!(reused.error(422), "idempotency_key_reused");
    let bad_key = post_with(&srv, RULING, body.as_bytes(), &[("Idempotency-Key", "")]);
    assert_eq!(bad_key.error(400), "bad_request");
}

#[test]
fn a_second_amendment_set_with_the_same_number_is_refused_unless_it_supersedes_the_first() {
    let (srv, _) = start_seeded(&HsData::excerpt());
    let path = "/v1/documents?type=hs.amendment";
    let set = amendment_documents(&HsData::excerpt())
        .into_iter()
        .find(|d| d.body["title"]["en"].as_str().unwrap().contains("8806"))
        .unwrap();
    let first = post_with(&srv, path, set.body.to_string().as_bytes(), &[]);
    assert_eq!(first.status, 201, "{}", first.text());
    let first_id = first.json()["id"].as_str().unwrap().to_owned();
    // Re-posting the body: the existing set, not a duplicate (the tracker would count it twice).
    let again = post_with(&srv, path, set.body.to_string().as_bytes(), &[]);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], json!(first_id));
    let changes = srv.get("/v1/hs/changes?chapter=88&from=HS2017&to=HS2022").json();
    let fr_sets = changes["documents"].as_array().unwrap().iter().filter(|d| d["publisher"] == "FR").count();
    assert_eq!(fr_sets, 1, "{changes}");

    // Another body with the same recommendation and set number: refused.
    let mut edited = set.body.clone();
    edited["rationale"] = json!({ "en": "A different rationale." });
    let dup = post_with(&srv, path, edited.to_string().as_bytes(), &[]);
    assert_eq!(dup.error(409), "natural_key_taken");
    assert!(dup.json()["error"]["message"].as_str().unwrap().contains(&first_id));
    // ...unless it supersedes the first.
    edited["references"] = json!([{ "kind": "supersedes", "id": first_id }]);
    let revised = post_with(&srv, path, edited.to_string().as_bytes(), &[]);
    assert_eq!(revised.status, 201, "{}", revised.text());
}

#[test]
fn the_tracker_pages_correlations_shows_old_texts_keeps_partners_apart_and_names_held_editions() {
    let (srv, _) = start_seeded(&HsData::excerpt());
    // HS2017 nomenclature is held: a code deleted in HS2022 keeps its old text.
    let old = srv.get("/v1/hs/HS2017/8803").json();
    assert!(old["description"].as_str().is_some_and(|d| !d.is_empty()), "{old}");
    // Correlation rows name the other code's text; partners are apart from the code's own rows.
    let drone = srv.get("/v1/hs/HS2022/8806.22").json();
    let own: Vec<&Value> = drone["previous"].as_array().unwrap().iter().collect();
    assert!(own.iter().all(|r| r["direct"] == true && r["code"] == "880622"), "{drone}");
    assert!(own.iter().any(|r| r["other_code"] == "880220" && r["other_description"].is_string()), "{drone}");
    let partners = drone["partners"].as_array().unwrap();
    assert!(!partners.is_empty() && partners.iter().all(|r| r["direct"] == false && r["code"] != "880622"), "{drone}");
    assert_eq!(drone["rows_total"].as_u64().unwrap() as usize, own.len() + drone["next"].as_array().unwrap().len());

    // Editions: only those held; another gets a clear answer.
    assert_eq!(srv.get("/v1/hs/editions").json()["editions"], json!(["HS2017", "HS2022"]));
    let none = srv.get("/v1/hs/HS2012/8806");
    assert_eq!(none.error(404), "edition_not_held");
    assert!(none.json()["error"]["message"].as_str().unwrap().contains("HS2017, HS2022"));
    assert_eq!(srv.get("/v1/hs/HS2022/88?rows_limit=0").error(400), "bad_request");
}

#[test]
fn every_hs2017_code_of_8549_21_is_reachable_page_by_page() {
    let Some(dir) = entrepot::hsdata::shared_dir() else {
        println!("skipped: ../shared/data/hs is absent (needs the full correlation table)");
        return;
    };
    let data = HsData::load(&dir).unwrap();
    let expected: std::collections::BTreeSet<String> =
        data.correlation.iter().filter(|r| r.hs2022 == "854921").map(|r| r.hs2017.clone()).collect();
    assert_eq!(expected.len(), 1019, "the UNSD table maps 8549.21 to 1,019 HS2017 codes");
    let (srv, _) = start_seeded(&data);
    let mut seen = std::collections::BTreeSet::new();
    let mut offset = Some(0u64);
    let mut pages = 0;
    while let Some(o) = offset {
        let t = srv.get(&format!("/v1/hs/HS2022/8549.21?rows_limit=400&rows_offset={o}")).json();
        assert_eq!(t["rows_total"], 1019, "{}", t["rows_total"]);
        for r in t["previous"].as_array().unwrap() {
            assert!(seen.insert(r["other_code"].as_str().unwrap().to_owned()), "a row came twice");
        }
        offset = t["next_rows_offset"].as_u64();
        pages += 1;
        assert!(pages <= 3);
    }
    assert_eq!(seen, expected);
}

/// A national tariff built from the HS2017 subheadings, each split in two national lines.
fn hs2017_tariff(data: &HsData) -> String {
    let mut csv = String::from("code,description\n");
    for e in data.hs2017.iter().filter(|e| e.level == 6 && !e.code.starts_with("99")) {
        let d: String = e.description.chars().take(24).filter(|c| *c != '"' && *c != ',').collect();
        csv.push_str(&format!("{}10,{d} (a)\n{}90,{d} (other)\n", e.code, e.code));
    }
    csv
}

/// The HS2017 subheadings the 2022 amendments affect, from the UN files themselves: those
/// deleted or re-worded, and those whose correlation is not the same code alone.
fn affected_2017(data: &HsData) -> std::collections::BTreeSet<String> {
    let mut out: std::collections::BTreeSet<String> = data
        .changes
        .iter()
        .filter(|c| c.code.len() == 6 && matches!(c.kind.as_str(), "deleted_subheading" | "descriptor_changed"))
        .map(|c| c.code.clone())
        .collect();
    out.extend(
        data.correlation.iter().filter(|r| r.relationship != "1:1" || r.hs2022 != r.hs2017).map(|r| r.hs2017.clone()),
    );
    out
}

fn transposition_flags_exactly_the_affected_subheadings(data: &HsData) {
    let (srv, _) = start_seeded(data);
    let tariff = hs2017_tariff(data);
    let r = post_with(
        &srv,
        "/v1/transposition/workbench?from=HS2017&to=HS2022",
        tariff.as_bytes(),
        &[("Content-Type", "text/csv")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let view = r.json();
    let lines = view["lines"].as_array().unwrap();
    assert_eq!(lines.len(), tariff.lines().count() - 1, "every line is classified");
    let affected = affected_2017(data);
    let mut wrong = Vec::new();
    for l in lines {
        let old = l["old"].as_str().unwrap();
        let flagged = l["relationship"] != "unchanged";
        if flagged != affected.contains(&old[..6]) {
            wrong.push(format!("{old} {} {}", l["relationship"], l["note"]));
        }
        if l["relationship"] == "deleted" {
            assert!(l["new"].as_array().unwrap().is_empty());
        } else {
            assert!(l["new"].as_array().unwrap().iter().all(|n| n.as_str().unwrap().ends_with(&old[6..])));
        }
    }
    assert!(wrong.is_empty(), "{} line(s) misjudged, e.g. {:?}", wrong.len(), &wrong[..wrong.len().min(10)]);
    let flagged = lines.iter().filter(|l| l["relationship"] != "unchanged").count();
    println!("{} lines, {flagged} flagged: {}", lines.len(), view["counts"]);
    assert!(
        view["counts"]["split"].as_u64().unwrap() > 0
            && view["counts"]["moved"].as_u64().unwrap() + view["counts"]["merged"].as_u64().unwrap() > 0
    );

    // A draft, reviewed, is published; the progress of HS2017→HS2022 names the member.
    let mut draft = view["drafts"][0].clone();
    assert_eq!(draft["status"], "draft");
    draft["status"] = json!("published");
    let published = post_with(&srv, "/v1/documents?type=hs.transposition", draft.to_string().as_bytes(), &[]);
    assert_eq!(published.status, 201, "{}", published.text());
    let progress = srv.get("/v1/transposition/progress?from=HS2017&to=HS2022").json();
    let members = progress["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{progress}");
    assert_eq!(members[0]["publisher"], "FR");
    assert_eq!(members[0]["chapters"], json!([draft["chapter"]]));
    assert_eq!(members[0]["status"]["published"], 1);
    // Analytics: the change by chapter beside the progress, and counts over time.
    let impact = srv.get("/v1/analytics/impact?from=HS2017&to=HS2022").json();
    let ch88 = impact["chapters"].as_array().unwrap().iter().find(|c| c["chapter"] == "88").unwrap();
    // HS2017 8803 (parts of aircraft) went into several codes of HS2022 8807: split.
    assert!(ch88["split"].as_u64().unwrap() > 0, "{ch88}");
    assert!(ch88["created"].as_u64().unwrap() > 0, "8806 and 8807 are new: {ch88}");
    assert_eq!(impact["transposition"]["members"][0]["publisher"], "FR");
    let counts = srv.get("/v1/analytics/counts").json();
    assert!(counts["documents"].as_u64().unwrap() > 0 && !counts["truncated"].as_bool().unwrap());
    assert!(
        counts["by_type"].as_object().unwrap().values().any(|t| t["hs.transposition"] == 1),
        "{}",
        counts["by_type"]
    );

    // The same chapter twice is refused: a new one must supersede it.
    draft["status"] = json!("certified");
    assert_eq!(
        post_with(&srv, "/v1/documents?type=hs.transposition", draft.to_string().as_bytes(), &[]).error(409),
        "natural_key_taken"
    );

    // Bad input: a clear error, nothing else.
    let bad = post_with(&srv, "/v1/transposition/workbench?from=HS2017&to=HS2022", b"code\n8806\n", &[]);
    assert_eq!(bad.error(422), "tariff_invalid");
    let none = post_with(&srv, "/v1/transposition/workbench?from=HS2012&to=HS2017", b"88021100\n", &[]);
    assert_eq!(none.error(404), "basis_not_held");
    assert_eq!(
        post_with(&srv, "/v1/transposition/workbench?from=HS2022&to=HS2017", b"88021100\n", &[]).error(400),
        "bad_request"
    );
}

#[test]
fn transposition_on_the_excerpt_flags_exactly_the_affected_subheadings() {
    transposition_flags_exactly_the_affected_subheadings(&HsData::excerpt());
}

#[test]
fn transposition_on_the_full_hs2017_to_hs2022_data_flags_exactly_the_affected_subheadings() {
    let Some(dir) = entrepot::hsdata::shared_dir() else {
        println!("skipped: ../shared/data/hs is absent (the excerpt test ran instead)");
        return;
    };
    transposition_flags_exactly_the_affected_subheadings(&HsData::load(&dir).unwrap());
}

#[test]
fn openapi_documents_the_new_routes() {
    const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let fresh = entrepot::api::openapi_json();
    // Regenerated from here too, so that one test binary suffices after an API change.
    if std::env::var_os("ENTREPOT_UPDATE_OPENAPI").is_some() {
        std::fs::write(PATH, &fresh).unwrap();
    }
    let doc: Value = serde_json::from_str(&fresh).unwrap();
    for path in [
        "/v1/hs/editions",
        "/v1/transposition/workbench",
        "/v1/transposition/progress",
        "/v1/analytics/counts",
        "/v1/analytics/impact",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }
    assert_eq!(std::fs::read_to_string(PATH).unwrap(), fresh, "docs/openapi.json is current");
}
