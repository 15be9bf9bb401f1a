//! The status message of `/entrepot/sync/4`: a sender's charter version and the digest of its
//! feed heads, with the heads themselves only when the receiver does not hold them already
//! (docs/PROTOCOL.md §8.2). An idle network so exchanges ~100 bytes per status, whatever the
//! number of feeds.

use sha2::{Digest, Sha256};

use super::{put_str8, FeedHead, Reader, WireError, STATUS_HEADS_MAX};
use crate::document::{DocumentId, OrgId, Seq};

/// Domain of the heads digest (docs/PROTOCOL.md §8.2), followed by a 0x00 byte.
pub const HEADS_DIGEST_DOMAIN: &[u8] = b"entrepot/status-heads/v1";

/// The SHA-256 digest naming one list of feed heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeadsDigest(pub [u8; 32]);

impl HeadsDigest {
    /// "I hold none of your heads": what a node announces of a peer before it received any.
    pub const NONE: HeadsDigest = HeadsDigest([0; 32]);

    /// The digest of `heads`, which must be in strictly ascending order of organization (as
    /// [`Status::compose`] puts them and the decoder requires).
    pub fn of(heads: &[FeedHead]) -> HeadsDigest {
        let mut list = Vec::with_capacity(2 + heads.len() * 64);
        put_heads(&mut list, heads);
        HeadsDigest::of_encoded(&list)
    }

    /// The digest of an encoded head list (its `u16` count and entries, as on the wire).
    fn of_encoded(list: &[u8]) -> HeadsDigest {
        let mut h = Sha256::new();
        h.update(HEADS_DIGEST_DOMAIN);
        h.update([0u8]);
        h.update(list);
        HeadsDigest(h.finalize().into())
    }
}

/// A status, request or response alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub network_id: [u8; 32],
    /// The charter version the sender has in force (0 off a charter network).
    pub charter_version: u32,
    /// The digest of the sender's heads ([`HeadsDigest::of`]).
    pub digest: HeadsDigest,
    /// The digest of the receiver's heads as the sender holds them from the receiver's last
    /// status ([`HeadsDigest::NONE`] when it holds none): when it is not the receiver's
    /// current digest, the receiver sends its heads in full.
    pub known: HeadsDigest,
    /// The sender's heads, sorted by organization; `None` when the receiver announced that it
    /// holds them (its last `known` was `digest`).
    pub heads: Option<Vec<FeedHead>>,
}

impl Status {
    /// The status a node sends a peer: its heads (sorted, at most [`STATUS_HEADS_MAX`], one per
    /// organization) in full unless `peer_holds`, the peer's last `known`, is their digest;
    /// `known` is the digest of the peer's heads this node holds.
    pub fn compose(
        network_id: [u8; 32],
        charter_version: u32,
        mut heads: Vec<FeedHead>,
        known: HeadsDigest,
        peer_holds: HeadsDigest,
    ) -> Status {
        heads.sort_by(|a, b| a.org.cmp(&b.org));
        heads.dedup_by(|a, b| a.org == b.org);
        heads.truncate(STATUS_HEADS_MAX);
        let digest = HeadsDigest::of(&heads);
        let heads = (peer_holds != digest).then_some(heads);
        Status { network_id, charter_version, digest, known, heads }
    }
}

const BODY_DIGEST_ONLY: u8 = 0;
const BODY_HEADS: u8 = 1;

fn put_heads(out: &mut Vec<u8>, heads: &[FeedHead]) {
    out.extend_from_slice(&(heads.len().min(STATUS_HEADS_MAX) as u16).to_be_bytes());
    for h in heads.iter().take(STATUS_HEADS_MAX) {
        put_str8(out, h.org.as_str());
        out.extend_from_slice(&h.seq.0.to_be_bytes());
        out.extend_from_slice(&h.id.0);
        out.extend_from_slice(&h.forked_at.map_or(0, |s| s.0).to_be_bytes());
    }
}

