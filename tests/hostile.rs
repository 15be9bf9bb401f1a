//! A hostile libp2p peer, driven by the test, against a real `entrepot run` node: bad
//! signatures, weak keys, wrong sequence numbers and previous ids, forks, unknown and
//! schema-invalid types, unauthorized publishers, garbage, oversized and truncated frames,
//! huge range requests, request floods and slow reads. Each attack comes from a fresh peer
//! identity so that one ban does not hide the next attack.
//!
//! Checks: the node stores nothing invalid (its feeds hold only the honest documents and the
//! first of the forked pair), the attacker is disconnected and refused (banned) where the
//! attack is its fault, and an honest replica syncs N documents with and without attackers
//! running (both times printed; `ENTREPOT_HOSTILE_DOCS` scales N, default 400).

mod common;
#[path = "common/procs.rs"]
mod procs;

use std::io;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identity, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};

use common::{key, opinion};
use entrepot::authority::Organization;
use entrepot::bench::sign_feed;
use entrepot::config::network_id;
use entrepot::document::{decode, encode_and_sign, DocumentId, OrgId, Seq};
use entrepot::sync::wire::{self, Request, Response, SYNC_PROTOCOL};
use procs::*;

const NETWORK: &str = "hostile-test";

/// A codec that writes whatever bytes the test gives (framing included) and reads a response
/// frame, optionally slowly: the hostile side of the sync protocol (`SYNC_PROTOCOL`).
#[derive(Clone, Default)]
struct RawCodec {
    slow_read: bool,
}

#[async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<Vec<u8>> {
        Err(io::Error::other("the attacker serves nothing"))
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > wire::MESSAGE_MAX_BYTES {
            return Err(io::Error::other(format!("node sent a {len}-byte frame")));
        }
        let mut buf = vec![0u8; len];
        if self.slow_read {
            // A slow reader: 1 KiB every 50 ms.
            let mut got = 0;
            while got < len {
                let n = (len - got).min(1024);
                io.read_exact(&mut buf[got..got + n]).await?;
                got += n;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } else {
            io.read_exact(&mut buf).await?;
        }
        Ok(buf)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()> {
        Err(io::Error::other("the attacker serves nothing"))
    }
}

#[derive(NetworkBehaviour)]
struct Hostile {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<RawCodec>,
}

struct Attacker {
    swarm: Swarm<Hostile>,
    node: PeerId,
    topic: IdentTopic,
    closed: bool,
}

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

impl Attacker {
    async fn connect(addr: &str, node: PeerId, slow_read: bool) -> Attacker {
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity::Keypair::generate_ed25519())
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|key| {
                let config = gossipsub::ConfigBuilder::default()
                    .heartbeat_interval(Duration::from_millis(200))
                    .validation_mode(ValidationMode::Strict)
                    .max_transmit_size(8 * 1024 * 1024)
                    .build()
                    .unwrap();
                Hostile {
                    gossipsub: gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config).unwrap(),
                    sync: request_response::Behaviour::with_codec(
                        RawCodec { slow_read },
                        [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Outbound)],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(60))
                            .with_max_concurrent_streams(1024),
                    ),
                }
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        let topic = entrepot::net::gossip_topic(&network_id(NETWORK));
        swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        swarm.dial(addr.parse::<Multiaddr>().unwrap()).unwrap();
        let mut a = Attacker { swarm, node, topic, closed: false };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut connected = false;
        let mut subscribed = false;
        while !(connected && subscribed) {
            let ev = tokio::time::timeout_at(deadline, a.swarm.select_next_some()).await.expect("attacker connects");
            match ev {
                SwarmEvent::ConnectionEstablished { .. } => connected = true,
                SwarmEvent::Behaviour(HostileEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. }))
                    if peer_id == node =>
                {
                    subscribed = true
                }
                _ => {}
            }
        }
        a
    }

    /// Sends raw framed bytes; the node's answer, or why there was none.
    async fn send_raw(&mut self, bytes: Vec<u8>, within: Duration) -> Result<Vec<u8>, String> {
        let id = self.swarm.behaviour_mut().sync.send_request(&self.node, bytes);
        self.wait_for(id, within).await
    }

    async fn wait_for(&mut self, id: OutboundRequestId, within: Duration) -> Result<Vec<u8>, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await else {
                return Err("timeout".into());
            };
            match ev {
                SwarmEvent::Behaviour(HostileEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) if request_id == id => return Ok(response),
                SwarmEvent::Behaviour(HostileEvent::Sync(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                })) if request_id == id => return Err(error.to_string()),
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => self.closed = true,
                _ => {}
            }
        }
    }

    async fn gossip(&mut self, data: Vec<u8>) {
        let _ = self.swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), data);
    }

    /// Drives the swarm for `d`, noting a disconnection.
    async fn run_for(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
            if let SwarmEvent::ConnectionClosed { num_established: 0, .. } = ev {
                self.closed = true;
            }
        }
    }

    /// Banned: disconnected, and a new dial does not give a lasting connection.
    async fn is_banned(&mut self, addr: &str) -> bool {
        self.run_for(Duration::from_millis(1000)).await;
        if !self.closed {
            return false;
        }
        let _ = self.swarm.dial(addr.parse::<Multiaddr>().unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        let mut up = false;
        while let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
            match ev {
                SwarmEvent::ConnectionEstablished { .. } => up = true,
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => up = false,
                SwarmEvent::OutgoingConnectionError { .. } => break,
                _ => {}
            }
        }
        !up
    }
}

