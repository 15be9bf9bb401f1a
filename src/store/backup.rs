//! Backups: a RocksDB checkpoint of the store with a manifest that describes it, and the
//! restore that checks a copy against that manifest before it replaces anything.
//!
//! A backup directory holds `store/` (the checkpoint: hard links to the live SST files where
//! the filesystem allows, copies otherwise) and `manifest.json`, written last, so a directory
//! without a manifest is an unfinished backup. The manifest is read back from the checkpoint
//! itself, not from the live store, so it describes exactly what was captured even while
//! commits continue.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rocksdb::checkpoint::Checkpoint;
use rocksdb::DB;
use serde::{Deserialize, Serialize};

use super::{keys, HeadValue, Store, StoreError, STORE_FORMAT_VERSION};
use crate::document::{DocumentId, OrgId, Seq};

/// Name of the manifest file in a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the checkpoint directory in a backup directory.
pub const CHECKPOINT_DIR: &str = "store";
/// The manifest's format tag.
pub const BACKUP_FORMAT: &str = "entrepot-backup/1";
/// Largest manifest read (heads of ~400 publishers take a few tens of KiB).
const MANIFEST_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Differences listed in a mismatch error before "and N more".
const MISMATCHES_SHOWN: usize = 10;

/// Why a backup or a restore failed. A failed restore leaves the node's store as it was.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists and is not empty; a backup goes into a new or empty directory")]
    OutNotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a usable backup manifest: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error("the backup is of network {found}, but this node is configured for network {expected}")]
    WrongNetwork { expected: String, found: String },
    #[error("the backup has store format version {found}, newer than this build's {known}; restore it with a build that knows it")]
    NewerFormat { found: u32, known: u32 },
    #[error("the node's store {path} holds {documents} document(s); give --force to replace it (it is kept beside, renamed)")]
    TargetNotEmpty { path: PathBuf, documents: u64 },
    #[error(
        "the node's store {path} cannot be opened ({source}); give --force to replace it (it is kept beside, renamed)"
    )]
    TargetUnreadable { path: PathBuf, source: StoreError },
    #[error("the restored store does not match the backup manifest, so nothing was replaced: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.to_owned(), source }
}

/// What a backup holds, written beside its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`BACKUP_FORMAT`].
    pub format: String,
    pub store_format_version: u32,
    /// Hex of the network id the store belongs to.
    pub network_id: String,
    /// When the backup was taken (RFC 3339, UTC).
    pub created_at: String,
    pub document_count: u64,
    /// Arrival number of the last stored document.
    pub last_arrival: u64,
    /// Every feed's head, ordered by publisher.
    pub heads: Vec<ManifestHead>,
}

/// One feed's head in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestHead {
    pub publisher: OrgId,
    pub seq: Seq,
    pub id: DocumentId,
    /// First forked position, when the feed is frozen by a fork.
    pub forked_at: Option<Seq>,
}

impl ManifestHead {
    fn new(publisher: OrgId, h: HeadValue) -> ManifestHead {
        ManifestHead { publisher, seq: h.seq, id: h.id, forked_at: h.forked_at }
    }
}

/// Backs up a store, open or in use by a running node, into `out` (created; must be new or
/// empty). Blocks for as long as the checkpoint and the document count take: async callers
/// (the admin endpoint `POST /v1/admin/backup`) run it with `spawn_blocking`.
pub fn backup(store: &Store, out: &Path) -> Result<Manifest, BackupError> {
    store.checkpoint(out)
}

