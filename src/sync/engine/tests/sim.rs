//! Seeded random schedules of a replica with several peers and feeds, against a model of the
//! store and of the peers. Every ingest outcome happens (Invalid, Misplaced, Mismatch from a
//! peer on another branch, Unauthorized, Deferred, Frozen followed by a charter truncation),
//! and so do disconnections mid-request, answers arriving after their request was dropped,
//! busy refusals, failures, gossip, organizations that stop and start being trusted, peers
//! announcing untrusted organizations and a peer lying about its heads.
//!
//! After every event the engine's invariants hold and its local head is never above the
//! store's; every range it hands to ingest (and still wants) continues the store without a
//! gap; honest peers are never penalized; and with honest peers about, every feed reaches
//! its publisher's head, after which the lag shows no more than the truth.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{org, Checked};
use crate::document::{OrgId, Seq, DOCUMENT_SIZE_MAX_BYTES};
use crate::sync::engine::{Action, IngestResult, Offense, PeerKey, SyncConfig};

/// Peers 1 and 2 are honest; 3 claims far more than it holds; 4 serves bad data now and then.
const HONEST: [PeerKey; 2] = [1, 2];
const LIAR: PeerKey = 3;
const BAD: PeerKey = 4;
const PEERS: [PeerKey; 4] = [1, 2, LIAR, BAD];
const LIE: u64 = 1_000_000_000;
/// Feeds replicated; the last one stops being trusted for a while.
const FEEDS: [&str; 3] = ["ORG0", "ORG1", "ORG2"];
const UNTRUSTED: [&str; 2] = ["FAKE1", "FAKE2"];

/// A document as the model encodes it: feed, position, and what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Good,
    Invalid,
    /// An entry of another feed.
    Misplaced,
    /// An entry of another branch of the feed.
    OtherBranch,
}

fn doc(feed: usize, seq: u64, kind: Kind) -> Vec<u8> {
    let mut d = vec![feed as u8, kind as u8];
    d.extend_from_slice(&seq.to_be_bytes());
    d
}