fn wco_head(node: &NodeDir) -> u64 {
    feeds(node.http)
        .and_then(|f| {
            f.as_array().and_then(|a| a.iter().find(|f| f["publisher"] == "WCO").map(|f| f["seq"].as_u64().unwrap()))
        })
        .unwrap_or(0)
}

fn wait_synced(node: &NodeDir, n: u64, within: Duration) -> Duration {
    let started = Instant::now();
    while wco_head(node) < n {
        assert!(started.elapsed() < within, "honest replica did not sync {n} documents within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// Replaces the public key in an envelope (it follows magic, version, network, type, schema
/// version and publisher).
fn with_key(env: &[u8], key: [u8; 32]) -> Vec<u8> {
    let mut b = env.to_vec();
    let t = 8 + 1 + 32;
    let p = t + 1 + b[t] as usize + 2;
    let k = p + 1 + b[p] as usize;
    b[k..k + 32].copy_from_slice(&key);
    b
}

#[test]
fn hostile_peers_store_nothing_get_banned_and_do_not_starve_an_honest_replica() {
    let n_docs: u64 = std::env::var("ENTREPOT_HOSTILE_DOCS").ok().and_then(|s| s.parse().ok()).unwrap_or(400);
    let tmp = tempfile::tempdir().unwrap();
    let hosts: Vec<_> = (0..3).map(|_| ("127.0.0.1".to_string(), free_port(), free_port())).collect();
    let nodes = init_nodes(tmp.path(), NETWORK, &["WCO"], &["R1", "R2"], &hosts);
    // EVIL is a trusted member whose key the attacker holds (for forks and feed-position abuse).
    let evil_key = key(9);
    for n in &nodes {
        let mut node = entrepot::config::open(&n.dir).unwrap();
        let keys = vec![hex::encode(evil_key.verifying_key().to_bytes())];
        node.add_organization(Organization { id: OrgId::new("EVIL").unwrap(), name: "EVIL".into(), keys, types: None })
            .unwrap();
    }
    let target = &nodes[0];
    let node_peer: PeerId = target.peer_id.parse().unwrap();
    let node_proc = Proc::start(target, &[]);
    for i in 0..n_docs as usize {
        assert!(publish_one(target, i).is_some(), "honest publish {i}");
    }

    // Baseline: an honest replica syncs N documents with no attacker around.
    set_bootstrap(&nodes[1], std::slice::from_ref(&target.p2p));
    set_bootstrap(&nodes[2], std::slice::from_ref(&target.p2p));
    let r1 = Proc::start(&nodes[1], &[]);
    let baseline = wait_synced(&nodes[1], n_docs, Duration::from_secs(60));
    drop(r1);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let net = network_id(NETWORK);
    let addr = target.p2p.clone();
    let evil = OrgId::new("EVIL").unwrap();
    let docs: Vec<_> = (0..4).map(|i| opinion(1000 + i, "8549.11")).collect();
    let good = sign_feed(&docs, &evil, &evil_key, &net, Seq::FIRST, DocumentId::ZERO);
    let header = decode(&good[0]).unwrap().header;
    let resign = |h: &entrepot::document::Header, body: &[u8]| encode_and_sign(h, body, &evil_key).unwrap().bytes;

    // Invalid documents by gossip, one attacker per class; each is sent 4 times (the node
    // rejects and penalizes a peer for each invalid gossip).
    // Four distinct payloads per class, so gossipsub's duplicate cache passes every one.
    let four = |f: &dyn Fn(usize) -> Vec<u8>| (0..4).map(f).collect::<Vec<_>>();
    let mut unknown = header.clone();
    unknown.doc_type = entrepot::document::TypeName::new("made.up").unwrap();
    let small_order: [[u8; 32]; 2] = [[0u8; 32], {
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    }];
    let unauthorized = sign_feed(&docs, &OrgId::new("XX").unwrap(), &key(7), &net, Seq::FIRST, DocumentId::ZERO);
    let other_net: Vec<_> = (0..4)
        .map(|i| {
            sign_feed(&docs[i..i + 1], &evil, &evil_key, &network_id("other"), Seq::FIRST, DocumentId::ZERO).remove(0)
        })
        .collect();
    let classes: Vec<(&str, Vec<Vec<u8>>, bool)> = vec![
        (
            "bad signature",
            four(&|i| {
                let mut b = good[0].clone();
                let at = b.len() - 1 - i;
                b[at] ^= 1;
                b
            }),
            true,
        ),
        (
            "weak key",
            four(&|i| {
                let mut b = with_key(&good[0], small_order[i % 2]);
                let at = b.len() - 1 - i;
                b[at] ^= 1;
                b
            }),
            true,
        ),
        ("unknown type", four(&|i| resign(&unknown, format!("{{\"n\":{i}}}").as_bytes())), true),
        ("schema-invalid body", four(&|i| resign(&header, format!("{{\"title\":{{\"en\":{i}}}}}").as_bytes())), true),
        ("unauthorized publisher", unauthorized.clone(), true),
        ("wrong network", other_net, true),
        ("garbage gossip", four(&|i| vec![0xf0 + i as u8; 64 + i]), true),
        ("truncated envelope", four(&|i| good[0][..good[0].len() / 2 + i].to_vec()), true),
        // Feed-position errors are not provably the sender's fault (it may be ahead of us):
        // the node ignores them without a penalty; they must simply not be stored.
        (
            "wrong seq",
            vec![sign_feed(&docs[..1], &evil, &evil_key, &net, Seq(5), DocumentId([3; 32])).remove(0)],
            false,
        ),
        (
            "wrong prev",
            vec![sign_feed(&docs[1..2], &evil, &evil_key, &net, Seq(2), DocumentId([7; 32])).remove(0)],
            false,
        ),
    ];
    let mut report = Vec::new();
    rt.block_on(async {
        for (name, payloads, expect_ban) in &classes {
            let mut a = Attacker::connect(&addr, node_peer, false).await;
            for p in payloads {
                a.gossip(p.clone()).await;
                a.run_for(Duration::from_millis(300)).await;
            }
            let banned = a.is_banned(&addr).await;
            report.push(format!("{name}: banned={banned}"));
            if *expect_ban {
                assert!(banned, "{name}: the attacker was not disconnected and refused");
            }
        }

        // A fork: two different entries at EVIL #1, both validly signed.
        let fork_b = sign_feed(&docs[1..2], &evil, &evil_key, &net, Seq::FIRST, DocumentId::ZERO);
        let mut a = Attacker::connect(&addr, node_peer, false).await;
        a.gossip(good[0].clone()).await;
        a.run_for(Duration::from_millis(500)).await;
        a.gossip(fork_b[0].clone()).await;
        a.run_for(Duration::from_millis(800)).await;

        // Oversized gossip (beyond the 1 MiB document bound): dropped by gossipsub's framing.
        let mut a = Attacker::connect(&addr, node_peer, false).await;
        a.gossip(vec![0x42; 2 * 1024 * 1024]).await;
        a.run_for(Duration::from_millis(500)).await;
        report.push(format!("oversized gossip (2 MiB): attacker still connected={}", !a.closed));

        // Sync protocol abuse: garbage, oversized length prefix, truncated frames.
        let mut a = Attacker::connect(&addr, node_peer, false).await;
        let r = a.send_raw(b"\x00\x00\x00\x05hello".to_vec(), Duration::from_secs(10)).await;
        report.push(format!("garbage sync frame: {}", if r.is_err() { "stream failed" } else { "answered" }));
        assert!(r.is_err(), "a garbage request got an answer");
        let r = a.send_raw(u32::MAX.to_be_bytes().to_vec(), Duration::from_secs(10)).await;
        assert!(r.is_err(), "a 4 GiB length prefix got an answer");
        let range = wire::encode_request(&Request::Range {
            org: OrgId::new("WCO").unwrap(),
            from: Seq::FIRST,
            count_max: 10,
            bytes_max: 1 << 20,
        });
        let mut cut = frame(&range);
        cut.truncate(cut.len() - 3);
        let r = a.send_raw(cut, Duration::from_secs(10)).await;
        assert!(r.is_err(), "a truncated request got an answer");
        // Malformed requests cost penalty points (a fix made with this test: they used to be
        // dropped silently, so a peer could send garbage forever).
        for i in 0..3u8 {
            let _ = a.send_raw(frame(&[0xee, i, i]), Duration::from_secs(5)).await;
        }
        let banned = a.is_banned(&addr).await;
        report.push(format!("garbage / oversized / truncated sync frames: banned={banned}"));
        assert!(banned, "a peer sending malformed sync frames was not banned");

        // Huge range request: the answer is clamped to the range bounds.
        let huge = wire::encode_request(&Request::Range {
            org: OrgId::new("WCO").unwrap(),
            from: Seq::FIRST,
            count_max: u32::MAX,
            bytes_max: u32::MAX,
        });
        let mut a = Attacker::connect(&addr, node_peer, false).await;
        let r = a.send_raw(frame(&huge), Duration::from_secs(20)).await.expect("a huge range is served, clamped");
        let Ok(Response::Range { docs }) = wire::decode_response(&r) else { panic!("range answer") };
        let bytes: usize = docs.iter().map(Vec::len).sum();
        assert!(docs.len() <= wire::RANGE_COUNT_MAX as usize);
        assert!(bytes <= wire::RANGE_BYTES_MAX as usize + entrepot::document::DOCUMENT_SIZE_MAX_BYTES);
        report.push(format!("huge range (u32::MAX docs and bytes): {} docs, {bytes} bytes served", docs.len()));

        // Request flood: 200 range requests at once from one peer.
        let mut a = Attacker::connect(&addr, node_peer, false).await;
        let small = frame(&wire::encode_request(&Request::Range {
            org: OrgId::new("WCO").unwrap(),
            from: Seq::FIRST,
            count_max: 1024,
            bytes_max: 4 << 20,
        }));
        for _ in 0..1000 {
            a.swarm.behaviour_mut().sync.send_request(&node_peer, small.clone());
        }
        // Refusals (and so penalty points) depend on how many requests overlap, which depends
        // on the machine's load: give the flood up to 15 s to earn its ban.
        for _ in 0..30 {
            if a.closed {
                break;
            }
            a.run_for(Duration::from_millis(500)).await;
        }
        let banned = a.is_banned(&addr).await;
        report.push(format!("request flood (1000 at once): banned={banned}"));
        assert!(banned, "a flooding peer was not banned");
    });
    rt.block_on(async {
        // Hold the node's serving slots with slow readers and keep flooding from fresh
        // identities while an honest replica syncs from scratch.
        let mut slow = Vec::new();
        for _ in 0..3 {
            let mut a = Attacker::connect(&addr, node_peer, true).await;
            let req = frame(&wire::encode_request(&Request::Range {
                org: OrgId::new("WCO").unwrap(),
                from: Seq::FIRST,
                count_max: 1024,
                bytes_max: 4 << 20,
            }));
            for _ in 0..wire_per_peer() {
                a.swarm.behaviour_mut().sync.send_request(&node_peer, req.clone());
            }
            slow.push(a);
        }
        let attack = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while tokio::time::Instant::now() < deadline {
                for a in slow.iter_mut() {
                    a.run_for(Duration::from_millis(100)).await;
                }
            }
        });
        let r2 = Proc::start(&nodes[2], &[]);
        let attacked = tokio::task::spawn_blocking({
            let n = nodes[2].clone();
            move || wait_synced(&n, n_docs, Duration::from_secs(120))
        })
        .await
        .unwrap();
        attack.abort();
        drop(r2);
        println!(
            "hostile: honest replica synced {n_docs} documents in {baseline:.2?} without attackers, {attacked:.2?} with 3 slow readers holding the serving slots"
        );
    });
    for line in &report {
        println!("hostile: {line}");
    }

    // Nothing invalid stored: WCO's honest feed and EVIL's first entry only; the fork recorded.
    let f = feeds(target.http).expect("node still serves HTTP");
    let arr = f.as_array().unwrap();
    assert_eq!(arr.len(), 2, "only WCO and EVIL feeds exist: {f}");
    let evil_feed = arr.iter().find(|x| x["publisher"] == "EVIL").expect("EVIL feed");
    assert_eq!(evil_feed["seq"], 1, "EVIL's feed holds only its first valid entry: {f}");
    assert_eq!(evil_feed["id"], decode(&good[0]).unwrap().id.to_hex());
    assert_eq!(wco_head(target), n_docs);
    let forks = get_json(target.http, "/v1/forks").expect("forks");
    println!("hostile: forks recorded: {forks}");
    assert!(forks.to_string().contains("EVIL"), "the fork is recorded: {forks}");
    assert!(node_proc.stop(), "node stops cleanly after the attacks");
}

/// Requests each slow reader keeps open: the node's per-peer inbound bound.
fn wire_per_peer() -> usize {
    entrepot::net::limits::INBOUND_PER_PEER_MAX
}

/// What the stalling client sends on a stream: framed bytes, then its end (`Send`); or two
/// bytes of a length prefix and then nothing, keeping the stream open (`Stall`), which holds
/// one of the node's per-connection stream slots until the node's request timeout.
#[derive(Clone, Debug)]
enum Raw {
    Send(Vec<u8>),
    Stall,
}

#[derive(Clone, Default)]
struct StallingCodec;

#[async_trait]
impl request_response::Codec for StallingCodec {
    type Protocol = StreamProtocol;
    type Request = Raw;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<Raw> {
        Err(io::Error::other("the client serves nothing"))
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        <RawCodec as request_response::Codec>::read_response(&mut RawCodec::default(), p, io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Raw,
    ) -> io::Result<()> {
        match req {
            Raw::Send(bytes) => {
                io.write_all(&bytes).await?;
                io.close().await
            }
            Raw::Stall => {
                io.write_all(&[0, 0]).await?;
                io.flush().await?;
                futures::future::pending().await
            }
        }
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()> {
        Err(io::Error::other("the client serves nothing"))
    }
}

#[test]
fn requests_over_the_per_connection_stream_limit_fail_at_once_instead_of_hanging() {
    let tmp = tempfile::tempdir().unwrap();
    let hosts = [("127.0.0.1".to_string(), free_port(), free_port())];
    let nodes = init_nodes(tmp.path(), NETWORK, &["WCO"], &[], &hosts);
    let node = &nodes[0];
    let node_peer: PeerId = node.peer_id.parse().unwrap();
    let proc = Proc::start(node, &[]);
    assert!(publish_one(node, 0).is_some());
    let limit = entrepot::net::limits::SYNC_STREAMS_PER_CONNECTION_MAX;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let outcomes = rt.block_on(async {
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity::Keypair::generate_ed25519())
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    StallingCodec,
                    [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Outbound)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(60))
                        .with_max_concurrent_streams(1024),
                )
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        swarm.dial(node.p2p.parse::<Multiaddr>().unwrap()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ev = tokio::time::timeout_at(deadline, swarm.select_next_some()).await.expect("client connects");
            if let SwarmEvent::ConnectionEstablished { .. } = ev {
                break;
            }
        }
        // Every stream slot of the connection held by a request that never completes.
        for _ in 0..limit {
            swarm.behaviour_mut().send_request(&node_peer, Raw::Stall);
        }
        let settle = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::timeout_at(settle, swarm.select_next_some()).await.is_ok() {}

        // Eight more: the node has no slot for them and must say so at once.
        let range = wire::encode_request(&Request::Range {
            org: OrgId::new("WCO").unwrap(),
            from: Seq::FIRST,
            count_max: 10,
            bytes_max: 1 << 20,
        });
        let started = Instant::now();
        let mut pending: Vec<OutboundRequestId> =
            (0..8).map(|_| swarm.behaviour_mut().send_request(&node_peer, Raw::Send(frame(&range)))).collect();
        let mut outcomes = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !pending.is_empty() {
            let Ok(ev) = tokio::time::timeout_at(deadline, swarm.select_next_some()).await else { break };
            let (id, outcome) = match ev {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                }) => (request_id, format!("answered ({} bytes)", response.len())),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure { request_id, error, .. }) => {
                    (request_id, format!("failed: {error}"))
                }
                _ => continue,
            };
            if let Some(i) = pending.iter().position(|p| *p == id) {
                pending.remove(i);
                outcomes.push(format!("{outcome} after {:.2?}", started.elapsed()));
            }
        }
        (outcomes, pending.len(), started.elapsed())
    });
    let (outcomes, unfinished, elapsed) = outcomes;
    for o in &outcomes {
        println!("stream over the limit: {o}");
    }
    assert_eq!(unfinished, 0, "{unfinished} of 8 requests over the stream limit still open after {elapsed:.2?}");
    assert!(elapsed < Duration::from_secs(5), "requests over the stream limit took {elapsed:.2?} to fail");
    assert!(proc.stop(), "node stops cleanly");
}
