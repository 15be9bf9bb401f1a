//! Forks after the fact: proofs from peers, proofs served to them, and the charter actions
//! that resolve a fork.
//!
//! A fork is two validly signed entries at one feed position (docs/PROTOCOL.md §4). The store
//! records one as it arrives ([`Store::commit`]) or as a pair from a peer
//! ([`Store::record_fork_proof`]), freezing the feed at that position either way. Only the
//! charter ends a freeze: a version that makes the key of every entry but at most one invalid
//! at that position (§10.4). [`Store::resolve_forks`] then truncates each frozen feed from its
//! first entry signed by a key no longer valid there, and unfreezes every fork with at most
//! one valid entry left; the evidence stays, marked resolved.
//!
//! Bounds: a charter version is rare and an act of the root key holders, so the work done for
//! one (a scan of each frozen feed from its first position, and of the entries recorded at its
//! forked positions) is bounded by what the store holds and done once per version. Deletions
//! are written [`TRUNCATE_BATCH_DOCS`] documents at a time, so memory is bounded whatever the
//! feed's length.

use std::collections::BTreeSet;

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::keys::{self, HeadValue};
use super::write::frozen;
use super::{Store, StoreError};
use crate::authority::{AuthorityError, Keyring};
use crate::document::{decode_owned, DocumentId, OrgId, Seq};
use crate::ingest::CheckedDocument;

/// Documents deleted per write batch when a feed is truncated.
pub const TRUNCATE_BATCH_DOCS: u64 = 1024;

/// Why two entries are not a fork proof. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the entries are from different publishers ({a} and {b}); a fork is two entries of one feed")]
    PublishersDiffer { a: OrgId, b: OrgId },
    #[error("the entries are at different positions (#{a} and #{b}); a fork is two entries at one position")]
    PositionsDiffer { a: Seq, b: Seq },
    #[error("both entries are document {0}; a fork is two different entries")]
    SameEntry(DocumentId),
}

impl ProofError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::PublishersDiffer { .. } => "proof_publishers_differ",
            ProofError::PositionsDiffer { .. } => "proof_positions_differ",
            ProofError::SameEntry(_) => "proof_same_entry",
        }
    }
}

/// What recording a fork proof did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ProofOutcome {
    /// `entries` of the two (1 or 2) were new evidence; the feed is frozen at `seq`.
    Recorded { seq: Seq, entries: usize },
    /// Both entries were held already (in the feed or as evidence) and the fork recorded:
    /// nothing was written.
    AlreadyKnown,
}

/// A fork proof: the envelopes of two distinct validly signed entries at one feed position.
pub type ForkProof = (Vec<u8>, Vec<u8>);

/// What a charter version did to one forked position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub publisher: OrgId,
    pub seq: Seq,
    /// At most one entry at `seq` is still valid: this fork no longer freezes the feed. When
    /// false, two or more are, and the feed stays frozen at `seq`.
    pub resolved: bool,
    /// Where this charter version truncated the feed (that entry and every later one), if it
    /// did.
    pub truncated_from: Option<Seq>,
    /// The one valid entry at `seq`, held only as evidence, when the feed now ends just before
    /// `seq`: the caller passes it to the ingest pipeline, which stores it like any arrival.
    pub reingest: Option<Vec<u8>>,
}

/// Whether a refusal says the key may not sign at that position: the only verdict that
/// truncates an entry or discounts one side of a fork. Other refusals (an expired charter, a
/// publisher no longer a member, a type no longer permitted) say nothing about which history
/// is the publisher's own, so they leave entries and forks as they are.
fn key_invalid(e: &AuthorityError) -> bool {
    matches!(
        e,
        AuthorityError::KeyRevoked { .. }
            | AuthorityError::KeyNotValidAtPosition { .. }
            | AuthorityError::KeyNotAuthorized { .. }
    )
}

/// The entries at a forked position that a charter lets stand.
struct Standing {
    /// How many (counted up to two).
    valid: usize,
    /// The one, when exactly one stands.
    only: Option<Survivor>,
}

struct Survivor {
    /// Whether it is the feed's entry (rather than evidence).
    held: bool,
    bytes: Vec<u8>,
}

