//! Feed and index behaviour of the store, driven through the ingest pipeline.

mod common;

use chrono::NaiveDate;
use common::*;
use entrepot::document::{decode, DocumentId, Edition, OrgId, Seq, TypeName};
use entrepot::ingest::{IngestError, Ingestor, LifecycleError};
use entrepot::store::{FeedError, IngestOutcome, Query, Store, StoreError};
use serde_json::json;

fn ids(bytes: &[Vec<u8>]) -> Vec<DocumentId> {
    bytes.iter().map(|b| DocumentId::of_envelope(b)).collect()
}

fn outcomes(r: Vec<Result<IngestOutcome, IngestError>>) -> Vec<Result<IngestOutcome, String>> {
    r.into_iter().map(|r| r.map_err(|e| e.code().to_owned())).collect()
}

#[test]
fn a_feed_is_stored_in_order_and_reingesting_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let docs = feed(&(0..5).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(), "WCO", &wco);
    let r = ing.ingest(docs.clone()).unwrap();
    assert!(r.iter().all(|r| *r.as_ref().unwrap() == IngestOutcome::Stored));
    let head = store.head(&org("WCO")).unwrap().unwrap();
    assert_eq!(head.seq, Seq(5));
    assert_eq!(head.id, ids(&docs)[4]);
    assert_eq!(store.document_count().unwrap(), 5);

    let arrivals = store.arrivals_after(0, 100).unwrap();
    assert_eq!(arrivals.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert_eq!(arrivals.iter().map(|(_, id)| *id).collect::<Vec<_>>(), ids(&docs));
    assert_eq!(store.arrivals_after(3, 100).unwrap().len(), 2);
    assert_eq!(store.last_arrival(), 5);

    let again = ing.ingest(docs.clone()).unwrap();
    assert!(again.iter().all(|r| *r.as_ref().unwrap() == IngestOutcome::Duplicate));
    assert_eq!(store.document_count().unwrap(), 5);
    assert_eq!(store.feed_range(&org("WCO"), Seq(2), 2, usize::MAX).unwrap(), docs[1..3].to_vec());
    // The byte bound stops a range early but always returns at least one document.
    assert_eq!(store.feed_range(&org("WCO"), Seq(1), 10, 1).unwrap().len(), 1);
}

#[test]
fn a_gap_is_refused_and_stores_nothing_until_the_missing_entry_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let docs = feed(&(0..3).map(|i| opinion(i, "0101.21")).collect::<Vec<_>>(), "WCO", &wco);
    let r = ing.ingest(vec![docs[0].clone(), docs[2].clone()]).unwrap();
    assert_eq!(outcomes(r), vec![Ok(IngestOutcome::Stored), Err("feed_gap".into())]);
    assert_eq!(store.document_count().unwrap(), 1);
    let r = ing.ingest(vec![docs[1].clone(), docs[2].clone()]).unwrap();
    assert_eq!(outcomes(r), vec![Ok(IngestOutcome::Stored), Ok(IngestOutcome::Stored)]);
}

#[test]
fn two_validly_signed_entries_at_one_position_are_a_fork_kept_as_evidence_and_freeze_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let honest = feed(&(0..3).map(|i| opinion(i, "2404.11")).collect::<Vec<_>>(), "WCO", &wco);
    let other = feed(&[opinion(0, "2404.11"), opinion(99, "2404.12")], "WCO", &wco);
    assert_eq!(honest[0], other[0]);
    ing.ingest(honest[..2].to_vec()).unwrap();
    let r = ing.ingest(vec![other[1].clone()]).unwrap();
    assert_eq!(outcomes(r), vec![Ok(IngestOutcome::Forked { seq: Seq(2) })]);
    let forks = store.forks().unwrap();
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].kept, Some(DocumentId::of_envelope(&honest[1])));
    assert!(!forks[0].resolved);
    assert_eq!(forks[0].conflicting, DocumentId::of_envelope(&other[1]));
    let evidence = store.fork_evidence(&org("WCO"), Seq(2), &forks[0].conflicting).unwrap().unwrap();
    assert_eq!(evidence, other[1]);
    // The conflicting entry is evidence only: it is not a stored document.
    assert!(!store.contains(&forks[0].conflicting).unwrap());
    assert_eq!(store.head(&org("WCO")).unwrap().unwrap().forked_at, Some(Seq(2)));
    let r = ing.ingest(vec![honest[2].clone()]).unwrap();
    assert_eq!(outcomes(r), vec![Err("feed_frozen".into())]);
    assert_eq!(store.document_count().unwrap(), 2);
}

