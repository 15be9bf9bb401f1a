//! Which feeds' checkpoints a node asks each peer for, and when (docs/PROTOCOL.md §8.2,
//! message 8). Pure: time is a parameter.
//!
//! A peer's checkpoint of a feed can tell this node something new only after that peer's
//! view of the feed changed: a new head (a larger checkpoint, new cosignatures to come), a
//! fork it now announces, or a peer met for the first time (its history may not be this
//! node's: a split view, §13.6). So a feed is asked of a peer when its announced head
//! changes, and not at all when this node already holds a checkpoint as large (another peer
//! gave it), except the peer's first head of the feed (the split-view check) unless that head
//! is the very entry this node holds at that position: entries chain by `prev`, so the same
//! entry at the same position is the same history, and a checkpoint the peer verified against
//! it cannot contradict this node's tree. Where nodes
//! cosign (charter networks) the first [`FOLLOW_PEERS`] peers to announce a new head of a
//! feed are asked [`FOLLOW_PULLS`] times, spaced out, whatever is held, because witnesses
//! cosign up to [`crate::service::COSIGN_INTERVAL_S`] later. Asking every peer, as before,
//! cost each node 3 checkpoints per peer (~90) for every document published.
//! Nothing else is asked while nothing changes, whatever the number of feeds; once per
//! [`SWEEP_INTERVAL`] one peer is asked for every feed it announces, to pick up what came
//! later still.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::document::{DocumentId, OrgId, Seq};
use crate::sync::wire::CHECKPOINT_FEEDS_MAX;

/// Each admitted peer is asked for checkpoints at most once per this interval (a status
/// arrives every 10 s), up to [`CHECKPOINT_FEEDS_MAX`] feeds a time.
pub const PULL_INTERVAL: Duration = Duration::from_secs(30);
/// Pulls of a feed from a follow peer after the head it announces changed: at once, then
/// [`PULL_INTERVAL`] later, then twice that later again.
pub const FOLLOW_PULLS: u8 = 3;
/// How many peers, per new head of a feed, get the follow-up pulls (the first to announce it).
pub const FOLLOW_PEERS: u8 = 2;
/// How often one peer (the next whose status arrives) is asked for every feed it announces.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(15 * 60);

// The follow-up pulls span more than a witness's cosignature interval.
const _: () = assert!(PULL_INTERVAL.as_secs() * 3 > crate::service::COSIGN_INTERVAL_S);
const _: () = assert!(SWEEP_INTERVAL.as_secs() > PULL_INTERVAL.as_secs() * 3);

/// What a peer announced of one feed, and the pulls of it still due.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    head: Seq,
    /// The entry at the head.
    id: DocumentId,
    forked_at: Option<Seq>,
    /// Asked for even if this node holds a checkpoint as large: a fork the peer now
    /// announces, a follow peer's pulls, a sweep's.
    always: bool,
    /// The first head this peer announced of the feed: asked for even if this node holds a
    /// checkpoint as large (the split-view check), unless this node holds that very entry.
    first: bool,
    /// Pulls still to make; 0: nothing to ask until the head changes or a sweep.
    due: u8,
    /// Not asked before this.
    next: Instant,
}

/// What this node holds of a feed a peer announced, for [`PeerCheckpoints::take_due`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Holding {
    /// A checkpoint at least as large as the peer's head.
    pub checkpoint_as_large: bool,
    /// The entry the peer announces as its head, at that position.
    pub same_head: bool,
}

/// The checkpoint pulls of one peer.
#[derive(Debug, Clone, Default)]
pub struct PeerCheckpoints {
    /// Every feed the peer announces (trusted publishers only, as its status is filtered).
    feeds: BTreeMap<OrgId, Watched>,
    /// When it was last asked.
    asked: Option<Instant>,
}

impl PeerCheckpoints {
    /// The heads (and fork positions) of the peer's latest status: a feed new or changed is
    /// due at once, `follow(org, head)` times in all (more than once only for a follow peer);
    /// a feed it no longer announces is forgotten.
    pub fn announced(
        &mut self,
        now: Instant,
        heads: impl IntoIterator<Item = (OrgId, Seq, DocumentId, Option<Seq>)>,
        mut follow: impl FnMut(&OrgId, Seq) -> u8,
    ) {
        let mut feeds = BTreeMap::new();
        for (org, head, id, forked_at) in heads {
            if head.0 == 0 && forked_at.is_none() {
                continue;
            }
            // Asked whatever is held: a fork it now announces (the evidence travels with
            // checkpoints), a follow peer's pulls; the peer's first head, unless it is the
            // entry held here (split view).
            let (always, first) = match self.feeds.remove(&org) {
                Some(w) if w.head == head && w.id == id && w.forked_at == forked_at => {
                    feeds.insert(org, w);
                    continue;
                }
                Some(w) => (w.forked_at != forked_at, false),
                None => (forked_at.is_some(), true),
            };
            let due = follow(&org, head);
            debug_assert!((1..=FOLLOW_PULLS).contains(&due));
            feeds.insert(org, Watched { head, id, forked_at, always: always || due > 1, first, due, next: now });
        }
        self.feeds = feeds;
    }

