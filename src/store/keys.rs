//! Every RocksDB key and value layout, encoded and decoded in this one module.
//!
//! Integers are big-endian so that byte order is numeric order; signed integers have their
//! sign bit flipped for the same reason. Strings are prefixed by their one-byte length, so no
//! string key is a prefix of another's encoding.
//!
//! | column family      | key                                          | value                           |
//! |--------------------|----------------------------------------------|---------------------------------|
//! | `meta`             | ASCII name                                   | see [`META_FORMAT_VERSION`]     |
//! | `docs`             | id (32)                                      | envelope bytes, verbatim        |
//! | `feeds`            | org (str8) · seq (u64)                       | id (32)                         |
//! | `heads`            | org (str8)                                   | [`HeadValue`] (48)              |
//! | `forks`            | org (str8) · seq (u64) · id (32)             | a conflicting envelope          |
//! | `fork_resolutions` | org (str8) · seq (u64)                       | charter version (u32)           |
//! | `tlog_nodes`       | org (str8) · level (u8) · index (u64)        | hash (32) of a complete subtree |
//! | `checkpoints`      | org (str8) · tree size (u64)                 | checkpoint note, publisher-signed |
//! | `cosignatures`     | org (str8) · tree size (u64) · witness key (32) | [`CosignatureValue`]         |
//! | `witnessed`        | org (str8)                                   | [`WitnessedValue`] (48)         |
//! | `checkpoint_forks` | org (str8) · size a (u64) · size b (u64) · SHA-256 of the evidence (32) | evidence (see `store/tlog.rs`) |
//! | `idx_type`         | type (str8) · issued_at (i64) · id (32)      | empty                           |
//! | `idx_time`         | issued_at (i64) · id (32)                    | empty                           |
//! | `idx_hs`           | edition (u16) · code digits · 0x00 · id (32) | empty                           |
//! | `idx_from`         | effective_from days (i32) · id (32)          | effective_to days (i32) or none |
//! | `idx_refs`         | target id (32) · kind (u8) · source id (32)  | empty                           |
//! | `arrivals`         | local arrival number (u64)                   | id (32)                         |
//! | `payloads`         | id (32) of a sealed enforcement notice       | its sealed payload, verbatim    |
//!
//! `forks` holds the validly signed entries at a forked position other than the feed's: the
//! conflicting ones, and the feed's own once a truncation removed it (a node that learned of
//! the fork by proof may never have held the position). An entry that takes the position after
//! the fork is resolved keeps its copy there; readers skip it. A position listed in
//! `fork_resolutions` is resolved: a charter version left at most one of its entries valid.
//!
//! `payloads` holds only payloads that matched their notice's commitment when stored (see
//! `crate::notice::check_payload`); its keys are a subset of the `docs` keys of notices,
//! except for a payload written by a publish that crashed before its document was committed,
//! which no document names and nothing reads.
//!
//! `tlog_nodes` holds every complete subtree of each feed's Merkle tree (docs/PROTOCOL.md
//! §13.1): leaf `index` is the feed's position `index + 1`, so a truncated feed removes the
//! nodes above its removed leaves with them. `checkpoints` and `cosignatures` hold tree
//! heads of the feed this node holds (their sizes never exceed its head); `witnessed` the last
//! one this node cosigned per feed; `checkpoint_forks` two signed checkpoints of one feed that
//! no history can both be part of.
//!
//! Format versions (`meta` `format_version`, see `migrate.rs`): version 4 is the table above.
//! Version 3 is the same without the five transparency-log families.
//! Version 2 is the same without `fork_resolutions`, and never has a head at position 0 (see
//! [`HeadValue`]). Version 1 is version 2 without the `payloads` family. Version 0 is version 1
//! without the `arrivals` family and the `next_arrival` counter; the development builds that
//! wrote it recorded `format_version` 1, so a store is version 0 when it lacks `arrivals`,
//! whatever it records.
//!
//! `idx_hs` keys hold the full code, so a prefix scan over `edition · "85"` finds chapter 85,
//! `edition · "8549"` the heading and its subheadings: one entry serves 2, 4 and 6 digits.

