//! The JSON shapes the API returns, described for OpenAPI.
//!
//! Why separate view types instead of serializing core types directly: the wire shape of the
//! API is a contract with other systems and is documented in `docs/openapi.json`; the core
//! types may change shape without breaking it, and the core stays free of HTTP concerns.

use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::lifecycle::{LifecycleEvent, LifecycleState};
use crate::doctype::title_of;
use crate::document::{DocumentId, Header, SignedDocument};
use crate::store::Order;

/// Most subjects listed in a summary; the full list is in the document's header.
pub const SUMMARY_SUBJECTS_MAX: usize = 16;

/// A document in a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentSummary {
    /// SHA-256 of the signed envelope, hex.
    pub id: String,
    pub doc_type: String,
    pub publisher: String,
    /// Position in the publisher's feed.
    pub seq: u64,
    /// Issue time stated by the publisher (RFC 3339, UTC).
    pub issued_at: String,
    /// First day of legal effect (YYYY-MM-DD), if any.
    pub valid_from: Option<String>,
    /// Last day of legal effect, inclusive, if any.
    pub valid_to: Option<String>,
    /// English title, or the first language given.
    pub title: String,
    /// The first HS subjects as `HS2022:880622`.
    pub subjects: Vec<String>,
    /// How many HS subjects the document has in all.
    pub subject_count: usize,
    /// `superseded`, `corrected` or `withdrawn` when a held act (or a later document's
    /// reference) says so. Given in document lists, the document view and the HS tracker;
    /// absent there when nothing ended or corrected the document, and always absent in stream
    /// events (a document is new when it arrives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleState>,
    /// Whether the document verifies now (signature, network, keyring), where `lifecycle` is
    /// given; the document view's `verification` says why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// RFC 3339 of milliseconds since the epoch.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// The title of a document's body (empty when the body is not a JSON object with a title).
pub fn title(doc: &SignedDocument) -> String {
    serde_json::from_slice::<Value>(doc.body()).map(|b| title_of(&b)).unwrap_or_default()
}

impl DocumentSummary {
    /// The summary of a decoded document.
    pub fn of(doc: &SignedDocument) -> DocumentSummary {
        DocumentSummary::with_title(&doc.id, &doc.header, title(doc))
    }

    /// The summary given an already extracted title.
    pub fn with_title(id: &DocumentId, h: &Header, title: String) -> DocumentSummary {
        DocumentSummary {
            id: id.to_hex(),
            doc_type: h.doc_type.to_string(),
            publisher: h.publisher.to_string(),
            seq: h.seq.0,
            issued_at: rfc3339_ms(h.issued_at_ms),
            valid_from: h.validity.from.map(|d| d.to_string()),
            valid_to: h.validity.to.map(|d| d.to_string()),
            title,
            subjects: h
                .subjects
                .iter()
                .take(SUMMARY_SUBJECTS_MAX)
                .map(|s| format!("{}:{}", s.edition, s.code))
                .collect(),
            subject_count: h.subjects.len(),
            lifecycle: None,
            verified: None,
        }
    }
}

/// One page of a document query.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub documents: Vec<DocumentSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page. A cursor keeps the
    /// page order: a document published meanwhile never shifts what the next page holds.
    pub next_cursor: Option<String>,
    /// The order of the results: `issued` (issue time newest first, then id: a type, an HS
    /// code, or no filter), `feed` (feed position newest first: a publisher without type or
    /// HS code), `valid_from` (latest start of validity first: an in-force day alone) or `code`
    /// (HS code order: an HS prefix with more than 50,000 index entries).
    #[schema(value_type = String)]
    pub order: Order,
}

/// The result of re-verifying a stored document now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    /// Signature, network and keyring authority all check out.
    pub valid: bool,
    /// `ok` or `failed`: `verify_strict` over the signed bytes, and the network id.
    pub signature: String,
    /// `authorized`, `not_authorized` or `not_checked` (when the signature failed).
    pub keyring: String,
    /// Stable code of the first failure, if any.
    pub code: Option<String>,
    /// What failed, for people.
    pub reason: Option<String>,
}