/// Appends a status after its tag.
pub(super) fn put_status(out: &mut Vec<u8>, s: &Status) {
    out.extend_from_slice(&s.network_id);
    out.extend_from_slice(&s.charter_version.to_be_bytes());
    out.extend_from_slice(&s.digest.0);
    out.extend_from_slice(&s.known.0);
    match &s.heads {
        None => out.push(BODY_DIGEST_ONLY),
        Some(heads) => {
            out.push(BODY_HEADS);
            put_heads(out, heads);
        }
    }
}

/// Reads a status after its tag: heads must be in strictly ascending order of organization
/// and hash to the announced digest.
pub(super) fn read_status(r: &mut Reader<'_>) -> Result<Status, WireError> {
    let network_id = r.arr32("network id")?;
    let charter_version = r.u32("charter version")?;
    let digest = HeadsDigest(r.arr32("heads digest")?);
    let known = HeadsDigest(r.arr32("known digest")?);
    let heads = match r.u8("status body")? {
        BODY_DIGEST_ONLY => None,
        BODY_HEADS => {
            let start = r.pos;
            let n = r.u16("head count")? as usize;
            if n > STATUS_HEADS_MAX {
                return Err(WireError::OverLimit("status heads"));
            }
            let mut heads: Vec<FeedHead> = Vec::with_capacity(n);
            for _ in 0..n {
                let org: OrgId = r.org()?;
                if heads.last().is_some_and(|prev| prev.org >= org) {
                    return Err(WireError::Invalid {
                        field: "status heads",
                        reason: format!("{org} is not after the previous organization"),
                    });
                }
                let seq = Seq(r.u64("head seq")?);
                let id = DocumentId(r.arr32("head id")?);
                let forked = r.u64("head fork")?;
                heads.push(FeedHead { org, seq, id, forked_at: (forked != 0).then_some(Seq(forked)) });
            }
            if HeadsDigest::of_encoded(&r.b[start..r.pos]) != digest {
                return Err(WireError::Invalid {
                    field: "heads digest",
                    reason: "not the digest of the heads sent".into(),
                });
            }
            Some(heads)
        }
        other => return Err(WireError::Invalid { field: "status body", reason: format!("unknown body kind {other}") }),
    };
    Ok(Status { network_id, charter_version, digest, known, heads })
}

#[cfg(test)]
mod tests {
    use super::super::{decode_request, decode_response, encode_request, encode_response, Request, Response};
    use super::*;

    fn head(org: &str, seq: u64) -> FeedHead {
        FeedHead { org: OrgId::new(org).unwrap(), seq: Seq(seq), id: DocumentId([seq as u8; 32]), forked_at: None }
    }

    #[test]
    fn the_digest_is_sha256_of_the_domain_a_zero_byte_and_the_encoded_head_list() {
        // docs/PROTOCOL.md §8.2, byte for byte: one head, WCO at 7, id 32 × 0x07, no fork.
        let heads = [head("WCO", 7)];
        let mut input = b"entrepot/status-heads/v1\x00".to_vec();
        input.extend_from_slice(&[0, 1, 3, b'W', b'C', b'O', 0, 0, 0, 0, 0, 0, 0, 7]);
        input.extend_from_slice(&[7; 32]);
        input.extend_from_slice(&[0; 8]);
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(HeadsDigest::of(&heads).0, expected);
        // The empty list is a digest like any other, and never the "none held" marker.
        let empty = Sha256::digest(b"entrepot/status-heads/v1\x00\x00\x00");
        assert_eq!(HeadsDigest::of(&[]).0, <[u8; 32]>::from(empty));
        assert_ne!(HeadsDigest::of(&[]), HeadsDigest::NONE);
    }

