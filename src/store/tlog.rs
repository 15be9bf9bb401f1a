//! Each feed's transparency log in the store: the Merkle tree's nodes, written with the
//! entries they cover (`Store::commit`), checkpoints and cosignatures of tree heads this node
//! holds, the last checkpoint it cosigned per feed, and checkpoint forks (docs/PROTOCOL.md §13).
//!
//! Appending a leaf reads at most one node per level and writes at most 64; a root or a proof
//! reads O(log n) nodes. Checkpoints and cosignatures are written under the writer lock and
//! only at sizes the feed holds, so a truncation (which holds the lock) never leaves one above
//! the head.

use std::collections::HashMap;

use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

use super::keys::{self, CosignatureValue, HeadValue, WitnessedValue};
use super::write::frozen;
use super::{Store, StoreError};
use crate::document::{DocumentId, OrgId, Seq};
use crate::tlog::merkle::{self, Hash, NodeId, NodeReader, ProofError, LEVELS_MAX};

/// Cosignature entries a receipts query reads at most (in tree-size order from the document).
pub const RECEIPT_SCAN_MAX: usize = 10_000;
/// Checkpoint forks listed at most.
pub const CHECKPOINT_FORKS_MAX: usize = 1000;

/// Tree nodes written earlier in one write batch, which RocksDB cannot yet see.
pub(super) type Overlay = HashMap<(OrgId, NodeId), Hash>;

/// One feed's tree, as the store (and a batch being built) holds it.
struct TreeReader<'a> {
    store: &'a Store,
    org: &'a OrgId,
    overlay: Option<&'a Overlay>,
}

impl NodeReader for TreeReader<'_> {
    type Error = StoreError;
    fn node(&self, id: NodeId) -> Result<Hash, StoreError> {
        if let Some(h) = self.overlay.and_then(|o| o.get(&(self.org.clone(), id))) {
            return Ok(*h);
        }
        self.store.tree_node(self.org, id)?.ok_or_else(|| self.store.corrupt("transparency log node"))
    }
}

/// A recorded checkpoint fork: two publisher-signed checkpoints no history can both be part
/// of, with the evidence that shows it (docs/PROTOCOL.md §13.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFork {
    pub publisher: OrgId,
    pub size_a: u64,
    pub size_b: u64,
    /// The position the feed was frozen at when it was recorded.
    pub frozen_at: Seq,
    pub evidence: Vec<u8>,
}

impl Store {
    /// One complete subtree of `org`'s tree, if held.
    pub fn tree_node(&self, org: &OrgId, id: NodeId) -> Result<Option<Hash>, StoreError> {
        match self.db.get_pinned_cf(self.cf(keys::CF_TLOG_NODES), keys::tlog_node_key(org, id))? {
            Some(v) => Ok(Some(v.as_ref().try_into().map_err(|_| self.corrupt("transparency log node"))?)),
            None => Ok(None),
        }
    }

    /// Adds the tree nodes that appending the entry `id` at `seq` completes to `batch`.
    pub(super) fn put_leaf(
        &self,
        batch: &mut WriteBatch,
        overlay: &mut Overlay,
        org: &OrgId,
        seq: Seq,
        id: &DocumentId,
    ) -> Result<(), StoreError> {
        let reader = TreeReader { store: self, org, overlay: Some(overlay) };
        let nodes = merkle::append(&reader, seq.0 - 1, merkle::leaf_hash(&id.0))?;
        for (node, hash) in nodes {
            batch.put_cf(self.cf(keys::CF_TLOG_NODES), keys::tlog_node_key(org, node), hash);
            overlay.insert((org.clone(), node), hash);
        }
        Ok(())
    }

    /// Adds to `batch` the removal of everything of the transparency log that covers the
    /// entry at `seq`: every tree node above its leaf, the checkpoint of that size and its
    /// cosignatures, and the record of what this node cosigned (a truncated feed is witnessed
    /// afresh).
    pub(super) fn delete_tlog_at(&self, batch: &mut WriteBatch, org: &OrgId, seq: Seq) {
        let leaf = seq.0 - 1;
        for level in 0..LEVELS_MAX {
            batch.delete_cf(
                self.cf(keys::CF_TLOG_NODES),
                keys::tlog_node_key(org, NodeId { level, index: leaf >> level }),
            );
        }
        batch.delete_cf(self.cf(keys::CF_CHECKPOINTS), keys::checkpoint_key(org, seq.0));
        let from = keys::checkpoint_key(org, seq.0);
        let to = keys::checkpoint_key(org, seq.0 + 1);
        batch.delete_range_cf(self.cf(keys::CF_COSIGNATURES), &from[..], &to[..]);
        batch.delete_cf(self.cf(keys::CF_WITNESSED), keys::feed_prefix(org));
    }

