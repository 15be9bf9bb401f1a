//! The HTTP API end to end over loopback: a node seeded with real HS documents (the embedded
//! excerpt, and the full files when present), classification guidance with a supersession, a
//! withdrawn ruling and an enforcement notice; every endpoint, its auth, its bad input, the
//! resumable event stream, the HS tracker and the checked-in OpenAPI document.

#[path = "api/client.rs"]
mod client;
mod common;
#[path = "common/http.rs"]
mod http;
#[path = "api/hygiene.rs"]
mod hygiene;
#[path = "api/metrics.rs"]
mod metrics;
#[path = "api/reading.rs"]
mod reading;
#[path = "api/search.rs"]
mod search;
#[path = "common/seed.rs"]
mod seed;

use entrepot::bench::sign_feed;
use entrepot::document::{decode, DocumentId, OrgId, Seq};
use entrepot::hsdata::{shared_dir, HsData};
use entrepot::service::{BanInfo, PeerInfo, Source, EVENTS_CAPACITY};
use serde_json::{json, Value};

use common::{feed, key, opinion};
use http::{request, NodeOptions, SseStream, TestServer};
use seed::{seed, Seeded, US_KEY, WCO_KEY};

fn start_seeded(data: &HsData, read_requires_token: bool) -> (TestServer, Seeded) {
    let s = seed(data);
    let (wco, us) = (key(WCO_KEY), key(US_KEY));
    let opts = NodeOptions { org: Some("FR"), trust: &[("WCO", &wco), ("US", &us)], read_requires_token };
    (TestServer::start(&opts, s.envelopes.clone()), s)
}

fn ids(list: &Value) -> Vec<String> {
    list["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
}

const DRONE_OPINION: &str = r#"{
  "title": { "en": "Classification of a delivery drone" },
  "reference": "FR-2026-1",
  "product": { "description": { "en": "Unmanned aircraft, 5 kg, parcel hook" } },
  "classification": { "edition": "HS2022", "code": "8806.22" },
  "gir": ["1", "6"],
  "reasons": { "en": "Heading 8806." },
  "validity": { "from": "2026-01-01" }
}"#;

