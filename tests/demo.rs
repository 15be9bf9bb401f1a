//! The README's main command: `entrepot demo` starts three nodes, publishes real HS data on two
//! of them, and the read replica ends up holding every document; its page answers; Ctrl-C stops
//! everything cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn the_demo_network_replicates_real_hs_data_to_the_replica_and_serves_its_page() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::bin())
        .args(["demo", "--port", "0", "--root"])
        .arg(tmp.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut replica = None;
    let mut published = None;
    let mut held = None;
    let mut payloads = None;
    while payloads.is_none() {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            let _ = child.kill();
            panic!("the demo did not report a complete replica in time");
        };
        if let Some(rest) = line.split("read replica").nth(1) {
            replica = rest.split("http://").nth(1).map(|a| a.trim_end_matches('/').to_owned());
        }
        if let Some(n) = line.strip_prefix("published ") {
            published = n.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
        }
        if let Some(n) = line.strip_prefix("the replica holds all ") {
            held = n.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
        }
        if line.contains("sealed payloads of") {
            payloads = Some(line.clone());
        }
        assert!(!line.contains("so far"), "the replica was incomplete: {line}");
    }
    // Germany's replica is in the audience of both sealed notices (region EU, and a group).
    let payloads = payloads.unwrap();
    assert!(payloads.contains("(DE) holds the sealed payloads of 2 of the 2 notices"), "{payloads}");
    assert_eq!(held, published, "the replica holds exactly what the two publishers published");
    let replica: std::net::SocketAddr = replica.expect("replica address").parse().unwrap();
    let page = common_http_get(replica, "/");
    assert!(page.contains("entrepot"), "the web page is served");
    let feeds = common_http_get(replica, "/v1/feeds");
    assert!(feeds.contains("\"WCO\"") && feeds.contains("\"FR\""), "{feeds}");
    let charter = common_http_get(replica, "/v1/charter");
    assert!(charter.contains("\"version\":1") && charter.contains("\"state\":\"valid\""), "{charter}");
    // The divergence search: France's camera-drone ruling (8525) against WCO's revised opinion
    // (8806), read on the replica that holds both.
    let divergences = common_http_get(replica, "/v1/divergences?chapter=88");
    assert!(
        divergences.contains("\"classification\":\"HS2022:880622\"")
            && divergences.contains("\"classification\":\"HS2022:852589\"")
            && divergences.contains("Quadcopter camera drone"),
        "{divergences}"
    );
    let found = common_http_get(replica, "/v1/search?q=drone+camera");
    assert!(found.contains("Camera drone of 0.9 kg (revised reasons)"), "{found}");

    Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    let stop = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "demo exited with {status}");
            break;
        }
        assert!(Instant::now() < stop, "demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn common_http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "GET {path}: {}", out.lines().next().unwrap_or(""));
    out
}
