//! The whole-network harness: N nodes of the real node code in one process, on an in-process
//! network with per-link latency, bandwidth, loss and partitions (`net/memnet.rs`).
//!
//! What is real: each node is a node directory opened by `config::open_with` (its own RocksDB
//! store, on tmpfs, in [`StoreBudget::small`]), a [`Service`], and `node::start_on`: the node
//! core, the sync engine, admission, ingest, and libp2p's gossipsub, Kademlia, identify, ping,
//! request-response, Noise and Yamux. What is simulated: only the bytes' path between two
//! swarms (`net/link.rs`), and a crash (the node's connections are reset, then it is shut
//! down; its store is reopened at restart as after a process crash). The seed fixes every
//! key, the regions, the bootstrap lists, which nodes crash and every link's losses; the
//! tasks' interleaving on the runtime is not seeded, so two runs agree on what converges,
//! not on each millisecond.
//!
//! `scenario.rs` holds the scenarios and their figures, `measure.rs` what is counted
//! (arrival times, memory, CPU); `entrepot bench network` and `tests/network.rs` drive them.

pub mod charter;
mod checks;
pub mod measure;
pub mod scenario;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::authority::{Keyring, Organization};
use crate::config;
use crate::document::{DocumentId, OrgId, Seq};
use crate::net::link::LinkParams;
use crate::net::memnet::{MemNet, Paths};
use crate::net::NetTransport;
use crate::node::RunningNode;
use crate::service::Service;
use crate::store::StoreBudget;

use self::charter::CharterSetup;
use self::measure::Tracker;

/// The network name every harness node uses.
pub const NETWORK: &str = "entrepot-harness";
/// The document type the harness publishes (a small classification opinion).
pub const DOC_TYPE: &str = "classification.opinion";
/// Most nodes one harness runs.
pub const NODES_MAX: usize = 2000;

/// Why the harness could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("setting up node {node}: {reason}")]
    Setup { node: usize, reason: String },
    #[error("node {node}: {reason}")]
    Node { node: usize, reason: String },
    #[error("{0}")]
    Config(String),
}

/// How far apart the nodes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// One data centre: 1 ms round trips.
    Lan,
    /// Five regions, 20 ms round trips inside one, up to 300 ms between two.
    Continents,
}

/// The five regions of [`Profile::Continents`].
pub const REGIONS: [&str; 5] = ["europe", "africa", "americas", "asia-pacific", "middle-east"];

/// Round trips between the regions, in milliseconds (symmetric).
const CONTINENT_RTT_MS: [[u64; 5]; 5] = [
    [20, 120, 100, 250, 80],
    [120, 40, 220, 300, 150],
    [100, 220, 30, 180, 200],
    [250, 300, 180, 50, 120],
    [80, 150, 200, 120, 30],
];

impl Profile {
    /// The one-way delay between two regions.
    pub fn latency(self, a: usize, b: usize) -> Duration {
        match self {
            Profile::Lan => Duration::from_micros(500),
            Profile::Continents => Duration::from_millis(CONTINENT_RTT_MS[a % 5][b % 5]) / 2,
        }
    }
}

/// What network to build.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    pub nodes: usize,
    /// Nodes 0..publishers publish, each for its own organization.
    pub publishers: usize,
    pub seed: u64,
    pub profile: Profile,
    /// Each link's bandwidth, one way; 0 is unlimited.
    pub bandwidth_bytes_per_s: u64,
    /// Each link's segment loss probability.
    pub loss: f64,
    /// Peers each node lists as bootstrap peers: earlier nodes, chosen at random.
    pub bootstrap_peers: usize,
    /// Every node lists node 0 first, then `bootstrap_peers - 1` others from all the
    /// nodes (a bootstrap where everyone knows the publisher and a few replicas).
    pub bootstrap_node0: bool,
    /// A charter network (admission by certificate) instead of a keyring.
    pub charter: bool,
    /// On a charter network, the last `joining` publishers are not in the genesis: they join
    /// by the next version ([`scenario::Scenario::Charter`]).
    pub joining: usize,
    /// Where the node directories go (a tmpfs keeps fsync cheap: `/dev/shm`).
    pub root: PathBuf,
}

