//! Forks: how one freezes a feed, fork proofs between nodes, and the charter action that
//! resolves a fork by revoking the key behind it. Real stores in temporary directories.

mod common;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use common::charters::*;
use common::*;
use ed25519_dalek::SigningKey;
use entrepot::authority::Keyring;
use entrepot::bench::sign_feed;
use entrepot::charter::{MemberKey, SignedCharter};
use entrepot::document::{DocumentId, Edition, RefKind, Seq, TypeName};
use entrepot::hsdata::DraftDocument;
use entrepot::ingest::{check, CheckedDocument, IngestError, Ingestor};
use entrepot::store::{
    ForkRecord, HeadValue, IngestOutcome, ProofOutcome, Query, Resolution, Store, StoreError, TRUNCATE_BATCH_DOCS,
};
use serde_json::json;

const SUPERSEDE: &str = "lifecycle.supersede";

fn id(bytes: &[u8]) -> DocumentId {
    DocumentId::of_envelope(bytes)
}

fn codes(r: Vec<Result<IngestOutcome, IngestError>>) -> Vec<Result<IngestOutcome, String>> {
    r.into_iter().map(|r| r.map_err(|e| e.code().to_owned())).collect()
}

fn ingest(store: &Store, ring: &Keyring, net: [u8; 32], docs: &[Vec<u8>]) -> Vec<Result<IngestOutcome, String>> {
    codes(Ingestor { store, network_id: net, keyring: ring, sync: true }.ingest(docs.to_vec()).unwrap())
}

fn ingest_one(store: &Store, ring: &Keyring, net: [u8; 32], doc: &[u8]) -> Result<IngestOutcome, String> {
    ingest(store, ring, net, &[doc.to_vec()]).remove(0)
}

fn stored(n: usize) -> Vec<Result<IngestOutcome, String>> {
    vec![Ok(IngestOutcome::Stored); n]
}

fn checked(bytes: &[u8], net: [u8; 32], ring: &Keyring) -> CheckedDocument {
    check(bytes.to_vec(), &net, ring, entrepot::clock::now_ms()).unwrap()
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    (dir, store)
}

/// Every recorded fork as (position, kept, conflicting, resolved), in a stable order.
fn forks(store: &Store) -> BTreeSet<(u64, Option<DocumentId>, DocumentId, bool)> {
    store.forks().unwrap().into_iter().map(|f: ForkRecord| (f.seq.0, f.kept, f.conflicting, f.resolved)).collect()
}

