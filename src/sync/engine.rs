//! The sync state machine: which ranges of which feeds to fetch from which peers, and in
//! what order to hand them to ingest.
//!
//! Per feed it tracks three positions: `local` (the head in the store), `handed` (the last
//! position handed to ingest) and `requested` (the last position covered by a request), with
//! `local ≤ handed ≤ requested`. Several ranges of one feed may be in flight at once, from
//! different peers; responses are buffered and handed to ingest strictly in order, since a
//! feed is stored without gaps. Every buffer is bounded by the number of ranges in flight.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::document::{OrgId, Seq};

/// An opaque peer handle given by the node.
pub type PeerKey = u64;

/// Limits of the sync engine.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Documents asked for per range request.
    pub range_count: u32,
    /// Bytes asked for per range request.
    pub range_bytes: u32,
    /// Ranges one feed may hold at once: in flight, buffered or being ingested.
    pub ranges_per_feed_max: usize,
    /// Range requests in flight to one peer.
    pub ranges_per_peer_max: usize,
    /// Range requests in flight in all.
    pub ranges_total_max: usize,
    /// Replicate only these publishers (`None`: all).
    pub publishers: Option<BTreeSet<OrgId>>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            range_count: super::wire::RANGE_COUNT_MAX,
            range_bytes: super::wire::RANGE_BYTES_MAX,
            ranges_per_feed_max: 6,
            ranges_per_peer_max: 6,
            ranges_total_max: 32,
            publishers: None,
        }
    }
}

/// What the node should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send our status (heads) to a peer.
    SendStatus { peer: PeerKey },
    /// Ask a peer for a range of a feed.
    RequestRange { peer: PeerKey, org: OrgId, from: Seq, count: u32 },
    /// Verify and store these consecutive entries of `org` starting at `from`, served by `peer`.
    /// Ingest actions must be carried out in the order they are returned.
    Ingest { peer: PeerKey, org: OrgId, from: Seq, docs: Vec<Vec<u8>> },
    /// The peer misbehaved.
    Penalize { peer: PeerKey, reason: &'static str },
}

/// How an ingest the engine asked for went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestResult {
    /// Every entry stored (or already held).
    Ok,
    /// An entry was invalid: the serving peer sent bad data.
    Invalid,
    /// An entry did not fit the feed (gap or different predecessor): refetch from the head.
    Mismatch,
    /// The feed is frozen by a fork: stop fetching it.
    Frozen,
    /// An entry is not accepted under this node's charter (publisher, key or type). The peer
    /// may hold it rightly under another charter version, so it is not penalized; its
    /// announced head of the feed is dropped until its next status.
    Unauthorized,
}

#[derive(Debug, Default)]
struct Feed {
    local: u64,
    handed: u64,
    requested: u64,
    /// Ranges in flight: from → (peer, count).
    in_flight: BTreeMap<u64, (PeerKey, u32)>,
    /// Ranges received but not yet handed: from → (peer, docs).
    ready: BTreeMap<u64, (PeerKey, Vec<Vec<u8>>)>,
    /// Holes to request again: from → count.
    retry: BTreeMap<u64, u32>,
    /// Ranges handed to ingest and not yet reported back. They count against the per-feed
    /// bound, so the network never runs further ahead of the writer than that bound.
    ingesting: usize,
    frozen: bool,
}

impl Feed {
    /// Ranges this feed holds a slot for: asked, buffered, or being ingested.
    fn slots(&self) -> usize {
        self.in_flight.len() + self.ready.len() + self.ingesting
    }
}

#[derive(Debug, Default)]
struct Peer {
    heads: HashMap<OrgId, u64>,
    in_flight: usize,
}

/// The sync engine. Feed it events; carry out the actions it returns.
#[derive(Debug)]
pub struct SyncEngine {
    config: SyncConfig,
    feeds: BTreeMap<OrgId, Feed>,
    peers: BTreeMap<PeerKey, Peer>,
    in_flight_total: usize,
}

