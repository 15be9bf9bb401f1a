//! Where an event stream resumes: a node's own arrival number, or a feed cursor that means the
//! same on every node.
//!
//! Why two: arrival numbers are per node (the order this node stored documents in), so a
//! client behind a load balancer that reconnects to another replica would skip or repeat
//! events. A feed position (publisher, sequence number) is the same document on every honest
//! node, so a cursor of per-feed positions, `feeds:US=12,WCO=1523`, resumes anywhere: the node
//! sends each matching document past the position of its feed. Arrival ids stay the default
//! (short, and what existing clients hold); `?ids=feed` asks for feed cursors.

use std::collections::BTreeMap;

use super::ApiError;
use crate::document::{OrgId, Seq};

/// The text every feed cursor starts with.
pub const FEED_CURSOR_PREFIX: &str = "feeds:";
/// Most feeds one cursor names (well above the ~400 publishers planned for).
pub const FEED_CURSOR_FEEDS_MAX: usize = 4096;

/// Positions passed, per feed: every entry at or below its feed's position was sent or
/// filtered out. A feed absent from the map is at position 0 (nothing passed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedCursor(BTreeMap<OrgId, u64>);

/// Where a stream resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// After this node's arrival number.
    Arrival(u64),
    /// After these feed positions.
    Feeds(FeedCursor),
}

impl Resume {
    /// Parses a `Last-Event-ID` or `after` value: digits, or a feed cursor.
    pub fn parse(s: &str) -> Result<Resume, ApiError> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix(FEED_CURSOR_PREFIX) {
            return FeedCursor::parse(rest).map(Resume::Feeds);
        }
        s.parse::<u64>().map(Resume::Arrival).map_err(|_| {
            ApiError::BadRequest(format!(
                "a resume position is an arrival number (digits) or a feed cursor ({FEED_CURSOR_PREFIX}ORG=SEQ,...)"
            ))
        })
    }
}

impl FeedCursor {
    /// Parses the part after [`FEED_CURSOR_PREFIX`]: `ORG=SEQ` pairs separated by commas.
    fn parse(s: &str) -> Result<FeedCursor, ApiError> {
        let bad = |why: String| ApiError::BadRequest(format!("bad feed cursor: {why}"));
        let mut map = BTreeMap::new();
        if s.is_empty() {
            return Ok(FeedCursor(map));
        }
        for pair in s.split(',') {
            if map.len() >= FEED_CURSOR_FEEDS_MAX {
                return Err(bad(format!("more than {FEED_CURSOR_FEEDS_MAX} feeds")));
            }
            let (org, seq) = pair.split_once('=').ok_or_else(|| bad(format!("'{pair}' is not ORG=SEQ")))?;
            let org = OrgId::new(org).map_err(|e| bad(e.to_string()))?;
            let seq: u64 = seq.parse().map_err(|_| bad(format!("'{seq}' is not a sequence number")))?;
            if map.insert(org, seq).is_some() {
                return Err(bad(format!("'{pair}' names its feed twice")));
            }
        }
        Ok(FeedCursor(map))
    }

    /// The cursor as an SSE event id (organizations in order, so equal cursors are equal text).
    pub fn encode(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(org, seq)| format!("{org}={seq}")).collect();
        format!("{FEED_CURSOR_PREFIX}{}", pairs.join(","))
    }

    /// The position passed in `org`'s feed.
    pub fn position(&self, org: &OrgId) -> Seq {
        Seq(self.0.get(org).copied().unwrap_or(0))
    }

    /// Records that `org`'s entry at `seq` is passed; `false` (and no change) when it was
    /// passed already, so it must not be sent again.
    pub fn advance(&mut self, org: &OrgId, seq: Seq) -> bool {
        if seq <= self.position(org) {
            return false;
        }
        self.0.insert(org.clone(), seq.0);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(s: &str) -> OrgId {
        OrgId::new(s).unwrap()
    }

    #[test]
    fn a_feed_cursor_round_trips_and_names_feeds_in_order() {
        let mut c = FeedCursor::default();
        assert_eq!(c.encode(), "feeds:");
        assert!(c.advance(&org("WCO"), Seq(3)));
        assert!(c.advance(&org("US"), Seq(1)));
        assert!(!c.advance(&org("WCO"), Seq(2)), "an older entry is passed already");
        assert!(!c.advance(&org("WCO"), Seq(3)));
        assert_eq!(c.encode(), "feeds:US=1,WCO=3");
        assert_eq!(Resume::parse(&c.encode()).unwrap(), Resume::Feeds(c.clone()));
        assert_eq!(Resume::parse("feeds:").unwrap(), Resume::Feeds(FeedCursor::default()));
        assert_eq!(Resume::parse(" 42 ").unwrap(), Resume::Arrival(42));
        assert_eq!(c.position(&org("FR")), Seq(0));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for bad in ["", "yesterday", "-1", "feeds:WCO", "feeds:wco=1", "feeds:WCO=x", "feeds:WCO=1,WCO=2", "feeds:,"] {
            assert!(Resume::parse(bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=FEED_CURSOR_FEEDS_MAX).map(|i| format!("O{i}=1")).collect();
        assert!(Resume::parse(&format!("feeds:{}", many.join(","))).is_err());
    }
}
