//! The RocksDB store: documents, feeds, heads, fork evidence and indexes.
//!
//! Writes go through [`Store::commit`] only, one atomic write batch per call, serialized by a
//! lock so one writer at a time reads heads and writes them (the single-writer rule). Reads
//! never take the lock. The store knows feeds and indexes; it does not verify signatures or
//! schemas: it takes [`crate::ingest::CheckedDocument`]s, which only the ingest pipeline makes.

pub mod backup;
mod forks;
mod heads;
pub mod keys;
mod migrate;
mod payloads;
mod query;
mod tlog;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, IteratorMode, Options, DB};

use crate::document::{DocumentId, OrgId, RefKind, Seq};
pub use backup::{backup, BackupError, Manifest};
pub use forks::{ForkProof, ProofError, ProofOutcome, Resolution, TRUNCATE_BATCH_DOCS};
pub use keys::HeadValue;
pub use migrate::Migration;
pub use payloads::{MissingPayloads, NOTICES_MISSING_MAX, PAYLOAD_SCAN_MAX};
pub use query::{Order, Page, Query, QueryError, QUERY_LIMIT_MAX, QUERY_SCAN_MAX};
pub use tlog::{CheckpointFork, CHECKPOINT_FORKS_MAX, RECEIPT_SCAN_MAX};
pub use write::{Commit, FeedError, IngestOutcome, StoredEntry};

/// Store layout version written by this build. Bumped on any change to `keys.rs`, with a
/// migration step in `migrate.rs` from the version before.
pub const STORE_FORMAT_VERSION: u32 = 4;

