//! The ingest pipeline: the one path by which bytes from anywhere (publish, import, peers)
//! become stored documents.
//!
//! decode → network + signature (`verify_strict`) → keyring authority → schema and header
//! projection → lifecycle entitlement → feed position → one atomic write batch.
//! The first four steps are pure and run in parallel across a batch; the last two read the
//! store and run in order under the store's writer lock.

use std::collections::HashMap;
use std::sync::Arc;

use crate::authority::{AuthorityError, Keyring};
use crate::doctype::{check_document, TypeError};
use crate::document::{
    decode_owned, verify_with, DecodeError, DocumentId, KeyCache, OrgId, SignedDocument, VerifiedDocument, VerifyError,
};
use crate::store::{FeedError, HeadValue, IngestOutcome, Store, StoreError, StoredEntry};

/// Most documents one ingest batch may carry.
pub const INGEST_BATCH_MAX: usize = 4096;

/// A document that passed every check that does not depend on the store. Only
/// [`check`] makes one; the store accepts nothing else.
#[derive(Debug, Clone)]
pub struct CheckedDocument(VerifiedDocument);

impl CheckedDocument {
    pub fn doc(&self) -> &SignedDocument {
        &self.0
    }
}

/// A lifecycle act (supersede, correct, withdraw) that its publisher may not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("target {0} of the lifecycle reference is not held yet; it is accepted once its target is")]
    TargetMissing(DocumentId),
    #[error("{publisher} may not supersede, correct or withdraw {target}, published by {owner}")]
    NotEntitled { publisher: OrgId, target: DocumentId, owner: OrgId },
}

/// Why a document was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    #[error(transparent)]
    Type(#[from] TypeError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Feed(#[from] FeedError),
}

impl IngestError {
    /// A stable machine-readable reason, used in reports, metrics and test vectors.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Decode(e) => e.code(),
            IngestError::Verify(e) => e.code(),
            IngestError::Authority(e) => e.code(),
            IngestError::Type(e) => e.code(),
            IngestError::Lifecycle(LifecycleError::TargetMissing(_)) => "lifecycle_target_missing",
            IngestError::Lifecycle(LifecycleError::NotEntitled { .. }) => "lifecycle_not_entitled",
            IngestError::Feed(e) => e.code(),
        }
    }

    /// Whose fault the refusal is, as far as the node that refused can tell. The gossip path
    /// and the range path both judge a peer by this, and by nothing else.
    pub fn blame(&self) -> Blame {
        match self {
            IngestError::Decode(_) | IngestError::Verify(_) | IngestError::Type(_) => Blame::Sender,
            // Entitlement follows the charter's roles, like the authority checks.
            IngestError::Authority(_) | IngestError::Lifecycle(LifecycleError::NotEntitled { .. }) => Blame::Charter,
            IngestError::Feed(FeedError::Gap { .. }) | IngestError::Lifecycle(LifecycleError::TargetMissing(_)) => {
                Blame::Later
            }
            IngestError::Feed(FeedError::PrevMismatch { .. } | FeedError::Frozen { .. }) => Blame::Feed,
        }
    }

    /// Whether the same document may be accepted later, once other documents arrive.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IngestError::Feed(FeedError::Gap { .. }) | IngestError::Lifecycle(LifecycleError::TargetMissing(_))
        )
    }
}

/// Every code [`IngestError::code`] returns for a refusal that means something is wrong, so
/// that metrics show each at 0 before it first happens.
pub const FAULT_CODES: &[&str] = &[
    "too_large",
    "bad_magic",
    "unsupported_version",
    "truncated",
    "trailing_bytes",
    "bad_field",
    "wrong_network",
    "bad_key",
    "weak_key",
    "bad_signature",
    "unknown_publisher",
    "key_not_authorized",
    "type_not_permitted",
    "key_not_valid_at_position",
    "key_revoked",
    "chapter_not_permitted",
    "charter_expired",
    "unknown_type",
    "unknown_schema_version",
    "body_not_json",
    "schema_invalid",
    "body_field_invalid",
    "header_mismatch",
    "lifecycle_not_entitled",
    "prev_mismatch",
    "feed_frozen",
];

/// Every code [`IngestError::code`] returns for a document that is only early
/// ([`IngestError::is_transient`]): no fault, it is fetched or accepted later.
pub const DEFERRED_CODES: &[&str] = &["feed_gap", "lifecycle_target_missing"];

