//! Faults of a running node seen from outside, each a scenario of real `entrepot run`
//! processes on loopback: a replica whose only peer rolls over to a new key, a new member
//! publishing while its charter version spreads, an ingest thread that dies under a live node,
//! a bootstrap peer that goes away and comes back, and a fixed topology.
//!
//! Pauses are SIGSTOP/SIGCONT; the full disk is a tmpfs (root only: that test skips with a
//! message elsewhere, and fails under CI). Nodes log warnings to files in the test's temporary
//! directory; `ENTREPOT_TEST_LOG` sets their `RUST_LOG` instead, and the rollover tests then
//! print every log.

mod common;
#[path = "common/procs.rs"]
mod procs;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::charters::{genesis, grant, member, next_version, sign, FAR, OPINION};
use common::{key, org};
use entrepot::bench::sign_feed;
use entrepot::charter::{certify_node, encode, SignedCharter};
use entrepot::config::{self, InitOptions};
use entrepot::document::Seq;
use entrepot::ingest::Ingestor;
use procs::*;

const NETWORK: &str = "engine-faults";
const RULING: &str = "classification.ruling";

/// A node directory on the charter network of `genesis`, with fixed loopback addresses (a
/// restarted node is found where it was). It publishes for `publishes` (organization, signing
/// key label) and is certified by `certified_by` (organization, key label).
fn charter_node(
    root: &Path,
    genesis: &SignedCharter,
    name: &str,
    publishes: Option<(&str, u8)>,
    certified_by: (&str, u8),
) -> NodeDir {
    let dir = root.join(name);
    let p2p_listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let http_listen = format!("127.0.0.1:{}", free_port());
    let organization = publishes.map(|(o, _)| (org(o), format!("{o} administration")));
    let options = InitOptions {
        network: NETWORK,
        organization,
        p2p_listen: &p2p_listen,
        http_listen: &http_listen,
        bootstrap: &[],
        charter: None,
    };
    config::init(&dir, &options).unwrap();
    // `init` made a store bound to the network name; this node's network is the genesis hash.
    std::fs::remove_dir_all(dir.join("db")).unwrap();
    if let Some((_, k)) = publishes {
        std::fs::write(dir.join("keys/signing.key"), hex::encode(key(k).to_bytes())).unwrap();
    }
    std::fs::create_dir(dir.join("charter")).unwrap();
    std::fs::write(dir.join("charter/v000001.charter"), encode(genesis)).unwrap();
    let peer_id = entrepot::net::load_identity(&dir.join("keys/node.key")).unwrap().public().to_peer_id();
    let token = std::fs::read_to_string(dir.join("keys/api.token")).unwrap().trim().to_owned();
    let node = NodeDir {
        dir,
        http: http_listen.parse().unwrap(),
        p2p: format!("{p2p_listen}/p2p/{peer_id}"),
        peer_id: peer_id.to_string(),
        token,
    };
    certify(&node, genesis, certified_by);
    let mut text = std::fs::read_to_string(node.dir.join("config.toml")).unwrap();
    text.push_str(&format!("\n[charter]\ngenesis_hash = \"{}\"\ncertificate = \"node.cert\"\n", genesis.hash()));
    std::fs::write(node.dir.join("config.toml"), text).unwrap();
    node
}

/// Writes the node's certificate, signed for `organization` with the key labelled `k`.
fn certify(node: &NodeDir, genesis: &SignedCharter, (organization, k): (&str, u8)) {
    let cert = certify_node(&genesis.hash().0, &org(organization), &node.peer_id, 1_800_000_000_000, &key(k)).unwrap();
    std::fs::write(node.dir.join("node.cert"), &cert.bytes).unwrap();
}

/// Sets `[p2p] discovery` in a node's config.
fn set_discovery(node: &NodeDir, on: bool) {
    let path = node.dir.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("discovery = true"), "config.toml has no discovery line");
    std::fs::write(&path, text.replace("discovery = true", &format!("discovery = {on}"))).unwrap();
}

