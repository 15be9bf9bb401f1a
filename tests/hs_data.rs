//! Real HS data through the whole pipeline: the embedded excerpt always, and the full HS2022
//! nomenclature, amendments and correlation from ../shared/data/hs when present.

mod common;

use common::*;
use entrepot::document::{Edition, TypeName};
use entrepot::hsdata::{amendment_documents, correlation_documents, nomenclature_documents, shared_dir, HsData};
use entrepot::ingest::Ingestor;
use entrepot::store::{IngestOutcome, Query, Store};

fn hs(prefix: &str, doc_type: &str) -> Query {
    Query {
        hs: Some((Edition::parse("HS2022").unwrap(), prefix.into())),
        doc_type: Some(TypeName::new(doc_type).unwrap()),
        limit: 1000,
        ..Default::default()
    }
}

fn import_all(data: &HsData) -> (tempfile::TempDir, Store, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net()).unwrap();
    let wco = key(1);
    let ring = keyring(&[("WCO", &wco)]);
    let mut drafts = nomenclature_documents(data);
    drafts.extend(amendment_documents(data));
    drafts.extend(correlation_documents(data));
    let docs = feed(&drafts, "WCO", &wco);
    let ing = Ingestor { store: &store, network_id: net(), keyring: &ring, sync: true };
    let results = ing.ingest(docs).unwrap();
    for r in &results {
        assert_eq!(r.as_ref().map_err(|e| e.to_string()), Ok(&IngestOutcome::Stored));
    }
    (dir, store, results.len())
}

#[test]
fn the_embedded_excerpt_imports_and_answers_hs_queries() {
    let data = HsData::excerpt();
    let (_dir, store, n) = import_all(&data);
    assert_eq!(store.document_count().unwrap(), n as u64);
    // Chapter 88 of HS2022, its new heading 8806 and a subheading of it.
    assert_eq!(store.query(&hs("88", "hs.nomenclature")).unwrap().ids.len(), 1);
    assert_eq!(store.query(&hs("880622", "hs.nomenclature")).unwrap().ids.len(), 1);
    assert!(!store.query(&hs("8806", "hs.amendment")).unwrap().ids.is_empty(), "8806 is new in HS2022");
    assert!(!store.query(&hs("2404", "hs.correlation")).unwrap().ids.is_empty());
}

#[test]
fn full_hs2022_nomenclature_amendments_and_correlation_import() {
    let Some(dir) = shared_dir() else {
        println!("SKIPPED: ../shared/data/hs not found; this test needs the full HS files beside the checkout");
        return;
    };
    let data = HsData::load(&dir).unwrap();
    assert_eq!(data.hs2022.len(), 6940);
    let (_tmp, store, n) = import_all(&data);
    let chapters = store.query(&Query {
        doc_type: Some(TypeName::new("hs.nomenclature").unwrap()),
        limit: 1000,
        ..Default::default()
    });
    assert_eq!(chapters.unwrap().ids.len(), 96, "96 chapters (99 is statistical and excluded)");
    println!("imported {n} documents from the full HS data");
    // The e-waste fan-out: 8549.11 correlates to 1,019 HS2017 codes, in one document.
    let ewaste = store.query(&hs("854911", "hs.correlation")).unwrap().ids;
    assert_eq!(ewaste.len(), 1);
    let bytes = store.get(&ewaste[0]).unwrap().unwrap();
    let doc = entrepot::document::decode(&bytes).unwrap();
    let hs2017 = doc.header.subjects.iter().filter(|s| s.edition.year() == 2017).count();
    assert!(hs2017 >= 1019, "{hs2017} HS2017 subjects");
    // Every HS2022 subheading is findable through its chapter's nomenclature document.
    for e in data.hs2022.iter().filter(|e| e.level == 6 && !e.code.starts_with("99")) {
        assert_eq!(store.query(&hs(&e.code, "hs.nomenclature")).unwrap().ids.len(), 1, "{}", e.code);
    }
}
