//! The node core: every decision the running node makes about peers, as a sans-IO state
//! machine. Events go in ([`Event`], with the time as a parameter), effects come out
//! ([`Effect`]); the shell (`node/shell.rs`) owns the channels, the timers, libp2p and the
//! store, carries the effects out and feeds their results back as events.
//!
//! It decides: admission by certificate and its timeout, serving bounds, gossip verdicts, which
//! peer's fault a refused document is (one rule, [`crate::ingest::Blame`], for gossip and
//! ranges alike), penalties and bans, charter pulls, fork-proof pulls, payload fetching and the
//! ingest queue; it runs the sync engine ([`SyncEngine`]) inside. It knows no tokio, no
//! libp2p type and no store handle: a peer is a [`PeerKey`] the shell allocates per
//! connection session, named by its peer id text.
//!
//! Every map is bounded: one record per connected peer (removed at disconnect), requests in
//! flight per peer, the penalty books and bans ([`penalties`]), fork-proof cooldowns by trusted
//! publisher, payload queues. [`Core::check_invariants`] asserts all of it; the tests call it
//! after every event.

mod admission;
mod answers;
pub mod checkpoints;
mod events;
mod invariants;
pub mod payloads;
pub mod peers;
pub mod penalties;
#[cfg(test)]
mod tests;
pub mod topology;

pub use events::{ChartersApplied, Done, Effect, Event, Job, Origin, Outbound, ProofsRecorded, Verdict, ViewChange};

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::charter::CertError;
use crate::document::{DocumentId, OrgId, Seq};
use crate::ingest::Blame;
pub use crate::net::RequestFailure;
use crate::store::IngestOutcome;
use crate::sync::engine::{Action, IngestResult, RangeId};
use crate::sync::wire::{RefusalCode, Request, Response, Status, PAYLOADS_MAX};
use crate::sync::{SyncConfig, SyncEngine};
use payloads::{PayloadFetch, PayloadRequest, PAYLOAD_WALK_INTERVAL};
use peers::{PeerRecord, Standing, ADMISSION_TIMEOUT, TURN_AWAY_GRACE};
use penalties::{Offense, Penalties};

pub use crate::sync::engine::PeerKey;

/// An outbound request, named by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u64);
/// An inbound request, named by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundTag(pub u64);
/// A gossip message being judged, named by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GossipId(pub u64);

/// Ingest jobs outstanding at the worker; more wait in the core's queue (sync ingests, which
/// are bounded by the sync engine's slots) or are let go (gossip, which pull sync recovers).
pub const INGEST_JOBS_MAX: usize = 64;
/// Inbound requests served at once (each reads the store on a blocking thread).
pub const SERVING_MAX: usize = 16;
/// Inbound requests from one peer served at once; more are refused. Above the sync engine's
/// own per-peer bound plus a status, so an honest peer never meets it.
pub const SERVING_PER_PEER_MAX: usize = 8;
/// Every peer is asked for its status this often (pull stays the source of truth).
pub const STATUS_INTERVAL: Duration = Duration::from_secs(10);
/// A status round leaves out a peer whose status request this node answered this recently,
/// if no local head moved since: that exchange already told each side the other's heads, so
/// a quiet connection carries one exchange a round instead of two. Half the round, so that
/// two peers never both leave each other out two rounds running (PROTOCOL §8.2).
pub const STATUS_ANSWERED_WITHIN: Duration = Duration::from_secs(5);
const _: () = assert!(2 * STATUS_ANSWERED_WITHIN.as_millis() <= STATUS_INTERVAL.as_millis());
/// The shortest time between two status rounds, sent early while this node catches up
/// (`SyncEngine::progress_status_due`).
pub const PROGRESS_STATUS_INTERVAL: Duration = Duration::from_secs(1);
const _: () = assert!(PROGRESS_STATUS_INTERVAL.as_millis() < STATUS_INTERVAL.as_millis());
/// Ranges refused or failed are retried, and payloads fetched, this often.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
// The early status is decided on the retry tick: it must come at least as often.
const _: () = assert!(RETRY_INTERVAL.as_millis() <= PROGRESS_STATUS_INTERVAL.as_millis());
/// A fork proof is asked for again (of any peer announcing the fork) at most this often.
pub const PROOF_PULL_COOLDOWN: Duration = Duration::from_secs(60);
/// One peer is asked for charter versions at most this often, unless its status announces a
/// version newer than the one it was last asked about.
pub const CHARTER_PULL_COOLDOWN: Duration = Duration::from_secs(10);
/// A request of the core's own (charters, payloads) is given up after this long; the
/// transport's own timeout ([`crate::net::limits::REQUEST_TIMEOUT`]) normally comes first.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);