#[test]
fn documents_are_queried_read_verified_and_linked_both_ways() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);

    // Filters map to the store query.
    let opinions = srv.get("/v1/documents?type=classification.opinion").json();
    assert_eq!(ids(&opinions).len(), 2, "{opinions}");
    assert!(ids(&opinions).contains(&s.opinion_new.to_hex()));
    let us = srv.get("/v1/documents?publisher=US").json();
    assert_eq!(ids(&us).len(), 3);
    let drones = srv.get("/v1/documents?hs=8806.22&edition=HS2022&type=classification.opinion").json();
    assert_eq!(ids(&drones).len(), 2);
    let by_text = srv.get("/v1/documents?q=A%20CAMERA%20DRONE").json();
    assert_eq!(ids(&by_text), vec![s.opinion_old.to_hex()]);
    // In force: the old opinion until its supersession took effect (2023-01-01), not after.
    let in_2022 = ids(&srv.get("/v1/documents?hs=880622&type=classification.opinion&in_force=2022-06-01").json());
    assert!(in_2022.contains(&s.opinion_old.to_hex()));
    let in_2024 = ids(&srv.get("/v1/documents?hs=880622&type=classification.opinion&in_force=2024-06-01").json());
    assert!(!in_2024.contains(&s.opinion_old.to_hex()) && in_2024.contains(&s.opinion_new.to_hex()));
    // The ruling was withdrawn from 2024-06-01.
    assert!(ids(&srv.get("/v1/documents?publisher=US&in_force=2024-01-01").json()).contains(&s.ruling.to_hex()));
    assert!(!ids(&srv.get("/v1/documents?publisher=US&in_force=2024-07-01").json()).contains(&s.ruling.to_hex()));
    assert!(ids(&srv.get("/v1/documents?issued_since=2100-01-01").json()).is_empty());

    // Cursor pagination walks every WCO document once.
    let mut seen = std::collections::HashSet::new();
    let mut path = "/v1/documents?publisher=WCO&limit=7".to_owned();
    for _ in 0..100 {
        let page = srv.get(&path).json();
        for id in ids(&page) {
            assert!(seen.insert(id), "a document came twice");
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/documents?publisher=WCO&limit=7&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, s.wco_head.0);

    // One document: decoded, re-verified, references both ways, supersession chain.
    let old = srv.get(&format!("/v1/documents/{}", s.opinion_old)).json();
    assert_eq!(old["verification"]["valid"], true, "{old}");
    assert_eq!(old["verification"]["keyring"], "authorized");
    assert_eq!(old["summary"]["publisher"], "WCO");
    assert_eq!(old["body"]["reference"], "HSC/68/1");
    assert_eq!(old["header"]["seq"], json!(s.wco_head.0 - 2));
    let by: Vec<(&str, &str)> = old["referred_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["kind"].as_str().unwrap(), l["id"].as_str().unwrap()))
        .collect();
    assert!(by.contains(&("supersedes", &s.supersede_act.to_hex())), "{by:?}");
    assert!(by.contains(&("cites", &s.opinion_new.to_hex())), "{by:?}");
    let chain: Vec<(&str, &str)> = old["supersession"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["relation"].as_str().unwrap(), c["document"]["id"].as_str().unwrap()))
        .collect();
    assert_eq!(chain, vec![("this", &*s.opinion_old.to_hex()), ("successor", &*s.opinion_new.to_hex())]);
    let new = srv.get(&format!("/v1/documents/{}", s.opinion_new)).json();
    assert_eq!(new["references"][0]["kind"], "cites");
    assert_eq!(new["references"][0]["held"], true);
    assert_eq!(new["supersession"][0]["relation"], "predecessor");
    assert_eq!(new["supersession"][0]["via_act"], json!(s.supersede_act.to_hex()));
    assert_eq!(new["supersession"][1]["relation"], "this");
    let withdrawn = srv.get(&format!("/v1/documents/{}", s.ruling)).json();
    assert_eq!(withdrawn["in_force_today"], false);
    assert_eq!(withdrawn["referred_by"][0]["kind"], "withdraws");

    // Raw: the exact signed bytes, whose hash is the id.
    let raw = srv.get(&format!("/v1/documents/{}/raw", s.notice));
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/octet-stream"));
    assert_eq!(DocumentId::of_envelope(&raw.body), s.notice);
    assert!(s.envelopes.contains(&raw.body));
    assert_eq!(decode(&raw.body).unwrap().header.publisher.as_str(), "US");

    // Feeds, forks, health.
    let feeds = srv.get("/v1/feeds").json();
    let wco = feeds["feeds"].as_array().unwrap().iter().find(|f| f["publisher"] == "WCO").unwrap().clone();
    assert_eq!(wco["seq"], json!(s.wco_head.0));
    assert_eq!(wco["frozen"], false);
    assert_eq!(srv.get("/v1/forks").json()["forks"], json!([]));
    assert_eq!(srv.get("/healthz").json()["status"], "ok");
    assert_eq!(srv.get("/readyz").json()["feeds"], 2);
}

#[test]
fn publishing_needs_the_token_and_a_valid_body() {
    let (srv, _) = start_seeded(&HsData::excerpt(), false);
    let path = "/v1/documents?type=classification.opinion";
    let body = DRONE_OPINION.as_bytes();

    let no_token = srv.post(path, body, None);
    assert_eq!(no_token.error(401), "unauthorized");
    assert_eq!(no_token.header("www-authenticate"), Some("Bearer"));
    assert_eq!(srv.post(path, body, Some("not-the-token-but-long-enough-0000000000")).error(401), "unauthorized");
    let token = srv.token.clone();
    assert_eq!(srv.post(path, body, Some(&token[1..])).error(401), "unauthorized");

    let created = srv.post(path, body, Some(&token));
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json();
    assert_eq!(created["publisher"], "FR");
    assert_eq!(created["seq"], 1);
    let got = srv.get(&format!("/v1/documents/{}", created["id"].as_str().unwrap())).json();
    assert_eq!(got["verification"]["valid"], true);
    assert_eq!(got["body"]["reference"], "FR-2026-1");

    // Bad bodies: 422 with the validation message; nothing stored.
    let head_before = srv.get("/v1/feeds").json();
    let invalid = srv.post(path, DRONE_OPINION.replace("\"gir\": [\"1\", \"6\"],", "").as_bytes(), Some(&token));
    assert_eq!(invalid.error(422), "schema_invalid");
    assert!(invalid.json()["error"]["message"].as_str().unwrap().contains("gir"));
    assert_eq!(srv.post(path, b"{ not json", Some(&token)).error(422), "body_not_json");
    let bad_date = DRONE_OPINION.replace("2026-01-01", "2026-02-30");
    assert_eq!(srv.post(path, bad_date.as_bytes(), Some(&token)).error(422), "body_field_invalid");
    assert_eq!(srv.post("/v1/documents?type=hs.tariff", body, Some(&token)).error(400), "bad_request");
    assert_eq!(srv.post("/v1/documents", body, Some(&token)).error(400), "bad_request");
    let huge = vec![b' '; entrepot::api::BODY_MAX_BYTES + 1];
    assert_eq!(srv.post(path, &huge, Some(&token)).error(413), "body_too_large");
    assert_eq!(srv.get("/v1/feeds").json(), head_before);

    // A read replica cannot publish.
    let replica = TestServer::start(&NodeOptions { org: None, trust: &[], read_requires_token: false }, Vec::new());
    let token = replica.token.clone();
    assert_eq!(replica.post(path, body, Some(&token)).error(403), "read_replica");
}

