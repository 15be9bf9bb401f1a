//! Replication between separate `entrepot run` processes on loopback: documents published
//! through one node's HTTP API reach a node that only knows a third, a replica that was
//! stopped (SIGTERM) while 1,000 documents were published catches up when it returns, and a
//! node finds its bootstrap peer again when that peer starts late or restarts. And whole
//! networks of real nodes in one process, on simulated continents (the harness of
//! `src/harness/`, one network at a time): a hundred nodes through a burst, a crash wave and a
//! partition, thirty replicas bootstrapping at once, and a charter version adding members
//! while they publish.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/procs.rs"]
mod procs;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use entrepot::authority::Organization;
use entrepot::config::{self, InitOptions};
use entrepot::document::OrgId;
use serde_json::Value;

const NETWORK: &str = "network-test";

/// A running `entrepot run` process.
struct NodeProc {
    child: Child,
    http: SocketAddr,
    p2p: String,
    peer_id: String,
}

impl NodeProc {
    /// Starts `entrepot run` in `dir` after writing `bootstrap` into its config.
    fn start(dir: &Path, bootstrap: &[String]) -> NodeProc {
        let config = dir.join("config.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let list = bootstrap.iter().map(|b| format!("\"{b}\"")).collect::<Vec<_>>().join(", ");
        let text = text
            .lines()
            .map(|l| {
                if l.starts_with("bootstrap = ") {
                    format!("bootstrap = [{list}]")
                } else if l.starts_with("discovery = ") {
                    // A fixed topology: A and C may only meet through B.
                    "discovery = false".to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&config, text + "\n").unwrap();
        let mut child = Command::new(common::bin())
            .arg("--dir")
            .arg(dir)
            .arg("run")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut http, mut p2p, mut peer_id) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.is_none() {
            let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("node starts");
            if let Some(rest) = line.strip_prefix("serving http://") {
                http = Some(rest.split('/').next().unwrap().parse().unwrap());
            } else if let Some(rest) = line.strip_prefix("p2p ") {
                p2p.get_or_insert(rest.to_owned());
            } else if let Some(rest) = line.strip_prefix("peer ") {
                peer_id = Some(rest.to_owned());
            }
        }
        NodeProc { child, http: http.unwrap(), p2p: p2p.expect("p2p address"), peer_id: peer_id.expect("peer id") }
    }