#[test]
fn an_entry_naming_another_predecessor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let a = feed(&[opinion(0, "0101.21"), opinion(1, "0101.21")], "WCO", &wco);
    let b = feed(&[opinion(5, "0101.21"), opinion(6, "0101.21")], "WCO", &wco);
    ing.ingest(vec![a[0].clone()]).unwrap();
    let r = ing.ingest(vec![b[1].clone()]).unwrap();
    assert!(matches!(&r[0], Err(IngestError::Feed(FeedError::PrevMismatch { .. }))));
    assert_eq!(store.document_count().unwrap(), 1);
}

#[test]
fn the_keyring_decides_who_may_publish_what() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let wco = key(1);
    let stranger = key(9);
    let mut ring = keyring(&[("WCO", &wco)]);
    ring.insert(entrepot::authority::Organization {
        id: org("FR"),
        name: "France".into(),
        keys: vec![hex::encode(key(2).verifying_key().to_bytes())],
        types: Some(vec![TypeName::new("classification.ruling").unwrap()]),
    })
    .unwrap();
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let unknown = feed(&[opinion(0, "0101.21")], "XX", &stranger);
    let forged = feed(&[opinion(0, "0101.21")], "WCO", &stranger);
    let not_permitted = feed(&[opinion(0, "0101.21")], "FR", &key(2));
    let r = ing.ingest(vec![unknown[0].clone(), forged[0].clone(), not_permitted[0].clone()]).unwrap();
    assert_eq!(
        outcomes(r),
        vec![Err("unknown_publisher".into()), Err("key_not_authorized".into()), Err("type_not_permitted".into())]
    );
    assert_eq!(store.document_count().unwrap(), 0);
}

#[test]
fn only_the_publisher_of_a_document_may_withdraw_it_and_withdrawal_ends_its_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let (wco, wto) = (key(1), key(2));
    let ring = keyring(&[("WCO", &wco), ("WTO", &wto)]);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let target = feed(&[opinion(0, "8549.11")], "WCO", &wco);
    let target_id = DocumentId::of_envelope(&target[0]);
    let withdraw = draft(
        "lifecycle.withdraw",
        json!({
            "title": { "en": "Withdrawal" }, "target": target_id.to_hex(),
            "reason": { "en": "Replaced by the Explanatory Notes." }, "validity": { "from": "2024-07-01" }
        }),
    );
    // Before its target is held, an act waits; it is not stored.
    let early = feed(std::slice::from_ref(&withdraw), "WTO", &wto);
    let r = ing.ingest(early.clone()).unwrap();
    assert!(matches!(&r[0], Err(IngestError::Lifecycle(LifecycleError::TargetMissing(_)))));
    assert!(r[0].as_ref().unwrap_err().is_transient());

    ing.ingest(target.clone()).unwrap();
    let r = ing.ingest(early).unwrap();
    assert_eq!(outcomes(r), vec![Err("lifecycle_not_entitled".into())]);

    let query = |day: &str| Query {
        in_force_on: Some(NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.query(&query("2024-06-30")).unwrap().ids, vec![target_id]);

    let own = sign_after(&store, "WCO", &wco, &withdraw);
    let r = ing.ingest(vec![own]).unwrap();
    assert_eq!(outcomes(r), vec![Ok(IngestOutcome::Stored)]);
    assert_eq!(store.query(&query("2024-06-30")).unwrap().ids, vec![target_id]);
    assert!(store.query(&query("2024-07-01")).unwrap().ids.is_empty());
    assert!(store.query(&query("2021-12-31")).unwrap().ids.is_empty(), "before its validity");
    let refs = store.referrers(&target_id).unwrap();
    assert_eq!(refs.len(), 1);
}

/// Signs one draft as the next entry of `publisher`'s feed in `store`.
fn sign_after(
    store: &Store,
    publisher: &str,
    k: &ed25519_dalek::SigningKey,
    d: &entrepot::hsdata::DraftDocument,
) -> Vec<u8> {
    let head = store.head(&org(publisher)).unwrap().unwrap();
    entrepot::bench::sign_feed(std::slice::from_ref(d), &org(publisher), k, &net(), head.seq.next(), head.id).remove(0)
}

