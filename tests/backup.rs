//! Backup, restore and store upgrades: a checkpoint taken while the store takes writes, a
//! restore checked against its manifest, a store from a newer build refused untouched, and
//! stores of older versions (0: before the arrival index; 1: before sealed payloads) migrated
//! on open.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use entrepot::document::{DocumentId, Seq};
use entrepot::ingest::Ingestor;
use entrepot::store::backup::{read_manifest, restore, BackupError, MANIFEST_FILE};
use entrepot::store::keys;
use entrepot::store::{backup, IngestOutcome, Store, StoreError, STORE_FORMAT_VERSION};

/// Stores `n` WCO and `n` WTO opinions, interleaved, continuing both feeds from `from`.
fn publish_both(store: &Store, from: usize, n: usize) {
    let (wco, wto) = (key(1), key(2));
    let ring = keyring(&[("WCO", &wco), ("WTO", &wto)]);
    let ing = Ingestor { store, network_id: net(), keyring: &ring, sync: true };
    let a = feed(&(0..from + n).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(), "WCO", &wco);
    let b = feed(&(0..from + n).map(|i| opinion(i, "2404.11")).collect::<Vec<_>>(), "WTO", &wto);
    for i in from..from + n {
        let r = ing.ingest(vec![a[i].clone(), b[i].clone()]).unwrap();
        assert!(r.iter().all(|r| matches!(r, Ok(IngestOutcome::Stored))), "{r:?}");
    }
}

fn heads(store: &Store) -> Vec<(String, u64)> {
    store.heads().unwrap().into_iter().map(|(o, h)| (o.to_string(), h.seq.0)).collect()
}

#[test]
fn a_backup_taken_while_writes_continue_restores_to_exactly_its_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("db"), &net()).unwrap();
    publish_both(&store, 0, 5);
    let out = tmp.path().join("backup");
    let manifest = backup(&store, &out).unwrap();
    assert_eq!(manifest.document_count, 10);
    assert_eq!(manifest.last_arrival, 10);
    assert_eq!(manifest.store_format_version, STORE_FORMAT_VERSION);
    assert_eq!(manifest.network_id, hex::encode(net()));
    assert_eq!(manifest.heads.iter().map(|h| (h.publisher.to_string(), h.seq.0)).collect::<Vec<_>>(), heads(&store));
    assert_eq!(read_manifest(&out).unwrap(), manifest);
    // The live store moves on; the backup does not.
    publish_both(&store, 5, 3);
    assert_eq!(store.document_count().unwrap(), 16);

    let target = tmp.path().join("restored").join("db");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let restored = restore(&out, &target, &net(), false).unwrap();
    assert!(restored.replaced.is_none() && restored.migrations.is_empty());
    let copy = Store::open(&target, &net()).unwrap();
    assert_eq!(copy.document_count().unwrap(), 10);
    assert_eq!(heads(&copy), vec![("WCO".into(), 5), ("WTO".into(), 5)]);
    assert_eq!(copy.last_arrival(), 10);
    assert_eq!(read_manifest(&out).unwrap(), manifest, "restoring leaves the backup as it was");

    // A backup never goes into a directory that holds something.
    assert!(matches!(backup(&store, &out), Err(BackupError::OutNotEmpty(_))));
}

#[test]
fn restore_refuses_a_store_with_documents_unless_forced_and_keeps_the_replaced_one() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("db");
    let out = tmp.path().join("backup");
    {
        let store = Store::open(&live, &net()).unwrap();
        publish_both(&store, 0, 2);
        backup(&store, &out).unwrap();
        publish_both(&store, 2, 2);
    }
    let err = restore(&out, &live, &net(), false).unwrap_err();
    assert!(matches!(err, BackupError::TargetNotEmpty { documents: 8, .. }), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(Store::open(&live, &net()).unwrap().document_count().unwrap(), 8, "refusal changes nothing");

    let restored = restore(&out, &live, &net(), true).unwrap();
    let aside = restored.replaced.expect("the replaced store is kept");
    assert_eq!(Store::open(&aside, &net()).unwrap().document_count().unwrap(), 8);
    assert_eq!(Store::open(&live, &net()).unwrap().document_count().unwrap(), 4);
}

