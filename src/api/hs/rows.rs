//! The tracker's correlation rows: read from correlation tables and amendment sets, seen from
//! the asked edition, deduplicated and ordered (so offsets page them stably), the partners of
//! a page (other codes sharing a target), and the other codes' descriptions.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use super::{body, digits, docs_under, s, CorrelationRow, FANOUT_MAX};
use crate::api::ApiError;
use crate::document::{Edition, SignedDocument};
use crate::publish::chapter_entries;
use crate::service::Service;

/// Correlation rows of a document as `(edition_from, from, edition_to, to, relationship)`.
pub(super) fn correlation_rows(b: &Value) -> Vec<(String, String, String, String, String)> {
    let key = if b.get("rows").is_some() { "rows" } else { "correlation" };
    let rows = b.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    rows.iter()
        .map(|r| {
            (
                s(b, "edition_from").to_owned(),
                digits(s(r, "from")),
                s(b, "edition_to").to_owned(),
                digits(s(r, "to")),
                s(r, "relationship").to_owned(),
            )
        })
        .collect()
}

pub(super) fn flip(rel: &str) -> String {
    match rel {
        "1:n" => "n:1".into(),
        "n:1" => "1:n".into(),
        other => other.into(),
    }
}

/// Rows of `docs` seen from `edition`, keeping those whose code in `edition` passes `keep`.
pub(super) fn rows_in(
    docs: &[SignedDocument],
    edition: &str,
    keep: impl Fn(&str) -> bool,
    direct: bool,
) -> Vec<CorrelationRow> {
    let mut out = Vec::new();
    for doc in docs {
        for (ed_from, from, ed_to, to, rel) in correlation_rows(&body(doc)) {
            let row = if ed_from == edition && keep(&from) {
                Some((from, ed_to, to, rel))
            } else if ed_to == edition && keep(&to) {
                Some((to, ed_from, from, flip(&rel)))
            } else {
                None
            };
            if let Some((code, other_edition, other_code, relationship)) = row {
                out.push(CorrelationRow {
                    code,
                    other_edition,
                    other_code,
                    relationship,
                    direct,
                    other_description: None,
                    document: doc.id.to_hex(),
                });
            }
        }
    }
    out
}

/// Rows without repeats, ordered by other edition, code and other code.
pub(super) fn dedup_sorted(mut rows: Vec<CorrelationRow>) -> Vec<CorrelationRow> {
    let mut seen = HashSet::new();
    rows.retain(|r| seen.insert((r.code.clone(), r.other_edition.clone(), r.other_code.clone())));
    rows.sort_by(|a, b| (&a.other_edition, &a.code, &a.other_code).cmp(&(&b.other_edition, &b.code, &b.other_code)));
    rows
}

/// Other codes of `edition` (outside `prefix`) that share a target with one of `own` (n:1,
/// n:n): at most [`FANOUT_MAX`] targets are followed, the view says `truncated` beyond.
pub(super) fn partners(
    service: &Service,
    own: &[CorrelationRow],
    edition: &str,
    prefix: &str,
    truncated: &mut bool,
) -> Result<Vec<CorrelationRow>, ApiError> {
    let targets: BTreeSet<(String, String)> = own
        .iter()
        .filter(|r| r.relationship != "1:1")
        .map(|r| (r.other_edition.clone(), r.other_code.clone()))
        .collect();
    if targets.len() > FANOUT_MAX {
        *truncated = true;
    }
    let mut out = Vec::new();
    for (other_ed, other_code) in targets.iter().take(FANOUT_MAX) {
        let Ok(other) = Edition::parse(other_ed) else { continue };
        let mut docs = docs_under(service, other, other_code, Some("hs.correlation"), 64, truncated)?;
        docs.extend(docs_under(service, other, other_code, Some("hs.amendment"), 64, truncated)?);
        for mut row in rows_in(&docs, other_ed, |c| c == other_code, false) {
            // Seen from the other edition: turn it back to this edition's point of view.
            if row.other_edition != edition || row.other_code.starts_with(prefix) {
                continue;
            }
            std::mem::swap(&mut row.code, &mut row.other_code);
            row.other_edition = other_ed.clone();
            row.relationship = flip(&row.relationship);
            out.push(row);
        }
    }
    Ok(dedup_sorted(out))
}

/// Fills each row's `other_description` from the held nomenclature of its other edition.
pub(super) fn describe<'a>(
    service: &Service,
    rows: impl Iterator<Item = &'a mut CorrelationRow>,
) -> Result<(), ApiError> {
    let mut chapters: BTreeMap<(String, String), Option<BTreeMap<String, String>>> = BTreeMap::new();
    for row in rows {
        let Some(chapter) = row.other_code.get(..2) else { continue };
        let key = (row.other_edition.clone(), chapter.to_owned());
        if !chapters.contains_key(&key) {
            let entries = match Edition::parse(&row.other_edition) {
                Ok(e) => chapter_entries(&service.store, e, chapter)?,
                Err(_) => None,
            };
            chapters.insert(key.clone(), entries);
        }
        row.other_description = chapters[&key].as_ref().and_then(|m| m.get(&row.other_code)).cloned();
    }
    Ok(())
}