const _: () = assert!(SERVING_PER_PEER_MAX < SERVING_MAX);
const _: () = assert!(TURN_AWAY_GRACE.as_millis() < ADMISSION_TIMEOUT.as_millis());
const _: () = assert!(REQUEST_TIMEOUT.as_secs() > crate::net::limits::REQUEST_TIMEOUT.as_secs());

/// Checks node certificates against the charter in force (the shell's trust; a fake in tests).
pub trait Certificates {
    /// The organization `cert` certifies the peer `peer` (peer id text) for, or why not.
    fn check(&self, cert: &[u8], peer: &str) -> Result<OrgId, CertError>;
}

/// What the core is told at start.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Connections kept; more are pruned ([`topology`]).
    pub connections_target: usize,
    /// Peer ids (text) of the bootstrap peers, kept first when pruning.
    pub bootstrap: BTreeSet<String>,
    pub sync: SyncConfig,
    /// Peers are admitted by node certificate (a charter network).
    pub permissioned: bool,
    /// This node's certificate, shown in every hello (empty when it has none).
    pub own_cert: Vec<u8>,
    pub network_id: [u8; 32],
    /// The organization this node publishes as: its stored documents are gossiped.
    pub own_org: Option<OrgId>,
    /// The organization this node reads sealed payloads as (its certificate's).
    pub reader: Option<OrgId>,
    pub charter_version: u32,
    /// Publishers the trust knows: the only ones tracked.
    pub trusted: BTreeSet<OrgId>,
    /// The store's heads.
    pub heads: Vec<(OrgId, Seq)>,
    /// Forked positions the store holds proofs of.
    pub known_forks: BTreeSet<(OrgId, Seq)>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            connections_target: topology::CONNECTIONS_TARGET,
            bootstrap: BTreeSet::new(),
            sync: SyncConfig::default(),
            permissioned: false,
            own_cert: Vec::new(),
            network_id: [0; 32],
            own_org: None,
            reader: None,
            charter_version: 0,
            trusted: BTreeSet::new(),
            heads: Vec::new(),
            known_forks: BTreeSet::new(),
        }
    }
}

/// A charter version put in force, as the shell read it.
struct CharterChange {
    version: u32,
    trusted: BTreeSet<OrgId>,
    resets: Vec<(OrgId, Seq)>,
    heads: Vec<(OrgId, Seq)>,
    arrival: u64,
}

/// What an outbound request was for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Hello,
    Status,
    Range(RangeId),
    Charters,
    ForkProofs {
        org: OrgId,
    },
    Payloads,
    /// The feeds asked for.
    Checkpoints {
        orgs: Vec<OrgId>,
    },
}

/// A connected peer as the peers view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSummary {
    pub name: String,
    pub address: String,
    pub org: Option<OrgId>,
    pub admitted: bool,
    pub heads: BTreeMap<OrgId, Seq>,
    pub penalty_points: u32,
}

/// A ban in force as the peers view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanSummary {
    pub name: String,
    pub offense: &'static str,
    pub seconds_left: u64,
}