#[test]
fn a_restore_that_does_not_match_its_manifest_fails_loudly_and_replaces_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("backup");
    {
        let store = Store::open(&tmp.path().join("db"), &net()).unwrap();
        publish_both(&store, 0, 3);
        backup(&store, &out).unwrap();
    }
    let manifest_path = out.join(MANIFEST_FILE);
    let original = std::fs::read_to_string(&manifest_path).unwrap();
    let target = tmp.path().join("target");

    std::fs::write(&manifest_path, original.replace("\"document_count\": 6", "\"document_count\": 7")).unwrap();
    let err = restore(&out, &target, &net(), false).unwrap_err().to_string();
    assert!(err.contains("document count: manifest 7, store 6"), "{err}");
    assert!(!target.exists(), "nothing was put in place");

    std::fs::write(&manifest_path, original.replace("\"seq\": 3", "\"seq\": 4")).unwrap();
    let err = restore(&out, &target, &net(), false).unwrap_err().to_string();
    assert!(err.contains("WCO head: manifest #4"), "{err}");
    assert!(!target.exists());
    assert!(!tmp.path().join("target.restoring").exists(), "the staging copy is cleaned up");

    std::fs::write(&manifest_path, &original).unwrap();
    let err = restore(&out, &target, &entrepot::config::network_id("other-net"), false).unwrap_err();
    assert!(matches!(err, BackupError::WrongNetwork { .. }), "{err}");
    std::fs::write(&manifest_path, "{ not json").unwrap();
    assert!(matches!(restore(&out, &target, &net(), false), Err(BackupError::BadManifest { .. })));
    assert!(!target.exists());
}

/// Opens a store with plain RocksDB and every column family it has.
fn raw(path: &Path) -> rocksdb::DB {
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).unwrap();
    rocksdb::DB::open_cf(&rocksdb::Options::default(), path, cfs).unwrap()
}

fn recorded_version(path: &Path) -> u32 {
    let db = raw(path);
    let v = db.get_cf(db.cf_handle(keys::CF_META).unwrap(), keys::META_FORMAT_VERSION).unwrap().unwrap();
    u32::from_be_bytes(v.as_slice().try_into().unwrap())
}

#[test]
fn a_store_from_a_newer_build_is_refused_clearly_and_left_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    publish_both(&Store::open(&path, &net()).unwrap(), 0, 1);
    {
        // A later build: one more version, one more column family, one fewer.
        let mut db = raw(&path);
        db.create_cf("future_index", &rocksdb::Options::default()).unwrap();
        db.drop_cf(keys::CF_IDX_REFS).unwrap();
        let meta = db.cf_handle(keys::CF_META).unwrap();
        db.put_cf(meta, keys::META_FORMAT_VERSION, (STORE_FORMAT_VERSION + 1).to_be_bytes()).unwrap();
    }
    let err = Store::open(&path, &net()).err().expect("a newer store is refused");
    assert!(matches!(err, StoreError::UnknownFormat { found, .. } if found == STORE_FORMAT_VERSION + 1), "{err}");
    assert!(err.to_string().contains(&format!("format version {}", STORE_FORMAT_VERSION + 1)), "{err}");
    assert_eq!(recorded_version(&path), STORE_FORMAT_VERSION + 1);
}

/// Turns a current store into what the builds before sealed payloads wrote: no `payloads`
/// and no `fork_resolutions` family, format version 1.
fn make_v1(path: &Path) {
    let mut db = raw(path);
    db.drop_cf(keys::CF_PAYLOADS).unwrap();
    db.drop_cf(keys::CF_FORK_RESOLUTIONS).unwrap();
    let meta = db.cf_handle(keys::CF_META).unwrap();
    db.put_cf(meta, keys::META_FORMAT_VERSION, 1u32.to_be_bytes()).unwrap();
}

/// Turns a current store into what the builds before fork resolutions wrote: format version
/// 2, without the `fork_resolutions` family.
fn make_v2(path: &Path) {
    let mut db = raw(path);
    db.drop_cf(keys::CF_FORK_RESOLUTIONS).unwrap();
    let meta = db.cf_handle(keys::CF_META).unwrap();
    db.put_cf(meta, keys::META_FORMAT_VERSION, 2u32.to_be_bytes()).unwrap();
}

/// Turns a current store into what the builds before the arrival index wrote: no `arrivals`
/// family, no `next_arrival` counter, and `recorded` as its format version (those builds
/// wrote 1; an honest version 0 store says 0).
fn make_v0(path: &Path, recorded: u32) {
    make_v1(path);
    let mut db = raw(path);
    db.drop_cf(keys::CF_ARRIVALS).unwrap();
    let meta = db.cf_handle(keys::CF_META).unwrap();
    db.delete_cf(meta, keys::META_NEXT_ARRIVAL).unwrap();
    db.put_cf(meta, keys::META_FORMAT_VERSION, recorded.to_be_bytes()).unwrap();
}

fn assert_arrivals_rebuilt(store: &Store, total: u64) {
    let arrivals = store.arrivals_after(0, 1000).unwrap();
    assert_eq!(arrivals.iter().map(|(n, _)| *n).collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>());
    // Each feed appears whole and in sequence order.
    for org in ["WCO", "WTO"] {
        let feed: Vec<DocumentId> =
            (1..=total / 2).map(|s| store.feed_entry(&common::org(org), Seq(s)).unwrap().unwrap()).collect();
        let seen: Vec<DocumentId> = arrivals.iter().map(|(_, id)| *id).filter(|id| feed.contains(id)).collect();
        assert_eq!(seen, feed, "{org} feed in order");
    }
    assert_eq!(store.last_arrival(), total);
}