    /// Every announced feed is due once more (unless already due), whatever is held.
    pub fn sweep(&mut self, now: Instant) {
        for w in self.feeds.values_mut().filter(|w| w.due == 0) {
            w.due = 1;
            w.always = true;
            w.next = now;
        }
    }

    /// The feeds to ask for now, at most [`CHECKPOINT_FEEDS_MAX`], longest due first; empty
    /// when the peer was asked within [`PULL_INTERVAL`] or nothing is due. Those returned
    /// count as asked. A due feed of which `held(org, head, id)` shows a checkpoint at least
    /// as large (and, for the peer's first head, the same head entry) is no longer due, unless
    /// it is always asked.
    pub fn take_due(&mut self, now: Instant, held: impl Fn(&OrgId, Seq, &DocumentId) -> Holding) -> Vec<OrgId> {
        if self.asked.is_some_and(|at| now.saturating_duration_since(at) < PULL_INTERVAL) {
            return Vec::new();
        }
        for (org, w) in self.feeds.iter_mut() {
            if w.due > 0 && !w.always {
                let h = held(org, w.head, &w.id);
                if h.checkpoint_as_large && (h.same_head || !w.first) {
                    w.due = 0;
                }
            }
        }
        let mut due: Vec<(&OrgId, Instant)> =
            self.feeds.iter().filter(|(_, w)| w.due > 0 && w.next <= now).map(|(o, w)| (o, w.next)).collect();
        due.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
        let orgs: Vec<OrgId> = due.into_iter().take(CHECKPOINT_FEEDS_MAX).map(|(o, _)| o.clone()).collect();
        for org in &orgs {
            let w = self.feeds.get_mut(org).expect("taken from the map");
            w.due -= 1;
            w.next = now + PULL_INTERVAL * u32::from(FOLLOW_PULLS - w.due);
        }
        if !orgs.is_empty() {
            self.asked = Some(now);
        }
        orgs
    }

    /// Forgets the feeds `keep` refuses (publishers a charter version no longer trusts).
    pub fn retain(&mut self, keep: impl Fn(&OrgId) -> bool) {
        self.feeds.retain(|org, _| keep(org));
    }

    /// The feeds watched.
    pub fn feeds(&self) -> impl Iterator<Item = &OrgId> {
        self.feeds.keys()
    }

    /// Feeds with pulls still due (for invariants and tests).
    pub fn due_count(&self) -> usize {
        self.feeds.values().filter(|w| w.due > 0).count()
    }