fn read(d: &[u8]) -> (usize, u64, Kind) {
    let kind = [Kind::Good, Kind::Invalid, Kind::Misplaced, Kind::OtherBranch][d[1] as usize];
    (d[0] as usize, u64::from_be_bytes(d[2..10].try_into().unwrap()), kind)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// A range handed to ingest, with the restart count of its feed when it was handed.
struct Job {
    peer: PeerKey,
    feed: usize,
    from: u64,
    docs: Vec<Vec<u8>>,
    epoch: u64,
}

struct Sim {
    rng: Rng,
    e: Checked,
    /// The publishers' heads.
    truth: [u64; 3],
    /// The store's heads, and whether a fork froze the feed.
    head: [u64; 3],
    frozen: [bool; 3],
    /// Restarts of each feed as the engine counts them (a reset, a failed ingest it still
    /// wanted, a loss of trust): a range handed in an earlier epoch is stale.
    epoch: [u64; 3],
    /// Where each feed's current epoch hands its next range at the earliest.
    handed_to: [u64; 3],
    trusted: [bool; 3],
    network: Vec<Action>,
    late: Vec<Action>,
    writer: VecDeque<Job>,
    resets_due: Vec<usize>,
    penalties: BTreeMap<(PeerKey, Offense), u32>,
    /// Every request answered in full, no bad data: the end of a schedule.
    calm: bool,
}

fn feed_of(o: &OrgId) -> usize {
    FEEDS.iter().position(|f| org(f) == *o).expect("only trusted feeds are fetched")
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let config = SyncConfig {
            range_count: 1 + rng.below(12) as u32,
            range_bytes: DOCUMENT_SIZE_MAX_BYTES as u32,
            ranges_per_feed_max: 1 + rng.below(4) as usize,
            ranges_per_peer_max: 1 + rng.below(4) as usize,
            ranges_total_max: 4 + rng.below(6) as usize,
            buffered_bytes_max: (1 + rng.below(6)) * DOCUMENT_SIZE_MAX_BYTES as u64,
            publishers: None,
        };
        let truth = [1 + rng.below(150), rng.below(60), 1 + rng.below(40)];
        let trusted = FEEDS.iter().map(|f| org(f)).collect();
        let e = Checked::trusting(config, trusted, &[]);
        let mut sim = Sim {
            rng,
            e,
            truth,
            head: [0; 3],
            frozen: [false; 3],
            epoch: [0; 3],
            handed_to: [1; 3],
            trusted: [true; 3],
            network: Vec::new(),
            late: Vec::new(),
            writer: VecDeque::new(),
            resets_due: Vec::new(),
            penalties: BTreeMap::new(),
            calm: false,
        };
        for p in PEERS {
            let a = sim.e.connect(p);
            sim.take(a);
        }
        sim
    }

    /// Checks what the engine returned and routes it.
    fn take(&mut self, actions: Vec<Action>) {
        for (f, o) in FEEDS.iter().enumerate() {
            if let Some((local, _)) = self.e.e.lag().get(&org(o)) {
                assert!(
                    local.0 <= self.head[f],
                    "{o}: the engine believes {} stored, the store {}",
                    local.0,
                    self.head[f]
                );
            }
        }
        for a in actions {
            match a {
                Action::Ingest { peer, ref org, from, ref docs } => {
                    let feed = feed_of(org);
                    assert!(from.0 >= self.handed_to[feed], "{org}: #{} handed again", from.0);
                    self.handed_to[feed] = from.0 + docs.len() as u64;
                    self.writer.push_back(Job {
                        peer,
                        feed,
                        from: from.0,
                        docs: docs.clone(),
                        epoch: self.epoch[feed],
                    });
                }
                Action::Penalize { peer, offense } => {
                    assert!(!HONEST.contains(&peer), "honest peer {peer} penalized: {offense:?}");
                    if peer == LIAR {
                        assert_eq!(offense, Offense::UnservedClaim);
                    }
                    *self.penalties.entry((peer, offense)).or_default() += 1;
                }
                Action::SendStatus { .. } | Action::RequestRange { .. } => self.network.push(a),
            }
        }
    }

    /// The feed starts again (the engine marks what it handed so far stale).
    fn restarted(&mut self, feed: usize) {
        self.epoch[feed] += 1;
        self.handed_to[feed] = 0;
    }

    fn status_of(&mut self, peer: PeerKey) -> Vec<(OrgId, Seq)> {
        let mut heads: Vec<(OrgId, Seq)> = FEEDS
            .iter()
            .enumerate()
            .map(|(f, o)| (org(o), Seq(if peer == LIAR { LIE } else { self.truth[f] })))
            .collect();
        if peer == LIAR || self.rng.one_in(2) {
            heads.extend(UNTRUSTED.iter().map(|o| (org(o), Seq(LIE))));
        }
        heads
    }

    /// What `peer` answers to a request.
    fn answer(&mut self, peer: PeerKey, org: &OrgId, from: u64, count: u32) -> Vec<Vec<u8>> {
        let feed = feed_of(org);
        let last = (from + count as u64 - 1).min(self.truth[feed]);
        let mut n = (last + 1).saturating_sub(from);
        if n > 1 && !self.calm && self.rng.one_in(4) {
            n = 1 + self.rng.below(n - 1); // short, but never empty: it holds them
        }
        let mut docs: Vec<Vec<u8>> = (from..from + n).map(|s| doc(feed, s, Kind::Good)).collect();
        if peer == BAD && !docs.is_empty() && !self.calm && self.rng.one_in(3) {
            let i = self.rng.below(docs.len() as u64) as usize;
            let (_, seq, _) = read(&docs[i]);
            match self.rng.below(4) {
                0 => docs[i] = doc(feed, seq, Kind::Invalid),
                1 => docs[i] = doc((feed + 1) % FEEDS.len(), seq, Kind::Misplaced),
                2 => docs[i] = doc(feed, seq, Kind::OtherBranch),
                _ => docs.extend((0..=count).map(|k| doc(feed, from + k as u64, Kind::Good))),
            }
        }
        docs
    }

    /// The writer carries out the oldest ingest, as the store would.
    fn write(&mut self) {
        let Job { peer, feed, from, docs, epoch } = self.writer.pop_front().expect("called when not empty");
        let stale = epoch != self.epoch[feed];
        if !stale {
            assert!(
                from <= self.head[feed] + 1,
                "{}: #{from} handed past the store's head {}",
                FEEDS[feed],
                self.head[feed]
            );
        }
        let before = self.head[feed];
        let mut result = IngestResult::Ok;
        let mut reported = None;
        for d in &docs {
            let (f, seq, kind) = read(d);
            if self.frozen[feed] {
                result = IngestResult::Frozen;
            } else if f != feed {
                result = IngestResult::Misplaced;
                reported = Some(self.head[f] + 1000); // another feed's head, not to be believed
            } else if kind == Kind::Invalid {
                result = IngestResult::Invalid;
            } else if seq > self.head[feed] + 1 || kind == Kind::OtherBranch {
                result = IngestResult::Mismatch;
            } else if seq <= self.head[feed] {
                continue; // already held
            } else {
                // Failures that are nobody's fault, and a fork now and then.
                match if self.calm { 99 } else { self.rng.below(60) } {
                    0..=2 => result = IngestResult::Unauthorized,
                    3..=5 => result = IngestResult::Deferred,
                    6 => {
                        self.frozen[feed] = true;
                        self.resets_due.push(feed);
                        result = IngestResult::Frozen;
                    }
                    _ => self.head[feed] = seq,
                }
            }
            if result != IngestResult::Ok {
                break;
            }
        }
        if !stale && result != IngestResult::Ok && self.trusted[feed] {
            self.restarted(feed);
        }
        let head = reported.unwrap_or(self.head[feed]);
        let a = self.e.on(|e| e.ingested(peer, &org(FEEDS[feed]), Seq(head), result));
        self.take(a);
        if self.head[feed] > before {
            let h = self.head[feed];
            let a = self.e.on(|e| e.local_head(&org(FEEDS[feed]), Seq(h)));
            self.take(a);
        }
    }

    /// One network event: a request answered, refused, failed, delayed or its peer lost; a
    /// status delivered; or a late answer.
    fn network(&mut self) {
        let late = !self.late.is_empty() && (self.network.is_empty() || self.rng.one_in(8));
        let action = if late {
            let i = self.rng.below(self.late.len() as u64) as usize;
            self.late.swap_remove(i)
        } else {
            let i = self.rng.below(self.network.len() as u64) as usize;
            self.network.swap_remove(i)
        };
        let a = match action {
            Action::SendStatus { peer } => {
                let heads = self.status_of(peer);
                self.e.on(|e| e.status_received(peer, heads.iter().map(|(o, s)| (o, *s))))
            }
            Action::RequestRange { id, peer, org, from, count } => {
                match if self.calm { 99 } else { self.rng.below(12) } {
                    0 if !late => {
                        self.late.push(Action::RequestRange { id, peer, org, from, count });
                        Vec::new()
                    }
                    1 => self.e.on(|e| e.range_failed(id, true)),
                    2 => self.e.on(|e| e.range_failed(id, false)),
                    3 => {
                        // Lost mid-request; the node reconnects. Its answer may still come, late.
                        self.late.push(Action::RequestRange { id, peer, org, from, count });
                        let mut a = self.e.disconnect(peer);
                        a.extend(self.e.connect(peer));
                        a
                    }
                    _ => {
                        let docs = self.answer(peer, &org, from.0, count);
                        self.e.on(|e| e.range_received(id, docs))
                    }
                }
            }
            _ => unreachable!("only network actions are queued"),
        };
        self.take(a);
    }

    /// A charter action: a frozen feed resolved, or entries signed with a revoked key
    /// removed; the feed is truncated to a lower head and fetched again from there.
    fn reset(&mut self, feed: usize) {
        self.head[feed] = self.rng.below(self.head[feed] + 1);
        self.frozen[feed] = false;
        if self.trusted[feed] {
            self.restarted(feed);
        }
        let h = self.head[feed];
        let a = self.e.on(|e| e.feed_reset(&org(FEEDS[feed]), Seq(h)));
        self.take(a);
    }

    /// The last feed stops, or starts again, being trusted (a charter version).
    fn toggle_trust(&mut self) {
        let last = FEEDS.len() - 1;
        self.trusted[last] = !self.trusted[last];
        if self.trusted[last] {
            self.handed_to[last] = 0;
        } else {
            self.restarted(last);
        }
        let orgs: BTreeSet<OrgId> = (0..FEEDS.len()).filter(|f| self.trusted[*f]).map(|f| org(FEEDS[f])).collect();
        let a = self.e.on(|e| e.set_trusted(orgs));
        self.take(a);
        // The node asks every peer for its status when the charter changes.
        self.network.extend(PEERS.map(|peer| Action::SendStatus { peer }));
    }

    /// Gossip stored the next entry of a feed.
    fn gossip(&mut self, feed: usize) {
        if self.frozen[feed] || self.head[feed] >= self.truth[feed] {
            return;
        }
        self.head[feed] += 1;
        let h = self.head[feed];
        let a = self.e.on(|e| e.local_head(&org(FEEDS[feed]), Seq(h)));
        self.take(a);
    }

    fn converged(&self) -> bool {
        (0..FEEDS.len()).all(|f| self.trusted[f] && self.head[f] == self.truth[f])
    }

    fn quiet(&self) -> bool {
        self.network.is_empty() && self.late.is_empty() && self.writer.is_empty() && self.resets_due.is_empty()
    }
}

