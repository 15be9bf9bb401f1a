//! The core's invariants, asserted by its tests after every event.

use super::*;

impl Core {
    /// Asserts every invariant of the core and of the sync engine inside it.
    pub fn check_invariants(&self) {
        self.sync.check_invariants();
        self.penalties.check_invariants();
        self.payloads.check_invariants();
        assert!(self.jobs_outstanding <= INGEST_JOBS_MAX, "ingest jobs over their bound");
        assert!(self.serving <= SERVING_MAX, "serving over its bound");
        let serving: usize = self.peers.values().map(|p| p.serving).sum();
        assert!(serving <= self.serving, "peers are served more than the node serves");
        for (key, p) in &self.peers {
            assert!(p.serving <= SERVING_PER_PEER_MAX, "peer {key} served over its bound");
            p.status.check_invariants();
            p.checkpoints.check_invariants();
            assert!(
                p.checkpoints.feeds().all(|o| self.trusted.contains(o)),
                "peer {key} has checkpoints of untrusted publishers watched"
            );
            assert!(p.heads.keys().all(|o| self.trusted.contains(o)), "peer {key} has heads of untrusted publishers");
            let mut per_kind: BTreeMap<&'static str, usize> = BTreeMap::new();
            for (_, pending) in self.pending.values().filter(|(k, _)| k == key) {
                *per_kind.entry(pending_kind(pending)).or_default() += 1;
            }
            for (kind, n) in per_kind {
                let max = if kind == "range" { self.config.sync.ranges_per_peer_max } else { 1 };
                assert!(n <= max, "peer {key} has {n} {kind} requests in flight");
            }
            if !self.config.permissioned {
                assert!(p.is_admitted(), "keyring networks admit every peer");
            }
        }
        assert!(
            self.checkpoints_held.keys().all(|o| self.trusted.contains(o)),
            "checkpoints held of untrusted publishers"
        );
        assert!(self.head_ids.keys().all(|o| self.trusted.contains(o)), "head entries of untrusted publishers");
        assert!(
            self.follow_grants
                .iter()
                .all(|(o, (_, left))| self.trusted.contains(o) && *left < checkpoints::FOLLOW_PEERS),
            "follow-up grants of untrusted publishers, or more left than peers to grant"
        );
        let orphans: Vec<_> = self.pending.iter().filter(|(_, (k, _))| !self.peers.contains_key(k)).collect();
        assert!(orphans.is_empty(), "requests outlived their peer: {orphans:?}");
        assert!(self.proof_pulls.keys().all(|o| self.trusted.contains(o)), "fork pulls for untrusted publishers");
        assert!(self.reset_marks.keys().all(|o| self.trusted.contains(o)), "reset marks for untrusted publishers");
        if let Some((peer, tag, _)) = &self.charter_pull {
            assert_eq!(self.pending.get(tag).map(|(k, p)| (k, p)), Some((peer, &Pending::Charters)));
        }
        if let Some(r) = &self.payloads.in_flight {
            assert_eq!(self.pending.get(&r.tag).map(|(k, p)| (k, p)), Some((&r.peer, &Pending::Payloads)));
        }
        let queued_ranges = self.jobs_queued.iter().all(|j| matches!(j.origin, Origin::Range { .. }));
        assert!(queued_ranges, "only sync ingests wait in the queue");
    }
}
