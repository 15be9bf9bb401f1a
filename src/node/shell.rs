//! The node shell: the task around the sans-IO [`Core`]. It owns the channels to the swarm
//! task and the ingest worker, the timers, the map between libp2p peer ids and the core's
//! peer keys, and the blocking store work, which runs on blocking threads in a join set the
//! shell owns; their results come back to the core as events. The shell decides nothing.
//!
//! It returns when shutdown is asked (`Ok`), or when something it depends on is gone — the
//! swarm task, the ingest worker, a store task that panicked — with why (`Err`), which stops
//! the node (see [`super::RunningNode`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::PeerId;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use super::core::payloads::PAYLOAD_WALK_STEP;
use super::core::RETRY_INTERVAL;
use super::core::{
    Certificates, ChartersApplied, Core, Done, Effect, Event, GossipId, InboundTag, Job, Outbound, PeerKey,
    ProofsRecorded, Verdict, ViewChange,
};
use super::serve;
use crate::charter::CertError;
use crate::document::{DocumentId, OrgId};
use crate::net::{limits, NetCommand, NetEvent, RequestFailure};
use crate::notice::NOTICE_TYPE;
use crate::service::{BanInfo, PeerInfo, Service, StoredEvent, TrustError};
use crate::sync::wire::{RefusalCode, Request, Response};

/// Reads of this node's own documents to gossip, at once; more are left to pull sync.
const GOSSIP_READS_MAX: usize = 64;

/// What a blocking store task hands back.
enum IoDone {
    /// An event for the core.
    Event(Event),
    /// A command for the swarm (a status with the heads read, an answer, own gossip).
    Command(NetCommand),
    /// An answer served: the command, and the event that frees the serving slot.
    Served(NetCommand, Event),
    /// One of this node's documents read for gossip (`None`: no longer held).
    Gossip(Option<Vec<u8>>),
}

/// Certificates checked against the service's trust in force, refusals counted.
struct ServiceCerts<'a>(&'a Service);

impl Certificates for ServiceCerts<'_> {
    fn check(&self, cert: &[u8], peer: &str) -> Result<OrgId, CertError> {
        self.0
            .check_certificate(cert, peer)
            .map(|c| c.organization)
            .inspect_err(|e| self.0.count_refused(e.refusal_code()))
    }
}

pub(super) struct Shell {
    pub core: Core,
    pub service: Arc<Service>,
    pub commands: mpsc::Sender<NetCommand>,
    pub jobs: mpsc::Sender<Job>,
    pub peer_id: PeerId,
    pub keys: HashMap<PeerId, PeerKey>,
    pub ids: HashMap<PeerKey, PeerId>,
    pub next_key: PeerKey,
    /// Gossip messages being judged (each gets one verdict from the core).
    pub gossip: HashMap<GossipId, (MessageId, PeerId)>,
    pub next_gossip: u64,
    /// Blocking store work, owned here so none outlives the shell.
    pub io: JoinSet<IoDoneBox>,
    pub gossip_reads: usize,
    /// The envelope of the document this node just published, from its stored event, held
    /// only while the core handles that event: its gossip is sent from it, not read back.
    pub own_envelope: Option<(DocumentId, Arc<[u8]>)>,
    /// When the peers view was last published, and whether it changed since.
    pub view: ViewRefresh,
}

/// The peers view (API, metrics) is rebuilt at once when peers come, go, are penalized or
/// banned, and at most once per [`VIEW_REFRESH_MIN`] when only their announced heads changed:
/// each rebuild copies every peer's heads, and a status arrives from each peer twice a round,
/// so rebuilding on every status cost 24 peers x feeds copies several times a second (a
/// quarter of the CPU of an idle 300-node harness). Heads not yet due wait for the next
/// tick, at most [`RETRY_INTERVAL`] away.
pub(super) const VIEW_REFRESH_MIN: Duration = Duration::from_secs(1);
const _: () = assert!(RETRY_INTERVAL.as_millis() <= VIEW_REFRESH_MIN.as_millis());