/// The sans-IO node core.
pub struct Core {
    config: CoreConfig,
    sync: SyncEngine,
    peers: BTreeMap<PeerKey, PeerRecord>,
    pending: HashMap<Tag, (PeerKey, Pending)>,
    next_tag: u64,
    penalties: Penalties,
    charter_version: u32,
    trusted: BTreeSet<OrgId>,
    known_forks: BTreeSet<(OrgId, Seq)>,
    /// Fork proofs asked for recently, by publisher (see [`PROOF_PULL_COOLDOWN`]).
    proof_pulls: BTreeMap<OrgId, Instant>,
    /// The charter request in flight (one at a time).
    charter_pull: Option<(PeerKey, Tag, Instant)>,
    /// When one peer was last asked for every feed it announces ([`checkpoints::SWEEP_INTERVAL`]).
    checkpoint_sweep: Option<Instant>,
    /// The size of the latest checkpoint this node holds of each feed, as far as it knows
    /// (learned when it takes checkpoints from peers; trusted publishers only).
    checkpoints_held: BTreeMap<OrgId, u64>,
    /// The latest entry this node stored of each feed in this run, position and id (trusted
    /// publishers only): a peer announcing that very head holds the same history.
    head_ids: BTreeMap<OrgId, (Seq, DocumentId)>,
    /// Per feed, the largest head any peer announced and how many more peers announcing it
    /// get the follow-up checkpoint pulls ([`checkpoints::FOLLOW_PEERS`]; charter networks,
    /// trusted publishers only).
    follow_grants: BTreeMap<OrgId, (Seq, u8)>,
    payloads: PayloadFetch,
    /// Per feed a charter version cut: the last arrival number before it was applied.
    reset_marks: BTreeMap<OrgId, u64>,
    jobs_outstanding: usize,
    /// Sync ingests waiting for room at the worker (bounded by the sync engine's slots).
    jobs_queued: VecDeque<Job>,
    serving: usize,
    next_status: Option<Instant>,
    next_retry: Option<Instant>,
    next_prune: Option<Instant>,
    /// How the peers view changed since [`Core::take_view_changed`].
    view_changed: ViewChange,
}

impl Core {
    pub fn new(config: CoreConfig) -> Core {
        let sync = SyncEngine::new(config.sync.clone(), config.trusted.clone(), config.heads.iter().cloned());
        Core {
            sync,
            peers: BTreeMap::new(),
            pending: HashMap::new(),
            next_tag: 0,
            penalties: Penalties::default(),
            charter_version: config.charter_version,
            trusted: config.trusted.clone(),
            known_forks: config.known_forks.clone(),
            proof_pulls: BTreeMap::new(),
            charter_pull: None,
            checkpoint_sweep: None,
            checkpoints_held: BTreeMap::new(),
            head_ids: BTreeMap::new(),
            follow_grants: BTreeMap::new(),
            payloads: PayloadFetch::new(config.reader.clone()),
            reset_marks: BTreeMap::new(),
            jobs_outstanding: 0,
            jobs_queued: VecDeque::new(),
            serving: 0,
            next_status: None,
            next_retry: None,
            next_prune: None,
            view_changed: ViewChange::Peers,
            config,
        }
    }

    /// Shows `cert` in every hello from now on, and reads sealed payloads as `reader` (its
    /// organization): a certificate replaced while the node runs. Peers already admitted keep
    /// their admission; those that connect later judge the new certificate.
    pub fn set_own_cert(&mut self, cert: Vec<u8>, reader: Option<OrgId>) {
        self.config.own_cert = cert;
        if self.config.permissioned {
            self.payloads.reader = reader.clone();
            self.config.reader = reader;
        }
    }

