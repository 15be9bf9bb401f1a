//! Scenarios of the sync engine, each event followed by a check of its invariants.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::sync::wire::RANGE_BYTES_MAX;

mod faults;
mod sim;

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

fn cfg() -> SyncConfig {
    SyncConfig { range_count: 10, ranges_per_feed_max: 2, ..Default::default() }
}

fn docs(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![i as u8]).collect()
}

/// The range requests among actions: (id, peer, from, count).
fn asked(actions: &[Action]) -> Vec<(RangeId, PeerKey, u64, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RequestRange { id, peer, from, count, .. } => Some((*id, *peer, from.0, *count)),
            _ => None,
        })
        .collect()
}

/// The range requests among actions: (peer, from, count).
fn requests(actions: &[Action]) -> Vec<(PeerKey, u64, u32)> {
    asked(actions).into_iter().map(|(_, peer, from, count)| (peer, from, count)).collect()
}

/// The ingests among actions: (from, number of entries).
fn ingests(actions: &[Action]) -> Vec<(u64, usize)> {
    actions
        .iter()
        .filter_map(|a| if let Action::Ingest { from, docs, .. } = a { Some((from.0, docs.len())) } else { None })
        .collect()
}

/// An engine whose invariants are checked after every event, and which remembers the id of
/// the latest request to each peer at each position.
struct Checked {
    e: SyncEngine,
    ids: BTreeMap<(PeerKey, u64), RangeId>,
}

impl Checked {
    /// An engine trusting WCO, FR, DE and ORG0..ORG9.
    fn new(config: SyncConfig, heads: &[(&str, u64)]) -> Checked {
        let trusted = ["WCO", "FR", "DE"].into_iter().map(org).chain((0..10).map(|i| org(&format!("ORG{i}"))));
        Checked::trusting(config, trusted.collect(), heads)
    }

    fn trusting(config: SyncConfig, trusted: BTreeSet<OrgId>, heads: &[(&str, u64)]) -> Checked {
        let e = SyncEngine::new(config, trusted, heads.iter().map(|(o, s)| (org(o), Seq(*s))));
        e.check_invariants();
        Checked { e, ids: BTreeMap::new() }
    }

    fn on(&mut self, event: impl FnOnce(&mut SyncEngine) -> Vec<Action>) -> Vec<Action> {
        let actions = event(&mut self.e);
        self.e.check_invariants();
        for (id, peer, from, _) in asked(&actions) {
            self.ids.insert((peer, from), id);
        }
        actions
    }

    fn connect(&mut self, peer: PeerKey) -> Vec<Action> {
        self.on(|e| e.peer_connected(peer))
    }

    fn disconnect(&mut self, peer: PeerKey) -> Vec<Action> {
        self.on(|e| e.peer_disconnected(peer))
    }

    fn status(&mut self, peer: PeerKey, heads: &[(&str, u64)]) -> Vec<Action> {
        let heads: Vec<(OrgId, Seq)> = heads.iter().map(|(o, s)| (org(o), Seq(*s))).collect();
        self.on(|e| e.status_received(peer, heads.iter().map(|(o, s)| (o, *s))))
    }

    /// The answer to the latest request to `peer` at `from`.
    fn answer(&mut self, peer: PeerKey, from: u64, docs: Vec<Vec<u8>>) -> Vec<Action> {
        let id = self.ids.remove(&(peer, from)).expect("asked");
        self.on(|e| e.range_received(id, docs))
    }

    fn ingested(&mut self, peer: PeerKey, o: &str, head: u64, result: IngestResult) -> Vec<Action> {
        self.on(|e| e.ingested(peer, &org(o), Seq(head), result))
    }

    fn reset(&mut self, o: &str, head: u64) -> Vec<Action> {
        self.on(|e| e.feed_reset(&org(o), Seq(head)))
    }
}

#[test]
fn a_cold_replica_fetches_ranges_in_parallel_and_ingests_them_in_order() {
    let mut e = Checked::new(cfg(), &[]);
    assert_eq!(e.connect(1), vec![Action::SendStatus { peer: 1 }]);
    let a = e.status(1, &[("WCO", 25)]);
    assert_eq!(requests(&a), vec![(1, 1, 10), (1, 11, 10)], "two ranges in flight per feed");
    // The second range arrives first: it is held until the first is handed over.
    let a = e.answer(1, 11, docs(10));
    assert!(ingests(&a).is_empty());
    assert!(requests(&a).is_empty(), "a buffered range keeps its slot");
    let a = e.answer(1, 1, docs(10));
    assert_eq!(ingests(&a), vec![(1, 10), (11, 10)]);
    assert!(requests(&a).is_empty(), "ranges being ingested keep their slots: the writer sets the pace");
    let a = e.ingested(1, "WCO", 10, IngestResult::Ok);
    assert_eq!(requests(&a), vec![(1, 21, 5)], "the rest of the feed");
}