/// Why the store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path} has format version {found}, but this build reads only version {known}; use a build that knows it")]
    UnknownFormat { path: PathBuf, found: u32, known: u32 },
    #[error(
        "store at {path} belongs to network {found}, not the configured network {expected}, and it holds \
         documents of that network, so it cannot be re-bound. Either put back the network setting it was \
         made for (`network` or `[charter] genesis_hash` in config.toml), or move {path} aside and start \
         with an empty store (a new network's documents come again from its peers)"
    )]
    WrongNetwork { path: PathBuf, expected: String, found: String },
    #[error("store at {path} has a corrupt {what}")]
    Corrupt { path: PathBuf, what: &'static str },
    #[error("store at {path} is in use by another process (a running node holds its lock); stop that process or act through it")]
    Locked { path: PathBuf },
    #[error("not a fork proof: {0}")]
    NotAForkProof(#[from] ProofError),
    #[error("RocksDB error: {0}")]
    Rocks(#[from] rocksdb::Error),
}

/// Memory the block cache may hold, shared by every column family.
pub const BLOCK_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Memory all memtables together may hold before they are flushed.
pub const WRITE_BUFFERS_BYTES: usize = 48 * 1024 * 1024;
/// One memtable's size (per column family).
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// The memory bounds of one store. [`StoreBudget::default`] is a node's; [`StoreBudget::small`]
/// is for many stores in one process (the network harness, `src/harness/`), where an idle
/// node must cost a few MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreBudget {
    /// Block cache, shared by every column family of the store.
    pub block_cache_bytes: usize,
    /// One memtable's size (per column family).
    pub write_buffer_bytes: usize,
    /// All memtables together, before they are flushed.
    pub write_buffers_bytes: usize,
    /// Files RocksDB keeps open.
    pub max_open_files: i32,
}

impl Default for StoreBudget {
    fn default() -> StoreBudget {
        StoreBudget {
            block_cache_bytes: BLOCK_CACHE_BYTES,
            write_buffer_bytes: WRITE_BUFFER_BYTES,
            write_buffers_bytes: WRITE_BUFFERS_BYTES,
            max_open_files: 512,
        }
    }
}

impl StoreBudget {
    /// A store meant to share a process with a thousand others: 1 MiB of cache, 256 KiB
    /// memtables within 2 MiB, 32 open files.
    pub fn small() -> StoreBudget {
        StoreBudget {
            block_cache_bytes: 1024 * 1024,
            write_buffer_bytes: 256 * 1024,
            write_buffers_bytes: 2 * 1024 * 1024,
            max_open_files: 32,
        }
    }
}

/// Block size of every family: a `docs` block holds about ten envelopes, so LZ4 finds the JSON
/// they share (field names, the ruling template), where RocksDB's default 4 KiB holds two.
pub const BLOCK_BYTES: usize = 16 * 1024;
/// One memtable's size in every family but `docs` (their entries are small; 4 MiB each keeps
/// idle families from holding much of the memtable budget).
pub const INDEX_WRITE_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// The options of one column family: the shared ones ([`budget_options`]), with smaller
/// memtables for every family but `docs` (never larger than the budget's). Every RocksDB
/// setting of the store is in these functions.
pub(crate) fn family_options(name: &str, shared: &Options, budget: &StoreBudget) -> Options {
    let mut cf = shared.clone();
    if name != keys::CF_DOCS {
        cf.set_write_buffer_size(INDEX_WRITE_BUFFER_BYTES.min(budget.write_buffer_bytes));
    }
    cf
}

/// RocksDB options with explicit memory bounds. RocksDB's defaults give each column family its
/// own block cache, so twelve families would each grow one; here they share one, index and
/// filter blocks are charged to it, and memtables have one budget.
pub(crate) fn tuned_options() -> (Options, Options) {
    budget_options(&StoreBudget::default())
}

fn budget_options(budget: &StoreBudget) -> (Options, Options) {
    let cache = rocksdb::Cache::new_lru_cache(budget.block_cache_bytes);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(&cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_bloom_filter(10.0, false);
    table.set_block_size(BLOCK_BYTES);
    let mut cf = Options::default();
    cf.set_block_based_table_factory(&table);
    cf.set_write_buffer_size(budget.write_buffer_bytes);
    cf.set_max_write_buffer_number(2);
    cf.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let mut db = cf.clone();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.increase_parallelism(2);
    db.set_max_background_jobs(2);
    db.set_db_write_buffer_size(budget.write_buffers_bytes);
    db.set_max_open_files(budget.max_open_files);
    db.set_keep_log_file_num(4);
    (db, cf)
}

/// What the store holds in memory, from RocksDB's own properties, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// The block cache (shared by every family): data, index and filter blocks.
    pub block_cache_bytes: u64,
    /// Of which pinned: L0 index and filter blocks, and blocks a reader holds.
    pub block_cache_pinned_bytes: u64,
    /// Every family's memtables, active and immutable (their arenas).
    pub memtables_bytes: u64,
    /// Table readers outside the block cache (with index and filter blocks in the cache,
    /// little).
    pub table_readers_bytes: u64,
}

/// One recorded fork: two validly signed entries at one feed position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForkRecord {
    pub publisher: OrgId,
    pub seq: Seq,
    /// The entry in the feed at that position, if this node holds one (it may have learned of
    /// the fork by proof, or truncated the position when the charter revoked its key).
    pub kept: Option<DocumentId>,
    /// The conflicting entry, kept only as evidence.
    pub conflicting: DocumentId,
    /// Whether a charter version left at most one entry at the position valid. The evidence
    /// stays; the feed is no longer frozen by this fork.
    pub resolved: bool,
}

/// Every feed's head, ordered by organization, shared.
pub type Heads = Arc<Vec<(OrgId, HeadValue)>>;

/// An open store.
pub struct Store {
    db: DB,
    path: PathBuf,
    /// The writer lock; it guards the next arrival number.
    write_lock: Mutex<u64>,
    /// What opening this store migrated.
    migrations: Vec<Migration>,
    /// Bumped after every write that may change a feed head ([`Store::write_heads`]).
    heads_generation: AtomicU64,
    /// Every feed's head as read at a generation: a node sends them in every status (many a
    /// second), and reading them from RocksDB each time was a tenth of an idle node's CPU.
    heads_cache: Mutex<Option<(u64, Heads)>>,
}