/// Gives a running node a charter version through `POST /v1/admin/charter`.
fn post_charter(node: &NodeDir, charter: &SignedCharter) {
    let r = try_request(
        node.http,
        "POST",
        "/v1/admin/charter",
        Some(&node.token),
        &encode(charter),
        Duration::from_secs(10),
    );
    assert_eq!(
        r.as_ref().map(|r| r.0),
        Some(200),
        "charter not applied: {:?}",
        r.map(|r| String::from_utf8_lossy(&r.1).into_owned())
    );
}

fn charter_version(node: &NodeDir) -> u64 {
    get_json(node.http, "/v1/charter").and_then(|c| c["version"].as_u64()).unwrap_or(0)
}

/// The node's head of `publisher`'s feed: position and id (0 and "" when it holds none).
fn head(node: &NodeDir, publisher: &str) -> (u64, String) {
    feeds(node.http)
        .and_then(|f| {
            f.as_array().and_then(|a| {
                a.iter()
                    .find(|f| f["publisher"] == publisher)
                    .map(|f| (f["seq"].as_u64().unwrap_or(0), f["id"].as_str().unwrap_or("").to_owned()))
            })
        })
        .unwrap_or((0, String::new()))
}

fn seq(node: &NodeDir, publisher: &str) -> u64 {
    head(node, publisher).0
}

/// The lag `/v1/peers` shows for `publisher`'s feed.
fn lag(node: &NodeDir, publisher: &str) -> Option<u64> {
    let v = get_json(node.http, "/v1/peers")?;
    v["lag"].as_array()?.iter().find(|l| l["publisher"] == publisher).and_then(|l| l["lag"].as_u64())
}

/// Peer ids the node lists as connected (`/v1/peers`), `None` when it does not answer.
fn peers(node: &NodeDir) -> Option<BTreeSet<String>> {
    let v = get_json(node.http, "/v1/peers")?;
    Some(v["peers"].as_array()?.iter().filter_map(|p| p["peer_id"].as_str().map(str::to_owned)).collect())
}

/// Waits for `cond`, failing with `what` after `within`.
fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A counter from `/metrics`: the first sample named `name…` with `label` (0 when none).
fn metric(node: &NodeDir, name: &str, label: &str) -> u64 {
    let Some((200, body)) = try_request(node.http, "GET", "/metrics", None, b"", Duration::from_secs(5)) else {
        return 0;
    };
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(name) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The count of documents a node refused for `reason`.
fn refused(node: &NodeDir, reason: &str) -> u64 {
    metric(node, "entrepot_documents_refused", &format!("reason=\"{reason}\""))
}

/// Lines of a node's log that contain `needle`.
fn log_lines(log: &Path, needle: &str) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
}

/// WCO's node and FR, a replica whose only peer it is, on the rollover charter: WCO has
/// published 1–20 with key 1 and FR holds them. WCO's node certificate is signed with
/// `cert_key` (1, or 8, a WCO key the rollover keeps).
struct Rollover {
    tmp: tempfile::TempDir,
    genesis: SignedCharter,
    wco: NodeDir,
    wco_proc: Option<Proc>,
    fr: NodeDir,
    fr_proc: Proc,
}

impl Rollover {
    fn start(cert_key: u8) -> Rollover {
        let tmp = tempfile::tempdir().unwrap();
        let genesis = rollover_genesis();
        let wco = charter_node(tmp.path(), &genesis, "wco", Some(("WCO", 1)), ("WCO", cert_key));
        let fr = charter_node(tmp.path(), &genesis, "fr", None, ("FR", 3));
        set_bootstrap(&fr, std::slice::from_ref(&wco.p2p));
        let wco_proc = Proc::start_logged(&wco, &tmp.path().join("wco.log"));
        for i in 0..20 {
            assert!(publish_one(&wco, i).is_some(), "WCO publishes {i} with key 1");
        }
        let fr_proc = Proc::start_logged(&fr, &tmp.path().join("fr.log"));
        wait_for("FR replicates WCO 1–20", Duration::from_secs(30), || seq(&fr, "WCO") == 20);
        Rollover { tmp, genesis, wco, wco_proc: Some(wco_proc), fr, fr_proc }
    }

