//! Penalty points and bans, by peer id (sans-IO: time is a parameter).
//!
//! Penalties follow the **peer id**, the identity the connection authenticated, not the
//! certified organization: one misbehaving node of an administration must not cut the whole
//! administration off, and an honest node must not pay for another node's key. A member that
//! mints new peer ids to start clean is visible (every ban is logged with the certified
//! organization) and is answered by the charter, which can revoke the certifying key.
//!
//! Points decay, so an honest peer that once sent something this node could not judge
//! recovers; a peer reaching [`BAN_POINTS`] is banned for [`BAN_DURATION`]. Both maps are
//! bounded: the books forget the least penalized peer, the ban list the ban ending first.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Points after which a peer is disconnected and blocked.
pub const BAN_POINTS: u32 = 10;
/// How long a banned peer stays blocked.
pub const BAN_DURATION: Duration = Duration::from_secs(600);
/// One point is forgiven per this much time without a new penalty.
pub const DECAY_INTERVAL: Duration = Duration::from_secs(60);
/// Peers with points on the books at once.
pub const BOOKS_MAX: usize = 4096;
/// Peers banned at once.
pub const BANS_MAX: usize = 4096;

/// Something a peer did that costs it points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Offense {
    /// A sync request that is not a valid message.
    MalformedRequest,
    /// An answer that does not decode or breaks a bound.
    MalformedResponse,
    /// A status or answer for another network.
    WrongNetwork,
    /// More requests at once than the per-peer bound.
    RequestFlood,
    /// A gossiped document that is bad under any charter version.
    InvalidGossip,
    /// A served document that is bad under any charter version.
    InvalidDocument,
    /// Served entries that are not at the positions asked for.
    Misplaced,
    /// A range answer longer than asked.
    RangeTooLong,
    /// A head claimed and then not served.
    UnservedClaim,
    /// A fork announced and no proof of it served.
    UnprovenFork,
    /// A fork proof that is not one.
    InvalidForkProof,
    /// A charter version announced and not served.
    UnservedCharter,
    /// Charter files that do not extend the chain.
    InvalidCharter,
    /// A sealed payload that does not match its notice.
    InvalidPayload,
    /// A checkpoint, cosignature or checkpoint-fork evidence that does not verify.
    InvalidCheckpoint,
}

impl Offense {
    /// Every offense, in declaration order (metrics show each at 0 before it happens).
    pub const ALL: [Offense; 15] = [
        Offense::MalformedRequest,
        Offense::MalformedResponse,
        Offense::WrongNetwork,
        Offense::RequestFlood,
        Offense::InvalidGossip,
        Offense::InvalidDocument,
        Offense::Misplaced,
        Offense::RangeTooLong,
        Offense::UnservedClaim,
        Offense::UnprovenFork,
        Offense::InvalidForkProof,
        Offense::UnservedCharter,
        Offense::InvalidCharter,
        Offense::InvalidPayload,
        Offense::InvalidCheckpoint,
    ];

    /// The node's offense for one the sync engine found.
    pub fn from_sync(offense: crate::sync::engine::Offense) -> Offense {
        use crate::sync::engine::Offense as Sync;
        match offense {
            Sync::RangeTooLong => Offense::RangeTooLong,
            Sync::InvalidDocument => Offense::InvalidDocument,
            Sync::Misplaced => Offense::Misplaced,
            Sync::UnservedClaim => Offense::UnservedClaim,
        }
    }

    /// The points it costs.
    pub fn points(self) -> u32 {
        match self {
            Offense::WrongNetwork
            | Offense::InvalidDocument
            | Offense::MalformedResponse
            | Offense::Misplaced
            | Offense::InvalidForkProof
            | Offense::InvalidCharter
            | Offense::InvalidPayload
            | Offense::InvalidCheckpoint => 5,
            Offense::MalformedRequest | Offense::InvalidGossip => 3,
            Offense::RangeTooLong | Offense::UnservedClaim | Offense::UnprovenFork | Offense::UnservedCharter => 2,
            Offense::RequestFlood => 1,
        }
    }

