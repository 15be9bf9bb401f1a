//! A charter network of real nodes (real libp2p over loopback, each node with its own store):
//! admission by node certificate, charter versions replicating, an organization leaving, and
//! adversarial peers — an uncertified node, a raw libp2p peer without a certificate, and a
//! certified insider serving documents the charter does not allow.

mod common;
#[path = "common/raw_peer.rs"]
mod raw_peer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use libp2p::PeerId;

use common::{key, opinion, org};
use entrepot::bench::sign_feed;
use entrepot::charter::{
    certify_node, encode, Charter, Member, MemberKey, Permission, PublicKey, Role, Root, SignedCharter,
};
use entrepot::config::{self, InitOptions};
use entrepot::document::{DocumentId, Seq, TypeName};
use entrepot::net;
use entrepot::node::{start, RunningNode};
use entrepot::service::Service;
use entrepot::sync::wire::{FeedHead, HeadsDigest, RefusalCode, Request, Response, Status};
use raw_peer::RawPeer;

const OPINION: &str = "classification.opinion";
const RULING: &str = "classification.ruling";
const NOTICE: &str = "enforcement.notice";
const FAR: &str = "2099-01-01T00:00:00Z";

fn pk(k: &SigningKey) -> PublicKey {
    PublicKey::new(k.verifying_key().to_bytes()).unwrap()
}

fn member(id: &str, role: Role, keys: Vec<MemberKey>, types: &[&str]) -> Member {
    Member {
        id: org(id),
        name: format!("{id} administration"),
        country: None,
        region: match id {
            "FR" => Some("EU".into()),
            "US" => Some("AM".into()),
            _ => None,
        },
        role,
        keys,
        permissions: types
            .iter()
            .map(|t| Permission { doc_type: TypeName::new(t).unwrap(), hs_chapters: None, regions: None })
            .collect(),
    }
}

fn grant(k: u8, from: u64, revoked: Option<u64>) -> MemberKey {
    MemberKey { key: pk(&key(k)), valid_from_seq: Seq(from), revoked_at_seq: revoked.map(Seq) }
}

/// Root keys 100–102, threshold 2. WCO publishes opinions and notices with key 1; FR (region
/// EU) and US (region AM) publish rulings (keys 3, 4); RILO signed with key 5 until position 3, with key 6 from there.
fn genesis(expires: &str) -> Charter {
    Charter {
        version: 1,
        previous: None,
        expires: expires.into(),
        root: Root { keys: [100, 101, 102].iter().map(|r| pk(&key(*r))).collect(), threshold: 2 },
        organizations: vec![
            member("WCO", Role::Secretariat, vec![grant(1, 1, None)], &[OPINION, NOTICE]),
            member("FR", Role::Customs, vec![grant(3, 1, None)], &[RULING]),
            member("US", Role::Customs, vec![grant(4, 1, None)], &[RULING]),
            member("RILO", Role::Rilo, vec![grant(5, 1, Some(3)), grant(6, 3, None)], &[OPINION]),
        ],
    }
}

fn sign(c: &Charter, roots: &[u8]) -> SignedCharter {
    let mut s = SignedCharter::unsigned(c.to_body()).unwrap();
    for r in roots {
        s.sign(&key(*r)).unwrap();
    }
    s
}

/// The next version of `prev`, edited by `edit`, signed by roots 100 and 101.
fn next_version(prev: &SignedCharter, edit: impl FnOnce(&mut Charter)) -> SignedCharter {
    let mut c = prev.charter.clone();
    c.version += 1;
    c.previous = Some(prev.hash());
    edit(&mut c);
    sign(&c, &[100, 101])
}

