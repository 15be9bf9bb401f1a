//! Which connections a node keeps when it holds more than its target (docs/PROTOCOL.md §8.1).
//! Pure: time is a parameter, and the choice is deterministic for the same peers.
//!
//! At 1,000 nodes a node must not keep every peer Kademlia and inbound dials bring it: each
//! connection costs a status round every 10 s, gossip forwarding, memory and a file
//! descriptor. It dials toward [`CONNECTIONS_TARGET`] and accepts peers that dial it up to a
//! third more ([`keep_at_most`]); only above that does it let connections go, the excess and
//! no more. Without that margin a node at its target let go of every newcomer 15 s after it
//! came, the newcomer (below its own target) dialed again, and at 300 nodes a quiet network
//! opened 15 connections per node a minute, each a Noise handshake, identify, gossipsub
//! subscriptions, a hello, a full status and a checkpoint pull of every feed. It chooses
//! what to keep for diversity:
//! its bootstrap peers first (operator-chosen, and how it finds the network again), then one
//! peer of each organization not yet kept (many administrations rather than many nodes of one),
//! then the longest connected (a connection that lasted is likely to last). A connection
//! younger than [`PRUNE_GRACE`] is not judged yet (on a charter network its certificate, and so
//! its organization, may be on its way), but counts toward the target; whatever the young ones,
//! at least half the target of established peers is kept, so a flood of new connections
//! cannot push out every peer that lasted.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::PeerKey;
use crate::document::OrgId;

/// Connections (inbound and outbound together) a node dials toward: Kademlia dials only below
/// it. Well below the hard cap of [`crate::net::limits::CONNECTIONS_MAX`], which bounds what
/// arrives between two prunes.
pub const CONNECTIONS_TARGET: usize = 24;

/// The most connections a node with `target` keeps: a third more than its target (at least
/// one more), so that peers below their own target can still reach it.
pub const fn keep_at_most(target: usize) -> usize {
    target + if target >= 3 { target / 3 } else { 1 }
}
/// A connection younger than this is neither pruned nor judged (above the admission timeout,
/// so a charter network's peer shows its organization first).
pub const PRUNE_GRACE: Duration = Duration::from_secs(15);
/// How often the node looks for connections over its target.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(5);

const _: () = assert!(
    CONNECTIONS_TARGET >= crate::config::P2P_CONNECTIONS_MIN
        && CONNECTIONS_TARGET <= crate::config::P2P_CONNECTIONS_MAX
);
const _: () = assert!(PRUNE_GRACE.as_millis() > super::peers::ADMISSION_TIMEOUT.as_millis());
const _: () = assert!(keep_at_most(crate::config::P2P_CONNECTIONS_MAX) < crate::net::limits::CONNECTIONS_MAX as usize);

/// A connected peer as the choice sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub key: PeerKey,
    pub name: &'a str,
    /// Its certified organization (charter networks, once admitted).
    pub org: Option<&'a OrgId>,
    pub bootstrap: bool,
    pub since: Instant,
}

/// The peers to disconnect so that at most [`keep_at_most`]`(target)` remain (see the
/// module's rule), in a deterministic order.
pub fn prune(candidates: &[Candidate<'_>], target: usize, now: Instant) -> Vec<PeerKey> {
    let most = keep_at_most(target);
    if candidates.len() <= most {
        return Vec::new();
    }
    let young = candidates.iter().filter(|c| now.saturating_duration_since(c.since) < PRUNE_GRACE).count();
    let mut mature: Vec<&Candidate<'_>> =
        candidates.iter().filter(|c| now.saturating_duration_since(c.since) >= PRUNE_GRACE).collect();
    let keep = most.saturating_sub(young).max(target / 2);
    if mature.len() <= keep {
        return Vec::new();
    }
    // Longest connected first; ties by name, so the choice does not depend on map order.
    mature.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.name.cmp(b.name)));
    let mut kept: Vec<PeerKey> = Vec::with_capacity(keep);
    let mut orgs: BTreeSet<&OrgId> = BTreeSet::new();
    for c in mature.iter().filter(|c| c.bootstrap) {
        take(c, keep, &mut kept, &mut orgs);
    }
    for c in &mature {
        if c.org.is_some_and(|o| !orgs.contains(o)) {
            take(c, keep, &mut kept, &mut orgs);
        }
    }
    for c in &mature {
        take(c, keep, &mut kept, &mut orgs);
    }
    mature.iter().map(|c| c.key).filter(|k| !kept.contains(k)).collect()
}

