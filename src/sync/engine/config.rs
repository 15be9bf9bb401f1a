//! The sync engine's limits, and how they relate.

use std::collections::BTreeSet;

use crate::document::{OrgId, DOCUMENT_SIZE_MAX_BYTES};
use crate::sync::wire::{RANGE_BYTES_MAX, RANGE_COUNT_MAX, STATUS_HEADS_MAX};

const RANGES_PER_FEED_MAX_DEFAULT: usize = 6;
const RANGES_PER_PEER_MAX_DEFAULT: usize = 6;
const RANGES_TOTAL_MAX_DEFAULT: usize = 32;
/// Default of [`SyncConfig::buffered_bytes_max`].
pub const BUFFERED_BYTES_MAX_DEFAULT: u64 = 64 * 1024 * 1024;

// A server always sends the first entry of a range, whatever its size: an answer of one
// document must fit `range_bytes`.
const _: () = assert!(DOCUMENT_SIZE_MAX_BYTES <= RANGE_BYTES_MAX as usize);
// With the default budget one feed, or one peer, can still use every slot it has.
const _: () = assert!(RANGES_PER_FEED_MAX_DEFAULT as u64 * RANGE_BYTES_MAX as u64 <= BUFFERED_BYTES_MAX_DEFAULT);
const _: () = assert!(RANGES_PER_PEER_MAX_DEFAULT as u64 * RANGE_BYTES_MAX as u64 <= BUFFERED_BYTES_MAX_DEFAULT);
const _: () = assert!(RANGES_PER_FEED_MAX_DEFAULT <= RANGES_TOTAL_MAX_DEFAULT);
const _: () = assert!(RANGES_PER_PEER_MAX_DEFAULT <= RANGES_TOTAL_MAX_DEFAULT);
// A status can name every organization a keyring or a charter may trust, so no trusted feed
// is out of a peer's reach.
const _: () = assert!(crate::authority::KEYRING_ORGS_MAX <= STATUS_HEADS_MAX);
const _: () = assert!(crate::charter::MEMBERS_MAX <= STATUS_HEADS_MAX);

/// Limits of the sync engine.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Documents asked for per range request.
    pub range_count: u32,
    /// Bytes asked for per range request; a longer answer is refused (`RangeTooLong`).
    pub range_bytes: u32,
    /// Ranges one feed may hold at once: in flight, buffered or being ingested.
    pub ranges_per_feed_max: usize,
    /// Range requests in flight to one peer.
    pub ranges_per_peer_max: usize,
    /// Range requests in flight in all.
    pub ranges_total_max: usize,
    /// Bytes of answers held at once: buffered, plus `range_bytes` for every request
    /// outstanding (each answer is bounded by it).
    pub buffered_bytes_max: u64,
    /// Replicate only these publishers (`None`: every trusted one).
    pub publishers: Option<BTreeSet<OrgId>>,
}

impl SyncConfig {
    /// Panics unless the limits allow fetching anything: they are the node's, not a peer's.
    pub(super) fn check(&self) {
        assert!(self.range_count >= 1 && self.range_count <= RANGE_COUNT_MAX, "range_count {}", self.range_count);
        assert!(
            self.range_bytes as usize >= DOCUMENT_SIZE_MAX_BYTES && self.range_bytes <= RANGE_BYTES_MAX,
            "range_bytes {} must hold one document and fit the wire",
            self.range_bytes
        );
        assert!(self.ranges_per_feed_max >= 1 && self.ranges_per_peer_max >= 1, "ranges per feed and per peer");
        assert!(self.ranges_total_max >= self.ranges_per_feed_max, "ranges_total_max below ranges_per_feed_max");
        assert!(self.buffered_bytes_max >= self.range_bytes as u64, "buffered_bytes_max below range_bytes");
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            range_count: RANGE_COUNT_MAX,
            range_bytes: RANGE_BYTES_MAX,
            ranges_per_feed_max: RANGES_PER_FEED_MAX_DEFAULT,
            ranges_per_peer_max: RANGES_PER_PEER_MAX_DEFAULT,
            ranges_total_max: RANGES_TOTAL_MAX_DEFAULT,
            buffered_bytes_max: BUFFERED_BYTES_MAX_DEFAULT,
            publishers: None,
        }
    }
}
