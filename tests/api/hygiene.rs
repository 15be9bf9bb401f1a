//! HTTP hygiene as a client meets it: every error is JSON, trickling bodies are cut, backup
//! names are plain, answers are compressed when asked, each client is rate limited, and an
//! event stream resumes on another replica from a feed cursor.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use entrepot::api::{RateLimit, BODY_READ_TIMEOUT};
use entrepot::service::Source;
use serde_json::Value;

use super::common::{feed, key, opinion};
use super::http::{request, NodeOptions, SseStream, TestServer};
use super::DRONE_OPINION;

const WCO: u8 = 71;
const US: u8 = 72;

fn publishing_node() -> TestServer {
    TestServer::start(&NodeOptions { org: Some("FR"), trust: &[], read_requires_token: false }, Vec::new())
}

#[test]
fn every_error_is_json_even_below_the_handlers() {
    let srv = publishing_node();
    let bearer = format!("Bearer {}", srv.token);
    let auth = [("Authorization", bearer.as_str()), ("Content-Type", "application/octet-stream")];
    let huge_charter = vec![0u8; entrepot::sync::wire::CHARTER_FILE_MAX_BYTES + 1];
    let r = request(srv.addr, "POST", "/v1/admin/charter", &auth, &huge_charter);
    assert_eq!(r.error(413), "body_too_large");
    let huge_backup = format!("{{\"out\": \"{}\"}}", "a".repeat(8192));
    let r = srv.post("/v1/admin/backup", huge_backup.as_bytes(), Some(&srv.token));
    assert_eq!(r.error(413), "body_too_large");
    // A method no route serves is refused as such, before access control.
    for (method, path) in [("TRACE", "/v1/documents"), ("TRACE", "/"), ("PATCH", "/v1/feeds"), ("CONNECT", "/v1/x")] {
        let r = request(srv.addr, method, path, &[], &[]);
        assert_eq!(r.error(405), "method_not_allowed", "{method} {path}");
        assert!(r.header("allow").is_some(), "{method} {path}: no Allow header");
    }
    // Wrong content for a JSON body is JSON too.
    let r = request(srv.addr, "POST", "/v1/admin/backup", &[("Authorization", &bearer)], b"{\"out\": \"x\"}");
    assert!(r.status >= 400 && r.status < 500, "{}", r.text());
    r.error(r.status);
    // The scheme is case-insensitive (RFC 7235): a lowercase `bearer` publishes.
    for scheme in ["bearer", "BEARER"] {
        let header = format!("{scheme} {}", srv.token);
        let headers = [("Authorization", header.as_str()), ("Content-Type", "application/json")];
        let r =
            request(srv.addr, "POST", "/v1/documents?type=classification.opinion", &headers, DRONE_OPINION.as_bytes());
        // The second publish of the same body answers the first document (an idempotent
        // publish, `existing: true`): either way the scheme was accepted.
        let existing = r.status == 200 && r.text().contains("\"existing\":true");
        assert!(r.status == 201 || existing, "{scheme}: {} {}", r.status, r.text());
    }
}

