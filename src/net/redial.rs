//! When to dial each bootstrap peer again (docs/PROTOCOL.md §8.1). Pure: time is a parameter.
//!
//! A bootstrap peer that is not connected is dialed when it is due. A failed dial, or a
//! connection that closes before [`limits::REDIAL_STABLE_CONNECTION`], doubles the delay
//! before the next attempt, from [`limits::REDIAL_BACKOFF_MIN`] up to
//! [`limits::REDIAL_BACKOFF_MAX`]; a connection that lasted resets it. A banned peer is never
//! due; lifting its ban makes it due at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

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
}

/// Every bootstrap peer's redial state.
#[derive(Debug, Default)]
pub struct Redial {
    peers: HashMap<PeerId, Entry>,
}

fn doubled(d: Duration) -> Duration {
    (d * 2).min(limits::REDIAL_BACKOFF_MAX)
}

impl Redial {
    /// Bootstrap peers, all due at `now`.
    pub fn new(bootstrap: &[(PeerId, Multiaddr)], now: Instant) -> Redial {
        let peers = bootstrap
            .iter()
            .map(|(peer, address)| {
                (*peer, Entry { address: address.clone(), state: State::Due(now), delay: limits::REDIAL_BACKOFF_MIN })
            })
            .collect();
        Redial { peers }
    }

    /// The peers due at `now`, now marked as being dialed.
    #[must_use]
    pub fn due(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        let mut out = Vec::new();
        for (peer, e) in &mut self.peers {
            if matches!(e.state, State::Due(at) if at <= now) {
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
                e.state = State::Due(now + e.delay);
                e.delay = doubled(e.delay);
            }
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
                e.state = State::Due(now + e.delay);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> (Redial, PeerId, Instant) {
        let peer = PeerId::random();
        let now = Instant::now();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        (Redial::new(&[(peer, addr)], now), peer, now)
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_peer_that_never_answers_is_dialed_with_a_doubling_delay_up_to_a_minute() {
        let (mut r, peer, t0) = one();
        let mut t = t0;
        assert_eq!(r.due(t).len(), 1, "dialed at once");
        let mut waits = Vec::new();
        for _ in 0..8 {
            r.dial_failed(&peer, t);
            r.dial_failed(&peer, t); // a second report of the same dial changes nothing
            let wait = (1..=120).find(|w| !r.due(t + S(*w)).is_empty()).expect("dialed again");
            waits.push(wait);
            t += S(wait);
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_connection_that_lasted_resets_the_delay_and_a_short_one_does_not() {
        let (mut r, peer, t0) = one();
        let _ = r.due(t0);
        r.dial_failed(&peer, t0); // next at +2, delay 4
        let _ = r.due(t0 + S(2));
        r.connected(&peer, t0 + S(2));
        assert!(r.due(t0 + S(100)).is_empty(), "a connected peer is not dialed");
        // Turned away after a second: the delay keeps growing.
        r.disconnected(&peer, t0 + S(3));
        assert!(r.due(t0 + S(6)).is_empty());
        assert_eq!(r.due(t0 + S(7)).len(), 1, "4 s after the short connection");
        r.connected(&peer, t0 + S(7));
        // Up for ten minutes, then the peer restarts: redialed 2 s later.
        r.disconnected(&peer, t0 + S(607));
        assert!(r.due(t0 + S(608)).is_empty());
        assert_eq!(r.due(t0 + S(609)).len(), 1);
    }

    #[test]
    fn a_banned_peer_is_never_dialed_until_its_ban_is_lifted_and_then_at_once() {
        let (mut r, peer, t0) = one();
        let _ = r.due(t0);
        r.connected(&peer, t0);
        r.banned(&peer);
        r.disconnected(&peer, t0 + S(1));
        r.dial_failed(&peer, t0 + S(1));
        assert!(r.due(t0 + S(3600)).is_empty(), "banned peers are not due");
        r.unbanned(&peer, t0 + S(600));
        assert_eq!(r.due(t0 + S(600)).len(), 1, "due the moment its ban is lifted");
        // Unbanning a peer that is not banned, or is no bootstrap peer, changes nothing.
        r.unbanned(&peer, t0 + S(600));
        r.unbanned(&PeerId::random(), t0 + S(600));
        assert!(r.due(t0 + S(600)).is_empty());
    }
}