#[test]
fn ranges_are_asked_of_the_peer_holding_the_least_of_the_feed_that_holds_them_so_replicas_serve_each_other() {
    // A cold replica connected to the publisher (all 100) and to two replicas the publisher
    // fed (30 and 15 so far). Each range goes to the peer that holds all of it and the least of
    // the feed: the publisher serves only what neither replica holds yet (fan-in).
    let mut e = Checked::new(cfg(), &[]);
    let (publisher, ahead, behind) = (1, 2, 3);
    for p in [publisher, ahead, behind] {
        e.connect(p);
    }
    let a = e.status(behind, &[("WCO", 15)]);
    assert_eq!(requests(&a), vec![(behind, 1, 10), (behind, 11, 5)], "the only peer so far, asked for what it holds");
    assert!(requests(&e.status(ahead, &[("WCO", 30)])).is_empty(), "both slots taken");
    assert!(requests(&e.status(publisher, &[("WCO", 100)])).is_empty(), "both slots taken");
    assert_eq!(ingests(&e.answer(behind, 1, docs(10))), vec![(1, 10)]);
    let a = e.ingested(behind, "WCO", 10, IngestResult::Ok);
    assert_eq!(
        requests(&a),
        vec![(ahead, 16, 10)],
        "16–25: the replica at 30 holds all of it; the publisher is not asked"
    );
    assert_eq!(ingests(&e.answer(behind, 11, docs(5))), vec![(11, 5)]);
    let a = e.ingested(behind, "WCO", 15, IngestResult::Ok);
    assert_eq!(
        requests(&a),
        vec![(publisher, 26, 10)],
        "26–35: only the publisher holds all of it (the replica at 30 holds only the start)"
    );
}

#[test]
fn a_status_is_due_early_once_a_range_s_worth_was_stored_since_the_last_round() {
    // range_count 10: peers should hear of our progress after 10 entries, not at the next round.
    let mut e = Checked::new(cfg(), &[("WCO", 5)]);
    assert!(!e.e.progress_status_due(), "what we held at start is what peers are told first");
    e.connect(1);
    e.status(1, &[("WCO", 40), ("FR", 40)]);
    assert_eq!(ingests(&e.answer(1, 6, docs(10))), vec![(6, 10)]);
    assert!(!e.e.progress_status_due(), "fetched is not stored");
    e.on(|e| e.local_head(&org("FR"), Seq(3))); // 3 stored by gossip, in another feed
    assert!(!e.e.progress_status_due(), "3 stored since the round");
    e.ingested(1, "WCO", 15, IngestResult::Ok);
    assert!(e.e.progress_status_due(), "13 stored over all feeds since the round");
    assert_eq!(e.on(|e| e.tick()), vec![Action::SendStatus { peer: 1 }]);
    assert!(!e.e.progress_status_due(), "the round told peers");
    e.reset("WCO", 2);
    assert!(!e.e.progress_status_due(), "a feed reset below the last round is no progress");
}

#[test]
fn a_lost_peer_s_ranges_go_to_another_peer() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.connect(2);
    let a = e.status(1, &[("WCO", 10)]);
    assert_eq!(requests(&a), vec![(1, 1, 10)]);
    e.status(2, &[("WCO", 10)]);
    let a = e.disconnect(1);
    assert_eq!(requests(&a), vec![(2, 1, 10)]);
    assert!(e.answer(1, 1, docs(10)).is_empty(), "the lost peer's late answer is ignored");
}

#[test]
fn invalid_data_penalizes_the_peer_and_refetches_from_the_head_elsewhere() {
    let mut e = Checked::new(cfg(), &[("WCO", 5)]);
    e.connect(1);
    e.connect(2);
    let a = e.status(1, &[("WCO", 8)]);
    assert_eq!(requests(&a), vec![(1, 6, 3)]);
    e.status(2, &[("WCO", 8)]);
    e.answer(1, 6, docs(3));
    let a = e.ingested(1, "WCO", 5, IngestResult::Invalid);
    assert!(a.contains(&Action::Penalize { peer: 1, offense: Offense::InvalidDocument }));
    assert_eq!(requests(&a), vec![(2, 6, 3)], "asked again, of the other peer");
}

#[test]
fn a_short_answer_is_completed_and_an_empty_one_is_not_believed_again() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.status(1, &[("WCO", 10)]);
    let a = e.answer(1, 1, docs(4));
    assert_eq!(requests(&a), vec![(1, 5, 6)]);
    let a = e.answer(1, 5, Vec::new());
    assert!(requests(&a).is_empty(), "peer 1 no longer claims #5..#10");
}

#[test]
fn filtered_replication_fetches_only_wanted_publishers() {
    let config = SyncConfig { publishers: Some([org("WCO")].into_iter().collect()), ..cfg() };
    let mut e = Checked::new(config, &[]);
    e.connect(1);
    let a = e.status(1, &[("WCO", 3), ("FR", 3)]);
    assert_eq!(requests(&a), vec![(1, 1, 3)]);
}