#[derive(Debug, Default)]
pub(super) struct ViewRefresh {
    published: Option<Instant>,
    changed: bool,
}

impl ViewRefresh {
    /// Notes a change; true when the view is due to be published at `now`.
    fn due(&mut self, now: Instant, change: ViewChange) -> bool {
        self.changed |= change != ViewChange::None;
        let due = change == ViewChange::Peers
            || (self.changed && self.published.is_none_or(|t| now.saturating_duration_since(t) >= VIEW_REFRESH_MIN));
        if due {
            self.published = Some(now);
            self.changed = false;
        }
        due
    }
}

/// `IoDone` boxed for the join set (its variants differ in size).
pub(super) struct IoDoneBox(Box<IoDone>);

/// The channels the shell listens on.
pub(super) struct Inputs {
    pub net: mpsc::Receiver<NetEvent>,
    pub done: mpsc::Receiver<Done>,
    pub stored: broadcast::Receiver<StoredEvent>,
    pub charter: watch::Receiver<u32>,
    /// Counts this node's certificate replacements (`Service::reload_certificate`).
    pub certificate: watch::Receiver<u64>,
    pub shutdown: watch::Receiver<bool>,
}

impl Shell {
    pub async fn run(mut self, mut inputs: Inputs) -> Result<(), String> {
        let mut expiry_tick = tokio::time::interval(limits::CHARTER_EXPIRY_CHECK_INTERVAL);
        self.handle(Event::Tick).await;
        loop {
            let now = Instant::now();
            let wake = self.core.next_wakeup().map_or(now + RETRY_INTERVAL, |t| t.min(now + RETRY_INTERVAL));
            tokio::select! {
                _ = inputs.shutdown.changed() => return Ok(()),
                event = inputs.net.recv() => match event {
                    Some(event) => self.on_net(event).await,
                    None => return Err("the swarm task stopped".into()),
                },
                done = inputs.done.recv() => match done {
                    Some(done) => self.handle(Event::Ingested(done)).await,
                    None => return Err("the ingest worker stopped".into()),
                },
                stored = inputs.stored.recv() => match stored {
                    Ok(ev) => {
                        let notice = ev.doc_type.as_str() == NOTICE_TYPE;
                        self.own_envelope = ev.envelope.map(|e| (ev.id, e));
                        let event =
                            Event::Stored { id: ev.id, publisher: ev.publisher, seq: ev.seq, notice, arrival: ev.arrival };
                        self.handle(event).await;
                        self.own_envelope = None;
                    }
                    // Missed events: the heads are read again from the store.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.exec(Effect::ReadHeads).await,
                    Err(broadcast::error::RecvError::Closed) => return Err("the service's event channel closed".into()),
                },
                Ok(()) = inputs.charter.changed() => {
                    let version = *inputs.charter.borrow_and_update();
                    self.spawn_io(move |s| {
                        let trusted = s.keyring().organizations().map(|o| o.id.clone()).collect();
                        let resets = s.take_feed_resets();
                        let arrival = s.store.last_arrival();
                        let heads = s.store.heads().map(|h| h.into_iter().map(|(o, h)| (o, h.seq)).collect());
                        IoDone::Event(Event::CharterChanged { version, trusted, resets, heads: heads.unwrap_or_default(), arrival })
                    });
                }
                Ok(()) = inputs.certificate.changed() => {
                    inputs.certificate.borrow_and_update();
                    // Peers that connect from now on see the new certificate in the hello.
                    let reader = self.core_reader();
                    self.core.set_own_cert(own_cert(&self.service), reader);
                    tracing::info!("this node's certificate was replaced; peers connecting from now on are shown the new one");
                }
                Some(finished) = self.io.join_next(), if !self.io.is_empty() => match finished {
                    Ok(IoDoneBox(done)) => self.on_io(*done).await,
                    Err(e) => return Err(format!("a store task failed: {e}")),
                },
                _ = tokio::time::sleep_until(wake.into()) => self.handle(Event::Tick).await,
                _ = expiry_tick.tick() => self.warn_expiry(),
            }
        }
    }