#[test]
fn reads_need_the_token_when_configured() {
    let (srv, s) = start_seeded(&HsData::excerpt(), true);
    for path in ["/v1/documents", "/v1/feeds", "/v1/peers", "/v1/forks", "/v1/stream", "/v1/hs/HS2022/8806"] {
        assert_eq!(srv.get(path).error(401), "unauthorized", "{path}");
    }
    assert_eq!(srv.get_auth(&format!("/v1/documents/{}", s.notice)).status, 200);
    assert_eq!(srv.get("/v1/openapi.json").status, 200);
    assert_eq!(srv.get("/healthz").status, 200);
}

#[test]
fn malformed_requests_get_a_json_4xx() {
    let (srv, _) = start_seeded(&HsData::excerpt(), false);
    let cases: &[(&str, u16)] = &[
        ("/v1/documents/xyz", 400),
        (&format!("/v1/documents/{}", "zz".repeat(32)), 400),
        (&format!("/v1/documents/{}/raw", "g".repeat(64)), 400),
        (&format!("/v1/documents/{}", "ab".repeat(32)), 404),
        (&format!("/v1/documents/{}/raw", "ab".repeat(32)), 404),
        ("/v1/documents?in_force=yesterday", 400),
        ("/v1/documents?in_force=2022-02-30", 400),
        ("/v1/documents?issued_since=soon", 400),
        ("/v1/documents?cursor=00ff", 400),
        ("/v1/documents?cursor=not-hex", 400),
        ("/v1/documents?type=hs.tariff", 400),
        ("/v1/documents?type=Bad%20Type", 400),
        ("/v1/documents?publisher=wco", 400),
        ("/v1/documents?limit=0", 400),
        ("/v1/documents?limit=1001", 400),
        ("/v1/documents?limit=-1", 400),
        ("/v1/documents?limit=many", 400),
        ("/v1/documents?hs=85A", 400),
        ("/v1/documents?hs=85&edition=HS1850", 400),
        ("/v1/documents?edition=HS2022", 400),
        ("/v1/documents?publsher=WCO", 400),
        ("/v1/stream?type=hs.tariff", 400),
        ("/v1/hs/HS2022/88x6", 400),
        ("/v1/hs/2022AD/8806", 400),
        ("/v1/hs/changes?chapter=8&from=HS2017&to=HS2022", 400),
        ("/v1/hs/changes?chapter=88&from=HS2022&to=HS2017", 400),
        ("/v1/hs/changes?chapter=88", 400),
        ("/v1/nothing", 404),
        ("/nothing", 404),
    ];
    for (path, status) in cases {
        let r = srv.get(path);
        assert_eq!(r.status, *status, "{path}: {}", r.text());
        r.error(*status);
    }
    let long = format!("/v1/documents?q={}", "a".repeat(entrepot::api::QUERY_STRING_MAX_BYTES));
    assert_eq!(srv.get(&long).error(414), "query_too_long");
    let long_text = format!("/v1/documents?q={}", "a".repeat(201));
    assert_eq!(srv.get(&long_text).error(400), "bad_request");
    for (method, path) in [("DELETE", "/v1/documents"), ("PUT", "/v1/feeds"), ("POST", "/healthz")] {
        let r = request(srv.addr, method, path, &[("Authorization", &format!("Bearer {}", srv.token))], &[]);
        assert!(r.status == 405, "{method} {path}: {}", r.text());
        assert_eq!(r.error(405), "method_not_allowed");
    }
    let bad_resume = request(srv.addr, "GET", "/v1/stream", &[("Last-Event-ID", "yesterday")], &[]);
    assert_eq!(bad_resume.error(400), "bad_request");
}