#[test]
fn queries_filter_by_hs_prefix_type_publisher_and_text_and_pages_cover_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let (wco, fr) = (key(1), key(2));
    let ring = keyring(&[("WCO", &wco), ("FR", &fr)]);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let codes = ["8549.11", "8549.21", "8806.22", "0309.10", "8549.91"];
    let wco_docs = feed(&codes.iter().enumerate().map(|(i, c)| opinion(i, c)).collect::<Vec<_>>(), "WCO", &wco);
    let fr_docs = feed(&(0..30).map(|i| opinion(100 + i, "8549.12")).collect::<Vec<_>>(), "FR", &fr);
    ing.ingest(wco_docs.clone()).unwrap();
    ing.ingest(fr_docs.clone()).unwrap();
    let hs = |prefix: &str| Query {
        hs: Some((Edition::parse("HS2022").unwrap(), prefix.into())),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.query(&hs("85")).unwrap().ids.len(), 33);
    assert_eq!(store.query(&hs("8549")).unwrap().ids.len(), 33);
    assert_eq!(store.query(&hs("854911")).unwrap().ids, vec![DocumentId::of_envelope(&wco_docs[0])]);
    assert_eq!(store.query(&hs("88")).unwrap().ids.len(), 1);
    assert!(store.query(&hs("97")).unwrap().ids.is_empty());
    let other_edition =
        Query { hs: Some((Edition::parse("HS2017").unwrap(), "85".into())), limit: 10, ..Default::default() };
    assert!(store.query(&other_edition).unwrap().ids.is_empty(), "codes are keyed by edition");

    let by_pub = Query { publisher: Some(OrgId::new("WCO").unwrap()), limit: 100, ..Default::default() };
    let got = store.query(&by_pub).unwrap().ids;
    let mut want = ids(&wco_docs);
    want.reverse();
    assert_eq!(got, want, "a publisher's documents, newest first");

    let text = Query { text: Some("OPINION 3 ON".into()), limit: 100, ..Default::default() };
    assert_eq!(store.query(&text).unwrap().ids, vec![DocumentId::of_envelope(&wco_docs[3])]);

    let hs_and_pub = Query { publisher: Some(OrgId::new("FR").unwrap()), ..hs("8549") };
    assert_eq!(store.query(&hs_and_pub).unwrap().ids.len(), 30);

    // Pages of 7 over 35 documents: every document exactly once.
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(&Query { limit: 7, cursor: cursor.clone(), ..Default::default() }).unwrap();
        all.extend(page.ids);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    all.sort();
    let mut expected = ids(&wco_docs);
    expected.extend(ids(&fr_docs));
    expected.sort();
    assert_eq!(all, expected);

    let bad_cursor = Query { limit: 7, cursor: Some("zz".into()), ..Default::default() };
    assert!(store.query(&bad_cursor).is_err());
    assert!(store.query(&Query { limit: 0, ..Default::default() }).is_err());
}

#[test]
fn a_store_that_never_held_anything_is_re_bound_to_another_network_and_then_keeps_it() {
    // `init` makes a store for the name-derived network; pinning a charter afterwards changes
    // the network id before anything was stored: the store takes the new one.
    let dir = tempfile::tempdir().unwrap();
    let other = entrepot::config::network_id("elsewhere");
    drop(Store::open(dir.path(), &net()).unwrap());
    let store = Store::open(dir.path(), &other).unwrap();
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let docs =
        entrepot::bench::sign_feed(&[opinion(0, "0101.21")], &org("WCO"), &wco, &other, Seq::FIRST, DocumentId::ZERO);
    Ingestor { store: &store, network_id: other, keyring: &ring, sync: true }.ingest(docs).unwrap();
    assert_eq!(store.document_count().unwrap(), 1);
    drop(store);
    // Now it holds a document of `other`: back to the first network is refused, with what to do.
    let err = Store::open(dir.path(), &net()).err().unwrap();
    assert!(matches!(err, StoreError::WrongNetwork { .. }), "{err}");
    assert!(err.to_string().contains("move") && err.to_string().contains("aside"), "{err}");
    assert_eq!(Store::open(dir.path(), &other).unwrap().document_count().unwrap(), 1);
}