    /// Feeds one event to the core and carries out its effects.
    async fn handle(&mut self, event: Event) {
        let effects = self.core.handle(Instant::now(), event, &ServiceCerts(&self.service));
        #[cfg(debug_assertions)]
        self.core.check_invariants();
        for effect in effects {
            self.exec(effect).await;
        }
        let change = self.core.take_view_changed();
        if self.view.due(Instant::now(), change) {
            self.publish_view();
        }
    }

    async fn on_io(&mut self, done: IoDone) {
        match done {
            IoDone::Event(event) => self.handle(event).await,
            IoDone::Command(command) => self.send(command).await,
            IoDone::Served(command, event) => {
                self.send(command).await;
                self.handle(event).await;
            }
            IoDone::Gossip(data) => {
                self.gossip_reads -= 1;
                if let Some(data) = data {
                    self.send(NetCommand::Publish { data }).await;
                }
            }
        }
    }

    async fn on_net(&mut self, event: NetEvent) {
        let counters = &self.service.counters;
        match event {
            NetEvent::Listening { address } => {
                tracing::info!(%address, peer = %self.peer_id, "listening");
                let mut view = self.service.peers.write().unwrap_or_else(|p| p.into_inner());
                view.listen_addresses.push(format!("{address}/p2p/{}", self.peer_id));
            }
            NetEvent::PeerConnected { peer, address } => {
                let key = self.next_key;
                self.next_key += 1;
                self.keys.insert(peer, key);
                self.ids.insert(key, peer);
                let event = Event::Connected { peer: key, name: peer.to_string(), address: address.to_string() };
                self.handle(event).await;
            }
            NetEvent::PeerDisconnected { peer } => {
                if let Some(key) = self.keys.remove(&peer) {
                    self.ids.remove(&key);
                    self.handle(Event::Disconnected { peer: key }).await;
                }
            }
            NetEvent::InboundRequest { peer, request, tag } => {
                counters.sync_requests_in.fetch_add(1, Ordering::Relaxed);
                match self.keys.get(&peer) {
                    Some(key) => self.handle(Event::Request { peer: *key, tag: InboundTag(tag), request }).await,
                    // Its disconnect is on the way.
                    None => {
                        let response =
                            Response::Refused { code: RefusalCode::NotAdmitted, reason: "not connected".into() };
                        self.send(NetCommand::Respond { tag, response }).await;
                    }
                }
            }
            NetEvent::MalformedRequest { peer } => {
                if let Some(key) = self.keys.get(&peer) {
                    self.handle(Event::MalformedRequest { peer: *key }).await;
                }
            }
            NetEvent::Incompatible { peer, speaks } => {
                if let Some(key) = self.keys.get(&peer) {
                    self.handle(Event::Incompatible { peer: *key, speaks }).await;
                }
            }
            NetEvent::Response { tag, result, .. } => {
                self.handle(Event::Response { tag: super::core::Tag(tag), result }).await;
            }
            NetEvent::Gossip { source, message_id, data } => {
                counters.gossip_messages_in.fetch_add(1, Ordering::Relaxed);
                counters.gossip_bytes_in.fetch_add(data.len() as u64, Ordering::Relaxed);
                let Some(key) = self.keys.get(&source).copied() else {
                    let acceptance = MessageAcceptance::Ignore;
                    self.send(NetCommand::Validate { message_id, source, acceptance }).await;
                    return;
                };
                let gossip = GossipId(self.next_gossip);
                self.next_gossip += 1;
                self.gossip.insert(gossip, (message_id, source));
                self.handle(Event::Gossip { peer: key, gossip, data }).await;
            }
        }
    }

    async fn send(&self, command: NetCommand) {
        // The swarm task always takes commands; it only stops at shutdown or when it failed,
        // which the select loop notices.
        let _ = self.commands.send(command).await;
    }

    fn spawn_io(&mut self, work: impl FnOnce(&Service) -> IoDone + Send + 'static) {
        let service = self.service.clone();
        self.io.spawn_blocking(move || IoDoneBox(Box::new(work(&service))));
    }

