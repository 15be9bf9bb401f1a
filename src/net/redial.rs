//! When to dial each bootstrap peer, and each known peer, again (docs/PROTOCOL.md §8.1). Pure:
//! time is a parameter.
//!
//! A bootstrap peer that is not connected is dialed when it is due. A known peer (one this node
//! dialed and reached, or whose identify named where it listens; at most [`limits::KNOWN_PEERS_MAX`] of them) is dialed when it is due and
//! the node has fewer than [`limits::KNOWN_REDIAL_BELOW`] peers: a node that lost its
//! connections finds the network again within seconds, without waiting for Kademlia's refresh.
//! A known peer the node itself let go ([`Redial::forget`]) is no longer known. A failed dial, or a
//! connection that closes before [`limits::REDIAL_STABLE_CONNECTION`], doubles the delay
//! before the next attempt, from [`limits::REDIAL_BACKOFF_MIN`] up to
//! [`limits::REDIAL_BACKOFF_MAX`]; a connection that lasted resets it. Each wait is drawn
//! between half the delay and the whole of it ("equal jitter"), from a generator seeded per
//! node: a thousand nodes that lost the same peer at the same moment do not dial it again in
//! the same second. A banned peer is never due; lifting its ban makes it due at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// To be dialed at this instant.
    Due(Instant),
    /// A dial is under way.
    Dialing,
    /// Connected since.
    Connected(Instant),
    /// Blocked by a ban: not dialed until the ban is lifted.
    Banned,
}

#[derive(Debug)]
struct Entry {
    address: Multiaddr,
    state: State,
    /// The delay before the attempt after the next failure.
    delay: Duration,
    /// A bootstrap peer (always dialed when due), or a known one.
    bootstrap: bool,
    /// When a known peer was last reached (the least recent goes first when full).
    reached: Instant,
}

/// Every bootstrap and known peer's redial state.
#[derive(Debug)]
pub struct Redial {
    peers: HashMap<PeerId, Entry>,
    /// Draws each wait's jitter; seeded, so a run is reproducible from its seed.
    rng: StdRng,
}

fn doubled(d: Duration) -> Duration {
    (d * 2).min(limits::REDIAL_BACKOFF_MAX)
}