    /// Restarts WCO's node at once with key 2 as its signing key and FR as its bootstrap peer;
    /// with `recertify`, its certificate is signed with key 2 too (key 1 certifies nothing
    /// under version 2).
    fn restart_with_key_2(&mut self, recertify: bool) {
        self.wco_proc.take().unwrap().stop();
        self.rekey(recertify);
        self.wco_proc = Some(Proc::start_logged(&self.wco, &self.tmp.path().join("wco-key2.log")));
    }

    /// Like [`Rollover::restart_with_key_2`], WCO's node stopped meanwhile for a backlog:
    /// `count` entries signed with key 2 from position 15, stored as an import would.
    fn restart_with_key_2_and_backlog(&mut self, count: usize) {
        self.wco_proc.take().unwrap().stop();
        self.rekey(false);
        {
            let node = config::open(&self.wco.dir).unwrap();
            let prev = node.store.feed_entry(&org("WCO"), Seq(14)).unwrap().expect("WCO holds 14");
            let drafts: Vec<_> = (0..count).map(|i| common::opinion(10_000 + i, "8806.22")).collect();
            let docs = sign_feed(&drafts, &org("WCO"), &key(2), &node.network_id, Seq(15), prev);
            let ingestor =
                Ingestor { store: &node.store, network_id: node.network_id, keyring: &node.keyring, sync: true };
            for batch in docs.chunks(1000) {
                assert!(ingestor.ingest(batch.to_vec()).unwrap().iter().all(|r| r.is_ok()), "the backlog is stored");
            }
        }
        self.wco_proc = Some(Proc::start_logged(&self.wco, &self.tmp.path().join("wco-key2.log")));
    }

    fn rekey(&self, recertify: bool) {
        std::fs::write(self.wco.dir.join("keys/signing.key"), hex::encode(key(2).to_bytes())).unwrap();
        if recertify {
            certify(&self.wco, &self.genesis, ("WCO", 2));
        }
        set_bootstrap(&self.wco, std::slice::from_ref(&self.fr.p2p));
    }

    /// WCO publishes `count` more opinions, `pause` apart; its head after.
    fn publish(&self, count: usize, pause: Duration) -> u64 {
        let from = seq(&self.wco, "WCO") as usize;
        for i in from..from + count {
            assert!(publish_one(&self.wco, 100 + i).is_some(), "WCO publishes its entry {}", i + 1);
            std::thread::sleep(pause);
        }
        seq(&self.wco, "WCO")
    }