impl Store {
    /// Records a fork proof from a peer: two validly signed entries at one position of one
    /// feed, each made by [`crate::ingest::check`]. Each entry not yet held becomes evidence,
    /// and the feed is frozen at that position, whether this node holds it, a third entry
    /// there, or nothing of the feed at all. A pair that is not a fork proof is refused
    /// ([`StoreError::NotAForkProof`]) and nothing is written.
    pub fn record_fork_proof(&self, a: &CheckedDocument, b: &CheckedDocument) -> Result<ProofOutcome, StoreError> {
        let (a, b) = (a.doc(), b.doc());
        let (org, seq) = (&a.header.publisher, a.header.seq);
        if b.header.publisher != *org {
            return Err(ProofError::PublishersDiffer { a: org.clone(), b: b.header.publisher.clone() }.into());
        }
        if b.header.seq != seq {
            return Err(ProofError::PositionsDiffer { a: seq, b: b.header.seq }.into());
        }
        if a.id == b.id {
            return Err(ProofError::SameEntry(a.id).into());
        }
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head(org)?;
        let held = self.feed_entry(org, seq)?;
        let mut batch = WriteBatch::default();
        let mut entries = 0;
        for doc in [a, b] {
            if held != Some(doc.id) && !self.is_evidence(org, seq, &doc.id)? {
                self.put_evidence(&mut batch, doc);
                entries += 1;
            }
        }
        let frozen_here = head.and_then(|h| h.forked_at).is_some_and(|f| f <= seq);
        if entries == 0 && (frozen_here || self.is_resolved(org, seq)?) {
            return Ok(ProofOutcome::AlreadyKnown);
        }
        batch.put_cf(self.cf(keys::CF_HEADS), keys::head_key(org), frozen(head, seq).encode());
        self.write_synced(batch)?;
        tracing::warn!(publisher = %org, seq = %seq, entries, "fork proof recorded: feed frozen");
        Ok(ProofOutcome::Recorded { seq, entries })
    }

    /// Fork proofs for a peer: pairs of envelopes, two distinct validly signed entries at one
    /// position, for every unresolved fork of `org`'s feed, at most `max` pairs. Each entry
    /// recorded at a position appears in a pair with the first (the feed's own, if held).
    pub fn fork_proofs(&self, org: &OrgId, max: usize) -> Result<Vec<ForkProof>, StoreError> {
        let mut out = Vec::new();
        for seq in self.fork_positions(org)? {
            if out.len() >= max {
                break;
            }
            if self.is_resolved(org, seq)? {
                continue;
            }
            let mut first: Option<Vec<u8>> = None;
            self.for_each_entry_at(org, seq, |_, bytes| {
                match &first {
                    None => first = Some(bytes),
                    Some(f) => out.push((f.clone(), bytes)),
                }
                Ok(out.len() < max)
            })?;
        }
        Ok(out)
    }

    /// Applies a new charter version (in `keyring`) to every frozen feed: truncates it from its
    /// first entry whose key the charter no longer allows at that position
    /// ([`Store::truncate_unauthorized`]), then judges each unresolved fork. A fork with at most
    /// one entry left valid is resolved (its evidence kept, marked resolved); the feed is
    /// frozen at its first fork still unresolved, or no longer at all. Returns one
    /// [`Resolution`] per fork judged; the caller re-ingests each `reingest` envelope. Holds
    /// the writer lock throughout, so ingest waits for it.
    ///
    /// Without a charter, keys have no positions: a key removed from a keyring file would
    /// condemn every entry it ever signed. Nothing is done then.
    pub fn resolve_forks(&self, keyring: &Keyring) -> Result<Vec<Resolution>, StoreError> {
        let Some(chain) = keyring.charter() else {
            tracing::warn!("forks are resolved only by a charter; this node has none");
            return Ok(Vec::new());
        };
        let version = chain.latest().charter.version;
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        // One head per publisher, a few hundred at most on a real network.
        for (org, head) in self.heads()? {
            if head.forked_at.is_none() {
                continue;
            }
            let truncated_from = self.truncate_locked(&org, keyring)?;
            let head = self.head(&org)?.ok_or_else(|| self.corrupt("head of a frozen feed"))?;
            let mut batch = WriteBatch::default();
            let mut forked_at = None;
            for seq in self.fork_positions(&org)? {
                if self.is_resolved(&org, seq)? {
                    continue;
                }
                let Standing { valid, only } = self.judge(&org, seq, keyring)?;
                let resolved = valid <= 1;
                let mut reingest = None;
                if resolved {
                    batch.put_cf(
                        self.cf(keys::CF_FORK_RESOLUTIONS),
                        keys::resolution_key(&org, seq),
                        keys::resolution_value(version),
                    );
                    // Only an entry the feed can take now: one held as evidence, right after
                    // the head. Further on, sync brings the position back in feed order.
                    reingest = only.filter(|s| !s.held && head.seq.next() == seq).map(|s| s.bytes);
                    tracing::info!(publisher = %org, seq = %seq, charter = version, valid, "fork resolved");
                } else {
                    forked_at = forked_at.or(Some(seq)); // positions come in order
                    tracing::warn!(publisher = %org, seq = %seq, charter = version, valid, "fork unresolved: feed stays frozen");
                }
                out.push(Resolution { publisher: org.clone(), seq, resolved, truncated_from, reingest });
            }
            // A checkpoint fork both of whose checkpoints the charter still lets stand keeps
            // the feed frozen where it was recorded (docs/PROTOCOL.md §13.6).
            if let Some(at) = self.standing_checkpoint_fork(&org, keyring)? {
                forked_at = Some(forked_at.map_or(at, |f: Seq| f.min(at)));
            }
            self.put_head(&mut batch, &org, HeadValue { forked_at, ..head });
            self.write_synced(batch)?;
        }
        Ok(out)
    }

