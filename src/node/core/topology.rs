//! Which connections a node keeps when it holds more than its target (docs/PROTOCOL.md §8.1).
//! Pure: time is a parameter, and the choice is deterministic for the same peers.
//!
//! At 1,000 nodes a node must not keep every peer Kademlia and inbound dials bring it: each
//! connection costs a status round every 10 s, gossip forwarding, memory and a file
//! descriptor. It keeps [`CONNECTIONS_TARGET`] and lets the rest go, choosing for diversity:
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

/// Connections (inbound and outbound together) a node keeps; more are pruned. Well below the
/// hard cap of [`crate::net::limits::CONNECTIONS_MAX`], which bounds what arrives between two
/// prunes.
pub const CONNECTIONS_TARGET: usize = 24;
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

/// The peers to disconnect so that at most `target` remain (see the module's rule), in a
/// deterministic order.
pub fn prune(candidates: &[Candidate<'_>], target: usize, now: Instant) -> Vec<PeerKey> {
    if candidates.len() <= target {
        return Vec::new();
    }
    let young = candidates.iter().filter(|c| now.saturating_duration_since(c.since) < PRUNE_GRACE).count();
    let mut mature: Vec<&Candidate<'_>> =
        candidates.iter().filter(|c| now.saturating_duration_since(c.since) >= PRUNE_GRACE).collect();
    let keep = target.saturating_sub(young).max(target / 2);
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
        // Keep 4: the bootstrap peer (FR), DE and US for diversity, then the oldest (p0).
        let mut pruned = prune(&cands, 4, now);
        pruned.sort();
        assert_eq!(pruned, [1, 2]);
        assert!(prune(&cands, 6, now).is_empty());
        // The same peers in another order: the same choice.
        let mut reversed = cands.clone();
        reversed.reverse();
        let mut again = prune(&reversed, 4, now);
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
        assert!(pruned.iter().all(|k| *k < 10), "the young are not judged yet");
        // Once they are established too, the node comes down to its target.
        let later = now + PRUNE_GRACE;
        let survivors: Vec<Candidate<'_>> = cands.iter().filter(|c| !pruned.contains(&c.key)).cloned().collect();
        let second = prune(&survivors, 8, later);
        assert_eq!(survivors.len() - second.len(), 8);
    }
}
