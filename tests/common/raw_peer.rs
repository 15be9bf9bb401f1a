//! A raw libp2p peer driven by the test through entrepot's own swarm task (tests/permissioned.rs):
//! it answers the node's requests with whatever the test says, asks what the test asks, and
//! records its connections.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tokio::sync::{mpsc, watch};

use entrepot::net::{self, NetCommand, NetEvent, RequestFailure};
use entrepot::sync::wire::{Request, Response};

/// A peer driven by the test through entrepot's own swarm task, answering requests with
/// `answer` and counting gossip it receives.
pub struct RawPeer {
    commands: mpsc::Sender<NetCommand>,
    responses: Arc<Mutex<BTreeMap<u64, Result<Response, RequestFailure>>>>,
    pub gossip: Arc<AtomicUsize>,
    connected: Arc<Mutex<Vec<PeerId>>>,
    /// Every connection change, in order: the peer, connected (true) or not, and when.
    changes: Arc<Mutex<Vec<(PeerId, bool, Instant)>>>,
    _shutdown: watch::Sender<bool>,
    next_tag: u64,
}

impl RawPeer {
    pub async fn start(
        keypair: libp2p::identity::Keypair,
        network_id: [u8; 32],
        dial: &str,
        answer: impl Fn(Request) -> Response + Send + Sync + 'static,
    ) -> RawPeer {
        let codec = net::codec::SyncCodec::default();
        let swarm =
            net::build_swarm(keypair, &network_id, &["/ip4/127.0.0.1/tcp/0".into()], false, false, false, codec)
                .unwrap();
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, mut ev_rx) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let target = net::parse_bootstrap(dial).unwrap();
        let options = net::RunOptions {
            bootstrap: vec![target],
            discovery: false,
            permissioned: false,
            network_id,
            connections_target: 24,
        };
        tokio::spawn(net::run_swarm(swarm, options, cmd_rx, ev_tx, shutdown_rx));
        let responses = Arc::new(Mutex::new(BTreeMap::new()));
        let gossip = Arc::new(AtomicUsize::new(0));
        let connected = Arc::new(Mutex::new(Vec::new()));
        let changes = Arc::new(Mutex::new(Vec::new()));
        let (r, g, c, commands) = (responses.clone(), gossip.clone(), connected.clone(), cmd_tx.clone());
        let changed = changes.clone();
        tokio::spawn(async move {
            while let Some(ev) = ev_rx.recv().await {
                match ev {
                    NetEvent::InboundRequest { request, tag, .. } => {
                        let _ = commands.send(NetCommand::Respond { tag, response: answer(request) }).await;
                    }
                    NetEvent::Response { tag, result, .. } => {
                        r.lock().unwrap().insert(tag, result);
                    }
                    NetEvent::Gossip { .. } => {
                        g.fetch_add(1, Ordering::SeqCst);
                    }
                    NetEvent::PeerConnected { peer, .. } => {
                        changed.lock().unwrap().push((peer, true, Instant::now()));
                        c.lock().unwrap().push(peer)
                    }
                    NetEvent::PeerDisconnected { peer } => {
                        changed.lock().unwrap().push((peer, false, Instant::now()));
                        c.lock().unwrap().retain(|p| *p != peer)
                    }
                    _ => {}
                }
            }
        });
        RawPeer { commands: cmd_tx, responses, gossip, connected, changes, _shutdown: shutdown, next_tag: 0 }
    }

    pub async fn request(&mut self, peer: PeerId, request: Request) -> Result<Response, RequestFailure> {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.commands.send(NetCommand::Request { peer, request, tag }).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(r) = self.responses.lock().unwrap().remove(&tag) {
                return r;
            }
            assert!(Instant::now() < deadline, "no answer to request {tag}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.connected.lock().unwrap().contains(peer)
    }

    /// When the first connection with `peer` came up and when it went down.
    pub fn first_connection(&self, peer: &PeerId) -> (Option<Instant>, Option<Instant>) {
        let changes = self.changes.lock().unwrap();
        let at = |up: bool| changes.iter().find(|(p, u, _)| p == peer && *u == up).map(|(_, _, t)| *t);
        (at(true), at(false))
    }
}
