//! The core's vocabulary with the shell: the events it is fed and the effects it returns.

use std::collections::BTreeSet;

use super::penalties::Offense;
use super::{GossipId, InboundTag, PeerKey, RequestFailure, Tag};
use crate::document::{DocumentId, OrgId, Seq};
use crate::ingest::IngestError;
use crate::store::IngestOutcome;
use crate::sync::engine::IngestResult;
use crate::sync::wire::{HeadsDigest, Request, Response};

/// Where a job's documents came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A range the sync engine asked for: the worker checks the entries are `org`'s from
    /// `from` on, in order.
    Range { peer: PeerKey, org: OrgId, from: Seq },
    /// One gossip message.
    Gossip { peer: PeerKey, gossip: GossipId },
}

/// Documents to ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub origin: Origin,
    pub docs: Vec<Vec<u8>>,
}

/// A finished job, as the worker reports it.
#[derive(Debug, Clone)]
pub struct Done {
    pub origin: Origin,
    /// The feed the documents claimed (from the first that decodes), and its head after.
    pub feed: Option<(OrgId, Seq, Seq)>,
    pub result: IngestResult,
    /// For gossip: the single document's outcome.
    pub outcome: Option<Result<IngestOutcome, IngestError>>,
}

/// How applying charter versions a peer sent went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartersApplied {
    /// Applied (the shell reports the change itself with [`Event::CharterChanged`]).
    Applied,
    /// They do not extend this node's chain: the peer's fault.
    Invalid(&'static str),
    /// This node's store failed applying them: not the peer's fault.
    StoreFailed,
}

/// How recording fork proofs a peer sent went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofsRecorded {
    /// Recorded; the forked positions the store holds proofs of now.
    Recorded(BTreeSet<(OrgId, Seq)>),
    /// Not a valid proof: the peer's fault.
    Invalid(&'static str),
    StoreFailed,
}

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// The first connection with a peer is established.
    Connected {
        peer: PeerKey,
        name: String,
        address: String,
    },
    /// The last connection with a peer closed.
    Disconnected {
        peer: PeerKey,
    },
    Request {
        peer: PeerKey,
        tag: InboundTag,
        request: Request,
    },
    /// A sync request that is not a valid message.
    MalformedRequest {
        peer: PeerKey,
    },
    /// The peer announced (identify) versions of the sync protocol, none of them this node's.
    Incompatible {
        peer: PeerKey,
        speaks: Vec<String>,
    },
    Response {
        tag: Tag,
        result: Result<Response, RequestFailure>,
    },
    Gossip {
        peer: PeerKey,
        gossip: GossipId,
        data: Vec<u8>,
    },
    Ingested(Done),
    /// The store holds a new document (any path); `arrival` is its arrival number.
    Stored {
        id: DocumentId,
        publisher: OrgId,
        seq: Seq,
        notice: bool,
        arrival: u64,
    },
    /// The store's heads, read again after stored events were missed.
    Heads {
        heads: Vec<(OrgId, Seq)>,
    },
    /// A charter version is in force: the publishers it trusts, the feeds it changed (with
    /// their new heads), the store's heads and its last arrival number once it was applied.
    CharterChanged {
        version: u32,
        trusted: BTreeSet<OrgId>,
        resets: Vec<(OrgId, Seq)>,
        heads: Vec<(OrgId, Seq)>,
        arrival: u64,
    },
    /// An answer the shell served (after [`Effect::Serve`]) is sent.
    Served {
        peer: PeerKey,
    },
    ChartersApplied {
        peer: PeerKey,
        outcome: ChartersApplied,
    },
    ProofsRecorded {
        peer: PeerKey,
        outcome: ProofsRecorded,
    },
    /// Checkpoints from a peer were taken; `invalid` names what of them did not verify.
    CheckpointsTaken {
        peer: PeerKey,
        invalid: Option<&'static str>,
        /// The size of the latest checkpoint now held of each feed asked for that has one.
        held: Vec<(OrgId, u64)>,
    },
    /// Of the ids given to [`Effect::FilterPayloads`], those still wanted.
    PayloadsFiltered {
        ids: Vec<DocumentId>,
    },
    /// A step of the walk over held notices: those readable and lacking their payload.
    NoticesWalked {
        readable: Vec<DocumentId>,
        next: Option<DocumentId>,
    },
    /// Payloads received were checked: those stored, and how many did not match.
    PayloadsAccepted {
        peer: PeerKey,
        stored: Vec<DocumentId>,
        bad: usize,
    },
    /// Time passed ([`Core::next_wakeup`] or the shell's periodic tick).
    Tick,
}

