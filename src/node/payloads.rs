//! Fetching the sealed payloads of enforcement notices this node's organization may read
//! (docs/PROTOCOL.md §5.1). The envelopes replicate like any document; a payload travels only
//! on request, and a peer answers only for notices whose audience includes the asker's
//! organization, proven by its node certificate.
//!
//! Wanted ids come from two places: notices stored while the node runs, and a periodic walk
//! over held notices lacking their payload (after a restart, or when no peer had it yet).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::{Engine, Pending};
use crate::document::{DocumentId, OrgId};
use crate::net::{limits, NetCommand};
use crate::notice::NOTICE_TYPE;
use crate::sync::wire::{Request, PAYLOADS_MAX};

/// Ids waiting to be asked for; more are dropped (the walk finds them again).
pub const PAYLOADS_WANTED_MAX: usize = 4096;
/// How often held notices are walked for missing payloads.
pub const PAYLOAD_WALK_INTERVAL: Duration = Duration::from_secs(30);
/// Notices looked at per walk step.
const PAYLOAD_WALK_STEP: usize = 256;
/// Peers asked for one payload before it is left to the next walk.
const PAYLOAD_ATTEMPTS_MAX: u8 = 3;

/// What the engine tracks of payloads it wants.
#[derive(Default)]
pub struct PayloadFetch {
    /// The organization this node reads as (its certificate's); `None`: it fetches nothing.
    pub reader: Option<OrgId>,
    wanted: VecDeque<DocumentId>,
    attempts: HashMap<DocumentId, u8>,
    /// The request in flight, if any, and when it was sent.
    in_flight: Option<(Vec<DocumentId>, Instant)>,
    /// Where the walk over held notices resumes; `None` starts from the beginning.
    walk_cursor: Option<DocumentId>,
    last_walk: Option<Instant>,
    /// Rotates the peer asked.
    next_peer: usize,
}

impl PayloadFetch {
    /// Fetches payloads readable by `reader` (nothing when `None`).
    pub fn new(reader: Option<OrgId>) -> PayloadFetch {
        PayloadFetch { reader, ..Default::default() }
    }

    /// The request in flight, now answered or failed.
    pub fn in_flight_take(&mut self) -> Option<(Vec<DocumentId>, Instant)> {
        self.in_flight.take()
    }

    fn want(&mut self, id: DocumentId) {
        if self.wanted.len() < PAYLOADS_WANTED_MAX && !self.wanted.contains(&id) {
            self.wanted.push_back(id);
        }
    }
}

impl Engine {
    /// A notice was stored: its payload may be wanted.
    pub(super) fn payload_maybe_wanted(&mut self, id: DocumentId, doc_type: &str) {
        if doc_type == NOTICE_TYPE && self.payloads.reader.is_some() {
            self.payloads.want(id);
        }
    }

    /// Periodic: walks held notices now and then, and asks one admitted peer for the next
    /// wanted payloads this node may read and lacks.
    pub(super) async fn fetch_payloads(&mut self) {
        let Some(reader) = self.payloads.reader.clone() else { return };
        let now = Instant::now();
        if self.payloads.in_flight.as_ref().is_some_and(|(_, at)| now.duration_since(*at) < limits::REQUEST_TIMEOUT) {
            return;
        }
        if let Some((ids, _)) = self.payloads.in_flight.take() {
            self.payloads_not_served(ids);
        }
        if self.payloads.last_walk.is_none_or(|at| now.duration_since(at) >= PAYLOAD_WALK_INTERVAL) {
            self.payloads.last_walk = Some(now);
            self.walk_notices(reader.clone()).await;
        }
        let peers: Vec<PeerId> = self.admission.as_ref().map(|a| a.admitted_peers()).unwrap_or_default();
        if self.payloads.wanted.is_empty() || peers.is_empty() {
            return;
        }
        let batch: Vec<DocumentId> = {
            let n = self.payloads.wanted.len().min(PAYLOADS_MAX);
            self.payloads.wanted.drain(..n).collect()
        };
        let s = self.service.clone();
        let r = reader.clone();
        let ids = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .filter(|id| match (s.document(id), s.store.has_payload(id)) {
                    (Ok(Some(doc)), Ok(false)) => crate::notice::sealed_ref(&doc).is_some() && s.may_read(&r, &doc),
                    _ => false,
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        if ids.is_empty() {
            return;
        }
        let peer = peers[self.payloads.next_peer % peers.len()];
        self.payloads.next_peer = self.payloads.next_peer.wrapping_add(1);
        self.payloads.in_flight = Some((ids.clone(), now));
        let tag = self.tag(Pending::Payloads);
        self.send(NetCommand::Request { peer, request: Request::Payloads { ids }, tag }).await;
    }

    /// One step of the walk over held notices missing their payload.
    async fn walk_notices(&mut self, reader: OrgId) {
        let s = self.service.clone();
        let after = self.payloads.walk_cursor;
        let step = tokio::task::spawn_blocking(move || {
            let missing = s.store.notices_missing_payload(after.as_ref(), PAYLOAD_WALK_STEP)?;
            let readable: Vec<DocumentId> =
                missing.notices.iter().filter(|doc| s.may_read(&reader, doc)).map(|doc| doc.id).collect();
            Ok::<_, crate::store::StoreError>((readable, missing.next))
        })
        .await;
        if let Ok(Ok((readable, next))) = step {
            self.payloads.walk_cursor = next;
            for id in readable {
                self.payloads.want(id);
            }
        }
    }

    /// A payload response: each payload is checked against its notice's commitment and stored.
    pub(super) async fn on_payloads(&mut self, peer: PeerId, items: Vec<(DocumentId, Vec<u8>)>) {
        let Some((asked, _)) = self.payloads.in_flight.take() else { return };
        let s = self.service.clone();
        let asked_for = asked.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut stored = Vec::new();
            let mut bad = 0;
            for (id, payload) in items {
                if !asked_for.contains(&id) {
                    bad += 1;
                    continue;
                }
                match s.accept_payload(&id, &payload) {
                    Ok(()) => stored.push(id),
                    Err(e) => {
                        tracing::warn!(%id, error = %e, "a peer sent a payload that does not match its notice");
                        bad += 1;
                    }
                }
            }
            (stored, bad)
        })
        .await;
        let Ok((stored, bad)) = outcome else { return };
        if !stored.is_empty() {
            tracing::info!(%peer, count = stored.len(), "sealed payloads received");
        }
        if bad > 0 {
            self.penalize(peer, "invalid_payload", 5).await;
        }
        let missing: Vec<DocumentId> = asked.into_iter().filter(|id| !stored.contains(id)).collect();
        self.payloads_not_served(missing);
    }

    /// Ids a peer did not serve go back in the queue, up to [`PAYLOAD_ATTEMPTS_MAX`] tries.
    pub(super) fn payloads_not_served(&mut self, ids: Vec<DocumentId>) {
        for id in ids {
            let tries = self.payloads.attempts.entry(id).or_default();
            *tries += 1;
            if *tries < PAYLOAD_ATTEMPTS_MAX {
                self.payloads.want(id);
            } else {
                self.payloads.attempts.remove(&id);
            }
        }
    }
}