impl Store {
    /// Writes a RocksDB checkpoint of this store to `dir/store` and its manifest to
    /// `dir/manifest.json`; `dir` must be new or empty. Commits may continue meanwhile: the
    /// checkpoint is one consistent point in time, and the manifest is read from it.
    pub fn checkpoint(&self, dir: &Path) -> Result<Manifest, BackupError> {
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(BackupError::OutNotEmpty(dir.to_owned()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            Err(e) => return Err(io(dir)(e)),
        }
        let checkpoint_dir = dir.join(CHECKPOINT_DIR);
        Checkpoint::new(&self.db).and_then(|c| c.create_checkpoint(&checkpoint_dir)).map_err(StoreError::from)?;
        let manifest = describe_checkpoint(&checkpoint_dir)?;
        write_manifest(dir, &manifest)?;
        tracing::info!(dir = %dir.display(), documents = manifest.document_count, "backup written");
        Ok(manifest)
    }

    /// This store's manifest (heads, document count, versions), as a backup of it would say.
    pub fn manifest(&self) -> Result<Manifest, StoreError> {
        let meta = self.cf(keys::CF_META);
        let network_id = self.db.get_cf(meta, keys::META_NETWORK_ID)?.ok_or_else(|| self.corrupt("network id"))?;
        let version = match self.db.get_cf(meta, keys::META_FORMAT_VERSION)? {
            Some(v) => u32::from_be_bytes(v.as_slice().try_into().map_err(|_| self.corrupt("format version"))?),
            None => return Err(self.corrupt("format version")),
        };
        let next_arrival = match self.db.get_cf(meta, keys::META_NEXT_ARRIVAL)? {
            Some(v) => u64::from_be_bytes(v.as_slice().try_into().map_err(|_| self.corrupt("arrival counter"))?),
            None => 1,
        };
        Ok(Manifest {
            format: BACKUP_FORMAT.into(),
            store_format_version: version,
            network_id: hex::encode(network_id),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            document_count: self.document_count()?,
            last_arrival: next_arrival - 1,
            heads: self.heads()?.into_iter().map(|(org, h)| ManifestHead::new(org, h)).collect(),
        })
    }
}

/// Reads the manifest of a checkpoint by opening it read-only (nothing in it changes but
/// RocksDB's own info log).
fn describe_checkpoint(path: &Path) -> Result<Manifest, StoreError> {
    let opts = rocksdb::Options::default();
    let db = DB::open_cf_for_read_only(&opts, path, keys::ALL_CFS, false)?;
    let store = Store::over(db, path);
    store.manifest()
}

/// Writes `dir/manifest.json` durably: a temporary file, synced, then renamed.
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let path = dir.join(MANIFEST_FILE);
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    let mut text = serde_json::to_string_pretty(manifest).expect("a manifest always serializes");
    text.push('\n');
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Reads and checks a backup directory's manifest.
pub fn read_manifest(backup_dir: &Path) -> Result<Manifest, BackupError> {
    let path = backup_dir.join(MANIFEST_FILE);
    let bad = |reason: String| BackupError::BadManifest { path: path.clone(), reason };
    let len = std::fs::metadata(&path).map_err(io(&path))?.len();
    if len > MANIFEST_MAX_BYTES {
        return Err(bad(format!("{len} bytes, more than {MANIFEST_MAX_BYTES}")));
    }
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if manifest.format != BACKUP_FORMAT {
        return Err(bad(format!("format '{}', expected '{BACKUP_FORMAT}'", manifest.format)));
    }
    Ok(manifest)
}

/// Compares a store with a manifest: every feed head and the document count must agree.
pub fn compare(store: &Store, manifest: &Manifest) -> Result<(), BackupError> {
    let found = store.manifest()?;
    let mut diffs = Vec::new();
    if found.network_id != manifest.network_id {
        diffs.push(format!("network id: manifest {}, store {}", manifest.network_id, found.network_id));
    }
    if found.document_count != manifest.document_count {
        diffs.push(format!("document count: manifest {}, store {}", manifest.document_count, found.document_count));
    }
    let show = |h: Option<&ManifestHead>| match h {
        Some(h) => {
            format!("#{} {}{}", h.seq, h.id, h.forked_at.map(|f| format!(" forked at #{f}")).unwrap_or_default())
        }
        None => "no feed".into(),
    };
    let mut publishers: Vec<&OrgId> = manifest.heads.iter().chain(&found.heads).map(|h| &h.publisher).collect();
    publishers.sort();
    publishers.dedup();
    for org in publishers {
        let want = manifest.heads.iter().find(|h| &h.publisher == org);
        let got = found.heads.iter().find(|h| &h.publisher == org);
        if want != got {
            diffs.push(format!("{org} head: manifest {}, store {}", show(want), show(got)));
        }
    }
    if diffs.is_empty() {
        return Ok(());
    }
    let more = diffs.len().saturating_sub(MISMATCHES_SHOWN);
    let mut text = diffs.into_iter().take(MISMATCHES_SHOWN).collect::<Vec<_>>().join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    Err(BackupError::Mismatch(text))
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// Where the store that was replaced now is (with `force`), for the operator to delete.
    pub replaced: Option<PathBuf>,
    /// Migrations the restored store needed (a backup from an older build).
    pub migrations: Vec<super::Migration>,
}

/// Restores a backup into `data_dir` for network `network_id`.
///
/// Refuses a `data_dir` holding documents (or unopenable) unless `force`, and a store in use
/// by a running node always. The checkpoint is copied beside `data_dir`, opened (migrated if
/// older) and compared with the manifest; only when it matches is it renamed into place, the
/// store it replaces kept renamed beside it. It is then reopened and compared again.
pub fn restore(
    backup_dir: &Path,
    data_dir: &Path,
    network_id: &[u8; 32],
    force: bool,
) -> Result<Restored, BackupError> {
    let manifest = read_manifest(backup_dir)?;
    if manifest.network_id != hex::encode(network_id) {
        return Err(BackupError::WrongNetwork { expected: hex::encode(network_id), found: manifest.network_id });
    }
    if manifest.store_format_version > STORE_FORMAT_VERSION {
        return Err(BackupError::NewerFormat { found: manifest.store_format_version, known: STORE_FORMAT_VERSION });
    }
    let source = backup_dir.join(CHECKPOINT_DIR);
    if !source.is_dir() {
        return Err(BackupError::BadManifest {
            path: backup_dir.join(MANIFEST_FILE),
            reason: format!("its checkpoint {} is missing", source.display()),
        });
    }
    let target_exists = data_dir.exists();
    if target_exists {
        check_target(data_dir, network_id, force)?;
    }
    let staging = sibling(data_dir, "restoring")?;
    if staging.exists() {
        // Left by an interrupted restore: it was never the node's store.
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    copy_dir(&source, &staging)?;
    let checked = Store::open(&staging, network_id).map_err(BackupError::from).and_then(|store| {
        compare(&store, &manifest)?;
        Ok(store.migrations().to_vec())
    });
    let migrations = match checked {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let replaced = if target_exists {
        let aside = sibling(data_dir, &format!("replaced-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")))?;
        std::fs::rename(data_dir, &aside).map_err(io(data_dir))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&staging, data_dir).map_err(io(data_dir))?;
    if let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    compare(&Store::open(data_dir, network_id)?, &manifest)?;
    Ok(Restored { manifest, replaced, migrations })
}

/// Refuses a target store that is in use, or holds documents (unless `force`).
fn check_target(data_dir: &Path, network_id: &[u8; 32], force: bool) -> Result<(), BackupError> {
    match Store::open(data_dir, network_id) {
        Err(e @ StoreError::Locked { .. }) => Err(e.into()),
        Err(source) if !force => Err(BackupError::TargetUnreadable { path: data_dir.to_owned(), source }),
        Err(_) => Ok(()),
        Ok(store) => {
            let documents = store.document_count()?;
            if documents > 0 && !force {
                return Err(BackupError::TargetNotEmpty { path: data_dir.to_owned(), documents });
            }
            Ok(())
        }
    }
}

/// `data_dir` with `.suffix` appended to its last component.
fn sibling(data_dir: &Path, suffix: &str) -> Result<PathBuf, BackupError> {
    let name = data_dir.file_name().ok_or_else(|| BackupError::Io {
        path: data_dir.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the data directory has no name"),
    })?;
    let mut name = name.to_os_string();
    name.push(format!(".{suffix}"));
    Ok(data_dir.with_file_name(name))
}

/// Copies a checkpoint (a flat directory of files) and syncs every file and the directory.
fn copy_dir(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let src = entry.path();
        if !entry.file_type().map_err(io(&src))?.is_file() {
            continue;
        }
        let dst = to.join(entry.file_name());
        std::fs::copy(&src, &dst).map_err(io(&src))?;
        File::open(&dst).and_then(|f| f.sync_all()).map_err(io(&dst))?;
    }
    sync_dir(to)
}