/// Whose fault a refused document is ([`IngestError::blame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The bytes are bad under any charter version (they do not decode, the signature or the
    /// network is wrong, the body breaks its schema): whoever sent them is at fault.
    Sender,
    /// Refused under this node's charter version (publisher, key, position, type, expiry,
    /// entitlement). A peer on a newer version may hold it rightly: it is not penalized, and
    /// this node asks it for newer charter versions.
    Charter,
    /// It may be accepted later, once other documents arrive (a gap before it, a lifecycle
    /// target not held yet).
    Later,
    /// It conflicts with this node's feed (another predecessor, a feed frozen by a fork):
    /// evidence about the publisher, not about the peer that relayed it.
    Feed,
}

/// Every check that needs no store: decode, network, signature, authority, schema, header.
/// `now_ms` is the time the charter's expiry is judged at (the caller reads the clock).
pub fn check(
    bytes: Vec<u8>,
    network_id: &[u8; 32],
    keyring: &Keyring,
    now_ms: i64,
) -> Result<CheckedDocument, IngestError> {
    check_with(bytes, network_id, keyring, now_ms, &mut KeyCache::default())
}

/// As [`check`], decoding signing keys through `keys` (a batch of one feed decodes its key once).
pub fn check_with(
    bytes: Vec<u8>,
    network_id: &[u8; 32],
    keyring: &Keyring,
    now_ms: i64,
    keys: &mut KeyCache,
) -> Result<CheckedDocument, IngestError> {
    let doc = decode_owned(bytes)?;
    let doc = verify_with(doc, network_id, keys)?;
    keyring.check(&doc.header, now_ms)?;
    check_document(&doc)?;
    Ok(CheckedDocument(doc))
}

/// What one ingested batch came to, as the commit knew it (nothing is read back).
#[derive(Debug, Default)]
pub struct BatchReport {
    /// One result per envelope, in order.
    pub results: Vec<Result<IngestOutcome, IngestError>>,
    /// The documents stored, in arrival order.
    pub stored: Vec<StoredEntry>,
    /// The head after the commit of every feed a checked document named (feeds whose every
    /// document was refused before the commit are not here).
    pub heads: Vec<(OrgId, Option<HeadValue>)>,
}

impl BatchReport {
    /// Appends the report of the next batch.
    fn extend(&mut self, next: BatchReport) {
        self.results.extend(next.results);
        self.stored.extend(next.stored);
        for (org, head) in next.heads {
            match self.heads.iter_mut().find(|(o, _)| *o == org) {
                Some(known) => known.1 = head,
                None => self.heads.push((org, head)),
            }
        }
    }
}

/// Ingests documents into a store through the full pipeline.
pub struct Ingestor<'a> {
    pub store: &'a Store,
    pub network_id: [u8; 32],
    pub keyring: &'a Keyring,
    /// Whether each commit is fsynced before returning (on for anything acknowledged).
    pub sync: bool,
}

