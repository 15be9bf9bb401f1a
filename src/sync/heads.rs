//! What a node holds of one peer's heads between statuses, so that a status names unchanged
//! heads by their digest instead of carrying them (docs/PROTOCOL.md §8.2).
//!
//! Each side of a connection keeps one [`PeerHeads`] per peer: the peer's heads as last
//! received in full (with their digest), and the digest the peer says it holds of this node's
//! heads (the `known` of its last status). A status to the peer carries this node's heads only
//! when the peer does not hold them; a status from the peer that names, by digest, heads this
//! node does not hold is answered by a `known` that makes the peer send them in full next.
//! The state lives as long as the connection: a new connection starts from nothing held.

use std::sync::Arc;

use super::wire::{FeedHead, HeadsDigest, Status};

/// One peer's heads as this node holds them, and what the peer holds of this node's.
#[derive(Debug, Clone, Default)]
pub struct PeerHeads {
    /// The peer's heads as last received in full, and their digest (shared with what
    /// [`PeerHeads::receive`] returns: a quiet peer's every status names the same heads, and
    /// copying hundreds of them each time was the largest part of taking a status).
    held: Option<(HeadsDigest, Arc<Vec<FeedHead>>)>,
    /// The digest of this node's heads the peer last said it holds.
    peer_holds: Option<HeadsDigest>,
}

/// What a status from the peer told of its heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heads {
    /// Sent in full, new to this node.
    Changed(Arc<Vec<FeedHead>>),
    /// Named by the digest of the heads this node holds: unchanged.
    Unchanged(Arc<Vec<FeedHead>>),
    /// Named by a digest of heads this node does not hold (the peer's view of this node is out
    /// of date; it sends them in full once it sees this node's `known`).
    Unknown,
}

impl Heads {
    /// The peer's heads, if this node holds them now.
    pub fn into_heads(self) -> Option<Arc<Vec<FeedHead>>> {
        match self {
            Heads::Changed(h) | Heads::Unchanged(h) => Some(h),
            Heads::Unknown => None,
        }
    }
}

impl PeerHeads {
    /// The digest of the peer's heads this node holds: the `known` of its statuses to the peer.
    pub fn known(&self) -> HeadsDigest {
        self.held.as_ref().map_or(HeadsDigest::NONE, |(d, _)| *d)
    }

    /// The digest of this node's heads the peer holds, from its last status.
    pub fn peer_holds(&self) -> HeadsDigest {
        self.peer_holds.unwrap_or(HeadsDigest::NONE)
    }

    /// Takes a status from the peer (a request or an answer; the decoder has checked that
    /// heads sent in full hash to `status.digest`).
    pub fn receive(&mut self, status: Status) -> Heads {
        self.peer_holds = Some(status.known);
        match status.heads {
            Some(heads) => {
                let heads = Arc::new(heads);
                self.held = Some((status.digest, Arc::clone(&heads)));
                Heads::Changed(heads)
            }
            None => match &self.held {
                Some((digest, heads)) if *digest == status.digest => Heads::Unchanged(Arc::clone(heads)),
                _ => Heads::Unknown,
            },
        }
    }