/// The jitter seed of the node `peer`: its peer id's SHA-256, so every node has its own and a
/// harness run with fixed keys repeats.
pub fn seed_of(peer: &PeerId) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(peer.to_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

/// A wait drawn in `[delay / 2, delay]`.
fn jittered(delay: Duration, rng: &mut StdRng) -> Duration {
    delay / 2 + (delay / 2).mul_f64(rng.gen_range(0.0..=1.0))
}

impl Redial {
    /// Bootstrap peers, all due at `now`; `seed` seeds the jitter (the node derives it from its
    /// peer id, so that nodes differ).
    pub fn new(bootstrap: &[(PeerId, Multiaddr)], now: Instant, seed: u64) -> Redial {
        let peers = bootstrap
            .iter()
            .map(|(peer, address)| {
                let e = Entry {
                    address: address.clone(),
                    state: State::Due(now),
                    delay: limits::REDIAL_BACKOFF_MIN,
                    bootstrap: true,
                    reached: now,
                };
                (*peer, e)
            })
            .collect();
        Redial { peers, rng: StdRng::seed_from_u64(seed) }
    }

    /// The peers due at `now` while `connected` peers are connected, now marked as being
    /// dialed.
    #[must_use]
    pub fn due(&mut self, now: Instant, connected: usize) -> Vec<(PeerId, Multiaddr)> {
        let known_too = connected < limits::KNOWN_REDIAL_BELOW;
        let mut out = Vec::new();
        for (peer, e) in &mut self.peers {
            if (e.bootstrap || known_too) && matches!(e.state, State::Due(at) if at <= now) {
                e.state = State::Dialing;
                out.push((*peer, e.address.clone()));
            }
        }
        out
    }

    /// A dial of `peer` failed (or could not start).
    pub fn dial_failed(&mut self, peer: &PeerId, now: Instant) {
        if let Some(e) = self.peers.get_mut(peer) {
            if e.state == State::Dialing {
                e.state = State::Due(now + jittered(e.delay, &mut self.rng));
                e.delay = doubled(e.delay);
            }
        }
    }

    /// This node is connected to `peer`, which listens at `address` (it dialed it there, or the
    /// peer said so in identify): a known peer from now on (unless
    /// it is a bootstrap peer already). When [`limits::KNOWN_PEERS_MAX`] are known, the least
    /// recently reached that is not connected makes room; when all are connected, it is not
    /// kept.
    pub fn learn(&mut self, peer: PeerId, address: Multiaddr, now: Instant) {
        if let Some(e) = self.peers.get_mut(&peer) {
            if !e.bootstrap {
                e.address = address;
                e.reached = now;
            }
            return;
        }
        if self.peers.values().filter(|e| !e.bootstrap).count() >= limits::KNOWN_PEERS_MAX {
            let oldest = self
                .peers
                .iter()
                .filter(|(_, e)| !e.bootstrap && !matches!(e.state, State::Connected(_)))
                .min_by_key(|(_, e)| e.reached)
                .map(|(p, _)| *p);
            match oldest {
                Some(p) => self.peers.remove(&p),
                None => return,
            };
        }
        let e = Entry {
            address,
            state: State::Connected(now),
            delay: limits::REDIAL_BACKOFF_MIN,
            bootstrap: false,
            reached: now,
        };
        self.peers.insert(peer, e);
    }

    /// The node let `peer` go on purpose (over its connection target, turned away, of another
    /// version): a known peer is forgotten; a bootstrap peer stays.
    pub fn forget(&mut self, peer: &PeerId) {
        if self.peers.get(peer).is_some_and(|e| !e.bootstrap) {
            self.peers.remove(peer);
        }
    }

    /// A first connection with `peer` is established (whoever dialed).
    pub fn connected(&mut self, peer: &PeerId, now: Instant) {
        if let Some(e) = self.peers.get_mut(peer) {
            if e.state != State::Banned {
                e.state = State::Connected(now);
            }
        }
    }

    /// The last connection with `peer` closed.
    pub fn disconnected(&mut self, peer: &PeerId, now: Instant) {
        if let Some(e) = self.peers.get_mut(peer) {
            if let State::Connected(since) = e.state {
                if now.duration_since(since) >= limits::REDIAL_STABLE_CONNECTION {
                    e.delay = limits::REDIAL_BACKOFF_MIN;
                }
                e.state = State::Due(now + jittered(e.delay, &mut self.rng));
                e.delay = doubled(e.delay);
            }
        }
    }

    /// `peer` is banned: it is not dialed until [`Redial::unbanned`].
    pub fn banned(&mut self, peer: &PeerId) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.state = State::Banned;
        }
    }

    /// The ban on `peer` is lifted: it is due at once, with the shortest delay after.
    pub fn unbanned(&mut self, peer: &PeerId, now: Instant) {
        if let Some(e) = self.peers.get_mut(peer) {
            if e.state == State::Banned {
                e.state = State::Due(now);
                e.delay = limits::REDIAL_BACKOFF_MIN;
            }
        }
    }
}