    async fn exec(&mut self, effect: Effect) {
        let counters = &self.service.counters;
        match effect {
            Effect::Send { peer, tag, request } => {
                let Some(peer_id) = self.ids.get(&peer).copied() else { return };
                counters.sync_requests_out.fetch_add(1, Ordering::Relaxed);
                let tag = tag.0;
                let request = match request {
                    Outbound::Status { known, peer_holds } => {
                        self.spawn_io(move |s| match serve::status(s, known, peer_holds) {
                            Ok(status) => {
                                let request = Request::Status(status);
                                IoDone::Command(NetCommand::Request { peer: peer_id, request, tag })
                            }
                            // Not sent; the core's request slot is freed by the failure it hears.
                            Err(e) => IoDone::Event(Event::Response {
                                tag: super::core::Tag(tag),
                                result: Err(RequestFailure::Io(format!("reading this node's heads: {e}"))),
                            }),
                        });
                        return;
                    }
                    Outbound::Hello => Request::Hello { cert: own_cert(&self.service) },
                    Outbound::Range { org, from, count, bytes } => {
                        Request::Range { org, from, count_max: count, bytes_max: bytes }
                    }
                    Outbound::Charters { from_version } => Request::Charters { from_version },
                    Outbound::ForkProofs { org } => Request::ForkProofs { org },
                    Outbound::Payloads { ids } => Request::Payloads { ids },
                    Outbound::Checkpoints { orgs } => Request::Checkpoints { orgs },
                };
                self.send(NetCommand::Request { peer: peer_id, request, tag }).await;
            }
            Effect::Respond { tag, response } => {
                if let Response::Refused { code: RefusalCode::NotAdmitted, .. } = &response {
                    self.service.count_refused("peer_not_admitted");
                }
                self.send(NetCommand::Respond { tag: tag.0, response }).await
            }
            Effect::Serve { peer, tag, request, reader } => self.spawn_io(move |s| {
                let response = serve::answer(s, request, reader.as_ref());
                IoDone::Served(NetCommand::Respond { tag: tag.0, response }, Event::Served { peer })
            }),
            Effect::AnswerStatus { peer, tag, known, peer_holds } => self.spawn_io(move |s| {
                let response = match serve::status(s, known, peer_holds) {
                    Ok(status) => Response::Status(status),
                    Err(_) => Response::Refused { code: RefusalCode::Unavailable, reason: "store unavailable".into() },
                };
                IoDone::Served(NetCommand::Respond { tag: tag.0, response }, Event::Served { peer })
            }),
            Effect::Incompatible { peer } => {
                counters.peers_incompatible.fetch_add(1, Ordering::Relaxed);
                if let Some(peer_id) = self.ids.get(&peer).copied() {
                    self.send(NetCommand::Disconnect { peer: peer_id }).await;
                }
            }
            Effect::Ingest(job) => {
                // The core keeps at most as many jobs outstanding as the channel holds.
                if self.jobs.send(job).await.is_err() {
                    tracing::debug!("ingest worker gone; the select loop stops the node");
                }
            }
            Effect::Verdict { gossip, verdict } => {
                let Some((message_id, source)) = self.gossip.remove(&gossip) else { return };
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Reject => MessageAcceptance::Reject,
                };
                self.send(NetCommand::Validate { message_id, source, acceptance }).await;
            }
            Effect::GossipOwn { id } => {
                if let Some((_, envelope)) = self.own_envelope.take_if(|(own, _)| *own == id) {
                    let counters = &self.service.counters;
                    counters.gossip_messages_out.fetch_add(1, Ordering::Relaxed);
                    counters.gossip_bytes_out.fetch_add(envelope.len() as u64, Ordering::Relaxed);
                    self.send(NetCommand::Publish { data: envelope.to_vec() }).await;
                    return;
                }
                if self.gossip_reads >= GOSSIP_READS_MAX {
                    tracing::debug!(%id, "gossip reads at their bound; peers pull this document");
                    return;
                }
                self.gossip_reads += 1;
                self.spawn_io(move |s| {
                    let data = s.store.get(&id).ok().flatten();
                    if let Some(data) = &data {
                        s.counters.gossip_messages_out.fetch_add(1, Ordering::Relaxed);
                        s.counters.gossip_bytes_out.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    IoDone::Gossip(data)
                });
            }
            Effect::Admit { peer } => {
                if let Some(peer) = self.ids.get(&peer).copied() {
                    self.send(NetCommand::Admit { peer }).await;
                }
            }
            Effect::Disconnect { peer } => {
                if let Some(peer) = self.ids.get(&peer).copied() {
                    self.send(NetCommand::Disconnect { peer }).await;
                }
            }
            Effect::Ban { name, .. } => {
                if let Ok(peer) = name.parse::<PeerId>() {
                    self.send(NetCommand::Ban { peer }).await;
                }
            }
            Effect::Unban { name } => {
                if let Ok(peer) = name.parse::<PeerId>() {
                    self.send(NetCommand::Unban { peer }).await;
                }
            }
            Effect::ApplyCharters { peer, files } => self.spawn_io(move |s| {
                let outcome = match s.apply_charter_files(&files) {
                    Ok(applied) => {
                        tracing::debug!(?applied, "charter versions from a peer");
                        ChartersApplied::Applied
                    }
                    Err(e @ TrustError::Store(_)) => {
                        tracing::error!(error = %e, "charter version from a peer in force, but the store failed applying it");
                        ChartersApplied::StoreFailed
                    }
                    Err(e) => {
                        s.count_refused(e.code());
                        ChartersApplied::Invalid(e.code())
                    }
                };
                IoDone::Event(Event::ChartersApplied { peer, outcome })
            }),
            Effect::RecordForkProofs { peer, pairs } => self.spawn_io(move |s| {
                let outcome = match s.record_fork_proofs(pairs) {
                    Ok(()) => match s.store.forks() {
                        Ok(forks) => ProofsRecorded::Recorded(forks.into_iter().map(|f| (f.publisher, f.seq)).collect()),
                        Err(_) => ProofsRecorded::StoreFailed,
                    },
                    Err(reason) => ProofsRecorded::Invalid(reason),
                };
                IoDone::Event(Event::ProofsRecorded { peer, outcome })
            }),
            Effect::TakeCheckpoints { peer, items, forks, orgs } => self.spawn_io(move |s| {
                let invalid = take_checkpoints(s, items, forks);
                let held = orgs
                    .into_iter()
                    .filter_map(|org| Some((org.clone(), s.store.latest_checkpoint(&org).ok()??.0)))
                    .collect();
                IoDone::Event(Event::CheckpointsTaken { peer, invalid, held })
            }),
            Effect::FilterPayloads { ids } => {
                let reader = self.core_reader();
                self.spawn_io(move |s| {
                    let ids = ids
                        .into_iter()
                        .filter(|id| match (s.document(id), s.store.has_payload(id), &reader) {
                            (Ok(Some(doc)), Ok(false), Some(r)) => {
                                crate::notice::sealed_ref(&doc).is_some() && s.may_read(r, &doc)
                            }
                            _ => false,
                        })
                        .collect();
                    IoDone::Event(Event::PayloadsFiltered { ids })
                });
            }
            Effect::WalkNotices { after } => {
                let reader = self.core_reader();
                self.spawn_io(move |s| {
                    let (readable, next) = match (s.store.notices_missing_payload(after.as_ref(), PAYLOAD_WALK_STEP), &reader) {
                        (Ok(missing), Some(r)) => (
                            missing.notices.iter().filter(|doc| s.may_read(r, doc)).map(|doc| doc.id).collect(),
                            missing.next,
                        ),
                        // A store error: the walk starts again from its cursor next time.
                        _ => (Vec::new(), after),
                    };
                    IoDone::Event(Event::NoticesWalked { readable, next })
                });
            }
            Effect::AcceptPayloads { peer, items } => self.spawn_io(move |s| {
                let mut stored = Vec::new();
                let mut bad = 0;
                for (id, payload) in items {
                    match s.accept_payload(&id, &payload) {
                        Ok(()) => stored.push(id),
                        Err(e) => {
                            tracing::warn!(%id, error = %e, "a peer sent a payload that does not match its notice");
                            bad += 1;
                        }
                    }
                }
                IoDone::Event(Event::PayloadsAccepted { peer, stored, bad })
            }),
            Effect::ReadHeads => self.spawn_io(|s| {
                let heads = s.store.heads().map(|h| h.into_iter().map(|(o, h)| (o, h.seq)).collect()).unwrap_or_default();
                IoDone::Event(Event::Heads { heads })
            }),
        }
    }