    #[test]
    fn compose_sorts_dedups_and_leaves_out_heads_the_peer_holds() {
        let heads = vec![head("WCO", 7), head("FR", 1), head("WCO", 9)];
        let s = Status::compose([1; 32], 2, heads, HeadsDigest::NONE, HeadsDigest::NONE);
        let sent = s.heads.clone().unwrap();
        assert_eq!(sent, [head("FR", 1), head("WCO", 7)]);
        assert_eq!(s.digest, HeadsDigest::of(&sent));
        let again = Status::compose([1; 32], 2, vec![head("WCO", 7), head("FR", 1)], HeadsDigest::NONE, s.digest);
        assert_eq!(again.heads, None, "the peer holds them");
        assert_eq!(again.digest, s.digest);
        // An idle status is the same 102 bytes whatever the number of feeds.
        let many: Vec<FeedHead> = (0..400).map(|i| head(&format!("ORG-{i}"), 1000)).collect();
        let digest = HeadsDigest::of(
            &Status::compose([1; 32], 2, many.clone(), HeadsDigest::NONE, HeadsDigest::NONE).heads.unwrap(),
        );
        let idle = Status::compose([1; 32], 2, many, HeadsDigest::NONE, digest);
        assert_eq!(encode_request(&Request::Status(idle.clone())).len(), 102);
        assert_eq!(encode_response(&Response::Status(idle)).len(), 102);
    }

    #[test]
    fn a_status_round_trips_and_its_layout_is_the_documented_one() {
        let full =
            Status::compose([9; 32], 3, vec![head("FR", 1), head("WCO", 7)], HeadsDigest([5; 32]), HeadsDigest::NONE);
        let idle = Status { heads: None, ..full.clone() };
        for s in [full.clone(), idle.clone()] {
            assert_eq!(
                decode_request(&encode_request(&Request::Status(s.clone()))).unwrap(),
                Request::Status(s.clone())
            );
            assert_eq!(decode_response(&encode_response(&Response::Status(s.clone()))).unwrap(), Response::Status(s));
        }
        let b = encode_request(&Request::Status(idle.clone()));
        assert_eq!(b[0], 1, "tag");
        assert_eq!(&b[1..33], &[9; 32], "network id");
        assert_eq!(&b[33..37], &3u32.to_be_bytes(), "charter version");
        assert_eq!(&b[37..69], &full.digest.0, "digest");
        assert_eq!(&b[69..101], &[5; 32], "known");
        assert_eq!(b[101..], [0], "digest only");
        let b = encode_request(&Request::Status(full));
        assert_eq!(b[101..104], [1, 0, 2], "heads follow, two of them");
    }

    #[test]
    fn unsorted_duplicated_or_misdigested_heads_and_unknown_bodies_are_malformed() {
        let full =
            Status::compose([9; 32], 3, vec![head("FR", 1), head("WCO", 7)], HeadsDigest::NONE, HeadsDigest::NONE);
        let good = encode_request(&Request::Status(full.clone()));
        for cut in 0..good.len() {
            assert!(decode_request(&good[..cut]).is_err(), "cut at {cut}");
        }
        let unsorted = Status { heads: Some(vec![head("WCO", 7), head("FR", 1)]), ..full.clone() };
        let twice = Status { heads: Some(vec![head("FR", 1), head("FR", 1)]), ..full.clone() };
        for s in [unsorted, twice] {
            let err = decode_request(&encode_request(&Request::Status(s))).unwrap_err();
            assert!(matches!(err, WireError::Invalid { field: "status heads", .. }), "{err:?}");
        }
        let wrong = Status { heads: Some(vec![head("FR", 2), head("WCO", 7)]), ..full.clone() };
        let err = decode_response(&encode_response(&Response::Status(wrong))).unwrap_err();
        assert!(matches!(err, WireError::Invalid { field: "heads digest", .. }), "{err:?}");
        let mut body = encode_request(&Request::Status(Status { heads: None, ..full }));
        *body.last_mut().unwrap() = 2;
        assert!(matches!(decode_request(&body), Err(WireError::Invalid { field: "status body", .. })));
        let mut over = good[..102].to_vec();
        over.extend_from_slice(&(STATUS_HEADS_MAX as u16 + 1).to_be_bytes());
        assert_eq!(decode_request(&over), Err(WireError::OverLimit("status heads")));
    }
}
