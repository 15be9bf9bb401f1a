//! The engine's state: requests outstanding, ranges handed to ingest, per-feed positions,
//! buffers and holes, and what each peer claims (with the caps on claims it failed to serve).

use std::collections::{BTreeMap, VecDeque};

use super::PeerKey;
use crate::document::OrgId;

/// A range request sent and not yet answered.
#[derive(Debug, Clone)]
pub(super) struct Outstanding {
    pub(super) peer: PeerKey,
    pub(super) org: OrgId,
    pub(super) from: u64,
    pub(super) count: u32,
    /// False once the feed was reset or fetched again: the answer is then discarded.
    pub(super) wanted: bool,
}

impl Outstanding {
    pub(super) fn last(&self) -> u64 {
        self.from + self.count as u64 - 1
    }
}

/// A range handed to ingest and not yet reported back.
#[derive(Debug, Clone)]
pub(super) struct Handed {
    pub(super) from: u64,
    pub(super) count: u64,
    /// Handed before the feed was reset or fetched again: its report says nothing about the
    /// feed as it is now.
    pub(super) stale: bool,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Feed {
    pub(super) local: u64,
    pub(super) handed: u64,
    pub(super) requested: u64,
    /// Ranges received but not yet handed, by first position.
    pub(super) ready: BTreeMap<u64, Buffered>,
    /// Holes to request again, by first position.
    pub(super) retry: BTreeMap<u64, Hole>,
    /// Ranges handed to ingest, in order. They count against the per-feed bound, so the
    /// network never runs further ahead of the writer than that bound.
    pub(super) ingesting: VecDeque<Handed>,
    pub(super) frozen: bool,
    /// A lifecycle target was missing: fetching waits for the next poll.
    pub(super) deferred: bool,
    /// Our head when the last status round went out (what peers believe we hold).
    pub(super) at_status: u64,
    /// The best claim (capped) any peer holds of it, kept as claims of it change: a whole
    /// scheduling pass runs on every answer and report, and reads this instead of walking
    /// every peer's claims beside every feed (feeds × peers string comparisons, 17 % of a
    /// 400-node, 400-feed harness's CPU while it converged).
    pub(super) best: u64,
}

/// A range received and not yet handed to ingest.
#[derive(Debug, Clone)]
pub(super) struct Buffered {
    pub(super) peer: PeerKey,
    pub(super) docs: Vec<Vec<u8>>,
    pub(super) bytes: u64,
}

/// A range to ask for again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hole {
    pub(super) count: u32,
    /// The peer whose answer or failure left it, asked again only if no other peer can be.
    pub(super) not_of: Option<PeerKey>,
}

impl Feed {
    /// Puts back the part of a range not yet handed, to be asked for again.
    pub(super) fn hole(&mut self, from: u64, count: u32, not_of: Option<PeerKey>) {
        let last = from + count as u64 - 1;
        let from = from.max(self.handed + 1);
        if from <= last {
            self.retry.insert(from, Hole { count: (last - from + 1) as u32, not_of });
        }
    }
}

/// What one peer claims to hold of one feed.
#[derive(Debug, Default, Clone)]
pub(super) struct Claim {
    /// Its last announced head (0: withdrawn until its next status).
    pub(super) head: u64,
    /// A bound on what it is believed to hold, since it failed to serve more.
    pub(super) cap: Option<Cap>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Cap {
    pub(super) at: u64,
    /// Its entries past `at` do not chain onto our feed (no penalty); otherwise it answered
    /// nothing within its claim.
    pub(super) other_branch: bool,
}

impl Claim {
    /// The head it is believed to hold.
    pub(super) fn effective(&self) -> u64 {
        self.cap.map_or(self.head, |c| c.at.min(self.head))
    }

    /// Nothing claimed, nothing capped: not worth keeping.
    pub(super) fn is_empty(&self) -> bool {
        self.head == 0 && self.cap.is_none()
    }

    /// Caps the claim at `at`, unless it is already no higher.
    pub(super) fn cap(&mut self, at: u64, other_branch: bool) -> bool {
        if self.effective() <= at {
            return false;
        }
        self.cap = Some(Cap { at, other_branch });
        true
    }
}

#[derive(Debug, Default, Clone)]
pub(super) struct Peer {
    /// Its claims of trusted feeds.
    pub(super) claims: BTreeMap<OrgId, Claim>,
}

impl Peer {
    /// Its claim of `org` no longer counts until its next status (a cap stays).
    pub(super) fn withdraw(&mut self, org: &OrgId) {
        if let Some(c) = self.claims.get_mut(org) {
            c.head = 0;
            if c.is_empty() {
                self.claims.remove(org);
            }
        }
    }
}