/// How a test node is set up.
struct Setup<'a> {
    name: &'a str,
    /// Publishing organization and its signing key label.
    publishes: Option<(&'a str, u8)>,
    /// Organization certifying the node, with the key label it signs with.
    certified_by: Option<(&'a str, u8)>,
}

/// WCO's publishing node, certified with WCO's key.
const WCO_NODE: Setup = Setup { name: "wco", publishes: Some(("WCO", 1)), certified_by: Some(("WCO", 1)) };
/// France's and the United States' read replicas, each certified by its organization.
const FR_NODE: Setup = Setup { name: "fr", publishes: None, certified_by: Some(("FR", 3)) };
const US_NODE: Setup = Setup { name: "us", publishes: None, certified_by: Some(("US", 4)) };

/// Creates a node directory on the charter network of `genesis`.
fn init_node(tmp: &Path, genesis: &SignedCharter, s: &Setup) -> PathBuf {
    let dir = tmp.join(s.name);
    let organization = s.publishes.map(|(o, _)| (org(o), format!("{o} administration")));
    config::init(
        &dir,
        &InitOptions {
            network: "permissioned-test",
            organization,
            p2p_listen: "/ip4/127.0.0.1/tcp/0",
            ..Default::default()
        },
    )
    .unwrap();
    // `init` made a store bound to the network name; this node's network is the genesis hash.
    std::fs::remove_dir_all(dir.join("db")).unwrap();
    if let Some((_, k)) = s.publishes {
        std::fs::write(dir.join("keys/signing.key"), hex::encode(key(k).to_bytes())).unwrap();
    }
    std::fs::create_dir(dir.join("charter")).unwrap();
    std::fs::write(dir.join("charter/v000001.charter"), encode(genesis)).unwrap();
    let mut section = format!("\n[charter]\ngenesis_hash = \"{}\"\n", genesis.hash());
    if let Some((o, k)) = s.certified_by {
        let peer = net::load_identity(&dir.join("keys/node.key")).unwrap().public().to_peer_id();
        let cert = certify_node(&genesis.hash().0, &org(o), &peer.to_string(), 1_800_000_000_000, &key(k)).unwrap();
        std::fs::write(dir.join("node.cert"), &cert.bytes).unwrap();
        section.push_str("certificate = \"node.cert\"\n");
    }
    let mut text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    text.push_str(&section);
    std::fs::write(dir.join("config.toml"), text).unwrap();
    dir
}

struct TestNode {
    service: Arc<Service>,
    running: Option<RunningNode>,
}

impl TestNode {
    fn address(&self) -> String {
        self.service.peers.read().unwrap().listen_addresses.first().cloned().expect("listening")
    }

    fn peer_id(&self) -> String {
        self.service.peers.read().unwrap().local_peer_id.clone()
    }

    fn connected_peers(&self) -> Vec<String> {
        self.service.peers.read().unwrap().peers.iter().map(|p| p.peer_id.clone()).collect()
    }

    fn count(&self) -> u64 {
        self.service.store.document_count().unwrap()
    }

    fn head(&self, publisher: &str) -> u64 {
        self.service.store.head(&org(publisher)).unwrap().map_or(0, |h| h.seq.0)
    }

    fn refused(&self, code: &str) -> u64 {
        self.service.counters.refused.lock().unwrap().get(code).copied().unwrap_or(0)
    }

    fn charter_version(&self) -> u32 {
        self.service.charter_info().unwrap().version
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

async fn launch(dir: &Path, bootstrap: &[String]) -> TestNode {
    launch_with(dir, |p2p| {
        p2p.bootstrap = bootstrap.to_vec();
        p2p.discovery = false;
    })
    .await
}

/// Starts a node after `configure` edits its `[p2p]` section.
async fn launch_with(dir: &Path, configure: impl FnOnce(&mut config::P2pConfig)) -> TestNode {
    let mut node = config::open(dir).unwrap();
    configure(&mut node.config.p2p);
    let config = node.config.clone();
    let service = Arc::new(Service::new(node));
    let running = start(service.clone(), dir, &config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while service.peers.read().unwrap().listen_addresses.is_empty() {
        assert!(Instant::now() < deadline, "node did not start listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    TestNode { service, running: Some(running) }
}

/// Waits for `cond`, failing with `what` after `within`.
async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn publish_opinions(node: &TestNode, count: usize, offset: usize) {
    for i in 0..count {
        let body = opinion(offset + i, "8806.22").body.to_string().into_bytes();
        node.service.publish(OPINION, &body).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certified_members_replicate_and_uncertified_nodes_get_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let wco_dir = init_node(tmp.path(), &g, &WCO_NODE);
    let fr_dir = init_node(tmp.path(), &g, &FR_NODE);
    let bare_dir = init_node(tmp.path(), &g, &Setup { name: "bare", publishes: None, certified_by: None });
    // Certified by a key that is no member's: the certificate does not verify.
    let forged_dir =
        init_node(tmp.path(), &g, &Setup { name: "forged", publishes: None, certified_by: Some(("FR", 9)) });

    let mut wco = launch(&wco_dir, &[]).await;
    publish_opinions(&wco, 20, 0);
    let boot = [wco.address()];
    let mut fr = launch(&fr_dir, &boot).await;
    let mut bare = launch(&bare_dir, &boot).await;
    let mut forged = launch(&forged_dir, &boot).await;

    wait_for("FR replicates the 20 opinions", Duration::from_secs(30), || fr.count() == 20).await;
    // Published while the intruders may still be connected: gossip must not reach them either.
    publish_opinions(&wco, 5, 20);
    wait_for("FR receives the 5 new opinions", Duration::from_secs(30), || fr.count() == 25).await;
    wait_for("WCO disconnects both intruders", Duration::from_secs(20), || {
        let peers = wco.connected_peers();
        !peers.contains(&bare.peer_id()) && !peers.contains(&forged.peer_id())
    })
    .await;
    assert_eq!(bare.count(), 0, "a node without a certificate received documents");
    assert_eq!(forged.count(), 0, "a node with a forged certificate received documents");
    assert!(wco.connected_peers().contains(&fr.peer_id()), "the certified replica stays connected");
    assert!(wco.refused("peer_cert_malformed") >= 1, "the bare node's (empty) certificate is counted as refused");
    assert!(wco.refused("peer_cert_key_not_authorized") >= 1, "the forged certificate's refusal is counted by reason");

    for n in [&mut wco, &mut fr, &mut bare, &mut forged] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_charter_version_reaches_every_node_and_a_departing_organization_loses_its_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let wco_dir = init_node(tmp.path(), &g, &WCO_NODE);
    let fr_dir = init_node(tmp.path(), &g, &FR_NODE);
    let us_dir = init_node(tmp.path(), &g, &US_NODE);
    let mut wco = launch(&wco_dir, &[]).await;
    publish_opinions(&wco, 10, 0);
    let boot = [wco.address()];
    let mut fr = launch(&fr_dir, &boot).await;
    let mut us = launch(&us_dir, &boot).await;
    wait_for("both replicas hold the 10 opinions", Duration::from_secs(30), || fr.count() == 10 && us.count() == 10)
        .await;

    // Too few signatures: refused by the node it is given to, and nothing changes anywhere.
    let mut weak = next_version(&g, |c| c.organizations.retain(|m| m.id.as_str() != "US"));
    weak.signatures.truncate(1);
    let e = wco.service.apply_charters(vec![weak]).unwrap_err();
    assert_eq!(e.code(), "too_few_signatures");
    assert_eq!(wco.charter_version(), 1);

    // Version 2 removes US. It is given to WCO only, and travels to FR through sync.
    let v2 = next_version(&g, |c| c.organizations.retain(|m| m.id.as_str() != "US"));
    wco.service.apply_charters(vec![v2.clone()]).unwrap();
    wait_for("FR holds charter version 2", Duration::from_secs(30), || fr.charter_version() == 2).await;
    assert!(fr_dir.join("charter/v000002.charter").exists(), "FR keeps the version on disk for its next start");
    wait_for("WCO disconnects the node of the departed organization", Duration::from_secs(20), || {
        !wco.connected_peers().contains(&us.peer_id())
    })
    .await;
    publish_opinions(&wco, 5, 10);
    wait_for("FR receives documents published after the change", Duration::from_secs(30), || fr.count() == 15).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(us.count(), 10, "the departed organization's node received documents after leaving");

    // A restarted FR starts from the version it kept.
    fr.stop().await;
    drop(fr);
    let mut fr = launch(&fr_dir, &boot).await;
    assert_eq!(fr.charter_version(), 2);
    for n in [&mut wco, &mut fr, &mut us] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_charter_extends_no_trust_until_a_newer_version_arrives_from_a_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis("2020-01-01T00:00:00Z"), &[100, 101]);
    let wco_dir = init_node(tmp.path(), &g, &WCO_NODE);
    let fr_dir = init_node(tmp.path(), &g, &FR_NODE);
    let mut wco = launch(&wco_dir, &[]).await;
    assert_eq!(wco.service.charter_info().unwrap().state, "expired");
    let body = opinion(1, "8806.22").body.to_string().into_bytes();
    let e = wco.service.publish(OPINION, &body).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    assert_eq!(wco.count(), 0);

    // Documents signed for this network while the charter was valid are refused too.
    let old = sign_feed(&[opinion(1, "8806.22")], &org("WCO"), &key(1), &g.hash().0, Seq::FIRST, DocumentId::ZERO);
    let r = wco.service.ingest(old, entrepot::service::Source::Import).unwrap();
    assert_eq!(r[0].as_ref().unwrap_err().code(), "charter_expired");

    let v2 = next_version(&g, |c| c.expires = FAR.into());
    wco.service.apply_charters(vec![v2]).unwrap();
    assert_eq!(wco.service.charter_info().unwrap().state, "valid");
    publish_opinions(&wco, 3, 0);
    {
        let fr_node = config::open(&fr_dir).unwrap();
        let now = entrepot::clock::now_ms();
        assert_eq!(fr_node.keyring.charter().unwrap().expiry_status(now), entrepot::charter::ExpiryStatus::Expired);
    }
    let mut fr = launch(&fr_dir, &[wco.address()]).await;
    wait_for("FR pulls version 2 and then the documents", Duration::from_secs(30), || fr.count() == 3).await;
    assert_eq!(fr.charter_version(), 2);
    wco.stop().await;
    fr.stop().await;
}

/// A raw peer certified for US (key 4) that dials `address`, answers hellos with its
/// certificate and everything else with `answer`, and is admitted before this returns.
async fn us_insider(
    net_id: [u8; 32],
    address: &str,
    answer: impl Fn(Request) -> Response + Send + Sync + 'static,
) -> RawPeer {
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let insider = keypair.public().to_peer_id();
    let cert = certify_node(&net_id, &org("US"), &insider.to_string(), 1_800_000_000_000, &key(4)).unwrap();
    let cert_bytes = cert.bytes.clone();
    let mut raw = RawPeer::start(keypair, net_id, address, move |request| match request {
        Request::Hello { .. } => Response::Hello { cert: cert_bytes.clone() },
        other => answer(other),
    })
    .await;
    let target = peer_of(address);
    wait_for("the insider connects", Duration::from_secs(10), || raw.is_connected(&target)).await;
    match raw.request(target, Request::Hello { cert: cert.bytes }).await {
        Ok(Response::Hello { .. }) => {}
        other => panic!("a certified peer was not admitted: {other:?}"),
    }
    raw
}

fn peer_of(address: &str) -> PeerId {
    net::parse_bootstrap(address).unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_peer_without_a_certificate_is_refused_every_request_and_receives_no_gossip() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let wco_dir = init_node(tmp.path(), &g, &WCO_NODE);
    let mut wco = launch(&wco_dir, &[]).await;
    publish_opinions(&wco, 3, 0);
    let wco_peer = peer_of(&wco.address());
    // It answers nothing useful and sends no hello: it only listens and then asks.
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let mut raw = RawPeer::start(keypair, g.hash().0, &wco.address(), |_| Response::Refused {
        code: RefusalCode::Unexpected,
        reason: "no".into(),
    })
    .await;
    wait_for("the raw peer connects", Duration::from_secs(10), || raw.is_connected(&wco_peer)).await;
    // Gossip published while it is connected and subscribed must not reach it.
    publish_opinions(&wco, 5, 3);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(raw.gossip.load(Ordering::SeqCst), 0, "gossip reached a peer without a certificate");
    let answer =
        raw.request(wco_peer, Request::Range { org: org("WCO"), from: Seq(1), count_max: 10, bytes_max: 1 << 20 });
    match answer.await {
        Ok(Response::Refused { code, reason }) => assert_eq!(code, RefusalCode::NotAdmitted, "{reason}"),
        other => panic!("a range request before admission was answered: {other:?}"),
    }
    // It never shows a certificate: it is disconnected at the admission timeout (10 s).
    wait_for("WCO disconnects the raw peer", Duration::from_secs(15), || !raw.is_connected(&wco_peer)).await;
    assert!(wco.refused("peer_not_admitted") >= 1);
    wco.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_peer_that_never_shows_a_certificate_is_disconnected_ten_seconds_after_it_connected() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let mut wco = launch(&init_node(tmp.path(), &g, &WCO_NODE), &[]).await;
    let wco_peer = peer_of(&wco.address());
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let raw = RawPeer::start(keypair, g.hash().0, &wco.address(), |_| Response::Refused {
        code: RefusalCode::Unavailable,
        reason: "no".into(),
    })
    .await;
    wait_for("the raw peer connects", Duration::from_secs(10), || raw.is_connected(&wco_peer)).await;
    wait_for("WCO disconnects the raw peer", Duration::from_secs(15), || raw.first_connection(&wco_peer).1.is_some())
        .await;
    let (Some(up), Some(down)) = raw.first_connection(&wco_peer) else { unreachable!("waited for both") };
    let held = down - up;
    assert!(
        (Duration::from_millis(9_500)..=Duration::from_millis(10_500)).contains(&held),
        "the admission timeout is 10 s, but the raw peer stayed connected {held:?}"
    );
    wco.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_certified_by_an_unknown_organization_is_disconnected_once_its_charter_answer_brings_nothing_newer() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let net_id = g.hash().0;
    let mut wco = launch(&init_node(tmp.path(), &g, &WCO_NODE), &[]).await;
    let wco_peer = peer_of(&wco.address());
    // ZZ is no member: its certificate would only be good under a charter version WCO lacks.
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let me = keypair.public().to_peer_id();
    let cert = certify_node(&net_id, &org("ZZ"), &me.to_string(), 1_800_000_000_000, &key(9)).unwrap();
    let charters_answered: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (shown, answered) = (cert.bytes.clone(), charters_answered.clone());
    let mut raw = RawPeer::start(keypair, net_id, &wco.address(), move |request| match request {
        Request::Hello { .. } => Response::Hello { cert: shown.clone() },
        Request::Charters { .. } => {
            answered.lock().unwrap().get_or_insert(Instant::now());
            Response::Charters { files: Vec::new() }
        }
        _ => Response::Refused { code: RefusalCode::Unavailable, reason: "no".into() },
    })
    .await;
    wait_for("the raw peer connects", Duration::from_secs(10), || raw.is_connected(&wco_peer)).await;
    match raw.request(wco_peer, Request::Hello { cert: cert.bytes }).await {
        Ok(Response::Refused { code, reason }) => {
            assert_eq!(code, RefusalCode::NotAMember, "{reason}");
            assert!(reason.contains("unknown_organization"), "{reason}");
        }
        other => panic!("a certificate of no member was accepted: {other:?}"),
    }
    wait_for("WCO asks the peer for newer charter versions", Duration::from_secs(5), || {
        charters_answered.lock().unwrap().is_some()
    })
    .await;
    let answered = charters_answered.lock().unwrap().expect("waited for it");
    wait_for("WCO disconnects the peer", Duration::from_secs(15), || raw.first_connection(&wco_peer).1.is_some()).await;
    let (Some(up), Some(down)) = raw.first_connection(&wco_peer) else { unreachable!("waited for both") };
    assert!(
        down - answered <= Duration::from_secs(3),
        "the peer had nothing newer to show, but was disconnected only {:?} after answering the charter request \
         ({:?} after connecting; the admission timeout is 10 s)",
        down - answered,
        down - up
    );
    assert!(wco.refused("peer_cert_unknown_organization") >= 1);
    wco.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_a_certified_insider_serves_against_the_charter_are_refused_by_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let net_id = g.hash().0;
    let wco_dir = init_node(tmp.path(), &g, &WCO_NODE);
    let mut wco = launch(&wco_dir, &[]).await;

    // The insider is a US node with a valid certificate. It offers three feeds:
    // XX (no member), US opinions (US may publish only rulings), and RILO entries 1–4 all
    // signed with key 5, which the charter revokes from position 3.
    let feeds: BTreeMap<String, Vec<Vec<u8>>> = [
        ("XX", sign_feed(&[opinion(1, "8806.22")], &org("XX"), &key(9), &net_id, Seq::FIRST, DocumentId::ZERO)),
        ("US", sign_feed(&[opinion(2, "8806.22")], &org("US"), &key(4), &net_id, Seq::FIRST, DocumentId::ZERO)),
        (
            "RILO",
            sign_feed(
                &(0..4).map(|i| opinion(10 + i, "8806.22")).collect::<Vec<_>>(),
                &org("RILO"),
                &key(5),
                &net_id,
                Seq::FIRST,
                DocumentId::ZERO,
            ),
        ),
    ]
    .into_iter()
    .map(|(o, d)| (o.to_owned(), d))
    .collect();
    let heads: Vec<FeedHead> = feeds
        .iter()
        .map(|(o, docs)| {
            let last = entrepot::document::decode(docs.last().unwrap()).unwrap();
            FeedHead { org: org(o), seq: last.header.seq, id: last.id, forked_at: None }
        })
        .collect();
    let feeds_for_answer = feeds.clone();
    let asked: Arc<Mutex<std::collections::BTreeSet<String>>> = Arc::default();
    let asked_by_wco = asked.clone();
    let _raw = us_insider(net_id, &wco.address(), move |request| match request {
        Request::Status(s) => {
            Response::Status(Status::compose(s.network_id, 1, heads.clone(), HeadsDigest::NONE, HeadsDigest::NONE))
        }
        Request::Range { org, from, count_max, .. } => {
            asked_by_wco.lock().unwrap().insert(org.to_string());
            Response::Range {
                docs: feeds_for_answer
                    .get(org.as_str())
                    .map(|d| d.iter().skip(from.0 as usize - 1).take(count_max as usize).cloned().collect())
                    .unwrap_or_default(),
            }
        }
        _ => Response::Refused { code: RefusalCode::Unavailable, reason: "not offered".into() },
    })
    .await;
    wait_for("WCO stores the valid RILO entries before the revocation point", Duration::from_secs(30), || {
        wco.head("RILO") == 2
    })
    .await;
    wait_for("every forged entry of a member is refused by its reason", Duration::from_secs(30), || {
        wco.refused("type_not_permitted") >= 1 && wco.refused("key_revoked") >= 1
    })
    .await;
    // XX is no member: its feed is not even asked for (a node tracks only publishers its
    // trust knows), so nothing of it is held.
    assert!(!asked.lock().unwrap().contains("XX"), "WCO asked for the feed of a publisher it does not trust");
    assert_eq!(wco.head("XX"), 0);
    assert_eq!(wco.head("US"), 0);
    assert_eq!(wco.head("RILO"), 2, "entries at and after the revocation point are refused");
    assert_eq!(wco.count(), 2);
    wco.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_notice_payload_reaches_its_audience_and_no_one_else_even_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let net_id = g.hash().0;
    let wco_dir = init_node(tmp.path(), &g, &WCO_NODE);
    let fr_dir = init_node(tmp.path(), &g, &FR_NODE);
    let us_dir = init_node(tmp.path(), &g, &US_NODE);
    let mut wco = launch(&wco_dir, &[]).await;
    let boot = [wco.address()];
    let mut fr = launch(&fr_dir, &boot).await;
    let mut us = launch(&us_dir, &boot).await;

    const SECRET: &str = "Containers routed through a free zone, declared as machine parts";
    let body = serde_json::json!({
        "title": { "en": "Alert: precursor chemicals under false description" },
        "validity": { "from": "2026-01-01", "to": "2027-12-31" },
        "header": { "kind": "alert", "risk_area": "precursors", "hs": [{ "edition": "HS2022", "code": "2914.11" }],
                    "region": "EU", "handling": "restricted" },
        "audience": { "scope": "group", "group": ["FR"] }
    });
    let payload = serde_json::json!({ "summary": { "en": SECRET }, "indicators": ["consignee registered last month"] });
    let published = wco.service.publish_notice(body.to_string().as_bytes(), &payload).unwrap();
    let id = published.id;
    wait_for("both replicas hold the notice's envelope", Duration::from_secs(30), || {
        fr.count() == 1 && us.count() == 1
    })
    .await;
    wait_for("FR, in the audience, receives the payload", Duration::from_secs(30), || {
        fr.service.store.payload(&id).unwrap().is_some()
    })
    .await;
    let fr_payload = fr.service.store.payload(&id).unwrap().unwrap();
    assert!(String::from_utf8_lossy(&fr_payload).contains(SECRET));
    // US holds the whole feed (it can prove nothing is missing) but not the payload.
    assert_eq!(us.head("WCO"), wco.head("WCO"));
    let envelope = us.service.store.get(&id).unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&envelope).contains(SECRET), "the envelope carries the payload");

    // A US node asking outright, with a valid US certificate, is given nothing.
    let mut raw = us_insider(net_id, &wco.address(), |_| Response::Refused {
        code: RefusalCode::Unavailable,
        reason: "not offered".into(),
    })
    .await;
    let wco_peer = peer_of(&wco.address());
    match raw.request(wco_peer, Request::Payloads { ids: vec![id] }).await {
        Ok(Response::Payloads { items }) => assert!(items.is_empty(), "a payload was served outside its audience"),
        other => panic!("unexpected answer: {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(us.service.store.payload(&id).unwrap(), None, "US received a payload outside its audience");
    for n in [&mut wco, &mut fr, &mut us] {
        n.stop().await;
    }
}

/// The forked positions a node holds evidence of, as (publisher, position, resolved). (After a
/// truncation both entries of a fork are evidence, so one position may have several records.)
fn forks(node: &TestNode) -> Vec<(String, u64, bool)> {
    let all: std::collections::BTreeSet<_> = node
        .service
        .store
        .forks()
        .unwrap()
        .into_iter()
        .map(|f| (f.publisher.to_string(), f.seq.0, f.resolved))
        .collect();
    all.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_made_with_a_stolen_key_freezes_the_feed_on_every_node_until_the_charter_revokes_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let net_id = g.hash().0;
    let wco_dir = init_node(tmp.path(), &g, &WCO_NODE);
    let fr_dir = init_node(tmp.path(), &g, &FR_NODE);
    let us_dir = init_node(tmp.path(), &g, &US_NODE);
    let mut wco = launch(&wco_dir, &[]).await;
    publish_opinions(&wco, 3, 0);
    let boot = [wco.address()];
    let mut fr = launch(&fr_dir, &boot).await;
    let mut us = launch(&us_dir, &boot).await;
    wait_for("the replicas hold WCO's 3 opinions", Duration::from_secs(30), || fr.count() == 3 && us.count() == 3)
        .await;

    // Whoever stole key 1 signs another entry at position 3 and hands it to US only.
    let second = wco.service.store.feed_entry(&org("WCO"), Seq(2)).unwrap().unwrap();
    let forged = sign_feed(&[opinion(99, "8806.22")], &org("WCO"), &key(1), &net_id, Seq(3), second);
    let r = us.service.ingest(forged, entrepot::service::Source::Gossip).unwrap();
    assert!(matches!(r[0], Ok(entrepot::store::IngestOutcome::Forked { .. })), "{r:?}");
    for n in [&wco, &fr, &us] {
        let node = n.peer_id();
        wait_for(&format!("node {node} holds the fork proof"), Duration::from_secs(40), || {
            forks(n) == vec![("WCO".to_owned(), 3, false)]
        })
        .await;
    }
    // Frozen everywhere: the publisher itself cannot continue the feed.
    let body = opinion(4, "8806.22").body.to_string().into_bytes();
    let e = wco.service.publish(OPINION, &body).unwrap_err();
    assert!(e.to_string().contains("frozen"), "{e}");

    // The root key holders revoke key 1 from position 3 and give WCO key 2 from there.
    let v2 = next_version(&g, |c| {
        let wco = c.organizations.iter_mut().find(|m| m.id.as_str() == "WCO").unwrap();
        wco.keys[0].revoked_at_seq = Some(Seq(3));
        wco.keys.push(grant(2, 3, None));
    });
    wco.service.apply_charters(vec![v2]).unwrap();
    for n in [&wco, &fr, &us] {
        let node = n.peer_id();
        wait_for(&format!("node {node} resolves the fork under version 2"), Duration::from_secs(40), || {
            n.charter_version() == 2 && forks(n) == vec![("WCO".to_owned(), 3, true)] && n.head("WCO") == 2
        })
        .await;
    }
    // WCO's operator installs key 2, certifies the node again with it (a revoked key
    // certifies nothing, so peers now refuse the old certificate) and restarts; the feed
    // continues at position 3.
    wco.stop().await;
    drop(wco);
    std::fs::write(wco_dir.join("keys/signing.key"), hex::encode(key(2).to_bytes())).unwrap();
    let wco_peer = net::load_identity(&wco_dir.join("keys/node.key")).unwrap().public().to_peer_id();
    let recert = certify_node(&net_id, &org("WCO"), &wco_peer.to_string(), 1_800_000_000_000, &key(2)).unwrap();
    std::fs::write(wco_dir.join("node.cert"), &recert.bytes).unwrap();
    let mut wco = launch(&wco_dir, &[fr.address(), us.address()]).await;
    publish_opinions(&wco, 2, 3);
    let fresh = wco.service.store.feed_entry(&org("WCO"), Seq(3)).unwrap().unwrap();
    for n in [&fr, &us] {
        wait_for("the new entries reach every replica", Duration::from_secs(40), || n.head("WCO") == 4).await;
        assert_eq!(n.service.store.feed_entry(&org("WCO"), Seq(3)).unwrap(), Some(fresh));
    }
    for n in [&mut wco, &mut fr, &mut us] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kademlia_serves_members_and_tells_a_peer_without_a_certificate_nothing_of_them() {
    use futures::StreamExt;
    use libp2p::kad;
    use libp2p::swarm::SwarmEvent;
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let wco_dir = init_node(tmp.path(), &g, &WCO_NODE);
    let fr_dir = init_node(tmp.path(), &g, &FR_NODE);
    // Discovery on: the members find each other through Kademlia.
    let mut wco = launch_with(&wco_dir, |p2p| p2p.discovery = true).await;
    let wco_address = wco.address();
    let mut fr = launch_with(&fr_dir, |p2p| {
        p2p.bootstrap = vec![wco_address.clone()];
        p2p.discovery = true;
    })
    .await;
    wait_for("WCO and FR admit each other", Duration::from_secs(20), || {
        wco.connected_peers().contains(&fr.peer_id()) && fr.connected_peers().contains(&wco.peer_id())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A stranger speaking only Kademlia asks WCO for the peers closest to FR.
    let fr_peer: PeerId = fr.peer_id().parse().unwrap();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(libp2p::identity::Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .unwrap()
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let config = kad::Config::new(libp2p::StreamProtocol::new("/entrepot/kad/1.0.0"));
            kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), config)
        })
        .unwrap()
        .build();
    swarm.behaviour_mut().set_mode(Some(kad::Mode::Client));
    let (wco_peer, wco_addr) = net::parse_bootstrap(&wco.address()).unwrap();
    swarm.behaviour_mut().add_address(&wco_peer, wco_addr);
    swarm.behaviour_mut().get_closest_peers(fr_peer);
    let mut learned: Vec<PeerId> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while let Ok(ev) = tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
        match ev {
            SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(r),
                step,
                ..
            }) => {
                match r {
                    Ok(ok) => learned.extend(ok.peers.iter().map(|p| p.peer_id)),
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => {
                        learned.extend(peers.iter().map(|p| p.peer_id))
                    }
                }
                if step.last {
                    break;
                }
            }
            SwarmEvent::Behaviour(kad::Event::RoutingUpdated { peer, .. }) => learned.push(peer),
            SwarmEvent::ConnectionEstablished { peer_id, .. } => learned.push(peer_id),
            _ => {}
        }
    }
    assert!(!learned.contains(&fr_peer), "an uncertified peer learned of member FR through Kademlia: {learned:?}");

    // Members still find each other: US knows only WCO, and meets FR through Kademlia.
    let us_dir = init_node(tmp.path(), &g, &US_NODE);
    let mut us = launch_with(&us_dir, |p2p| {
        p2p.bootstrap = vec![wco_address.clone()];
        p2p.discovery = true;
    })
    .await;
    wait_for("US meets FR through WCO's routing table", Duration::from_secs(20), || {
        us.connected_peers().contains(&fr.peer_id())
    })
    .await;
    for n in [&mut wco, &mut fr, &mut us] {
        n.stop().await;
    }
}

/// A second WCO publishing node with WCO's key: what a publisher showing two histories runs.
const WCO_TWIN: Setup = Setup { name: "wco-twin", publishes: Some(("WCO", 1)), certified_by: Some(("WCO", 1)) };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_of_other_organizations_give_receipts_and_a_split_view_is_detected_frozen_and_proven() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let (wco_dir, twin_dir) = (init_node(tmp.path(), &g, &WCO_NODE), init_node(tmp.path(), &g, &WCO_TWIN));
    let (fr_dir, us_dir) = (init_node(tmp.path(), &g, &FR_NODE), init_node(tmp.path(), &g, &US_NODE));
    let wco_org = org("WCO");

    // WCO shows FR one history of 10 entries and US another of 5, both signed with its key.
    let mut wco = launch(&wco_dir, &[]).await;
    publish_opinions(&wco, 10, 0);
    let mut twin = launch(&twin_dir, &[]).await;
    publish_opinions(&twin, 5, 100);
    let mut fr = launch(&fr_dir, &[wco.address()]).await;
    let mut us = launch(&us_dir, &[twin.address()]).await;
    wait_for("FR holds WCO's checkpoint of its 10 entries", Duration::from_secs(120), || {
        fr.service.store.tree_checkpoint(&wco_org, 10).unwrap().is_some()
    })
    .await;
    wait_for("US holds the twin's checkpoint of its 5 entries", Duration::from_secs(120), || {
        us.service.store.tree_checkpoint(&wco_org, 5).unwrap().is_some()
    })
    .await;

    // FR's node cosigned and WCO took its cosignature back: a receipt from another organization.
    let first = wco.service.store.feed_entry(&wco_org, Seq(1)).unwrap().unwrap();
    wait_for("WCO holds FR's receipt for its first document", Duration::from_secs(120), || {
        wco.service.receipts(&first).unwrap().unwrap().iter().any(|r| r.organization == org("FR"))
    })
    .await;
    let receipts = wco.service.receipts(&first).unwrap().unwrap();
    let fr_receipt = receipts.iter().find(|r| r.organization == org("FR")).unwrap();
    assert_eq!(fr_receipt.peer_id, fr.peer_id());
    assert!(fr_receipt.checkpoint_size >= 1 && fr_receipt.checkpoint_size <= 10);
    assert!(wco.service.store.checkpoint_forks(None).unwrap().is_empty(), "one history: no fork");
    cosignatures_held_are_not_taken_again_and_an_altered_one_is_refused(&wco, &fr, fr_receipt.checkpoint_size);

    // US's node now meets FR's: FR sees the twin's checkpoint of 5, which its own tree
    // contradicts, records the evidence and freezes WCO's feed past what it holds.
    us.stop().await;
    drop(us);
    let mut us = launch(&us_dir, &[twin.address(), fr.address()]).await;
    wait_for("FR records the split view", Duration::from_secs(120), || {
        !fr.service.store.checkpoint_forks(Some(&wco_org)).unwrap().is_empty()
    })
    .await;
    assert_eq!(fr.service.store.head(&wco_org).unwrap().unwrap().forked_at, Some(Seq(10)), "frozen at its 10th entry");
    let fork = &fr.service.store.checkpoint_forks(Some(&wco_org)).unwrap()[0];
    assert_eq!((fork.size_a, fork.size_b), (5, 10));
    // The evidence is portable: US, told by FR, verifies it and freezes the feed too.
    wait_for("US receives FR's evidence and freezes WCO's feed", Duration::from_secs(120), || {
        us.service.store.head(&wco_org).unwrap().is_some_and(|h| h.forked_at.is_some())
            && !us.service.store.checkpoint_forks(Some(&wco_org)).unwrap().is_empty()
    })
    .await;
    for n in [&mut wco, &mut twin, &mut fr, &mut us] {
        n.stop().await;
    }
    drop((wco, twin, fr, us));
    an_auditor_proves_a_document_from_a_bundle_and_the_genesis_hash_alone(tmp.path(), &wco_dir, &g, first);
}

/// WCO takes FR's cosigned checkpoint of `size` again, as the next pull would bring it: the
/// cosignature lines it holds already are neither stored again nor counted; one of them with
/// its signature altered is still checked, and refused.
fn cosignatures_held_are_not_taken_again_and_an_altered_one_is_refused(wco: &TestNode, fr: &TestNode, size: u64) {
    let wco_org = org("WCO");
    let (note, certs) = fr.service.cosigned_checkpoint(&wco_org, Some(size)).unwrap().unwrap();
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let held = wco.service.store.cosignatures(&wco_org, size, 64).unwrap();
    assert!(!held.is_empty(), "WCO holds FR's cosignature of {size}");
    let taken = wco.service.take_checkpoint(note.as_bytes(), &certs, now_s).unwrap();
    assert_eq!((taken.stored, taken.cosignatures, taken.forked), (false, 0, false), "{taken:?}");
    assert_eq!(wco.service.store.cosignatures(&wco_org, size, 64).unwrap(), held, "nothing written");
    let mut altered = entrepot::tlog::note::parse(note.as_bytes()).unwrap();
    let line = altered.signatures.iter_mut().find(|l| l.name.contains(&fr.peer_id()));
    let line = line.expect("FR's own cosignature line is served");
    *line.data.last_mut().unwrap() ^= 1;
    let refused = wco.service.take_checkpoint(altered.encode().as_bytes(), &certs, now_s);
    assert!(refused.is_err(), "an altered line held otherwise is checked: {:?}", refused.map(|t| t.cosignatures));
}

/// Runs `entrepot` in `dir` (an empty directory: no node, no keyring) and returns its exit
/// code and standard output.
fn entrepot_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(common::bin()).arg("--dir").arg(dir).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

/// WCO's node holds FR's cosignature of its feed: a bundle of one document, exported from it,
/// proves to someone holding only the genesis hash that the document is in WCO's feed and
/// that a node of another member organization held it.
fn an_auditor_proves_a_document_from_a_bundle_and_the_genesis_hash_alone(
    tmp: &Path,
    wco_dir: &Path,
    genesis: &SignedCharter,
    id: DocumentId,
) {
    let bundle = tmp.join("one.bundle");
    let (code, out) = entrepot_in(wco_dir, &["export", "--id", &id.to_hex(), "--out", bundle.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 charter version(s) and 1 checkpoint(s)"), "{out}");
    let auditor = tmp.join("auditor");
    std::fs::create_dir_all(&auditor).unwrap();
    let g = genesis.hash().to_hex();
    let b = bundle.to_str().unwrap();
    let (code, out) = entrepot_in(&auditor, &["verify", "--genesis", &g, "--witnesses", "1", b]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified from genesis"), "{out}");
    assert!(out.contains("cosigned by 1 organization(s): FR at "), "{out}");
    assert!(out.contains(&format!("ok      {id}  WCO#1")) && out.contains("included in checkpoint"), "{out}");
    // Two witness organizations asked, one cosigned.
    let (code, out) = entrepot_in(&auditor, &["verify", "--genesis", &g, "--witnesses", "2", b]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("witnesses_too_few"), "{out}");
    // Another genesis: the chain does not start there.
    let (code, out) = entrepot_in(&auditor, &["verify", "--genesis", &"ab".repeat(32), b]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("chain_invalid"), "{out}");
    // The proof's last byte altered: the document still verifies, its place does not.
    let mut bytes = std::fs::read(&bundle).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    let altered = tmp.join("altered.bundle");
    std::fs::write(&altered, bytes).unwrap();
    let (code, out) = entrepot_in(&auditor, &["verify", "--genesis", &g, altered.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("inclusion_invalid"), "{out}");
    // The whole feed: every entry proved against the same checkpoint, or said not covered.
    let feed = tmp.join("feed.bundle");
    let (code, out) = entrepot_in(wco_dir, &["export", "--publisher", "WCO", "--out", feed.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = entrepot_in(&auditor, &["verify", "--genesis", &g, feed.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified 10 document(s), refused 0"), "{out}");
    assert!(out.contains("included in checkpoint"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_with_a_charter_node_directory_trusts_that_nodes_charter() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(&genesis(FAR), &[100, 101]);
    let wco_dir = init_node(tmp.path(), &g, &WCO_NODE);
    let mut wco = launch(&wco_dir, &[]).await;
    publish_opinions(&wco, 2, 0);
    let id = wco.service.store.feed_entry(&org("WCO"), Seq(2)).unwrap().unwrap();
    let file = tmp.path().join("doc.entrepot");
    std::fs::write(&file, wco.service.store.get(&id).unwrap().unwrap()).unwrap();
    wco.stop().await;
    drop(wco);
    let out = std::process::Command::new(common::bin())
        .arg("--dir")
        .arg(&wco_dir)
        .args(["verify", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "verify failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("trusting the charter of node"), "{stdout}");
    assert!(stdout.contains(&format!("ok      {id}")), "{stdout}");
}