#[test]
fn a_version_0_store_is_migrated_on_open_and_then_works_as_a_current_one() {
    for recorded in [0, 1] {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db");
        publish_both(&Store::open(&path, &net()).unwrap(), 0, 4);
        make_v0(&path, recorded);

        let store = Store::open(&path, &net()).unwrap();
        let m = store.migrations();
        assert_eq!(
            m.iter().map(|m| (m.from, m.to)).collect::<Vec<_>>(),
            [(0, 1), (1, 2), (2, 3), (3, 4)],
            "recorded {recorded}"
        );
        assert!(m[0].summary.contains("8 document(s)"), "{}", m[0].summary);
        assert_arrivals_rebuilt(&store, 8);
        publish_both(&store, 4, 1);
        assert_eq!(store.arrivals_after(8, 10).unwrap().iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![9, 10]);
        drop(store);

        let again = Store::open(&path, &net()).unwrap();
        assert!(again.migrations().is_empty(), "a migrated store is current");
        drop(again);
        assert_eq!(recorded_version(&path), STORE_FORMAT_VERSION);
    }
}

#[test]
fn an_interrupted_migration_runs_again_from_its_start() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    publish_both(&Store::open(&path, &net()).unwrap(), 0, 3);
    make_v0(&path, 0);
    {
        // The step created the family and wrote part of (here: wrong) entries, then crashed.
        let mut db = raw(&path);
        db.create_cf(keys::CF_ARRIVALS, &rocksdb::Options::default()).unwrap();
        let cf = db.cf_handle(keys::CF_ARRIVALS).unwrap();
        db.put_cf(cf, keys::arrival_key(1), [7u8; 32]).unwrap();
        db.put_cf(cf, keys::arrival_key(99), [7u8; 32]).unwrap();
    }
    let store = Store::open(&path, &net()).unwrap();
    assert_eq!(store.migrations().len(), STORE_FORMAT_VERSION as usize, "every step from version 0");
    assert_arrivals_rebuilt(&store, 6);
}

#[test]
fn a_version_1_store_gains_the_payloads_family_and_keeps_everything_else() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    publish_both(&Store::open(&path, &net()).unwrap(), 0, 3);
    make_v1(&path);
    {
        // Interrupted after creating the family, before recording version 2: runs again.
        let mut db = raw(&path);
        db.create_cf(keys::CF_PAYLOADS, &rocksdb::Options::default()).unwrap();
    }
    let store = Store::open(&path, &net()).unwrap();
    let m = store.migrations();
    assert_eq!(m.iter().map(|m| (m.from, m.to)).collect::<Vec<_>>(), [(1, 2), (2, 3), (3, 4)]);
    assert!(m[0].summary.contains("payloads"), "{}", m[0].summary);
    assert_eq!(heads(&store), vec![("WCO".into(), 3), ("WTO".into(), 3)]);
    assert_eq!(store.last_arrival(), 6);
    let id = store.feed_entry(&org("WCO"), Seq(1)).unwrap().unwrap();
    store.put_payload(&id, b"{}").unwrap();
    assert_eq!(store.payload(&id).unwrap().as_deref(), Some(&b"{}"[..]));
    drop(store);
    assert_eq!(recorded_version(&path), STORE_FORMAT_VERSION);
    assert!(Store::open(&path, &net()).unwrap().migrations().is_empty());
}

#[test]
fn a_version_2_store_gains_the_fork_resolution_family_and_keeps_its_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    publish_both(&Store::open(&path, &net()).unwrap(), 0, 2);
    make_v2(&path);
    let store = Store::open(&path, &net()).unwrap();
    let m = store.migrations();
    assert_eq!(m.iter().map(|m| (m.from, m.to)).collect::<Vec<_>>(), vec![(2, 3), (3, 4)]);
    assert_eq!(store.document_count().unwrap(), 4);
    assert_eq!(store.forks().unwrap(), vec![]);
    publish_both(&store, 2, 1);
    assert_eq!(store.document_count().unwrap(), 6);
    drop(store);
    assert!(Store::open(&path, &net()).unwrap().migrations().is_empty());
    assert_eq!(recorded_version(&path), STORE_FORMAT_VERSION);
    assert!(raw(&path).cf_handle(keys::CF_FORK_RESOLUTIONS).is_some());
}