    /// FR must hold WCO's feed, the same entries, with no lag, within 30 s.
    fn fr_follows(&self, what: &str) {
        let want = head(&self.wco, "WCO");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && !(head(&self.fr, "WCO") == want && lag(&self.fr, "WCO") == Some(0)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let (got, fr_lag) = (head(&self.fr, "WCO"), lag(&self.fr, "WCO"));
        if std::env::var_os("ENTREPOT_TEST_LOG").is_some() {
            for entry in std::fs::read_dir(self.tmp.path()).unwrap().flatten() {
                if entry.path().extension().is_some_and(|e| e == "log") {
                    println!("{}:\n{}", entry.path().display(), std::fs::read_to_string(entry.path()).unwrap());
                }
            }
        }
        let log = self.tmp.path().join("fr.log");
        let noted: Vec<String> =
            ["banned", "penalized", "disconnecting"].iter().flat_map(|w| log_lines(&log, w)).collect();
        assert!(
            got == want && fr_lag == Some(0),
            "{what}: 30 s on, FR holds WCO {} (WCO: {}; same head: {}), lag {fr_lag:?}, charter version {}, \
             peers {:?} (WCO is {}); FR's log: {noted:#?}",
            got.0,
            want.0,
            got.1 == want.1,
            charter_version(&self.fr),
            peers(&self.fr),
            self.wco.peer_id,
        );
    }
}

/// WCO publishes opinions with key 1 (and, from version 2, with key 2 from position 15) and
/// also holds key 8; FR replicates.
fn rollover_genesis() -> SignedCharter {
    sign(
        &genesis(
            FAR,
            vec![
                member("WCO", vec![grant(&key(1), 1, None), grant(&key(8), 1, None)], &[OPINION]),
                member("FR", vec![grant(&key(3), 1, None)], &[RULING]),
            ],
        ),
        &[100, 101],
    )
}

/// Version 2 revokes WCO's key 1 from position 15 and gives it key 2 from there.
fn rollover_version(g: &SignedCharter) -> SignedCharter {
    let mut c = next_version(g);
    let wco = c.organizations.iter_mut().find(|m| m.id.as_str() == "WCO").unwrap();
    wco.keys[0].revoked_at_seq = Some(Seq(15));
    wco.keys.push(grant(&key(2), 15, None));
    sign(&c, &[100, 101])
}

/// Version 2 revokes key 1 from 15: WCO's node cuts its feed to 14, and FR (which drops
/// WCO's node, whose certificate key 1 signed) cuts its copy too. WCO's operator certifies the
/// node with key 2 and restarts it right away (it dials FR); WCO publishes 15–22 with key 2,
/// and 23–30 a little later. FR follows the feed to 30, the same entries, with no lag.
#[test]
fn a_replica_whose_only_peer_rolls_over_to_a_new_key_follows_its_feed_past_the_cut() {
    let mut r = Rollover::start(1);
    post_charter(&r.wco, &rollover_version(&r.genesis));
    wait_for("WCO cuts its feed to 14", Duration::from_secs(10), || seq(&r.wco, "WCO") == 14);
    // The operator acts at once: the node is restarted while FR's answer to version 2 (it
    // turns away WCO's node, certified with key 1) is fresh.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(charter_version(&r.fr) == 2 && seq(&r.fr, "WCO") == 14) {
        assert!(Instant::now() < deadline, "FR did not apply version 2 within 20 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let applied = Instant::now();
    r.restart_with_key_2(true);
    println!("rollover: WCO's node restarted with key 2 {:.0?} after FR applied version 2", applied.elapsed());
    assert_eq!(r.publish(8, Duration::ZERO), 22);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(r.publish(8, Duration::ZERO), 30);
    r.fr_follows("after WCO's restart with key 2");
}

/// Entries WCO signs with key 2 while FR is paused: more than the ranges FR asks one peer
/// for at once (6 of 1,024) cover.
const BACKLOG: usize = 6_200;

/// The same rollover while FR is paused (SIGSTOP) from before version 2 reaches WCO until
/// WCO, restarted with key 2, holds a backlog of 6,200 entries signed with it. WCO's node is
/// certified with key 8, which version 2 keeps, so FR admits it again at once under version 1:
/// it asks for the backlog in parallel ranges and is gossiped the 40 entries WCO publishes as
/// it resumes, all signed with key 2, before version 2 reaches it and cuts its copy to 14. FR
/// must follow the whole feed with no lag, without a restart.
#[test]
fn a_replica_paused_through_its_only_peer_s_key_rollover_follows_the_new_key_when_it_resumes() {
    let mut r = Rollover::start(8);
    let paused_at = Instant::now();
    r.fr_proc.signal("STOP");
    post_charter(&r.wco, &rollover_version(&r.genesis));
    wait_for("WCO cuts its feed to 14", Duration::from_secs(10), || seq(&r.wco, "WCO") == 14);
    r.restart_with_key_2_and_backlog(BACKLOG);
    std::thread::sleep((paused_at + Duration::from_secs(3)).saturating_duration_since(Instant::now()));
    r.fr_proc.signal("CONT");
    let head = r.publish(40, Duration::ZERO);
    assert_eq!(head, 14 + BACKLOG as u64 + 40);
    r.fr_follows("after FR resumed");
}

/// Five nodes: WCO publishing, replicas FR, US and DE (DE reaches the others through FR and
/// US), and NL, a member version 2 admits. Version 2 is given to WCO while DE is paused for
/// 3 s; NL's node starts (it holds version 2 already) and publishes 30 opinions at full
/// speed, which gossip carries hop by hop, so DE meets NL's documents before the version
/// that makes NL a member. No node may disconnect (or ban) an honest peer it had, and every
/// node must converge on NL's 30 and WCO's 10 documents.
#[test]
fn a_new_member_publishing_while_its_charter_version_spreads_costs_no_node_an_honest_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let g = sign(
        &genesis(
            FAR,
            vec![
                member("WCO", vec![grant(&key(1), 1, None)], &[OPINION]),
                member("FR", vec![grant(&key(3), 1, None)], &[RULING]),
                member("US", vec![grant(&key(4), 1, None)], &[RULING]),
                member("DE", vec![grant(&key(5), 1, None)], &[RULING]),
            ],
        ),
        &[100, 101],
    );
    // Version 2 admits the Netherlands, publishing opinions with key 7.
    let v2 = {
        let mut c = next_version(&g);
        c.organizations.push(member("NL", vec![grant(&key(7), 1, None)], &[OPINION]));
        sign(&c, &[100, 101])
    };
    let wco = charter_node(tmp.path(), &g, "wco", Some(("WCO", 1)), ("WCO", 1));
    let fr = charter_node(tmp.path(), &g, "fr", None, ("FR", 3));
    let us = charter_node(tmp.path(), &g, "us", None, ("US", 4));
    let de = charter_node(tmp.path(), &g, "de", None, ("DE", 5));
    let nl = charter_node(tmp.path(), &g, "nl", Some(("NL", 7)), ("NL", 7));
    // NL's operator holds version 2 already (NL is certified under it).
    std::fs::write(nl.dir.join("charter/v000002.charter"), encode(&v2)).unwrap();
    set_bootstrap(&fr, std::slice::from_ref(&wco.p2p));
    set_bootstrap(&us, &[wco.p2p.clone(), fr.p2p.clone()]);
    set_bootstrap(&de, &[fr.p2p.clone(), us.p2p.clone()]);
    set_bootstrap(&nl, std::slice::from_ref(&wco.p2p));
    for n in [&wco, &fr, &us, &de, &nl] {
        set_discovery(n, false);
    }
    let names = ["WCO", "FR", "US", "DE", "NL"];
    let all = [&wco, &fr, &us, &de, &nl];
    let log = |i: usize| tmp.path().join(format!("{}.log", names[i]));

    let wco_proc = Proc::start_logged(&wco, &log(0));
    for i in 0..10 {
        assert!(publish_one(&wco, i).is_some());
    }
    let _fr = Proc::start_logged(&fr, &log(1));
    let _us = Proc::start_logged(&us, &log(2));
    let de_proc = Proc::start_logged(&de, &log(3));
    let replicas_started = Instant::now();
    wait_for("every replica holds WCO's 10 opinions", Duration::from_secs(30), || {
        [&fr, &us, &de].iter().all(|n| seq(n, "WCO") == 10)
    });
    wait_for(
        "the network settles: every node has the peers it dialed or was dialed by",
        Duration::from_secs(20),
        || {
            let has =
                |n: &NodeDir, want: &[&NodeDir]| peers(n).is_some_and(|p| want.iter().all(|w| p.contains(&w.peer_id)));
            has(&wco, &[&fr, &us])
                && has(&fr, &[&wco, &us, &de])
                && has(&us, &[&wco, &fr, &de])
                && has(&de, &[&fr, &us])
        },
    );
    // Gossipsub forms its meshes from its first heartbeat, 5 s after a node starts: from then
    // on documents are forwarded hop by hop, as on any network that has been up a while.
    std::thread::sleep((replicas_started + Duration::from_secs(7)).saturating_duration_since(Instant::now()));
    let baseline: Vec<BTreeSet<String>> = all[..4].iter().map(|n| peers(n).unwrap()).collect();
    let name_of = |peer: &str| all.iter().position(|n| n.peer_id == peer).map_or(peer.to_owned(), |i| names[i].into());

    // DE is late: paused while version 2 reaches WCO and NL publishes 30 opinions at full speed.
    let paused_at = Instant::now();
    de_proc.signal("STOP");
    post_charter(&wco, &v2);
    let _nl = Proc::start_logged(&nl, &log(4));
    wait_for("WCO admits NL's node under version 2", Duration::from_secs(10), || {
        peers(&wco).is_some_and(|p| p.contains(&nl.peer_id))
    });
    for i in 0..30 {
        assert!(publish_one(&nl, 100 + i).is_some(), "NL publishes {i}");
    }
    std::thread::sleep((paused_at + Duration::from_secs(3)).saturating_duration_since(Instant::now()));
    de_proc.signal("CONT");

    // Watch every node's honest peers while the network converges.
    let mut lost: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let converged = |n: &NodeDir| seq(n, "NL") == 30 && seq(n, "WCO") == 10;
    let mut settled_at = None;
    while Instant::now() < deadline && settled_at.is_none_or(|t: Instant| t.elapsed() < Duration::from_secs(3)) {
        for (i, n) in all[..4].iter().enumerate() {
            let Some(now) = peers(n) else { continue };
            for gone in baseline[i].difference(&now) {
                let what = format!("{} lost {}", names[i], name_of(gone));
                if !lost.contains(&what) {
                    println!("new member: {what} at +{:.1?}", paused_at.elapsed());
                    lost.push(what);
                }
            }
        }
        if settled_at.is_none() && all.iter().all(|n| converged(n)) {
            settled_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let report: Vec<String> = all
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "{}: NL {} WCO {}, charter v{}, gossip in {}, refused unknown_publisher {}, bans logged {}",
                names[i],
                seq(n, "NL"),
                seq(n, "WCO"),
                charter_version(n),
                metric(n, "entrepot_gossip_messages", "direction=\"in\""),
                refused(n, "unknown_publisher"),
                log_lines(&log(i), "peer banned").len()
            )
        })
        .collect();
    println!("new member: {report:#?}");
    assert!(lost.is_empty(), "honest peers were disconnected: {lost:?}; {report:#?}");
    assert!(settled_at.is_some(), "the nodes did not converge on NL 30 and WCO 10 within 30 s: {report:#?}");
    drop(wco_proc);
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_node_whose_ingest_thread_dies_exits_or_reports_not_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let hosts: Vec<_> = (0..2).map(|_| ("127.0.0.1".to_string(), free_port(), free_port())).collect();
    let nodes = init_nodes(tmp.path(), NETWORK, &["WCO"], &["R1"], &hosts);
    let wco = nodes[0].clone();
    // R1's directory lives on a 48 MiB tmpfs, filled once R1 has synced.
    let disk = tmp.path().join("r1-disk");
    std::fs::create_dir(&disk).unwrap();
    let out = Command::new("mount").args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"]).arg(&disk).output().unwrap();
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        assert!(std::env::var_os("CI").is_none(), "CI is set but a tmpfs cannot be mounted: {why}");
        println!("SKIP silent-death test: cannot mount a tmpfs ({why}); run as root");
        return;
    }
    let _mount = Mount(disk.clone());
    let cp = Command::new("cp").arg("-a").arg(nodes[1].dir.join(".")).arg(&disk).status().unwrap();
    assert!(cp.success());
    let r1 = NodeDir { dir: disk.clone(), ..nodes[1].clone() };
    set_bootstrap(&r1, std::slice::from_ref(&wco.p2p));

    let _wco = Proc::start(&wco, &[]);
    for i in 0..20 {
        assert!(publish_one(&wco, i).is_some());
    }
    let r1_log = tmp.path().join("r1.log");
    let mut r1_proc = Proc::start_logged(&r1, &r1_log);
    wait_for("R1 replicates WCO's 20 opinions", Duration::from_secs(30), || seq(&r1, "WCO") == 20);

    let mut filler = std::fs::File::create(disk.join("filler")).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    while std::io::Write::write(&mut filler, &chunk).is_ok_and(|n| n > 0) {}

    // WCO publishes on and R1 is served the new documents, which it cannot store.
    let started = Instant::now();
    let mut died_at: Option<Instant> = None;
    let mut r1_seen = (seq(&r1, "WCO"), Instant::now());
    let mut n = 20;
    let outcome = loop {
        assert!(publish_one(&wco, n).is_some());
        n += 1;
        if let Ok(Some(status)) = r1_proc.child.try_wait() {
            assert!(!status.success(), "R1 exited with success after its ingest thread died");
            break format!("exited with {status}");
        }
        let ready = try_request(r1.http, "GET", "/readyz", None, b"", Duration::from_secs(2)).map(|r| r.0);
        if ready == Some(503) {
            break "answers 503 on /readyz".to_owned();
        }
        let r1_now = seq(&r1, "WCO");
        if r1_now != r1_seen.0 {
            r1_seen = (r1_now, Instant::now());
        }
        if died_at.is_none() {
            if !log_lines(&r1_log, "store failure").is_empty() {
                died_at = Some(Instant::now());
            } else if r1_seen.1.elapsed() > Duration::from_secs(10) {
                // No log line, but R1 stopped storing what it is served.
                died_at = Some(r1_seen.1);
            }
        }
        if let Some(t) = died_at {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "R1 still answers {ready:?} on /readyz 10 s after its ingest thread died (it holds WCO {r1_now}, WCO is at {n}); \
                 R1's log: {:#?}",
                log_lines(&r1_log, "ERROR")
            );
        }
        assert!(started.elapsed() < Duration::from_secs(45), "R1 never failed to store on the full disk");
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("silent death: R1 {outcome} {:.1?} after the disk filled", started.elapsed());
    drop(r1_proc);
}