/// Whether Kademlia is refreshed now, `since` the last refresh, with `connected` peers and a
/// connection target of `target`: at the tick of [`limits::KAD_BOOTSTRAP_INTERVAL`] while
/// below the target, and only after [`limits::KAD_REFRESH_AT_TARGET`] at or above it.
pub fn kad_refresh_due(connected: usize, target: usize, since: Duration) -> bool {
    connected < target || since >= limits::KAD_REFRESH_AT_TARGET
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kademlia_looks_for_peers_below_the_target_and_rarely_at_it() {
        let two_min = limits::KAD_BOOTSTRAP_INTERVAL;
        assert!(kad_refresh_due(3, 24, two_min));
        assert!(kad_refresh_due(23, 24, Duration::ZERO));
        assert!(!kad_refresh_due(24, 24, two_min));
        assert!(!kad_refresh_due(40, 24, limits::KAD_REFRESH_AT_TARGET - Duration::from_secs(1)));
        assert!(kad_refresh_due(24, 24, limits::KAD_REFRESH_AT_TARGET));
    }

    fn one() -> (Redial, PeerId, Instant) {
        let peer = PeerId::random();
        let now = Instant::now();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        (Redial::new(&[(peer, addr)], now, 7), peer, now)
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    impl Redial {
        /// Due with no peer connected.
        fn due0(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
            self.due(now, 0)
        }

        fn known(&self) -> usize {
            self.peers.values().filter(|e| !e.bootstrap).count()
        }
    }

    /// The wait, to the millisecond, until `peer` is due again after `t`.
    fn wait_ms(r: &mut Redial, t: Instant) -> u64 {
        (1..=120_000).find(|ms| !r.due0(t + Duration::from_millis(*ms)).is_empty()).expect("dialed again")
    }

    #[test]
    fn a_peer_that_never_answers_is_dialed_with_a_doubling_jittered_delay_up_to_a_minute() {
        for seed in 0..20 {
            let (mut r, peer, t0) = one();
            r.rng = StdRng::seed_from_u64(seed);
            let mut t = t0;
            assert_eq!(r.due0(t).len(), 1, "dialed at once");
            for delay_s in [2, 4, 8, 16, 32, 60, 60, 60] {
                r.dial_failed(&peer, t);
                r.dial_failed(&peer, t); // a second report of the same dial changes nothing
                let wait = wait_ms(&mut r, t);
                assert!(
                    (delay_s * 500..=delay_s * 1000).contains(&wait),
                    "seed {seed}: waited {wait} ms where the delay is {delay_s} s"
                );
                t += Duration::from_millis(wait);
            }
        }
    }

    #[test]
    fn nodes_that_lost_the_same_peer_at_once_dial_it_again_spread_over_the_delay() {
        // 1,000 nodes, each with its own seed, see their bootstrap peer go at the same moment,
        // after a connection that lasted: each dials it again within [1 s, 2 s], spread out.
        let t0 = Instant::now();
        let boot = PeerId::random();
        let mut waits: Vec<u64> = (0..1000u64)
            .map(|node| {
                let mut r = Redial::new(&[(boot, addr(4001))], t0, seed_of(&PeerId::random()) ^ node);
                let _ = r.due0(t0);
                r.connected(&boot, t0);
                r.disconnected(&boot, t0 + S(600));
                wait_ms(&mut r, t0 + S(600))
            })
            .collect();
        waits.sort_unstable();
        assert!(waits[0] >= 1000 && waits[999] <= 2000, "waits {}..{} ms", waits[0], waits[999]);
        // In each tenth of the interval between 5 % and 15 % of the nodes (10 % expected).
        for tenth in 0..10u64 {
            let n = waits.iter().filter(|w| (1000 + tenth * 100..1000 + (tenth + 1) * 100).contains(*w)).count();
            assert!((50..=150).contains(&n), "{n} of 1,000 nodes redial in the {tenth}th tenth of [1 s, 2 s]");
        }
    }

    #[test]
    fn a_connection_that_lasted_resets_the_delay_and_a_short_one_does_not() {
        let (mut r, peer, t0) = one();
        let _ = r.due0(t0);
        r.dial_failed(&peer, t0); // next at +2, delay 4
        let _ = r.due0(t0 + S(2));
        r.connected(&peer, t0 + S(2));
        assert!(r.due0(t0 + S(100)).is_empty(), "a connected peer is not dialed");
        // Turned away after a second: the delay keeps growing (2–4 s after it).
        r.disconnected(&peer, t0 + S(3));
        let wait = wait_ms(&mut r, t0 + S(3));
        assert!((2000..=4000).contains(&wait), "{wait} ms after the short connection");
        r.connected(&peer, t0 + S(3) + Duration::from_millis(wait));
        // Up for ten minutes, then the peer restarts: redialed 1–2 s later.
        r.disconnected(&peer, t0 + S(607));
        let wait = wait_ms(&mut r, t0 + S(607));
        assert!((1000..=2000).contains(&wait), "{wait} ms after a connection that lasted");
    }

    #[test]
    fn a_banned_peer_is_never_dialed_until_its_ban_is_lifted_and_then_at_once() {
        let (mut r, peer, t0) = one();
        let _ = r.due0(t0);
        r.connected(&peer, t0);
        r.banned(&peer);
        r.disconnected(&peer, t0 + S(1));
        r.dial_failed(&peer, t0 + S(1));
        assert!(r.due0(t0 + S(3600)).is_empty(), "banned peers are not due");
        r.unbanned(&peer, t0 + S(600));
        assert_eq!(r.due0(t0 + S(600)).len(), 1, "due the moment its ban is lifted");
        // Unbanning a peer that is not banned, or is no bootstrap peer, changes nothing.
        r.unbanned(&peer, t0 + S(600));
        r.unbanned(&PeerId::random(), t0 + S(600));
        assert!(r.due0(t0 + S(600)).is_empty());
    }

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn a_known_peer_is_dialed_again_only_while_the_node_has_lost_its_connections() {
        let (mut r, boot, t0) = one();
        let _ = r.due0(t0);
        r.connected(&boot, t0);
        let known = PeerId::random();
        r.learn(known, addr(4002), t0);
        r.connected(&known, t0);
        // Both go: the bootstrap peer is due either way, the known one only below the floor.
        r.disconnected(&boot, t0 + S(100));
        r.disconnected(&known, t0 + S(100));
        let with_peers = r.due(t0 + S(102), limits::KNOWN_REDIAL_BELOW);
        assert_eq!(with_peers.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![boot]);
        let alone = r.due(t0 + S(102), limits::KNOWN_REDIAL_BELOW - 1);
        assert_eq!(alone, vec![(known, addr(4002))], "dialed within 2 s after it went, at its address");
        // It does not answer: the same doubling delay as a bootstrap peer (2–4 s).
        r.dial_failed(&known, t0 + S(102));
        assert!(r.due0(t0 + S(103)).iter().all(|(p, _)| *p != known));
        assert!(r.due0(t0 + S(106)).iter().any(|(p, _)| *p == known));
    }

    #[test]
    fn a_peer_the_node_let_go_is_forgotten_and_a_bootstrap_peer_never_is() {
        let (mut r, boot, t0) = one();
        let known = PeerId::random();
        r.learn(known, addr(4002), t0);
        r.forget(&known);
        r.forget(&boot);
        r.disconnected(&known, t0);
        assert_eq!(r.known(), 0);
        assert_eq!(r.due0(t0).iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![boot]);
        // Learning a bootstrap peer changes nothing about it.
        r.learn(boot, addr(9), t0);
        assert_eq!(r.known(), 0);
    }

    #[test]
    fn known_peers_are_bounded_and_the_least_recently_reached_idle_one_makes_room() {
        let t0 = Instant::now();
        let mut r = Redial::new(&[], t0, 1);
        let peers: Vec<PeerId> = (0..limits::KNOWN_PEERS_MAX).map(|_| PeerId::random()).collect();
        for (i, p) in peers.iter().enumerate() {
            r.learn(*p, addr(5000 + i as u16), t0 + S(i as u64));
        }
        // All connected: a newcomer is not kept.
        let newcomer = PeerId::random();
        r.learn(newcomer, addr(6000), t0 + S(100));
        assert_eq!(r.known(), limits::KNOWN_PEERS_MAX);
        assert!(!r.peers.contains_key(&newcomer));
        // Two went idle: the one reached longest ago makes room.
        r.disconnected(&peers[3], t0 + S(101));
        r.disconnected(&peers[7], t0 + S(101));
        r.learn(newcomer, addr(6000), t0 + S(102));
        assert_eq!(r.known(), limits::KNOWN_PEERS_MAX);
        assert!(r.peers.contains_key(&newcomer) && !r.peers.contains_key(&peers[3]) && r.peers.contains_key(&peers[7]));
    }
}