    /// A stable machine-readable name (logs, metrics).
    pub fn code(self) -> &'static str {
        match self {
            Offense::MalformedRequest => "malformed_request",
            Offense::MalformedResponse => "malformed_response",
            Offense::WrongNetwork => "wrong_network",
            Offense::RequestFlood => "request_flood",
            Offense::InvalidGossip => "invalid_gossip",
            Offense::InvalidDocument => "invalid_document",
            Offense::Misplaced => "misplaced_entries",
            Offense::RangeTooLong => "range_too_long",
            Offense::UnservedClaim => "unserved_claim",
            Offense::UnprovenFork => "unproven_fork",
            Offense::InvalidForkProof => "invalid_fork_proof",
            Offense::UnservedCharter => "unserved_charter",
            Offense::InvalidCharter => "invalid_charter",
            Offense::InvalidPayload => "invalid_payload",
            Offense::InvalidCheckpoint => "invalid_checkpoint",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Points {
    value: u32,
    since: Instant,
}

/// A ban in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub until: Instant,
    /// The offense that crossed the threshold.
    pub offense: Offense,
}

/// What a penalty led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Points added; the peer stays.
    Noted { points: u32 },
    /// The peer crossed the threshold: disconnect and block it.
    Banned,
    /// Already banned; nothing more to do.
    AlreadyBanned,
}

/// The penalty books and the ban list.
#[derive(Debug, Default)]
pub struct Penalties {
    books: HashMap<String, Points>,
    bans: HashMap<String, Ban>,
    /// Penalties given, by offense (metrics).
    pub given: BTreeMap<Offense, u64>,
    /// Bans given since start (metrics).
    pub bans_given: u64,
}

impl Penalties {
    /// Adds the offense's points to `peer`.
    pub fn penalize(&mut self, peer: &str, offense: Offense, now: Instant) -> Verdict {
        *self.given.entry(offense).or_default() += 1;
        if self.bans.contains_key(peer) {
            return Verdict::AlreadyBanned;
        }
        let points = {
            let entry = self.books.entry(peer.to_owned()).or_insert(Points { value: 0, since: now });
            decay(entry, now);
            entry.value += offense.points();
            entry.since = now;
            entry.value
        };
        if points >= BAN_POINTS {
            self.books.remove(peer);
            if self.bans.len() >= BANS_MAX {
                // Forget the ban ending first: the peer is still blocked by libp2p until the
                // next expiry pass lifts the oldest bans, and the bound holds.
                if let Some(first) = self.bans.iter().min_by_key(|(_, b)| b.until).map(|(p, _)| p.clone()) {
                    self.bans.remove(&first);
                }
            }
            self.bans.insert(peer.to_owned(), Ban { until: now + BAN_DURATION, offense });
            self.bans_given += 1;
            return Verdict::Banned;
        }
        if self.books.len() > BOOKS_MAX {
            if let Some(least) = self.books.iter().min_by_key(|(_, p)| (p.value, p.since)).map(|(p, _)| p.clone()) {
                self.books.remove(&least);
            }
        }
        Verdict::Noted { points }
    }

    /// The points `peer` holds now.
    pub fn points(&self, peer: &str, now: Instant) -> u32 {
        self.books.get(peer).map_or(0, |p| {
            let mut p = *p;
            decay(&mut p, now);
            p.value
        })
    }

    pub fn is_banned(&self, peer: &str) -> bool {
        self.bans.contains_key(peer)
    }

    /// Lifts the bans that have run out and forgets decayed points; returns the peers to unban.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut lifted: Vec<String> =
            self.bans.iter().filter(|(_, b)| b.until <= now).map(|(p, _)| p.clone()).collect();
        lifted.sort();
        for p in &lifted {
            self.bans.remove(p);
        }
        self.books.retain(|_, p| {
            decay(p, now);
            p.value > 0
        });
        lifted
    }

    /// When the next ban runs out.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.bans.values().map(|b| b.until).min()
    }

    /// Bans in force, by peer id.
    pub fn bans(&self) -> impl Iterator<Item = (&String, &Ban)> {
        self.bans.iter()
    }

    /// Asserts the bounds.
    pub fn check_invariants(&self) {
        assert!(self.books.len() <= BOOKS_MAX, "penalty books over their bound");
        assert!(self.bans.len() <= BANS_MAX, "ban list over its bound");
        for (peer, p) in &self.books {
            assert!(p.value < BAN_POINTS, "{peer} holds {} points and is not banned", p.value);
            assert!(!self.bans.contains_key(peer), "{peer} is both banned and on the books");
        }
    }
}

