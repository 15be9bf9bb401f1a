//! The running node: wires the swarm task (`net`), the sync state machine (`sync`) and the
//! ingest worker to the [`Service`], and serves peers from the store.
//!
//! Tasks, each owned by [`RunningNode`] and stopped by its shutdown: the swarm task (owns
//! libp2p), the engine task (this file: routes events, runs the sync engine, answers peers),
//! and the ingest worker (the single writer of received documents).

mod admission;
mod payloads;
mod serve;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use libp2p::gossipsub::MessageAcceptance;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, watch, Semaphore};

use crate::charter::CertError;
use crate::service::TrustError;
use admission::Admission;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::document::{DocumentId, OrgId, Seq};
use crate::ingest::IngestError;
use crate::net::{self, limits, NetCommand, NetError, NetEvent, RequestFailure};
use crate::service::{PeerInfo, Service};
use crate::store::IngestOutcome;
use crate::sync::engine::{IngestResult, PeerKey};
use crate::sync::wire::{FeedHead, RefusalCode, Request, Response, RANGE_BYTES_MAX};
use crate::sync::{Action, SyncConfig, SyncEngine};
use worker::{Done, Job, Origin, INGEST_JOBS_MAX};

/// A node started by [`start`].
pub struct RunningNode {
    pub peer_id: PeerId,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl RunningNode {
    /// Stops every task and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        // The engine task has ended and dropped the job sender, so the worker finishes its
        // current batch and returns.
        if let Some(worker) = self.worker.take() {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
    }
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Starts the node's networking on an opened service. `dir` is the node directory (for the
/// identity key path in `config`).
pub async fn start(service: Arc<Service>, dir: &std::path::Path, config: &Config) -> Result<RunningNode, NodeError> {
    if !config.replication.types.is_empty() {
        tracing::warn!("[replication] types is not enforced by sync protocol 1; this node replicates every type of the feeds it follows");
    }
    let keypair = net::load_identity(&dir.join(&config.p2p.identity))?;
    let peer_id = keypair.public().to_peer_id();
    let bootstrap =
        config.p2p.bootstrap.iter().map(|b| net::parse_bootstrap(b)).collect::<Result<Vec<_>, NetError>>()?;
    // On a charter network peers are admitted by node certificate (docs/PROTOCOL.md §11).
    let permissioned = service.keyring().charter().is_some();
    let own_cert = match (&service.certificate, permissioned) {
        (Some(cert), true) => {
            if let Err(e) = service.check_certificate(&cert.bytes, &peer_id.to_string()) {
                tracing::warn!(error = %e, code = e.code(), "this node's certificate is not valid; peers will not admit it");
            }
            cert.bytes.clone()
        }
        (None, true) => {
            tracing::warn!(%peer_id, "no [charter] certificate configured: peers will not admit this node (certify it with `entrepot charter certify-node`)");
            Vec::new()
        }
        _ => Vec::new(),
    };
    let codec = net::codec::SyncCodec {
        read: service.counters.sync_bytes_in.clone(),
        written: service.counters.sync_bytes_out.clone(),
    };
    let swarm = net::build_swarm(
        keypair,
        &service.network_id,
        &config.p2p.listen,
        config.p2p.mdns,
        config.p2p.discovery,
        permissioned,
        codec,
    )?;
    let (cmd_tx, cmd_rx) = mpsc::channel(limits::COMMAND_QUEUE);
    let (ev_tx, ev_rx) = mpsc::channel(limits::EVENT_QUEUE);
    let (job_tx, job_rx) = mpsc::channel(INGEST_JOBS_MAX);
    // One more than the jobs the engine lets be outstanding, so the worker never waits on it.
    let (done_tx, done_rx) = mpsc::channel(INGEST_JOBS_MAX + 1);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(net::run_swarm(
        swarm,
        net::RunOptions { bootstrap, discovery: config.p2p.discovery, permissioned, network_id: service.network_id },
        cmd_rx,
        ev_tx,
        shutdown_rx.clone(),
    ));
    let worker_service = service.clone();
    // A plain thread, not a task: it blocks on RocksDB and on verification. It ends when the
    // engine drops the job sender at shutdown.
    let worker = std::thread::Builder::new()
        .name("entrepot-ingest".into())
        .spawn(move || worker::run(worker_service, job_rx, done_tx))
        .map_err(|e| NetError::Setup(format!("cannot start the ingest thread: {e}")))?;
    let heads = {
        let s = service.clone();
        tokio::task::spawn_blocking(move || {
            // A charter version applied while the store failed (or before a crash) may have
            // left forks it resolves unjudged; judging them again is cheap (frozen feeds only).
            if permissioned {
                let survivors: Vec<Vec<u8>> =
                    s.store.resolve_forks(&s.keyring())?.into_iter().filter_map(|r| r.reingest).collect();
                if !survivors.is_empty() {
                    s.ingest(survivors, crate::service::Source::Sync)?;
                }
            }
            s.store.heads()
        })
        .await
        .expect("heads task")?
    };
    let sync_config = SyncConfig {
        publishers: (!config.replication.publishers.is_empty())
            .then(|| config.replication.publishers.iter().cloned().collect()),
        ..SyncConfig::default()
    };
    let engine = Engine {
        sync: SyncEngine::new(sync_config, heads.into_iter().map(|(o, h)| (o, h.seq))),
        events: service.subscribe(),
        service: service.clone(),
        commands: cmd_tx,
        jobs: job_tx,
        outstanding_jobs: 0,
        queued_jobs: Default::default(),
        keys: HashMap::new(),
        peers: HashMap::new(),
        next_key: 1,
        next_tag: 0,
        pending: HashMap::new(),
        penalties: HashMap::new(),
        bans: Vec::new(),
        serving: Arc::new(Semaphore::new(limits::INBOUND_SERVING_MAX)),
        serving_tasks: JoinSet::new(),
        serving_per_peer: Arc::new(std::sync::Mutex::new(HashMap::new())),
        own_org: service.publisher.as_ref().map(|p| p.org.clone()),
        peer_id,
        addresses: HashMap::new(),
        admission: permissioned.then(Admission::default),
        own_cert,
        charter_watch: service.watch_charter(),
        charter_pull: None,
        leaving: Vec::new(),
        proof_pulls: HashMap::new(),
        payloads: payloads::PayloadFetch::new(
            permissioned.then(|| service.certificate.as_ref().map(|c| c.organization.clone())).flatten(),
        ),
    };
    {
        let mut view = service.peers.write().unwrap_or_else(|p| p.into_inner());
        view.local_peer_id = peer_id.to_string();
    }
    tasks.spawn(engine.run(ev_rx, done_rx, shutdown_rx));
    Ok(RunningNode { peer_id, shutdown, tasks, worker: Some(worker) })
}

/// A fork proof is asked for again (of any peer announcing the fork) at most this often.
const PROOF_PULL_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a refused peer keeps its connection, so the refusal reaches it.
const TURN_AWAY_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Reasons sent with the refusals that mean "later", not "never" (the code says which).
const BUSY: &str = "busy";
const TOO_MANY: &str = "too many requests";

/// What an outbound request was for.
enum Pending {
    Hello,
    Payloads,
    Charters,
    ForkProofs,
    Status,
    Range { peer: PeerKey, org: OrgId, from: Seq },
}

struct Engine {
    sync: SyncEngine,
    service: Arc<Service>,
    events: broadcast::Receiver<crate::service::StoredEvent>,
    commands: mpsc::Sender<NetCommand>,
    jobs: mpsc::Sender<Job>,
    outstanding_jobs: usize,
    /// Sync ingests waiting for room in the worker's queue (bounded by ranges in flight).
    queued_jobs: std::collections::VecDeque<Job>,
    keys: HashMap<PeerId, PeerKey>,
    peers: HashMap<PeerKey, (PeerId, Multiaddr, BTreeMap<OrgId, Seq>)>,
    next_key: PeerKey,
    next_tag: u64,
    pending: HashMap<u64, Pending>,
    penalties: HashMap<PeerId, u32>,
    bans: Vec<(PeerId, Instant)>,
    serving: Arc<Semaphore>,
    /// Requests being answered; owned here so none outlives the engine.
    serving_tasks: JoinSet<()>,
    serving_per_peer: Arc<std::sync::Mutex<HashMap<PeerId, usize>>>,
    own_org: Option<OrgId>,
    peer_id: PeerId,
    /// Remote address of every connected peer.
    addresses: HashMap<PeerId, Multiaddr>,
    /// `Some` on a charter network: which peers showed a valid certificate.
    admission: Option<Admission>,
    /// This node's certificate, shown in every hello (empty when it has none).
    own_cert: Vec<u8>,
    charter_watch: watch::Receiver<u32>,
    /// Fork proofs asked for recently, by feed and position (see [`PROOF_PULL_COOLDOWN`]).
    proof_pulls: HashMap<(OrgId, Seq), Instant>,
    /// Sealed payloads this node may read and lacks.
    payloads: payloads::PayloadFetch,
    /// Peers turned away, disconnected once [`TURN_AWAY_GRACE`] has passed.
    leaving: Vec<(PeerId, Instant)>,
    /// The peer asked for newer charter versions, and since when (one request at a time).
    charter_pull: Option<(PeerId, Instant)>,
}

impl Engine {
    async fn run(
        mut self,
        mut net: mpsc::Receiver<NetEvent>,
        mut done: mpsc::Receiver<Done>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut status_tick = tokio::time::interval(limits::STATUS_INTERVAL);
        let mut retry_tick = tokio::time::interval(limits::RETRY_INTERVAL);
        let mut expiry_tick = tokio::time::interval(limits::CHARTER_EXPIRY_CHECK_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                event = net.recv() => match event {
                    Some(event) => self.on_net(event).await,
                    None => break,
                },
                finished = done.recv() => match finished {
                    Some(finished) => self.on_done(finished).await,
                    None => break,
                },
                stored = self.events.recv() => self.on_stored(stored).await,
                Ok(()) = self.charter_watch.changed() => self.on_charter_changed().await,
                Some(_) = self.serving_tasks.join_next(), if !self.serving_tasks.is_empty() => {}
                _ = retry_tick.tick() => {
                    self.disconnect_leaving().await;
                    self.expire_admissions().await;
                    self.fetch_payloads().await;
                    let actions = self.sync.poll();
                    self.exec(actions).await;
                }
                _ = expiry_tick.tick() => self.warn_expiry(),
                _ = status_tick.tick() => {
                    let actions = self.sync.tick();
                    self.exec(actions).await;
                    self.expire_bans().await;
                }
            }
        }
        tracing::info!(peer = %self.peer_id, "node engine stopped");
    }

    fn key_of(&mut self, peer: PeerId) -> PeerKey {
        if let Some(k) = self.keys.get(&peer) {
            return *k;
        }
        let k = self.next_key;
        self.next_key += 1;
        self.keys.insert(peer, k);
        k
    }

    fn publish_peer_view(&self) {
        let mut view = self.service.peers.write().unwrap_or_else(|p| p.into_inner());
        view.peers = self
            .peers
            .values()
            .map(|(id, addr, heads)| PeerInfo {
                peer_id: id.to_string(),
                address: addr.to_string(),
                heads: heads.clone(),
            })
            .collect();
        view.peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    }

    async fn send(&self, command: NetCommand) {
        // The swarm task only stops at shutdown, when losing a command is harmless.
        let _ = self.commands.send(command).await;
    }

    async fn on_net(&mut self, event: NetEvent) {
        match event {
            NetEvent::Listening { address } => {
                tracing::info!(%address, peer = %self.peer_id, "listening");
                let mut view = self.service.peers.write().unwrap_or_else(|p| p.into_inner());
                view.listen_addresses.push(format!("{address}/p2p/{}", self.peer_id));
            }
            NetEvent::PeerConnected { peer, address } => {
                tracing::info!(%peer, %address, "peer connected");
                self.addresses.insert(peer, address);
                match &mut self.admission {
                    Some(admission) => {
                        // Synced with only once admitted; first, certificates both ways.
                        admission.connected(peer, Instant::now());
                        let tag = self.tag(Pending::Hello);
                        self.send(NetCommand::Request {
                            peer,
                            request: Request::Hello { cert: self.own_cert.clone() },
                            tag,
                        })
                        .await;
                    }
                    None => self.start_sync(peer).await,
                }
            }
            NetEvent::PeerDisconnected { peer } => {
                tracing::info!(%peer, "peer disconnected");
                self.addresses.remove(&peer);
                if let Some(admission) = &mut self.admission {
                    admission.disconnected(&peer);
                }
                let key = self.key_of(peer);
                if self.peers.remove(&key).is_some() {
                    self.publish_peer_view();
                    let actions = self.sync.peer_disconnected(key);
                    self.exec(actions).await;
                }
            }
            NetEvent::InboundRequest { peer, request, tag } => self.on_request(peer, request, tag).await,
            NetEvent::MalformedRequest { peer } => self.penalize(peer, "malformed_request", 3).await,
            NetEvent::Response { tag, peer, result } => self.on_response(tag, peer, result).await,
            NetEvent::Gossip { source, message_id, data } => {
                self.service.counters.gossip_messages_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.service
                    .counters
                    .gossip_bytes_in
                    .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                if self.admission.as_ref().is_some_and(|a| !a.is_admitted(&source)) {
                    self.send(NetCommand::Validate { message_id, source, acceptance: MessageAcceptance::Reject }).await;
                    return;
                }
                if self.outstanding_jobs >= INGEST_JOBS_MAX {
                    // Overloaded: let the message go; pull sync will fetch the document.
                    self.send(NetCommand::Validate { message_id, source, acceptance: MessageAcceptance::Ignore }).await;
                    return;
                }
                let key = self.key_of(source);
                self.submit(Job { origin: Origin::Gossip { peer: source, key, message_id }, docs: vec![data] }).await;
            }
        }
    }

    /// Starts syncing with a connected (and, on a charter network, admitted) peer.
    async fn start_sync(&mut self, peer: PeerId) {
        let address = self.addresses.get(&peer).cloned().unwrap_or_else(Multiaddr::empty);
        let key = self.key_of(peer);
        self.peers.insert(key, (peer, address, BTreeMap::new()));
        self.publish_peer_view();
        let actions = self.sync.peer_connected(key);
        self.exec(actions).await;
    }

    /// Checks a certificate a peer showed; admits it, or says why not.
    async fn on_certificate(&mut self, peer: PeerId, cert: Vec<u8>) -> Result<(), (RefusalCode, String)> {
        let Some(admission) = &mut self.admission else { return Ok(()) };
        match self.service.check_certificate(&cert, &peer.to_string()) {
            Ok(valid) => {
                if admission.admit(peer, valid.organization.clone(), cert) {
                    self.admitted(peer, &valid.organization).await;
                }
                Ok(())
            }
            Err(e) => {
                admission.shown(peer, cert);
                self.service.count_refused(e.refusal_code());
                // A certificate of an organization this node does not know yet may come from a
                // charter version it has not seen: ask the peer before giving up on it.
                if matches!(e, CertError::UnknownOrganization(_) | CertError::KeyNotAuthorized(_)) {
                    self.pull_charters(peer).await;
                }
                let code = match e {
                    CertError::UnknownOrganization(_) => RefusalCode::NotAMember,
                    CertError::WrongNetwork => RefusalCode::WrongNetwork,
                    _ => RefusalCode::CertificateInvalid,
                };
                Err((code, format!("not admitted: {e} ({})", e.code())))
            }
        }
    }

    /// A peer just admitted: gossip flows to and from it, and syncing starts.
    async fn admitted(&mut self, peer: PeerId, org: &OrgId) {
        tracing::info!(%peer, %org, "peer admitted by certificate");
        self.send(NetCommand::Admit { peer }).await;
        self.start_sync(peer).await;
    }

    /// Turns a peer away for an invalid certificate, unless this node is asking it for newer
    /// charter versions (which may make the certificate valid; the admission timeout still
    /// applies).
    async fn refuse_certificate(&mut self, peer: PeerId, reason: &str) {
        if self.charter_pull.is_none_or(|(p, _)| p != peer) {
            self.turn_away(peer, reason).await;
        }
    }

    /// Closes the connection with a peer that is not (or no longer) admitted, after
    /// [`TURN_AWAY_GRACE`] so that the refusal already sent reaches it and its operator can
    /// read why. Nothing is served to it meanwhile.
    async fn turn_away(&mut self, peer: PeerId, reason: &str) {
        tracing::warn!(%peer, reason, "peer not admitted; disconnecting");
        if let Some(admission) = &mut self.admission {
            admission.disconnected(&peer);
        }
        self.leaving.push((peer, Instant::now()));
    }

    async fn disconnect_leaving(&mut self) {
        let now = Instant::now();
        let (due, kept): (Vec<_>, Vec<_>) =
            self.leaving.drain(..).partition(|(_, since)| now.duration_since(*since) >= TURN_AWAY_GRACE);
        self.leaving = kept;
        for (peer, _) in due {
            self.send(NetCommand::Disconnect { peer }).await;
        }
    }

    /// Asks `peer` for charter versions newer than the one in force (one request at a time).
    async fn pull_charters(&mut self, peer: PeerId) {
        if self.charter_pull.is_some_and(|(_, since)| since.elapsed() < limits::REQUEST_TIMEOUT) {
            return;
        }
        self.charter_pull = Some((peer, Instant::now()));
        let from_version = serve::charter_version(&self.service) + 1;
        let tag = self.tag(Pending::Charters);
        self.send(NetCommand::Request { peer, request: Request::Charters { from_version }, tag }).await;
    }

    /// Asks `peer` for its proof of a fork in `org`'s feed at `seq`, unless this node holds one
    /// (unresolved, or resolved by its charter) or asked recently.
    async fn pull_fork_proofs(&mut self, peer: PeerId, org: &OrgId, seq: Seq) {
        let now = Instant::now();
        self.proof_pulls.retain(|_, since| now.duration_since(*since) < PROOF_PULL_COOLDOWN);
        if self.proof_pulls.contains_key(&(org.clone(), seq)) {
            return;
        }
        let s = self.service.clone();
        let o = org.clone();
        let known = tokio::task::spawn_blocking(move || {
            s.store.forks().map(|forks| forks.iter().any(|f| f.publisher == o && f.seq == seq))
        })
        .await;
        if matches!(known, Ok(Ok(true))) {
            return;
        }
        self.proof_pulls.insert((org.clone(), seq), now);
        let tag = self.tag(Pending::ForkProofs);
        self.send(NetCommand::Request { peer, request: Request::ForkProofs { org: org.clone() }, tag }).await;
    }

    /// Checks and records fork proofs a peer sent. Both entries must pass every check that
    /// needs no store under this node's charter; a pair that is not a fork (or does not verify)
    /// is the peer's fault, one this node's charter does not accept is not.
    async fn on_fork_proofs(&mut self, peer: PeerId, pairs: Vec<(Vec<u8>, Vec<u8>)>) {
        let s = self.service.clone();
        let verdict = tokio::task::spawn_blocking(move || s.record_fork_proofs(pairs)).await;
        match verdict {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                tracing::warn!(%peer, reason, "peer sent an invalid fork proof");
                self.penalize(peer, "invalid_fork_proof", 5).await;
            }
            Err(_) => {}
        }
    }