    /// Checks what must always hold.
    pub fn check_invariants(&self) {
        for (org, w) in &self.feeds {
            assert!(w.due <= FOLLOW_PULLS, "{org}: {} pulls due, more than {FOLLOW_PULLS}", w.due);
            assert!(w.head.0 > 0 || w.forked_at.is_some(), "{org}: an empty feed is watched");
            assert!(w.due <= 1 || w.always, "{org}: follow-up pulls of a feed not always asked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(i: usize) -> OrgId {
        OrgId::new(&format!("O{i:03}")).unwrap()
    }

    type Announced = (OrgId, Seq, DocumentId, Option<Seq>);

    fn heads(n: usize, seq: u64) -> Vec<Announced> {
        (0..n).map(|i| (org(i), Seq(seq), DocumentId([seq as u8; 32]), None)).collect()
    }

    /// Holds a checkpoint at least as large, and (`same`) the entry at the head, or neither.
    fn holding(large: bool, same: bool) -> Holding {
        Holding { checkpoint_as_large: large, same_head: same }
    }

    /// Drives one peer's pulls every 10 s (a status each time) for `secs`, with the heads
    /// `at(t)` announced; returns the feeds asked for, in order, with the time asked.
    fn run(
        p: &mut PeerCheckpoints,
        t0: Instant,
        from_s: u64,
        secs: u64,
        at: impl Fn(u64) -> Vec<Announced>,
    ) -> Vec<(u64, OrgId)> {
        let mut asked = Vec::new();
        for t in (from_s..from_s + secs).step_by(10) {
            let now = t0 + Duration::from_secs(t);
            p.announced(now, at(t), |_, _| FOLLOW_PULLS);
            p.check_invariants();
            asked.extend(p.take_due(now, |_, _, _| Holding::default()).into_iter().map(|o| (t, o)));
            p.check_invariants();
        }
        asked
    }

    #[test]
    fn a_new_peer_is_asked_for_every_feed_three_times_then_nothing_while_nothing_changes() {
        let t0 = Instant::now();
        let mut p = PeerCheckpoints::default();
        let asked = run(&mut p, t0, 0, 3600, |_| heads(400, 5));
        for i in 0..400 {
            assert_eq!(asked.iter().filter(|(_, o)| *o == org(i)).count(), 3, "feed {i} asked three times");
        }
        assert_eq!(p.due_count(), 0);
        let last = asked.iter().map(|(t, _)| *t).max().unwrap();
        assert!(last < 3600 / 2, "nothing asked in the second half hour (last at {last} s)");
        // Every request carries at most the wire's bound, at most one per 30 s.
        let mut per_time: BTreeMap<u64, usize> = BTreeMap::new();
        for (t, _) in &asked {
            *per_time.entry(*t).or_default() += 1;
        }
        assert!(per_time.values().all(|n| *n <= CHECKPOINT_FEEDS_MAX));
        let times: Vec<u64> = per_time.keys().copied().collect();
        assert!(times.windows(2).all(|w| w[1] - w[0] >= PULL_INTERVAL.as_secs()));
    }

    #[test]
    fn a_changed_head_or_a_fork_makes_only_that_feed_due_again() {
        let t0 = Instant::now();
        let mut p = PeerCheckpoints::default();
        run(&mut p, t0, 0, 600, |_| heads(10, 5));
        assert_eq!(p.due_count(), 0);
        let moved = |_| {
            let mut h = heads(10, 5);
            h[3].1 = Seq(6);
            h[7].3 = Some(Seq(5));
            h
        };
        let asked = run(&mut p, t0, 600, 600, moved);
        let orgs: BTreeMap<OrgId, usize> = asked.iter().fold(BTreeMap::new(), |mut m, (_, o)| {
            *m.entry(o.clone()).or_default() += 1;
            m
        });
        assert_eq!(orgs, BTreeMap::from([(org(3), 3), (org(7), 3)]));
        // Follow-up pulls are spaced out: at once, then 30 s, then 60 s after that.
        let times: Vec<u64> = asked.iter().filter(|(_, o)| *o == org(3)).map(|(t, _)| *t).collect();
        assert_eq!(times, vec![600, 630, 690]);
    }

    #[test]
    fn a_sweep_asks_every_feed_once_and_a_feed_no_longer_announced_is_forgotten() {
        let t0 = Instant::now();
        let mut p = PeerCheckpoints::default();
        run(&mut p, t0, 0, 600, |_| heads(40, 5));
        p.sweep(t0 + Duration::from_secs(600));
        let asked = run(&mut p, t0, 600, 600, |_| heads(40, 5));
        assert_eq!(asked.len(), 40, "each feed once");
        run(&mut p, t0, 1200, 10, |_| heads(20, 5));
        assert_eq!(p.feeds.len(), 20);
        // Empty feeds are not asked for.
        let mut q = PeerCheckpoints::default();
        assert!(run(&mut q, t0, 0, 100, |_| heads(5, 0)).is_empty());
    }

    #[test]
    fn a_changed_head_is_asked_once_and_not_at_all_when_a_checkpoint_as_large_is_held_but_a_fork_or_a_sweep_always() {
        let t0 = Instant::now();
        let mut p = PeerCheckpoints::default();
        p.announced(t0, heads(3, 5), |_, _| 1);
        // The first heads of a peer are asked for whatever checkpoint is held: the split-view
        // check.
        assert_eq!(p.take_due(t0, |_, _, _| holding(true, false)).len(), 3);
        let t1 = t0 + Duration::from_secs(60);
        assert!(p.take_due(t1, |_, _, _| Holding::default()).is_empty(), "once each");
        // Unless this node holds that very entry at the head and a checkpoint as large: the
        // same history, nothing to compare. Without the checkpoint it is asked all the same.
        let mut other = PeerCheckpoints::default();
        other.announced(t0, heads(3, 5), |_, _| 1);
        let asked = other.take_due(t0, |o, _, id| holding(*o != org(2), *id == DocumentId([5; 32])));
        assert_eq!(asked, vec![org(2)]);
        other.check_invariants();
        let mut moved = heads(3, 5);
        moved[0].1 = Seq(6);
        moved[1].1 = Seq(6);
        p.announced(t1, moved, |_, _| 1);
        // This node holds a checkpoint of 6 of feed 0 already, not of feed 1.
        let asked = p.take_due(t1, |o, head, _| holding(*o == org(0) && head.0 <= 6, false));
        assert_eq!(asked, vec![org(1)]);
        assert_eq!(p.due_count(), 0);
        p.check_invariants();
        // A fork the peer now announces is asked for whatever is held: its evidence travels
        // with the checkpoints.
        let t2 = t1 + Duration::from_secs(60);
        let mut forked = heads(3, 6);
        forked[2] = (org(2), Seq(5), DocumentId([5; 32]), Some(Seq(4)));
        p.announced(t2, forked, |_, _| 1);
        assert_eq!(p.take_due(t2, |_, _, _| holding(true, true)), vec![org(2)]);
        // And a sweep is asked whatever is held.
        let t3 = t2 + Duration::from_secs(60);
        p.sweep(t3);
        assert_eq!(p.take_due(t3, |_, _, _| holding(true, true)).len(), 3);
        p.check_invariants();
    }
}