fn decay(p: &mut Points, now: Instant) {
    let steps = (now.saturating_duration_since(p.since).as_secs() / DECAY_INTERVAL.as_secs()) as u32;
    if steps > 0 {
        p.value = p.value.saturating_sub(steps);
        p.since += DECAY_INTERVAL * steps;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_lists_every_offense_once() {
        // The match is exhaustive: a new offense does not compile here until it has a
        // position (the next one, and its place in `ALL`).
        fn position(o: Offense) -> usize {
            match o {
                Offense::MalformedRequest => 0,
                Offense::MalformedResponse => 1,
                Offense::WrongNetwork => 2,
                Offense::RequestFlood => 3,
                Offense::InvalidGossip => 4,
                Offense::InvalidDocument => 5,
                Offense::Misplaced => 6,
                Offense::RangeTooLong => 7,
                Offense::UnservedClaim => 8,
                Offense::UnprovenFork => 9,
                Offense::InvalidForkProof => 10,
                Offense::UnservedCharter => 11,
                Offense::InvalidCharter => 12,
                Offense::InvalidPayload => 13,
                Offense::InvalidCheckpoint => 14,
            }
        }
        for (i, o) in Offense::ALL.iter().enumerate() {
            assert_eq!(position(*o), i, "{o:?}");
        }
        let codes: std::collections::BTreeSet<_> = Offense::ALL.iter().map(|o| o.code()).collect();
        assert_eq!(codes.len(), Offense::ALL.len(), "two offenses share a code");
    }

    use super::*;

    #[test]
    fn points_add_up_to_a_ban_that_runs_out() {
        let mut p = Penalties::default();
        let t0 = Instant::now();
        assert_eq!(p.penalize("a", Offense::InvalidDocument, t0), Verdict::Noted { points: 5 });
        assert_eq!(p.penalize("a", Offense::InvalidDocument, t0), Verdict::Banned);
        assert_eq!(p.penalize("a", Offense::InvalidDocument, t0), Verdict::AlreadyBanned);
        assert!(p.is_banned("a"));
        p.check_invariants();
        assert!(p.expire(t0 + BAN_DURATION - Duration::from_secs(1)).is_empty());
        assert_eq!(p.expire(t0 + BAN_DURATION), vec!["a".to_string()]);
        assert!(!p.is_banned("a"));
        assert_eq!(p.points("a", t0 + BAN_DURATION), 0, "a lifted ban starts clean");
    }

    #[test]
    fn points_decay_so_rare_mistakes_never_ban() {
        let mut p = Penalties::default();
        let t0 = Instant::now();
        for i in 0..100u32 {
            // Two points every two minutes: decay forgives them before they add up.
            let v = p.penalize("honest", Offense::UnservedClaim, t0 + DECAY_INTERVAL * 2 * i);
            assert!(matches!(v, Verdict::Noted { points } if points <= 2), "{v:?} at step {i}");
            p.check_invariants();
        }
        assert_eq!(p.points("honest", t0 + DECAY_INTERVAL * 300), 0);
    }

    #[test]
    fn the_books_and_the_ban_list_stay_within_their_bounds() {
        let mut p = Penalties::default();
        let t0 = Instant::now();
        for i in 0..(BOOKS_MAX + 50) {
            let _ = p.penalize(&format!("p{i}"), Offense::RequestFlood, t0);
        }
        for i in 0..(BANS_MAX + 50) {
            let _ = p.penalize(&format!("b{i}"), Offense::WrongNetwork, t0 + Duration::from_millis(i as u64));
            let _ = p.penalize(&format!("b{i}"), Offense::WrongNetwork, t0 + Duration::from_millis(i as u64));
        }
        p.check_invariants();
        assert_eq!(p.bans().count(), BANS_MAX);
        assert!(p.is_banned(&format!("b{}", BANS_MAX + 49)), "the newest ban is kept");
    }
}