/// A reference between two documents.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    /// `supersedes`, `corrects`, `withdraws` or `cites`.
    pub kind: String,
    /// The other document's id.
    pub id: String,
    /// Whether this node holds the other document.
    pub held: bool,
    /// The other document, when held.
    pub document: Option<DocumentSummary>,
}

/// One document in a supersession chain, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainEntry {
    /// `predecessor`, `this` or `successor`.
    pub relation: String,
    pub document: DocumentSummary,
    /// The lifecycle act that made the step, if it was an act rather than a direct reference.
    pub via_act: Option<String>,
}

/// A stored document, decoded and re-verified, with its references both ways.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    pub summary: DocumentSummary,
    /// Size of the signed envelope in bytes.
    pub size_bytes: usize,
    /// Every signed header field.
    #[schema(value_type = Object)]
    pub header: Value,
    /// The document's JSON body.
    #[schema(value_type = Object)]
    pub body: Value,
    pub verification: Verification,
    /// Whether the document is in force today (validity contains today, not superseded or
    /// withdrawn by a held act in effect).
    pub in_force_today: bool,
    /// What this document refers to (its signed header references).
    pub references: Vec<Link>,
    /// Held documents that refer to this one.
    pub referred_by: Vec<Link>,
    /// The supersession chain through this document, oldest first.
    pub supersession: Vec<ChainEntry>,
    /// What superseded, corrected or withdrew this document (held acts, and later documents
    /// that supersede or correct it by reference), by the day each takes effect.
    pub lifecycle: Vec<LifecycleEvent>,
    /// For a sealed enforcement notice: its commitment to the payload only its audience
    /// receives, and whether this node holds that payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_payload: Option<SealedPayloadView>,
    /// What publishing on this node would have refused in this document (an HS code its
    /// edition's held nomenclature lacks, an edition or date that is not real), checked now
    /// against what the node holds. A document received from a peer is stored all the same:
    /// ingest must reach the same verdict on every node (docs/PROTOCOL.md §5.4).
    pub integrity: Vec<IntegrityFlag>,
}

/// One integrity finding on a held document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrityFlag {
    /// `hs_code_unknown`, `edition_unknown` or `date_implausible`.
    pub code: String,
    pub message: String,
}

/// A sealed notice's payload as its signed body commits to it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SealedPayloadView {
    /// SHA-256 of the sealed payload bytes, hex.
    pub sha256: String,
    /// Length of the sealed payload in bytes.
    pub bytes: u32,
    /// Whether this node holds the payload (`GET /v1/documents/{id}/payload` serves it).
    pub held: bool,
}

impl SealedPayloadView {
    /// The view of a commitment.
    pub fn of(seal: &crate::notice::SealRef, held: bool) -> SealedPayloadView {
        SealedPayloadView { sha256: hex::encode(seal.sha256), bytes: seal.bytes, held }
    }
}

/// The result of a publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedView {
    pub id: String,
    pub publisher: String,
    pub seq: u64,
    /// `true` when this document was published before (same body, or same `Idempotency-Key`).
    pub existing: bool,
    /// For a notice published with `seal_payload`: the commitment to the payload stored beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_payload: Option<SealedPayloadView>,
}

/// One feed's head.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedHead {
    pub publisher: String,
    /// Highest sequence number held.
    pub seq: u64,
    /// Id of the document at that position.
    pub id: String,
    /// Whether a fork froze this feed.
    pub frozen: bool,
}

/// Every feed this node holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedList {
    pub feeds: Vec<FeedHead>,
}

/// A connected peer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeerEntry {
    pub peer_id: String,
    pub address: String,
    /// The organization its node certificate names (charter networks, once admitted).
    pub organization: Option<String>,
    /// Admitted: by certificate on a charter network, always on a keyring network.
    pub admitted: bool,
    /// Penalty points it holds now (banned at 10; one point forgiven per minute).
    pub penalty_points: u32,
    /// Heads the peer announced and has not failed to serve, by publisher the trust knows.
    #[schema(value_type = Object)]
    pub heads: Value,
}

/// A peer banned now: blocked and disconnected until the ban runs out.
#[derive(Debug, Serialize, ToSchema)]
pub struct BanEntry {
    pub peer_id: String,
    /// The offense that crossed the threshold (stable code).
    pub offense: String,
    pub seconds_left: u64,
}