/// An outbound request, filled in by the shell (it reads the heads a status carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Hello,
    /// A status ([`crate::sync::wire::Status::compose`]): `known` is the digest of the peer's
    /// heads this node holds, `peer_holds` the digest of this node's heads the peer holds (the
    /// heads are sent in full unless it is their digest).
    Status {
        known: HeadsDigest,
        peer_holds: HeadsDigest,
    },
    Range {
        org: OrgId,
        from: Seq,
        count: u32,
        bytes: u32,
    },
    Charters {
        from_version: u32,
    },
    ForkProofs {
        org: OrgId,
    },
    Payloads {
        ids: Vec<DocumentId>,
    },
    Checkpoints {
        orgs: Vec<OrgId>,
    },
}

/// Whether gossipsub forwards a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Ignore,
    Reject,
}

/// Something the shell must do.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send {
        peer: PeerKey,
        tag: Tag,
        request: Outbound,
    },
    Respond {
        tag: InboundTag,
        response: Response,
    },
    /// Answer from the store, then report [`Event::Served`].
    Serve {
        peer: PeerKey,
        tag: InboundTag,
        request: Request,
        reader: Option<OrgId>,
    },
    /// Answer a status request with this node's status read from the store (composed as for
    /// [`Outbound::Status`]), then report [`Event::Served`].
    AnswerStatus {
        peer: PeerKey,
        tag: InboundTag,
        known: HeadsDigest,
        peer_holds: HeadsDigest,
    },
    /// The peer speaks no sync protocol version in common with this node (an older or newer
    /// release): count it (`sync_protocol_unsupported`) and disconnect it. The core has
    /// forgotten it already.
    Incompatible {
        peer: PeerKey,
    },
    Ingest(Job),
    Verdict {
        gossip: GossipId,
        verdict: Verdict,
    },
    /// Gossip a document this node published.
    GossipOwn {
        id: DocumentId,
    },
    /// Gossip may flow to and from the peer.
    Admit {
        peer: PeerKey,
    },
    Disconnect {
        peer: PeerKey,
    },
    /// Disconnect and block the peer (by peer id text), until [`Effect::Unban`].
    Ban {
        name: String,
        org: Option<OrgId>,
        offense: Offense,
    },
    Unban {
        name: String,
    },
    ApplyCharters {
        peer: PeerKey,
        files: Vec<Vec<u8>>,
    },
    RecordForkProofs {
        peer: PeerKey,
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    FilterPayloads {
        ids: Vec<DocumentId>,
    },
    WalkNotices {
        after: Option<DocumentId>,
    },
    AcceptPayloads {
        peer: PeerKey,
        items: Vec<(DocumentId, Vec<u8>)>,
    },
    /// Read the store's heads again ([`Event::Heads`]).
    ReadHeads,
    /// Check and keep checkpoints, cosignatures and checkpoint-fork evidence from a peer,
    /// then report [`Event::CheckpointsTaken`].
    TakeCheckpoints {
        peer: PeerKey,
        items: Vec<crate::sync::wire::CheckpointItem>,
        forks: Vec<Vec<u8>>,
        /// The feeds that were asked for.
        orgs: Vec<OrgId>,
    },
}

/// How the peers view changed, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ViewChange {
    #[default]
    None,
    /// Only the heads peers announce (a status that moved them): the shell may wait to show
    /// them.
    Heads,
    /// Peers came, went, were penalized or banned, or were admitted: shown at once.
    Peers,
}