impl HarnessConfig {
    /// A network of `nodes` nodes, `publishers` of them publishing, on `profile`, with the
    /// defaults for the rest: 100 Mbit/s links, 0.1 % loss, 3 bootstrap peers each.
    pub fn new(nodes: usize, publishers: usize, seed: u64, profile: Profile, root: PathBuf) -> HarnessConfig {
        HarnessConfig {
            nodes,
            publishers,
            seed,
            profile,
            bandwidth_bytes_per_s: 12_500_000,
            loss: 0.001,
            bootstrap_peers: 3,
            bootstrap_node0: false,
            charter: false,
            joining: 0,
            root,
        }
    }
}

/// One node of the harness.
pub struct SimNode {
    pub index: usize,
    pub dir: PathBuf,
    pub region: usize,
    /// Its organization when it publishes.
    pub org: Option<OrgId>,
    pub peer_id: libp2p::PeerId,
    running: Option<Running>,
}

struct Running {
    service: Arc<Service>,
    node: RunningNode,
    watcher: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the node and closes its store.
    async fn stop(self) {
        self.node.shutdown().await;
        self.watcher.abort();
        // The store closes when the last reference to the service goes: wait for the node's
        // blocking tasks to let go of theirs, a bounded while.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.service) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(self.service);
    }
}

impl SimNode {
    /// The node's service while it runs.
    pub fn service(&self) -> Option<&Arc<Service>> {
        self.running.as_ref().map(|r| &r.service)
    }
}

/// A running network of nodes.
pub struct Harness {
    pub config: HarnessConfig,
    pub net: MemNet,
    pub nodes: Vec<SimNode>,
    pub tracker: Arc<Tracker>,
    /// The head of every feed as its publisher stored it: what every node must end with.
    pub expected: BTreeMap<OrgId, (Seq, DocumentId)>,
    /// The charter and its root keys, on a charter network.
    pub charter: Option<CharterSetup>,
    /// The charter version every node must end with (0 on a keyring network).
    pub expected_charter: u32,
}