/// How far this node is behind the best head any peer announced.
#[derive(Debug, Serialize, ToSchema)]
pub struct LagEntry {
    pub publisher: String,
    /// Our head (0 when we hold nothing of this feed).
    pub local_seq: u64,
    /// The highest head announced by a connected peer (0 when none announced).
    pub best_announced_seq: u64,
    /// `best_announced_seq - local_seq`, never negative.
    pub lag: u64,
}

/// The network as this node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeersView {
    pub local_peer_id: String,
    pub listen_addresses: Vec<String>,
    pub peers: Vec<PeerEntry>,
    pub lag: Vec<LagEntry>,
    /// Peers banned now.
    pub banned: Vec<BanEntry>,
}

/// A recorded fork: two validly signed entries at one feed position.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForkEntry {
    pub publisher: String,
    pub seq: u64,
    /// The entry the feed holds at that position; absent when this node learned of the fork
    /// from a proof while behind, or a charter action removed it.
    pub kept: Option<String>,
    /// The conflicting entry, kept as evidence (export both to prove the fork).
    pub conflicting: String,
    /// A charter version left at most one of the entries valid: the feed is no longer frozen
    /// by this fork.
    pub resolved: bool,
}

/// Every recorded fork.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForkList {
    pub forks: Vec<ForkEntry>,
}

/// The data of one stream event (`event: document`).
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamEvent {
    /// This node's arrival number (the SSE event id unless the stream sends feed cursors);
    /// absent for the entries a feed cursor's catch-up sends, read by feed position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival: Option<u64>,
    pub document: DocumentSummary,
}

// Describes a response body in the OpenAPI document; the handler sends the stored bytes as
// they are, so the type is never built.
/// The exact signed envelope, byte for byte (docs/PROTOCOL.md, section 3).
#[derive(ToSchema)]
#[schema(content_media_type = "application/octet-stream")]
#[allow(dead_code)]
pub struct SignedBytes(String);

/// A document's inclusion proof against a checkpoint of its feed (docs/PROTOCOL.md §13.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionView {
    pub id: String,
    pub publisher: String,
    pub seq: u64,
    /// `seq - 1`: the leaf's index in the tree.
    pub leaf_index: u64,
    pub tree_size: u64,
    /// SHA-256(0x00 || document id), hex.
    pub leaf_hash: String,
    /// The tree's root at `tree_size`, hex (the checkpoint's root, base64 there).
    pub root: String,
    /// RFC 6962 audit path, leaf's sibling first, hex.
    pub proof: Vec<String>,
    /// The checkpoint of `tree_size` as a signed note: the publisher's signature and the
    /// witnesses' cosignatures.
    pub checkpoint: String,
    /// The node certificates (hex) of the witnesses whose cosignatures the note carries.
    pub witness_certificates: Vec<String>,
}

/// A consistency proof between two sizes of a feed's tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyView {
    pub publisher: String,
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    /// RFC 6962 consistency proof, hex.
    pub proof: Vec<String>,
}

/// One receipt: a witness node that cosigned a checkpoint covering the document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptEntry {
    pub organization: String,
    pub peer_id: String,
    /// The key name of its cosignature lines.
    pub witness: String,
    /// The smallest cosigned checkpoint covering the document.
    pub checkpoint_size: u64,
    /// When it cosigned (RFC 3339, UTC, seconds).
    pub cosigned_at: String,
}

/// A document's receipts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptsView {
    pub id: String,
    /// Distinct member organizations whose nodes hold the document.
    pub organizations: usize,
    pub receipts: Vec<ReceiptEntry>,
}

/// A recorded checkpoint fork.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointForkEntry {
    pub publisher: String,
    pub size_a: u64,
    pub size_b: u64,
    /// Position the feed was frozen at.
    pub frozen_at: u64,
    /// The portable evidence (docs/PROTOCOL.md §13.6), base64.
    pub evidence: String,
}

/// Every recorded checkpoint fork.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointForkList {
    pub forks: Vec<CheckpointForkEntry>,
}
