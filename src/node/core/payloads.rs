//! What the node core tracks of the sealed payloads it wants (docs/PROTOCOL.md §5.1): the
//! envelopes replicate like any document; a payload travels only on request, and a peer
//! answers only for notices whose audience includes the asker's certified organization.
//!
//! Wanted ids come from two places: notices stored while the node runs, and a periodic walk
//! over held notices lacking their payload (after a restart, or when no peer had it yet). The
//! store reads (the walk, filtering out what is held or not readable, checking and storing
//! what arrives) are effects the shell carries out; their results come back as events.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::{PeerKey, Tag};
use crate::document::{DocumentId, OrgId};

/// Ids waiting to be asked for; more are dropped (the walk finds them again).
pub const PAYLOADS_WANTED_MAX: usize = 4096;
/// How often held notices are walked for missing payloads.
pub const PAYLOAD_WALK_INTERVAL: Duration = Duration::from_secs(30);
/// Notices looked at per walk step.
pub const PAYLOAD_WALK_STEP: usize = 256;
/// Peers asked for one payload before it is left to the next walk.
const PAYLOAD_ATTEMPTS_MAX: u8 = 3;

/// The payload request in flight.
#[derive(Debug, Clone)]
pub struct PayloadRequest {
    pub peer: PeerKey,
    pub tag: Tag,
    pub ids: Vec<DocumentId>,
    pub since: Instant,
}

/// Payloads wanted, asked for, and the walk over held notices.
#[derive(Debug, Default)]
pub struct PayloadFetch {
    /// The organization this node reads as (its certificate's); `None`: it fetches nothing.
    pub reader: Option<OrgId>,
    wanted: VecDeque<DocumentId>,
    queued: HashSet<DocumentId>,
    attempts: HashMap<DocumentId, u8>,
    pub in_flight: Option<PayloadRequest>,
    /// Ids the shell is filtering (dropping those held or not readable).
    pub filtering: Option<Vec<DocumentId>>,
    /// Ids asked for whose answer the shell is checking and storing.
    pub accepting: Option<Vec<DocumentId>>,
    /// A walk step is being carried out by the shell.
    pub walking: bool,
    /// Where the walk over held notices resumes; `None` starts from the beginning.
    pub walk_cursor: Option<DocumentId>,
    pub last_walk: Option<Instant>,
    /// Rotates the peer asked.
    pub next_peer: usize,
}

impl PayloadFetch {
    /// Fetches payloads readable by `reader` (nothing when `None`).
    pub fn new(reader: Option<OrgId>) -> PayloadFetch {
        PayloadFetch { reader, ..Default::default() }
    }

    pub fn want(&mut self, id: DocumentId) {
        if self.wanted.len() < PAYLOADS_WANTED_MAX && self.queued.insert(id) {
            self.wanted.push_back(id);
        } else if !self.queued.contains(&id) {
            self.attempts.remove(&id);
        }
    }

    /// Up to `n` wanted ids, taken from the queue.
    pub fn take(&mut self, n: usize) -> Vec<DocumentId> {
        let n = n.min(self.wanted.len());
        let ids: Vec<DocumentId> = self.wanted.drain(..n).collect();
        for id in &ids {
            self.queued.remove(id);
        }
        ids
    }

    pub fn has_wanted(&self) -> bool {
        !self.wanted.is_empty()
    }

    /// Ids a peer did not serve go back in the queue, up to [`PAYLOAD_ATTEMPTS_MAX`] tries.
    pub fn not_served(&mut self, ids: Vec<DocumentId>) {
        for id in ids {
            let tries = self.attempts.entry(id).or_default();
            *tries += 1;
            if *tries < PAYLOAD_ATTEMPTS_MAX {
                self.want(id);
            } else {
                self.attempts.remove(&id);
            }
        }
    }

    /// Ids served (or no longer wanted): their attempts are forgotten.
    pub fn served(&mut self, ids: &[DocumentId]) {
        for id in ids {
            self.attempts.remove(id);
        }
    }

    pub fn check_invariants(&self) {
        assert!(self.wanted.len() <= PAYLOADS_WANTED_MAX, "payload queue over its bound");
        assert_eq!(self.wanted.len(), self.queued.len(), "payload queue and its index differ");
        let pending = |id: &DocumentId| {
            self.queued.contains(id)
                || self.in_flight.as_ref().is_some_and(|r| r.ids.contains(id))
                || self.filtering.as_ref().is_some_and(|f| f.contains(id))
                || self.accepting.as_ref().is_some_and(|a| a.contains(id))
        };
        assert!(self.attempts.keys().all(pending), "payload attempts kept for ids no longer pending");
    }
}
