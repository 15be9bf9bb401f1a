//! Store format migrations: a store of an older format version is brought to the current one
//! when it is opened, one version at a time, each step logged and recorded.
//!
//! Each step writes its new `format_version` in its last, synced write, so a crash during a
//! step leaves the store at the old version and the next open runs the step again from its
//! start: every step must therefore be idempotent (clear what it builds before building it).

use rocksdb::{IteratorMode, WriteBatch, WriteOptions};

use super::keys;
use super::{Store, StoreError, STORE_FORMAT_VERSION};

/// Entries written per unsynced batch while a step rebuilds an index: bounds memory on a
/// store of millions of documents.
const MIGRATE_BATCH_ENTRIES: usize = 10_000;

/// One migration step that ran.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Migration {
    pub from: u32,
    pub to: u32,
    /// What the step did, for the operator.
    pub summary: String,
}

/// A step from version `n` to `n + 1`, at index `n`.
type Step = fn(&mut Store) -> Result<String, StoreError>;

const STEPS: &[Step] = &[v0_to_v1, v1_to_v2, v2_to_v3, v3_to_v4];

/// The version a store really has, given the one it records. Development builds before the
/// arrival index recorded 1 without having the `arrivals` family: such a store is version 0,
/// and is re-stamped 0 (synced) before anything else, so that once the migration creates the
/// family, an interrupted migration is still recognized as unfinished.
pub(super) fn effective_version(store: &Store, recorded: u32) -> Result<u32, StoreError> {
    if store.db.cf_handle(keys::CF_ARRIVALS).is_some() {
        return Ok(recorded);
    }
    if recorded != 0 {
        tracing::warn!(path = %store.path.display(), recorded, "store lacks the arrivals column family: it is format version 0");
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        store.db.put_cf_opt(store.cf(keys::CF_META), keys::META_FORMAT_VERSION, 0u32.to_be_bytes(), &wo)?;
    }
    Ok(0)
}

/// Runs every step from `from` to the current version, in order.
pub(super) fn run(store: &mut Store, from: u32) -> Result<Vec<Migration>, StoreError> {
    const _: () = assert!(STEPS.len() == STORE_FORMAT_VERSION as usize, "one migration step per version");
    let mut done = Vec::new();
    for version in from..STORE_FORMAT_VERSION {
        tracing::info!(path = %store.path.display(), from = version, to = version + 1, "migrating store");
        let summary = STEPS[version as usize](store)?;
        tracing::info!(path = %store.path.display(), from = version, to = version + 1, %summary, "store migrated");
        done.push(Migration { from: version, to: version + 1, summary });
    }
    Ok(done)
}

/// 0 → 1: creates the `arrivals` family and numbers every stored document, with the
/// `next_arrival` counter after them.
///
/// The order in which this node really stored documents was never recorded, so it cannot be
/// recovered: documents are numbered feed by feed in `feeds` key order (publishers by
/// identifier length, then alphabetically), each feed in sequence order. Every feed is thus
/// in order, and each lifecycle act follows its target (a target is always earlier in the
/// same feed), which is what a consumer of the event stream relies on.
fn v0_to_v1(store: &mut Store) -> Result<String, StoreError> {
    if store.db.cf_handle(keys::CF_ARRIVALS).is_none() {
        store.db.create_cf(
            keys::CF_ARRIVALS,
            &super::family_options(keys::CF_ARRIVALS, &super::tuned_options().1, &super::StoreBudget::default()),
        )?;
    }
    let arrivals = store.cf(keys::CF_ARRIVALS);
    let mut batch = WriteBatch::default();
    // Entries from an interrupted earlier attempt.
    batch.delete_range_cf(arrivals, &keys::arrival_key(0)[..], &keys::ARRIVAL_KEY_END[..]);
    let mut next = 1u64;
    for item in store.db.iterator_cf(store.cf(keys::CF_FEEDS), IteratorMode::Start) {
        let (k, v) = item?;
        if keys::decode_feed_key(&k).is_none() || v.len() != 32 {
            return Err(store.corrupt("feed entry"));
        }
        batch.put_cf(arrivals, keys::arrival_key(next), &v);
        next += 1;
        if batch.len() >= MIGRATE_BATCH_ENTRIES {
            store.db.write(std::mem::take(&mut batch))?;
        }
    }
    batch.put_cf(store.cf(keys::CF_META), keys::META_NEXT_ARRIVAL, next.to_be_bytes());
    batch.put_cf(store.cf(keys::CF_META), keys::META_FORMAT_VERSION, 1u32.to_be_bytes());
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    store.db.write_opt(batch, &wo)?;
    Ok(format!("rebuilt the arrival index from the feeds: {} document(s) numbered 1 to {}", next - 1, next - 1))
}