use crate::document::{DocumentId, Edition, HsCode, OrgId, RefKind, Seq, TypeName};

pub const CF_META: &str = "meta";
pub const CF_DOCS: &str = "docs";
pub const CF_FEEDS: &str = "feeds";
pub const CF_HEADS: &str = "heads";
pub const CF_FORKS: &str = "forks";
pub const CF_IDX_TYPE: &str = "idx_type";
pub const CF_IDX_TIME: &str = "idx_time";
pub const CF_IDX_HS: &str = "idx_hs";
pub const CF_IDX_FROM: &str = "idx_from";
pub const CF_IDX_REFS: &str = "idx_refs";
pub const CF_ARRIVALS: &str = "arrivals";
pub const CF_PAYLOADS: &str = "payloads";
pub const CF_FORK_RESOLUTIONS: &str = "fork_resolutions";
pub const CF_TLOG_NODES: &str = "tlog_nodes";
pub const CF_CHECKPOINTS: &str = "checkpoints";
pub const CF_COSIGNATURES: &str = "cosignatures";
pub const CF_WITNESSED: &str = "witnessed";
pub const CF_CHECKPOINT_FORKS: &str = "checkpoint_forks";

/// The families version 4 added (the transparency log).
pub const TLOG_CFS: &[&str] = &[CF_TLOG_NODES, CF_CHECKPOINTS, CF_COSIGNATURES, CF_WITNESSED, CF_CHECKPOINT_FORKS];

/// Every column family, in the order they are opened.
pub const ALL_CFS: &[&str] = &[
    CF_META,
    CF_DOCS,
    CF_FEEDS,
    CF_HEADS,
    CF_FORKS,
    CF_IDX_TYPE,
    CF_IDX_TIME,
    CF_IDX_HS,
    CF_IDX_FROM,
    CF_IDX_REFS,
    CF_ARRIVALS,
    CF_PAYLOADS,
    CF_FORK_RESOLUTIONS,
    CF_TLOG_NODES,
    CF_CHECKPOINTS,
    CF_COSIGNATURES,
    CF_WITNESSED,
    CF_CHECKPOINT_FORKS,
];

/// `meta` key of the store format version (u32 big-endian).
pub const META_FORMAT_VERSION: &[u8] = b"format_version";
/// `meta` key of the next local arrival number (u64). Arrival numbers order documents by when
/// this node stored them: the cursor of the live event stream.
pub const META_NEXT_ARRIVAL: &[u8] = b"next_arrival";
/// `meta` key of the network id the store belongs to (32 bytes).
pub const META_NETWORK_ID: &[u8] = b"network_id";

fn put_str8(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn take_str8(b: &[u8]) -> Option<(&str, &[u8])> {
    let (&len, rest) = b.split_first()?;
    let (s, rest) = rest.split_at_checked(len as usize)?;
    Some((std::str::from_utf8(s).ok()?, rest))
}

fn id_from(b: &[u8]) -> Option<DocumentId> {
    Some(DocumentId(b.try_into().ok()?))
}

/// Maps i64 onto u64 preserving order.
pub fn i64_ordered(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn i64_from_ordered(b: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(b.try_into().ok()?) ^ (1 << 63)) as i64)
}

/// Maps i32 onto u32 preserving order.
pub fn i32_ordered(v: i32) -> [u8; 4] {
    ((v as u32) ^ (1 << 31)).to_be_bytes()
}

fn i32_from_ordered(b: &[u8]) -> Option<i32> {
    Some((u32::from_be_bytes(b.try_into().ok()?) ^ (1 << 31)) as i32)
}

/// `feeds` key prefix for all of one organization's entries.
pub fn feed_prefix(org: &OrgId) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + org.as_str().len() + 8);
    put_str8(&mut k, org.as_str());
    k
}

/// `feeds` key of one position (also the `forks` key prefix of that position).
pub fn feed_key(org: &OrgId, seq: Seq) -> Vec<u8> {
    let mut k = feed_prefix(org);
    k.extend_from_slice(&seq.0.to_be_bytes());
    k
}