impl SyncEngine {
    /// A new engine knowing the store's current heads.
    pub fn new(config: SyncConfig, local_heads: impl IntoIterator<Item = (OrgId, Seq)>) -> SyncEngine {
        let mut engine = SyncEngine { config, feeds: BTreeMap::new(), peers: BTreeMap::new(), in_flight_total: 0 };
        for (org, seq) in local_heads {
            engine.feed(&org).local = seq.0;
            let f = engine.feed(&org);
            f.handed = seq.0;
            f.requested = seq.0;
        }
        engine
    }

    fn feed(&mut self, org: &OrgId) -> &mut Feed {
        self.feeds.entry(org.clone()).or_default()
    }

    fn wanted(&self, org: &OrgId) -> bool {
        self.config.publishers.as_ref().is_none_or(|p| p.contains(org))
    }

    /// A peer connected: exchange status.
    pub fn peer_connected(&mut self, peer: PeerKey) -> Vec<Action> {
        self.peers.entry(peer).or_default();
        vec![Action::SendStatus { peer }]
    }

    /// A peer went away: its ranges in flight are requested again elsewhere.
    pub fn peer_disconnected(&mut self, peer: PeerKey) -> Vec<Action> {
        self.peers.remove(&peer);
        for f in self.feeds.values_mut() {
            let lost: Vec<u64> = f.in_flight.iter().filter(|(_, (p, _))| *p == peer).map(|(from, _)| *from).collect();
            for from in lost {
                let (_, count) = f.in_flight.remove(&from).expect("listed above");
                self.in_flight_total -= 1;
                f.retry.insert(from, count);
            }
        }
        self.schedule()
    }

    /// A peer told us its heads (in its status request or response).
    pub fn status_received(&mut self, peer: PeerKey, heads: impl IntoIterator<Item = (OrgId, Seq)>) -> Vec<Action> {
        let p = self.peers.entry(peer).or_default();
        for (org, seq) in heads {
            p.heads.insert(org, seq.0);
        }
        self.schedule()
    }

    /// A peer showed (by gossip) that it holds `org` up to at least `seq`.
    pub fn announced(&mut self, peer: PeerKey, org: OrgId, seq: Seq) -> Vec<Action> {
        let p = self.peers.entry(peer).or_default();
        let h = p.heads.entry(org).or_insert(0);
        *h = (*h).max(seq.0);
        self.schedule()
    }

    /// Periodic: ask every peer for its status again (pull stays the source of truth).
    pub fn tick(&mut self) -> Vec<Action> {
        self.peers.keys().map(|peer| Action::SendStatus { peer: *peer }).collect()
    }

    /// The store's feed of `org` was changed by a charter action (a fork resolved, entries
    /// signed with a revoked key removed): fetching starts again from `head`, which may be
    /// lower than before, and the feed is no longer frozen.
    pub fn feed_reset(&mut self, org: &OrgId, head: Seq) -> Vec<Action> {
        let f = self.feed(org);
        let dropped = f.in_flight.len();
        f.in_flight.clear();
        f.ready.clear();
        f.retry.clear();
        f.frozen = false;
        f.local = head.0;
        f.handed = head.0;
        f.requested = head.0;
        self.in_flight_total -= dropped;
        self.schedule()
    }

    /// The store's head of `org` moved by another path (gossip, local publish).
    pub fn local_head(&mut self, org: &OrgId, seq: Seq) -> Vec<Action> {
        let f = self.feed(org);
        if seq.0 > f.local {
            f.local = seq.0;
        }
        if f.local > f.handed {
            // Buffered ranges are trimmed to what lies past the new head by `drain`, not
            // dropped: one reaching past the head would lose its tail for good (nothing asks
            // for it again, and every later range waits behind the hole).
            f.retry.retain(|from, count| *from + *count as u64 - 1 > seq.0);
            f.handed = f.local;
            f.requested = f.requested.max(f.local);
        }
        self.drain(org)
    }