    /// Applies charter versions a peer sent.
    async fn on_charters(&mut self, peer: PeerId, files: Vec<Vec<u8>>) {
        self.charter_pull = None;
        if files.is_empty() {
            return;
        }
        let s = self.service.clone();
        match tokio::task::spawn_blocking(move || s.apply_charter_files(&files)).await {
            Ok(Ok(applied)) => tracing::debug!(%peer, ?applied, "charter versions from peer"),
            Ok(Err(e @ TrustError::Store(_))) => {
                tracing::error!(%peer, error = %e, "charter version from a peer in force, but the store failed applying it");
            }
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "peer sent charter versions this node does not accept");
                self.service.count_refused(e.code());
                self.penalize(peer, "invalid_charter", 5).await;
            }
            Err(_) => {}
        }
    }

    /// A new charter version is in force: certificates are checked again (an organization
    /// that left takes its nodes with it), and every peer hears the new version.
    async fn on_charter_changed(&mut self) {
        let version = *self.charter_watch.borrow_and_update();
        tracing::info!(version, "charter changed; checking peers' certificates again");
        if let Some(admission) = &mut self.admission {
            let service = self.service.clone();
            let (lost, gained) = admission
                .recheck(|cert, peer| service.check_certificate(cert, &peer.to_string()).ok().map(|c| c.organization));
            for peer in lost {
                self.turn_away(peer, "its certificate is not valid under the new charter").await;
            }
            for (peer, org) in gained {
                self.admitted(peer, &org).await;
            }
        }
        for (org, head) in self.service.take_feed_resets() {
            tracing::info!(%org, head = head.0, "feed changed by the charter; fetching it again from its head");
            let actions = self.sync.feed_reset(&org, head);
            self.exec(actions).await;
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        let actions = keys.into_iter().map(|peer| Action::SendStatus { peer }).collect();
        self.exec(actions).await;
    }

    /// Logs the charter's expiry state while it needs attention (the API and metrics show it
    /// all the time).
    fn warn_expiry(&self) {
        let Some(c) = self.service.charter_info() else { return };
        match c.state {
            "expiring_soon" => tracing::warn!(
                version = c.version,
                expires = %c.expires,
                days_left = c.seconds_left / 86_400,
                "the charter expires soon: root key holders must sign and publish the next version"
            ),
            "expired" => tracing::error!(
                version = c.version,
                expires = %c.expires,
                "the charter has expired: no document is accepted until a newer version is in force"
            ),
            _ => {}
        }
    }

    async fn expire_admissions(&mut self) {
        let Some(admission) = &mut self.admission else { return };
        for peer in admission.overdue(Instant::now()) {
            self.turn_away(peer, "no valid certificate within the admission timeout").await;
        }
    }

    async fn submit(&mut self, job: Job) {
        if self.outstanding_jobs < INGEST_JOBS_MAX {
            self.outstanding_jobs += 1;
            let _ = self.jobs.send(job).await;
        } else {
            self.queued_jobs.push_back(job);
        }
    }

    async fn on_request(&mut self, peer: PeerId, request: Request, tag: u64) {
        let counters = &self.service.counters;
        counters.sync_requests_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let refuse = |code: RefusalCode, reason: &str| NetCommand::Respond {
            tag,
            response: Response::Refused { code, reason: reason.into() },
        };
        let admitted = self.admission.as_ref().is_none_or(|a| a.is_admitted(&peer));
        match request {
            Request::Hello { cert } => match self.on_certificate(peer, cert).await {
                Ok(()) => {
                    let response = Response::Hello { cert: self.own_cert.clone() };
                    self.send(NetCommand::Respond { tag, response }).await;
                }
                Err((code, reason)) => {
                    self.send(refuse(code, &reason)).await;
                    self.refuse_certificate(peer, &reason).await;
                }
            },
            // Charter versions are public to anyone who can verify them, and a peer whose
            // certificate this node rejects may need a newer version to prove it is a member.
            charters @ Request::Charters { .. } => self.serve(peer, tag, charters).await,
            // Not disconnected at once: its hello may still be on the way (requests travel on
            // separate streams). A peer that never shows one leaves at the admission timeout.
            _ if !admitted => {
                self.service.count_refused("peer_not_admitted");
                self.send(refuse(RefusalCode::NotAdmitted, "not admitted: show a valid node certificate first")).await;
            }
            Request::Status { network_id, charter_version, heads } => {
                if network_id != self.service.network_id {
                    self.send(refuse(RefusalCode::WrongNetwork, "wrong network")).await;
                    self.penalize(peer, "wrong_network", 5).await;
                    return;
                }
                self.on_status(peer, charter_version, heads).await;
                self.serve(peer, tag, Request::Status { network_id, charter_version, heads: Vec::new() }).await;
            }
            other => self.serve(peer, tag, other).await,
        }
    }

    /// Answers a request from the store on a blocking thread, within the serving bounds.
    async fn serve(&mut self, peer: PeerId, tag: u64, request: Request) {
        let Ok(permit) = self.serving.clone().try_acquire_owned() else {
            let response = Response::Refused { code: RefusalCode::Busy, reason: BUSY.into() };
            self.send(NetCommand::Respond { tag, response }).await;
            return;
        };
        let over_limit = {
            let mut per_peer = self.serving_per_peer.lock().unwrap_or_else(|p| p.into_inner());
            let n = per_peer.entry(peer).or_default();
            let over = *n >= limits::INBOUND_PER_PEER_MAX;
            if !over {
                *n += 1;
            }
            over
        };
        if over_limit {
            let response = Response::Refused { code: RefusalCode::TooMany, reason: TOO_MANY.into() };
            self.send(NetCommand::Respond { tag, response }).await;
            self.penalize(peer, "request_flood", 1).await;
            return;
        }
        let service = self.service.clone();
        let commands = self.commands.clone();
        let per_peer = self.serving_per_peer.clone();
        let reader = self.admission.as_ref().and_then(|a| a.org(&peer)).cloned();
        self.serving_tasks.spawn(async move {
            let svc = service;
            let response = tokio::task::spawn_blocking(move || serve::answer(&svc, request, reader.as_ref()))
                .await
                .unwrap_or_else(|_| Response::Refused { code: RefusalCode::Internal, reason: "internal error".into() });
            let _ = commands.send(NetCommand::Respond { tag, response }).await;
            if let Some(n) = per_peer.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&peer) {
                *n = n.saturating_sub(1);
            }
            drop(permit);
        });
    }

    async fn on_status(&mut self, peer: PeerId, charter_version: u32, heads: Vec<FeedHead>) {
        if charter_version > serve::charter_version(&self.service) {
            self.pull_charters(peer).await;
        }
        for h in heads.iter().filter(|h| h.forked_at.is_some()) {
            self.pull_fork_proofs(peer, &h.org, h.forked_at.expect("filtered")).await;
        }
        let key = self.key_of(peer);
        if let Some((_, _, known)) = self.peers.get_mut(&key) {
            for h in &heads {
                known.insert(h.org.clone(), h.seq);
            }
        }
        self.publish_peer_view();
        let actions = self.sync.status_received(key, heads.into_iter().map(|h| (h.org, h.seq)));
        self.exec(actions).await;
    }

    async fn on_response(&mut self, tag: u64, peer: PeerId, result: Result<Response, RequestFailure>) {
        let Some(pending) = self.pending.remove(&tag) else { return };
        match (pending, result) {
            (Pending::Hello, Ok(Response::Hello { cert })) => {
                if let Err((_, reason)) = self.on_certificate(peer, cert).await {
                    self.refuse_certificate(peer, &reason).await;
                }
            }
            (Pending::Hello, other) => match other {
                Ok(Response::Refused { code, reason }) => {
                    tracing::warn!(%peer, %code, %reason, "peer did not admit this node")
                }
                Err(e) => tracing::warn!(%peer, reason = %e, "peer did not admit this node"),
                Ok(_) => {}
            },
            (Pending::Charters, Ok(Response::Charters { files })) => self.on_charters(peer, files).await,
            (Pending::ForkProofs, Ok(Response::ForkProofs { pairs })) => self.on_fork_proofs(peer, pairs).await,
            (Pending::Payloads, Ok(Response::Payloads { items })) => self.on_payloads(peer, items).await,
            (Pending::Payloads, other) => {
                tracing::debug!(%peer, ?other, "payload request failed");
                if let Some((ids, _)) = self.payloads.in_flight_take() {
                    self.payloads_not_served(ids);
                }
            }
            (Pending::ForkProofs, other) => tracing::debug!(%peer, ?other, "fork proof request failed"),
            (Pending::Charters, other) => {
                self.charter_pull = None;
                tracing::debug!(%peer, ?other, "charter request failed");
            }
            (Pending::Status, Ok(Response::Status { network_id, charter_version, heads })) => {
                if network_id != self.service.network_id {
                    self.penalize(peer, "wrong_network", 5).await;
                    return;
                }
                self.on_status(peer, charter_version, heads).await;
            }
            (Pending::Range { peer: key, org, from }, Ok(Response::Range { docs })) => {
                let actions = self.sync.range_received(key, &org, from, docs);
                self.exec(actions).await;
            }
            (Pending::Range { peer: key, org, from }, other) => {
                let busy = matches!(&other, Ok(Response::Refused { code, .. }) if code.is_later());
                match other {
                    Ok(Response::Refused { code, reason }) => {
                        tracing::debug!(%peer, %code, %reason, "range request failed")
                    }
                    Err(e) => tracing::debug!(%peer, reason = %e, "range request failed"),
                    Ok(_) => {}
                }
                let actions = self.sync.range_failed(key, &org, from, busy);
                self.exec(actions).await;
            }
            (Pending::Status, Err(RequestFailure::UnsupportedProtocols)) => {
                tracing::warn!(%peer, speaks = crate::sync::wire::SYNC_PROTOCOL, "peer speaks no sync protocol version in common with this node; not syncing with it");
            }
            (Pending::Status, other) => {
                tracing::debug!(%peer, ?other, "status request failed");
            }
        }
    }

    async fn on_done(&mut self, done: Done) {
        self.outstanding_jobs -= 1;
        if let Some(job) = self.queued_jobs.pop_front() {
            self.submit(job).await;
        }
        match done.origin {
            Origin::Range { peer, org, from } => {
                let head = done.feed.as_ref().map_or(Seq(0), |(_, _, h)| *h);
                if done.result == IngestResult::Invalid {
                    tracing::warn!(%org, from = from.0, "a peer served invalid documents");
                    if let Some((id, _, _)) = self.peers.get(&peer).cloned() {
                        self.penalize(id, "invalid_document", 5).await;
                    }
                }
                let actions = self.sync.ingested(peer, &org, head, done.result);
                self.exec(actions).await;
            }
            Origin::Gossip { peer, key, message_id } => {
                let acceptance = match &done.outcome {
                    Some(Ok(IngestOutcome::Stored)) | Some(Ok(IngestOutcome::Forked { .. })) => {
                        MessageAcceptance::Accept
                    }
                    Some(Ok(IngestOutcome::Duplicate)) => MessageAcceptance::Ignore,
                    Some(Err(e)) if is_not_peers_fault(e) => MessageAcceptance::Ignore,
                    _ => MessageAcceptance::Reject,
                };
                if matches!(acceptance, MessageAcceptance::Reject) {
                    self.penalize(peer, "invalid_gossip", 3).await;
                }
                self.send(NetCommand::Validate { message_id, source: peer, acceptance }).await;
                // A gossiped document beyond our head shows the sender holds the feed that far.
                if let (Some(Err(e)), Some((org, seq, _))) = (&done.outcome, &done.feed) {
                    if e.is_transient() {
                        let actions = self.sync.announced(key, org.clone(), *seq);
                        self.exec(actions).await;
                    }
                }
            }
        }
    }

    async fn on_stored(&mut self, stored: Result<crate::service::StoredEvent, broadcast::error::RecvError>) {
        match stored {
            Ok(ev) => {
                self.payload_maybe_wanted(ev.id, ev.doc_type.as_str());
                if self.own_org.as_ref() == Some(&ev.publisher) {
                    self.gossip_own(ev.id).await;
                }
                let actions = self.sync.local_head(&ev.publisher, ev.seq);
                self.exec(actions).await;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Missed events: resynchronize heads from the store.
                let s = self.service.clone();
                if let Ok(Ok(heads)) = tokio::task::spawn_blocking(move || s.store.heads()).await {
                    for (org, h) in heads {
                        let actions = self.sync.local_head(&org, h.seq);
                        self.exec(actions).await;
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => {}
        }
    }

    async fn gossip_own(&mut self, id: DocumentId) {
        let s = self.service.clone();
        if let Ok(Ok(Some(bytes))) = tokio::task::spawn_blocking(move || s.store.get(&id)).await {
            self.service.counters.gossip_messages_out.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.service.counters.gossip_bytes_out.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.send(NetCommand::Publish { data: bytes }).await;
        }
    }

    async fn exec(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::SendStatus { peer } => {
                    let Some((peer_id, _, _)) = self.peers.get(&peer).cloned() else { continue };
                    let s = self.service.clone();
                    let heads = match tokio::task::spawn_blocking(move || serve::status_heads(&s)).await {
                        Ok(Ok(h)) => h,
                        _ => continue,
                    };
                    let tag = self.tag(Pending::Status);
                    self.service.counters.sync_requests_out.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let charter_version = serve::charter_version(&self.service);
                    let request = Request::Status { network_id: self.service.network_id, charter_version, heads };
                    self.send(NetCommand::Request { peer: peer_id, request, tag }).await;
                }
                Action::RequestRange { peer, org, from, count } => {
                    let Some((peer_id, _, _)) = self.peers.get(&peer).cloned() else {
                        let actions = self.sync.range_failed(peer, &org, from, false);
                        Box::pin(self.exec(actions)).await;
                        continue;
                    };
                    let tag = self.tag(Pending::Range { peer, org: org.clone(), from });
                    self.service.counters.sync_requests_out.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let request = Request::Range { org, from, count_max: count, bytes_max: RANGE_BYTES_MAX };
                    self.send(NetCommand::Request { peer: peer_id, request, tag }).await;
                }
                Action::Ingest { peer, org, from, docs } => {
                    self.submit(Job { origin: Origin::Range { peer, org, from }, docs }).await;
                }
                Action::Penalize { peer, reason } => {
                    if let Some((peer_id, _, _)) = self.peers.get(&peer).cloned() {
                        self.penalize(peer_id, reason, 2).await;
                    }
                }
            }
        }
    }

    fn tag(&mut self, pending: Pending) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.pending.insert(tag, pending);
        tag
    }

    async fn penalize(&mut self, peer: PeerId, reason: &'static str, points: u32) {
        let total = self.penalties.entry(peer).or_default();
        *total += points;
        tracing::warn!(%peer, reason, points = *total, "peer penalized");
        if *total >= limits::PENALTY_BAN_THRESHOLD {
            self.penalties.remove(&peer);
            self.bans.push((peer, Instant::now()));
            tracing::warn!(%peer, "peer banned");
            self.send(NetCommand::Ban { peer }).await;
        }
    }

    async fn expire_bans(&mut self) {
        let now = Instant::now();
        let (expired, kept): (Vec<_>, Vec<_>) =
            self.bans.drain(..).partition(|(_, at)| now.duration_since(*at) >= limits::BAN_DURATION);
        self.bans = kept;
        for (peer, _) in expired {
            self.send(NetCommand::Unban { peer }).await;
        }
    }
}

/// Errors that say nothing bad about the peer that forwarded a document: it may simply be
/// ahead of us, or we are behind on a lifecycle target.
fn is_not_peers_fault(e: &IngestError) -> bool {
    e.is_transient() || matches!(e, IngestError::Feed(_))
}