/// Decodes a `feeds` key.
pub fn decode_feed_key(k: &[u8]) -> Option<(OrgId, Seq)> {
    let (org, rest) = take_str8(k)?;
    let seq = u64::from_be_bytes(rest.try_into().ok()?);
    Some((OrgId::new(org).ok()?, Seq(seq)))
}

/// `heads` key.
pub fn head_key(org: &OrgId) -> Vec<u8> {
    feed_prefix(org)
}

/// Decodes a `heads` key.
pub fn decode_head_key(k: &[u8]) -> Option<OrgId> {
    let (org, rest) = take_str8(k)?;
    rest.is_empty().then(|| OrgId::new(org).ok()).flatten()
}

/// A feed's head: its last accepted position, and the first unresolved forked position if any.
///
/// A feed frozen by fork evidence while it holds none of its entries has a head at position 0
/// with the zero id ([`HeadValue::empty`]): exactly what a feed's first entry names as its
/// predecessor, so every reader that computes "next position" and "previous id" from a head
/// needs no special case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadValue {
    pub seq: Seq,
    pub id: DocumentId,
    /// Position of the first unresolved fork; the feed accepts nothing at or past it.
    pub forked_at: Option<Seq>,
}

impl HeadValue {
    /// The head of a feed that holds no entry, frozen at `forked_at`.
    pub fn empty(forked_at: Seq) -> HeadValue {
        HeadValue { seq: Seq(0), id: DocumentId::ZERO, forked_at: Some(forked_at) }
    }

    /// Whether the feed holds no entry (a head kept only to record a freeze).
    pub fn holds_nothing(&self) -> bool {
        self.seq.0 == 0
    }

    pub fn encode(&self) -> [u8; 48] {
        let mut v = [0u8; 48];
        v[..8].copy_from_slice(&self.seq.0.to_be_bytes());
        v[8..40].copy_from_slice(&self.id.0);
        v[40..].copy_from_slice(&self.forked_at.map_or(0, |s| s.0).to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Option<HeadValue> {
        if v.len() != 48 {
            return None;
        }
        let forked = u64::from_be_bytes(v[40..].try_into().ok()?);
        Some(HeadValue {
            seq: Seq(u64::from_be_bytes(v[..8].try_into().ok()?)),
            id: id_from(&v[8..40])?,
            forked_at: (forked != 0).then_some(Seq(forked)),
        })
    }
}

/// `forks` key of one conflicting entry.
pub fn fork_key(org: &OrgId, seq: Seq, id: &DocumentId) -> Vec<u8> {
    let mut k = feed_key(org, seq);
    k.extend_from_slice(&id.0);
    k
}

/// Decodes a `forks` key.
pub fn decode_fork_key(k: &[u8]) -> Option<(OrgId, Seq, DocumentId)> {
    let (org, rest) = take_str8(k)?;
    let (seq, id) = rest.split_at_checked(8)?;
    Some((OrgId::new(org).ok()?, Seq(u64::from_be_bytes(seq.try_into().ok()?)), id_from(id)?))
}

/// `fork_resolutions` key of one forked position.
pub fn resolution_key(org: &OrgId, seq: Seq) -> Vec<u8> {
    feed_key(org, seq)
}

/// `fork_resolutions` value: the charter version that resolved the fork.
pub fn resolution_value(charter_version: u32) -> [u8; 4] {
    charter_version.to_be_bytes()
}

/// Decodes a `fork_resolutions` value.
pub fn decode_resolution_value(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

/// `tlog_nodes` key of one complete subtree of `org`'s tree.
pub fn tlog_node_key(org: &OrgId, node: crate::tlog::merkle::NodeId) -> Vec<u8> {
    let mut k = feed_prefix(org);
    k.push(node.level);
    k.extend_from_slice(&node.index.to_be_bytes());
    k
}

/// `checkpoints` key of `org`'s checkpoint of `size` leaves (also the `cosignatures` prefix
/// of that checkpoint).
pub fn checkpoint_key(org: &OrgId, size: u64) -> Vec<u8> {
    feed_key(org, Seq(size))
}

/// `cosignatures` key.
pub fn cosignature_key(org: &OrgId, size: u64, witness: &[u8; 32]) -> Vec<u8> {
    let mut k = checkpoint_key(org, size);
    k.extend_from_slice(witness);
    k
}

/// Decodes a `cosignatures` key: the tree size and the witness key.
pub fn decode_cosignature_key(k: &[u8]) -> Option<(OrgId, u64, [u8; 32])> {
    let (org, rest) = take_str8(k)?;
    let (size, key) = rest.split_at_checked(8)?;
    Some((OrgId::new(org).ok()?, u64::from_be_bytes(size.try_into().ok()?), key.try_into().ok()?))
}

/// A stored cosignature: the witness's node certificate, then its `cosignature/v1` data.
///
/// Layout: `u16` certificate length · certificate · `u64` timestamp (seconds) · 64-byte
/// signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureValue {
    pub cert: Vec<u8>,
    pub timestamp_s: u64,
    pub signature: [u8; 64],
}

impl CosignatureValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(2 + self.cert.len() + 72);
        v.extend_from_slice(&(self.cert.len() as u16).to_be_bytes());
        v.extend_from_slice(&self.cert);
        v.extend_from_slice(&self.timestamp_s.to_be_bytes());
        v.extend_from_slice(&self.signature);
        v
    }