#[test]
fn peers_lag_forks_and_metrics_reflect_the_service() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);
    // The network engine would write this; the API only reads it.
    {
        let mut view = srv.service.peers.write().unwrap();
        view.local_peer_id = "12D3KooWlocal".into();
        view.peers.push(PeerInfo {
            peer_id: "12D3KooWpeer".into(),
            address: "/ip4/127.0.0.1/tcp/4001".into(),
            organization: None,
            admitted: true,
            penalty_points: 0,
            heads: [(OrgId::new("WCO").unwrap(), Seq(s.wco_head.0 + 5)), (OrgId::new("JP").unwrap(), Seq(3))]
                .into_iter()
                .collect(),
        });
        view.banned.push(BanInfo {
            peer_id: "12D3KooWliar".into(),
            offense: "unserved_claim".into(),
            seconds_left: 540,
        });
        view.bans_total = 1;
        view.penalties.insert("unserved_claim".into(), 5);
    }
    let peers = srv.get("/v1/peers").json();
    assert_eq!(peers["peers"][0]["peer_id"], "12D3KooWpeer");
    assert_eq!(peers["peers"][0]["admitted"], true);
    assert_eq!(peers["banned"][0]["peer_id"], "12D3KooWliar");
    assert_eq!(peers["banned"][0]["offense"], "unserved_claim");
    let lag: Vec<(String, u64)> = peers["lag"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["publisher"].as_str().unwrap().to_owned(), l["lag"].as_u64().unwrap()))
        .collect();
    assert!(lag.contains(&("WCO".into(), 5)) && lag.contains(&("JP".into(), 3)) && lag.contains(&("US".into(), 0)));

    // A tampered document is refused and counted; a second WCO entry at position 1 is a fork.
    let mut tampered = s.envelopes[0].clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let fork = feed(&[opinion(999, "8806.22")], "WCO", &key(WCO_KEY)).remove(0);
    let results = srv.service.ingest(vec![tampered, fork], Source::Sync).unwrap();
    assert!(results[0].is_err() && results[1].is_ok());
    let forks = srv.get("/v1/forks").json();
    assert_eq!(forks["forks"][0]["publisher"], "WCO");
    assert_eq!(forks["forks"][0]["seq"], 1);
    let feeds = srv.get("/v1/feeds").json();
    assert!(feeds["feeds"].as_array().unwrap().iter().any(|f| f["publisher"] == "WCO" && f["frozen"] == true));

    let metrics = srv.get("/metrics");
    assert_eq!(metrics.status, 200);
    // No Accept header: the classic text format (OpenMetrics is for who asks, see metrics.rs).
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text();
    for line in [
        format!("entrepot_documents_stored_total {}", s.envelopes.len()),
        "entrepot_documents_refused_total{reason=\"bad_signature\"} 1".into(),
        "entrepot_forks_detected_total 1".into(),
        "entrepot_forks_recorded 1".into(),
        "entrepot_feed_lag{publisher=\"WCO\"} 5".into(),
        "entrepot_peers_connected 1".into(),
        "entrepot_peers_banned 1".into(),
        "entrepot_peer_bans_total 1".into(),
        "entrepot_peer_penalties_total{offense=\"unserved_claim\"} 5".into(),
        "entrepot_replication_running 0".into(),
        "entrepot_gossip_messages_total{direction=\"in\"} 0".into(),
        "entrepot_sync_bytes_total{direction=\"out\"} 0".into(),
        "entrepot_sync_bytes_sent_by_message_total{message=\"status_heads\",role=\"request\"} 0".into(),
        "entrepot_feeds 2".into(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing '{line}' in:\n{text}");
    }
    assert!(text.lines().any(|l| l.starts_with("entrepot_store_bytes ")));
}

