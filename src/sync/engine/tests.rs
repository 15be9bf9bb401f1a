//! Scenarios of the sync engine, each event followed by a check of its invariants.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::sync::wire::RANGE_BYTES_MAX;

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
        self.on(|e| e.status_received(peer, heads))
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

// ---- Fault: state grew with whatever peers announced, and buffers had no byte bound. ----

#[test]
fn a_peer_announcing_invented_organizations_leaves_no_state_behind() {
    let mut e = Checked::trusting(cfg(), [org("WCO")].into_iter().collect(), &[("FR", 3)]);
    e.connect(1);
    for _ in 0..3 {
        let heads: Vec<(String, u64)> = (0..4096).map(|i| (format!("FAKE{i:04}"), 1)).collect();
        let heads: Vec<(&str, u64)> = heads.iter().map(|(o, s)| (o.as_str(), *s)).collect();
        assert!(e.status(1, &heads).is_empty());
        assert!(e.on(|e| e.announced(1, org("FAKE0001"), Seq(7))).is_empty());
    }
    assert!(e.on(|e| e.local_head(&org("FAKE0002"), Seq(4))).is_empty());
    assert_eq!(e.e.lag().keys().collect::<Vec<_>>(), Vec::<&OrgId>::new(), "FR is held but not trusted");
    assert!(!format!("{:?}", e.e).contains("FAKE"), "the engine keeps state for organizations it does not trust");
    assert_eq!(requests(&e.status(1, &[("WCO", 2)])), vec![(1, 1, 2)]);
    assert_eq!(e.e.lag().keys().collect::<Vec<_>>(), vec![&org("WCO")]);
}

#[test]
fn an_organization_no_longer_trusted_loses_its_feed_and_every_claim_of_it() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.connect(2);
    let fr = asked(&e.status(1, &[("FR", 30), ("WCO", 5)]));
    e.status(2, &[("FR", 30)]);
    assert_eq!(fr.iter().map(|r| r.2).collect::<Vec<_>>(), vec![1, 1, 11], "WCO #1, FR #1 and #11");
    let mut trusted = BTreeSet::from([org("WCO")]);
    assert!(requests(&e.on(|e| e.set_trusted(trusted.clone()))).is_empty());
    assert_eq!(e.e.lag().keys().collect::<Vec<_>>(), vec![&org("WCO")]);
    // FR's requests are still outstanding, stale: their answers are discarded.
    assert!(ingests(&e.on(|e| e.range_received(fr[1].0, docs(10)))).is_empty());
    assert!(e.status(2, &[("FR", 40)]).is_empty(), "FR is not fetched");
    assert!(e.on(|e| e.feed_reset(&org("FR"), Seq(3))).is_empty());
    // Trusted again (a newer charter): fetched from its start once announced.
    trusted.insert(org("FR"));
    assert!(e.on(|e| e.set_trusted(trusted)).is_empty(), "no peer's claim of FR was kept");
    assert_eq!(requests(&e.status(2, &[("FR", 40)])), vec![(2, 1, 10), (2, 11, 10)]);
}

#[test]
fn requests_in_flight_stay_within_the_byte_budget() {
    let mut e = Checked::new(SyncConfig::default(), &[]);
    let feeds: Vec<(String, u64)> = (0..6).map(|i| (format!("ORG{i}"), 1_000_000)).collect();
    let feeds: Vec<(&str, u64)> = feeds.iter().map(|(o, s)| (o.as_str(), *s)).collect();
    let mut asked = 0;
    for p in 1..=6 {
        e.connect(p);
        asked += requests(&e.status(p, &feeds)).len();
    }
    let budget = BUFFERED_BYTES_MAX_DEFAULT;
    assert_eq!(asked as u64, budget / RANGE_BYTES_MAX as u64, "as many 4 MiB answers as fit 64 MiB");
}

/// Documents of `size` bytes.
fn big_docs(n: usize, size: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| vec![0; size]).collect()
}

