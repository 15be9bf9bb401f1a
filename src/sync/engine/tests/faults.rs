//! Regression tests of faults the sync engine had, one section per fault: state and buffers
//! without bounds, claims that cost nothing, in-flight accounting that leaked.

use super::*;

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