#[test]
fn a_replica_reconnects_by_itself_when_its_only_bootstrap_peer_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let hosts: Vec<_> = (0..2).map(|_| ("127.0.0.1".to_string(), free_port(), free_port())).collect();
    let nodes = init_nodes(tmp.path(), NETWORK, &["WCO"], &["R1"], &hosts);
    let (wco, r1) = (&nodes[0], &nodes[1]);
    set_bootstrap(r1, std::slice::from_ref(&wco.p2p));
    let wco_proc = Proc::start(wco, &[]);
    for i in 0..5 {
        assert!(publish_one(wco, i).is_some());
    }
    let _r1 = Proc::start(r1, &[]);
    wait_for("R1 replicates WCO's 5 opinions", Duration::from_secs(30), || seq(r1, "WCO") == 5);

    // WCO goes away and comes back on the same address with the same identity.
    assert!(wco_proc.stop(), "WCO stops cleanly");
    wait_for("R1 notices WCO is gone", Duration::from_secs(20), || peers(r1).is_some_and(|p| p.is_empty()));
    // Down for a few seconds, as for an upgrade.
    std::thread::sleep(Duration::from_secs(5));
    let _wco = Proc::start(wco, &[]);
    let back = Instant::now();
    for i in 5..10 {
        assert!(publish_one(wco, i).is_some());
    }
    let deadline = back + Duration::from_secs(30);
    while Instant::now() < deadline && !(seq(r1, "WCO") == 10 && peers(r1).is_some_and(|p| p.contains(&wco.peer_id))) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        peers(r1).is_some_and(|p| p.contains(&wco.peer_id)) && seq(r1, "WCO") == 10,
        "30 s after its only bootstrap peer came back, R1 has peers {:?} and holds WCO {} of 10",
        peers(r1),
        seq(r1, "WCO")
    );
}

