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

pub mod payloads;
pub mod peers;
pub mod penalties;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::charter::CertError;
use crate::document::{DocumentId, OrgId, Seq};
use crate::ingest::{Blame, IngestError};
pub use crate::net::RequestFailure;
use crate::store::IngestOutcome;
use crate::sync::engine::{Action, IngestResult, RangeId};
use crate::sync::wire::{FeedHead, RefusalCode, Request, Response, PAYLOADS_MAX};
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
/// Ranges refused or failed are retried, and payloads fetched, this often.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
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
#[derive(Debug, Clone, Default)]
pub struct CoreConfig {
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

/// Where a job's documents came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A range the sync engine asked for: the worker checks the entries are `org`'s from
    /// `from` on, in order.
    Range { peer: PeerKey, org: OrgId, from: Seq },
    /// One gossip message.
    Gossip { peer: PeerKey, gossip: GossipId },
}

/// Documents to ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub origin: Origin,
    pub docs: Vec<Vec<u8>>,
}

/// A finished job, as the worker reports it.
#[derive(Debug, Clone)]
pub struct Done {
    pub origin: Origin,
    /// The feed the documents claimed (from the first that decodes), and its head after.
    pub feed: Option<(OrgId, Seq, Seq)>,
    pub result: IngestResult,
    /// For gossip: the single document's outcome.
    pub outcome: Option<Result<IngestOutcome, IngestError>>,
}

/// How applying charter versions a peer sent went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartersApplied {
    /// Applied (the shell reports the change itself with [`Event::CharterChanged`]).
    Applied,
    /// They do not extend this node's chain: the peer's fault.
    Invalid(&'static str),
    /// This node's store failed applying them: not the peer's fault.
    StoreFailed,
}

/// How recording fork proofs a peer sent went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofsRecorded {
    /// Recorded; the forked positions the store holds proofs of now.
    Recorded(BTreeSet<(OrgId, Seq)>),
    /// Not a valid proof: the peer's fault.
    Invalid(&'static str),
    StoreFailed,
}

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// The first connection with a peer is established.
    Connected {
        peer: PeerKey,
        name: String,
        address: String,
    },
    /// The last connection with a peer closed.
    Disconnected {
        peer: PeerKey,
    },
    Request {
        peer: PeerKey,
        tag: InboundTag,
        request: Request,
    },
    /// A sync request that is not a valid message.
    MalformedRequest {
        peer: PeerKey,
    },
    Response {
        tag: Tag,
        result: Result<Response, RequestFailure>,
    },
    Gossip {
        peer: PeerKey,
        gossip: GossipId,
        data: Vec<u8>,
    },
    Ingested(Done),
    /// The store holds a new document (any path); `arrival` is its arrival number.
    Stored {
        id: DocumentId,
        publisher: OrgId,
        seq: Seq,
        notice: bool,
        arrival: u64,
    },
    /// The store's heads, read again after stored events were missed.
    Heads {
        heads: Vec<(OrgId, Seq)>,
    },
    /// A charter version is in force: the publishers it trusts, the feeds it changed (with
    /// their new heads), the store's heads and its last arrival number once it was applied.
    CharterChanged {
        version: u32,
        trusted: BTreeSet<OrgId>,
        resets: Vec<(OrgId, Seq)>,
        heads: Vec<(OrgId, Seq)>,
        arrival: u64,
    },
    /// An answer the shell served (after [`Effect::Serve`]) is sent.
    Served {
        peer: PeerKey,
    },
    ChartersApplied {
        peer: PeerKey,
        outcome: ChartersApplied,
    },
    ProofsRecorded {
        peer: PeerKey,
        outcome: ProofsRecorded,
    },
    /// Of the ids given to [`Effect::FilterPayloads`], those still wanted.
    PayloadsFiltered {
        ids: Vec<DocumentId>,
    },
    /// A step of the walk over held notices: those readable and lacking their payload.
    NoticesWalked {
        readable: Vec<DocumentId>,
        next: Option<DocumentId>,
    },
    /// Payloads received were checked: those stored, and how many did not match.
    PayloadsAccepted {
        peer: PeerKey,
        stored: Vec<DocumentId>,
        bad: usize,
    },
    /// Time passed ([`Core::next_wakeup`] or the shell's periodic tick).
    Tick,
}

/// An outbound request, filled in by the shell (it reads the heads a status carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Hello,
    Status,
    Range { org: OrgId, from: Seq, count: u32, bytes: u32 },
    Charters { from_version: u32 },
    ForkProofs { org: OrgId },
    Payloads { ids: Vec<DocumentId> },
}

/// Whether gossipsub forwards a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Ignore,
    Reject,
}