    /// Handles one event at time `now`; the effects must be carried out in order.
    #[must_use]
    pub fn handle(&mut self, now: Instant, event: Event, certs: &dyn Certificates) -> Vec<Effect> {
        let mut out = Effects::new();
        match event {
            Event::Connected { peer, name, address } => self.on_connected(now, peer, name, address, &mut out),
            Event::Disconnected { peer } => self.on_disconnected(now, peer, &mut out),
            Event::Request { peer, tag, request } => self.on_request(now, peer, tag, request, certs, &mut out),
            Event::MalformedRequest { peer } => self.penalize(now, peer, Offense::MalformedRequest, &mut out),
            Event::Incompatible { peer, speaks } => self.incompatible(now, peer, &speaks, &mut out),
            Event::Response { tag, result } => self.on_response(now, tag, result, certs, &mut out),
            Event::Gossip { peer, gossip, data } => self.on_gossip(peer, gossip, data, &mut out),
            Event::Ingested(done) => self.on_ingested(now, done, &mut out),
            Event::Stored { id, publisher, seq, notice, arrival } => {
                if notice && self.payloads.reader.is_some() {
                    self.payloads.want(id);
                }
                if self.config.own_org.as_ref() == Some(&publisher) {
                    out.push(Effect::GossipOwn { id });
                }
                // An event raised before a charter version cut this feed says nothing of its
                // head now (the events are delivered in arrival order).
                match self.reset_marks.get(&publisher) {
                    Some(mark) if arrival <= *mark => {}
                    _ => {
                        self.reset_marks.remove(&publisher);
                        if self.trusted.contains(&publisher)
                            && self.head_ids.get(&publisher).is_none_or(|(held, _)| *held < seq)
                        {
                            self.head_ids.insert(publisher.clone(), (seq, id));
                        }
                        let actions = self.sync.local_head(&publisher, seq);
                        self.run_sync(now, actions, &mut out);
                    }
                }
            }
            Event::Heads { heads } => {
                for (org, seq) in heads {
                    let actions = self.sync.local_head(&org, seq);
                    self.run_sync(now, actions, &mut out);
                }
            }
            Event::CharterChanged { version, trusted, resets, heads, arrival } => {
                let change = CharterChange { version, trusted, resets, heads, arrival };
                self.on_charter_changed(now, change, certs, &mut out)
            }
            Event::Served { peer } => {
                self.serving = self.serving.saturating_sub(1);
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.serving = p.serving.saturating_sub(1);
                }
            }
            Event::ChartersApplied { peer, outcome } => {
                match outcome {
                    ChartersApplied::Applied | ChartersApplied::StoreFailed => {}
                    ChartersApplied::Invalid(code) => {
                        tracing::warn!(peer = %self.name(peer), code, "peer sent charter versions this node does not accept");
                        self.penalize(now, peer, Offense::InvalidCharter, &mut out);
                    }
                }
                self.settle_shown_certificate(now, peer, certs, &mut out);
            }
            Event::ProofsRecorded { peer, outcome } => match outcome {
                ProofsRecorded::Recorded(known) => self.known_forks = known,
                ProofsRecorded::Invalid(reason) => {
                    tracing::warn!(peer = %self.name(peer), reason, "peer sent an invalid fork proof");
                    self.penalize(now, peer, Offense::InvalidForkProof, &mut out);
                }
                ProofsRecorded::StoreFailed => {}
            },
            Event::CheckpointsTaken { peer, invalid, held } => {
                for (org, size) in held.into_iter().filter(|(org, _)| self.trusted.contains(org)) {
                    self.checkpoints_held.insert(org, size);
                }
                if let Some(reason) = invalid {
                    tracing::warn!(peer = %self.name(peer), reason, "peer sent a checkpoint that does not verify");
                    self.penalize(now, peer, Offense::InvalidCheckpoint, &mut out);
                }
            }
            Event::PayloadsFiltered { ids } => self.on_payloads_filtered(now, ids, &mut out),
            Event::NoticesWalked { readable, next } => {
                self.payloads.walking = false;
                self.payloads.walk_cursor = next;
                for id in readable {
                    self.payloads.want(id);
                }
            }
            Event::PayloadsAccepted { peer, stored, bad } => {
                let asked = self.payloads.accepting.take().unwrap_or_default();
                if !stored.is_empty() {
                    tracing::info!(peer = %self.name(peer), count = stored.len(), "sealed payloads received");
                }
                if bad > 0 {
                    self.penalize(now, peer, Offense::InvalidPayload, &mut out);
                }
                self.payloads.served(&stored);
                self.payloads.not_served(asked.into_iter().filter(|id| !stored.contains(id)).collect());
            }
            Event::Tick => self.on_tick(now, &mut out),
        }
        out
    }

    /// When the core next needs an [`Event::Tick`] without any other event.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let peers = self.peers.values().filter_map(PeerRecord::deadline);
        [self.next_status, self.next_retry, self.next_prune, self.penalties.next_expiry()]
            .into_iter()
            .flatten()
            .chain(peers)
            .min()
    }

    /// How the peers view changed since the last call.
    pub fn take_view_changed(&mut self) -> ViewChange {
        std::mem::take(&mut self.view_changed)
    }

    /// Connected peers, for the peers view (sorted by peer id).
    pub fn peer_summaries(&self, now: Instant) -> Vec<PeerSummary> {
        let mut out: Vec<PeerSummary> = self
            .peers
            .iter()
            .map(|(key, p)| PeerSummary {
                name: p.name.clone(),
                address: p.address.clone(),
                org: p.org().cloned(),
                admitted: p.is_admitted(),
                heads: self.sync.peer_heads(*key),
                penalty_points: self.penalties.points(&p.name, now),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Bans in force (sorted by peer id).
    pub fn bans(&self, now: Instant) -> Vec<BanSummary> {
        let mut out: Vec<BanSummary> = self
            .penalties
            .bans()
            .map(|(name, ban)| BanSummary {
                name: name.clone(),
                offense: ban.offense.code(),
                seconds_left: ban.until.saturating_duration_since(now).as_secs(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Penalties given by offense, and bans given, since start.
    pub fn penalty_counts(&self) -> (Vec<(&'static str, u64)>, u64) {
        (self.penalties.given.iter().map(|(o, n)| (o.code(), *n)).collect(), self.penalties.bans_given)
    }

    /// Our head and the best head a peer claims (and has not failed to serve), per feed.
    pub fn lag(&self) -> BTreeMap<OrgId, (Seq, Seq)> {
        self.sync.lag()
    }

    fn name(&self, peer: PeerKey) -> String {
        self.peers.get(&peer).map_or_else(|| format!("#{peer}"), |p| p.name.clone())
    }

    fn tag(&mut self, peer: PeerKey, pending: Pending) -> Tag {
        let tag = Tag(self.next_tag);
        self.next_tag += 1;
        self.pending.insert(tag, (peer, pending));
        tag
    }

    fn send(&mut self, peer: PeerKey, pending: Pending, request: Outbound, out: &mut Effects) -> Tag {
        let tag = self.tag(peer, pending);
        out.push(Effect::Send { peer, tag, request });
        tag
    }

    /// Sends `peer` this node's status, unless one is in flight or the peer is not admitted.
    /// Whether this node answered `peer`'s status request within [`STATUS_ANSWERED_WITHIN`]
    /// and no local head moved since: its round may leave the peer out.
    fn status_answered_lately(&self, now: Instant, peer: PeerKey) -> bool {
        let answered = self.peers.get(&peer).and_then(|p| p.answered);
        answered.is_some_and(|(at, moves)| {
            now.saturating_duration_since(at) < STATUS_ANSWERED_WITHIN && moves == self.sync.local_moves()
        })
    }

    fn send_status(&mut self, peer: PeerKey, out: &mut Effects) {
        let Some(record) = self.peers.get(&peer).filter(|p| p.is_admitted()) else { return };
        let request = Outbound::Status { known: record.status.known(), peer_holds: record.status.peer_holds() };
        if !self.has_pending(peer, &Pending::Status) {
            self.send(peer, Pending::Status, request, out);
        }
    }

    /// The peer speaks versions of the sync protocol, none in common with this node: it cannot
    /// sync with it, so its connection slot is better given to another peer.
    fn incompatible(&mut self, now: Instant, peer: PeerKey, speaks: &[String], out: &mut Effects) {
        let Some(record) = self.peers.get(&peer) else { return };
        tracing::warn!(
            peer = %record.name,
            speaks = speaks.join(" "),
            ours = crate::sync::wire::SYNC_PROTOCOL,
            reason = "sync_protocol_unsupported",
            "peer speaks no sync protocol version in common with this node (an older or newer release); disconnecting it"
        );
        self.on_disconnected(now, peer, out);
        out.push(Effect::Incompatible { peer });
    }

    /// Lets go of the connections over a third above the target ([`topology::prune`]).
    fn prune(&mut self, now: Instant, out: &mut Effects) {
        let candidates: Vec<topology::Candidate<'_>> = self
            .peers
            .iter()
            .map(|(key, p)| topology::Candidate {
                key: *key,
                name: &p.name,
                org: p.org(),
                bootstrap: self.config.bootstrap.contains(&p.name),
                since: p.since,
            })
            .collect();
        let pruned = topology::prune(&candidates, self.config.connections_target, now);
        if !pruned.is_empty() {
            tracing::info!(
                count = pruned.len(),
                target = self.config.connections_target,
                "over a third above the connection target; letting the least diverse, most recent connections go"
            );
        }
        for peer in pruned {
            self.on_disconnected(now, peer, out);
            out.push(Effect::Disconnect { peer });
        }
    }

    fn has_pending(&self, peer: PeerKey, kind: &Pending) -> bool {
        self.pending.values().any(|(k, p)| *k == peer && std::mem::discriminant(p) == std::mem::discriminant(kind))
    }

    // --- Penalties and the sync engine ---------------------------------------------------

    fn penalize(&mut self, now: Instant, peer: PeerKey, offense: Offense, out: &mut Effects) {
        let Some(record) = self.peers.get(&peer) else { return };
        let name = record.name.clone();
        let org = record.org().cloned();
        self.view_changed = ViewChange::Peers;
        match self.penalties.penalize(&name, offense, now) {
            penalties::Verdict::Noted { points } => {
                tracing::warn!(peer = %name, reason = offense.code(), points, "peer penalized");
            }
            penalties::Verdict::Banned => {
                tracing::warn!(peer = %name, org = ?org, reason = offense.code(), "peer banned");
                out.push(Effect::Ban { name, org, offense });
                self.on_disconnected(now, peer, out);
            }
            penalties::Verdict::AlreadyBanned => {}
        }
    }

    fn run_sync(&mut self, now: Instant, actions: Vec<Action>, out: &mut Effects) {
        for action in actions {
            match action {
                Action::SendStatus { peer } => self.send_status(peer, out),
                Action::RequestRange { id, peer, org, from, count } => {
                    // An action list made before a penalty in it banned or turned the peer
                    // away: the engine has since been told, and counts the request as lost.
                    if self.peers.get(&peer).is_some_and(PeerRecord::is_admitted) {
                        let bytes = self.config.sync.range_bytes;
                        self.send(peer, Pending::Range(id), Outbound::Range { org, from, count, bytes }, out);
                    }
                }
                Action::Ingest { peer, org, from, docs } => {
                    self.submit(Job { origin: Origin::Range { peer, org, from }, docs }, out);
                }
                Action::Penalize { peer, offense } => self.penalize(now, peer, Offense::from_sync(offense), out),
            }
        }
    }
}

fn pending_kind(p: &Pending) -> &'static str {
    match p {
        Pending::Hello => "hello",
        Pending::Status => "status",
        Pending::Range(_) => "range",
        Pending::Charters => "charters",
        Pending::ForkProofs { .. } => "fork proofs",
        Pending::Payloads => "payloads",
        Pending::Checkpoints { .. } => "checkpoints",
    }
}

fn refuse(tag: InboundTag, code: RefusalCode, reason: &str) -> Effect {
    Effect::Respond { tag, response: Response::Refused { code, reason: reason.into() } }
}

/// The effects of one event, in order.
type Effects = Vec<Effect>;