#[test]
fn any_schedule_keeps_the_invariants_penalizes_no_honest_peer_and_converges() {
    let mut lied_to = 0;
    for seed in 1..=300u64 {
        let mut s = Sim::new(seed);
        let mut idle = (0, [0; 3]);
        let mut steps = 0;
        while !(s.converged() && s.quiet()) {
            steps += 1;
            assert!(steps < 200_000, "seed {seed}: no convergence");
            if s.quiet() {
                // Nothing in flight: the periodic poll, then a status round (pull stays the
                // source of truth). Many such rounds without any entry stored is a replica
                // that stopped.
                idle = if idle.1 == s.head { (idle.0 + 1, s.head) } else { (0, s.head) };
                assert!(idle.0 <= 20, "seed {seed}: stuck at {:?} of {:?}, engine {:#?}", s.head, s.truth, s.e.e);
                if !s.trusted[FEEDS.len() - 1] {
                    s.toggle_trust();
                    continue;
                }
                let a = s.e.on(|e| e.poll());
                s.take(a);
                if s.quiet() {
                    let a = s.e.on(|e| e.tick());
                    s.take(a);
                }
                continue;
            }
            match s.rng.below(100) {
                0 if !s.resets_due.is_empty() => {
                    let feed = s.resets_due.remove(0);
                    s.reset(feed);
                }
                1 => {
                    let feed = s.rng.below(FEEDS.len() as u64) as usize;
                    s.reset(feed);
                }
                2 if s.rng.one_in(4) => s.toggle_trust(),
                3 => {
                    let feed = s.rng.below(FEEDS.len() as u64) as usize;
                    s.gossip(feed);
                }
                4..=40 if !s.writer.is_empty() => s.write(),
                _ if !s.network.is_empty() || !s.late.is_empty() => s.network(),
                _ if !s.writer.is_empty() => s.write(),
                _ if !s.resets_due.is_empty() => {
                    let feed = s.resets_due.remove(0);
                    s.reset(feed);
                }
                _ => {}
            }
        }
        // The liar's claims count for no more than it served.
        s.calm = true;
        for _ in 0..3 {
            let mut a = s.e.on(|e| e.poll());
            a.extend(s.e.on(|e| e.tick()));
            s.take(a);
            while !s.quiet() {
                if s.writer.is_empty() {
                    s.network();
                } else {
                    s.write();
                }
            }
        }
        for (f, o) in FEEDS.iter().enumerate() {
            assert_eq!(s.e.e.lag()[&org(o)], (Seq(s.truth[f]), Seq(s.truth[f])), "seed {seed}: {o}");
        }
        lied_to += s.penalties.contains_key(&(LIAR, Offense::UnservedClaim)) as u32;
    }
    assert!(lied_to > 200, "the liar was caught in {lied_to} schedules only");
}