/// Something the shell must do.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send {
        peer: PeerKey,
        tag: Tag,
        request: Outbound,
    },
    Respond {
        tag: InboundTag,
        response: Response,
    },
    /// Answer from the store, then report [`Event::Served`].
    Serve {
        peer: PeerKey,
        tag: InboundTag,
        request: Request,
        reader: Option<OrgId>,
    },
    Ingest(Job),
    Verdict {
        gossip: GossipId,
        verdict: Verdict,
    },
    /// Gossip a document this node published.
    GossipOwn {
        id: DocumentId,
    },
    /// Gossip may flow to and from the peer.
    Admit {
        peer: PeerKey,
    },
    Disconnect {
        peer: PeerKey,
    },
    /// Disconnect and block the peer (by peer id text), until [`Effect::Unban`].
    Ban {
        name: String,
        org: Option<OrgId>,
        offense: Offense,
    },
    Unban {
        name: String,
    },
    ApplyCharters {
        peer: PeerKey,
        files: Vec<Vec<u8>>,
    },
    RecordForkProofs {
        peer: PeerKey,
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    FilterPayloads {
        ids: Vec<DocumentId>,
    },
    WalkNotices {
        after: Option<DocumentId>,
    },
    AcceptPayloads {
        peer: PeerKey,
        items: Vec<(DocumentId, Vec<u8>)>,
    },
    /// Read the store's heads again ([`Event::Heads`]).
    ReadHeads,
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
    ForkProofs { org: OrgId },
    Payloads,
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
    payloads: PayloadFetch,
    /// Per feed a charter version cut: the last arrival number before it was applied.
    reset_marks: BTreeMap<OrgId, u64>,
    jobs_outstanding: usize,
    /// Sync ingests waiting for room at the worker (bounded by the sync engine's slots).
    jobs_queued: VecDeque<Job>,
    serving: usize,
    next_status: Option<Instant>,
    next_retry: Option<Instant>,
    /// The peers view changed since [`Core::take_view_changed`].
    view_changed: bool,
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
            payloads: PayloadFetch::new(config.reader.clone()),
            reset_marks: BTreeMap::new(),
            jobs_outstanding: 0,
            jobs_queued: VecDeque::new(),
            serving: 0,
            next_status: None,
            next_retry: None,
            view_changed: true,
            config,
        }
    }

    /// Handles one event at time `now`; the effects must be carried out in order.
    #[must_use]
    pub fn handle(&mut self, now: Instant, event: Event, certs: &dyn Certificates) -> Vec<Effect> {
        let mut out = Effects::new();
        match event {
            Event::Connected { peer, name, address } => self.on_connected(now, peer, name, address, &mut out),
            Event::Disconnected { peer } => self.on_disconnected(peer, &mut out),
            Event::Request { peer, tag, request } => self.on_request(now, peer, tag, request, certs, &mut out),
            Event::MalformedRequest { peer } => self.penalize(now, peer, Offense::MalformedRequest, &mut out),
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
        [self.next_status, self.next_retry, self.penalties.next_expiry()].into_iter().flatten().chain(peers).min()
    }

    /// Whether the peers view changed since the last call.
    pub fn take_view_changed(&mut self) -> bool {
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

    /// Asserts every invariant of the core and of the sync engine inside it.
    pub fn check_invariants(&self) {
        self.sync.check_invariants();
        self.penalties.check_invariants();
        self.payloads.check_invariants();
        assert!(self.jobs_outstanding <= INGEST_JOBS_MAX, "ingest jobs over their bound");
        assert!(self.serving <= SERVING_MAX, "serving over its bound");
        let serving: usize = self.peers.values().map(|p| p.serving).sum();
        assert!(serving <= self.serving, "peers are served more than the node serves");
        for (key, p) in &self.peers {
            assert!(p.serving <= SERVING_PER_PEER_MAX, "peer {key} served over its bound");
            assert!(p.heads.keys().all(|o| self.trusted.contains(o)), "peer {key} has heads of untrusted publishers");
            let mut per_kind: BTreeMap<&'static str, usize> = BTreeMap::new();
            for (_, pending) in self.pending.values().filter(|(k, _)| k == key) {
                *per_kind.entry(pending_kind(pending)).or_default() += 1;
            }
            for (kind, n) in per_kind {
                let max = if kind == "range" { self.config.sync.ranges_per_peer_max } else { 1 };
                assert!(n <= max, "peer {key} has {n} {kind} requests in flight");
            }
            if !self.config.permissioned {
                assert!(p.is_admitted(), "keyring networks admit every peer");
            }
        }
        let orphans: Vec<_> = self.pending.iter().filter(|(_, (k, _))| !self.peers.contains_key(k)).collect();
        assert!(orphans.is_empty(), "requests outlived their peer: {orphans:?}");
        assert!(self.proof_pulls.keys().all(|o| self.trusted.contains(o)), "fork pulls for untrusted publishers");
        assert!(self.reset_marks.keys().all(|o| self.trusted.contains(o)), "reset marks for untrusted publishers");
        if let Some((peer, tag, _)) = &self.charter_pull {
            assert_eq!(self.pending.get(tag).map(|(k, p)| (k, p)), Some((peer, &Pending::Charters)));
        }
        if let Some(r) = &self.payloads.in_flight {
            assert_eq!(self.pending.get(&r.tag).map(|(k, p)| (k, p)), Some((&r.peer, &Pending::Payloads)));
        }
        let queued_ranges = self.jobs_queued.iter().all(|j| matches!(j.origin, Origin::Range { .. }));
        assert!(queued_ranges, "only sync ingests wait in the queue");
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

    fn has_pending(&self, peer: PeerKey, kind: &Pending) -> bool {
        self.pending.values().any(|(k, p)| *k == peer && std::mem::discriminant(p) == std::mem::discriminant(kind))
    }

    // --- Peers and admission -------------------------------------------------------------

    fn on_connected(&mut self, now: Instant, peer: PeerKey, name: String, address: String, out: &mut Effects) {
        if self.penalties.is_banned(&name) {
            // Connected before the block took effect.
            out.push(Effect::Disconnect { peer });
            return;
        }
        tracing::info!(peer = %name, %address, "peer connected");
        self.view_changed = true;
        if self.config.permissioned {
            // Synced with only once admitted; first, certificates both ways.
            let standing = Standing::Waiting { since: now, shown: None };
            self.peers.insert(peer, PeerRecord::new(name, address, standing));
            self.send(peer, Pending::Hello, Outbound::Hello, out);
        } else {
            let standing = Standing::Admitted { org: None, cert: Vec::new() };
            self.peers.insert(peer, PeerRecord::new(name, address, standing));
            self.start_sync(now, peer, out);
        }
    }

    fn on_disconnected(&mut self, peer: PeerKey, out: &mut Effects) {
        let Some(record) = self.peers.remove(&peer) else { return };
        tracing::info!(peer = %record.name, "peer disconnected");
        self.view_changed = true;
        self.pending.retain(|_, (k, _)| *k != peer);
        if self.charter_pull.as_ref().is_some_and(|(k, _, _)| *k == peer) {
            self.charter_pull = None;
        }
        if let Some(r) = self.payloads.in_flight.take_if(|r| r.peer == peer) {
            self.payloads.not_served(r.ids);
        }
        // Answers being served to it hold their node-wide slots until the shell reports them.
        let actions = self.sync.peer_disconnected(peer);
        self.run_sync_no_time(actions, out);
    }

    fn start_sync(&mut self, now: Instant, peer: PeerKey, out: &mut Effects) {
        let actions = self.sync.peer_connected(peer);
        self.run_sync(now, actions, out);
    }

    /// Checks a certificate a peer showed; admits it, or says why not.
    fn on_certificate(
        &mut self,
        now: Instant,
        peer: PeerKey,
        cert: Vec<u8>,
        certs: &dyn Certificates,
        out: &mut Effects,
    ) -> Result<(), CertError> {
        let Some(record) = self.peers.get(&peer) else { return Ok(()) };
        if !self.config.permissioned {
            return Ok(());
        }
        match certs.check(&cert, &record.name) {
            Ok(org) => {
                self.admit(now, peer, org, cert, out);
                Ok(())
            }
            Err(e) => {
                let record = self.peers.get_mut(&peer).expect("looked up above");
                match &mut record.standing {
                    Standing::Waiting { shown, .. } | Standing::Leaving { shown, .. } => *shown = Some(cert),
                    Standing::Admitted { .. } => {}
                }
                // A certificate of an organization or key this node does not know may come
                // from a charter version it has not seen: ask the peer before giving up on it.
                if matches!(e, CertError::UnknownOrganization(_) | CertError::KeyNotAuthorized(_)) {
                    self.pull_charters(now, peer, true, out);
                }
                Err(e)
            }
        }
    }

    fn admit(&mut self, now: Instant, peer: PeerKey, org: OrgId, cert: Vec<u8>, out: &mut Effects) {
        let Some(record) = self.peers.get_mut(&peer) else { return };
        let new = !record.is_admitted();
        record.standing = Standing::Admitted { org: Some(org.clone()), cert };
        self.view_changed = true;
        if new {
            tracing::info!(peer = %record.name, %org, "peer admitted by certificate");
            out.push(Effect::Admit { peer });
            self.start_sync(now, peer, out);
        }
    }

    /// Turns a peer away: it is disconnected after [`TURN_AWAY_GRACE`] unless admitted first.
    fn turn_away(&mut self, now: Instant, peer: PeerKey, reason: &str, out: &mut Effects) {
        let Some(record) = self.peers.get_mut(&peer) else { return };
        tracing::warn!(peer = %record.name, reason, "peer not admitted; disconnecting");
        let shown = record.shown().map(<[u8]>::to_vec);
        let was_admitted = record.is_admitted();
        record.standing = Standing::Leaving { at: now + TURN_AWAY_GRACE, shown };
        self.view_changed = true;
        if was_admitted {
            // Nothing more is asked of it: its ranges go to other peers.
            let actions = self.sync.peer_disconnected(peer);
            self.run_sync_no_time(actions, out);
        }
    }

    /// Once the charter answer of `peer` is in, a certificate it showed either verifies now
    /// or it is turned away at once (not at the admission timeout).
    fn settle_shown_certificate(&mut self, now: Instant, peer: PeerKey, certs: &dyn Certificates, out: &mut Effects) {
        let Some(record) = self.peers.get(&peer) else { return };
        if !matches!(record.standing, Standing::Waiting { .. }) {
            return;
        }
        let Some(cert) = record.shown().map(<[u8]>::to_vec) else { return };
        match certs.check(&cert, &record.name) {
            Ok(org) => self.admit(now, peer, org, cert, out),
            Err(e) => {
                let reason = format!("certificate not valid under any charter it could show: {e}");
                self.turn_away(now, peer, &reason, out);
            }
        }
    }

    // --- Requests from peers -------------------------------------------------------------

    fn on_request(
        &mut self,
        now: Instant,
        peer: PeerKey,
        tag: InboundTag,
        request: Request,
        certs: &dyn Certificates,
        out: &mut Effects,
    ) {
        let Some(record) = self.peers.get(&peer) else {
            out.push(refuse(tag, RefusalCode::NotAdmitted, "not connected"));
            return;
        };
        let admitted = record.is_admitted();
        match request {
            Request::Hello { cert } => match self.on_certificate(now, peer, cert, certs, out) {
                Ok(()) => {
                    let cert = self.config.own_cert.clone();
                    out.push(Effect::Respond { tag, response: Response::Hello { cert } });
                }
                Err(e) => {
                    let reason = format!("not admitted: {e} ({})", e.code());
                    let code = match e {
                        CertError::UnknownOrganization(_) => RefusalCode::NotAMember,
                        _ => RefusalCode::CertificateInvalid,
                    };
                    out.push(refuse(tag, code, &reason));
                    if self.charter_pull.as_ref().is_none_or(|(k, _, _)| *k != peer) {
                        self.turn_away(now, peer, &reason, out);
                    }
                }
            },
            // Charter versions are public to anyone who can verify them, and a peer whose
            // certificate this node rejects may need a newer version to prove it is a member.
            charters @ Request::Charters { .. } => self.serve(now, peer, tag, charters, out),
            // Not disconnected at once: its hello may still be on the way (requests travel on
            // separate streams). A peer that never shows one leaves at the admission timeout.
            _ if !admitted => {
                out.push(refuse(tag, RefusalCode::NotAdmitted, "not admitted: show a valid node certificate first"))
            }
            Request::Status { network_id, charter_version, heads } => {
                if network_id != self.config.network_id {
                    out.push(refuse(tag, RefusalCode::WrongNetwork, "wrong network"));
                    self.penalize(now, peer, Offense::WrongNetwork, out);
                    return;
                }
                self.on_status(now, peer, charter_version, heads, out);
                self.serve(now, peer, tag, Request::Status { network_id, charter_version, heads: Vec::new() }, out);
            }
            other => self.serve(now, peer, tag, other, out),
        }
    }

    /// Hands a request to the shell to answer from the store, within the serving bounds.
    fn serve(&mut self, now: Instant, peer: PeerKey, tag: InboundTag, request: Request, out: &mut Effects) {
        if self.serving >= SERVING_MAX {
            out.push(refuse(tag, RefusalCode::Busy, "busy: try again later"));
            return;
        }
        let Some(record) = self.peers.get_mut(&peer) else { return };
        if record.serving >= SERVING_PER_PEER_MAX {
            out.push(refuse(tag, RefusalCode::TooMany, "too many requests at once"));
            self.penalize(now, peer, Offense::RequestFlood, out);
            return;
        }
        record.serving += 1;
        self.serving += 1;
        let reader = record.org().cloned();
        out.push(Effect::Serve { peer, tag, request, reader });
    }

    fn on_status(
        &mut self,
        now: Instant,
        peer: PeerKey,
        charter_version: u32,
        heads: Vec<FeedHead>,
        out: &mut Effects,
    ) {
        let Some(record) = self.peers.get_mut(&peer) else { return };
        let announced_newer = charter_version > self.charter_version && charter_version > record.charter_version;
        record.charter_version = charter_version;
        record.heads = heads.iter().filter(|h| self.trusted.contains(&h.org)).map(|h| (h.org.clone(), h.seq)).collect();
        self.view_changed = true;
        if charter_version > self.charter_version {
            self.pull_charters(now, peer, announced_newer, out);
        }
        // At most one fork-proof request in flight per peer, and each publisher's proof asked
        // for at most once per cooldown: a status announcing thousands of forks costs one
        // request.
        let forked: Vec<(OrgId, Seq)> = heads
            .iter()
            .filter_map(|h| Some((h.org.clone(), h.forked_at?)))
            .filter(|(org, seq)| self.trusted.contains(org) && !self.known_forks.contains(&(org.clone(), *seq)))
            .collect();
        self.proof_pulls.retain(|_, since| now.saturating_duration_since(*since) < PROOF_PULL_COOLDOWN);
        if let Some((org, _)) = forked.into_iter().find(|(org, _)| !self.proof_pulls.contains_key(org)) {
            if !self.has_pending(peer, &Pending::ForkProofs { org: org.clone() }) {
                self.proof_pulls.insert(org.clone(), now);
                self.send(peer, Pending::ForkProofs { org: org.clone() }, Outbound::ForkProofs { org }, out);
            }
        }
        let heads = heads.into_iter().map(|h| (h.org, h.seq));
        let actions = self.sync.status_received(peer, heads);
        self.run_sync(now, actions, out);
    }

    /// Asks `peer` for charter versions newer than the one in force: one request at a time,
    /// each peer at most once per [`CHARTER_PULL_COOLDOWN`] unless `urgent` (it announced a
    /// newer version, or showed a certificate only a newer version could make valid).
    fn pull_charters(&mut self, now: Instant, peer: PeerKey, urgent: bool, out: &mut Effects) {
        if self.charter_pull.is_some() {
            return;
        }
        let Some(record) = self.peers.get_mut(&peer) else { return };
        let recent = record.charters_asked.is_some_and(|at| now.saturating_duration_since(at) < CHARTER_PULL_COOLDOWN);
        if recent && !urgent {
            return;
        }
        record.charters_asked = Some(now);
        let from_version = self.charter_version + 1;
        let tag = self.send(peer, Pending::Charters, Outbound::Charters { from_version }, out);
        self.charter_pull = Some((peer, tag, now));
    }

    // --- Answers to our requests ---------------------------------------------------------

    fn on_response(
        &mut self,
        now: Instant,
        tag: Tag,
        result: Result<Response, RequestFailure>,
        certs: &dyn Certificates,
        out: &mut Effects,
    ) {
        let Some((peer, pending)) = self.pending.remove(&tag) else { return };
        if let Err(RequestFailure::Malformed(reason)) = &result {
            tracing::warn!(peer = %self.name(peer), %reason, "peer sent an answer that is not a valid message");
            self.penalize(now, peer, Offense::MalformedResponse, out);
        }
        match (pending, result) {
            (Pending::Hello, Ok(Response::Hello { cert })) => {
                if let Err(e) = self.on_certificate(now, peer, cert, certs, out) {
                    if self.charter_pull.as_ref().is_none_or(|(k, _, _)| *k != peer) {
                        self.turn_away(now, peer, &format!("not admitted: {e} ({})", e.code()), out);
                    }
                }
            }
            (Pending::Hello, other) => {
                if let Ok(Response::Refused { code, reason }) = &other {
                    tracing::warn!(peer = %self.name(peer), code = code.code(), %reason, "peer did not admit this node");
                } else if let Err(e) = &other {
                    tracing::debug!(peer = %self.name(peer), error = e.code(), "hello failed");
                }
            }
            (Pending::Status, Ok(Response::Status { network_id, charter_version, heads })) => {
                if network_id != self.config.network_id {
                    self.penalize(now, peer, Offense::WrongNetwork, out);
                    return;
                }
                self.on_status(now, peer, charter_version, heads, out);
            }
            (Pending::Status, Err(RequestFailure::UnsupportedProtocols)) => {
                tracing::warn!(peer = %self.name(peer), speaks = crate::sync::wire::SYNC_PROTOCOL, "peer speaks no sync protocol version in common with this node; not syncing with it");
            }
            (Pending::Status, other) => tracing::debug!(peer = %self.name(peer), ?other, "status request failed"),
            (Pending::Range(id), Ok(Response::Range { docs })) => {
                let actions = self.sync.range_received(id, docs);
                self.run_sync(now, actions, out);
            }
            (Pending::Range(id), other) => {
                let busy = matches!(&other, Ok(Response::Refused { code, .. }) if code.is_later());
                let actions = self.sync.range_failed(id, busy);
                self.run_sync(now, actions, out);
            }
            (Pending::Charters, result) => {
                self.charter_pull = None;
                match result {
                    Ok(Response::Charters { files }) if !files.is_empty() => {
                        out.push(Effect::ApplyCharters { peer, files });
                        return;
                    }
                    Ok(Response::Charters { .. }) => {
                        let announced = self.peers.get(&peer).map_or(0, |p| p.charter_version);
                        if announced > self.charter_version {
                            self.penalize(now, peer, Offense::UnservedCharter, out);
                        }
                    }
                    other => tracing::debug!(peer = %self.name(peer), ?other, "charter request failed"),
                }
                self.settle_shown_certificate(now, peer, certs, out);
            }
            (Pending::ForkProofs { .. }, Ok(Response::ForkProofs { pairs })) => {
                if pairs.is_empty() {
                    self.penalize(now, peer, Offense::UnprovenFork, out);
                } else {
                    out.push(Effect::RecordForkProofs { peer, pairs });
                }
            }
            (Pending::ForkProofs { .. }, other) => {
                tracing::debug!(peer = %self.name(peer), ?other, "fork proof request failed")
            }
            (Pending::Payloads, result) => {
                let Some(request) = self.payloads.in_flight.take_if(|r| r.tag == tag) else { return };
                match result {
                    Ok(Response::Payloads { items }) => {
                        let asked = request.ids;
                        let (items, strays): (Vec<_>, Vec<_>) =
                            items.into_iter().partition(|(id, _)| asked.contains(id));
                        if !strays.is_empty() {
                            self.penalize(now, peer, Offense::InvalidPayload, out);
                        }
                        self.payloads.accepting = Some(asked);
                        out.push(Effect::AcceptPayloads { peer, items });
                    }
                    other => {
                        tracing::debug!(peer = %self.name(peer), ?other, "payload request failed");
                        self.payloads.not_served(request.ids);
                    }
                }
            }
        }
    }

    // --- Gossip and ingest ---------------------------------------------------------------

    fn on_gossip(&mut self, peer: PeerKey, gossip: GossipId, data: Vec<u8>, out: &mut Effects) {
        if !self.peers.get(&peer).is_some_and(PeerRecord::is_admitted) {
            out.push(Effect::Verdict { gossip, verdict: Verdict::Reject });
            return;
        }
        if self.jobs_outstanding >= INGEST_JOBS_MAX {
            // Overloaded: let the message go; pull sync will fetch the document.
            out.push(Effect::Verdict { gossip, verdict: Verdict::Ignore });
            return;
        }
        self.jobs_outstanding += 1;
        out.push(Effect::Ingest(Job { origin: Origin::Gossip { peer, gossip }, docs: vec![data] }));
    }

    fn on_ingested(&mut self, now: Instant, done: Done, out: &mut Effects) {
        self.jobs_outstanding = self.jobs_outstanding.saturating_sub(1);
        if let Some(job) = self.jobs_queued.pop_front() {
            self.jobs_outstanding += 1;
            out.push(Effect::Ingest(job));
        }
        match done.origin {
            Origin::Range { peer, org, from } => {
                let head = done.feed.as_ref().map_or(Seq(0), |(_, _, h)| *h);
                match done.result {
                    IngestResult::Invalid | IngestResult::Misplaced => {
                        tracing::warn!(peer = %self.name(peer), %org, from = from.0, result = ?done.result, "a peer served documents that are not the entries asked for");
                    }
                    // Refused by this node's charter: the peer may be on a newer version.
                    IngestResult::Unauthorized => self.pull_charters(now, peer, false, out),
                    _ => {}
                }
                let actions = self.sync.ingested(peer, &org, Seq(head.0), done.result);
                self.run_sync(now, actions, out);
            }
            Origin::Gossip { peer, gossip } => {
                let blame = match &done.outcome {
                    Some(Err(e)) => Some(e.blame()),
                    _ => None,
                };
                let verdict = match (&done.outcome, blame) {
                    (Some(Ok(IngestOutcome::Stored | IngestOutcome::Forked { .. })), _) => Verdict::Accept,
                    (_, Some(Blame::Sender)) => Verdict::Reject,
                    _ => Verdict::Ignore,
                };
                out.push(Effect::Verdict { gossip, verdict });
                match blame {
                    Some(Blame::Sender) => self.penalize(now, peer, Offense::InvalidGossip, out),
                    Some(Blame::Charter) => self.pull_charters(now, peer, false, out),
                    // A gossiped document beyond our head shows the sender holds the feed that
                    // far: fetch what lies between.
                    Some(Blame::Later) => {
                        if let Some((org, seq, _)) = done.feed {
                            let actions = self.sync.announced(peer, org, seq);
                            self.run_sync(now, actions, out);
                        }
                    }
                    Some(Blame::Feed) | None => {}
                }
            }
        }
    }

    fn submit(&mut self, job: Job, out: &mut Effects) {
        if self.jobs_outstanding < INGEST_JOBS_MAX {
            self.jobs_outstanding += 1;
            out.push(Effect::Ingest(job));
        } else {
            self.jobs_queued.push_back(job);
        }
    }

    // --- Charter changes -----------------------------------------------------------------

    fn on_charter_changed(&mut self, now: Instant, change: CharterChange, certs: &dyn Certificates, out: &mut Effects) {
        let CharterChange { version, trusted, resets, heads, arrival } = change;
        tracing::info!(version, "charter changed; checking peers' certificates again");
        self.charter_version = version;
        self.trusted = trusted.clone();
        self.proof_pulls.retain(|org, _| trusted.contains(org));
        for record in self.peers.values_mut() {
            record.heads.retain(|org, _| trusted.contains(org));
        }
        self.reset_marks.retain(|org, _| trusted.contains(org));
        let actions = self.sync.set_trusted(trusted);
        self.run_sync(now, actions, out);
        // A publisher trusted again starts from what the store holds, not from nothing.
        for (org, seq) in heads {
            let actions = self.sync.local_head(&org, seq);
            self.run_sync(now, actions, out);
        }
        if self.config.permissioned {
            // An organization that left takes its nodes with it; a peer waiting (or leaving)
            // with a certificate the new version accepts is admitted.
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for peer in keys {
                let record = &self.peers[&peer];
                let cert = match &record.standing {
                    Standing::Admitted { cert, .. } => Some(cert.clone()),
                    Standing::Waiting { shown, .. } | Standing::Leaving { shown, .. } => shown.clone(),
                };
                let Some(cert) = cert else { continue };
                match (certs.check(&cert, &record.name), record.is_admitted()) {
                    (Ok(org), _) => self.admit(now, peer, org, cert, out),
                    (Err(_), true) => {
                        self.turn_away(now, peer, "its certificate is not valid under the new charter", out)
                    }
                    (Err(_), false) => {}
                }
            }
        }
        for (org, head) in resets {
            tracing::info!(%org, head = head.0, "feed changed by the charter; fetching it again from its head");
            if self.trusted.contains(&org) {
                self.reset_marks.insert(org.clone(), arrival);
            }
            let actions = self.sync.feed_reset(&org, head);
            self.run_sync(now, actions, out);
        }
        // Every peer hears the new version, and its heads are believed again: documents refused
        // under the old version are fetched again.
        let admitted: Vec<PeerKey> = self.peers.iter().filter(|(_, p)| p.is_admitted()).map(|(k, _)| *k).collect();
        for peer in admitted {
            if !self.has_pending(peer, &Pending::Status) {
                self.send(peer, Pending::Status, Outbound::Status, out);
            }
        }
    }

    // --- Time ----------------------------------------------------------------------------

    fn on_tick(&mut self, now: Instant, out: &mut Effects) {
        // Admission timeouts and turned-away peers.
        let due: Vec<(PeerKey, bool)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.deadline().is_some_and(|d| d <= now))
            .map(|(k, p)| (*k, matches!(p.standing, Standing::Waiting { .. })))
            .collect();
        for (peer, overdue) in due {
            if overdue {
                tracing::warn!(peer = %self.name(peer), "no valid certificate within the admission timeout; disconnecting");
            }
            // Forgotten now, so the deadline is not met twice; the shell's disconnect event
            // finds no record.
            self.on_disconnected(peer, out);
            out.push(Effect::Disconnect { peer });
        }
        for name in self.penalties.expire(now) {
            tracing::info!(peer = %name, "ban lifted");
            self.view_changed = true;
            out.push(Effect::Unban { name });
        }
        if let Some((_, tag, since)) = self.charter_pull {
            if now.saturating_duration_since(since) >= REQUEST_TIMEOUT {
                self.pending.remove(&tag);
                self.charter_pull = None;
            }
        }
        if self.next_status.is_none_or(|t| t <= now) {
            self.next_status = Some(now + STATUS_INTERVAL);
            let actions = self.sync.tick();
            self.run_sync(now, actions, out);
        }
        if self.next_retry.is_none_or(|t| t <= now) {
            self.next_retry = Some(now + RETRY_INTERVAL);
            self.fetch_payloads(now, out);
            let actions = self.sync.poll();
            self.run_sync(now, actions, out);
        }
    }

    fn fetch_payloads(&mut self, now: Instant, out: &mut Effects) {
        if self.payloads.reader.is_none() {
            return;
        }
        if let Some(r) = &self.payloads.in_flight {
            if now.saturating_duration_since(r.since) < REQUEST_TIMEOUT {
                return;
            }
            let r = self.payloads.in_flight.take().expect("checked above");
            self.pending.remove(&r.tag);
            self.payloads.not_served(r.ids);
        }
        if !self.payloads.walking
            && self.payloads.last_walk.is_none_or(|at| now.saturating_duration_since(at) >= PAYLOAD_WALK_INTERVAL)
        {
            self.payloads.last_walk = Some(now);
            self.payloads.walking = true;
            out.push(Effect::WalkNotices { after: self.payloads.walk_cursor });
        }
        let any_admitted = self.peers.values().any(PeerRecord::is_admitted);
        if self.payloads.filtering.is_some()
            || self.payloads.accepting.is_some()
            || !any_admitted
            || !self.payloads.has_wanted()
        {
            return;
        }
        let ids = self.payloads.take(PAYLOADS_MAX);
        self.payloads.filtering = Some(ids.clone());
        out.push(Effect::FilterPayloads { ids });
    }

    fn on_payloads_filtered(&mut self, now: Instant, ids: Vec<DocumentId>, out: &mut Effects) {
        let batch = self.payloads.filtering.take().unwrap_or_default();
        let dropped: Vec<DocumentId> = batch.iter().filter(|id| !ids.contains(id)).copied().collect();
        self.payloads.served(&dropped);
        let ids: Vec<DocumentId> = ids.into_iter().filter(|id| batch.contains(id)).collect();
        if ids.is_empty() {
            return;
        }
        let admitted: Vec<PeerKey> = self.peers.iter().filter(|(_, p)| p.is_admitted()).map(|(k, _)| *k).collect();
        if admitted.is_empty() {
            self.payloads.not_served(ids);
            return;
        }
        let peer = admitted[self.payloads.next_peer % admitted.len()];
        self.payloads.next_peer = self.payloads.next_peer.wrapping_add(1);
        let tag = self.send(peer, Pending::Payloads, Outbound::Payloads { ids: ids.clone() }, out);
        self.payloads.in_flight = Some(PayloadRequest { peer, tag, ids, since: now });
    }

    // --- Penalties and the sync engine ---------------------------------------------------

    fn penalize(&mut self, now: Instant, peer: PeerKey, offense: Offense, out: &mut Effects) {
        let Some(record) = self.peers.get(&peer) else { return };
        let name = record.name.clone();
        let org = record.org().cloned();
        self.view_changed = true;
        match self.penalties.penalize(&name, offense, now) {
            penalties::Verdict::Noted { points } => {
                tracing::warn!(peer = %name, reason = offense.code(), points, "peer penalized");
            }
            penalties::Verdict::Banned => {
                tracing::warn!(peer = %name, org = ?org, reason = offense.code(), "peer banned");
                out.push(Effect::Ban { name, org, offense });
                self.on_disconnected(peer, out);
            }
            penalties::Verdict::AlreadyBanned => {}
        }
    }

    fn run_sync(&mut self, now: Instant, actions: Vec<Action>, out: &mut Effects) {
        for action in actions {
            match action {
                Action::SendStatus { peer } => {
                    if self.peers.get(&peer).is_some_and(PeerRecord::is_admitted)
                        && !self.has_pending(peer, &Pending::Status)
                    {
                        self.send(peer, Pending::Status, Outbound::Status, out);
                    }
                }
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

    /// Sync actions after a peer left: no penalty can follow (the engine penalizes only on
    /// answers), so no time is needed.
    fn run_sync_no_time(&mut self, actions: Vec<Action>, out: &mut Effects) {
        for action in actions {
            match action {
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
                Action::SendStatus { .. } | Action::Penalize { .. } => {}
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
    }
}

fn refuse(tag: InboundTag, code: RefusalCode, reason: &str) -> Effect {
    Effect::Respond { tag, response: Response::Refused { code, reason: reason.into() } }
}

/// The effects of one event, in order.
type Effects = Vec<Effect>;