/// 1 → 2: creates the empty `payloads` family (sealed payloads of enforcement notices). No
/// payload was ever stored before it existed, so there is nothing to fill: notices held
/// without their payload are found by `Store::notices_missing_payload`.
fn v1_to_v2(store: &mut Store) -> Result<String, StoreError> {
    add_empty_family(store, keys::CF_PAYLOADS, 2)?;
    Ok("created the payloads column family for sealed enforcement-notice payloads".into())
}

/// 2 → 3: creates the `fork_resolutions` family, empty: no fork could be resolved before it
/// existed. Heads at position 0 (a feed frozen by fork evidence alone) are new in version 3, so
/// nothing else changes.
fn v2_to_v3(store: &mut Store) -> Result<String, StoreError> {
    add_empty_family(store, keys::CF_FORK_RESOLUTIONS, 3)?;
    Ok("created the (empty) fork resolution family".into())
}

/// 3 → 4: creates the transparency log's families and builds every feed's Merkle tree from
/// its entries, in feed order (checkpoints, cosignatures and checkpoint forks start empty: none
/// was signed before). Idempotent: a rerun writes the same nodes again.
fn v3_to_v4(store: &mut Store) -> Result<String, StoreError> {
    for family in keys::TLOG_CFS {
        if store.db.cf_handle(family).is_none() {
            store.db.create_cf(family, &super::tuned_options().1)?;
        }
    }
    let mut batch = WriteBatch::default();
    let mut overlay = super::tlog::Overlay::new();
    let mut leaves = 0u64;
    for item in store.db.iterator_cf(store.cf(keys::CF_FEEDS), IteratorMode::Start) {
        let (k, v) = item?;
        let (org, seq) = keys::decode_feed_key(&k).ok_or_else(|| store.corrupt("feed entry"))?;
        let id = crate::document::DocumentId(v.as_ref().try_into().map_err(|_| store.corrupt("feed entry"))?);
        store.put_leaf(&mut batch, &mut overlay, &org, seq, &id)?;
        leaves += 1;
        if batch.len() >= MIGRATE_BATCH_ENTRIES {
            // Written nodes become readable; the overlay only has to bridge one batch.
            store.db.write(std::mem::take(&mut batch))?;
            overlay.clear();
        }
    }
    batch.put_cf(store.cf(keys::CF_META), keys::META_FORMAT_VERSION, 4u32.to_be_bytes());
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    store.db.write_opt(batch, &wo)?;
    Ok(format!("built the transparency log of every feed: {leaves} leaves"))
}

/// A step that only adds a column family: creates it unless an interrupted run already did,
/// then records `version` (synced), the step's last write.
fn add_empty_family(store: &mut Store, family: &str, version: u32) -> Result<(), StoreError> {
    if store.db.cf_handle(family).is_none() {
        store.db.create_cf(
            family,
            &super::family_options(family, &super::tuned_options().1, &super::StoreBudget::default()),
        )?;
    }
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    store.db.put_cf_opt(store.cf(keys::CF_META), keys::META_FORMAT_VERSION, version.to_be_bytes(), &wo)?;
    Ok(())
}
