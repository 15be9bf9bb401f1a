//! The engine's invariants, checked after every event by the tests (the engine's and the
//! node's).

use std::collections::BTreeMap;

use super::{Claim, PeerKey, SyncEngine};

impl SyncEngine {
    /// Panics unless the engine's state is consistent: for the node's tests and the engine's.
    pub fn check_invariants(&self) {
        let c = &self.config;
        for org in self.feeds.keys() {
            assert!(self.is_trusted(org), "a feed of {org}, which is not trusted");
        }
        for (key, p) in &self.peers {
            for (org, c) in &p.claims {
                assert!(self.is_trusted(org), "peer {key} holds a claim of {org}, which is not trusted");
                assert!(self.feeds.contains_key(org), "peer {key} holds a claim of {org}, which has no feed");
                assert!(!c.is_empty(), "peer {key} holds an empty claim of {org}");
            }
            assert!(p.claims.len() <= self.trusted.len(), "peer {key} holds {} claims", p.claims.len());
        }
        assert!(self.orphans.values().all(|n| *n >= 1), "orphan reports: {:?}", self.orphans);
        let buffered: u64 =
            self.feeds.values().flat_map(|f| f.ready.values()).flat_map(|b| &b.docs).map(|d| d.len() as u64).sum();
        assert_eq!(buffered, self.buffered_bytes, "bytes buffered");
        let reserved = self.requests.len() as u64 * c.range_bytes as u64;
        assert!(buffered + reserved <= c.buffered_bytes_max, "{buffered} bytes buffered and {reserved} reserved");
        let mut per_peer: BTreeMap<PeerKey, usize> = BTreeMap::new();
        for (id, r) in &self.requests {
            assert!(id.0 < self.next_id, "{id} was never given out");
            assert!(self.peers.contains_key(&r.peer), "{id} is to peer {} which is gone", r.peer);
            assert!(r.count >= 1 && r.count <= c.range_count, "{id} asks for {} entries", r.count);
            assert!(!r.wanted || self.feeds.contains_key(&r.org), "{id} is wanted by no feed");
            *per_peer.entry(r.peer).or_default() += 1;
        }
        for (peer, n) in &per_peer {
            assert!(*n <= c.ranges_per_peer_max, "{n} requests to peer {peer}");
        }
        assert!(self.requests.len() <= c.ranges_total_max, "{} requests in all", self.requests.len());
        for (org, f) in &self.feeds {
            assert!(
                f.local <= f.handed && f.handed <= f.requested,
                "{org}: {}, {}, {}",
                f.local,
                f.handed,
                f.requested
            );
            assert!(self.slots(org) <= c.ranges_per_feed_max, "{org} holds {} slots", self.slots(org));
            // Every position between handed and requested is in exactly one place.
            let mut parts: Vec<(u64, u64, &str)> = Vec::new();
            for (from, b) in &f.ready {
                assert!(!b.docs.is_empty(), "{org}: empty range buffered at {from}");
                assert!(b.bytes <= c.range_bytes as u64, "{org}: range at {from} of {} bytes", b.bytes);
                assert!(*from > f.handed + 1, "{org}: range at {from} buffered but not handed");
                parts.push((*from, from + b.docs.len() as u64 - 1, "buffered"));
            }
            for (from, h) in &f.retry {
                assert!(h.count >= 1 && *from > f.handed, "{org}: hole {from}+{} at or below {}", h.count, f.handed);
                parts.push((*from, from + h.count as u64 - 1, "hole"));
            }
            for r in self.requests.values().filter(|r| r.wanted && &r.org == org) {
                assert!(r.last() > f.handed, "{org}: request at {} wanted below {}", r.from, f.handed);
                parts.push((r.from.max(f.handed + 1), r.last(), "asked"));
            }
            parts.sort();
            let mut next = f.handed + 1;
            for (from, last, what) in parts {
                assert_eq!(from, next, "{org}: {what} {from}..={last} where {next} was expected");
                next = last + 1;
            }
            assert_eq!(
                next,
                f.requested + 1,
                "{org}: positions up to {} are covered, requested {}",
                next - 1,
                f.requested
            );
            if f.frozen || f.deferred {
                assert!(f.ready.is_empty() && f.retry.is_empty() && self.in_flight(org) == 0, "{org} is waiting");
            }
            let mut next = 0;
            for h in f.ingesting.iter().filter(|h| !h.stale) {
                assert!(h.count >= 1 && h.from >= next, "{org}: ranges handed out of order");
                assert!(h.from + h.count - 1 <= f.handed, "{org}: a range handed past {}", f.handed);
                next = h.from + h.count;
            }
        }
        // The pass's shortcut names exactly the feeds it could request for.
        let wanting = self.wanting();
        for (org, f) in &self.feeds {
            let best = self.peers.values().filter_map(|p| p.claims.get(org)).map(Claim::effective).max().unwrap_or(0);
            assert_eq!(f.best, best, "{org}: the best claim kept is not the peers' best");
            let wants = !f.frozen && !f.deferred && (!f.retry.is_empty() || best > f.requested);
            assert_eq!(wanting.contains(org), wants, "{org}: best claim {best}, requested {}", f.requested);
        }
        // What lets `poll` skip its pass: with no refusal for load since the last pass and no
        // feed deferred, a pass now would request nothing.
        if !self.busy_since_pass && self.feeds.values().all(|f| !f.deferred) {
            let asked = self.clone().schedule();
            assert!(asked.is_empty(), "poll would skip a pass that requests {asked:?}");
        }
    }
}
