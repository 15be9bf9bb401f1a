//! Feed heads: read one, read all (cached until a write that may change one), and the write
//! that invalidates them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rocksdb::IteratorMode;

use super::{keys, HeadValue, Heads, Store, StoreError};
use crate::document::OrgId;

impl Store {
    /// One feed's head.
    pub fn head(&self, org: &OrgId) -> Result<Option<HeadValue>, StoreError> {
        match self.db.get_cf(self.cf(keys::CF_HEADS), keys::head_key(org))? {
            Some(v) => Ok(Some(HeadValue::decode(&v).ok_or_else(|| self.corrupt("feed head"))?)),
            None => Ok(None),
        }
    }

    /// Every feed's head, ordered by organization. A feed frozen by fork evidence before this
    /// node held any of its entries has a head at position 0 ([`HeadValue::empty`]).
    pub fn heads(&self) -> Result<Vec<(OrgId, HeadValue)>, StoreError> {
        Ok(self.heads_shared()?.as_ref().clone())
    }

    /// As [`Store::heads`], shared: read from RocksDB only after a write that may change them.
    pub fn heads_shared(&self) -> Result<Heads, StoreError> {
        // The generation is read before the heads: a write landing meanwhile bumps it after
        // its batch, so heads cached under an older generation are never served after it.
        let generation = self.heads_generation.load(Ordering::Acquire);
        if let Some((at, heads)) = self.heads_cache.lock().expect("heads cache lock").as_ref() {
            if *at == generation {
                return Ok(heads.clone());
            }
        }
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_HEADS), IteratorMode::Start) {
            let (k, v) = item?;
            let org = keys::decode_head_key(&k).ok_or_else(|| self.corrupt("feed head key"))?;
            out.push((org, HeadValue::decode(&v).ok_or_else(|| self.corrupt("feed head"))?));
        }
        let heads = Arc::new(out);
        *self.heads_cache.lock().expect("heads cache lock") = Some((generation, heads.clone()));
        Ok(heads)
    }

    /// Writes a batch that may change feed heads (every write that can), then invalidates
    /// the heads read before it.
    pub(super) fn write_heads(&self, batch: rocksdb::WriteBatch, sync: bool) -> Result<(), StoreError> {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(sync);
        let written = self.db.write_opt(batch, &wo);
        self.heads_generation.fetch_add(1, Ordering::Release);
        Ok(written?)
    }
}
