//! The write path: feed position checks and one atomic, durable write batch per commit.

use std::collections::HashMap;

use rocksdb::WriteBatch;

use super::keys::{self, HeadValue};
use super::{Store, StoreError};
use crate::document::{date_to_days_opt, DocumentId, OrgId, Seq, SignedDocument, TypeName};
use crate::ingest::CheckedDocument;

/// What happened to one document handed to [`Store::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum IngestOutcome {
    /// Appended to its feed and indexed.
    Stored,
    /// Already held at that position, in the feed or as fork evidence: nothing written.
    Duplicate,
    /// Another validly signed entry holds that position (or the position is a known fork):
    /// the document is kept as evidence and the feed is frozen from that position.
    Forked { seq: Seq },
}

/// A document one commit stored, as the commit knew it: what events, gossip and the sync
/// engine are told, so that nothing is read back from RocksDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Its local arrival number.
    pub arrival: u64,
    pub id: DocumentId,
    pub publisher: OrgId,
    pub seq: Seq,
    pub doc_type: TypeName,
}

/// What one [`Store::commit`] did.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// One result per document handed in, in order.
    pub results: Vec<Result<IngestOutcome, FeedError>>,
    /// The documents stored, in arrival order (consecutive arrival numbers).
    pub stored: Vec<StoredEntry>,
    /// The head after the commit of every feed the documents named (`None`: no entry and no
    /// fork evidence), in the order they were first named.
    pub heads: Vec<(OrgId, Option<HeadValue>)>,
}

/// Why a valid document cannot take its claimed feed position. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error(
        "{publisher} feed gap: next position is {expected}, document is at {found}; fetch the missing entries first"
    )]
    Gap { publisher: OrgId, expected: Seq, found: Seq },
    #[error("{publisher} #{seq} names a predecessor that is not the entry held at #{prev_seq}")]
    PrevMismatch { publisher: OrgId, seq: Seq, prev_seq: Seq },
    #[error("{publisher} feed is frozen by a fork at #{forked_at}; nothing at or past that position is accepted until the charter resolves it")]
    Frozen { publisher: OrgId, forked_at: Seq },
}

impl FeedError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            FeedError::Gap { .. } => "feed_gap",
            FeedError::PrevMismatch { .. } => "prev_mismatch",
            FeedError::Frozen { .. } => "feed_frozen",
        }
    }
}

impl Store {
    /// Appends checked documents to their feeds in one atomic write batch, synced to disk
    /// before returning when `sync` is set (publish and every acknowledged ingest set it).
    ///
    /// Documents are applied in order, so a batch may carry consecutive entries of one feed.
    /// Returns one result per document (a rejected document writes nothing), what was stored
    /// and the feeds' heads after the commit, all as decided under the writer lock.
    pub fn commit(&self, docs: &[CheckedDocument], sync: bool) -> Result<Commit, StoreError> {
        let mut next_arrival = self.write_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let first_arrival = *next_arrival;
        let mut batch = WriteBatch::default();
        // Heads and positions written earlier in this batch, which RocksDB cannot yet see.
        let mut heads: HashMap<OrgId, Option<HeadValue>> = HashMap::new();
        let mut named: Vec<OrgId> = Vec::new();
        let mut positions: HashMap<(OrgId, Seq), DocumentId> = HashMap::new();
        let mut tree_nodes = super::tlog::Overlay::new();
        let mut results = Vec::with_capacity(docs.len());
        let mut stored = Vec::new();
        for checked in docs {
            let doc = checked.doc();
            let h = &doc.header;
            let head = match heads.get(&h.publisher) {
                Some(head) => *head,
                None => {
                    let head = self.head(&h.publisher)?;
                    heads.insert(h.publisher.clone(), head);
                    named.push(h.publisher.clone());
                    head
                }
            };
            let next = head.map_or(Seq::FIRST, |hv| hv.seq.next());
            let forked_at = head.and_then(|hv| hv.forked_at);
            // Below the head a position is held; at a fork position not held (the node learned
            // of the fork by proof, or truncated its entry there) only evidence is kept.
            let result = if h.seq < next || forked_at == Some(h.seq) {
                let held = match positions.get(&(h.publisher.clone(), h.seq)) {
                    Some(id) => Some(*id),
                    None => self.feed_entry(&h.publisher, h.seq)?,
                };
                if held.is_none() && h.seq < next {
                    return Err(self.corrupt("feed entry below head"));
                }
                if held == Some(doc.id) || self.is_evidence(&h.publisher, h.seq, &doc.id)? {
                    Ok(IngestOutcome::Duplicate)
                } else {
                    self.put_evidence(&mut batch, doc);
                    let hv = frozen(head, h.seq);
                    batch.put_cf(self.cf(keys::CF_HEADS), keys::head_key(&h.publisher), hv.encode());
                    heads.insert(h.publisher.clone(), Some(hv));
                    Ok(IngestOutcome::Forked { seq: h.seq })
                }
            } else if let Some(forked_at) = forked_at.filter(|f| h.seq > *f) {
                Err(FeedError::Frozen { publisher: h.publisher.clone(), forked_at })
            } else if h.seq > next {
                Err(FeedError::Gap { publisher: h.publisher.clone(), expected: next, found: h.seq })
            } else if head.is_some_and(|hv| hv.id != h.prev) {
                Err(FeedError::PrevMismatch { publisher: h.publisher.clone(), seq: h.seq, prev_seq: Seq(h.seq.0 - 1) })
            } else {
                // Below a fork position (a node filling in a feed it knew was forked) the freeze
                // stays.
                self.put_document(&mut batch, checked);
                self.put_leaf(&mut batch, &mut tree_nodes, &h.publisher, h.seq, &doc.id)?;
                batch.put_cf(self.cf(keys::CF_ARRIVALS), keys::arrival_key(*next_arrival), doc.id.0);
                stored.push(StoredEntry {
                    arrival: *next_arrival,
                    id: doc.id,
                    publisher: h.publisher.clone(),
                    seq: h.seq,
                    doc_type: h.doc_type.clone(),
                });
                *next_arrival += 1;
                let hv = HeadValue { seq: h.seq, id: doc.id, forked_at };
                batch.put_cf(self.cf(keys::CF_HEADS), keys::head_key(&h.publisher), hv.encode());
                heads.insert(h.publisher.clone(), Some(hv));
                positions.insert((h.publisher.clone(), h.seq), doc.id);
                Ok(IngestOutcome::Stored)
            };
            results.push(result);
        }
        if *next_arrival != first_arrival {
            batch.put_cf(self.cf(keys::CF_META), keys::META_NEXT_ARRIVAL, next_arrival.to_be_bytes());
        }
        if !batch.is_empty() {
            if let Err(e) = self.write_heads(batch, sync) {
                *next_arrival = first_arrival;
                return Err(e);
            }
        }
        let heads = named.into_iter().map(|org| {
            let head = heads.get(&org).copied().flatten();
            (org, head)
        });
        Ok(Commit { results, stored, heads: heads.collect() })
    }