#[test]
fn the_stream_sends_new_documents_and_resumes_after_last_event_id() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);
    // From the beginning (Last-Event-ID 0), filtered: only the two seeded opinions.
    let mut stream = SseStream::open(srv.addr, "/v1/stream?type=classification.opinion", &[("Last-Event-ID", "0")]);
    assert_eq!(stream.status, 200);
    let first = stream.next_event();
    assert_eq!(first.event.as_deref(), Some("document"));
    let first_data: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(first_data["document"]["id"], json!(s.opinion_old.to_hex()));
    assert_eq!(first.id.as_deref(), Some(&*first_data["arrival"].to_string()));
    let second: Value = serde_json::from_str(&stream.next_event().data).unwrap();
    assert_eq!(second["document"]["id"], json!(s.opinion_new.to_hex()));

    // Live: a publish reaches the open stream; a non-matching document does not.
    let token = srv.token.clone();
    let notice_like = srv.post("/v1/documents?type=classification.ruling", DRONE_OPINION.as_bytes(), Some(&token));
    assert_eq!(notice_like.status, 201, "{}", notice_like.text());
    let published = srv.post("/v1/documents?type=classification.opinion", DRONE_OPINION.as_bytes(), Some(&token));
    assert_eq!(published.status, 201);
    let live = stream.next_event();
    let live_data: Value = serde_json::from_str(&live.data).unwrap();
    assert_eq!(live_data["document"]["id"], published.json()["id"]);
    drop(stream);

    // Reconnect after the first event: the second and the live one come again, in order.
    let resume_from = first.id.unwrap();
    let mut again =
        SseStream::open(srv.addr, "/v1/stream?type=classification.opinion", &[("Last-Event-ID", &resume_from)]);
    let a: Value = serde_json::from_str(&again.next_event().data).unwrap();
    let b: Value = serde_json::from_str(&again.next_event().data).unwrap();
    assert_eq!(a["document"]["id"], json!(s.opinion_new.to_hex()));
    assert_eq!(b["document"]["id"], published.json()["id"]);

    // The HS filter: a stream of HS2017 8802 sees the HS data that touches it, not guidance.
    let mut hs_stream = SseStream::open(srv.addr, "/v1/stream?hs=8802&edition=HS2017", &[("Last-Event-ID", "0")]);
    let hs_event: Value = serde_json::from_str(&hs_stream.next_event().data).unwrap();
    assert!(hs_event["document"]["doc_type"].as_str().unwrap().starts_with("hs."), "{hs_event}");
    assert!(
        hs_event["document"]["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("HS2017:8802"))
            || hs_event["document"]["subject_count"].as_u64().unwrap() > 16
    );
    drop(hs_stream);

    // A burst larger than the event channel (the broadcast lags): the stream falls back to
    // the store and still delivers every document once, in arrival order.
    let mut burst_stream = SseStream::open(srv.addr, "/v1/stream?publisher=US&type=classification.opinion", &[]);
    let burst = EVENTS_CAPACITY + 200;
    let drafts: Vec<_> = (0..burst).map(|i| opinion(i, "8806.22")).collect();
    let signed = sign_feed(&drafts, &OrgId::new("US").unwrap(), &key(US_KEY), &common::net(), Seq(4), s.withdraw_act);
    for chunk in signed.chunks(entrepot::ingest::INGEST_BATCH_MAX) {
        for r in srv.service.ingest(chunk.to_vec(), Source::Sync).unwrap() {
            r.unwrap();
        }
    }
    let mut last = 0u64;
    assert_eq!(signed.len(), burst);
    for (i, envelope) in signed.iter().enumerate() {
        let ev = burst_stream.next_event();
        let arrival: u64 = ev.id.unwrap().parse().unwrap();
        assert!(arrival > last, "event {i}: arrival {arrival} after {last}");
        let data: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(data["document"]["id"], json!(DocumentId::of_envelope(envelope).to_hex()), "event {i}");
        last = arrival;
    }
}

#[test]
fn the_hs_tracker_follows_codes_across_editions_on_the_excerpt() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);
    check_drones(&srv);
    let t = srv.get("/v1/hs/HS2022/8806.22").json();
    let guidance: Vec<&str> = t["guidance"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert!(guidance.contains(&&*s.opinion_old.to_hex()) && guidance.contains(&&*s.opinion_new.to_hex()));
    let tobacco = srv.get("/v1/hs/HS2022/2404").json();
    assert_eq!(tobacco["notices"][0]["id"], json!(s.notice.to_hex()));
    assert_eq!(tobacco["guidance"][0]["id"], json!(s.ruling.to_hex()));
}