    /// Panics unless the heads held are the ones their digest names.
    pub fn check_invariants(&self) {
        if let Some((digest, heads)) = &self.held {
            assert_eq!(*digest, HeadsDigest::of(heads), "held heads and their digest differ");
            assert!(heads.windows(2).all(|w| w[0].org < w[1].org), "held heads out of order");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{DocumentId, OrgId, Seq};
    use crate::sync::wire::{decode_request, encode_request, Request, STATUS_HEADS_MAX};

    fn heads(n: usize, seq: u64) -> Vec<FeedHead> {
        (0..n)
            .map(|i| FeedHead {
                org: OrgId::new(&format!("ORG-{i:04}")).unwrap(),
                seq: Seq(seq),
                id: DocumentId([seq as u8; 32]),
                forked_at: None,
            })
            .collect()
    }

    /// One side of a connection: its own heads and what it holds of the other's.
    struct Side {
        heads: Vec<FeedHead>,
        peer: PeerHeads,
    }

    impl Side {
        /// The status it sends now, through the wire encoding; its size in bytes.
        fn send(&self) -> (Status, usize) {
            let s = Status::compose([1; 32], 1, self.heads.clone(), self.peer.known(), self.peer.peer_holds());
            let bytes = encode_request(&Request::Status(s));
            let Request::Status(s) = decode_request(&bytes).unwrap() else { panic!() };
            (s, bytes.len())
        }
    }

    /// Sends from `a` to `b`; what `b` learned and how many bytes it took.
    fn exchange(a: &Side, b: &mut Side) -> (Heads, usize) {
        let (s, n) = a.send();
        let got = b.peer.receive(s);
        b.peer.check_invariants();
        (got, n)
    }

    #[test]
    fn unchanged_heads_travel_as_a_digest_and_changed_ones_in_full_once() {
        let mut a = Side { heads: heads(400, 5), peer: PeerHeads::default() };
        let mut b = Side { heads: heads(3, 1), peer: PeerHeads::default() };
        // First contact: full heads both ways.
        let (got, full) = exchange(&a, &mut b);
        assert_eq!(got, Heads::Changed(heads(400, 5).into()));
        let (got, _) = exchange(&b, &mut a);
        assert_eq!(got, Heads::Changed(heads(3, 1).into()));
        // Idle rounds: 102 bytes each, and the receiver still knows every head.
        for _ in 0..3 {
            let (got, n) = exchange(&a, &mut b);
            assert_eq!((got, n), (Heads::Unchanged(heads(400, 5).into()), 102));
            let (got, n) = exchange(&b, &mut a);
            assert_eq!((got, n), (Heads::Unchanged(heads(3, 1).into()), 102));
        }
        assert!(full > 400 * 50, "{full} bytes for 400 heads");
        // A head moves: the next status carries all of them, then idle again.
        a.heads[17].seq = Seq(6);
        let (got, n) = exchange(&a, &mut b);
        assert_eq!((got.into_heads().unwrap()[17].seq, n), (Seq(6), full));
        let (_, n) = exchange(&b, &mut a); // b's `known` now names a's new heads
        assert_eq!(n, 102);
        let (got, n) = exchange(&a, &mut b);
        assert_eq!((matches!(got, Heads::Unchanged(_)), n), (true, 102));
    }

    #[test]
    fn a_digest_of_heads_not_held_is_unknown_and_the_next_status_carries_them() {
        let a = Side { heads: heads(10, 2), peer: PeerHeads::default() };
        let mut b = Side { heads: heads(1, 1), peer: PeerHeads::default() };
        // A peer that claims b holds its heads when b does not (a lost answer, or a lie).
        let (mut s, _) = a.send();
        s.heads = None;
        assert_eq!(b.peer.receive(s), Heads::Unknown);
        assert_eq!(b.peer.known(), HeadsDigest::NONE, "b still holds nothing of a");
        // b's next status says so, and a answers in full.
        let mut a = a;
        exchange(&b, &mut a);
        let (got, _) = exchange(&a, &mut b);
        assert_eq!(got, Heads::Changed(heads(10, 2).into()));
    }

    #[test]
    fn the_largest_status_fits_its_bound_and_decodes() {
        let a = Side { heads: heads(STATUS_HEADS_MAX + 5, 9), peer: PeerHeads::default() };
        let (s, n) = a.send();
        assert_eq!(s.heads.unwrap().len(), STATUS_HEADS_MAX);
        // Tag, network, charter version, two digests, body kind, count, then at most 81 bytes a head.
        assert!(n <= 1 + 32 + 4 + 32 + 32 + 1 + 2 + STATUS_HEADS_MAX * 81, "{n} bytes");
    }

    /// Bytes one node sends one peer in a minute of idle status rounds (both sides ask every
    /// 10 s; framing included), under version 3 (every head in every status) and version 4.
    fn idle_bytes_per_minute(feeds: usize) -> (usize, usize) {
        // Three-character organization ids, like most members' (ISO 3166 codes, WCO, WTO).
        let heads: Vec<FeedHead> = (0..feeds)
            .map(|i| FeedHead {
                org: OrgId::new(&format!("{}{:02}", (b'A' + (i / 100) as u8) as char, i % 100)).unwrap(),
                seq: Seq(5000),
                id: DocumentId([7; 32]),
                forked_at: None,
            })
            .collect();
        let v3_status = 4 + 1 + 32 + 4 + 2 + heads.iter().map(|h| 1 + h.org.as_str().len() + 48).sum::<usize>();
        let mut a = Side { heads: heads.clone(), peer: PeerHeads::default() };
        let mut b = Side { heads, peer: PeerHeads::default() };
        // First contact, not idle.
        exchange(&a, &mut b);
        exchange(&b, &mut a);
        let mut sent_by_a = 0;
        for _round in 0..6 {
            // a's request and b's answer, then b's request and a's answer.
            sent_by_a += 4 + exchange(&a, &mut b).1;
            exchange(&b, &mut a);
            exchange(&b, &mut a);
            sent_by_a += 4 + exchange(&a, &mut b).1;
        }
        (6 * 2 * v3_status, sent_by_a)
    }

    #[test]
    fn idle_status_traffic_does_not_grow_with_the_number_of_feeds() {
        let mut v4_figures = Vec::new();
        for feeds in [4, 400, 2500] {
            let (v3, v4) = idle_bytes_per_minute(feeds);
            println!(
                "idle status bytes sent per peer per minute, {feeds} feeds: version 3 {v3}, version 4 {v4}; \
                 per node with 24 peers: {:.1} KB/min vs {:.1} KB/min ({:.1} vs {:.2} B/s)",
                (24 * v3) as f64 / 1e3,
                (24 * v4) as f64 / 1e3,
                (24 * v3) as f64 / 60.0,
                (24 * v4) as f64 / 60.0,
            );
            v4_figures.push(v4);
        }
        assert!(v4_figures.iter().all(|v| *v == 12 * 106), "{v4_figures:?}: 12 statuses of 106 bytes a minute");
    }
}
