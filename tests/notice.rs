//! Sealed enforcement notices with a real store: the publisher's node signs a body that only
//! commits to the payload, keeps the payload beside it and serves it to holders of the API
//! token; a replica holds and verifies the envelope without the payload, lists the notice as
//! missing its payload, refuses a tampered payload and stops listing the notice once the right
//! one is stored.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/seed.rs"]
mod seed;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use common::{bin, key, keyring, net, opinion, org};
use entrepot::bench::sign_feed;
use entrepot::document::{decode, DocumentId, Seq};
use entrepot::hsdata::{DraftDocument, HsData};
use entrepot::ingest::Ingestor;
use entrepot::notice::{check_payload, seal_body_with_nonce, sealed_ref};
use entrepot::service::ServiceError;
use entrepot::store::{IngestOutcome, Store};
use http::{NodeOptions, TestServer};
use seed::{seed, NOTICE_SUMMARY, US_KEY, WCO_KEY};

const SUMMARY: &str = "Drones bearing a protected trademark, shipped in parcels of fewer than three units.";
const INDICATOR: &str = "declared as toy parts from a free zone";

fn notice_body(handling: &str, audience: Value) -> Value {
    json!({
        "title": { "en": "Counterfeit camera drones" },
        "validity": { "from": "2026-01-01", "to": "2026-12-31" },
        "header": {
            "kind": "ipr_alert", "risk_area": "ipr",
            "hs": [{ "edition": "HS2022", "code": "8806.22" }],
            "region": "EU", "handling": handling
        },
        "audience": audience
    })
}