#[test]
fn a_reset_feed_is_fetched_again_from_its_new_head() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.status(1, &[("WCO", 10)]);
    e.answer(1, 1, docs(10));
    let a = e.ingested(1, "WCO", 5, IngestResult::Frozen);
    assert!(requests(&a).is_empty(), "a frozen feed is not fetched");
    // A charter action removed entries 4 and 5 and unfroze the feed.
    assert_eq!(requests(&e.reset("WCO", 3)), vec![(1, 4, 7)]);
}

#[test]
fn a_frozen_feed_is_not_fetched_and_gossip_moves_the_head() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.status(1, &[("WCO", 3)]);
    e.answer(1, 1, docs(3));
    let a = e.ingested(1, "WCO", 2, IngestResult::Frozen);
    assert!(requests(&a).is_empty());
    assert!(requests(&e.on(|e| e.announced(1, org("WCO"), Seq(9)))).is_empty());

    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.on(|e| e.local_head(&org("FR"), Seq(4)));
    assert!(requests(&e.status(1, &[("FR", 4)])).is_empty());
    assert_eq!(e.e.lag()[&org("FR")], (Seq(4), Seq(4)));
}

#[test]
fn entries_buffered_past_a_head_moved_by_gossip_are_still_handed_to_ingest() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    assert_eq!(requests(&e.status(1, &[("WCO", 30)])), vec![(1, 1, 10), (1, 11, 10)]);
    e.answer(1, 11, docs(10));
    // Gossip stored #1..#12 meanwhile.
    let mut a = e.on(|e| e.local_head(&org("WCO"), Seq(12)));
    a.extend(e.answer(1, 1, docs(10)));
    assert_eq!(ingests(&a), vec![(13, 8)], "#13..#20 were buffered and must not be lost");
}

fn penalties(actions: &[Action]) -> Vec<(PeerKey, Offense)> {
    actions
        .iter()
        .filter_map(|a| if let Action::Penalize { peer, offense } = a { Some((*peer, *offense)) } else { None })
        .collect()
}

#[test]
fn a_range_longer_than_asked_is_penalized_and_asked_again() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.connect(2);
    e.status(1, &[("WCO", 5)]);
    e.status(2, &[("WCO", 5)]);
    let a = e.answer(1, 1, docs(6));
    assert_eq!(penalties(&a), vec![(1, Offense::RangeTooLong)]);
    assert!(ingests(&a).is_empty());
    assert_eq!(requests(&a), vec![(2, 1, 5)]);
}

#[test]
fn misplaced_entries_penalize_the_peer_and_the_head_reported_with_them_is_not_believed() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.connect(2);
    e.status(1, &[("WCO", 8)]);
    e.status(2, &[("WCO", 8)]);
    e.answer(1, 1, docs(8));
    // The node found entries of another feed, whose head is 500.
    let a = e.ingested(1, "WCO", 500, IngestResult::Misplaced);
    assert_eq!(penalties(&a), vec![(1, Offense::Misplaced)]);
    assert_eq!(requests(&a), vec![(2, 1, 8)], "asked again from our own head, of the other peer");
    assert_eq!(e.e.lag()[&org("WCO")].0, Seq(0));
}

#[test]
fn unauthorized_entries_cost_the_peer_nothing_and_its_claim_returns_with_its_next_status() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.status(1, &[("WCO", 8)]);
    e.answer(1, 1, docs(8));
    let a = e.ingested(1, "WCO", 3, IngestResult::Unauthorized);
    assert!(penalties(&a).is_empty(), "the charter refused them, not the peer's fault");
    assert!(requests(&a).is_empty(), "its claim is dropped until its next status");
    assert_eq!(requests(&e.status(1, &[("WCO", 8)])), vec![(1, 4, 5)]);
}

#[test]
fn a_missing_lifecycle_target_is_fetched_again_at_the_next_poll_without_penalty() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.status(1, &[("WCO", 8), ("FR", 30)]);
    e.answer(1, 1, docs(8));
    let a = e.ingested(1, "WCO", 2, IngestResult::Deferred);
    assert!(penalties(&a).is_empty());
    assert!(requests(&a).iter().all(|r| r.1 > 10), "WCO waits for the next poll (FR may go on): {a:?}");
    assert!(requests(&e.status(1, &[("WCO", 8)])).is_empty(), "a status does not end the wait");
    assert_eq!(requests(&e.on(|e| e.poll())), vec![(1, 3, 6)]);
}

#[test]
fn offense_codes_are_stable() {
    let codes: Vec<&str> =
        [Offense::RangeTooLong, Offense::InvalidDocument, Offense::Misplaced, Offense::UnservedClaim]
            .iter()
            .map(|o| o.code())
            .collect();
    assert_eq!(codes, ["range_too_long", "invalid_document", "misplaced", "unserved_claim"]);
}