#[test]
fn buffered_ranges_hold_back_new_requests_but_never_the_hole_they_wait_behind() {
    let mib = 1 << 20;
    let config = SyncConfig {
        range_count: 10,
        range_bytes: mib,
        buffered_bytes_max: 3 * mib as u64,
        ranges_per_feed_max: 6,
        ..Default::default()
    };
    let mut e = Checked::new(config, &[]);
    e.connect(1);
    e.connect(2);
    assert_eq!(requests(&e.status(1, &[("WCO", 100)])), vec![(1, 1, 10), (1, 11, 10), (1, 21, 10)]);
    e.status(2, &[("WCO", 100)]);
    // #11..#30 arrive, nearly a MiB each range: buffered behind #1..#10.
    assert!(requests(&e.answer(1, 11, big_docs(10, 100_000))).is_empty(), "no room for a fourth answer");
    assert!(requests(&e.answer(1, 21, big_docs(10, 100_000))).is_empty());
    // The request for #1..#10 fails: asked again, of the other peer, though the budget is
    // nearly full of buffered ranges.
    let id = e.ids[&(1, 1)];
    let a = e.on(|e| e.range_failed(id, false));
    assert_eq!(requests(&a), vec![(2, 1, 10)]);
    let a = e.answer(2, 1, big_docs(10, 100_000));
    assert_eq!(ingests(&a), vec![(1, 10), (11, 10), (21, 10)]);
    assert_eq!(requests(&a), vec![(2, 31, 10), (2, 41, 10), (2, 51, 10)], "the budget is free again");
}

#[test]
fn an_answer_of_more_bytes_than_asked_is_penalized_and_not_buffered() {
    let mib = 1 << 20;
    let config = SyncConfig { range_count: 10, range_bytes: mib, ..Default::default() };
    let mut e = Checked::new(config, &[]);
    e.connect(1);
    e.status(1, &[("WCO", 10)]);
    let a = e.answer(1, 1, big_docs(2, mib as usize / 2 + 1));
    assert_eq!(penalties(&a), vec![(1, Offense::RangeTooLong)]);
    assert!(ingests(&a).is_empty());
}

#[test]
fn a_report_of_a_range_handed_before_its_feed_stopped_being_trusted_is_not_taken_for_a_later_one() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.status(1, &[("WCO", 20)]);
    assert_eq!(ingests(&e.answer(1, 1, docs(10))), vec![(1, 10)]);
    let all = e.e.trusted.clone();
    let _ = e.on(|e| e.set_trusted(BTreeSet::new()));
    let _ = e.on(|e| e.set_trusted(all));
    assert_eq!(requests(&e.status(1, &[("WCO", 20)])), vec![(1, 1, 10), (1, 11, 10)]);
    assert_eq!(ingests(&e.answer(1, 1, docs(10))), vec![(1, 10)]);
    // The first range's report comes back: it did not chain (the store moved meanwhile).
    let a = e.ingested(1, "WCO", 0, IngestResult::Mismatch);
    assert!(requests(&a).is_empty() && e.e.in_flight(&org("WCO")) == 1, "the feed was not fetched again: {a:?}");
    let a = e.ingested(1, "WCO", 10, IngestResult::Ok);
    assert_eq!(e.e.lag()[&org("WCO")], (Seq(10), Seq(20)), "peer 1's claim is not capped");
    assert!(requests(&a).is_empty(), "#11..#20 is still in flight");
}

// ---- Fault: claims not served kept counting, and cost their maker nothing. ----

const LIE: u64 = 1_000_000_000;

#[test]
fn a_peer_claiming_a_head_it_does_not_serve_is_capped_penalized_and_no_longer_asked() {
    let mut e = Checked::new(cfg(), &[("WCO", 5)]);
    e.connect(1);
    assert_eq!(requests(&e.status(1, &[("WCO", LIE)])), vec![(1, 6, 10), (1, 16, 10)]);
    let a = e.answer(1, 6, Vec::new());
    assert_eq!(penalties(&a), vec![(1, Offense::UnservedClaim)]);
    assert!(requests(&a).is_empty());
    assert!(penalties(&e.answer(1, 16, Vec::new())).is_empty(), "beyond its cap already: one penalty");
    let a = e.status(1, &[("WCO", LIE)]);
    assert!(requests(&a).is_empty(), "the claim repeated by a status is not believed: {a:?}");
    assert_eq!(penalties(&a), vec![(1, Offense::UnservedClaim)], "and costs it again");
    assert_eq!(e.e.lag()[&org("WCO")], (Seq(5), Seq(5)), "nor counted in the lag");
    // Honest again: it announces what it holds, then more, which is believed.
    assert!(e.status(1, &[("WCO", 5)]).is_empty());
    assert_eq!(requests(&e.status(1, &[("WCO", 7)])), vec![(1, 6, 2)]);
}