impl Harness {
    /// Writes every node directory (config, keys, the shared keyring); starts nothing.
    pub fn prepare(config: HarnessConfig) -> Result<Harness, HarnessError> {
        if config.nodes == 0 || config.nodes > NODES_MAX || config.publishers > config.nodes {
            return Err(HarnessError::Config(format!(
                "nodes must be 1-{NODES_MAX} and publishers at most nodes (got {} and {})",
                config.nodes, config.publishers
            )));
        }
        if config.charter && config.joining >= config.publishers.max(1) {
            return Err(HarnessError::Config(format!(
                "a charter network needs a publisher in its genesis: {} joining of {} publishers",
                config.joining, config.publishers
            )));
        }
        if !(0.0..1.0).contains(&config.loss) {
            return Err(HarnessError::Config(format!("loss must be in [0, 1), not {}", config.loss)));
        }
        let mut rng = StdRng::seed_from_u64(config.seed);
        let setup = |node: usize, e: &dyn std::fmt::Display| HarnessError::Setup { node, reason: e.to_string() };
        std::fs::create_dir_all(&config.root).map_err(|e| setup(0, &e))?;
        let mut keyring = Keyring::default();
        let mut nodes = Vec::with_capacity(config.nodes);
        let mut signing = Vec::new();
        for i in 0..config.nodes {
            let identity = SigningKey::from_bytes(&rng.gen());
            let keypair =
                libp2p::identity::Keypair::ed25519_from_bytes(identity.to_bytes()).map_err(|e| setup(i, &e))?;
            let org = (i < config.publishers).then(|| OrgId::new(&format!("P{i:04}")).expect("a valid org id"));
            if let Some(org) = &org {
                let key = SigningKey::from_bytes(&rng.gen());
                keyring
                    .insert(Organization {
                        id: org.clone(),
                        name: format!("publisher {i}"),
                        keys: vec![hex::encode(key.verifying_key().to_bytes())],
                        types: None,
                    })
                    .map_err(|e| setup(i, &e))?;
                signing.push(key);
            }
            nodes.push((identity, keypair.public().to_peer_id(), org));
        }
        keyring.save(&config.root.join("keyring.json")).map_err(|e| setup(0, &e))?;
        let charter = config.charter.then(|| {
            let publishers = nodes.iter().filter_map(|(_, _, org)| org.clone()).zip(signing.iter().cloned()).collect();
            CharterSetup::new(&mut rng, publishers, config.joining)
        });
        let mut out = Vec::with_capacity(config.nodes);
        for (i, (identity, peer_id, org)) in nodes.iter().enumerate() {
            let dir = config.root.join(format!("n{i:04}"));
            std::fs::create_dir_all(dir.join("keys")).map_err(|e| setup(i, &e))?;
            std::fs::write(dir.join("keys/node.key"), hex::encode(identity.to_bytes())).map_err(|e| setup(i, &e))?;
            let chosen: Vec<usize> = if config.bootstrap_node0 {
                let mut others: Vec<usize> = (1..config.nodes).filter(|j| *j != i).collect();
                others.shuffle(&mut rng);
                let first = (i != 0).then_some(0);
                first.into_iter().chain(others).take(config.bootstrap_peers).collect()
            } else {
                let mut earlier: Vec<usize> = (0..i).collect();
                earlier.shuffle(&mut rng);
                earlier.into_iter().take(config.bootstrap_peers).collect()
            };
            let bootstrap: Vec<String> =
                chosen.iter().map(|j| format!("\"{}/p2p/{}\"", listen_address(*j), nodes[*j].1)).collect();
            let publishing = match org {
                Some(org) => {
                    std::fs::write(dir.join("keys/signing.key"), hex::encode(signing[i].to_bytes()))
                        .map_err(|e| setup(i, &e))?;
                    format!("organization = \"{org}\"\nsigning_key = \"keys/signing.key\"\n")
                }
                None => String::new(),
            };
            let text = format!(
                "network = \"{NETWORK}\"\n{publishing}keyring = \"../keyring.json\"\ndata_dir = \"db\"\n\
                 [p2p]\nlisten = [\"{}\"]\nbootstrap = [{}]\nmdns = false\ndiscovery = true\n\
                 identity = \"keys/node.key\"\n",
                listen_address(i),
                bootstrap.join(", ")
            );
            std::fs::write(dir.join(config::CONFIG_FILE), text).map_err(|e| setup(i, &e))?;
            if let Some(c) = &charter {
                charter::pin_and_certify(&dir, c, i, peer_id).map_err(|e| setup(i, &e))?;
            }
            out.push(SimNode {
                index: i,
                dir,
                region: i % REGIONS.len(),
                org: org.clone(),
                peer_id: *peer_id,
                running: None,
            });
        }
        let regions: Vec<usize> = out.iter().map(|n| n.region).collect();
        let profile = config.profile;
        let (bandwidth, loss) = (config.bandwidth_bytes_per_s, config.loss);
        let paths: Paths = Arc::new(move |a, b| LinkParams {
            latency: profile.latency(regions[a], regions[b]),
            bandwidth_bytes_per_s: bandwidth,
            loss,
        });
        let net = MemNet::new(config.nodes, config.seed, paths);
        let orgs = out.iter().filter_map(|n| n.org.clone().map(|o| (o, n.index))).collect();
        Ok(Harness {
            tracker: Arc::new(Tracker::new(config.nodes, orgs)),
            config,
            net,
            nodes: out,
            expected: BTreeMap::new(),
            expected_charter: u32::from(charter.is_some()),
            charter,
        })
    }