#[test]
fn a_store_remembers_its_documents_and_refuses_another_network_or_an_unknown_format() {
    let dir = tempfile::tempdir().unwrap();
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let docs = feed(&[opinion(0, "0101.21")], "WCO", &wco);
    {
        let store = Store::open(dir.path(), &net()).unwrap();
        Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true }.ingest(docs.clone()).unwrap();
    }
    let store = Store::open(dir.path(), &net()).unwrap();
    let stored = store.get(&DocumentId::of_envelope(&docs[0])).unwrap().unwrap();
    assert_eq!(stored, docs[0], "stored verbatim");
    assert_eq!(decode(&stored).unwrap().header.seq, Seq(1));
    assert_eq!(store.last_arrival(), 1, "the arrival counter survives a reopen");
    drop(store);

    let err = Store::open(dir.path(), &entrepot::config::network_id("elsewhere")).err().unwrap();
    assert!(matches!(err, StoreError::WrongNetwork { .. }), "{err}");

    // A store written by a future build.
    {
        let cfs = entrepot::store::keys::ALL_CFS;
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), cfs).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"format_version", 99u32.to_be_bytes()).unwrap();
    }
    let err = Store::open(dir.path(), &net()).err().unwrap();
    assert!(matches!(err, StoreError::UnknownFormat { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("format version 99"));
}

#[test]
fn each_feeds_merkle_tree_follows_its_entries_and_its_proofs_verify() {
    use entrepot::tlog::merkle::{self, MemoryTree};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let docs = feed(&(0..300).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(), "WCO", &wco);
    // Batches of several sizes, so that nodes completed within one write batch are read
    // back from it.
    let mut at = 0;
    for n in [1, 2, 97, 200] {
        for r in ing.ingest(docs[at..at + n].to_vec()).unwrap() {
            assert_eq!(r.unwrap(), IngestOutcome::Stored);
        }
        at += n;
    }
    let mut reference = MemoryTree::default();
    for id in ids(&docs) {
        reference.push(&id.0);
    }
    let wco_org = org("WCO");
    for size in [1u64, 2, 3, 100, 256, 257, 300] {
        let root = store.tree_root(&wco_org, size).unwrap();
        assert_eq!(root, merkle::root(&reference, size).unwrap(), "root of {size}");
        for index in [0, size / 2, size - 1] {
            let proof = store.inclusion_proof(&wco_org, index, size).unwrap().unwrap();
            let leaf = merkle::leaf_hash(&ids(&docs)[index as usize].0);
            merkle::verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
        }
        let old = size / 3;
        let proof = store.consistency_proof(&wco_org, old, size).unwrap().unwrap();
        merkle::verify_consistency(old, size, &proof, &store.tree_root(&wco_org, old).unwrap(), &root).unwrap();
    }
    // Nothing beyond the head: a proof for a larger tree is the store's error, never a guess.
    assert!(store.tree_root(&wco_org, 301).is_err());
}

#[test]
fn two_histories_signed_by_one_publisher_are_a_checkpoint_fork_that_freezes_the_feed() {
    use entrepot::publish::Publisher;
    use entrepot::tlog::signed::ForkEvidence;
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let drafts: Vec<_> = (0..6).map(|i| opinion(i, "0101.21")).collect();
    let honest = feed(&drafts, "WCO", &wco);
    // The same first three entries, then a different history signed with the same key.
    let other_drafts: Vec<_> = (10..13).map(|i| opinion(i, "0101.29")).collect();
    let prev = DocumentId::of_envelope(&honest[2]);
    let mut other = honest[..3].to_vec();
    other.extend(entrepot::bench::sign_feed(&other_drafts, &org("WCO"), &wco, &net(), Seq(4), prev));
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (Store::open(da.path(), &net()).unwrap(), Store::open(db.path(), &net()).unwrap());
    for (store, docs) in [(&a, &honest), (&b, &other)] {
        let ing = Ingestor { store, network_id: net(), keyring: &ring, sync: true };
        for r in ing.ingest(docs.clone()).unwrap() {
            assert_eq!(r.unwrap(), IngestOutcome::Stored);
        }
    }
    let publisher = Publisher::new(org("WCO"), key(1));
    assert_eq!(publisher.sign_checkpoint(&a, &net()).unwrap(), Some(6));
    assert_eq!(publisher.sign_checkpoint(&b, &net()).unwrap(), Some(6));
    let note_a = a.latest_checkpoint(&org("WCO")).unwrap().unwrap().1;
    let note_b = b.latest_checkpoint(&org("WCO")).unwrap().unwrap().1;
    assert_ne!(note_a, note_b);
    // Node a holds the honest history and receives b's checkpoint: evidence against its own.
    let evidence = ForkEvidence {
        a: note_b,
        b: note_a,
        root_at_a: a.tree_root(&org("WCO"), 6).unwrap(),
        proof: a.consistency_proof(&org("WCO"), 6, 6).unwrap().unwrap(),
    };
    let origin = entrepot::tlog::checkpoint::origin(&net(), &org("WCO"));
    assert_eq!(evidence.verify(&origin, |size| ring.checkpoint_keys(&org("WCO"), size)), Ok((6, 6)));
    let bytes = evidence.encode();
    assert!(a.record_checkpoint_fork(&org("WCO"), 6, 6, &bytes).unwrap());
    assert!(!a.record_checkpoint_fork(&org("WCO"), 6, 6, &bytes).unwrap(), "recorded once");
    assert_eq!(a.head(&org("WCO")).unwrap().unwrap().forked_at, Some(Seq(6)));
    let next = entrepot::bench::sign_feed(
        &[opinion(99, "0101.21")],
        &org("WCO"),
        &wco,
        &net(),
        Seq(7),
        DocumentId::of_envelope(&honest[5]),
    );
    let ing = Ingestor { store: &a, network_id: net(), keyring: &ring, sync: true };
    let r = ing.ingest(next).unwrap();
    assert_eq!(outcomes(r), vec![Err("feed_frozen".into())]);
    let forks = a.checkpoint_forks(Some(&org("WCO"))).unwrap();
    assert_eq!((forks.len(), forks[0].size_a, forks[0].size_b, forks[0].frozen_at), (1, 6, 6, Seq(6)));
    assert_eq!(forks[0].evidence, bytes);
}

#[test]
fn an_ingest_reports_what_it_stored_and_the_heads_it_left_as_the_store_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let (wco, fr) = (key(1), key(2));
    let ring = keyring(&[("WCO", &wco), ("FR", &fr)]);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let wco_docs = feed(&(0..3).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(), "WCO", &wco);
    let fr_docs = feed(&(0..2).map(|i| opinion(10 + i, "8549.11")).collect::<Vec<_>>(), "FR", &fr);
    ing.ingest(vec![wco_docs[0].clone()]).unwrap();
    // A duplicate, two new WCO entries, a gap in FR's feed, then FR's first entry.
    let batch =
        vec![wco_docs[0].clone(), wco_docs[1].clone(), wco_docs[2].clone(), fr_docs[1].clone(), fr_docs[0].clone()];
    let report = ing.ingest_report(batch).unwrap();
    assert_eq!(
        outcomes(report.results),
        vec![
            Ok(IngestOutcome::Duplicate),
            Ok(IngestOutcome::Stored),
            Ok(IngestOutcome::Stored),
            Err("feed_gap".into()),
            Ok(IngestOutcome::Stored)
        ]
    );
    // What was stored, as the store has it: arrival numbers, ids, positions, types.
    let arrivals = store.arrivals_after(1, 100).unwrap();
    assert_eq!(report.stored.iter().map(|e| (e.arrival, e.id)).collect::<Vec<_>>(), arrivals);
    for e in &report.stored {
        let doc = decode(&store.get(&e.id).unwrap().unwrap()).unwrap();
        assert_eq!((&e.publisher, e.seq, &e.doc_type), (&doc.header.publisher, doc.header.seq, &doc.header.doc_type));
    }
    // The heads after the commit, for every feed named, as the store reads them.
    assert_eq!(report.heads.len(), 2);
    for (publisher, head) in &report.heads {
        assert_eq!(*head, store.head(publisher).unwrap(), "{publisher}");
    }
    assert_eq!(report.heads[0].1.unwrap().seq, Seq(3));
    assert_eq!(report.heads[1].1.unwrap().seq, Seq(1));
    // A header read is the full decode's header.
    let header = store.header(&arrivals[0].1).unwrap().unwrap();
    assert_eq!(header, decode(&store.get(&arrivals[0].1).unwrap().unwrap()).unwrap().header);
}