#[test]
fn a_capped_peer_is_penalized_once_per_status_whatever_it_repeats() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    let a = e.status(1, &[("WCO", LIE), ("FR", LIE)]);
    let firsts: Vec<RangeId> = a
        .iter()
        .filter_map(|a| match a {
            Action::RequestRange { id, from: Seq(1), .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(firsts.len(), 2, "#1 of FR and of WCO");
    for id in firsts {
        assert_eq!(penalties(&e.on(|e| e.range_received(id, Vec::new()))), vec![(1, Offense::UnservedClaim)]);
    }
    let a = e.status(1, &[("WCO", LIE), ("FR", LIE)]);
    assert_eq!(penalties(&a), vec![(1, Offense::UnservedClaim)]);
    assert!(requests(&a).is_empty());
}

#[test]
fn a_liar_does_not_hold_back_an_honest_peer_nor_inflate_the_lag() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.connect(2);
    e.status(1, &[("WCO", LIE)]);
    e.status(2, &[("WCO", 8)]);
    // The liar serves what it holds (#1..#8) and nothing past it.
    let mut a = e.answer(1, 1, docs(8));
    a.extend(e.ingested(1, "WCO", 8, IngestResult::Ok));
    let rest: Vec<(PeerKey, u64, u32)> = requests(&a);
    assert_eq!(rest.iter().filter(|r| r.1 > 8).count(), rest.len());
    for (peer, from, _) in rest {
        assert_eq!(peer, 1, "only the liar claims #{from}");
        e.answer(peer, from, Vec::new());
    }
    assert_eq!(e.e.lag()[&org("WCO")], (Seq(8), Seq(8)));
    assert!(requests(&e.status(1, &[("WCO", LIE)])).is_empty());
}

#[test]
fn a_disconnect_lifts_a_cap() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.status(1, &[("WCO", LIE)]);
    e.answer(1, 1, Vec::new());
    e.disconnect(1);
    e.connect(1);
    assert_eq!(requests(&e.status(1, &[("WCO", LIE)])), vec![(1, 1, 10), (1, 11, 10)], "believed again");
}

#[test]
fn entries_that_do_not_chain_cap_the_peer_s_claim_without_penalty_until_the_feed_is_reset() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    e.connect(2);
    e.status(1, &[("WCO", 10)]);
    e.answer(1, 1, docs(10));
    let a = e.ingested(1, "WCO", 0, IngestResult::Mismatch);
    assert!(requests(&a).is_empty(), "peer 1 holds another branch: {a:?}");
    assert!(penalties(&a).is_empty(), "and it is not its fault");
    let a = e.status(1, &[("WCO", 10)]);
    assert!(requests(&a).is_empty() && penalties(&a).is_empty(), "its status repeats its branch");
    assert_eq!(requests(&e.status(2, &[("WCO", 10)])), vec![(2, 1, 10)]);
    e.answer(2, 1, docs(10));
    e.ingested(2, "WCO", 0, IngestResult::Mismatch);
    // A charter action resolved the fork: either branch may now be ours.
    assert_eq!(requests(&e.reset("WCO", 0)), vec![(1, 1, 10)]);
}

// ---- Fault: per-peer in-flight accounting leaked on every dropped request. ----