    /// The root of `org`'s tree of its first `size` entries (which it must hold).
    pub fn tree_root(&self, org: &OrgId, size: u64) -> Result<Hash, StoreError> {
        merkle::root(&TreeReader { store: self, org, overlay: None }, size)
    }

    /// The audit path of entry `index` (0-based: position `index + 1`) in `org`'s tree of
    /// `size` entries.
    pub fn inclusion_proof(
        &self,
        org: &OrgId,
        index: u64,
        size: u64,
    ) -> Result<Result<Vec<Hash>, ProofError>, StoreError> {
        merkle::inclusion_proof(&TreeReader { store: self, org, overlay: None }, index, size)
    }

    /// The consistency proof between `org`'s trees of `old` and `new` entries.
    pub fn consistency_proof(
        &self,
        org: &OrgId,
        old: u64,
        new: u64,
    ) -> Result<Result<Vec<Hash>, ProofError>, StoreError> {
        merkle::consistency_proof(&TreeReader { store: self, org, overlay: None }, old, new)
    }

    /// Stores `org`'s publisher-signed checkpoint note of `size` entries, synced. Returns
    /// false (and writes nothing) when the feed holds fewer entries than `size` now.
    pub fn put_checkpoint(&self, org: &OrgId, size: u64, note: &[u8]) -> Result<bool, StoreError> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.head(org)?.is_none_or(|h| h.seq.0 < size) {
            return Ok(false);
        }
        self.put_synced(keys::CF_CHECKPOINTS, &keys::checkpoint_key(org, size), note)?;
        Ok(true)
    }

    /// `org`'s checkpoint note of `size` entries, if held (a tree head; not a backup checkpoint).
    pub fn tree_checkpoint(&self, org: &OrgId, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(keys::CF_CHECKPOINTS), keys::checkpoint_key(org, size))?)
    }

    /// `org`'s checkpoint of the smallest size at least `size`, if any (size, note).
    pub fn checkpoint_at_or_above(&self, org: &OrgId, size: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.first_checkpoint(org, &keys::checkpoint_key(org, size), Direction::Forward)
    }

    /// `org`'s largest checkpoint held (size, note).
    pub fn latest_checkpoint(&self, org: &OrgId) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.first_checkpoint(org, &keys::checkpoint_key(org, u64::MAX), Direction::Reverse)
    }

    /// The first of `org`'s checkpoints met from `from` in `direction` (size, note).
    fn first_checkpoint(
        &self,
        org: &OrgId,
        from: &[u8],
        direction: Direction,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let prefix = keys::feed_prefix(org);
        let mut iter = self.db.iterator_cf(self.cf(keys::CF_CHECKPOINTS), IteratorMode::From(from, direction));
        let Some(item) = iter.next() else { return Ok(None) };
        let (k, v) = item?;
        if !k.starts_with(&prefix) {
            return Ok(None);
        }
        let (_, seq) = keys::decode_feed_key(&k).ok_or_else(|| self.corrupt("checkpoint key"))?;
        Ok(Some((seq.0, v.into_vec())))
    }

    /// Stores a verified cosignature of `org`'s checkpoint of `size` entries by `witness`,
    /// synced; false (nothing written) when no checkpoint of that size is held.
    pub fn put_cosignature(
        &self,
        org: &OrgId,
        size: u64,
        witness: &[u8; 32],
        value: &CosignatureValue,
    ) -> Result<bool, StoreError> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.tree_checkpoint(org, size)?.is_none() {
            return Ok(false);
        }
        self.put_synced(keys::CF_COSIGNATURES, &keys::cosignature_key(org, size, witness), &value.encode())?;
        Ok(true)
    }

    /// Cosignatures of `org`'s checkpoints of at least `from_size` entries, in size order,
    /// reading at most `scan_max` entries: (size, witness key, cosignature).
    pub fn cosignatures_from(
        &self,
        org: &OrgId,
        from_size: u64,
        scan_max: usize,
    ) -> Result<Vec<(u64, [u8; 32], CosignatureValue)>, StoreError> {
        let prefix = keys::feed_prefix(org);
        let start = keys::checkpoint_key(org, from_size);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_COSIGNATURES), IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || out.len() >= scan_max {
                break;
            }
            let (_, size, witness) = keys::decode_cosignature_key(&k).ok_or_else(|| self.corrupt("cosignature key"))?;
            let value = CosignatureValue::decode(&v).ok_or_else(|| self.corrupt("cosignature"))?;
            out.push((size, witness, value));
        }
        Ok(out)
    }

    /// The cosignatures of exactly `org`'s checkpoint of `size` entries (at most `max`).
    pub fn cosignatures(
        &self,
        org: &OrgId,
        size: u64,
        max: usize,
    ) -> Result<Vec<([u8; 32], CosignatureValue)>, StoreError> {
        Ok(self
            .cosignatures_from(org, size, max)?
            .into_iter()
            .take_while(|(s, _, _)| *s == size)
            .map(|(_, w, v)| (w, v))
            .collect())
    }

    /// What this node last cosigned of `org`'s feed.
    pub fn witnessed(&self, org: &OrgId) -> Result<Option<WitnessedValue>, StoreError> {
        match self.db.get_pinned_cf(self.cf(keys::CF_WITNESSED), keys::feed_prefix(org))? {
            Some(v) => Ok(Some(WitnessedValue::decode(&v).ok_or_else(|| self.corrupt("witnessed record"))?)),
            None => Ok(None),
        }
    }

    /// Records this node's cosignature of `org`'s checkpoint (`value`) with the record of what
    /// it cosigned, in one synced write; false when the feed no longer holds that checkpoint.
    pub fn put_own_cosignature(
        &self,
        org: &OrgId,
        witness: &[u8; 32],
        value: &CosignatureValue,
        witnessed: &WitnessedValue,
    ) -> Result<bool, StoreError> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.tree_checkpoint(org, witnessed.size)?.is_none() {
            return Ok(false);
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(keys::CF_COSIGNATURES),
            keys::cosignature_key(org, witnessed.size, witness),
            value.encode(),
        );
        batch.put_cf(self.cf(keys::CF_WITNESSED), keys::feed_prefix(org), witnessed.encode());
        self.write_batch_synced(batch)?;
        Ok(true)
    }

    /// Records a checkpoint fork of `org`'s feed and freezes the feed at its head (it takes no
    /// further entry until a charter version resolves the fork), synced. Returns
    /// false when the same evidence was recorded already.
    pub fn record_checkpoint_fork(
        &self,
        org: &OrgId,
        size_a: u64,
        size_b: u64,
        evidence: &[u8],
    ) -> Result<bool, StoreError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(evidence).into();
        let key = keys::checkpoint_fork_key(org, size_a, size_b, &digest);
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.db.get_pinned_cf(self.cf(keys::CF_CHECKPOINT_FORKS), &key)?.is_some() {
            return Ok(false);
        }
        let head = self.head(org)?;
        // Frozen at its last entry: nothing past it joins the feed, and another entry at that
        // position is fork evidence (a feed holding nothing is frozen at its first position).
        let freeze = head.map_or(Seq::FIRST, |h| if h.holds_nothing() { Seq::FIRST } else { h.seq });
        let hv: HeadValue = frozen(head, freeze);
        // The position this fork freezes at, whatever earlier fork freezes the feed now.
        let mut value = freeze.0.to_be_bytes().to_vec();
        value.extend_from_slice(evidence);
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(keys::CF_CHECKPOINT_FORKS), key, value);
        batch.put_cf(self.cf(keys::CF_HEADS), keys::head_key(org), hv.encode());
        self.write_batch_synced(batch)?;
        tracing::warn!(publisher = %org, size_a, size_b, "checkpoint fork: the publisher signed two inconsistent tree heads; feed frozen");
        Ok(true)
    }

    /// Recorded checkpoint forks, of one publisher or of all, at most [`CHECKPOINT_FORKS_MAX`].
    pub fn checkpoint_forks(&self, org: Option<&OrgId>) -> Result<Vec<CheckpointFork>, StoreError> {
        let prefix = org.map(keys::feed_prefix).unwrap_or_default();
        let mut out = Vec::new();
        for item in
            self.db.iterator_cf(self.cf(keys::CF_CHECKPOINT_FORKS), IteratorMode::From(&prefix, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || out.len() >= CHECKPOINT_FORKS_MAX {
                break;
            }
            let bad = || self.corrupt("checkpoint fork");
            let (publisher, seq) =
                keys::decode_feed_key(k.get(..k.len().checked_sub(40).ok_or_else(bad)?).ok_or_else(bad)?)
                    .ok_or_else(bad)?;
            let size_b = u64::from_be_bytes(k[k.len() - 40..k.len() - 32].try_into().map_err(|_| bad())?);
            let (frozen_at, evidence) = v.split_at_checked(8).ok_or_else(bad)?;
            out.push(CheckpointFork {
                publisher,
                size_a: seq.0,
                size_b,
                frozen_at: Seq(u64::from_be_bytes(frozen_at.try_into().map_err(|_| bad())?)),
                evidence: evidence.to_vec(),
            });
        }
        Ok(out)
    }

    /// The network this store belongs to (stamped when it was created).
    pub fn network_id(&self) -> Result<[u8; 32], StoreError> {
        let v =
            self.db.get_cf(self.cf(keys::CF_META), keys::META_NETWORK_ID)?.ok_or_else(|| self.corrupt("network id"))?;
        v.as_slice().try_into().map_err(|_| self.corrupt("network id"))
    }

    fn put_synced(&self, cf: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        Ok(self.db.put_cf_opt(self.cf(cf), key, value, &wo)?)
    }

    fn write_batch_synced(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.write_heads(batch, true)
    }
}
