//! The scheduling pass: which ranges to request now, from which peers, within every bound.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{Feed, Hole, Outstanding};
use super::{Action, OrgId, PeerKey, RangeId, Seq, SyncEngine};

impl SyncEngine {
    /// Ranges of `org` asked for and still wanted.
    pub(super) fn in_flight(&self, org: &OrgId) -> usize {
        self.requests.values().filter(|r| r.wanted && &r.org == org).count()
    }

    /// Ranges `org` holds a slot for: asked, buffered, or being ingested.
    pub(super) fn slots(&self, org: &OrgId) -> usize {
        self.feeds.get(org).map_or(0, |f| f.ready.len() + f.ingesting.len()) + self.in_flight(org)
    }

    /// Whether one more request keeps every total bound: requests, and bytes (each answer
    /// may take `range_bytes` of the budget).
    fn room_for_request(&self) -> bool {
        let reserved = (self.requests.len() as u64 + 1) * self.config.range_bytes as u64;
        self.requests.len() < self.config.ranges_total_max
            && self.buffered_bytes + reserved <= self.config.buffered_bytes_max
    }

    /// Requests what peers have and we lack, within every bound. First the range each feed
    /// needs next (its answer goes straight to ingest and frees its budget), then ranges that
    /// would be buffered: a budget filled by buffered ranges then always leaves room for the
    /// hole they wait behind.
    pub(super) fn schedule(&mut self) -> Vec<Action> {
        self.busy_since_pass = false;
        let orgs = self.wanting();
        self.request(orgs)
    }

    /// The scheduling pass for `changed` alone: after an event that changed only peers'
    /// claims of these feeds (a status, a gossiped head). It requests what a whole pass would:
    /// after the last whole pass no other feed could be requested for, and nothing the event
    /// changed lets one be. A refusal for load since then is left for the next poll's whole
    /// pass. During propagation every peer's status moves a few claims a second, and this
    /// looks at those feeds alone.
    pub(super) fn schedule_feeds(&mut self, changed: &BTreeSet<OrgId>) -> Vec<Action> {
        let orgs = changed.iter().filter(|org| self.feeds.get(*org).is_some_and(wants)).cloned().collect();
        self.request(orgs)
    }

    /// Requests ranges of `orgs`, feeds that want some, in that order.
    fn request(&mut self, orgs: Vec<OrgId>) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut per_peer: BTreeMap<PeerKey, usize> = self.peers.keys().map(|k| (*k, 0)).collect();
        for r in self.requests.values() {
            *per_peer.get_mut(&r.peer).expect("a request's peer is connected") += 1;
        }
        for next_only in [true, false] {
            for org in &orgs {
                loop {
                    if !self.room_for_request() {
                        return actions;
                    }
                    let slots = self.slots(org);
                    let f = self.feeds.get_mut(org).expect("listed above");
                    if slots >= self.config.ranges_per_feed_max {
                        break;
                    }
                    let (from, count, retry) = match f.retry.first_key_value() {
                        Some((from, h)) => (*from, h.count, Some(*h)),
                        None => (f.requested + 1, self.config.range_count, None),
                    };
                    if next_only && from != f.handed + 1 {
                        break;
                    }
                    // A peer that claims to hold the start of the range, preferably not the one
                    // that left the hole; then one that holds the whole range; then the one that
                    // holds the least of the feed; then the least busy. It is asked for as much
                    // as it claims. Holding the least first is what spreads a bootstrap (fan-in):
                    // the feed's publisher, which holds all of it, is asked only for what no
                    // replica it fed has yet, so the replicas serve each other what they hold.
                    let not_of = retry.and_then(|h| h.not_of);
                    let wanted_last = from + count as u64 - 1;
                    let peer = self
                        .peers
                        .iter()
                        .filter(|(k, _)| per_peer[k] < self.config.ranges_per_peer_max)
                        .filter_map(|(k, p)| p.claims.get(org).map(|c| (*k, c.effective())))
                        .filter(|(_, h)| *h >= from)
                        .min_by_key(|(k, h)| (Some(*k) == not_of, *h < wanted_last, *h, per_peer[k]));
                    let Some((peer, claim)) = peer else { break };
                    let last = (from + count as u64 - 1).min(claim);
                    let asked = (last - from + 1) as u32;
                    let f = self.feeds.get_mut(org).expect("listed above");
                    if retry.is_some() {
                        f.retry.remove(&from);
                        if asked < count {
                            f.retry.insert(last + 1, Hole { count: count - asked, not_of });
                        }
                    } else {
                        f.requested = last;
                    }
                    let id = RangeId(self.next_id);
                    self.next_id += 1;
                    self.requests.insert(id, Outstanding { peer, org: org.clone(), from, count: asked, wanted: true });
                    *per_peer.get_mut(&peer).expect("chosen among them") += 1;
                    actions.push(Action::RequestRange { id, peer, org: org.clone(), from: Seq(from), count: asked });
                }
            }
        }
        actions
    }

    /// The feeds a scheduling pass may request for: not waiting, and with a hole to ask for
    /// again or a peer believed to hold past what was requested. A pass on a quiet node finds
    /// nothing to do for any feed, and learns it here from each feed's kept best claim.
    pub(super) fn wanting(&self) -> Vec<OrgId> {
        self.feeds.iter().filter(|(_, f)| wants(f)).map(|(org, _)| org.clone()).collect()
    }
}

/// Whether a scheduling pass may request for `f`: not waiting, and with a hole to ask for
/// again or a peer believed to hold past what was requested.
fn wants(f: &Feed) -> bool {
    !f.frozen && !f.deferred && (!f.retry.is_empty() || f.best > f.requested)
}
