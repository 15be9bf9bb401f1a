//! Reads a [`Basis`] from the signed documents a node holds: the two editions' nomenclatures,
//! the amendment sets from A to B, and the correlation tables between them (either direction).

use serde_json::Value;

use super::{Basis, BasisRow};
use crate::document::{Edition, SignedDocument, TypeName};
use crate::publish::{walk_query, LOOKUP_PAGES_MAX};
use crate::store::{Query, Store, StoreError};

/// Most documents of one type read for a basis (the publish lookups' page bound).
pub const BASIS_DOCS_MAX: usize = LOOKUP_PAGES_MAX * 1000;

/// Why no basis could be read.
#[derive(Debug, thiserror::Error)]
pub enum BasisError {
    #[error("{from} must be an older edition than {to}")]
    Order { from: Edition, to: Edition },
    #[error(
        "this node holds no amendment set and no correlation table from {from} to {to}: nothing to transpose with"
    )]
    NothingHeld { from: Edition, to: Edition },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn docs_of(store: &Store, ty: &str, mut visit: impl FnMut(&SignedDocument, &Value)) -> Result<(), StoreError> {
    let query = Query { doc_type: Some(TypeName::new(ty).expect("a registered type")), ..Query::default() };
    walk_query(store, query, |doc| {
        let body: Value = serde_json::from_slice(doc.body()).unwrap_or_default();
        visit(&doc, &body);
        Ok(false)
    })
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn digits(s: &str) -> String {
    s.chars().filter(|c| *c != '.').collect()
}

fn items<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// Reads what the held documents say about `from` → `to`.
pub fn load_basis(store: &Store, from: Edition, to: Edition) -> Result<Basis, BasisError> {
    if from >= to {
        return Err(BasisError::Order { from, to });
    }
    let (a, b) = (from.to_string(), to.to_string());
    let mut basis = Basis { from: Some(from), to: Some(to), ..Basis::default() };
    docs_of(store, "hs.nomenclature", |_, body| {
        let ed = text(body, "edition");
        let map = if ed == a {
            &mut basis.old_codes
        } else if ed == b {
            &mut basis.new_codes
        } else {
            return;
        };
        for e in items(body, "entries") {
            let code = digits(text(e, "code"));
            if code.len() == 6 {
                let d = e.get("description").map(|d| text(d, "en")).unwrap_or_default();
                map.entry(code).or_insert_with(|| d.to_owned());
            }
        }
        *basis.documents.entry("hs.nomenclature").or_default() += 1;
    })?;
    let mut amendment_rows = Vec::new();
    docs_of(store, "hs.amendment", |doc, body| {
        if text(body, "edition_from") != a || text(body, "edition_to") != b {
            return;
        }
        *basis.documents.entry("hs.amendment").or_default() += 1;
        for op in items(body, "operations") {
            let code = digits(op.get("target").map(|t| text(t, "code")).unwrap_or_default());
            match (text(op, "op"), code.len()) {
                ("insert", 6) => {
                    basis.inserted.entry(code).or_default().insert(doc.id);
                }
                ("delete", 6) => {
                    basis.amended.entry(code).or_default().insert(doc.id);
                }
                // A deleted heading takes its subheadings with it.
                ("delete", 4) => {
                    let under: Vec<String> = basis
                        .old_codes
                        .range(code.clone()..)
                        .take_while(|(c, _)| c.starts_with(&code))
                        .map(|(c, _)| c.clone())
                        .collect();
                    for c in under {
                        basis.amended.entry(c).or_default().insert(doc.id);
                    }
                }
                ("delete_substitute" | "amend_text", 6) => {
                    basis.amended.entry(code.clone()).or_default().insert(doc.id);
                    basis.text_amended.insert(code);
                }
                _ => {}
            }
        }
        for r in items(body, "correlation") {
            amendment_rows.push(BasisRow {
                from: digits(text(r, "from")),
                to: digits(text(r, "to")),
                document: doc.id,
            });
        }
    })?;
    let mut rows = amendment_rows;
    docs_of(store, "hs.correlation", |doc, body| {
        let (ef, et) = (text(body, "edition_from"), text(body, "edition_to"));
        let forward = ef == a && et == b;
        let backward = ef == b && et == a;
        if !forward && !backward {
            return;
        }
        *basis.documents.entry("hs.correlation").or_default() += 1;
        for r in items(body, "rows") {
            let (f, t) = (digits(text(r, "from")), digits(text(r, "to")));
            let (from, to) = if forward { (f, t) } else { (t, f) };
            rows.push(BasisRow { from, to, document: doc.id });
        }
    })?;
    if !basis.documents.contains_key("hs.amendment") && !basis.documents.contains_key("hs.correlation") {
        return Err(BasisError::NothingHeld { from, to });
    }
    for row in rows.into_iter().filter(|r| r.from.len() == 6 && r.to.len() == 6) {
        basis.backward.entry(row.to.clone()).or_default().insert(row.from.clone());
        // One row per (from, to): the first document that states it (correlation tables
        // and amendment sets may both).
        let set = basis.forward.entry(row.from.clone()).or_default();
        if !set.iter().any(|r| r.to == row.to) {
            set.insert(row);
        }
    }
    Ok(basis)
}