    /// Truncates `org`'s feed from its first entry whose key the charter in `keyring` no longer
    /// allows at that position (revoked there, not yet valid there, or no longer the
    /// publisher's): that entry and every later one, which chain through it. Each is removed
    /// with every index entry; one at a forked position moves to that fork's evidence. The head
    /// becomes the entry before; a freeze stays. Returns the first position removed, if any.
    ///
    /// Reads every entry of the feed: meant for a charter change, not for routine use. Without
    /// a charter nothing is done (see [`Store::resolve_forks`]).
    pub fn truncate_unauthorized(&self, org: &OrgId, keyring: &Keyring) -> Result<Option<Seq>, StoreError> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.truncate_locked(org, keyring)
    }

    /// [`Store::truncate_unauthorized`], the writer lock held by the caller.
    ///
    /// Deletes from the head down, [`TRUNCATE_BATCH_DOCS`] documents per synced batch, each
    /// batch moving the head to the entry below what it deleted: after a crash the feed is a
    /// shorter feed, never one with a hole, and the next call carries on.
    fn truncate_locked(&self, org: &OrgId, keyring: &Keyring) -> Result<Option<Seq>, StoreError> {
        if keyring.charter().is_none() {
            return Ok(None);
        }
        let Some(head) = self.head(org)? else { return Ok(None) };
        let Some(from) = self.first_unauthorized(org, keyring)? else { return Ok(None) };
        let forked: BTreeSet<Seq> = self.fork_positions(org)?.into_iter().filter(|s| *s >= from).collect();
        let mut top = head.seq;
        while top >= from {
            let low = Seq(top.0.saturating_sub(TRUNCATE_BATCH_DOCS - 1).max(from.0));
            let mut batch = WriteBatch::default();
            for seq in (low.0..=top.0).rev().map(Seq) {
                let id = self.feed_entry(org, seq)?.ok_or_else(|| self.corrupt("feed entry below head"))?;
                let bytes = self.get(&id)?.ok_or_else(|| self.corrupt("feed entry without document"))?;
                let doc = decode_owned(bytes).map_err(|_| self.corrupt("stored envelope"))?;
                if forked.contains(&seq) {
                    // Keep the proof whole: this entry was one side of the fork.
                    batch.put_cf(self.cf(keys::CF_FORKS), keys::fork_key(org, seq, &id), &doc.bytes);
                }
                self.delete_document(&mut batch, &doc);
            }
            let below = Seq(low.0 - 1);
            let id = match below.0 {
                0 => DocumentId::ZERO,
                _ => self.feed_entry(org, below)?.ok_or_else(|| self.corrupt("feed entry below head"))?,
            };
            self.put_head(&mut batch, org, HeadValue { seq: below, id, forked_at: head.forked_at });
            self.write_synced(batch)?;
            top = below;
        }
        tracing::warn!(publisher = %org, from = %from, to = %head.seq, "feed truncated: its key is no longer valid there");
        Ok(Some(from))
    }

    /// The first position of `org`'s feed whose entry the charter no longer lets its key sign.
    fn first_unauthorized(&self, org: &OrgId, keyring: &Keyring) -> Result<Option<Seq>, StoreError> {
        let prefix = keys::feed_prefix(org);
        let start = keys::feed_key(org, Seq::FIRST);
        for item in self.db.iterator_cf(self.cf(keys::CF_FEEDS), IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let id = DocumentId(v.as_ref().try_into().map_err(|_| self.corrupt("feed entry"))?);
            let bytes = self.get(&id)?.ok_or_else(|| self.corrupt("feed entry without document"))?;
            let doc = decode_owned(bytes).map_err(|_| self.corrupt("stored envelope"))?;
            if keyring.check(&doc.header, crate::clock::now_ms()).is_err_and(|e| key_invalid(&e)) {
                return Ok(Some(doc.header.seq));
            }
        }
        Ok(None)
    }

    /// The earliest freeze of `org`'s recorded checkpoint forks whose two checkpoints are
    /// still signed by keys `keyring` allows at their sizes.
    fn standing_checkpoint_fork(&self, org: &OrgId, keyring: &Keyring) -> Result<Option<Seq>, StoreError> {
        let origin = crate::tlog::checkpoint::origin(&self.network_id()?, org);
        let mut at: Option<Seq> = None;
        for fork in self.checkpoint_forks(Some(org))? {
            let evidence = crate::tlog::signed::ForkEvidence::decode(&fork.evidence)
                .map_err(|_| self.corrupt("checkpoint fork evidence"))?;
            if evidence.verify(&origin, |size| keyring.checkpoint_keys(org, size)).is_ok() {
                at = Some(at.map_or(fork.frozen_at, |a| a.min(fork.frozen_at)));
            }
        }
        Ok(at)
    }

    /// Which entries at a forked position the keyring lets stand.
    fn judge(&self, org: &OrgId, seq: Seq, keyring: &Keyring) -> Result<Standing, StoreError> {
        let mut standing = Standing { valid: 0, only: None };
        self.for_each_entry_at(org, seq, |held, bytes| {
            let doc = decode_owned(bytes).map_err(|_| self.corrupt("fork evidence"))?;
            if !keyring.check(&doc.header, crate::clock::now_ms()).is_err_and(|e| key_invalid(&e)) {
                standing.valid += 1;
                standing.only = Some(Survivor { held, bytes: doc.bytes });
            }
            Ok(standing.valid < 2)
        })?;
        if standing.valid != 1 {
            standing.only = None;
        }
        Ok(standing)
    }

    /// Visits the entries at a forked position, the feed's own first (if held), then the
    /// evidence (without the copy an entry that took the position after a resolution leaves),
    /// until `visit` returns false.
    fn for_each_entry_at(
        &self,
        org: &OrgId,
        seq: Seq,
        mut visit: impl FnMut(bool, Vec<u8>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let held = self.feed_entry(org, seq)?;
        if let Some(id) = held {
            let bytes = self.get(&id)?.ok_or_else(|| self.corrupt("feed entry without document"))?;
            if !visit(true, bytes)? {
                return Ok(());
            }
        }
        let prefix = keys::feed_key(org, seq);
        for item in self.db.iterator_cf(self.cf(keys::CF_FORKS), IteratorMode::From(&prefix, Direction::Forward)) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let (_, _, id) = keys::decode_fork_key(&k).ok_or_else(|| self.corrupt("fork key"))?;
            if Some(id) != held && !visit(false, v.into_vec())? {
                break;
            }
        }
        Ok(())
    }

    /// Every position of `org`'s feed with recorded evidence, resolved or not, in order. Seeks
    /// from one position to the next, so it costs one step per position however much evidence
    /// each holds.
    fn fork_positions(&self, org: &OrgId) -> Result<Vec<Seq>, StoreError> {
        let prefix = keys::feed_prefix(org);
        let mut iter = self.db.raw_iterator_cf(self.cf(keys::CF_FORKS));
        iter.seek(&prefix);
        let mut out = Vec::new();
        while let Some(k) = iter.key() {
            if !k.starts_with(&prefix) {
                break;
            }
            let (_, seq, _) = keys::decode_fork_key(k).ok_or_else(|| self.corrupt("fork key"))?;
            out.push(seq);
            let Some(next) = seq.0.checked_add(1) else { break };
            iter.seek(keys::feed_key(org, Seq(next)));
        }
        iter.status()?;
        Ok(out)
    }

    /// Adds a feed's head to `batch`; a head that holds nothing and freezes nothing is removed.
    fn put_head(&self, batch: &mut WriteBatch, org: &OrgId, head: HeadValue) {
        if head.holds_nothing() && head.forked_at.is_none() {
            batch.delete_cf(self.cf(keys::CF_HEADS), keys::head_key(org));
        } else {
            batch.put_cf(self.cf(keys::CF_HEADS), keys::head_key(org), head.encode());
        }
    }

    fn write_synced(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.write_heads(batch, true)
    }
}
