//! Replication between real nodes: real libp2p (TCP, Noise, Yamux, gossipsub, the sync
//! protocol) over loopback, each node with its own store, in one test process.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use entrepot::config::{self, InitOptions, Node};
use entrepot::document::{DocumentId, OrgId};
use entrepot::node::{start, RunningNode};
use entrepot::service::Service;

const NETWORK: &str = "replication-test";

struct TestNode {
    dir: std::path::PathBuf,
    service: Arc<Service>,
    running: Option<RunningNode>,
}

impl TestNode {
    fn address(&self) -> String {
        self.service.peers.read().unwrap().listen_addresses.first().cloned().expect("listening")
    }

    fn heads(&self) -> Vec<(OrgId, u64, DocumentId)> {
        self.service.store.heads().unwrap().into_iter().map(|(o, h)| (o, h.seq.0, h.id)).collect()
    }

    fn documents(&self) -> Vec<Vec<u8>> {
        self.service.store.all_documents().map(|d| d.unwrap()).collect()
    }

    fn connected_to(&self, other: &TestNode) -> bool {
        let other_id = other.service.peers.read().unwrap().local_peer_id.clone();
        self.service.peers.read().unwrap().peers.iter().any(|p| p.peer_id == other_id)
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// Stops every node and waits for its tasks and ingest thread, so no store is still open (and
/// its directory still in use) when the test's runtime and temporary directory go: a node only
/// dropped leaves its ingest thread to close the store while the process exits, and RocksDB
/// aborts ("pthread lock: Invalid argument").
async fn stop_all(nodes: impl IntoIterator<Item = TestNode>) {
    for mut n in nodes {
        n.stop().await;
    }
}

/// Creates node directories: `orgs` publish, `replicas` only replicate; everyone trusts every
/// publishing organization.
fn init_dirs(tmp: &std::path::Path, orgs: &[&str], replicas: &[&str]) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    let mut keys = Vec::new();
    for name in orgs.iter().chain(replicas) {
        let dir = tmp.join(name);
        let organization = orgs.contains(name).then(|| (OrgId::new(name).unwrap(), format!("{name} administration")));
        let node = config::init(
            &dir,
            &InitOptions { network: NETWORK, organization, p2p_listen: "/ip4/127.0.0.1/tcp/0", ..Default::default() },
        )
        .unwrap();
        if let Some(p) = &node.publisher {
            keys.push((p.org.clone(), hex::encode(p.public_key())));
        }
        dirs.push(dir);
    }
    for dir in &dirs {
        let mut node = config::open(dir).unwrap();
        for (org, key) in &keys {
            node.add_organization(entrepot::authority::Organization {
                id: org.clone(),
                name: org.to_string(),
                keys: vec![key.clone()],
                types: None,
            })
            .unwrap();
        }
    }
    dirs
}

/// Opens and starts the node in `dir`, dialing `bootstrap`.
async fn launch(dir: &std::path::Path, bootstrap: &[String]) -> TestNode {
    let mut node: Node = config::open(dir).unwrap();
    node.config.p2p.bootstrap = bootstrap.to_vec();
    // A fixed topology, so "A and C only meet through B" is what the test checks.
    node.config.p2p.discovery = false;
    let config = node.config.clone();
    let service = Arc::new(Service::new(node));
    let running = start(service.clone(), dir, &config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while service.peers.read().unwrap().listen_addresses.is_empty() {
        assert!(Instant::now() < deadline, "node did not start listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    TestNode { dir: dir.to_owned(), service, running: Some(running) }
}

fn opinion_body(n: usize) -> Vec<u8> {
    common::opinion(n, "8806.22").body.to_string().into_bytes()
}

fn publish(node: &TestNode, count: usize, offset: usize) {
    for i in 0..count {
        node.service.publish("classification.opinion", &opinion_body(offset + i)).unwrap();
    }
}

/// Waits until every node holds the same heads and documents as the first, or fails.
async fn converge(nodes: &[&TestNode], expected_docs: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let counts: Vec<u64> = nodes.iter().map(|n| n.service.store.document_count().unwrap()).collect();
        if counts.iter().all(|c| *c as usize == expected_docs) {
            break;
        }
        assert!(Instant::now() < deadline, "no convergence within {within:?}: documents per node {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let heads = nodes[0].heads();
    let docs = nodes[0].documents();
    for n in &nodes[1..] {
        assert_eq!(n.heads(), heads, "heads of {}", n.dir.display());
        assert_eq!(n.documents(), docs, "documents of {}", n.dir.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_reach_a_node_through_another_and_a_returning_replica_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = init_dirs(tmp.path(), &["WCO"], &["B", "C"]);
    let a = launch(&dirs[0], &[]).await;
    let b = launch(&dirs[1], &[a.address()]).await;
    let mut c = launch(&dirs[2], &[b.address()]).await;

    // Publish on A: C receives it through B, and A and C never connect.
    publish(&a, 50, 0);
    converge(&[&a, &b, &c], 50, Duration::from_secs(30)).await;
    assert!(!a.connected_to(&c) && !c.connected_to(&a), "A and C must only meet through B");

    // C goes offline while 1,000 documents are published; back online, it catches up.
    c.stop().await;
    drop(c);
    publish(&a, 1000, 50);
    converge(&[&a, &b], 1050, Duration::from_secs(60)).await;
    let c = launch(&dirs[2], &[b.address()]).await;
    converge(&[&a, &b, &c], 1050, Duration::from_secs(60)).await;
    stop_all([a, b, c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_replica_bootstraps_from_a_replica_while_the_publisher_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = init_dirs(tmp.path(), &["WCO"], &["B", "D"]);
    let mut a = launch(&dirs[0], &[]).await;
    let b = launch(&dirs[1], &[a.address()]).await;
    publish(&a, 300, 0);
    converge(&[&a, &b], 300, Duration::from_secs(30)).await;
    a.stop().await;
    let d = launch(&dirs[2], &[b.address()]).await;
    converge(&[&b, &d], 300, Duration::from_secs(30)).await;
    assert_eq!(d.heads(), a.heads());
    stop_all([a, b, d]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_publishers_at_once_converge_on_every_node() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = init_dirs(tmp.path(), &["WCO", "WTO"], &["R"]);
    let wco = launch(&dirs[0], &[]).await;
    let wto = launch(&dirs[1], &[wco.address()]).await;
    let r = launch(&dirs[2], &[wto.address()]).await;
    let (w1, w2) = (wco.service.clone(), wto.service.clone());
    let t1 = tokio::task::spawn_blocking(move || {
        for i in 0..200 {
            w1.publish("classification.opinion", &opinion_body(i)).unwrap();
        }
    });
    let t2 = tokio::task::spawn_blocking(move || {
        for i in 0..200 {
            w2.publish("classification.opinion", &opinion_body(1000 + i)).unwrap();
        }
    });
    t1.await.unwrap();
    t2.await.unwrap();
    converge(&[&wco, &wto, &r], 400, Duration::from_secs(30)).await;
    assert_eq!(r.heads().len(), 2);
    stop_all([wco, wto, r]).await;
}