/// Keeps `c` if there is room and it is not kept yet.
fn take<'a>(c: &Candidate<'a>, keep: usize, kept: &mut Vec<PeerKey>, orgs: &mut BTreeSet<&'a OrgId>) {
    if kept.len() < keep && !kept.contains(&c.key) {
        kept.push(c.key);
        orgs.extend(c.org);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(s: &str) -> OrgId {
        OrgId::new(s).unwrap()
    }

    #[test]
    fn bootstrap_peers_then_one_per_organization_then_the_longest_connected_are_kept() {
        let t0 = Instant::now();
        let orgs: Vec<OrgId> = ["FR", "FR", "FR", "DE", "US", "FR"].iter().map(|o| org(o)).collect();
        let names: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
        let cands: Vec<Candidate<'_>> = (0..6)
            .map(|i| Candidate {
                key: i as PeerKey,
                name: &names[i],
                org: Some(&orgs[i]),
                bootstrap: i == 5,
                since: t0 + Duration::from_secs(i as u64),
            })
            .collect();
        let now = t0 + Duration::from_secs(100);
        // A target of 3 keeps 4: the bootstrap peer (FR), DE and US for diversity, then the
        // oldest (p0).
        assert_eq!(keep_at_most(3), 4);
        let mut pruned = prune(&cands, 3, now);
        pruned.sort();
        assert_eq!(pruned, [1, 2]);
        assert!(prune(&cands, 5, now).is_empty());
        // The same peers in another order: the same choice.
        let mut reversed = cands.clone();
        reversed.reverse();
        let mut again = prune(&reversed, 3, now);
        again.sort();
        assert_eq!(again, [1, 2]);
    }

    #[test]
    fn young_connections_count_but_cannot_push_out_every_peer_that_lasted() {
        let t0 = Instant::now();
        let names: Vec<String> = (0..40).map(|i| format!("p{i:02}")).collect();
        let now = t0 + Duration::from_secs(100);
        // 10 established peers, 30 that just arrived.
        let cands: Vec<Candidate<'_>> = (0..40)
            .map(|i| Candidate {
                key: i as PeerKey,
                name: &names[i],
                org: None,
                bootstrap: false,
                since: if i < 10 { t0 } else { now - Duration::from_secs(1) },
            })
            .collect();
        let pruned = prune(&cands, 8, now);
        assert_eq!(pruned.len(), 6, "4 (half the target) of the established stay: {pruned:?}");
        assert!(keep_at_most(8) < 40 - 6, "the young alone are over what is kept");
        assert!(pruned.iter().all(|k| *k < 10), "the young are not judged yet");
        // Once they are established too, the node comes down to its target.
        let later = now + PRUNE_GRACE;
        let survivors: Vec<Candidate<'_>> = cands.iter().filter(|c| !pruned.contains(&c.key)).cloned().collect();
        let second = prune(&survivors, 8, later);
        assert_eq!(survivors.len() - second.len(), keep_at_most(8));
    }

    #[test]
    fn a_node_at_its_target_keeps_peers_that_dial_it_up_to_a_third_more_then_lets_only_the_excess_go() {
        let t0 = Instant::now();
        let names: Vec<String> = (0..40).map(|i| format!("p{i:02}")).collect();
        let cands = |n: usize| -> Vec<Candidate<'_>> {
            (0..n)
                .map(|i| Candidate {
                    key: i as PeerKey,
                    name: &names[i],
                    org: None,
                    bootstrap: false,
                    since: t0 + Duration::from_secs(i as u64),
                })
                .collect()
        };
        let now = t0 + Duration::from_secs(600);
        assert_eq!(keep_at_most(CONNECTIONS_TARGET), 32);
        // 24 it dialed, then 8 more dialed it: none is let go (a newcomer below its own
        // target can stay, and does not come back 15 s later to be let go again).
        for n in CONNECTIONS_TARGET..=32 {
            assert!(prune(&cands(n), CONNECTIONS_TARGET, now).is_empty(), "{n} connections");
        }
        // Over that, the excess goes, the most recent first, and no more.
        let pruned = prune(&cands(35), CONNECTIONS_TARGET, now);
        assert_eq!(pruned, [32, 33, 34]);
        for small in crate::config::P2P_CONNECTIONS_MIN..=crate::config::P2P_CONNECTIONS_MAX {
            assert!(keep_at_most(small) > small, "a margin for every target ({small})");
        }
    }
}
