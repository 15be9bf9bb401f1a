//! What the node and the sync engine say to each other: the engine's actions, the range ids
//! it names its requests by, the offenses it reports and how an ingest went.

use std::fmt;

use crate::document::{OrgId, Seq};

use super::PeerKey;

/// A range request, named by the engine when it asks and by the node when the answer or the
/// failure comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RangeId(pub(super) u64);

impl RangeId {
    /// The number, for logs.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "range#{}", self.0)
    }
}

/// What the node should do next.
#[must_use = "the node must carry out the action"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send our status (heads) to a peer.
    SendStatus { peer: PeerKey },
    /// Ask a peer for a range of a feed; report the outcome with `id`
    /// ([`SyncEngine::range_received`], [`SyncEngine::range_failed`]).
    RequestRange { id: RangeId, peer: PeerKey, org: OrgId, from: Seq, count: u32 },
    /// Verify and store these consecutive entries of `org` starting at `from`, served by `peer`.
    /// Ingest actions must be carried out, and reported, in the order they are returned.
    Ingest { peer: PeerKey, org: OrgId, from: Seq, docs: Vec<Vec<u8>> },
    /// The peer misbehaved; the node decides what an offense costs.
    Penalize { peer: PeerKey, offense: Offense },
}

/// How a peer misbehaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Offense {
    /// It answered a range with more entries or bytes than asked for.
    RangeTooLong,
    /// It served an entry that failed verification.
    InvalidDocument,
    /// It served entries of another feed or at other positions than asked.
    Misplaced,
    /// It announced a head of a feed and did not serve the entries up to it.
    UnservedClaim,
}

impl Offense {
    /// A stable machine-readable name.
    pub fn code(self) -> &'static str {
        match self {
            Offense::RangeTooLong => "range_too_long",
            Offense::InvalidDocument => "invalid_document",
            Offense::Misplaced => "misplaced",
            Offense::UnservedClaim => "unserved_claim",
        }
    }
}

/// How an ingest the engine asked for went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestResult {
    /// Every entry stored (or already held).
    Ok,
    /// An entry was invalid: the serving peer sent bad data. It is penalized, its claim of
    /// the feed is dropped until its next status, and the feed is fetched again from its head.
    Invalid,
    /// The node found entries not at the organization or positions asked for: as `Invalid`,
    /// and the reported head is ignored (it may be another feed's).
    Misplaced,
    /// An entry did not chain onto the feed (gap or different predecessor): the feed is
    /// fetched again from its head. Not penalized: the peer may hold the other branch of a
    /// fork.
    Mismatch,
    /// The feed is frozen by a fork: stop fetching it until a charter action resets it.
    Frozen,
    /// An entry is not accepted under this node's charter (publisher, key or type). The peer
    /// may hold it rightly under another charter version, so it is not penalized; its claim
    /// of the feed is dropped until its next status (the node asks every peer for one when
    /// the charter changes).
    Unauthorized,
    /// A lifecycle target of an entry is not held yet: nobody's fault. The feed is fetched
    /// again from its head from the next poll on, when the target may have arrived.
    Deferred,
}