    /// A range response arrived.
    pub fn range_received(&mut self, peer: PeerKey, org: &OrgId, from: Seq, docs: Vec<Vec<u8>>) -> Vec<Action> {
        let Some(f) = self.feeds.get_mut(org) else { return Vec::new() };
        let Some((asked_peer, count)) = f.in_flight.remove(&from.0) else {
            return Vec::new(); // stale: the feed was reset since
        };
        self.in_flight_total -= 1;
        if let Some(p) = self.peers.get_mut(&asked_peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
        let mut actions = Vec::new();
        if docs.len() > count as usize {
            f.retry.insert(from.0, count);
            actions.push(Action::Penalize { peer, reason: "range_too_long" });
        } else {
            if (docs.len() as u32) < count {
                // A short answer: the rest of the range is asked again, preferably elsewhere.
                f.retry.insert(from.0 + docs.len() as u64, count - docs.len() as u32);
                if docs.is_empty() {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        // It announced a head it did not serve: forget that claim.
                        p.heads.insert(org.clone(), from.0 - 1);
                    }
                }
            }
            if !docs.is_empty() {
                f.ready.insert(from.0, (peer, docs));
            }
        }
        actions.extend(self.drain(org));
        actions.extend(self.schedule());
        actions
    }

    /// Periodic: retry what failed or was refused since.
    pub fn poll(&mut self) -> Vec<Action> {
        self.schedule()
    }

    /// A range request failed. A peer that refused for load (`busy`) is asked again later; one
    /// whose request failed otherwise (timeout, closed, refused for cause) is not asked for this
    /// feed again until its next status.
    pub fn range_failed(&mut self, peer: PeerKey, org: &OrgId, from: Seq, busy: bool) -> Vec<Action> {
        if let Some(f) = self.feeds.get_mut(org) {
            if let Some((_, count)) = f.in_flight.remove(&from.0) {
                self.in_flight_total -= 1;
                f.retry.insert(from.0, count);
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
            if !busy {
                p.heads.remove(org);
            }
        }
        if busy {
            Vec::new() // retried by the next poll, not in a tight loop
        } else {
            self.schedule()
        }
    }

    /// An ingest the engine asked for finished; `head` is the feed's head in the store now.
    pub fn ingested(&mut self, peer: PeerKey, org: &OrgId, head: Seq, result: IngestResult) -> Vec<Action> {
        let mut actions = Vec::new();
        {
            let f = self.feed(org);
            f.local = f.local.max(head.0);
            f.ingesting = f.ingesting.saturating_sub(1);
            match result {
                IngestResult::Ok => {}
                IngestResult::Frozen => {
                    f.frozen = true;
                    f.ready.clear();
                    f.retry.clear();
                }
                IngestResult::Invalid | IngestResult::Mismatch | IngestResult::Unauthorized => {
                    // Start again from the store's head; responses to older requests are ignored.
                    f.ready.clear();
                    f.retry.clear();
                    f.handed = f.local;
                    f.requested = f.local;
                    let dropped = f.in_flight.len();
                    f.in_flight.clear();
                    self.in_flight_total -= dropped;
                    if result == IngestResult::Invalid {
                        actions.push(Action::Penalize { peer, reason: "invalid_document" });
                    }
                    if result != IngestResult::Mismatch {
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.heads.remove(org);
                        }
                    }
                }
            }
        }
        actions.extend(self.schedule());
        actions
    }