#[test]
fn with_discovery_off_a_node_connects_to_its_bootstrap_peers_only() {
    let tmp = tempfile::tempdir().unwrap();
    let hosts: Vec<_> = (0..3).map(|_| ("127.0.0.1".to_string(), free_port(), free_port())).collect();
    let nodes = init_nodes(tmp.path(), NETWORK, &["WCO"], &["A", "C"], &hosts);
    let (wco, a, c) = (&nodes[0], &nodes[1], &nodes[2]);
    // A and C each know only WCO, and have discovery off: a fixed topology, A–WCO–C.
    for n in [a, c] {
        set_bootstrap(n, std::slice::from_ref(&wco.p2p));
        set_discovery(n, false);
    }
    let _wco = Proc::start(wco, &[]);
    let _c = Proc::start(c, &[]);
    wait_for("C connects to WCO", Duration::from_secs(20), || peers(c).is_some_and(|p| p.contains(&wco.peer_id)));
    let _a = Proc::start(a, &[]);
    wait_for("A connects to WCO", Duration::from_secs(20), || peers(a).is_some_and(|p| p.contains(&wco.peer_id)));
    // WCO tells A of C (identify, Kademlia); A must not dial it, nor C dial A.
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        for (n, name) in [(a, "A"), (c, "C")] {
            let p = peers(n).unwrap_or_default();
            let strangers: Vec<_> = p.iter().filter(|p| **p != wco.peer_id).collect();
            assert!(strangers.is_empty(), "{name}, with discovery off and only WCO to bootstrap from, is connected to {strangers:?} (A: {}, C: {})", a.peer_id, c.peer_id);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