    /// Starts node `i` (opening its store), with a watcher that records what it stores.
    pub async fn start(&mut self, i: usize) -> Result<(), HarnessError> {
        let fail = |e: &dyn std::fmt::Display| HarnessError::Node { node: i, reason: e.to_string() };
        assert!(self.nodes[i].running.is_none(), "node {i} is already running");
        let dir = self.nodes[i].dir.clone();
        let opened = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || config::open_with(&dir, &StoreBudget::small()))
                .await
                .map_err(|e| fail(&e))?
                .map_err(|e| fail(&e))?
        };
        let config = opened.config.clone();
        let service = Arc::new(Service::new(opened));
        let mut events = service.subscribe();
        let tracker = self.tracker.clone();
        let watcher = tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok(event) => tracker.stored(i, &event.publisher, event.id, Instant::now()),
                    Err(RecvError::Lagged(n)) => tracker.lagged(n),
                    Err(RecvError::Closed) => break,
                }
            }
        });
        let node = crate::node::start_on(NetTransport::Memory(self.net.transport(i)), service.clone(), &dir, &config)
            .await
            .map_err(|e| fail(&e))?;
        self.nodes[i].running = Some(Running { service, node, watcher });
        Ok(())
    }

    /// Starts every node that is not running, one after another.
    pub async fn start_all(&mut self) -> Result<(), HarnessError> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].running.is_none() {
                self.start(i).await?;
            }
        }
        Ok(())
    }

    /// Crashes node `i`: its connections are reset, then its tasks stopped and its store
    /// closed, with no goodbye to its peers.
    pub async fn crash(&mut self, i: usize) {
        self.net.cut_node(i);
        self.stop(i).await;
    }

    /// Stops node `i` and closes its store.
    pub async fn stop(&mut self, i: usize) {
        if let Some(r) = self.nodes[i].running.take() {
            r.stop().await;
        }
    }

    /// Stops every node, all at once: one after the other, the nodes still running kept
    /// both cores busy while each stopped (300 nodes took ~5 minutes to stop).
    pub async fn stop_all(&mut self) {
        let running: Vec<Running> = self.nodes.iter_mut().filter_map(|n| n.running.take()).collect();
        futures::future::join_all(running.into_iter().map(Running::stop)).await;
    }

    /// Gives node `i` a charter version: put in force at once on a running node (as
    /// `POST /v1/admin/charter` does), kept in its charter directory on a stopped one (as
    /// `entrepot charter install` does). Every node must then end on it.
    pub async fn give_charter(&mut self, i: usize, signed: &crate::charter::SignedCharter) -> Result<(), HarnessError> {
        let fail = |e: &dyn std::fmt::Display| HarnessError::Node { node: i, reason: e.to_string() };
        self.expected_charter = self.expected_charter.max(signed.charter.version);
        match self.nodes[i].service().cloned() {
            Some(service) => {
                let signed = signed.clone();
                tokio::task::spawn_blocking(move || service.apply_charters(vec![signed]))
                    .await
                    .map_err(|e| fail(&e))?
                    .map_err(|e| fail(&e))?;
            }
            None => {
                let path = self.nodes[i].dir.join("charter").join(config::charter_file_name(signed.charter.version));
                std::fs::write(&path, crate::charter::encode(signed)).map_err(|e| fail(&e))?;
            }
        }
        Ok(())
    }

    /// Whether node `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].running.is_some()
    }

    /// Publishes `count` documents from publisher node `i`, one after another (each stored
    /// durably and gossiped as the node's API would).
    pub async fn publish(&mut self, i: usize, count: usize) -> Result<(), HarnessError> {
        let fail = |e: &dyn std::fmt::Display| HarnessError::Node { node: i, reason: e.to_string() };
        let service = self.nodes[i].service().ok_or_else(|| fail(&"not running"))?.clone();
        let org = self.nodes[i].org.clone().ok_or_else(|| fail(&"not a publisher"))?;
        let nonce: u64 = StdRng::seed_from_u64(self.config.seed ^ i as u64).gen();
        let last = tokio::task::spawn_blocking(move || {
            let mut last = None;
            for _ in 0..count {
                let n = service
                    .store
                    .head(service.publisher.as_ref().map(|p| &p.org).expect("a publisher"))?
                    .map_or(1, |h| h.seq.0 + 1);
                let body = opinion_body(i, n, nonce);
                last = Some(service.publish(DOC_TYPE, &body).map_err(|e| e.to_string())?);
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(last)
        })
        .await
        .map_err(|e| fail(&e))?
        .map_err(|e| fail(&e))?;
        if let Some(p) = last {
            self.expected.insert(org, (p.seq, p.id));
        }
        Ok(())
    }

    /// Stores `count` signed documents in publisher node `i`'s feed directly (not gossiped):
    /// a publisher that already holds a history, for bootstrap scenarios. Returns the bytes
    /// of the envelopes.
    pub async fn prefill(&mut self, i: usize, count: usize) -> Result<u64, HarnessError> {
        let fail = |e: &dyn std::fmt::Display| HarnessError::Node { node: i, reason: e.to_string() };
        let service = self.nodes[i].service().ok_or_else(|| fail(&"not running"))?.clone();
        let org = self.nodes[i].org.clone().ok_or_else(|| fail(&"not a publisher"))?;
        let key = config::load_signing_key(&self.nodes[i].dir.join("keys/signing.key")).map_err(|e| fail(&e))?;
        let head = tokio::task::spawn_blocking(move || {
            let mut prev = service.store.head(&org)?.map(|h| (h.seq, h.id));
            let mut left = count;
            let mut bytes = 0u64;
            while left > 0 {
                let n = left.min(crate::ingest::INGEST_BATCH_MAX);
                let (first, prev_id) = prev.map_or((Seq::FIRST, DocumentId::ZERO), |(s, id)| (s.next(), id));
                let drafts: Vec<_> = (0..n)
                    .map(|k| crate::hsdata::DraftDocument {
                        doc_type: DOC_TYPE,
                        body: opinion_json(i, first.0 + k as u64, 0),
                    })
                    .collect();
                let envelopes = crate::bench::sign_feed(&drafts, &org, &key, &service.network_id, first, prev_id);
                bytes += envelopes.iter().map(|e| e.len() as u64).sum::<u64>();
                service.ingest(envelopes, crate::service::Source::Import)?;
                prev = service.store.head(&org)?.map(|h| (h.seq, h.id));
                left -= n;
            }
            Ok::<_, crate::store::StoreError>((prev.map(|p| (org, p)), bytes))
        })
        .await
        .map_err(|e| fail(&e))?
        .map_err(|e| fail(&e))?;
        let (head, bytes) = head;
        if let Some((org, head)) = head {
            self.expected.insert(org, head);
        }
        Ok(bytes)
    }

    /// Documents every node must hold.
    pub fn expected_documents(&self) -> u64 {
        self.expected.values().map(|(s, _)| s.0).sum()
    }

    /// Running nodes that do not hold every expected document yet (by arrival count, then
    /// by heads), or not the expected charter version.
    pub fn lagging(&self) -> Vec<usize> {
        let total = self.expected_documents();
        self.nodes
            .iter()
            .filter_map(|n| n.service().map(|s| (n.index, s)))
            .filter(|(_, s)| {
                s.store.last_arrival() < total
                    || !holds_heads(s, &self.expected)
                    || s.keyring().charter().map_or(0, |c| c.latest().charter.version) < self.expected_charter
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Waits until every running node holds every expected head, at most `max`: the time it
    /// took, or the nodes still lagging.
    pub async fn converge(&self, max: Duration) -> Result<Duration, Vec<usize>> {
        let t0 = Instant::now();
        loop {
            let lagging = self.lagging();
            if lagging.is_empty() {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() >= max {
                return Err(lagging);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sides of a partition that cuts region `region` off from the rest.
    pub fn isolate_region(&self, region: usize) {
        let sides: Vec<u32> = self.nodes.iter().map(|n| u32::from(n.region == region)).collect();
        self.net.set_sides(&sides);
    }

    /// Heals every partition.
    pub fn heal(&self) {
        self.net.set_sides(&vec![0; self.nodes.len()]);
    }

    /// Total bytes every node has sent.
    pub fn bytes_sent_total(&self) -> u64 {
        (0..self.nodes.len()).map(|i| self.net.bytes_sent(i)).sum()
    }

    /// Removes every node directory (the nodes must be stopped).
    pub fn remove_dirs(&self) {
        for n in &self.nodes {
            let _ = std::fs::remove_dir_all(&n.dir);
        }
        let _ = std::fs::remove_file(self.config.root.join("keyring.json"));
        let _ = std::fs::remove_dir(&self.config.root);
    }
}

/// Whether a node holds exactly the expected head of every feed.
pub(super) fn holds_heads(s: &Service, expected: &BTreeMap<OrgId, (Seq, DocumentId)>) -> bool {
    match s.store.heads() {
        Ok(heads) => {
            heads.len() == expected.len()
                && heads.iter().all(|(org, h)| expected.get(org).is_some_and(|(seq, id)| h.seq == *seq && h.id == *id))
        }
        Err(_) => false,
    }
}

/// Node `i`'s listen address.
pub fn listen_address(i: usize) -> String {
    format!("/memory/{}", i + 1)
}

/// A default place for node directories: a tmpfs when there is one.
pub fn default_root(tag: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    base.join(format!("entrepot-harness-{tag}-{}", std::process::id()))
}

/// The `n`th opinion of publisher `i` (about 700 bytes signed).
fn opinion_json(i: usize, n: u64, nonce: u64) -> serde_json::Value {
    json!({
        "title": { "en": format!("Opinion {n} of publisher {i}") },
        "reference": format!("HSC/{i}/{n}/{nonce}"),
        "product": { "description": { "en": "A product described well enough to classify it" } },
        "classification": { "edition": "HS2022", "code": "8549.11" },
        "gir": ["1", "6"],
        "reasons": { "en": "The terms of the heading and of the subheading." },
        "validity": { "from": "2022-01-01", "to": "2027-12-31" }
    })
}

fn opinion_body(i: usize, n: u64, nonce: u64) -> Vec<u8> {
    serde_json::to_vec(&opinion_json(i, n, nonce)).expect("JSON serializes")
}