    pub fn decode(v: &[u8]) -> Option<CosignatureValue> {
        let (len, rest) = v.split_at_checked(2)?;
        let (cert, rest) = rest.split_at_checked(u16::from_be_bytes(len.try_into().ok()?) as usize)?;
        let (ts, sig) = rest.split_at_checked(8)?;
        Some(CosignatureValue {
            cert: cert.to_vec(),
            timestamp_s: u64::from_be_bytes(ts.try_into().ok()?),
            signature: sig.try_into().ok()?,
        })
    }
}

/// `witnessed` value: the last checkpoint this node cosigned for a feed, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WitnessedValue {
    pub size: u64,
    pub root: [u8; 32],
    pub timestamp_s: u64,
}

impl WitnessedValue {
    pub fn encode(&self) -> [u8; 48] {
        let mut v = [0u8; 48];
        v[..8].copy_from_slice(&self.size.to_be_bytes());
        v[8..40].copy_from_slice(&self.root);
        v[40..].copy_from_slice(&self.timestamp_s.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Option<WitnessedValue> {
        if v.len() != 48 {
            return None;
        }
        Some(WitnessedValue {
            size: u64::from_be_bytes(v[..8].try_into().ok()?),
            root: v[8..40].try_into().ok()?,
            timestamp_s: u64::from_be_bytes(v[40..].try_into().ok()?),
        })
    }
}

/// `checkpoint_forks` key.
pub fn checkpoint_fork_key(org: &OrgId, size_a: u64, size_b: u64, digest: &[u8; 32]) -> Vec<u8> {
    let mut k = feed_key(org, Seq(size_a));
    k.extend_from_slice(&size_b.to_be_bytes());
    k.extend_from_slice(digest);
    k
}

/// `idx_type` key prefix of one type.
pub fn type_prefix(ty: &TypeName) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + ty.as_str().len() + 40);
    put_str8(&mut k, ty.as_str());
    k
}

/// `idx_type` key.
pub fn type_key(ty: &TypeName, issued_at_ms: i64, id: &DocumentId) -> Vec<u8> {
    let mut k = type_prefix(ty);
    k.extend_from_slice(&i64_ordered(issued_at_ms));
    k.extend_from_slice(&id.0);
    k
}

/// `idx_time` key.
pub fn time_key(issued_at_ms: i64, id: &DocumentId) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.extend_from_slice(&i64_ordered(issued_at_ms));
    k.extend_from_slice(&id.0);
    k
}

/// Decodes an `idx_time` key.
pub fn decode_time_key(k: &[u8]) -> Option<(i64, DocumentId)> {
    let (t, id) = k.split_at_checked(8)?;
    Some((i64_from_ordered(t)?, id_from(id)?))
}

/// `idx_hs` key prefix: an edition and the leading digits of a code.
pub fn hs_prefix(edition: Edition, code_prefix: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + code_prefix.len() + 33);
    k.extend_from_slice(&edition.year().to_be_bytes());
    k.extend_from_slice(code_prefix.as_bytes());
    k
}

