//! The index on its own: analysers, filters, similar classifications, the commit payload.

use serde_json::json;

use super::*;
use crate::bench::sign_feed;
use crate::document::{decode_owned, OrgId, Seq};
use crate::hsdata::DraftDocument;

fn ruling(doc_type: &'static str, title: &str, product: serde_json::Value, code: &str) -> DraftDocument {
    DraftDocument {
        doc_type,
        body: json!({
            "title": { "en": title },
            "reference": "R-1",
            "product": { "description": product },
            "classification": { "edition": "HS2022", "code": code },
            "gir": ["1"],
            "reasons": { "en": "Terms of the heading." },
            "validity": { "from": "2022-01-01" }
        }),
    }
}

fn signed(drafts: &[DraftDocument], org: &str, label: u8) -> Vec<SignedDocument> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[label; 32]);
    sign_feed(drafts, &OrgId::new(org).unwrap(), &key, &[7; 32], Seq::FIRST, DocumentId::ZERO)
        .into_iter()
        .map(|e| decode_owned(e).unwrap())
        .collect()
}

fn q(text: &str) -> SearchQuery {
    SearchQuery { text: Some(text.into()), limit: 10, ..SearchQuery::default() }
}

#[test]
fn english_and_french_words_find_their_documents_through_stemming_and_filters_narrow() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(&dir.path().join("search")).unwrap();
    let wco = signed(
        &[
            ruling(
                "classification.opinion",
                "Classification",
                json!({ "en": "Quadcopter drones with cameras", "fr": "Drones quadricoptères équipés de caméras" }),
                "8806.22",
            ),
            ruling(
                "classification.opinion",
                "Classification",
                json!({ "en": "Nicotine pouches for oral use" }),
                "2404.91",
            ),
        ],
        "WCO",
        1,
    );
    let fr = signed(
        &[ruling("classification.ruling", "Classification", json!({ "en": "A camera drone" }), "8525.89")],
        "FR",
        2,
    );
    let mut all = wco.clone();
    all.extend(fr.clone());
    index.add_all(&all, 3).unwrap();
    assert_eq!(index.visible_upto(), 3);

    let ids = |found: Found| found.hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
    // "drone" finds "drones" (English stemmer); "caméra" finds "caméras" (French), accents or not.
    assert_eq!(ids(index.search(&q("drone")).unwrap()).len(), 2);
    assert_eq!(ids(index.search(&q("équipé")).unwrap()), vec![wco[0].id]);
    assert_eq!(ids(index.search(&q("quadricoptere")).unwrap()), vec![wco[0].id]);
    assert!(index.search(&q("helicopter")).unwrap().hits.is_empty());
    // All words are required.
    assert_eq!(ids(index.search(&q("nicotine drone")).unwrap()), Vec::<DocumentId>::new());
    let hs = SearchQuery { hs: Some(("HS2022".into(), "8806".into())), ..q("drone") };
    assert_eq!(ids(index.search(&hs).unwrap()), vec![wco[0].id]);
    let by_fr = SearchQuery { publisher: Some("FR".into()), ..q("drone") };
    assert_eq!(ids(index.search(&by_fr).unwrap()), vec![fr[0].id]);
    let by_type = SearchQuery { doc_type: Some("classification.opinion".into()), text: None, ..q("") };
    assert_eq!(index.search(&by_type).unwrap().total, 2);
    // Odd input is searched as words, never an error.
    assert!(index.search(&q("\"unbalanced : ( [")).is_ok());

    // Similar classifications: only other publishers, with their code.
    let similar = index.similar(&fr[0], 5).unwrap();
    assert_eq!(similar.len(), 1, "{similar:?}");
    assert_eq!(similar[0].id, wco[0].id);
    assert_eq!(similar[0].classification, Some(("HS2022".into(), "880622".into())));
    assert!(similar[0].similarity > 0.0 && similar[0].similarity <= 1.0);
    assert_eq!(index.classified_under("HS2022", "88", 10).unwrap(), vec![wco[0].id]);
}

#[test]
fn an_index_reopens_where_its_last_commit_stopped_and_a_cleared_one_starts_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search");
    let docs =
        signed(&[ruling("classification.opinion", "Classification", json!({ "en": "Drones" }), "8806.22")], "WCO", 1);
    {
        let index = SearchIndex::open(&path).unwrap();
        index.add_all(&docs, 42).unwrap();
    }
    let index = SearchIndex::open(&path).unwrap();
    assert_eq!(index.visible_upto(), 42);
    assert_eq!(index.search(&q("drone")).unwrap().total, 1);
    index.clear().unwrap();
    assert_eq!(index.visible_upto(), 0);
    assert_eq!(index.search(&q("drone")).unwrap().total, 0);
}

#[test]
fn an_index_that_does_not_open_is_dropped_and_made_anew() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("meta.json"), b"not json").unwrap();
    let index = SearchIndex::open(&path).unwrap();
    assert_eq!(index.visible_upto(), 0);
}