/// 8806 (unmanned aircraft) is new in HS2022 and maps back to HS2017 8802 (and 8525).
fn check_drones(srv: &TestServer) {
    let t = srv.get("/v1/hs/HS2022/8806").json();
    assert_eq!(t["description"], "Unmanned aircraft", "{t}");
    assert!(t["entries"].as_array().unwrap().iter().any(|e| e["code"] == "88"), "the chapter is shown above the code");
    assert!(t["entries"].as_array().unwrap().iter().any(|e| e["code"] == "880622"));
    let ops: Vec<(String, String)> = t["amendments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["operations"].as_array().unwrap().iter())
        .map(|o| (o["op"].as_str().unwrap().to_owned(), o["code"].as_str().unwrap().to_owned()))
        .collect();
    assert!(ops.contains(&("insert".into(), "8806".into())), "{ops:?}");
    let previous = t["previous"].as_array().unwrap();
    assert!(previous.iter().all(|r| r["other_edition"] == "HS2017"));
    assert!(
        previous.iter().any(|r| r["direct"] == true && r["other_code"].as_str().unwrap().starts_with("8802")),
        "{previous:?}"
    );
    assert!(t["next"].as_array().unwrap().is_empty());

    // Back from HS2017 8802: the HS2022 codes it went to, including 8806.
    let back = srv.get("/v1/hs/HS2017/8802").json();
    let next = back["next"].as_array().unwrap();
    assert!(
        next.iter().any(|r| r["other_edition"] == "HS2022" && r["other_code"].as_str().unwrap().starts_with("8806")),
        "{back}"
    );
    // n:n: HS2017 8525.80 (cameras) went into 8806.22 and into other HS2022 codes; those
    // other codes sharing it are listed as partners, not as direct rows.
    let one = srv.get("/v1/hs/HS2022/8806.22").json();
    let rows = one["previous"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["direct"] == true && r["code"] == "880622" && r["other_code"] == "852580"), "{one}");
    assert!(rows.iter().all(|r| r["direct"] == true && r["code"] == "880622"), "the code's own rows only: {one}");
    let partners = one["partners"].as_array().unwrap();
    assert!(
        partners.iter().any(|r| r["direct"] == false && r["other_code"] == "852580" && r["code"] != "880622"),
        "{one}"
    );

    let changes = srv.get("/v1/hs/changes?chapter=88&from=HS2017&to=HS2022").json();
    let ops: Vec<(String, String)> = changes["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["op"].as_str().unwrap().to_owned(), o["code"].as_str().unwrap().to_owned()))
        .collect();
    assert!(ops.contains(&("insert".into(), "8806".into())), "{ops:?}");
    assert!(ops.contains(&("delete".into(), "8803".into())), "{ops:?}");
    assert!(changes["counts"]["insert"].as_u64().unwrap() >= 2);
    assert!(!changes["documents"].as_array().unwrap().is_empty());
}

#[test]
fn the_hs_tracker_on_the_full_hs_files() {
    let Some(dir) = shared_dir() else {
        println!("skipped: ../shared/data/hs is absent (the excerpt test ran instead)");
        return;
    };
    let data = HsData::load(&dir).unwrap();
    let (srv, _) = start_seeded(&data, false);
    check_drones(&srv);
    // Chapter 85: HS2022 added heading 8549 (electrical and electronic waste).
    let changes = srv.get("/v1/hs/changes?chapter=85&from=HS2017&to=HS2022").json();
    assert!(
        changes["operations"].as_array().unwrap().iter().any(|o| o["op"] == "insert" && o["code"] == "8549"),
        "{changes}"
    );
    let ewaste = srv.get("/v1/hs/HS2022/8549").json();
    assert!(ewaste["description"].as_str().unwrap().to_lowercase().contains("waste"), "{ewaste}");
    assert!(!ewaste["previous"].as_array().unwrap().is_empty());
}

#[test]
fn openapi_file_is_current() {
    const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let fresh = entrepot::api::openapi_json();
    if std::env::var_os("ENTREPOT_UPDATE_OPENAPI").is_some() {
        std::fs::write(PATH, &fresh).unwrap();
    }
    let checked_in = std::fs::read_to_string(PATH).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "docs/openapi.json differs from the API: regenerate with ENTREPOT_UPDATE_OPENAPI=1 cargo test --release --test api"
    );
    let doc: Value = serde_json::from_str(&fresh).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/documents",
        "/v1/documents/{id}",
        "/v1/documents/{id}/raw",
        "/v1/stream",
        "/v1/hs/{edition}/{code}",
        "/v1/hs/changes",
        "/v1/feeds",
        "/v1/peers",
        "/v1/forks",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }
    // Served as well.
    let srv = TestServer::start(&NodeOptions { org: None, trust: &[], read_requires_token: false }, Vec::new());
    let served = srv.get("/v1/openapi.json");
    assert_eq!(served.status, 200);
    assert_eq!(served.text(), fresh);
}