    fn get(&self, path: &str) -> Value {
        let r = http::request(self.http, "GET", path, &[], b"");
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    fn head(&self, org: &str) -> u64 {
        let feeds = self.get("/v1/feeds");
        feeds["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["publisher"] == org)
            .map_or(0, |f| f["seq"].as_u64().unwrap())
    }

    fn connected_to(&self, other: &NodeProc) -> bool {
        self.get("/v1/peers")["peers"].as_array().unwrap().iter().any(|p| p["peer_id"] == other.peer_id.as_str())
    }

    /// SIGTERM, and the node must exit cleanly within 15 s.
    fn stop(mut self) {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "node exited with {status} after SIGTERM");
                return;
            }
            assert!(Instant::now() < deadline, "node did not stop within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Node directories on loopback with OS-chosen ports; every node trusts the publishers.
fn init(root: &Path, publishers: &[&str], replicas: &[&str]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut keys = Vec::new();
    for name in publishers.iter().chain(replicas) {
        let dir = root.join(name);
        let organization = publishers.contains(name).then(|| (OrgId::new(name).unwrap(), name.to_string()));
        let options = InitOptions {
            network: NETWORK,
            organization,
            p2p_listen: "/ip4/127.0.0.1/tcp/0",
            http_listen: "127.0.0.1:0",
            ..Default::default()
        };
        let node = config::init(&dir, &options).unwrap();
        if let Some(p) = &node.publisher {
            keys.push((p.org.clone(), hex::encode(p.public_key())));
        }
        dirs.push(dir);
    }
    for dir in &dirs {
        let mut node = config::open(dir).unwrap();
        for (org, key) in &keys {
            let o = Organization { id: org.clone(), name: org.to_string(), keys: vec![key.clone()], types: None };
            node.add_organization(o).unwrap();
        }
    }
    dirs
}

fn publish(node: &NodeProc, dir: &Path, n: usize, offset: usize) {
    let token = std::fs::read_to_string(dir.join("keys/api.token")).unwrap();
    let auth = format!("Bearer {}", token.trim());
    for i in 0..n {
        let body = common::opinion(offset + i, "8806.22").body.to_string();
        let r = http::request(
            node.http,
            "POST",
            "/v1/documents?type=classification.opinion",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 201, "publish: {}", r.text());
    }
}

fn wait_for(nodes: &[&NodeProc], org: &str, seq: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let heads: Vec<u64> = nodes.iter().map(|n| n.head(org)).collect();
        if heads.iter().all(|h| *h == seq) {
            return;
        }
        assert!(Instant::now() < deadline, "{org} heads {heads:?}, expected {seq} everywhere within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn separate_processes_replicate_through_an_intermediary_and_a_returning_replica_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = init(tmp.path(), &["WCO"], &["B", "C"]);
    let a = NodeProc::start(&dirs[0], &[]);
    let b = NodeProc::start(&dirs[1], std::slice::from_ref(&a.p2p));
    let c = NodeProc::start(&dirs[2], std::slice::from_ref(&b.p2p));

    publish(&a, &dirs[0], 20, 0);
    wait_for(&[&a, &b, &c], "WCO", 20, Duration::from_secs(30));
    // Discovery is off in this test (a fixed topology), so C learns of A only through B.
    assert!(!a.connected_to(&c) && !c.connected_to(&a), "A and C only meet through B");

    c.stop();
    publish(&a, &dirs[0], 1000, 20);
    wait_for(&[&a, &b], "WCO", 1020, Duration::from_secs(60));
    let c = NodeProc::start(&dirs[2], std::slice::from_ref(&b.p2p));
    wait_for(&[&a, &b, &c], "WCO", 1020, Duration::from_secs(60));
    // Equal heads (seq and id) mean identical feeds: each entry names its predecessor's hash.
    let feeds: Vec<Value> = [&a, &b, &c].iter().map(|n| n.get("/v1/feeds")["feeds"].clone()).collect();
    assert_eq!(feeds[0], feeds[1]);
    assert_eq!(feeds[0], feeds[2]);

    // A running node is backed up through its API, into its own backups folder only.
    let token = std::fs::read_to_string(dirs[1].join("keys/api.token")).unwrap();
    let auth = format!("Bearer {}", token.trim());
    let backup = |out: &str| {
        let body = format!("{{\"out\": \"{out}\"}}");
        http::request(
            b.http,
            "POST",
            "/v1/admin/backup",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.as_bytes(),
        )
    };
    let r = backup("nightly");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"WCO\""), "the manifest lists the WCO feed: {}", r.text());
    assert!(dirs[1].join("backups/nightly/manifest.json").is_file());
    assert_eq!(backup("../../escape").status, 400);
    assert_eq!(backup("nightly").status, 400, "an existing backup is never overwritten");
    let unauthenticated =
        http::request(b.http, "POST", "/v1/admin/backup", &[("Content-Type", "application/json")], b"{\"out\": \"x\"}");
    assert_eq!(unauthenticated.status, 401);
    for n in [a, b, c] {
        n.stop();
    }
}

/// `[p2p] discovery = false` in a node's config: it talks only to its bootstrap peers.
fn fixed_topology(node: &procs::NodeDir) {
    let config = node.dir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| if l.starts_with("discovery = ") { "discovery = false".to_owned() } else { l.to_owned() })
        .collect();
    std::fs::write(&config, text.join("\n") + "\n").unwrap();
}

fn wco_head(node: &procs::NodeDir) -> u64 {
    procs::feeds(node.http)
        .and_then(|f| {
            f.as_array().and_then(|a| a.iter().find(|f| f["publisher"] == "WCO").and_then(|f| f["seq"].as_u64()))
        })
        .unwrap_or(0)
}

fn wait_head(node: &procs::NodeDir, seq: u64, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while wco_head(node) < seq {
        assert!(Instant::now() < deadline, "{what}: head {} < {seq} after {within:?}", wco_head(node));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_replica_finds_its_bootstrap_peer_when_it_starts_late_and_again_after_it_restarts() {
    use procs::{free_port, init_nodes, publish_one, set_bootstrap, Proc};
    let tmp = tempfile::tempdir().unwrap();
    let hosts: Vec<_> = (0..2).map(|_| ("127.0.0.1".to_string(), free_port(), free_port())).collect();
    let nodes = init_nodes(tmp.path(), NETWORK, &["WCO"], &["R"], &hosts);
    let (wco, replica) = (&nodes[0], &nodes[1]);
    fixed_topology(wco);
    fixed_topology(replica);
    set_bootstrap(replica, std::slice::from_ref(&wco.p2p));

    // The replica starts first: its first dial of WCO fails.
    let r = Proc::start(replica, &[]);
    std::thread::sleep(Duration::from_secs(3));
    let w = Proc::start(wco, &[]);
    for i in 0..5 {
        assert!(publish_one(wco, i).is_some());
    }
    wait_head(replica, 5, Duration::from_secs(20), "the replica reaches WCO once it is up");

    // WCO restarts on the same address: the replica connects again by itself.
    assert!(w.stop(), "WCO stops cleanly");
    std::thread::sleep(Duration::from_secs(2));
    let w = Proc::start(wco, &[]);
    for i in 5..10 {
        assert!(publish_one(wco, i).is_some());
    }
    wait_head(replica, 10, Duration::from_secs(30), "the replica reconnects to the restarted WCO");
    assert!(w.stop() && r.stop(), "both stop cleanly");
}

fn connected(node: &procs::NodeDir, other: &procs::NodeDir) -> bool {
    procs::try_request(node.http, "GET", "/v1/peers", None, b"", Duration::from_secs(5))
        .and_then(|(_, body)| serde_json::from_slice::<Value>(&body).ok())
        .is_some_and(|v| {
            v["peers"].as_array().is_some_and(|a| a.iter().any(|p| p["peer_id"] == other.peer_id.as_str()))
        })
}

#[test]
fn a_replica_whose_only_bootstrap_peer_is_gone_dials_a_peer_it_knew_within_seconds() {
    use procs::{free_port, init_nodes, publish_one, set_bootstrap, Proc};
    let tmp = tempfile::tempdir().unwrap();
    let hosts: Vec<_> = (0..3).map(|_| ("127.0.0.1".to_string(), free_port(), free_port())).collect();
    let nodes = init_nodes(tmp.path(), NETWORK, &["WCO"], &["B", "C"], &hosts);
    let (wco, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    set_bootstrap(b, std::slice::from_ref(&wco.p2p));
    set_bootstrap(c, std::slice::from_ref(&b.p2p));
    let w = Proc::start(wco, &[]);
    let pb = Proc::start(b, &[]);
    let pc = Proc::start(c, &[]);
    // C knows only B; Kademlia, through B, leads it to WCO, which it dials.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !connected(c, wco) {
        assert!(Instant::now() < deadline, "C did not meet WCO through discovery within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    // B leaves for good and WCO restarts on the same address: C has no peer left, and its
    // only bootstrap peer is gone. It dials WCO again by itself, long before Kademlia's
    // next refresh (120 s), which could not help anyway: its routing table is empty of peers.
    assert!(pb.stop(), "B stops cleanly");
    assert!(w.stop(), "WCO stops cleanly");
    std::thread::sleep(Duration::from_secs(2));
    let w = Proc::start(wco, &[]);
    for i in 0..5 {
        assert!(publish_one(wco, i).is_some());
    }
    let started = Instant::now();
    wait_head(c, 5, Duration::from_secs(30), "C dials WCO again and catches up");
    println!("C reconnected to WCO and caught up {:.1?} after WCO's restart", started.elapsed());
    assert!(connected(c, wco));
    assert!(w.stop() && pc.stop(), "both stop cleanly");
}

#[test]
fn with_discovery_off_a_node_meets_only_its_bootstrap_peers_and_those_that_dial_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = init(tmp.path(), &["WCO"], &["B", "C"]);
    // NodeProc sets `discovery = false`: A and C may only meet through B.
    let a = NodeProc::start(&dirs[0], &[]);
    let b = NodeProc::start(&dirs[1], std::slice::from_ref(&a.p2p));
    let c = NodeProc::start(&dirs[2], std::slice::from_ref(&b.p2p));
    publish(&a, &dirs[0], 5, 0);
    wait_for(&[&a, &b, &c], "WCO", 5, Duration::from_secs(30));
    // Long enough for identify and a Kademlia lookup through B (which took about a second).
    for _ in 0..10 {
        assert!(!a.connected_to(&c) && !c.connected_to(&a), "A and C met without discovery");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(b.connected_to(&a) && b.connected_to(&c));
    for n in [a, b, c] {
        n.stop();
    }
}

/// Runs one harness plan, bounded by `max` in all, and returns its faults.
fn harness_faults(
    config: entrepot::harness::HarnessConfig,
    plan: entrepot::harness::scenario::Plan,
    max: Duration,
) -> Vec<String> {
    // One harness at a time: each is a whole network on the machine's cores, and they would
    // otherwise share them with each other as well as with this binary's process tests.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let root = config.root.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // The timeout's timer needs the runtime: it is made inside it.
    let outcome =
        runtime.block_on(async { tokio::time::timeout(max, entrepot::harness::scenario::run(config, &plan)).await });
    runtime.shutdown_timeout(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&root);
    let report = outcome.unwrap_or_else(|_| panic!("the harness did not finish within {max:?}")).unwrap();
    for line in &report.lines {
        eprintln!("{line}");
    }
    report.faults
}

/// A hundred nodes of the real node code (node core, sync engine, ingest, gossipsub,
/// Kademlia, Noise, Yamux) in one process, on five simulated continents (20-300 ms round
/// trips, 0.1 % segment loss): five publishers publish, one publishes a burst of 20
/// documents, a tenth of the nodes crash while publishing goes on and come back,
/// and a region is cut off while every publisher publishes, then healed. Every node ends with
/// the same heads and documents, sampled stores verify again, and no peer was banned. Each
/// step waits at most 40 s for convergence; no figure is asserted.
#[test]
fn a_hundred_nodes_on_five_continents_converge_through_a_burst_a_crash_wave_and_a_partition() {
    use entrepot::harness::scenario::{Plan, Scenario};
    use entrepot::harness::{default_root, HarnessConfig, Profile};
    let config = HarnessConfig::new(100, 5, 12, Profile::Continents, default_root("ci-network"));
    let plan = Plan {
        scenario: Scenario::All,
        documents: 20,
        rounds: 1,
        round_interval: Duration::from_secs(1),
        idle: Duration::from_secs(1),
        settle: Duration::ZERO,
        warmup: Duration::ZERO,
        outage: Duration::from_secs(5),
        converge_max: Duration::from_secs(40),
        verify_nodes: 3,
    };
    let faults = harness_faults(config, plan, Duration::from_secs(180));
    assert!(faults.is_empty(), "{faults:#?}");
}

/// Thirty empty replicas start together, each knowing the publisher and two other replicas,
/// and fetch its 1,000 documents: every replica ends with the whole feed, verified, and no
/// peer was banned (how much the publisher served is a figure, printed, not asserted).
#[test]
fn thirty_replicas_bootstrapping_at_once_from_a_publisher_and_each_other_all_converge() {
    use entrepot::harness::scenario::{Plan, Scenario};
    use entrepot::harness::{default_root, HarnessConfig, Profile};
    let config = HarnessConfig::new(31, 1, 13, Profile::Continents, default_root("ci-bootstrap"));
    let plan = Plan {
        scenario: Scenario::Bootstrap,
        documents: 1_000,
        rounds: 0,
        round_interval: Duration::ZERO,
        idle: Duration::ZERO,
        settle: Duration::ZERO,
        warmup: Duration::ZERO,
        outage: Duration::ZERO,
        converge_max: Duration::from_secs(40),
        verify_nodes: 3,
    };
    let faults = harness_faults(config, plan, Duration::from_secs(45));
    assert!(faults.is_empty(), "{faults:#?}");
}

/// On a charter network of forty nodes (admission by certificate) on five continents, a
/// charter version adds five publishers as members: it is given to the first node and to the
/// new members' nodes, which start and publish at once while the genesis members publish too.
/// Their documents reach nodes that do not hold the version yet (refused there for authority,
/// with no penalty, until the version arrives). Every node ends on version 2 with every
/// document, sampled stores verify again under it, and no peer was banned.
#[test]
fn a_charter_version_adding_members_while_they_publish_reaches_every_node_with_their_documents() {
    use entrepot::harness::scenario::{Plan, Scenario};
    use entrepot::harness::{default_root, HarnessConfig, Profile};
    let mut config = HarnessConfig::new(40, 10, 14, Profile::Continents, default_root("ci-charter"));
    config.joining = 5;
    let plan = Plan {
        scenario: Scenario::Charter,
        documents: 0,
        rounds: 2,
        round_interval: Duration::from_secs(1),
        idle: Duration::ZERO,
        settle: Duration::ZERO,
        warmup: Duration::ZERO,
        outage: Duration::ZERO,
        converge_max: Duration::from_secs(40),
        verify_nodes: 3,
    };
    let faults = harness_faults(config, plan, Duration::from_secs(100));
    assert!(faults.is_empty(), "{faults:#?}");
}
