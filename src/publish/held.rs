//! What publishing reads from the store before it signs: the signed nomenclature chapters a
//! body's codes fall in, the editions held, and this organization's documents with the same
//! body or the same natural key.
//!
//! Every lookup walks the store's indexes with a bound on pages read; a bound reached is said
//! in the doc of each function, never silent in a way that lets a duplicate through unnoticed
//! (the candidates are narrowed by the index first).

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::doctype::{chapters_needed, editions_named, DocType, Held, Projection, KNOWN_EDITIONS};
use crate::document::{decode, decode_owned, DocumentId, Edition, OrgId, RefKind, Seq, SignedDocument, TypeName};
use crate::store::{Query, Store, StoreError};

/// Most store pages (of [`PAGE_LIMIT`] documents) one lookup reads.
pub const LOOKUP_PAGES_MAX: usize = 64;
const PAGE_LIMIT: usize = 1000;

/// The documents matching `query`, page by page, at most [`LOOKUP_PAGES_MAX`] pages; `visit`
/// returns `true` to stop.
pub fn walk_query(
    store: &Store,
    mut query: Query,
    mut visit: impl FnMut(SignedDocument) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    query.limit = PAGE_LIMIT;
    // Every match is visited: the index's own order is the cheapest.
    query.index_order = true;
    for _ in 0..LOOKUP_PAGES_MAX {
        let page = store.query(&query).map_err(|e| match e {
            crate::store::QueryError::Store(e) => e,
            // Built here from validated codes and constant limits: a refusal is a bug, not input.
            _ => StoreError::Corrupt { path: store.path().to_owned(), what: "publish lookup query (a bug)" },
        })?;
        for id in page.ids {
            let Some(bytes) = store.get(&id)? else { continue };
            let doc = decode_owned(bytes)
                .map_err(|_| StoreError::Corrupt { path: store.path().to_owned(), what: "stored document" })?;
            if visit(doc)? {
                return Ok(());
            }
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => return Ok(()),
        }
    }
    Ok(())
}

fn type_name(name: &str) -> TypeName {
    TypeName::new(name).expect("registered type names are valid")
}

/// The entries (code digits → English description) of `edition`'s chapter `chapter` in the
/// signed nomenclature documents held (any publisher), or `None` when none is held.
pub fn chapter_entries(
    store: &Store,
    edition: Edition,
    chapter: &str,
) -> Result<Option<BTreeMap<String, String>>, StoreError> {
    let query = Query {
        hs: Some((edition, chapter.to_owned())),
        doc_type: Some(type_name("hs.nomenclature")),
        ..Query::default()
    };
    let mut entries: Option<BTreeMap<String, String>> = None;
    let ed = edition.to_string();
    walk_query(store, query, |doc| {
        let body: Value = serde_json::from_slice(doc.body()).unwrap_or_default();
        let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        if s("edition") != ed || s("chapter") != chapter {
            return Ok(false);
        }
        let map = entries.get_or_insert_with(BTreeMap::new);
        for e in body.get("entries").and_then(Value::as_array).into_iter().flatten() {
            if let Some(code) = e.get("code").and_then(Value::as_str) {
                let text = e.get("description").and_then(|d| d.get("en")).and_then(Value::as_str).unwrap_or_default();
                map.entry(code.replace('.', "")).or_insert_with(|| text.to_owned());
            }
        }
        Ok(false)
    })?;
    Ok(entries)
}

/// The codes of `edition`'s chapter `chapter` in the held nomenclature, or `None` when none is held.
pub fn chapter_codes(store: &Store, edition: Edition, chapter: &str) -> Result<Option<HashSet<String>>, StoreError> {
    Ok(chapter_entries(store, edition, chapter)?.map(|m| m.into_keys().collect()))
}

/// What the integrity checks of `body` need from the store.
pub fn held_for(store: &Store, body: &Value, projection: &Projection) -> Result<Held, StoreError> {
    let mut held = Held::default();
    let unknown = editions_named(body)
        .iter()
        .filter_map(|(_, e)| Edition::parse(e).ok())
        .any(|e| !KNOWN_EDITIONS.contains(&e.year()));
    if unknown {
        held.editions = store.held_editions()?.into_iter().collect();
    }
    for (edition, chapter) in chapters_needed(projection) {
        if let Some(codes) = chapter_codes(store, edition, &chapter)? {
            held.chapters.insert((edition, chapter), codes);
        }
    }
    Ok(held)
}

/// The narrowest query for `org`'s documents of type `ty` that share `projection`.
fn candidates(org: &OrgId, ty: &DocType, projection: &Projection) -> Query {
    let mut query = Query { doc_type: Some(type_name(ty.name)), publisher: Some(org.clone()), ..Query::default() };
    if let Some(s) = projection.subjects.first() {
        query.hs = Some((s.edition, s.code.as_str().to_owned()));
    }
    query
}

/// `org`'s document of type `ty` whose body is the same JSON value as `body`, if one is held.
///
/// Candidates come from the HS index (the body's first subject) or, for a body without HS
/// subjects, from the documents its first reference points at, or else from the type index;
/// at most [`LOOKUP_PAGES_MAX`] pages are read.
pub fn same_body(
    store: &Store,
    org: &OrgId,
    ty: &DocType,
    body: &Value,
    projection: &Projection,
) -> Result<Option<(DocumentId, Seq)>, StoreError> {
    let same = |doc: &SignedDocument| {
        doc.header.publisher == *org
            && doc.header.doc_type.as_str() == ty.name
            && serde_json::from_slice::<Value>(doc.body()).is_ok_and(|b| b == *body)
    };
    if projection.subjects.is_empty() {
        if let Some(r) = projection.references.first() {
            for (_, source) in store.referrers(&r.target)? {
                let Some(bytes) = store.get(&source)? else { continue };
                let Ok(doc) = decode(&bytes) else { continue };
                if same(&doc) {
                    return Ok(Some((doc.id, doc.header.seq)));
                }
            }
            return Ok(None);
        }
    }
    let mut found = None;
    walk_query(store, candidates(org, ty, projection), |doc| {
        if same(&doc) {
            found = Some((doc.id, doc.header.seq));
        }
        Ok(found.is_some())
    })?;
    Ok(found)
}

/// `org`'s live document of type `ty` holding natural key `key`, if any: one that no
/// supersede or withdraw act, and no later document superseding it, has ended.
pub fn natural_key_holder(
    store: &Store,
    org: &OrgId,
    ty: &DocType,
    key: &str,
    projection: &Projection,
) -> Result<Option<DocumentId>, StoreError> {
    let mut query = Query { doc_type: Some(type_name(ty.name)), publisher: Some(org.clone()), ..Query::default() };
    // A nomenclature's key is its edition and chapter, which is also its first subject.
    if ty.name == "hs.nomenclature" {
        query = candidates(org, ty, projection);
    }
    let mut holders = Vec::new();
    walk_query(store, query, |doc| {
        let body: Value = serde_json::from_slice(doc.body()).unwrap_or_default();
        if crate::doctype::natural_key(ty, &body).as_deref() == Some(key) {
            holders.push(doc.id);
        }
        Ok(false)
    })?;
    for id in holders {
        let ended =
            store.referrers(&id)?.iter().any(|(kind, _)| matches!(kind, RefKind::Supersedes | RefKind::Withdraws));
        if !ended {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