/// One round with a single peer holding six ranges: the first answer is handed to ingest and
/// reported `result`, the other five are answered late. Returns the requests made after.
fn one_round_with_an_ingest_failure(e: &mut Checked, result: IngestResult) -> usize {
    let wco = org("WCO");
    let mut reqs = asked(&e.status(1, &[("WCO", 1000)]));
    assert_eq!(reqs.len(), 6, "every slot of the one peer is used");
    reqs.sort_by_key(|r| r.2);
    let (first, _, _, count) = reqs[0];
    assert_eq!(ingests(&e.on(|e| e.range_received(first, docs(count as usize)))).len(), 1);
    let head = e.e.lag()[&wco].0;
    let mut after = asked(&e.on(|e| e.ingested(1, &wco, head, result)));
    for &(id, _, _, count) in &reqs[1..] {
        after.extend(asked(&e.on(|e| e.range_received(id, docs(count as usize)))));
    }
    // Each new request is answered by a failure (it is asked again by the next status).
    for (id, ..) in after.clone() {
        e.on(|e| e.range_failed(id, true));
    }
    after.len()
}

#[test]
fn a_replica_with_one_peer_keeps_asking_it_after_invalid_answers() {
    let mut e = Checked::new(SyncConfig { range_count: 10, ..Default::default() }, &[]);
    e.connect(1);
    for _round in 1..=4 {
        one_round_with_an_ingest_failure(&mut e, IngestResult::Invalid);
    }
    assert_eq!(requests(&e.status(1, &[("WCO", 1000)])).len(), 6);
}

#[test]
fn a_replica_with_one_peer_keeps_asking_it_after_unauthorized_answers() {
    let mut e = Checked::new(SyncConfig { range_count: 10, ..Default::default() }, &[]);
    e.connect(1);
    for _round in 1..=4 {
        one_round_with_an_ingest_failure(&mut e, IngestResult::Unauthorized);
    }
    assert_eq!(requests(&e.status(1, &[("WCO", 1000)])).len(), 6);
}

#[test]
fn a_replica_with_one_peer_keeps_asking_it_after_feed_resets() {
    let mut e = Checked::new(SyncConfig { range_count: 10, ..Default::default() }, &[]);
    e.connect(1);
    let mut reqs = asked(&e.status(1, &[("WCO", 1000)]));
    for round in 1..=4 {
        // A charter action truncates the feed while six ranges are in flight: they keep the
        // peer's slots until their answers arrive, and each answer frees one.
        let mut again = asked(&e.reset("WCO", 0));
        assert!(again.is_empty(), "round {round}: the peer is still working on six requests");
        for &(id, _, _, count) in &reqs {
            again.extend(asked(&e.on(|e| e.range_received(id, docs(count as usize)))));
        }
        assert_eq!(again.len(), 6, "round {round}: every slot of the one peer is used again");
        reqs = again;
    }
}

#[test]
fn a_late_answer_to_a_dropped_request_is_not_credited_to_the_newer_request_at_the_same_position() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    let old = asked(&e.status(1, &[("WCO", 20)]));
    assert_eq!(old.iter().map(|r| r.2).collect::<Vec<_>>(), vec![1, 11]);
    // A charter action truncates the feed; both ranges are asked again of the same peer.
    let new = asked(&e.reset("WCO", 0));
    assert_eq!(new.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(), vec![(1, 1), (1, 11)]);
    // The answer to the dropped request arrives late, with entries of the truncated branch.
    let a = e.on(|e| e.range_received(old[0].0, vec![b"old".to_vec(); 10]));
    assert!(ingests(&a).is_empty(), "the late answer is handed to ingest: {a:?}");
    let a = e.on(|e| e.range_received(new[0].0, docs(10)));
    assert_eq!(ingests(&a), vec![(1, 10)], "the newer request is still awaited, and its answer taken");
}

#[test]
fn answers_and_failures_with_unknown_ids_are_ignored() {
    let mut e = Checked::new(cfg(), &[]);
    e.connect(1);
    let a = asked(&e.status(1, &[("WCO", 20)]));
    assert!(e.on(|e| e.range_received(RangeId(99), docs(10))).is_empty());
    assert!(e.on(|e| e.range_failed(RangeId(98), false)).is_empty());
    assert_eq!(ingests(&e.on(|e| e.range_received(a[0].0, docs(10)))), vec![(1, 10)]);
    assert!(e.on(|e| e.range_received(a[0].0, docs(10))).is_empty(), "a second answer is ignored");
}