impl StoreError {
    /// Names the usual reason RocksDB cannot open a store: another process holds its lock.
    fn from_open(path: &Path, e: rocksdb::Error) -> StoreError {
        // RocksDB reports a held lock only in its message ("While lock file: …/LOCK: Resource
        // temporarily unavailable" from another process, "lock hold by current process" from
        // this one); its error kind is a generic I/O error.
        let message = e.as_ref();
        if message.contains("lock file") || message.contains("lock hold by current process") {
            StoreError::Locked { path: path.to_owned() }
        } else {
            StoreError::Rocks(e)
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `path` for the network `network_id`, migrating a store
    /// of an older format version step by step (see [`Store::migrations`]) and refusing one
    /// of a newer version.
    pub fn open(path: &Path, network_id: &[u8; 32]) -> Result<Store, StoreError> {
        Store::open_with(path, network_id, &StoreBudget::default())
    }

    /// [`Store::open`] within another memory budget.
    pub fn open_with(path: &Path, network_id: &[u8; 32], budget: &StoreBudget) -> Result<Store, StoreError> {
        let (opts, cf_opts) = budget_options(budget);
        // Open exactly the column families an existing store has: a store from a newer build
        // (with families this build does not know) must open far enough to be refused with a
        // clear message, and a version 0 store (without `arrivals`) must not gain the family
        // before its migration runs, or an interrupted migration would look finished.
        let (names, created): (Vec<String>, bool) = match DB::list_cf(&opts, path) {
            Ok(existing) => {
                (existing.into_iter().filter(|n| n != rocksdb::DEFAULT_COLUMN_FAMILY_NAME).collect(), false)
            }
            Err(_) => (keys::ALL_CFS.iter().map(|n| n.to_string()).collect(), true),
        };
        let open = || {
            let cfs =
                names.iter().map(|name| ColumnFamilyDescriptor::new(name, family_options(name, &cf_opts, budget)));
            DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| StoreError::from_open(path, e))
        };
        let mut db = open()?;
        if created {
            // RocksDB keeps the directory open once for each family it creates, and once for
            // all the families it opens: a new store reopened holds 1 descriptor, not 20
            // (a thousand nodes in one process, bench network, ran out of descriptors).
            drop(db);
            db = open()?;
        }
        let mut store = Store::over(db, path);
        // The version first (it needs only `meta`), so that a newer store is refused as such
        // whatever families it has; then only the families later versions added may be missing
        // (their migration steps create them): `arrivals` (1), `payloads` (2), `fork_resolutions` (3),
        // the transparency log's families (4).
        let version = store.check_meta(network_id)?;
        let later: Vec<&str> = [keys::CF_ARRIVALS, keys::CF_PAYLOADS, keys::CF_FORK_RESOLUTIONS]
            .into_iter()
            .chain(keys::TLOG_CFS.iter().copied())
            .collect();
        store.require_column_families(&later)?;
        if version < STORE_FORMAT_VERSION {
            store.migrations = migrate::run(&mut store, version)?;
            // Migrations write around the heads cache.
            *store.heads_cache.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        }
        store.require_column_families(&[])?;
        let next_arrival = match store.db.get_cf(store.cf(keys::CF_META), keys::META_NEXT_ARRIVAL)? {
            Some(v) => u64::from_be_bytes(v.as_slice().try_into().map_err(|_| store.corrupt("arrival counter"))?),
            None => 1,
        };
        *store.write_lock.get_mut().unwrap_or_else(|p| p.into_inner()) = next_arrival;
        Ok(store)
    }

    /// A store over an open database, before its metadata is checked.
    fn over(db: DB, path: &Path) -> Store {
        Store {
            db,
            path: path.to_owned(),
            write_lock: Mutex::new(1),
            migrations: Vec::new(),
            heads_generation: AtomicU64::new(0),
            heads_cache: Mutex::new(None),
        }
    }

    /// Fails when a column family of this build's layout is missing, except those in `except`.
    fn require_column_families(&self, except: &[&str]) -> Result<(), StoreError> {
        match keys::ALL_CFS.iter().find(|n| !except.contains(n) && self.db.cf_handle(n).is_none()) {
            Some(missing) => {
                tracing::error!(path = %self.path.display(), column_family = missing, "store lacks a column family");
                Err(self.corrupt("set of column families (one is missing)"))
            }
            None => Ok(()),
        }
    }

    /// Migrations applied when this store was opened, oldest first (empty when it was current).
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// Checks the format version and network id, stamping a new store; returns the store's
    /// effective format version.
    fn check_meta(&self, network_id: &[u8; 32]) -> Result<u32, StoreError> {
        let meta = self.db.cf_handle(keys::CF_META).ok_or_else(|| self.corrupt("set of column families (no meta)"))?;
        let recorded = match self.db.get_cf(meta, keys::META_FORMAT_VERSION)? {
            Some(v) => Some(u32::from_be_bytes(v.as_slice().try_into().map_err(|_| self.corrupt("format version"))?)),
            None => None,
        };
        let Some(found) = recorded else {
            // A new store. A store holding documents but no version is not one we wrote.
            let docs = self.db.cf_handle(keys::CF_DOCS);
            if docs.is_none_or(|docs| self.db.iterator_cf(docs, IteratorMode::Start).next().is_some()) {
                return Err(self.corrupt("format version (missing in a store that is not new)"));
            }
            let mut batch = rocksdb::WriteBatch::default();
            batch.put_cf(meta, keys::META_FORMAT_VERSION, STORE_FORMAT_VERSION.to_be_bytes());
            batch.put_cf(meta, keys::META_NETWORK_ID, network_id);
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            self.db.write_opt(batch, &wo)?;
            return Ok(STORE_FORMAT_VERSION);
        };
        if found > STORE_FORMAT_VERSION {
            return Err(StoreError::UnknownFormat { path: self.path.clone(), found, known: STORE_FORMAT_VERSION });
        }
        let stored_network = self.db.get_cf(meta, keys::META_NETWORK_ID)?.ok_or_else(|| self.corrupt("network id"))?;
        if stored_network.as_slice() != network_id && self.holds_nothing()? {
            // Nothing in it was signed for the old network, so nothing is lost by re-binding it:
            // a node made with `init` and then pinned to a charter (whose genesis names the
            // key `init` made) starts on the charter network.
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            self.db.put_cf_opt(meta, keys::META_NETWORK_ID, network_id, &wo)?;
            tracing::info!(
                path = %self.path.display(),
                from = %hex::encode(&stored_network),
                to = %hex::encode(network_id),
                "the store held nothing yet: re-bound to the configured network"
            );
        } else if stored_network.as_slice() != network_id {
            return Err(StoreError::WrongNetwork {
                path: self.path.clone(),
                expected: hex::encode(network_id),
                found: hex::encode(stored_network),
            });
        }
        migrate::effective_version(self, found)
    }

    /// Whether every family but `meta` is empty: no document, index, fork or checkpoint.
    fn holds_nothing(&self) -> Result<bool, StoreError> {
        for name in keys::ALL_CFS.iter().filter(|n| **n != keys::CF_META) {
            if let Some(cf) = self.db.cf_handle(name) {
                if self.db.iterator_cf(cf, IteratorMode::Start).next().transpose()?.is_some() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn corrupt(&self, what: &'static str) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), what }
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("every column family is opened in Store::open")
    }

    /// Flushes every memtable and waits, at most `timeout`, for the compactions that follow
    /// to finish: what a store settles to when writes stop (the benchmarks measure a replica
    /// at rest after it). Nothing about the data changes.
    pub fn settle(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        let mut options = rocksdb::WaitForCompactOptions::default();
        options.set_flush(true);
        options.set_timeout(u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX).max(1));
        Ok(self.db.wait_for_compact(&options)?)
    }

    /// What RocksDB holds in memory now (for the benchmarks and status).
    pub fn memory(&self) -> MemoryUse {
        let property = |cf: &str, name: &str| self.db.property_int_value_cf(self.cf(cf), name).ok().flatten();
        let sum = |name: &str| keys::ALL_CFS.iter().map(|cf| property(cf, name).unwrap_or(0)).sum();
        MemoryUse {
            // One cache for every family: any family reads the same figure.
            block_cache_bytes: property(keys::CF_DOCS, "rocksdb.block-cache-usage").unwrap_or(0),
            block_cache_pinned_bytes: property(keys::CF_DOCS, "rocksdb.block-cache-pinned-usage").unwrap_or(0),
            memtables_bytes: sum("rocksdb.size-all-mem-tables"),
            table_readers_bytes: sum("rocksdb.estimate-table-readers-mem"),
        }
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A document's envelope by id.
    pub fn get(&self, id: &DocumentId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(keys::CF_DOCS), id.0)?)
    }

    /// A held document's header, decoded without copying the envelope or hashing it.
    pub fn header(&self, id: &DocumentId) -> Result<Option<crate::document::Header>, StoreError> {
        match self.db.get_pinned_cf(self.cf(keys::CF_DOCS), id.0)? {
            Some(bytes) => Ok(Some(
                crate::document::decode_header(&bytes)
                    .map_err(|_| self.corrupt("stored document (does not decode)"))?,
            )),
            None => Ok(None),
        }
    }

    /// Whether a document is stored.
    pub fn contains(&self, id: &DocumentId) -> Result<bool, StoreError> {
        Ok(self.db.get_pinned_cf(self.cf(keys::CF_DOCS), id.0)?.is_some())
    }

    /// The id at one feed position.
    pub fn feed_entry(&self, org: &OrgId, seq: Seq) -> Result<Option<DocumentId>, StoreError> {
        match self.db.get_cf(self.cf(keys::CF_FEEDS), keys::feed_key(org, seq))? {
            Some(v) => Ok(Some(DocumentId(v.as_slice().try_into().map_err(|_| self.corrupt("feed entry"))?))),
            None => Ok(None),
        }
    }

    /// Envelopes of one feed from `from` on, in order, stopping at `count_max` documents or
    /// before exceeding `bytes_max` (at least one document is returned if any exists).
    pub fn feed_range(
        &self,
        org: &OrgId,
        from: Seq,
        count_max: usize,
        bytes_max: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = keys::feed_prefix(org);
        let start = keys::feed_key(org, from);
        let iter =
            self.db.iterator_cf(self.cf(keys::CF_FEEDS), IteratorMode::From(&start, rocksdb::Direction::Forward));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || out.len() >= count_max {
                break;
            }
            let id = DocumentId(v.as_ref().try_into().map_err(|_| self.corrupt("feed entry"))?);
            let doc = self.get(&id)?.ok_or_else(|| self.corrupt("feed entry without document"))?;
            if !out.is_empty() && bytes + doc.len() > bytes_max {
                break;
            }
            bytes += doc.len();
            out.push(doc);
        }
        Ok(out)
    }

    /// Every recorded fork, one record per conflicting entry, in publisher and position order.
    pub fn forks(&self) -> Result<Vec<ForkRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_FORKS), IteratorMode::Start) {
            let (k, _) = item?;
            let (publisher, seq, conflicting) = keys::decode_fork_key(&k).ok_or_else(|| self.corrupt("fork key"))?;
            let kept = self.feed_entry(&publisher, seq)?;
            if kept == Some(conflicting) {
                continue; // the copy of an entry that took the position after a resolution
            }
            let resolved = self.is_resolved(&publisher, seq)?;
            out.push(ForkRecord { publisher, seq, kept, conflicting, resolved });
        }
        Ok(out)
    }

    /// Whether the fork at a position was resolved by a charter version.
    fn is_resolved(&self, org: &OrgId, seq: Seq) -> Result<bool, StoreError> {
        Ok(self.db.get_pinned_cf(self.cf(keys::CF_FORK_RESOLUTIONS), keys::resolution_key(org, seq))?.is_some())
    }

    /// The conflicting envelope recorded for a fork.
    pub fn fork_evidence(&self, org: &OrgId, seq: Seq, id: &DocumentId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(keys::CF_FORKS), keys::fork_key(org, seq, id))?)
    }

    /// Documents that refer to `target`, with how.
    pub fn referrers(&self, target: &DocumentId) -> Result<Vec<(RefKind, DocumentId)>, StoreError> {
        let mut out = Vec::new();
        let iter = self.db.prefix_iterator_cf(self.cf(keys::CF_IDX_REFS), target.0);
        for item in iter {
            let (k, _) = item?;
            if !k.starts_with(&target.0) {
                break;
            }
            let (_, kind, source) = keys::decode_refs_key(&k).ok_or_else(|| self.corrupt("reference key"))?;
            out.push((kind, source));
        }
        Ok(out)
    }

    /// Documents stored after arrival number `after`, in arrival order, at most `limit`.
    pub fn arrivals_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, DocumentId)>, StoreError> {
        let start = keys::arrival_key(after.saturating_add(1));
        let iter =
            self.db.iterator_cf(self.cf(keys::CF_ARRIVALS), IteratorMode::From(&start, rocksdb::Direction::Forward));
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let (k, v) = item?;
            let n = keys::decode_arrival_key(&k).ok_or_else(|| self.corrupt("arrival key"))?;
            out.push((n, DocumentId(v.as_ref().try_into().map_err(|_| self.corrupt("arrival entry"))?)));
        }
        Ok(out)
    }

    /// The arrival number of the latest stored document (0 when empty).
    pub fn last_arrival(&self) -> u64 {
        *self.write_lock.lock().unwrap_or_else(|p| p.into_inner()) - 1
    }

    /// Number of documents stored (exact; walks the `docs` keys, so meant for status and tests).
    pub fn document_count(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        let mut iter = self.db.raw_iterator_cf(self.cf(keys::CF_DOCS));
        iter.seek_to_first();
        while iter.valid() {
            n += 1;
            iter.next();
        }
        iter.status()?;
        Ok(n)
    }

    /// Every stored envelope, in id order (for export).
    pub fn all_documents(&self) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + '_ {
        self.db.iterator_cf(self.cf(keys::CF_DOCS), IteratorMode::Start).map(|item| Ok(item?.1.into_vec()))
    }

    /// Approximate bytes the store holds, for status and metrics: the SST files the current
    /// version of each column family references, plus what its memtables hold and no SST yet
    /// does.
    ///
    /// Why these two properties: `rocksdb.total-sst-files-size` alone (what this read before)
    /// is 0 until the first flush, and a node's write buffers (64 MiB) hold thousands of
    /// documents, so a node holding 1,550 of them read 0. `live-sst-files-size` leaves out
    /// files a compaction has replaced but not deleted yet, which would count the same data
    /// twice; `cur-size-all-mem-tables` is the active and unflushed immutable memtables
    /// (their arena size, close to the bytes of the WAL that backs them until a flush).
    pub fn disk_bytes(&self) -> u64 {
        let property = |cf: &str, name: &str| self.db.property_int_value_cf(self.cf(cf), name).ok().flatten();
        keys::ALL_CFS
            .iter()
            .map(|cf| {
                property(cf, "rocksdb.live-sst-files-size").unwrap_or(0)
                    + property(cf, "rocksdb.cur-size-all-mem-tables").unwrap_or(0)
            })
            .sum()
    }
}