    /// Hands buffered ranges to ingest while they continue the feed.
    fn drain(&mut self, org: &OrgId) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(f) = self.feeds.get_mut(org) else { return actions };
        while let Some(entry) = f.ready.first_entry() {
            let from = *entry.key();
            if from > f.handed + 1 {
                break;
            }
            let (peer, mut docs) = entry.remove();
            // A range overlapping what was already handed is trimmed to the new part.
            let skip = (f.handed + 1 - from) as usize;
            if skip >= docs.len() {
                continue;
            }
            docs.drain(..skip);
            let start = f.handed + 1;
            f.handed += docs.len() as u64;
            f.ingesting += 1;
            actions.push(Action::Ingest { peer, org: org.clone(), from: Seq(start), docs });
        }
        actions
    }

    /// Requests what peers have and we lack, within every bound.
    fn schedule(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        let orgs: Vec<OrgId> = self
            .peers
            .values()
            .flat_map(|p| p.heads.keys().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|o| self.wanted(o))
            .collect();
        for org in orgs {
            let target = self.peers.values().filter_map(|p| p.heads.get(&org)).copied().max().unwrap_or(0);
            loop {
                if self.in_flight_total >= self.config.ranges_total_max {
                    return actions;
                }
                let f = self.feeds.entry(org.clone()).or_default();
                if f.frozen || f.slots() >= self.config.ranges_per_feed_max {
                    break;
                }
                let (from, count, is_retry) = match f.retry.first_key_value() {
                    Some((from, count)) => (*from, *count, true),
                    None if f.requested < target => {
                        let count = (target - f.requested).min(self.config.range_count as u64) as u32;
                        (f.requested + 1, count, false)
                    }
                    None => break,
                };
                let last = from + count as u64 - 1;
                // The least busy peer that claims to hold the whole range.
                let peer = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.in_flight < self.config.ranges_per_peer_max)
                    .filter(|(_, p)| p.heads.get(&org).is_some_and(|h| *h >= last))
                    .min_by_key(|(_, p)| p.in_flight)
                    .map(|(k, _)| *k);
                let Some(peer) = peer else { break };
                let f = self.feeds.get_mut(&org).expect("created above");
                if is_retry {
                    f.retry.remove(&from);
                } else {
                    f.requested = last;
                }
                f.in_flight.insert(from, (peer, count));
                self.in_flight_total += 1;
                self.peers.get_mut(&peer).expect("chosen above").in_flight += 1;
                actions.push(Action::RequestRange { peer, org: org.clone(), from: Seq(from), count });
            }
        }
        actions
    }

    /// Our head and the best head any peer announced, per feed: the replication lag.
    pub fn lag(&self) -> BTreeMap<OrgId, (Seq, Seq)> {
        let mut out = BTreeMap::new();
        for (org, f) in &self.feeds {
            let best = self.peers.values().filter_map(|p| p.heads.get(org)).copied().max().unwrap_or(0);
            out.insert(org.clone(), (Seq(f.local), Seq(best.max(f.local))));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(s: &str) -> OrgId {
        OrgId::new(s).unwrap()
    }

    fn cfg() -> SyncConfig {
        SyncConfig { range_count: 10, ranges_per_feed_max: 2, ..Default::default() }
    }

    fn docs(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8]).collect()
    }

    fn requests(actions: &[Action]) -> Vec<(PeerKey, u64, u32)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::RequestRange { peer, from, count, .. } => Some((*peer, from.0, *count)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_cold_replica_fetches_ranges_in_parallel_and_ingests_them_in_order() {
        let mut e = SyncEngine::new(cfg(), []);
        assert_eq!(e.peer_connected(1), vec![Action::SendStatus { peer: 1 }]);
        let a = e.status_received(1, [(org("WCO"), Seq(25))]);
        assert_eq!(requests(&a), vec![(1, 1, 10), (1, 11, 10)], "two ranges in flight per feed");
        // The second range arrives first: it is held until the first is handed over.
        let a = e.range_received(1, &org("WCO"), Seq(11), docs(10));
        assert!(a.iter().all(|a| !matches!(a, Action::Ingest { .. })));
        assert!(requests(&a).is_empty(), "a buffered range keeps its slot");
        let a = e.range_received(1, &org("WCO"), Seq(1), docs(10));
        let ingests: Vec<u64> =
            a.iter().filter_map(|a| if let Action::Ingest { from, .. } = a { Some(from.0) } else { None }).collect();
        assert_eq!(ingests, vec![1, 11]);
        assert!(requests(&a).is_empty(), "ranges being ingested keep their slots: the writer sets the pace");
        let a = e.ingested(1, &org("WCO"), Seq(10), IngestResult::Ok);
        assert_eq!(requests(&a), vec![(1, 21, 5)], "the rest of the feed");
    }

    #[test]
    fn a_lost_peer_s_ranges_go_to_another_peer() {
        let mut e = SyncEngine::new(cfg(), []);
        e.peer_connected(1);
        e.peer_connected(2);
        let a = e.status_received(1, [(org("WCO"), Seq(10))]);
        assert_eq!(requests(&a), vec![(1, 1, 10)]);
        e.status_received(2, [(org("WCO"), Seq(10))]);
        let a = e.peer_disconnected(1);
        assert_eq!(requests(&a), vec![(2, 1, 10)]);
    }

    #[test]
    fn invalid_data_penalizes_the_peer_and_refetches_from_the_head_elsewhere() {
        let mut e = SyncEngine::new(cfg(), [(org("WCO"), Seq(5))]);
        e.peer_connected(1);
        e.peer_connected(2);
        let a = e.status_received(1, [(org("WCO"), Seq(8))]);
        assert_eq!(requests(&a), vec![(1, 6, 3)]);
        e.status_received(2, [(org("WCO"), Seq(8))]);
        e.range_received(1, &org("WCO"), Seq(6), docs(3));
        let a = e.ingested(1, &org("WCO"), Seq(5), IngestResult::Invalid);
        assert!(a.contains(&Action::Penalize { peer: 1, reason: "invalid_document" }));
        assert_eq!(requests(&a), vec![(2, 6, 3)], "asked again, of the other peer");
    }

    #[test]
    fn a_short_answer_is_completed_and_an_empty_one_is_not_believed_again() {
        let mut e = SyncEngine::new(cfg(), []);
        e.peer_connected(1);
        e.status_received(1, [(org("WCO"), Seq(10))]);
        let a = e.range_received(1, &org("WCO"), Seq(1), docs(4));
        assert_eq!(requests(&a), vec![(1, 5, 6)]);
        let a = e.range_received(1, &org("WCO"), Seq(5), Vec::new());
        assert!(requests(&a).is_empty(), "peer 1 no longer claims #5..#10");
    }

    #[test]
    fn filtered_replication_fetches_only_wanted_publishers() {
        let config = SyncConfig { publishers: Some([org("WCO")].into_iter().collect()), ..cfg() };
        let mut e = SyncEngine::new(config, []);
        e.peer_connected(1);
        let a = e.status_received(1, [(org("WCO"), Seq(3)), (org("FR"), Seq(3))]);
        assert_eq!(requests(&a), vec![(1, 1, 3)]);
    }

    #[test]
    fn a_reset_feed_is_fetched_again_from_its_new_head() {
        let mut e = SyncEngine::new(cfg(), []);
        e.peer_connected(1);
        e.status_received(1, [(org("WCO"), Seq(10))]);
        e.range_received(1, &org("WCO"), Seq(1), docs(10));
        let a = e.ingested(1, &org("WCO"), Seq(5), IngestResult::Frozen);
        assert!(requests(&a).is_empty(), "a frozen feed is not fetched");
        // A charter action removed entries 4 and 5 and unfroze the feed.
        assert_eq!(requests(&e.feed_reset(&org("WCO"), Seq(3))), vec![(1, 4, 7)]);
    }

    #[test]
    fn a_frozen_feed_is_not_fetched_and_gossip_moves_the_head() {
        let mut e = SyncEngine::new(cfg(), []);
        e.peer_connected(1);
        e.status_received(1, [(org("WCO"), Seq(3))]);
        e.range_received(1, &org("WCO"), Seq(1), docs(3));
        let a = e.ingested(1, &org("WCO"), Seq(2), IngestResult::Frozen);
        assert!(requests(&a).is_empty());
        assert!(requests(&e.announced(1, org("WCO"), Seq(9))).is_empty());

        let mut e = SyncEngine::new(cfg(), []);
        e.peer_connected(1);
        e.local_head(&org("FR"), Seq(4));
        assert!(requests(&e.status_received(1, [(org("FR"), Seq(4))])).is_empty());
        assert_eq!(e.lag()[&org("FR")], (Seq(4), Seq(4)));
    }

    #[test]
    fn entries_buffered_past_a_head_moved_by_gossip_are_still_handed_to_ingest() {
        let wco = org("WCO");
        let mut e = SyncEngine::new(cfg(), []);
        e.peer_connected(1);
        assert_eq!(requests(&e.status_received(1, [(wco.clone(), Seq(30))])), vec![(1, 1, 10), (1, 11, 10)]);
        e.range_received(1, &wco, Seq(11), docs(10));
        // Gossip stored #1..#12 meanwhile.
        let mut a = e.local_head(&wco, Seq(12));
        a.extend(e.range_received(1, &wco, Seq(1), docs(10)));
        let ingests: Vec<(u64, usize)> = a
            .iter()
            .filter_map(|a| if let Action::Ingest { from, docs, .. } = a { Some((from.0, docs.len())) } else { None })
            .collect();
        assert_eq!(ingests, vec![(13, 8)], "#13..#20 were buffered and must not be lost");
    }

    /// Seeded random schedules: ranges answered out of order, peers lost and found, partial
    /// answers. Whatever happens, the entries handed to ingest are exactly 1..=N in order.
    #[test]
    fn any_schedule_hands_every_entry_to_ingest_once_and_in_order() {
        for seed in 1..=200u64 {
            let mut rng = seed;
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let total = 1 + next() % 95;
            let mut e = SyncEngine::new(cfg(), []);
            let mut pending: Vec<Action> = Vec::new();
            let mut ingests: std::collections::VecDeque<Action> = Default::default();
            for p in 1..=3 {
                pending.extend(e.peer_connected(p));
                pending.extend(e.status_received(p, [(org("WCO"), Seq(total))]));
            }
            let mut handed = 0u64;
            let mut steps = 0;
            while handed < total {
                steps += 1;
                assert!(steps < 10_000, "seed {seed}: no progress");
                let (moved, rest): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut pending).into_iter().partition(|a| matches!(a, Action::Ingest { .. }));
                ingests.extend(moved);
                pending = rest;
                // The node's writer carries out ingests in order, interleaved with network events.
                if !ingests.is_empty() && (pending.is_empty() || next() % 3 == 0) {
                    let Some(Action::Ingest { peer, from, docs, .. }) = ingests.pop_front() else { unreachable!() };
                    assert_eq!(from.0, handed + 1, "seed {seed}: out of order");
                    for (k, d) in docs.iter().enumerate() {
                        assert_eq!(d, &(from.0 + k as u64).to_be_bytes().to_vec(), "seed {seed}");
                    }
                    handed += docs.len() as u64;
                    pending.extend(e.ingested(peer, &org("WCO"), Seq(handed), IngestResult::Ok));
                    continue;
                }
                if pending.is_empty() {
                    pending.extend(e.poll());
                }
                if pending.is_empty() {
                    // Everyone forgot: a periodic status brings the claims back.
                    for p in 1..=3 {
                        pending.extend(e.status_received(p, [(org("WCO"), Seq(total))]));
                    }
                    continue;
                }
                let i = (next() % pending.len() as u64) as usize;
                match pending.swap_remove(i) {
                    Action::RequestRange { peer, from, count, .. } => match next() % 10 {
                        0 => pending.extend(e.range_failed(peer, &org("WCO"), from, next() % 2 == 0)),
                        1 => {
                            pending.extend(e.peer_disconnected(peer));
                            pending.extend(e.peer_connected(peer));
                        }
                        2 => {
                            let n = (next() % count as u64) as usize;
                            let d = (from.0..from.0 + n as u64).map(|s| s.to_be_bytes().to_vec()).collect();
                            pending.extend(e.range_received(peer, &org("WCO"), from, d));
                        }
                        _ => {
                            let n = count.min((total - from.0 + 1) as u32) as u64;
                            let d = (from.0..from.0 + n).map(|s| s.to_be_bytes().to_vec()).collect();
                            pending.extend(e.range_received(peer, &org("WCO"), from, d));
                        }
                    },
                    Action::Ingest { .. } => unreachable!("moved to the ingest queue"),
                    Action::SendStatus { .. } | Action::Penalize { .. } => {}
                }
            }
            assert_eq!(handed, total, "seed {seed}");
        }
    }
}