/// Proof pairs as unordered pairs of ids.
fn proof_ids(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> BTreeSet<BTreeSet<DocumentId>> {
    pairs.iter().map(|(a, b)| [id(a), id(b)].into_iter().collect()).collect()
}

fn wco_feed(drafts: &[DraftDocument], k: &SigningKey, first: u64, prev: DocumentId, net: [u8; 32]) -> Vec<Vec<u8>> {
    sign_feed(drafts, &org("WCO"), k, &net, Seq(first), prev)
}

/// Opinions numbered from `n` on `code`.
fn opinions(n: std::ops::Range<usize>, code: &str) -> Vec<DraftDocument> {
    n.map(|i| opinion(i, code)).collect()
}

#[test]
fn a_fork_freezes_its_feed_from_its_position_and_a_node_that_learned_of_it_while_behind_fills_in_below() {
    let k = key(1);
    let ring = keyring(&[("WCO", &k)]);
    let honest = feed(&opinions(0..5, "8806.22"), "WCO", &k);
    let other = wco_feed(&opinions(10..11, "8806.22"), &k, 3, id(&honest[1]), net());
    let third = wco_feed(&opinions(20..21, "8806.22"), &k, 3, id(&honest[1]), net());

    // A node holding positions 1 to 4 receives a second entry at 3.
    let (_a, a) = open();
    assert_eq!(ingest(&a, &ring, net(), &honest[..4]), stored(4));
    assert_eq!(ingest(&a, &ring, net(), &other), vec![Ok(IngestOutcome::Forked { seq: Seq(3) })]);
    let head = a.head(&org("WCO")).unwrap().unwrap();
    assert_eq!((head.seq, head.id, head.forked_at), (Seq(4), id(&honest[3]), Some(Seq(3))));
    // Nothing past the fork is accepted; what it holds is still a duplicate; a third entry at
    // the forked position is more evidence, and the same one again changes nothing.
    assert_eq!(ingest(&a, &ring, net(), &honest[4..]), vec![Err("feed_frozen".to_owned())]);
    assert_eq!(ingest(&a, &ring, net(), &honest[2..4]), vec![Ok(IngestOutcome::Duplicate); 2]);
    assert_eq!(ingest(&a, &ring, net(), &third), vec![Ok(IngestOutcome::Forked { seq: Seq(3) })]);
    assert_eq!(ingest(&a, &ring, net(), &other), vec![Ok(IngestOutcome::Duplicate)]);
    let kept = Some(id(&honest[2]));
    assert_eq!(forks(&a), [(3, kept, id(&other[0]), false), (3, kept, id(&third[0]), false)].into());
    assert_eq!(a.document_count().unwrap(), 4);
    let proofs = a.fork_proofs(&org("WCO"), 10).unwrap();
    assert_eq!(
        proof_ids(proofs),
        [[id(&honest[2]), id(&other[0])].into(), [id(&honest[2]), id(&third[0])].into()].into()
    );
    assert_eq!(a.fork_proofs(&org("WCO"), 1).unwrap().len(), 1);

    // A node holding only position 1 gets the proof from a peer, then catches up below it.
    let (_b, b) = open();
    assert_eq!(ingest(&b, &ring, net(), &honest[..1]), stored(1));
    let outcome = b.record_fork_proof(&checked(&honest[2], net(), &ring), &checked(&other[0], net(), &ring)).unwrap();
    assert_eq!(outcome, ProofOutcome::Recorded { seq: Seq(3), entries: 2 });
    assert_eq!(ingest(&b, &ring, net(), &honest[1..2]), stored(1));
    let head = b.head(&org("WCO")).unwrap().unwrap();
    assert_eq!((head.seq, head.forked_at), (Seq(2), Some(Seq(3))));
    // At the fork an entry of the proof is a duplicate, a new one is evidence; past it, frozen.
    assert_eq!(ingest(&b, &ring, net(), &honest[2..3]), vec![Ok(IngestOutcome::Duplicate)]);
    assert_eq!(ingest(&b, &ring, net(), &third), vec![Ok(IngestOutcome::Forked { seq: Seq(3) })]);
    assert_eq!(ingest(&b, &ring, net(), &honest[3..4]), vec![Err("feed_frozen".to_owned())]);
    assert_eq!(b.feed_range(&org("WCO"), Seq::FIRST, 10, usize::MAX).unwrap(), honest[..2].to_vec());
    assert_eq!(
        forks(&b),
        [(3, None, id(&honest[2]), false), (3, None, id(&other[0]), false), (3, None, id(&third[0]), false)].into()
    );
}

#[test]
fn a_fork_proof_is_recorded_whatever_the_node_holds_of_the_feed_and_only_once() {
    let (k, wto) = (key(1), key(2));
    let ring = keyring(&[("WCO", &k), ("WTO", &wto)]);
    let base = feed(&opinions(0..3, "0101.21"), "WCO", &k);
    let prev = id(&base[0]);
    let (a, b, c) = (
        base[1].clone(),
        wco_feed(&opinions(10..11, "0101.21"), &k, 2, prev, net()).remove(0),
        wco_feed(&opinions(20..21, "0101.21"), &k, 2, prev, net()).remove(0),
    );
    let (pa, pb) = (checked(&a, net(), &ring), checked(&b, net(), &ring));

    // Nothing of the feed held: both entries become evidence, and an empty head freezes it.
    let (_d, empty) = open();
    assert_eq!(empty.record_fork_proof(&pa, &pb).unwrap(), ProofOutcome::Recorded { seq: Seq(2), entries: 2 });
    assert_eq!(empty.heads().unwrap(), vec![(org("WCO"), HeadValue::empty(Seq(2)))]);
    assert_eq!(empty.document_count().unwrap(), 0);
    assert_eq!(empty.feed_range(&org("WCO"), Seq::FIRST, 10, usize::MAX).unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(forks(&empty), [(2, None, id(&a), false), (2, None, id(&b), false)].into());
    assert_eq!(proof_ids(empty.fork_proofs(&org("WCO"), 10).unwrap()), [[id(&a), id(&b)].into()].into());
    assert_eq!(empty.manifest().unwrap().heads[0].seq, Seq(0));
    assert_eq!(empty.record_fork_proof(&pa, &pb).unwrap(), ProofOutcome::AlreadyKnown);
    assert_eq!(empty.record_fork_proof(&pb, &pa).unwrap(), ProofOutcome::AlreadyKnown);
    // The feed fills in below the fork and no further.
    assert_eq!(ingest(&empty, &ring, net(), &base[..1]), stored(1));
    assert_eq!(ingest_one(&empty, &ring, net(), &a), Ok(IngestOutcome::Duplicate));
    assert_eq!(ingest(&empty, &ring, net(), &base[2..]), vec![Err("feed_frozen".to_owned())]);

    // Holding one of the two: the other is recorded against it.
    let (_d, holds_a) = open();
    assert_eq!(ingest(&holds_a, &ring, net(), &base), stored(3));
    assert_eq!(holds_a.record_fork_proof(&pa, &pb).unwrap(), ProofOutcome::Recorded { seq: Seq(2), entries: 1 });
    assert_eq!(forks(&holds_a), [(2, Some(id(&a)), id(&b), false)].into());
    assert_eq!(holds_a.head(&org("WCO")).unwrap().unwrap().forked_at, Some(Seq(2)));
    assert_eq!(holds_a.record_fork_proof(&pb, &pa).unwrap(), ProofOutcome::AlreadyKnown);
    // A node that saw the fork arrive entry by entry knows the proof already.
    let (_d, saw_it) = open();
    assert_eq!(ingest(&saw_it, &ring, net(), &base[..2]), stored(2));
    assert_eq!(ingest_one(&saw_it, &ring, net(), &b), Ok(IngestOutcome::Forked { seq: Seq(2) }));
    assert_eq!(saw_it.record_fork_proof(&pa, &pb).unwrap(), ProofOutcome::AlreadyKnown);

    // Holding a third entry: both are recorded against it.
    let (_d, holds_c) = open();
    assert_eq!(ingest(&holds_c, &ring, net(), &[base[0].clone(), c.clone()]), stored(2));
    assert_eq!(holds_c.record_fork_proof(&pa, &pb).unwrap(), ProofOutcome::Recorded { seq: Seq(2), entries: 2 });
    assert_eq!(forks(&holds_c), [(2, Some(id(&c)), id(&a), false), (2, Some(id(&c)), id(&b), false)].into());

    // Pairs that prove nothing are refused, and nothing is written.
    let (_d, fresh) = open();
    let wto_entry = sign_feed(&opinions(0..2, "0101.21"), &org("WTO"), &wto, &net(), Seq::FIRST, DocumentId::ZERO);
    let refusals = [
        (checked(&base[0], net(), &ring), "proof_positions_differ"),
        (checked(&wto_entry[1], net(), &ring), "proof_publishers_differ"),
        (checked(&a, net(), &ring), "proof_same_entry"),
    ];
    for (other, code) in refusals {
        match fresh.record_fork_proof(&pa, &other) {
            Err(StoreError::NotAForkProof(e)) => assert_eq!(e.code(), code, "{e}"),
            r => panic!("expected {code}, got {r:?}"),
        }
    }
    assert_eq!(fresh.heads().unwrap(), vec![]);
    assert_eq!(fresh.forks().unwrap(), vec![]);
}

/// A WCO network whose charter `versions` grow as the root key holders amend WCO's keys.
struct Network {
    versions: Vec<SignedCharter>,
}

impl Network {
    fn new(wco_keys: Vec<MemberKey>) -> Network {
        let g = genesis(FAR, vec![member("WCO", wco_keys, &[OPINION, SUPERSEDE])]);
        Network { versions: vec![sign(&g, &[100, 101])] }
    }

    fn id(&self) -> [u8; 32] {
        self.versions[0].hash().0
    }

    fn ring(&self) -> Keyring {
        Keyring::from_charter(chain(&self.versions))
    }

    /// Puts in force the next version, in which WCO's keys are `wco_keys`.
    fn amend(&mut self, wco_keys: Vec<MemberKey>) -> Keyring {
        let mut next = next_version(self.versions.last().unwrap());
        next.organizations[0].keys = wco_keys;
        self.versions.push(sign(&next, &[101, 102]));
        self.ring()
    }
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The ids a query finds (one page).
fn found(store: &Store, q: Query) -> BTreeSet<DocumentId> {
    store.query(&Query { limit: 100, ..q }).unwrap().ids.into_iter().collect()
}

#[test]
fn a_charter_that_revokes_the_compromised_key_at_the_fork_truncates_the_feed_there_and_unfreezes_it() {
    let (stolen, new) = (key(1), key(2));
    let mut network = Network::new(vec![grant(&stolen, 1, None)]);
    let (net, v1) = (network.id(), network.ring());
    // Two honest entries, then the thief signs two histories from position 3: one cites
    // position 1 and supersedes it, on other HS codes.
    let good = wco_feed(&opinions(1..3, "8806.22"), &stolen, 1, DocumentId::ZERO, net);
    let (g1, g2) = (id(&good[0]), id(&good[1]));
    let mut cites = opinion(3, "2404.11");
    cites.body["references"] = json!([{ "kind": "cites", "id": g1.to_hex() }]);
    let x3 = wco_feed(&[cites], &stolen, 3, g2, net).remove(0);
    let supersede = draft(
        SUPERSEDE,
        json!({ "title": { "en": "Replaced" }, "target": g1.to_hex(), "replacement": id(&x3).to_hex(),
                "reason": { "en": "Stolen key" }, "validity": { "from": "2022-06-01" } }),
    );
    let x4 = wco_feed(&[supersede], &stolen, 4, id(&x3), net).remove(0);
    let y3 = wco_feed(&opinions(30..31, "2404.11"), &stolen, 3, g2, net).remove(0);

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net).unwrap();
    assert_eq!(ingest(&store, &v1, net, &[&good[..], &[x3.clone(), x4.clone()]].concat()), stored(4));
    assert_eq!(ingest_one(&store, &v1, net, &y3), Ok(IngestOutcome::Forked { seq: Seq(3) }));
    let in_force = || found(&store, Query { in_force_on: Some(day("2023-01-01")), ..Query::default() });
    assert_eq!(in_force(), [g2, id(&x3)].into(), "position 1 superseded by the stolen key");
    // A node that was behind learned of the fork by proof.
    let behind_dir = tempfile::tempdir().unwrap();
    let behind = Store::open(behind_dir.path(), &net).unwrap();
    assert_eq!(ingest(&behind, &v1, net, &good), stored(2));
    let proof = behind.record_fork_proof(&checked(&x3, net, &v1), &checked(&y3, net, &v1)).unwrap();
    assert_eq!(proof, ProofOutcome::Recorded { seq: Seq(3), entries: 2 });

    // Version 2 revokes the stolen key from position 3 and gives WCO a new key from there.
    let v2 = network.amend(vec![grant(&stolen, 1, Some(3)), grant(&new, 3, None)]);
    let resolutions = store.resolve_forks(&v2).unwrap();
    let resolved = |truncated_from| Resolution {
        publisher: org("WCO"),
        seq: Seq(3),
        resolved: true,
        truncated_from,
        reingest: None,
    };
    assert_eq!(resolutions, vec![resolved(Some(Seq(3)))]);
    assert_eq!(behind.resolve_forks(&v2).unwrap(), vec![resolved(None)]);
    assert_eq!(store.resolve_forks(&v2).unwrap(), vec![], "nothing left to resolve");

    // The feed ends at 2 and is no longer frozen; both stolen entries at 3 stay as evidence.
    for s in [&store, &behind] {
        assert_eq!(s.head(&org("WCO")).unwrap(), Some(HeadValue { seq: Seq(2), id: g2, forked_at: None }));
        assert_eq!(forks(s), [(3, None, id(&x3), true), (3, None, id(&y3), true)].into());
        assert_eq!(s.fork_proofs(&org("WCO"), 10).unwrap(), vec![]);
    }
    assert_eq!(store.fork_evidence(&org("WCO"), Seq(3), &id(&x3)).unwrap(), Some(x3.clone()));

    // Positions 1 and 2 are held and found by every index; 3 and 4 by none.
    assert_eq!(store.document_count().unwrap(), 2);
    assert!(store.get(&id(&x3)).unwrap().is_none() && store.get(&id(&x4)).unwrap().is_none());
    assert_eq!(store.feed_entry(&org("WCO"), Seq(3)).unwrap(), None);
    assert_eq!(store.feed_range(&org("WCO"), Seq::FIRST, 10, usize::MAX).unwrap(), good);
    let both: BTreeSet<DocumentId> = [g1, g2].into();
    let hs = |code: &str| Query { hs: Some((Edition::parse("HS2022").unwrap(), code.into())), ..Query::default() };
    assert_eq!(found(&store, hs("8806")), both);
    assert_eq!(found(&store, hs("2404")), [].into());
    assert_eq!(found(&store, Query { doc_type: Some(TypeName::new(OPINION).unwrap()), ..Query::default() }), both);
    assert_eq!(
        found(&store, Query { doc_type: Some(TypeName::new(SUPERSEDE).unwrap()), ..Query::default() }),
        [].into()
    );
    assert_eq!(found(&store, Query { publisher: Some(org("WCO")), ..Query::default() }), both);
    assert_eq!(found(&store, Query::default()), both, "the time index");
    assert_eq!(in_force(), both, "position 1 is in force again");
    assert_eq!(store.referrers(&g1).unwrap(), Vec::<(RefKind, DocumentId)>::new());
    // Their arrival numbers stay, naming documents no longer held: readers of arrivals skip them.
    let arrived: Vec<DocumentId> = store.arrivals_after(0, 10).unwrap().into_iter().map(|(_, id)| id).collect();
    assert_eq!(arrived, vec![g1, g2, id(&x3), id(&x4)]);

    // The publisher carries on at 3 with its new key; the stolen key's entries are refused.
    let carry_on = wco_feed(&opinions(40..42, "8806.22"), &new, 3, g2, net);
    for s in [&store, &behind] {
        assert_eq!(ingest(s, &v2, net, &carry_on), stored(2));
        assert_eq!(ingest_one(s, &v2, net, &y3), Err("key_revoked".to_owned()));
        assert_eq!(s.head(&org("WCO")).unwrap().unwrap().seq, Seq(4));
    }
    assert_eq!(found(&store, hs("8806")).len(), 4);
}

#[test]
fn a_fork_between_two_keys_resolves_to_the_entry_whose_key_the_charter_keeps_on_every_node() {
    let (revoked, kept) = (key(1), key(2));
    let mut network = Network::new(vec![grant(&revoked, 1, None), grant(&kept, 1, None)]);
    let (net, v1) = (network.id(), network.ring());
    let base = wco_feed(&opinions(1..3, "8806.22"), &revoked, 1, DocumentId::ZERO, net);
    let prev = id(&base[1]);
    let h3 = wco_feed(&opinions(3..4, "8806.22"), &revoked, 3, prev, net).remove(0);
    let c3 = wco_feed(&opinions(4..5, "8806.22"), &kept, 3, prev, net).remove(0);

    // One node holds the entry by the key to be revoked, one the other, one neither (proof).
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<Store> = dirs.iter().map(|d| Store::open(d.path(), &net).unwrap()).collect();
    let (held_revoked, held_kept, behind) = (&nodes[0], &nodes[1], &nodes[2]);
    for (node, first, second) in [(held_revoked, &h3, &c3), (held_kept, &c3, &h3)] {
        assert_eq!(ingest(node, &v1, net, &[&base[..], std::slice::from_ref(first)].concat()), stored(3));
        assert_eq!(ingest_one(node, &v1, net, second), Ok(IngestOutcome::Forked { seq: Seq(3) }));
    }
    assert_eq!(ingest(behind, &v1, net, &base), stored(2));
    behind.record_fork_proof(&checked(&h3, net, &v1), &checked(&c3, net, &v1)).unwrap();

    // Version 2 revokes the first key from position 3 only.
    let v2 = network.amend(vec![grant(&revoked, 1, Some(3)), grant(&kept, 1, None)]);
    let resolution = |truncated_from, reingest| {
        vec![Resolution { publisher: org("WCO"), seq: Seq(3), resolved: true, truncated_from, reingest }]
    };
    assert_eq!(held_revoked.resolve_forks(&v2).unwrap(), resolution(Some(Seq(3)), Some(c3.clone())));
    assert_eq!(held_kept.resolve_forks(&v2).unwrap(), resolution(None, None));
    assert_eq!(behind.resolve_forks(&v2).unwrap(), resolution(None, Some(c3.clone())));
    // The caller re-ingests what it was handed, through the pipeline.
    for node in [held_revoked, behind] {
        assert_eq!(ingest_one(node, &v2, net, &c3), Ok(IngestOutcome::Stored));
    }

    // Every node now holds the same feed, the same evidence, marked resolved, and carries on.
    let next = wco_feed(&opinions(5..6, "8806.22"), &kept, 4, id(&c3), net);
    for node in &nodes {
        assert_eq!(node.head(&org("WCO")).unwrap(), Some(HeadValue { seq: Seq(3), id: id(&c3), forked_at: None }));
        assert_eq!(forks(node), [(3, Some(id(&c3)), id(&h3), true)].into());
        assert_eq!(node.document_count().unwrap(), 3);
        assert_eq!(ingest(node, &v2, net, &next), stored(1));
        assert_eq!(ingest_one(node, &v2, net, &h3), Err("key_revoked".to_owned()));
    }
}

#[test]
fn a_charter_version_that_leaves_both_entries_valid_leaves_the_feed_frozen() {
    let (k, successor) = (key(1), key(2));
    let mut network = Network::new(vec![grant(&k, 1, None)]);
    let (net, v1) = (network.id(), network.ring());
    let honest = wco_feed(&opinions(1..4, "8806.22"), &k, 1, DocumentId::ZERO, net);
    let other = wco_feed(&opinions(10..11, "8806.22"), &k, 2, id(&honest[0]), net).remove(0);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net).unwrap();
    assert_eq!(ingest(&store, &v1, net, &honest[..2]), stored(2));
    assert_eq!(ingest_one(&store, &v1, net, &other), Ok(IngestOutcome::Forked { seq: Seq(2) }));

    // A rotation after the fork: the key stays valid at position 2.
    let v2 = network.amend(vec![grant(&k, 1, Some(5)), grant(&successor, 5, None)]);
    assert_eq!(
        store.resolve_forks(&v2).unwrap(),
        vec![Resolution { publisher: org("WCO"), seq: Seq(2), resolved: false, truncated_from: None, reingest: None }]
    );
    let head = store.head(&org("WCO")).unwrap().unwrap();
    assert_eq!((head.seq, head.forked_at), (Seq(2), Some(Seq(2))));
    assert_eq!(forks(&store), [(2, Some(id(&honest[1])), id(&other), false)].into());
    assert_eq!(proof_ids(store.fork_proofs(&org("WCO"), 10).unwrap()), [[id(&honest[1]), id(&other)].into()].into());
    assert_eq!(ingest(&store, &v2, net, &honest[2..]), vec![Err("feed_frozen".to_owned())]);
    assert_eq!(store.document_count().unwrap(), 2);
}

#[test]
fn truncating_a_feed_longer_than_one_write_batch_leaves_exactly_the_entries_before_the_revocation() {
    let (k, successor) = (key(1), key(2));
    let mut network = Network::new(vec![grant(&k, 1, None)]);
    let (net, v1) = (network.id(), network.ring());
    let total = TRUNCATE_BATCH_DOCS as usize + 10;
    let entries = wco_feed(&opinions(0..total, "8806.22"), &k, 1, DocumentId::ZERO, net);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net).unwrap();
    assert_eq!(ingest(&store, &v1, net, &entries), stored(total));
    // A keyring file is no charter: nothing is truncated, even for a key it does not list.
    assert_eq!(store.truncate_unauthorized(&org("WCO"), &keyring(&[("WCO", &successor)])).unwrap(), None);
    assert_eq!(store.truncate_unauthorized(&org("WCO"), &v1).unwrap(), None);

    // The key is found to have leaked before position 5: the feed is not forked, but every
    // entry from 5 goes.
    let v2 = network.amend(vec![grant(&k, 1, Some(5)), grant(&successor, 5, None)]);
    assert_eq!(store.truncate_unauthorized(&org("WCO"), &v2).unwrap(), Some(Seq(5)));
    let kept: BTreeSet<DocumentId> = entries[..4].iter().map(|e| id(e)).collect();
    assert_eq!(store.head(&org("WCO")).unwrap(), Some(HeadValue { seq: Seq(4), id: id(&entries[3]), forked_at: None }));
    assert_eq!(store.document_count().unwrap(), 4);
    assert_eq!(found(&store, Query::default()), kept);
    assert_eq!(store.feed_range(&org("WCO"), Seq::FIRST, total, usize::MAX).unwrap(), entries[..4].to_vec());
    assert_eq!(store.forks().unwrap(), vec![]);
    assert_eq!(store.truncate_unauthorized(&org("WCO"), &v2).unwrap(), None, "nothing left to truncate");
    let next = wco_feed(&opinions(0..1, "8806.22"), &successor, 5, id(&entries[3]), net);
    assert_eq!(ingest(&store, &v2, net, &next), stored(1));
}
