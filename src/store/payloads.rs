//! Sealed payloads of enforcement notices, in the `payloads` family, beside the documents.
//!
//! A payload is not part of its feed: a node may hold a notice without its payload (it is not
//! in the audience, or has not fetched it yet), so payloads are written on their own, one
//! synced put each, and never through [`Store::commit`]. Callers check a payload against its
//! notice (`crate::notice::check_payload`) before they store it; the store only keeps bytes.

use rocksdb::{Direction, IteratorMode, WriteOptions};

use super::keys;
use super::{Store, StoreError};
use crate::document::{decode_owned, DocumentId, SignedDocument, TypeName};
use crate::notice::{sealed_ref, NOTICE_TYPE};

/// Most notices one [`Store::notices_missing_payload`] call returns.
pub const NOTICES_MISSING_MAX: usize = 1024;
/// Most index entries one [`Store::notices_missing_payload`] call reads, so a store of many
/// notices whose payloads are all held is still walked in bounded steps.
pub const PAYLOAD_SCAN_MAX: usize = 10_000;

/// One step of the walk over held notices whose sealed payload is not held.
#[derive(Debug, Clone, Default)]
pub struct MissingPayloads {
    /// Sealed notices whose payload this node does not hold, oldest issue time first.
    pub notices: Vec<SignedDocument>,
    /// Where to continue (the `after` of the next call), or `None` when the walk reached the
    /// end of the notices held.
    pub next: Option<DocumentId>,
}

impl Store {
    /// Stores the sealed payload of notice `id`, durably (fsync) before returning. The caller
    /// has checked it against the notice with `crate::notice::check_payload`; storing it again
    /// is harmless (the bytes are the same, since their hash is signed).
    pub fn put_payload(&self, id: &DocumentId, payload: &[u8]) -> Result<(), StoreError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        Ok(self.db.put_cf_opt(self.cf(keys::CF_PAYLOADS), keys::payload_key(id), payload, &wo)?)
    }

    /// The sealed payload of notice `id`, if this node holds it.
    pub fn payload(&self, id: &DocumentId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(keys::CF_PAYLOADS), keys::payload_key(id))?)
    }

    /// Whether this node holds the sealed payload of notice `id`.
    pub fn has_payload(&self, id: &DocumentId) -> Result<bool, StoreError> {
        Ok(self.db.get_pinned_cf(self.cf(keys::CF_PAYLOADS), keys::payload_key(id))?.is_some())
    }

    /// Removes a payload stored for a document that was then not committed (a publish that
    /// failed after storing its payload first).
    pub(crate) fn forget_payload(&self, id: &DocumentId) -> Result<(), StoreError> {
        Ok(self.db.delete_cf(self.cf(keys::CF_PAYLOADS), keys::payload_key(id))?)
    }

    /// Held sealed notices whose payload is not held, walking the type index from just after
    /// notice `after` (from the start when `None`): at most `max` notices (clamped to
    /// [`NOTICES_MISSING_MAX`]) and [`PAYLOAD_SCAN_MAX`] index entries per call.
    ///
    /// The walk is in issue-time order, which is the publisher's statement, so a notice that
    /// arrives later with an earlier issue time lands behind a cursor already past it: a
    /// caller that wants every notice restarts from `None` from time to time. An `after`
    /// that is not a held notice also restarts the walk from the start.
    pub fn notices_missing_payload(
        &self,
        after: Option<&DocumentId>,
        max: usize,
    ) -> Result<MissingPayloads, StoreError> {
        let max = max.clamp(1, NOTICES_MISSING_MAX);
        let ty = TypeName::new(NOTICE_TYPE).expect("the notice type name is valid");
        let prefix = keys::type_prefix(&ty);
        let start = match after.map(|id| self.notice_issued_at(id)).transpose()?.flatten() {
            Some((issued_at_ms, id)) => {
                let mut k = keys::type_key(&ty, issued_at_ms, &id);
                // The smallest key after `after`'s own: appending a byte sorts just past it.
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let iter = self.db.iterator_cf(self.cf(keys::CF_IDX_TYPE), IteratorMode::From(&start, Direction::Forward));
        let mut out = MissingPayloads::default();
        let mut last = None;
        for (scanned, item) in iter.enumerate() {
            let (k, _) = item?;
            if !k.starts_with(&prefix) {
                return Ok(out);
            }
            if scanned >= PAYLOAD_SCAN_MAX || out.notices.len() >= max {
                out.next = last;
                return Ok(out);
            }
            let (_, id) = keys::decode_type_key(&prefix, &k).ok_or_else(|| self.corrupt("type index key"))?;
            last = Some(id);
            if self.has_payload(&id)? {
                continue;
            }
            let bytes = self.get(&id)?.ok_or_else(|| self.corrupt("type index entry without document"))?;
            let doc = decode_owned(bytes).map_err(|_| self.corrupt("stored document (does not decode)"))?;
            if sealed_ref(&doc).is_some() {
                out.notices.push(doc);
            }
        }
        Ok(out)
    }

    /// The issue time and id of a held notice, for resuming a walk after it.
    fn notice_issued_at(&self, id: &DocumentId) -> Result<Option<(i64, DocumentId)>, StoreError> {
        let Some(bytes) = self.get(id)? else { return Ok(None) };
        let doc = decode_owned(bytes).map_err(|_| self.corrupt("stored document (does not decode)"))?;
        Ok((doc.header.doc_type.as_str() == NOTICE_TYPE).then_some((doc.header.issued_at_ms, *id)))
    }
}
