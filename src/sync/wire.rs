//! The sync protocol `/entrepot/sync/4`: messages and their byte encoding.
//!
//! Every message travels as a `u32` big-endian length followed by that many bytes; the length
//! is checked against [`MESSAGE_MAX_BYTES`] before anything is read. All counts are bounded
//! here, so a decoder never allocates more than a message's own size. See docs/PROTOCOL.md §8 and §9.

mod checkpoints;
mod refusal;
mod status;

pub use checkpoints::{
    CheckpointItem, CHECKPOINT_CERTS_MAX, CHECKPOINT_FEEDS_MAX, CHECKPOINT_FORKS_MAX, CHECKPOINT_FORK_MAX_BYTES,
    CHECKPOINT_NOTE_MAX_BYTES,
};
pub use refusal::{RefusalCode, UnassignedCode};
pub use status::{HeadsDigest, Status, HEADS_DIGEST_DOMAIN};

use crate::document::{DocumentId, OrgId, Seq, DOCUMENT_SIZE_MAX_BYTES};

/// The protocol name negotiated by libp2p; its last component is the version.
pub const SYNC_PROTOCOL: &str = "/entrepot/sync/4";
/// Most documents a range response carries.
pub const RANGE_COUNT_MAX: u32 = 1024;
/// Most envelope bytes a range response carries (one document may exceed it alone).
pub const RANGE_BYTES_MAX: u32 = 4 * 1024 * 1024;
/// Most feed heads a status message carries.
pub const STATUS_HEADS_MAX: usize = 4096;
/// Largest message on the wire: a full range response plus framing.
pub const MESSAGE_MAX_BYTES: usize = RANGE_BYTES_MAX as usize + DOCUMENT_SIZE_MAX_BYTES + 64 * 1024;
/// Longest refusal reason.
pub const REASON_MAX_BYTES: usize = 1024;
/// Largest node certificate in a hello (a real one is ~180 bytes).
pub const CERT_MAX_BYTES: usize = 1024;
/// Most charter versions one response carries (and at most [`RANGE_BYTES_MAX`] of them, unless one alone is larger).
pub const CHARTERS_MAX: usize = 8;
/// Largest charter file on the wire (body limit plus 64 signatures).
pub const CHARTER_FILE_MAX_BYTES: usize = crate::charter::CHARTER_BODY_MAX_BYTES + 8 * 1024;
/// Most fork proofs one response carries (two pairs of 1 MiB documents fit a message).
pub const FORK_PROOFS_MAX: usize = 2;
/// Most payloads asked for (and returned) at once.
pub const PAYLOADS_MAX: usize = 64;
/// Largest sealed payload (docs/PROTOCOL.md §5).
pub const PAYLOAD_MAX_BYTES: usize = 256 * 1024;

/// One feed's head as announced in a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedHead {
    pub org: OrgId,
    pub seq: Seq,
    pub id: DocumentId,
    /// Position of an unresolved fork the sender holds proof of (its peers then ask for it).
    pub forked_at: Option<Seq>,
}

/// A request from one node to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// "This is my node certificate; what is yours?" On a charter network the first message
    /// each way; nothing else is answered before it is accepted (docs/PROTOCOL.md §11).
    Hello { cert: Vec<u8> },
    /// "Here are my charter version and heads (or their digest); what are yours?"
    Status(Status),
    /// "Send `org`'s entries from `from` on, at most `count_max` of them and about `bytes_max`."
    Range { org: OrgId, from: Seq, count_max: u32, bytes_max: u32 },
    /// "Send the charter versions from `from_version` on."
    Charters { from_version: u32 },
    /// "Send the proofs of the forks you hold in `org`'s feed."
    ForkProofs { org: OrgId },
    /// "Send the sealed payloads of these notices, those I may read."
    Payloads { ids: Vec<DocumentId> },
    /// "Send your latest cosigned checkpoints of these feeds."
    Checkpoints { orgs: Vec<OrgId> },
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Hello {
        cert: Vec<u8>,
    },
    Status(Status),
    /// Consecutive envelopes of the requested feed from the requested position; fewer than
    /// asked (possibly none) when the responder holds fewer or the byte bound stopped it.
    Range {
        docs: Vec<Vec<u8>>,
    },
    /// The request was not served: `code` says why for the requester's logic (see
    /// [`RefusalCode::is_later`]), `reason` for its operator.
    Refused {
        code: RefusalCode,
        reason: String,
    },
    /// Charter files (docs/PROTOCOL.md §10.1), consecutive versions in order.
    Charters {
        files: Vec<Vec<u8>>,
    },
    /// Pairs of envelopes, each two validly signed entries at one feed position.
    ForkProofs {
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// The payloads the asker may read and the responder holds; the others are left out.
    Payloads {
        items: Vec<(DocumentId, Vec<u8>)>,
    },
    /// The latest cosigned checkpoint held of each feed asked for (feeds without one left
    /// out), and checkpoint-fork evidence of those feeds.
    Checkpoints {
        items: Vec<CheckpointItem>,
        forks: Vec<Vec<u8>>,
    },
}