impl Ingestor<'_> {
    /// Ingests up to [`INGEST_BATCH_MAX`] envelopes; larger inputs are split. Returns one result
    /// per envelope, in order. Only an I/O failure of the store is an `Err`.
    pub fn ingest(&self, envelopes: Vec<Vec<u8>>) -> Result<Vec<Result<IngestOutcome, IngestError>>, StoreError> {
        Ok(self.ingest_report(envelopes)?.results)
    }

    /// As [`Ingestor::ingest`], with what was stored and the heads left.
    pub fn ingest_report(&self, envelopes: Vec<Vec<u8>>) -> Result<BatchReport, StoreError> {
        let mut report = BatchReport::default();
        for chunk in chunks(envelopes) {
            let checked = self.check_batch(chunk, self.keyring, crate::clock::now_ms());
            report.extend(self.commit_checked(checked)?);
        }
        Ok(report)
    }

    /// Ingests a stream of batches with checking and committing overlapped: while one batch is
    /// committed (one writer), the next is verified on the other cores. Each batch carries a
    /// tag; `on_batch` receives the tag and the batch's report, in order. Batches larger than
    /// [`INGEST_BATCH_MAX`] are split, each part with a copy of the tag. The envelopes are
    /// moved through, never copied.
    ///
    /// `keyring_now` gives the keyring for each batch (a running node's changes when a new
    /// charter version is applied); `None` keeps the Ingestor's own.
    pub fn ingest_pipelined<T, I, F>(
        &self,
        keyring_now: &(dyn Fn() -> Option<Arc<Keyring>> + Sync),
        batches: I,
        mut on_batch: F,
    ) -> Result<(), StoreError>
    where
        T: Clone + Send,
        I: Iterator<Item = (T, Vec<Vec<u8>>)> + Send,
        F: FnMut(T, BatchReport),
    {
        type Checked<T> = (T, Vec<Result<CheckedDocument, IngestError>>);
        // Two batches checked ahead of the committer: enough to keep both stages busy, and a
        // bound on the memory held between them.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Checked<T>>(2);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for (tag, batch) in batches {
                    // An empty batch is reported too, in its place: callers count on one report
                    // per batch, in order.
                    if batch.is_empty() && tx.send((tag.clone(), Vec::new())).is_err() {
                        return;
                    }
                    for chunk in chunks(batch) {
                        let current = keyring_now();
                        let keyring = current.as_deref().unwrap_or(self.keyring);
                        let checked = self.check_batch(chunk, keyring, crate::clock::now_ms());
                        if tx.send((tag.clone(), checked)).is_err() {
                            return; // the committer stopped on a store error
                        }
                    }
                }
            });
            for (tag, checked) in rx {
                on_batch(tag, self.commit_checked(checked)?);
            }
            Ok(())
        })
    }

    /// The pure checks of a batch, in parallel: one scoped thread per core, each taking a
    /// contiguous share. (Scoped threads rather than a pool: idle pool workers spin, and on a
    /// two-core machine that spinning takes cycles from the committer.)
    fn check_batch(
        &self,
        envelopes: Vec<Vec<u8>>,
        keyring: &Keyring,
        now_ms: i64,
    ) -> Vec<Result<CheckedDocument, IngestError>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(envelopes.len().max(1));
        if threads <= 1 || envelopes.len() < 16 {
            let mut keys = KeyCache::default();
            return envelopes
                .into_iter()
                .map(|bytes| check_with(bytes, &self.network_id, keyring, now_ms, &mut keys))
                .collect();
        }
        let share = envelopes.len().div_ceil(threads);
        let mut shares: Vec<Vec<Vec<u8>>> = Vec::with_capacity(threads);
        let mut rest = envelopes;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(share));
            shares.push(rest);
            rest = tail;
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|share| {
                    scope.spawn(move || {
                        let mut keys = KeyCache::default();
                        share
                            .into_iter()
                            .map(|bytes| check_with(bytes, &self.network_id, keyring, now_ms, &mut keys))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("checking does not panic")).collect()
        })
    }

    /// Lifecycle entitlement, feed position and the atomic commit of one checked batch.
    fn commit_checked(&self, checked: Vec<Result<CheckedDocument, IngestError>>) -> Result<BatchReport, StoreError> {
        let mut results: Vec<Option<Result<IngestOutcome, IngestError>>> = Vec::with_capacity(checked.len());
        let mut to_commit = Vec::with_capacity(checked.len());
        let mut slots = Vec::with_capacity(checked.len());
        // Publishers of documents earlier in this batch, for lifecycle targets in the same batch.
        let mut batch_publishers: HashMap<DocumentId, OrgId> = HashMap::new();
        for (i, c) in checked.into_iter().enumerate() {
            match c.and_then(|doc| self.check_lifecycle(&doc, &batch_publishers).map(|()| doc)) {
                Ok(doc) => {
                    batch_publishers.insert(doc.doc().id, doc.doc().header.publisher.clone());
                    slots.push(i);
                    to_commit.push(doc);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        // Nothing to write (every entry refused, or an empty batch): no write, no fsync.
        let committed =
            if to_commit.is_empty() { Default::default() } else { self.store.commit(&to_commit, self.sync)? };
        for (slot, outcome) in slots.into_iter().zip(committed.results) {
            results[slot] = Some(outcome.map_err(IngestError::from));
        }
        Ok(BatchReport {
            results: results.into_iter().map(|r| r.expect("every slot is filled")).collect(),
            stored: committed.stored,
            heads: committed.heads,
        })
    }

    /// Only the publisher of a document may supersede, correct or withdraw it, and only once
    /// the target is held (so the rule is checked on every node alike).
    fn check_lifecycle(&self, doc: &CheckedDocument, batch: &HashMap<DocumentId, OrgId>) -> Result<(), IngestError> {
        let h = &doc.doc().header;
        for r in h.references.iter().filter(|r| r.kind != crate::document::RefKind::Cites) {
            let owner = match batch.get(&r.target) {
                Some(owner) => owner.clone(),
                // The header suffices: no copy of the target, no hash of it.
                None => match self.store.header(&r.target).map_err(|_| LifecycleError::TargetMissing(r.target))? {
                    Some(header) => header.publisher,
                    None => return Err(LifecycleError::TargetMissing(r.target).into()),
                },
            };
            if owner != h.publisher {
                return Err(
                    LifecycleError::NotEntitled { publisher: h.publisher.clone(), target: r.target, owner }.into()
                );
            }
        }
        Ok(())
    }
}

/// `envelopes` in owned parts of at most [`INGEST_BATCH_MAX`], in order, without copying.
fn chunks(envelopes: Vec<Vec<u8>>) -> impl Iterator<Item = Vec<Vec<u8>>> {
    let mut rest = envelopes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let tail = rest.split_off(rest.len().min(INGEST_BATCH_MAX));
        Some(std::mem::replace(&mut rest, tail))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{FieldError, Seq};

    /// One error of every variant `IngestError::code` distinguishes.
    fn one_of_each() -> Vec<IngestError> {
        let field = || -> FieldError { OrgId::new("").unwrap_err() };
        let org = || OrgId::new("WCO").unwrap();
        let id = DocumentId([7; 32]);
        let doc_type = crate::document::TypeName::new("classification.opinion").unwrap();
        vec![
            DecodeError::TooLarge { len: 2, max: 1 }.into(),
            DecodeError::BadMagic.into(),
            DecodeError::UnsupportedVersion(9).into(),
            DecodeError::Truncated("body").into(),
            DecodeError::TrailingBytes(1).into(),
            DecodeError::BadField(field()).into(),
            VerifyError::WrongNetwork { expected: "a".into(), found: "b".into() }.into(),
            VerifyError::BadKey.into(),
            VerifyError::WeakKey.into(),
            VerifyError::BadSignature.into(),
            AuthorityError::UnknownPublisher(org()).into(),
            AuthorityError::KeyNotAuthorized { publisher: org(), key: "k".into() }.into(),
            AuthorityError::TypeNotPermitted { publisher: org(), doc_type }.into(),
            AuthorityError::KeyNotValidAtPosition {
                publisher: org(),
                key: "k".into(),
                seq: Seq(1),
                valid_from: Seq(2),
            }
            .into(),
            AuthorityError::KeyRevoked { publisher: org(), key: "k".into(), seq: Seq(2), revoked_at: Seq(1) }.into(),
            AuthorityError::ChapterNotPermitted { publisher: org(), code: "01".into() }.into(),
            AuthorityError::CharterExpired { version: 1, expires: "2020-01-01".into() }.into(),
            TypeError::UnknownType("x".into()).into(),
            TypeError::SchemaVersion { doc_type: "x", found: 2, known: 1 }.into(),
            TypeError::BodyNotJson("x".into()).into(),
            TypeError::Schema { doc_type: "x", errors: "e".into() }.into(),
            TypeError::Field(field()).into(),
            TypeError::HeaderMismatch("subjects").into(),
            LifecycleError::TargetMissing(id).into(),
            LifecycleError::NotEntitled { publisher: org(), target: id, owner: OrgId::new("US").unwrap() }.into(),
            FeedError::Gap { publisher: org(), expected: Seq(1), found: Seq(3) }.into(),
            FeedError::PrevMismatch { publisher: org(), seq: Seq(2), prev_seq: Seq(1) }.into(),
            FeedError::Frozen { publisher: org(), forked_at: Seq(1) }.into(),
        ]
    }

    #[test]
    fn the_code_lists_hold_every_code_once_each_in_the_list_its_transience_names() {
        let errors = one_of_each();
        let mut seen = std::collections::BTreeSet::new();
        for e in &errors {
            let list = if e.is_transient() { DEFERRED_CODES } else { FAULT_CODES };
            assert!(list.contains(&e.code()), "{} ({e}) is missing from its code list", e.code());
            seen.insert(e.code());
        }
        let listed: std::collections::BTreeSet<&str> = FAULT_CODES.iter().chain(DEFERRED_CODES).copied().collect();
        assert_eq!(listed.len(), FAULT_CODES.len() + DEFERRED_CODES.len(), "a code is listed twice");
        assert_eq!(seen, listed, "a listed code that no error returns");
    }
}