/// `idx_hs` key.
pub fn hs_key(edition: Edition, code: &HsCode, id: &DocumentId) -> Vec<u8> {
    let mut k = hs_prefix(edition, code.as_str());
    k.push(0);
    k.extend_from_slice(&id.0);
    k
}

/// `idx_hs` value: the document's issue time, so that an HS query in issue order ranks the
/// entries under a prefix without reading each header. Stores written before it hold an empty
/// value, which [`decode_hs_value`] reads as unknown (the header is read then).
pub fn hs_value(issued_at_ms: i64) -> [u8; 8] {
    i64_ordered(issued_at_ms)
}

/// Decodes an `idx_hs` value: the issue time, or `None` for an entry without one.
pub fn decode_hs_value(v: &[u8]) -> Option<i64> {
    i64_from_ordered(v)
}

/// Decodes an `idx_hs` key.
pub fn decode_hs_key(k: &[u8]) -> Option<(Edition, HsCode, DocumentId)> {
    let (ed, rest) = k.split_at_checked(2)?;
    let edition = Edition::from_year(u16::from_be_bytes(ed.try_into().ok()?)).ok()?;
    let (code, id) = rest.split_at_checked(rest.len().checked_sub(33)?)?;
    let (&sep, id) = id.split_first()?;
    if sep != 0 {
        return None;
    }
    Some((edition, HsCode::parse(std::str::from_utf8(code).ok()?).ok()?, id_from(id)?))
}

/// `idx_from` key.
pub fn from_key(from_days: i32, id: &DocumentId) -> Vec<u8> {
    let mut k = Vec::with_capacity(36);
    k.extend_from_slice(&i32_ordered(from_days));
    k.extend_from_slice(&id.0);
    k
}

/// Decodes an `idx_from` key.
pub fn decode_from_key(k: &[u8]) -> Option<(i32, DocumentId)> {
    let (d, id) = k.split_at_checked(4)?;
    Some((i32_from_ordered(d)?, id_from(id)?))
}

/// `idx_from` value: the end of validity, if any.
pub fn from_value(to_days: Option<i32>) -> Vec<u8> {
    to_days.map(|d| i32_ordered(d).to_vec()).unwrap_or_default()
}

/// Decodes an `idx_from` value.
pub fn decode_from_value(v: &[u8]) -> Option<Option<i32>> {
    if v.is_empty() {
        Some(None)
    } else {
        i32_from_ordered(v).map(Some)
    }
}

/// `idx_refs` key: who refers to `target`, and how.
pub fn refs_key(target: &DocumentId, kind: RefKind, source: &DocumentId) -> Vec<u8> {
    let mut k = Vec::with_capacity(65);
    k.extend_from_slice(&target.0);
    k.push(kind as u8);
    k.extend_from_slice(&source.0);
    k
}

/// Decodes an `idx_refs` key.
pub fn decode_refs_key(k: &[u8]) -> Option<(DocumentId, RefKind, DocumentId)> {
    if k.len() != 65 {
        return None;
    }
    Some((id_from(&k[..32])?, RefKind::from_byte(k[32])?, id_from(&k[33..])?))
}

/// `arrivals` key.
pub fn arrival_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// An exclusive upper bound above every `arrivals` key (longer than any of them), to clear
/// the family with one range deletion.
pub const ARRIVAL_KEY_END: [u8; 9] = [0xff; 9];

/// Decodes an `arrivals` key.
pub fn decode_arrival_key(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

/// `payloads` key: the notice's document id.
pub fn payload_key(id: &DocumentId) -> [u8; 32] {
    id.0
}

/// Decodes a `payloads` key.
pub fn decode_payload_key(k: &[u8]) -> Option<DocumentId> {
    id_from(k)
}

/// Decodes an `idx_type` key of a known type prefix: (issued_at, id).
pub fn decode_type_key(prefix: &[u8], k: &[u8]) -> Option<(i64, DocumentId)> {
    let rest = k.strip_prefix(prefix)?;
    let (t, id) = rest.split_at_checked(8)?;
    Some((i64_from_ordered(t)?, id_from(id)?))
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