#[test]
fn a_restore_of_a_version_0_backup_is_migrated_and_still_matches_its_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("backup");
    {
        let store = Store::open(&tmp.path().join("db"), &net()).unwrap();
        publish_both(&store, 0, 2);
        backup(&store, &out).unwrap();
    }
    make_v0(&out.join("store"), 1);
    let target = tmp.path().join("target");
    let restored = restore(&out, &target, &net(), false).unwrap();
    assert_eq!(restored.migrations.len(), STORE_FORMAT_VERSION as usize, "every step from version 0");
    assert_arrivals_rebuilt(&Store::open(&target, &net()).unwrap(), 4);
}

fn entrepot(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin()).arg("--dir").arg(dir).args(args).output().unwrap()
}

#[test]
fn the_command_line_backs_up_a_stopped_node_and_names_the_admin_endpoint_for_a_running_one() {
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("wco");
    assert!(entrepot(&node, &["init", "--org", "WCO", "--network", NETWORK]).status.success());
    publish_both(&Store::open(&node.join("db"), &net()).unwrap(), 0, 2);
    let out = tmp.path().join("backup");
    let o = entrepot(&node, &["backup", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 document(s), 2 feed(s)"));

    // A "running node": this process holds the store's lock.
    let held = Store::open(&node.join("db"), &net()).unwrap();
    let o = entrepot(&node, &["backup", "--out", tmp.path().join("b2").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr.contains("the node is running") && stderr.contains("POST") && stderr.contains("/v1/admin/backup"),
        "{stderr}"
    );
    assert!(!tmp.path().join("b2").exists());
    let o = entrepot(&node, &["restore", "--from", out.to_str().unwrap(), "--force"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("stop it first"), "{}", String::from_utf8_lossy(&o.stderr));
    drop(held);

    // Into a freshly initialized replica of the same network: its store is empty, no --force.
    let replica = tmp.path().join("replica");
    assert!(entrepot(&replica, &["init", "--replica", "--network", NETWORK]).status.success());
    let o = entrepot(&replica, &["restore", "--from", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("match the manifest"));
    assert_eq!(entrepot(&replica, &["heads"]).stdout, entrepot(&node, &["heads"]).stdout);
}

/// A store written before HS index entries carried the document's issue time (their value was
/// empty) answers an HS query in issue order as a current one does, and a filtered one too:
/// the query reads the header of an entry without a time. Documents stored afterwards carry it.
#[test]
fn hs_index_entries_of_an_older_store_without_issue_times_still_rank_newest_first() {
    use entrepot::document::{Edition, OrgId};
    use entrepot::store::Query;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let (wco, wto) = (key(1), key(2));
    let ring = keyring(&[("WCO", &wco), ("WTO", &wto)]);
    let a = feed(&(0..8).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(), "WCO", &wco);
    let b = feed(&(0..8).map(|i| opinion(i, "8806.10")).collect::<Vec<_>>(), "WTO", &wto);
    let store_range = |store: &Store, from: usize, to: usize| {
        let ing = Ingestor { store, network_id: net(), keyring: &ring, sync: true };
        for i in from..to {
            let r = ing.ingest(vec![a[i].clone(), b[i].clone()]).unwrap();
            assert!(r.iter().all(|r| matches!(r, Ok(IngestOutcome::Stored))), "{r:?}");
        }
    };
    let hs = |publisher: Option<&str>| Query {
        hs: Some((Edition::parse("HS2022").unwrap(), "8806".into())),
        publisher: publisher.map(|p| OrgId::new(p).unwrap()),
        limit: 100,
        ..Default::default()
    };
    let (all_before, wto_before) = {
        let store = Store::open(&path, &net()).unwrap();
        store_range(&store, 0, 6);
        (store.query(&hs(None)).unwrap().ids, store.query(&hs(Some("WTO"))).unwrap().ids)
    };
    assert_eq!((all_before.len(), wto_before.len()), (12, 6));
    {
        let db = raw(&path);
        let cf = db.cf_handle(keys::CF_IDX_HS).unwrap();
        let entries: Vec<Box<[u8]>> =
            db.iterator_cf(cf, rocksdb::IteratorMode::Start).map(|kv| kv.unwrap().0).collect();
        assert_eq!(entries.len(), 12);
        for k in entries {
            db.put_cf(cf, k, []).unwrap();
        }
    }
    let store = Store::open(&path, &net()).unwrap();
    assert_eq!(store.query(&hs(None)).unwrap().ids, all_before);
    assert_eq!(store.query(&hs(Some("WTO"))).unwrap().ids, wto_before);
    // Newer documents, stored with their times, come before the old entries, which keep their order.
    store_range(&store, 6, 8);
    let all_after = store.query(&hs(None)).unwrap().ids;
    assert_eq!(all_after.len(), 16);
    assert_eq!(&all_after[4..], &all_before[..]);
    let newer: Vec<DocumentId> = (6..8).flat_map(|i| [&a[i], &b[i]]).map(|d| DocumentId::of_envelope(d)).collect();
    assert!(all_after[..4].iter().all(|id| newer.contains(id)), "{all_after:?}");
}