    /// Adds a document and every index entry for it to `batch`.
    fn put_document(&self, batch: &mut WriteBatch, checked: &CheckedDocument) {
        document_entries(checked.doc(), |cf, k, v| batch.put_cf(self.cf(cf), k, v));
    }

    /// Adds the removal of a stored document, every index entry for it and the transparency
    /// log above it (see `tlog.rs`) to `batch`. Its
    /// `arrivals` entry stays: finding it would take a scan, and every reader of arrivals
    /// skips a document that is no longer held.
    pub(super) fn delete_document(&self, batch: &mut WriteBatch, doc: &SignedDocument) {
        document_entries(doc, |cf, k, _| batch.delete_cf(self.cf(cf), k));
        self.delete_tlog_at(batch, &doc.header.publisher, doc.header.seq);
    }

    /// Adds `doc` to the fork evidence of its position. A position that gains evidence is no
    /// longer resolved: the next charter action judges its entries again.
    pub(super) fn put_evidence(&self, batch: &mut WriteBatch, doc: &SignedDocument) {
        let h = &doc.header;
        batch.put_cf(self.cf(keys::CF_FORKS), keys::fork_key(&h.publisher, h.seq, &doc.id), &doc.bytes);
        batch.delete_cf(self.cf(keys::CF_FORK_RESOLUTIONS), keys::resolution_key(&h.publisher, h.seq));
    }

    /// Whether `id` is recorded as fork evidence at a position.
    pub(super) fn is_evidence(&self, org: &OrgId, seq: Seq, id: &DocumentId) -> Result<bool, StoreError> {
        Ok(self.db.get_pinned_cf(self.cf(keys::CF_FORKS), keys::fork_key(org, seq, id))?.is_some())
    }
}

/// `head` frozen at `seq` (or at an earlier fork it already has); a feed without a head gets
/// an empty one.
pub(super) fn frozen(head: Option<HeadValue>, seq: Seq) -> HeadValue {
    let mut hv = head.unwrap_or(HeadValue::empty(seq));
    if hv.forked_at.is_none_or(|f| seq < f) {
        hv.forked_at = Some(seq);
    }
    hv
}

/// Every key a stored document occupies (family, key, value): the one list that storing and
/// truncating both follow, so neither can miss an index.
fn document_entries(doc: &SignedDocument, mut entry: impl FnMut(&'static str, &[u8], &[u8])) {
    let h = &doc.header;
    let id = &doc.id;
    entry(keys::CF_DOCS, &id.0, &doc.bytes);
    entry(keys::CF_FEEDS, &keys::feed_key(&h.publisher, h.seq), &id.0);
    entry(keys::CF_IDX_TYPE, &keys::type_key(&h.doc_type, h.issued_at_ms, id), &[]);
    entry(keys::CF_IDX_TIME, &keys::time_key(h.issued_at_ms, id), &[]);
    for s in &h.subjects {
        entry(keys::CF_IDX_HS, &keys::hs_key(s.edition, &s.code, id), &keys::hs_value(h.issued_at_ms));
    }
    if let Some(from) = h.validity.from {
        let to = date_to_days_opt(h.validity.to);
        entry(keys::CF_IDX_FROM, &keys::from_key(crate::document::date_to_days(from), id), &keys::from_value(to));
    }
    for r in &h.references {
        entry(keys::CF_IDX_REFS, &keys::refs_key(&r.target, r.kind, id), &[]);
    }
}