fn payload() -> Value {
    json!({ "summary": { "en": SUMMARY }, "indicators": [INDICATOR], "routes": ["CN-NL-FR"] })
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_sealed_notice_is_published_with_its_payload_apart_and_served_only_with_the_token() {
    let srv = TestServer::start(&NodeOptions { org: Some("FR"), trust: &[], read_requires_token: false }, vec![]);
    let service = srv.service.clone();

    let published = service
        .publish_notice(
            notice_body("customs_only", json!({ "scope": "all_customs" })).to_string().as_bytes(),
            &payload(),
        )
        .unwrap();
    let envelope = service.store.get(&published.id).unwrap().unwrap();
    assert!(
        !contains(&envelope, SUMMARY) && !contains(&envelope, INDICATOR),
        "the payload text is not in the envelope"
    );
    let doc = decode(&envelope).unwrap();
    let seal = sealed_ref(&doc).expect("the body commits to the payload");
    assert_eq!(published.sealed_payload, Some(seal));
    let stored = service.store.payload(&published.id).unwrap().expect("the publisher's node holds the payload");
    assert_eq!(check_payload(&doc, &stored), Ok(()));
    assert_eq!(seal.bytes as usize, stored.len());

    // Only with the token, even though this node's other reads are open.
    let path = format!("/v1/documents/{}/payload", published.id);
    assert_eq!(srv.get(&path).error(401), "unauthorized");
    let served = srv.get_auth(&path);
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(served.header("content-type"), Some("application/json"));
    assert_eq!(served.body, stored, "the exact bytes the notice commits to");
    let served = served.json();
    assert_eq!(served["summary"]["en"], SUMMARY);
    assert_eq!(served["indicators"], json!([INDICATOR]));
    assert_eq!(served["nonce"].as_str().map(str::len), Some(64));

    // The document view shows the commitment and that this node holds the payload.
    let view = srv.get(&format!("/v1/documents/{}", published.id)).json();
    assert_eq!(view["sealed_payload"]["sha256"], json!(hex::encode(seal.sha256)));
    assert_eq!(view["sealed_payload"]["bytes"], json!(seal.bytes));
    assert_eq!(view["sealed_payload"]["held"], json!(true));
    assert!(view["body"].get("payload").is_none(), "{view}");

    // Unknown document, and a document with nothing sealed.
    assert_eq!(srv.get_auth(&format!("/v1/documents/{}/payload", DocumentId([5; 32]))).error(404), "not_found");
    let plain = service.publish("classification.opinion", opinion(1, "8806.22").body.to_string().as_bytes()).unwrap();
    assert_eq!(srv.get_auth(&format!("/v1/documents/{}/payload", plain.id)).error(404), "not_sealed");
    assert!(srv.get(&format!("/v1/documents/{}", plain.id)).json().get("sealed_payload").is_none());
}

#[test]
fn the_api_seals_the_payload_of_a_posted_notice_when_asked_and_refuses_it_inline() {
    let srv = TestServer::start(&NodeOptions { org: Some("FR"), trust: &[], read_requires_token: false }, vec![]);
    let token = srv.token.clone();
    let mut body = notice_body("restricted", json!({ "scope": "group", "group": ["BE", "DE"] }));
    body["payload"] = payload();
    let body = body.to_string();

    // A non-public payload inline would reach every replica: refused, with the way to do it.
    let inline = srv.post("/v1/documents?type=enforcement.notice", body.as_bytes(), Some(&token));
    assert_eq!(inline.error(422), "payload_required");
    assert!(inline.text().contains("seal_payload"), "{}", inline.text());
    let wrong_type = srv.post("/v1/documents?type=classification.opinion&seal_payload=true", b"{}", Some(&token));
    assert_eq!(wrong_type.error(400), "bad_request");
    let bad_payload = r#"{"title":{"en":"x"},"payload":{"routes":["A"]}}"#;
    let r = srv.post("/v1/documents?type=enforcement.notice&seal_payload=true", bad_payload.as_bytes(), Some(&token));
    assert_eq!(r.error(422), "payload_invalid");
    assert_eq!(srv.service.store.document_count().unwrap(), 0, "nothing refused was stored");

    let r = srv.post("/v1/documents?type=enforcement.notice&seal_payload=true", body.as_bytes(), Some(&token));
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let id = DocumentId::from_hex(created["id"].as_str().unwrap()).unwrap();
    assert_eq!(created["sealed_payload"]["held"], json!(true));
    let envelope = srv.get(&format!("/v1/documents/{id}/raw")).body;
    assert!(!contains(&envelope, SUMMARY), "the payload text is not in the signed envelope");
    let served = srv.get_auth(&format!("/v1/documents/{id}/payload"));
    assert_eq!(served.status, 200);
    assert_eq!(served.json()["routes"], json!(["CN-NL-FR"]));
    assert_eq!(created["sealed_payload"]["bytes"], json!(served.body.len()));
}

#[test]
fn a_replica_holds_the_notice_without_its_payload_until_a_matching_one_is_stored() {
    let s = seed(&HsData::excerpt());
    assert!(s.envelopes.iter().all(|e| !contains(e, NOTICE_SUMMARY)), "no envelope carries the sealed payload");
    let (wco, us) = (key(WCO_KEY), key(US_KEY));
    let opts = NodeOptions { org: None, trust: &[("WCO", &wco), ("US", &us)], read_requires_token: false };
    let srv = TestServer::start(&opts, s.envelopes.clone());
    let service = srv.service.clone();

    // The notice verified and was stored like any document; its payload is missing.
    let missing = service.store.notices_missing_payload(None, 10).unwrap();
    assert_eq!(missing.notices.iter().map(|d| d.id).collect::<Vec<_>>(), vec![s.notice]);
    assert_eq!(missing.next, None);
    let path = format!("/v1/documents/{}/payload", s.notice);
    assert_eq!(srv.get_auth(&path).error(404), "payload_not_held");
    assert_eq!(srv.get(&format!("/v1/documents/{}", s.notice)).json()["sealed_payload"]["held"], json!(false));

    // A tampered payload is refused and nothing is stored.
    let mut tampered = s.notice_payload.clone();
    let at = tampered.iter().position(|b| *b == b'e').unwrap();
    tampered[at] = b'E';
    let doc = decode(&service.store.get(&s.notice).unwrap().unwrap()).unwrap();
    assert_eq!(check_payload(&doc, &tampered).unwrap_err().code(), "payload_mismatch");
    match service.accept_payload(&s.notice, &tampered) {
        Err(ServiceError::Notice(e)) => assert_eq!(e.code(), "payload_mismatch"),
        other => panic!("a tampered payload was not refused: {other:?}"),
    }
    assert_eq!(service.store.payload(&s.notice).unwrap(), None);
    assert_eq!(service.store.notices_missing_payload(None, 10).unwrap().notices.len(), 1);
    match service.accept_payload(&DocumentId([5; 32]), &s.notice_payload) {
        Err(ServiceError::NotHeld(id)) => assert_eq!(id, DocumentId([5; 32])),
        other => panic!("a payload for an unknown notice was not refused: {other:?}"),
    }

    // The right one is stored, served, and the notice is no longer listed.
    service.accept_payload(&s.notice, &s.notice_payload).unwrap();
    assert_eq!(service.store.payload(&s.notice).unwrap().as_deref(), Some(&s.notice_payload[..]));
    assert!(service.store.notices_missing_payload(None, 10).unwrap().notices.is_empty());
    let served = srv.get_auth(&path);
    assert_eq!(served.status, 200);
    assert_eq!(served.json()["summary"]["en"], NOTICE_SUMMARY);
}

#[test]
fn the_walk_over_notices_missing_their_payload_is_bounded_and_resumes_after_its_cursor() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("db"), &net()).unwrap();
    let fr = key(3);
    let ring = keyring(&[("FR", &fr)]);
    // Five sealed notices, a public one (nothing sealed) and an opinion, in one feed.
    let mut drafts = Vec::new();
    let mut payloads = Vec::new();
    for i in 0..5u8 {
        let sealed = seal_body_with_nonce(
            notice_body("customs_only", json!({ "scope": "all_customs" })).to_string().as_bytes(),
            &json!({ "summary": { "en": format!("notice {i}") } }),
            &[i; 32],
        )
        .unwrap();
        drafts.push(DraftDocument {
            doc_type: "enforcement.notice",
            body: serde_json::from_slice(&sealed.body).unwrap(),
        });
        payloads.push(sealed.payload);
    }
    let mut public = notice_body("public", json!({ "scope": "all_customs" }));
    public["payload"] = payload();
    drafts.push(DraftDocument { doc_type: "enforcement.notice", body: public });
    drafts.push(opinion(1, "8806.22"));
    let envelopes = sign_feed(&drafts, &org("FR"), &fr, &net(), Seq::FIRST, DocumentId::ZERO);
    let ids: Vec<DocumentId> = envelopes.iter().map(|e| DocumentId::of_envelope(e)).collect();
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    assert!(ing.ingest(envelopes).unwrap().iter().all(|r| matches!(r, Ok(IngestOutcome::Stored))));
    store.put_payload(&ids[1], &payloads[1]).unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let page = store.notices_missing_payload(after.as_ref(), 2).unwrap();
        assert!(page.notices.len() <= 2);
        seen.extend(page.notices.iter().map(|d| d.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    seen.sort();
    let mut expected = vec![ids[0], ids[2], ids[3], ids[4]];
    expected.sort();
    assert_eq!(seen, expected, "every sealed notice without its payload, once; not the public one, not the opinion");
    // An `after` that is no held notice starts again from the start.
    assert_eq!(store.notices_missing_payload(Some(&DocumentId([9; 32])), 10).unwrap().notices.len(), 4);
}

fn entrepot(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin()).arg("--dir").arg(dir).args(args).output().unwrap()
}

#[test]
fn the_command_line_publishes_a_notice_with_its_payload_sealed_and_shows_it_to_its_node() {
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("fr");
    assert!(entrepot(&node, &["init", "--org", "FR", "--network", common::NETWORK]).status.success());
    let body = tmp.path().join("notice.json");
    let payload_file = tmp.path().join("payload.json");
    std::fs::write(&body, notice_body("customs_only", json!({ "scope": "region", "region": "EU" })).to_string())
        .unwrap();
    std::fs::write(&payload_file, payload().to_string()).unwrap();
    let args = ["publish", body.to_str().unwrap(), "--type", "enforcement.notice"];

    let o = entrepot(&node, &args);
    assert_eq!(o.status.code(), Some(1), "no payload for a customs_only notice");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--payload"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = entrepot(&node, &[&args[..], &["--payload", payload_file.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("FR#1 sealed payload"), "{out}");
    let id = out.split_whitespace().next().unwrap();

    let o = entrepot(&node, &["get", id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["sealed_payload"]["summary"]["en"], SUMMARY);
    assert!(shown["body"].get("payload").is_none() && shown["body"]["sealed_payload"]["bytes"].is_u64());
}
