//! What the end of a scenario checks on every running node, and what it counts across them
//! (penalties, peers, bytes by protocol).

use std::collections::BTreeMap;

use super::{holds_heads, Harness};
use crate::authority::Keyring;

impl Harness {
    /// The end-of-scenario checks on every running node: the expected heads and document
    /// count, no fork recorded, no peer banned (every peer here is honest), and every stored
    /// envelope of `verify_nodes` sampled nodes verified again through the ingest checks.
    pub fn check(&self, verify_nodes: usize) -> Vec<String> {
        let mut faults = Vec::new();
        let total = self.expected_documents();
        let file = match Keyring::load(&self.config.root.join("keyring.json")) {
            Ok(k) => k,
            Err(e) => return vec![format!("the harness keyring does not load: {e}")],
        };
        let mut verified = 0;
        for n in &self.nodes {
            let Some(s) = n.service() else { continue };
            let version = s.keyring().charter().map_or(0, |c| c.latest().charter.version);
            if version != self.expected_charter {
                faults.push(format!("node {} has charter version {version}, not {}", n.index, self.expected_charter));
            }
            // A charter node's documents are checked against the chain it holds (already
            // checked to be the expected version), a keyring node's against the file.
            let own = s.keyring();
            let keyring = if self.charter.is_some() { own.as_ref() } else { &file };
            if !holds_heads(s, &self.expected) {
                faults.push(format!("node {} does not hold the expected heads", n.index));
            }
            match s.store.document_count() {
                Ok(count) if count == total => {}
                Ok(count) => faults.push(format!("node {} holds {count} documents, not {total}", n.index)),
                Err(e) => faults.push(format!("node {}: {e}", n.index)),
            }
            match s.store.forks() {
                Ok(forks) if forks.is_empty() => {}
                Ok(forks) => faults.push(format!("node {} recorded {} forks", n.index, forks.len())),
                Err(e) => faults.push(format!("node {}: {e}", n.index)),
            }
            let view = s.peers.read().unwrap_or_else(|p| p.into_inner());
            if view.bans_total > 0 {
                faults.push(format!("node {} banned {} honest peers ({:?})", n.index, view.bans_total, view.penalties));
            }
            drop(view);
            if verified < verify_nodes {
                verified += 1;
                for bytes in s.store.all_documents() {
                    let checked = bytes.map_err(|e| e.to_string()).and_then(|b| {
                        crate::ingest::check(b, &s.network_id, keyring, crate::clock::now_ms())
                            .map_err(|e| e.to_string())
                    });
                    if let Err(e) = checked {
                        faults.push(format!("node {} stores an invalid document: {e}", n.index));
                        break;
                    }
                }
            }
        }
        faults
    }

    /// Penalties given on all running nodes, by offense (honest peers may earn some, e.g. for
    /// a request that timed out across a partition; only bans are faults).
    pub fn penalties(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for s in self.nodes.iter().filter_map(|n| n.service()) {
            for (k, v) in &s.peers.read().unwrap_or_else(|p| p.into_inner()).penalties {
                *all.entry(k.clone()).or_insert(0) += v;
            }
        }
        all
    }

    /// Connected peers per running node: (min, mean, max).
    pub fn peer_counts(&self) -> (usize, f64, usize) {
        let counts: Vec<usize> = self
            .nodes
            .iter()
            .filter_map(|n| n.service())
            .map(|s| s.peers.read().unwrap_or_else(|p| p.into_inner()).peers.len())
            .collect();
        let mean = counts.iter().sum::<usize>() as f64 / counts.len().max(1) as f64;
        (counts.iter().copied().min().unwrap_or(0), mean, counts.iter().copied().max().unwrap_or(0))
    }

    /// Sync protocol and gossip payload bytes every running node has written (the sync
    /// codec's count with its framing; gossip message data only), to tell them from the rest
    /// of what crosses the links (Noise, Yamux, gossipsub control, Kademlia, identify, ping).
    pub fn protocol_bytes_sent(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        self.nodes.iter().filter_map(|n| n.service()).fold((0, 0), |(sync, gossip), s| {
            (
                sync + s.counters.sync_bytes_out.load(Ordering::Relaxed),
                gossip + s.counters.gossip_bytes_out.load(Ordering::Relaxed),
            )
        })
    }

    /// Sync bytes every running node has written, by message kind: `(kind, as requests, as
    /// responses)` (the codec's count, framing included).
    pub fn sync_bytes_by_message(&self) -> Vec<(&'static str, u64, u64)> {
        let mut total: Vec<(&'static str, u64, u64)> =
            crate::net::codec::SyncTraffic::KINDS.iter().map(|k| (*k, 0, 0)).collect();
        for s in self.nodes.iter().filter_map(|n| n.service()) {
            for (t, (_, q, r)) in total.iter_mut().zip(s.counters.sync_bytes_out_by_message.written()) {
                t.1 += q;
                t.2 += r;
            }
        }
        total
    }
}