    fn core_reader(&self) -> Option<OrgId> {
        self.service.certificate().map(|c| c.organization)
    }

    fn publish_view(&self) {
        let now = Instant::now();
        let peers = self
            .core
            .peer_summaries(now)
            .into_iter()
            .map(|p| PeerInfo {
                peer_id: p.name,
                address: p.address,
                organization: p.org,
                admitted: p.admitted,
                penalty_points: p.penalty_points,
                heads: p.heads,
            })
            .collect();
        let banned = self
            .core
            .bans(now)
            .into_iter()
            .map(|b| BanInfo { peer_id: b.name, offense: b.offense.to_string(), seconds_left: b.seconds_left })
            .collect();
        let (penalties, bans_total) = self.core.penalty_counts();
        let mut view = self.service.peers.write().unwrap_or_else(|p| p.into_inner());
        view.peers = peers;
        view.banned = banned;
        view.penalties = penalties.into_iter().map(|(o, n)| (o.to_string(), n)).collect();
        view.bans_total = bans_total;
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
}

fn own_cert(service: &Service) -> Vec<u8> {
    match (service.certificate(), service.keyring().charter().is_some()) {
        (Some(cert), true) => cert.bytes,
        _ => Vec::new(),
    }
}

/// Takes checkpoints and checkpoint-fork evidence from a peer; names the first that did not
/// verify (the peer's fault). A store failure is logged and blames nobody.
fn take_checkpoints(
    s: &crate::service::Service,
    items: Vec<crate::sync::wire::CheckpointItem>,
    forks: Vec<Vec<u8>>,
) -> Option<&'static str> {
    use crate::service::TakeError;
    let now_s = (crate::clock::now_ms() / 1000).max(0) as u64;
    let mut invalid = None;
    for item in items {
        match s.take_checkpoint(&item.note, &item.certs, now_s) {
            Ok(taken) => tracing::debug!(?taken, "checkpoint from a peer"),
            Err(TakeError::Refused(e)) => {
                s.count_refused(e.code());
                invalid = invalid.or(Some(e.code()));
            }
            Err(e) => tracing::warn!(error = %e, "could not take a checkpoint"),
        }
    }
    for evidence in forks {
        match s.take_checkpoint_fork(&evidence) {
            Ok(_) => {}
            Err(TakeError::Evidence(code)) => invalid = invalid.or(Some(code)),
            Err(e) => tracing::warn!(error = %e, "could not record checkpoint-fork evidence"),
        }
    }
    invalid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_coming_and_going_are_shown_at_once_and_heads_at_most_once_a_second_never_lost() {
        let (heads, peers, none) = (ViewChange::Heads, ViewChange::Peers, ViewChange::None);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut v = ViewRefresh::default();
        assert!(v.due(t0, heads), "the first change is published at once");
        assert!(!v.due(ms(10), heads), "new heads within the second wait");
        assert!(!v.due(ms(500), none), "still within the second");
        assert!(v.due(ms(600), peers), "a peer that came or went is shown at once, with the waiting heads");
        assert!(!v.due(ms(700), heads), "heads wait again, a second from that publish");
        assert!(v.due(ms(1600), none), "the waiting heads are published on the next tick due");
        assert!(!v.due(ms(5000), none), "nothing changed since: nothing to publish");
        assert!(v.due(ms(5000), heads), "heads after a quiet while go at once");
    }
}