#[test]
fn shutdown_ends_open_streams_instead_of_waiting_for_them() {
    let (srv, _) = start_seeded(&HsData::excerpt(), false);
    let stream = SseStream::open(srv.addr, "/v1/stream", &[]);
    assert_eq!(stream.status, 200);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(srv);
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(std::time::Duration::from_secs(15))
        .expect("the server stopped although an event stream was open");
    drop(stream);
}

#[test]
fn entrepot_serve_runs_until_sigterm() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("replica");
    let run =
        |args: &[&str]| std::process::Command::new(common::bin()).arg("--dir").arg(&dir).args(args).output().unwrap();
    assert!(run(&["init", "--replica", "--network", "serve-test"]).status.success());
    let mut child = std::process::Command::new(common::bin())
        .arg("--dir")
        .arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    assert_eq!(request(addr, "GET", "/healthz", &[], &[]).status, 200);
    assert_eq!(request(addr, "GET", "/v1/feeds", &[], &[]).json()["feeds"], json!([]));
    assert!(std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(15) {
            let _ = child.kill();
            panic!("entrepot serve did not stop on SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    use std::io::{Read, Write};
    let srv = TestServer::start(&NodeOptions { org: None, trust: &[], read_requires_token: false }, Vec::new());
    let mut slow = std::net::TcpStream::connect(srv.addr).unwrap();
    slow.set_read_timeout(Some(entrepot::api::HEADER_READ_TIMEOUT * 3)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    // The server gives up on the head (with or without a 408) and closes the connection.
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(waited < entrepot::api::HEADER_READ_TIMEOUT * 2, "held for {waited:?}");
    assert!(rest.is_empty() || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"), "{rest:?}");
    // Meanwhile the server kept serving others.
    assert_eq!(srv.get("/healthz").status, 200);
}

/// A WCO checkpoint note of the tree over `ids`' first `size` entries.
fn checkpoint_note(ids: &[DocumentId], size: u64, k: &ed25519_dalek::SigningKey) -> Vec<u8> {
    use entrepot::tlog::{checkpoint::Checkpoint, merkle, note::Note};
    let mut tree = merkle::MemoryTree::default();
    for id in ids {
        tree.push(&id.0);
    }
    let origin = entrepot::tlog::checkpoint::origin(&common::net(), &OrgId::new("WCO").unwrap());
    let cp = Checkpoint { origin, size, root: merkle::root(&tree, size).unwrap() };
    Note { text: cp.text(), signatures: vec![cp.sign(k)] }.encode().into_bytes()
}

#[test]
fn a_document_is_proven_in_its_feed_against_a_checkpoint_and_its_tree_is_served_as_c2sp_tiles() {
    use entrepot::tlog::merkle;
    let wco = key(1);
    let docs = feed(&(0..6).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(), "WCO", &wco);
    let ids: Vec<DocumentId> = docs.iter().map(|d| DocumentId::of_envelope(d)).collect();
    let srv = TestServer::start(&NodeOptions { org: None, trust: &[("WCO", &wco)], read_requires_token: false }, docs);
    // No checkpoint yet: nothing to prove against.
    assert_eq!(srv.get(&format!("/v1/documents/{}/proof", ids[2].to_hex())).error(404), "no_checkpoint");
    let taken = srv.service.take_checkpoint(&checkpoint_note(&ids, 6, &wco), &[], 0).unwrap();
    assert!(taken.stored && !taken.forked, "{taken:?}");
    // A checkpoint signed by another key is the peer's fault and stores nothing.
    let refused = srv.service.take_checkpoint(&checkpoint_note(&ids, 5, &key(9)), &[], 0).unwrap_err();
    assert!(refused.to_string().contains("no signature by a key"), "{refused}");

    let proof = srv.get(&format!("/v1/documents/{}/proof", ids[2].to_hex())).json();
    assert_eq!((proof["seq"].as_u64(), proof["tree_size"].as_u64()), (Some(3), Some(6)));
    let hash = |v: &Value| -> [u8; 32] { hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap() };
    let path: Vec<[u8; 32]> = proof["proof"].as_array().unwrap().iter().map(hash).collect();
    let root = hash(&proof["root"]);
    merkle::verify_inclusion(2, 6, &merkle::leaf_hash(&ids[2].0), &path, &root).unwrap();
    let note = proof["checkpoint"].as_str().unwrap();
    assert!(
        note.starts_with(&entrepot::tlog::checkpoint::origin(&common::net(), &OrgId::new("WCO").unwrap())),
        "{note}"
    );

    let c = srv.get("/v1/feeds/WCO/consistency?from=2&to=6").json();
    let path: Vec<[u8; 32]> = c["proof"].as_array().unwrap().iter().map(hash).collect();
    merkle::verify_consistency(2, 6, &path, &hash(&c["from_root"]), &hash(&c["to_root"])).unwrap();
    assert_eq!(srv.get("/v1/feeds/WCO/consistency?from=6&to=2").error(400), "bad_request");
    assert_eq!(srv.get("/v1/feeds/WCO/consistency?from=1&to=7").error(400), "bad_request");

    // tlog-tiles: the checkpoint, a partial level-0 tile of the six leaf hashes, and the
    // entry bundle of the six ids, immutable.
    let cp = srv.get("/v1/feeds/WCO/tlog/checkpoint");
    assert_eq!(cp.status, 200);
    assert!(cp.header("content-type").unwrap().starts_with("text/plain"));
    let tile = srv.get("/v1/feeds/WCO/tlog/tile/0/000.p/6");
    assert_eq!(tile.status, 200);
    assert!(tile.header("cache-control").unwrap().contains("immutable"));
    let want: Vec<u8> = ids.iter().flat_map(|id| merkle::leaf_hash(&id.0)).collect();
    assert_eq!(tile.body, want);
    let bundle = srv.get("/v1/feeds/WCO/tlog/tile/entries/000.p/6");
    let want: Vec<u8> = ids.iter().flat_map(|id| [&[0u8, 32][..], &id.0[..]].concat()).collect();
    assert_eq!(bundle.body, want);
    assert_eq!(srv.get("/v1/feeds/WCO/tlog/tile/0/000.p/7").status, 404, "not all of it held");
    assert_eq!(srv.get("/v1/feeds/WCO/tlog/tile/0/000").status, 404, "no full tile yet");
    assert_eq!(srv.get("/v1/feeds/WCO/tlog/tile/0/0000").error(400), "bad_request");

    // Off a charter network there are no certified witnesses: no receipts.
    let r = srv.get(&format!("/v1/documents/{}/receipts", ids[0].to_hex())).json();
    assert_eq!(r["organizations"], 0);
}

#[test]
fn a_checkpoint_of_another_history_is_recorded_as_a_checkpoint_fork_and_freezes_the_feed() {
    let wco = key(1);
    let docs = feed(&(0..6).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(), "WCO", &wco);
    let ids: Vec<DocumentId> = docs.iter().map(|d| DocumentId::of_envelope(d)).collect();
    let srv = TestServer::start(&NodeOptions { org: None, trust: &[("WCO", &wco)], read_requires_token: false }, docs);
    srv.service.take_checkpoint(&checkpoint_note(&ids, 6, &wco), &[], 0).unwrap();
    // WCO signs a tree head of size 4 whose fourth entry is not the one this node holds.
    let mut other = ids[..3].to_vec();
    other.push(DocumentId([7; 32]));
    let taken = srv.service.take_checkpoint(&checkpoint_note(&other, 4, &wco), &[], 0).unwrap();
    assert!(taken.forked, "{taken:?}");
    let forks = srv.get("/v1/checkpoint-forks").json();
    assert_eq!(forks["forks"].as_array().unwrap().len(), 1);
    assert_eq!((forks["forks"][0]["size_a"].as_u64(), forks["forks"][0]["size_b"].as_u64()), (Some(4), Some(6)));
    // The evidence convinces another node that holds nothing of the feed.
    use base64::Engine;
    let evidence =
        base64::engine::general_purpose::STANDARD.decode(forks["forks"][0]["evidence"].as_str().unwrap()).unwrap();
    let fresh =
        TestServer::start(&NodeOptions { org: None, trust: &[("WCO", &wco)], read_requires_token: false }, Vec::new());
    assert!(fresh.service.take_checkpoint_fork(&evidence).unwrap());
    assert_eq!(fresh.service.store.head(&OrgId::new("WCO").unwrap()).unwrap().unwrap().forked_at, Some(Seq(1)));
    // Altered evidence convinces nobody.
    let mut bad = evidence.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(fresh.service.take_checkpoint_fork(&bad).is_err());
    assert_eq!(srv.service.store.head(&OrgId::new("WCO").unwrap()).unwrap().unwrap().forked_at, Some(Seq(6)));
}