/// Sends a head announcing 1000 body bytes and one byte of body; returns what came back and
/// how long the connection was held.
fn trickle(srv: &TestServer, path: &str, auth: bool) -> (String, Duration) {
    let mut conn = std::net::TcpStream::connect(srv.addr).unwrap();
    conn.set_read_timeout(Some(BODY_READ_TIMEOUT * 4)).unwrap();
    let token = if auth { format!("Authorization: Bearer {}\r\n", srv.token) } else { String::new() };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{token}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    conn.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[test]
fn a_body_that_trickles_in_is_cut_after_a_bounded_time() {
    let srv = publishing_node();
    let (answer, held) = trickle(&srv, "/v1/documents?type=classification.opinion", true);
    assert!(held < BODY_READ_TIMEOUT + Duration::from_secs(5), "held for {held:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    // An answer that needs no body (no token) comes at once, and the connection still ends.
    let (answer, held) = trickle(&srv, "/v1/documents?type=classification.opinion", false);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(held < BODY_READ_TIMEOUT + Duration::from_secs(5), "held for {held:?}");
    assert_eq!(srv.get("/healthz").status, 200);
}

#[test]
fn backup_names_are_plain_folder_names() {
    let srv = publishing_node();
    let backups = srv.service.dir.join("backups");
    for bad in ["a\nb;rm -rf x", "a b", "$(id)", ".hidden", "a/../../b", "-rf"] {
        let body = serde_json::json!({ "out": bad }).to_string();
        let r = srv.post("/v1/admin/backup", body.as_bytes(), Some(&srv.token));
        assert_eq!(r.error(400), "bad_request", "{bad:?}");
    }
    let made: Vec<_> =
        std::fs::read_dir(&backups).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(made.is_empty(), "a refused name created {made:?}");
    let r = srv.post("/v1/admin/backup", br#"{"out": "2026-12-01_night"}"#, Some(&srv.token));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(backups.join("2026-12-01_night").is_dir());
}

#[test]
fn answers_are_gzip_compressed_when_the_client_accepts_it() {
    let drafts: Vec<_> = (0..200).map(|i| opinion(i, "8806.22")).collect();
    let wco = key(WCO);
    let opts = NodeOptions { org: None, trust: &[("WCO", &wco)], read_requires_token: false };
    let srv = TestServer::start(&opts, feed(&drafts, "WCO", &wco));
    let plain = srv.get("/v1/documents?limit=200");
    assert_eq!(plain.status, 200);
    assert!(plain.header("content-encoding").is_none());
    let gz = request(srv.addr, "GET", "/v1/documents?limit=200", &[("Accept-Encoding", "gzip")], &[]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"), "{:?}", gz.headers);
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..]).read_to_end(&mut unzipped).unwrap();
    let a: Value = serde_json::from_slice(&unzipped).unwrap();
    assert_eq!(a["documents"], plain.json()["documents"]);
    assert!(gz.body.len() * 3 < plain.body.len(), "{} compressed vs {} plain", gz.body.len(), plain.body.len());
}

#[test]
fn each_client_is_rate_limited_with_a_json_429_and_retry_after() {
    let opts = NodeOptions { org: None, trust: &[], read_requires_token: false };
    let srv = TestServer::start_limited(&opts, Vec::new(), RateLimit { per_second: 1, burst: 3 });
    for _ in 0..3 {
        assert_eq!(srv.get("/v1/feeds").status, 200);
    }
    let refused = srv.get("/v1/feeds");
    assert_eq!(refused.error(429), "rate_limited");
    let retry: u64 = refused.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    std::thread::sleep(Duration::from_secs(retry));
    assert_eq!(srv.get("/v1/feeds").status, 200);
    // The limit is for whoever reaches the port; the node's own systems, which hold its token,
    // are not limited (a secretariat publishes an edition's amendments in one go).
    let bearer = format!("Bearer {}", srv.token);
    for i in 0..20 {
        let r = request(srv.addr, "GET", "/v1/feeds", &[("Authorization", &bearer)], b"");
        assert_eq!(r.status, 200, "request {i} with the token");
    }
    // A wrong token is no way around the limit.
    let wrong = format!("Bearer {}", "0".repeat(64));
    let statuses: Vec<u16> =
        (0..5).map(|_| request(srv.addr, "GET", "/v1/feeds", &[("Authorization", &wrong)], b"").status).collect();
    assert!(statuses.contains(&429), "a wrong token is limited: {statuses:?}");
}

fn ingest(srv: &TestServer, envelopes: &[Vec<u8>]) {
    for r in srv.service.ingest(envelopes.to_vec(), Source::Sync).unwrap() {
        r.unwrap();
    }
}

fn event(stream: &mut SseStream) -> (String, String, u64) {
    let ev = stream.next_event();
    let data: Value = serde_json::from_str(&ev.data).unwrap();
    let d = &data["document"];
    (ev.id.unwrap(), d["publisher"].as_str().unwrap().to_owned(), d["seq"].as_u64().unwrap())
}

#[test]
fn a_stream_resumes_on_another_replica_from_a_feed_cursor() {
    let (wco, us) = (key(WCO), key(US));
    let wco_feed = feed(&(0..8).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(), "WCO", &wco);
    let us_feed = feed(&(100..104).map(|i| opinion(i, "8549.11")).collect::<Vec<_>>(), "US", &us);
    let opts = NodeOptions { org: None, trust: &[("WCO", &wco), ("US", &us)], read_requires_token: false };
    // Two replicas that received the same documents in different orders: their arrival
    // numbers differ, feed positions do not.
    let a = TestServer::start(&opts, [&wco_feed[..5], &us_feed[..3]].concat());
    let b = TestServer::start(&opts, [&us_feed[..3], &wco_feed[..5]].concat());
    assert_ne!(a.service.store.arrivals_after(0, 1).unwrap()[0].1, b.service.store.arrivals_after(0, 1).unwrap()[0].1);

    let mut on_a = SseStream::open(a.addr, "/v1/stream?ids=feed", &[]);
    assert_eq!(on_a.status, 200);
    ingest(&a, &wco_feed[5..6]);
    ingest(&b, &wco_feed[5..6]);
    let (cursor, publisher, seq) = event(&mut on_a);
    assert_eq!((publisher.as_str(), seq), ("WCO", 6));
    assert_eq!(cursor, "feeds:US=3,WCO=6");
    drop(on_a);

    // A goes away; B receives more; the client reconnects to B with the cursor from A.
    ingest(&b, &wco_feed[6..7]);
    ingest(&b, &us_feed[3..4]);
    let mut on_b = SseStream::open(b.addr, "/v1/stream", &[("Last-Event-ID", &cursor)]);
    assert_eq!(on_b.status, 200);
    let mut caught_up = [event(&mut on_b), event(&mut on_b)];
    caught_up.sort_by(|x, y| (&x.1, x.2).cmp(&(&y.1, y.2)));
    assert_eq!(
        caught_up.iter().map(|(_, p, s)| (p.as_str(), *s)).collect::<Vec<_>>(),
        vec![("US", 4), ("WCO", 7)],
        "exactly what A's client had not seen"
    );
    // Then live, with nothing repeated.
    ingest(&b, &wco_feed[7..8]);
    let (last_cursor, publisher, seq) = event(&mut on_b);
    assert_eq!((publisher.as_str(), seq), ("WCO", 8));
    assert_eq!(last_cursor, "feeds:US=4,WCO=8");

    // The same cursor in the query string works too, and a filtered stream names only its feed.
    let mut filtered = SseStream::open(b.addr, "/v1/stream?publisher=WCO&after=feeds:WCO=7", &[]);
    let (id, publisher, seq) = event(&mut filtered);
    assert_eq!((id.as_str(), publisher.as_str(), seq), ("feeds:WCO=8", "WCO", 8));
    let bad = request(b.addr, "GET", "/v1/stream", &[("Last-Event-ID", "feeds:wco=1")], &[]);
    assert_eq!(bad.error(400), "bad_request");
}