/// Why bytes are not a valid sync message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("sync message truncated in {0}")]
    Truncated(&'static str),
    #[error("sync message has {0} trailing bytes")]
    Trailing(usize),
    #[error("unknown sync message tag {0}")]
    UnknownTag(u8),
    #[error("sync message field {field} is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("sync message over a limit: {0}")]
    OverLimit(&'static str),
}

impl WireError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Truncated(_) => "wire_truncated",
            WireError::Trailing(_) => "wire_trailing",
            WireError::UnknownTag(_) => "wire_unknown_tag",
            WireError::Invalid { .. } => "wire_invalid",
            WireError::OverLimit(_) => "wire_over_limit",
        }
    }
}

const TAG_STATUS: u8 = 1;
const TAG_RANGE: u8 = 2;
const TAG_REFUSED: u8 = 3;
const TAG_HELLO: u8 = 4;
const TAG_CHARTERS: u8 = 5;
const TAG_FORK_PROOFS: u8 = 6;
const TAG_PAYLOADS: u8 = 7;
const TAG_CHECKPOINTS: u8 = 8;

fn put_str8(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn put_bytes32(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Encodes a request (without the length prefix).
pub fn encode_request(r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    match r {
        Request::Hello { cert } => {
            out.push(TAG_HELLO);
            put_bytes32(&mut out, cert);
        }
        Request::Status(status) => {
            out.push(TAG_STATUS);
            status::put_status(&mut out, status);
        }
        Request::Range { org, from, count_max, bytes_max } => {
            out.push(TAG_RANGE);
            put_str8(&mut out, org.as_str());
            out.extend_from_slice(&from.0.to_be_bytes());
            out.extend_from_slice(&count_max.to_be_bytes());
            out.extend_from_slice(&bytes_max.to_be_bytes());
        }
        Request::Charters { from_version } => {
            out.push(TAG_CHARTERS);
            out.extend_from_slice(&from_version.to_be_bytes());
        }
        Request::ForkProofs { org } => {
            out.push(TAG_FORK_PROOFS);
            put_str8(&mut out, org.as_str());
        }
        Request::Payloads { ids } => {
            out.push(TAG_PAYLOADS);
            out.extend_from_slice(&(ids.len() as u16).to_be_bytes());
            for id in ids {
                out.extend_from_slice(&id.0);
            }
        }
        Request::Checkpoints { orgs } => {
            out.push(TAG_CHECKPOINTS);
            checkpoints::put_request(&mut out, orgs);
        }
    }
    out
}

/// Encodes a response (without the length prefix).
pub fn encode_response(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    match r {
        Response::Hello { cert } => {
            out.push(TAG_HELLO);
            put_bytes32(&mut out, cert);
        }
        Response::Status(status) => {
            out.push(TAG_STATUS);
            status::put_status(&mut out, status);
        }
        Response::Charters { files } => {
            out.push(TAG_CHARTERS);
            out.push(files.len() as u8);
            for f in files {
                put_bytes32(&mut out, f);
            }
        }
        Response::ForkProofs { pairs } => {
            out.push(TAG_FORK_PROOFS);
            out.push(pairs.len() as u8);
            for (a, b) in pairs {
                put_bytes32(&mut out, a);
                put_bytes32(&mut out, b);
            }
        }
        Response::Payloads { items } => {
            out.push(TAG_PAYLOADS);
            out.extend_from_slice(&(items.len() as u16).to_be_bytes());
            for (id, p) in items {
                out.extend_from_slice(&id.0);
                put_bytes32(&mut out, p);
            }
        }
        Response::Checkpoints { items, forks } => {
            out.push(TAG_CHECKPOINTS);
            checkpoints::put_response(&mut out, items, forks);
        }
        Response::Range { docs } => {
            out.push(TAG_RANGE);
            out.extend_from_slice(&(docs.len() as u32).to_be_bytes());
            for d in docs {
                out.extend_from_slice(&(d.len() as u32).to_be_bytes());
                out.extend_from_slice(d);
            }
        }
        Response::Refused { code, reason } => {
            out.push(TAG_REFUSED);
            out.push(code.to_byte());
            // Cut at a character boundary, so what is sent is still UTF-8.
            let mut end = reason.len().min(REASON_MAX_BYTES);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            out.extend_from_slice(&(end as u16).to_be_bytes());
            out.extend_from_slice(&reason.as_bytes()[..end]);
        }
    }
    out
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.b.len()).ok_or(WireError::Truncated(what))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    fn arr32(&mut self, what: &'static str) -> Result<[u8; 32], WireError> {
        Ok(self.take(32, what)?.try_into().expect("32 bytes"))
    }
    fn org(&mut self) -> Result<OrgId, WireError> {
        let len = self.u8("organization")? as usize;
        let raw = self.take(len, "organization")?;
        let s = std::str::from_utf8(raw)
            .map_err(|_| WireError::Invalid { field: "organization", reason: "not UTF-8".into() })?;
        OrgId::new(s).map_err(|e| WireError::Invalid { field: "organization", reason: e.to_string() })
    }
    fn end(&self) -> Result<(), WireError> {
        match self.b.len() - self.pos {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }
    /// A `u32`-length-prefixed byte string of at most `max` bytes.
    fn bytes(&mut self, max: usize, what: &'static str) -> Result<Vec<u8>, WireError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(WireError::OverLimit(what));
        }
        Ok(self.take(len, what)?.to_vec())
    }
}

/// Decodes a request.
pub fn decode_request(b: &[u8]) -> Result<Request, WireError> {
    if b.len() > MESSAGE_MAX_BYTES {
        return Err(WireError::OverLimit("message size"));
    }
    let mut r = Reader { b, pos: 0 };
    let req = match r.u8("tag")? {
        TAG_HELLO => Request::Hello { cert: r.bytes(CERT_MAX_BYTES, "certificate")? },
        TAG_STATUS => Request::Status(status::read_status(&mut r)?),
        TAG_CHARTERS => Request::Charters { from_version: r.u32("charter version")? },
        TAG_FORK_PROOFS => Request::ForkProofs { org: r.org()? },
        TAG_CHECKPOINTS => Request::Checkpoints { orgs: checkpoints::read_request(&mut r)? },
        TAG_PAYLOADS => {
            let n = r.u16("payload count")? as usize;
            if n > PAYLOADS_MAX {
                return Err(WireError::OverLimit("payload ids"));
            }
            Request::Payloads { ids: (0..n).map(|_| r.arr32("payload id").map(DocumentId)).collect::<Result<_, _>>()? }
        }
        TAG_RANGE => {
            let org = r.org()?;
            let from = Seq(r.u64("range from")?);
            if from.0 == 0 {
                return Err(WireError::Invalid { field: "range from", reason: "positions start at 1".into() });
            }
            Request::Range { org, from, count_max: r.u32("range count")?, bytes_max: r.u32("range bytes")? }
        }
        t => return Err(WireError::UnknownTag(t)),
    };
    r.end()?;
    Ok(req)
}

/// Decodes a response.
pub fn decode_response(b: &[u8]) -> Result<Response, WireError> {
    if b.len() > MESSAGE_MAX_BYTES {
        return Err(WireError::OverLimit("message size"));
    }
    let mut r = Reader { b, pos: 0 };
    let resp = match r.u8("tag")? {
        TAG_HELLO => Response::Hello { cert: r.bytes(CERT_MAX_BYTES, "certificate")? },
        TAG_STATUS => Response::Status(status::read_status(&mut r)?),
        TAG_CHARTERS => {
            let n = r.u8("charter count")? as usize;
            if n > CHARTERS_MAX {
                return Err(WireError::OverLimit("charters"));
            }
            Response::Charters {
                files: (0..n).map(|_| r.bytes(CHARTER_FILE_MAX_BYTES, "charter")).collect::<Result<_, _>>()?,
            }
        }
        TAG_FORK_PROOFS => {
            let n = r.u8("proof count")? as usize;
            if n > FORK_PROOFS_MAX {
                return Err(WireError::OverLimit("fork proofs"));
            }
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let a = r.bytes(DOCUMENT_SIZE_MAX_BYTES, "document size")?;
                let b = r.bytes(DOCUMENT_SIZE_MAX_BYTES, "document size")?;
                pairs.push((a, b));
            }
            Response::ForkProofs { pairs }
        }
        TAG_PAYLOADS => {
            let n = r.u16("payload count")? as usize;
            if n > PAYLOADS_MAX {
                return Err(WireError::OverLimit("payloads"));
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                let id = DocumentId(r.arr32("payload id")?);
                items.push((id, r.bytes(PAYLOAD_MAX_BYTES, "payload")?));
            }
            Response::Payloads { items }
        }
        TAG_CHECKPOINTS => {
            let (items, forks) = checkpoints::read_response(&mut r)?;
            Response::Checkpoints { items, forks }
        }
        TAG_RANGE => {
            let n = r.u32("document count")?;
            if n > RANGE_COUNT_MAX {
                return Err(WireError::OverLimit("range documents"));
            }
            let mut docs = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let len = r.u32("document length")? as usize;
                if len > DOCUMENT_SIZE_MAX_BYTES {
                    return Err(WireError::OverLimit("document size"));
                }
                docs.push(r.take(len, "document")?.to_vec());
            }
            Response::Range { docs }
        }
        TAG_REFUSED => {
            let code = RefusalCode::from_byte(r.u8("refusal code")?);
            let len = r.u16("reason length")? as usize;
            if len > REASON_MAX_BYTES {
                return Err(WireError::OverLimit("reason"));
            }
            // Refused rather than repaired, so that decoding stays canonical.
            let reason = std::str::from_utf8(r.take(len, "reason")?)
                .map_err(|_| WireError::Invalid { field: "reason", reason: "not UTF-8".into() })?
                .to_owned();
            Response::Refused { code, reason }
        }
        t => return Err(WireError::UnknownTag(t)),
    };
    r.end()?;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads() -> Vec<FeedHead> {
        vec![
            FeedHead { org: OrgId::new("WCO").unwrap(), seq: Seq(7), id: DocumentId([1; 32]), forked_at: None },
            FeedHead { org: OrgId::new("FR").unwrap(), seq: Seq(1), id: DocumentId([2; 32]), forked_at: Some(Seq(1)) },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        let reqs = [
            Request::Hello { cert: b"cert".to_vec() },
            Request::Status(Status::compose([9; 32], 3, heads(), HeadsDigest([1; 32]), HeadsDigest::NONE)),
            Request::Range { org: OrgId::new("WCO").unwrap(), from: Seq(3), count_max: 10, bytes_max: 1000 },
            Request::Charters { from_version: 2 },
            Request::ForkProofs { org: OrgId::new("FR").unwrap() },
            Request::Payloads { ids: vec![DocumentId([3; 32]), DocumentId([4; 32])] },
            Request::Checkpoints { orgs: vec![OrgId::new("WCO").unwrap(), OrgId::new("FR").unwrap()] },
        ];
        for r in reqs {
            assert_eq!(decode_request(&encode_request(&r)).unwrap(), r);
        }
        let resps = [
            Response::Hello { cert: Vec::new() },
            Response::Status(Status::compose([9; 32], 1, heads(), HeadsDigest::NONE, HeadsDigest::NONE)),
            Response::Range { docs: vec![b"one".to_vec(), Vec::new(), b"three".to_vec()] },
            Response::Refused { code: RefusalCode::WrongNetwork, reason: "wrong network".into() },
            Response::Refused { code: RefusalCode::from_byte(200), reason: String::new() },
            Response::Charters { files: vec![b"v2".to_vec(), b"v3".to_vec()] },
            Response::ForkProofs { pairs: vec![(b"a".to_vec(), b"b".to_vec())] },
            Response::Payloads { items: vec![(DocumentId([5; 32]), b"{}".to_vec())] },
            Response::Checkpoints {
                items: vec![CheckpointItem { note: b"note".to_vec(), certs: vec![b"c1".to_vec(), Vec::new()] }],
                forks: vec![b"evidence".to_vec()],
            },
            Response::Checkpoints { items: Vec::new(), forks: Vec::new() },
        ];
        for r in resps {
            assert_eq!(decode_response(&encode_response(&r)).unwrap(), r);
        }
    }

    #[test]
    fn truncated_trailing_and_oversized_messages_are_refused() {
        let b = encode_request(&Request::Status(Status::compose(
            [9; 32],
            1,
            heads(),
            HeadsDigest::NONE,
            HeadsDigest::NONE,
        )));
        for cut in 0..b.len() {
            assert!(decode_request(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert_eq!(decode_request(&extra), Err(WireError::Trailing(1)));
        let mut huge = vec![TAG_RANGE];
        huge.extend_from_slice(&(RANGE_COUNT_MAX + 1).to_be_bytes());
        assert_eq!(decode_response(&huge), Err(WireError::OverLimit("range documents")));
        let mut big_doc = vec![TAG_RANGE, 0, 0, 0, 1];
        big_doc.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode_response(&big_doc), Err(WireError::OverLimit("document size")));
        assert_eq!(decode_request(&[77]), Err(WireError::UnknownTag(77)));
        let mut big_cert = vec![TAG_HELLO];
        big_cert.extend_from_slice(&(CERT_MAX_BYTES as u32 + 1).to_be_bytes());
        assert_eq!(decode_request(&big_cert), Err(WireError::OverLimit("certificate")));
        let mut many_ids = vec![TAG_PAYLOADS];
        many_ids.extend_from_slice(&(PAYLOADS_MAX as u16 + 1).to_be_bytes());
        assert_eq!(decode_request(&many_ids), Err(WireError::OverLimit("payload ids")));
        assert_eq!(
            decode_response(&[TAG_FORK_PROOFS, FORK_PROOFS_MAX as u8 + 1]),
            Err(WireError::OverLimit("fork proofs"))
        );
        let zero_from =
            encode_request(&Request::Range { org: OrgId::new("A").unwrap(), from: Seq(0), count_max: 1, bytes_max: 1 });
        assert!(decode_request(&zero_from).is_err());
    }

    #[test]
    fn a_refusal_is_its_tag_a_code_byte_and_a_utf8_reason() {
        // The layout of docs/PROTOCOL.md §8.2, byte for byte.
        let busy = Response::Refused { code: RefusalCode::Busy, reason: "busy".into() };
        assert_eq!(encode_response(&busy), [3, 1, 0, 4, b'b', b'u', b's', b'y']);
        assert_eq!(
            decode_response(&[3, 9, 0, 0]).unwrap(),
            Response::Refused { code: RefusalCode::CertificateInvalid, reason: String::new() }
        );
        // No code byte at all (a version 2 refusal) is truncated.
        assert_eq!(decode_response(&[3]), Err(WireError::Truncated("refusal code")));
        // Invalid UTF-8 is refused, not repaired: what decodes re-encodes to the same bytes.
        assert!(matches!(decode_response(&[3, 1, 0, 1, 0xff]), Err(WireError::Invalid { field: "reason", .. })));
        let mut long = vec![3, 2];
        long.extend_from_slice(&(REASON_MAX_BYTES as u16 + 1).to_be_bytes());
        long.extend(std::iter::repeat_n(b'x', REASON_MAX_BYTES + 1));
        assert_eq!(decode_response(&long), Err(WireError::OverLimit("reason")));
    }

    #[test]
    fn every_code_byte_decodes_and_encodes_back_to_itself() {
        for b in 0..=u8::MAX {
            let code = RefusalCode::from_byte(b);
            assert_eq!(code.to_byte(), b);
            assert_eq!(matches!(code, RefusalCode::Other(_)), !(1..=9).contains(&b), "byte {b}");
            let r = Response::Refused { code, reason: "r".into() };
            assert_eq!(decode_response(&encode_response(&r)).unwrap(), r);
        }
        let later: Vec<_> = RefusalCode::ASSIGNED.into_iter().filter(|c| c.is_later()).collect();
        assert_eq!(later, [RefusalCode::Busy, RefusalCode::TooMany]);
        assert!(!RefusalCode::from_byte(77).is_later(), "an unknown code means not from me");
    }

    #[test]
    fn a_reason_over_the_bound_is_cut_at_a_character_boundary() {
        let reason = "é".repeat(REASON_MAX_BYTES); // two bytes each
        let mut odd = String::from("x");
        odd.push_str(&reason);
        for r in [reason, odd] {
            let sent = encode_response(&Response::Refused { code: RefusalCode::Internal, reason: r.clone() });
            let Response::Refused { reason: got, .. } = decode_response(&sent).unwrap() else { panic!() };
            assert!(got.len() <= REASON_MAX_BYTES && got.len() >= REASON_MAX_BYTES - 1);
            assert!(r.starts_with(&got));
        }
    }
}