#[test]
fn an_hs_query_lists_newest_issue_first_where_the_hs_index_is_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    // Eight opinions on one code, each issued after the one before (issue time = base + seq).
    let docs = feed(&(0..8).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(), "WCO", &wco);
    ing.ingest(docs.clone()).unwrap();
    let newest_first: Vec<DocumentId> = docs.iter().rev().map(|d| DocumentId::of_envelope(d)).collect();
    let hs = |limit: usize, cursor: Option<String>, index_order: bool| Query {
        hs: Some((Edition::parse("HS2022").unwrap(), "880622".into())),
        limit,
        cursor,
        index_order,
        ..Default::default()
    };
    // The index's own order (what every HS query answered before) is by id, not by date.
    let by_index = store.query(&hs(100, None, true)).unwrap();
    let mut by_id = newest_first.clone();
    by_id.sort_by_key(|id| id.0);
    assert_eq!(by_index.ids, by_id);
    assert_ne!(by_index.ids, newest_first, "the seeded ids are not in date order, or this test proves nothing");
    assert_eq!(by_index.order, entrepot::store::Order::Code);

    let all = store.query(&hs(100, None, false)).unwrap();
    assert_eq!(all.ids, newest_first);
    assert_eq!(all.order, entrepot::store::Order::Issued);
    // Paged three at a time, the pages follow one another in the same order, each id once.
    let mut paged = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = store.query(&hs(3, cursor.clone(), false)).unwrap();
        paged.extend(page.ids);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);
}
