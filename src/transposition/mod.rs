//! The transposition workbench: what becomes of each national line of an administration's
//! tariff (8 or 10 digits) when the HS moves from edition A to edition B.
//!
//! [`Basis`] is what the node's signed documents say about A→B: both nomenclatures, the
//! amendment operations and the correlation rows, each with the document it comes from
//! (`basis.rs` reads it from the store). [`classify`] is pure: every line gets a relationship
//! (unchanged, description changed, split, merged, moved, deleted), the candidate new lines,
//! and the amendment sets and correlation rows behind it. [`drafts`] makes one
//! `hs.transposition` body per chapter, status `draft`, ready to review and publish.

mod basis;
mod tariff;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

pub use basis::{load_basis, BasisError, BASIS_DOCS_MAX};
pub use tariff::{parse_tariff, TariffError, TariffLine, TARIFF_BYTES_MAX, TARIFF_LINES_MAX};

use crate::document::{DocumentId, Edition};

/// What happened to a line, seen from edition A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    /// The subheading goes on, same code and text, alone.
    Unchanged,
    /// Same code, its text amended.
    DescriptionChanged,
    /// Its goods go to several codes of B.
    Split,
    /// It goes into one code of B that also takes other codes of A.
    Merged,
    /// It goes whole to one other code of B.
    Moved,
    /// Deleted with no code of B to go to.
    Deleted,
}

impl Relationship {
    pub fn as_str(self) -> &'static str {
        match self {
            Relationship::Unchanged => "unchanged",
            Relationship::DescriptionChanged => "description_changed",
            Relationship::Split => "split",
            Relationship::Merged => "merged",
            Relationship::Moved => "moved",
            Relationship::Deleted => "deleted",
        }
    }

    /// All of them, in order.
    pub const ALL: [Relationship; 6] = [
        Relationship::Unchanged,
        Relationship::DescriptionChanged,
        Relationship::Split,
        Relationship::Merged,
        Relationship::Moved,
        Relationship::Deleted,
    ];
}

/// A correlation row A→B and the document it comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BasisRow {
    pub from: String,
    pub to: String,
    pub document: DocumentId,
}

/// What the held documents say about A→B, by six-digit subheading.
#[derive(Debug, Clone, Default)]
pub struct Basis {
    pub from: Option<Edition>,
    pub to: Option<Edition>,
    /// Subheadings of A (six digits) → description, from A's held nomenclature.
    pub old_codes: BTreeMap<String, String>,
    /// Subheadings of B → description.
    pub new_codes: BTreeMap<String, String>,
    /// A subheading → rows to B.
    pub forward: BTreeMap<String, BTreeSet<BasisRow>>,
    /// B subheading → A subheadings that go to it.
    pub backward: BTreeMap<String, BTreeSet<String>>,
    /// A subheading → amendment sets whose operations delete or amend it.
    pub amended: BTreeMap<String, BTreeSet<DocumentId>>,
    /// A subheadings whose text an amendment substitutes or amends (not deletes).
    pub text_amended: BTreeSet<String>,
    /// B subheading → amendment sets that insert it.
    pub inserted: BTreeMap<String, BTreeSet<DocumentId>>,
    /// How many documents of each kind the basis was read from.
    pub documents: BTreeMap<&'static str, usize>,
}

/// One line classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineResult {
    pub old: String,
    pub description: String,
    pub relationship: Relationship,
    /// Candidate national lines of B: each target subheading with the line's national digits.
    pub new: Vec<String>,
    pub amendments: Vec<DocumentId>,
    pub correlation: Vec<BasisRow>,
    /// Why, for a person reviewing it.
    pub note: String,
}

/// Most correlation rows or amendment sets named on one line (the schema's bounds).
const LINE_LIST_MAX: usize = 16;
const LINE_ROWS_MAX: usize = 64;

/// Classifies one line against the basis.
pub fn classify_line(basis: &Basis, line: &TariffLine) -> LineResult {
    let sub = &line.code[..6];
    let national = &line.code[6..];
    let rows: Vec<BasisRow> = basis.forward.get(sub).map(|r| r.iter().cloned().collect()).unwrap_or_default();
    let targets: BTreeSet<&str> = rows.iter().map(|r| r.to.as_str()).collect();
    let mut amendments: BTreeSet<DocumentId> = basis.amended.get(sub).cloned().unwrap_or_default();
    for t in &targets {
        amendments.extend(basis.inserted.get(*t).into_iter().flatten());
    }
    let shares = |t: &str| basis.backward.get(t).is_some_and(|s| s.iter().any(|o| o != sub));
    let (relationship, new_subs, note): (Relationship, Vec<&str>, String) = if targets.is_empty() {
        // Without a row, the new nomenclature decides; without it, a deleting amendment does.
        let deleted_by_amendment = basis.amended.contains_key(sub) && !basis.text_amended.contains(sub);
        if basis.new_codes.contains_key(sub) || (basis.new_codes.is_empty() && !deleted_by_amendment) {
            let r = if basis.text_amended.contains(sub) {
                Relationship::DescriptionChanged
            } else {
                Relationship::Unchanged
            };
            (r, vec![sub], "no correlation row; the code is in the new edition".into())
        } else {
            (Relationship::Deleted, vec![], "deleted; no correlation row to any new code".into())
        }
    } else if targets.len() > 1 {
        let n = targets.len();
        (
            Relationship::Split,
            targets.iter().copied().collect(),
            format!("split into {n} subheadings: review which goods go where"),
        )
    } else {
        let t = *targets.iter().next().expect("one target");
        if shares(t) {
            let others = basis.backward[t].len() - 1;
            (
                Relationship::Merged,
                vec![t],
                format!("merged into {} with {others} other subheading(s)", crate::doctype::dotted(t)),
            )
        } else if t != sub {
            (Relationship::Moved, vec![t], format!("moved to {}", crate::doctype::dotted(t)))
        } else if basis.text_amended.contains(sub) {
            (Relationship::DescriptionChanged, vec![t], "same code, text amended".into())
        } else {
            (Relationship::Unchanged, vec![t], String::new())
        }
    };
    let mut note = note;
    if relationship == Relationship::Unchanged && !amendments.is_empty() {
        note = "an amendment set names it, but code and text go on".into();
    }
    LineResult {
        old: line.code.clone(),
        description: line.description.clone(),
        relationship,
        new: new_subs.iter().map(|t| format!("{t}{national}")).collect(),
        amendments: amendments.into_iter().take(LINE_LIST_MAX).collect(),
        correlation: rows.into_iter().take(LINE_ROWS_MAX).collect(),
        note,
    }
}

/// Classifies every line, in the tariff's order.
pub fn classify(basis: &Basis, lines: &[TariffLine]) -> Vec<LineResult> {
    lines.iter().map(|l| classify_line(basis, l)).collect()
}

/// Lines by relationship.
pub fn counts(results: &[LineResult]) -> BTreeMap<&'static str, usize> {
    let mut out: BTreeMap<&'static str, usize> = Relationship::ALL.iter().map(|r| (r.as_str(), 0)).collect();
    for r in results {
        *out.entry(r.relationship.as_str()).or_default() += 1;
    }
    out
}

/// Who transposes what: the administration, the scope and the two editions.
#[derive(Debug, Clone)]
pub struct DraftScope {
    pub administration: String,
    /// `national_tariff` or `wto_schedule`.
    pub scope: String,
    pub from: Edition,
    pub to: Edition,
}

/// Most lines of one `hs.transposition` document (the schema's bound); a chapter with more
/// lines is refused by [`drafts`] (its natural key allows one document per chapter).
pub const DRAFT_LINES_MAX: usize = 4000;

/// One `hs.transposition` body per chapter, status `draft`.
pub fn drafts(scope: &DraftScope, results: &[LineResult]) -> Result<Vec<Value>, String> {
    let mut by_chapter: BTreeMap<&str, Vec<&LineResult>> = BTreeMap::new();
    for r in results {
        by_chapter.entry(&r.old[..2]).or_default().push(r);
    }
    by_chapter
        .into_iter()
        .map(|(chapter, lines)| {
            if lines.len() > DRAFT_LINES_MAX {
                return Err(format!("chapter {chapter} has {} lines, more than {DRAFT_LINES_MAX}", lines.len()));
            }
            let lines: Vec<Value> = lines
                .iter()
                .map(|r| {
                    let mut v = json!({ "old": r.old, "relationship": r.relationship.as_str(), "new": r.new });
                    if !r.description.is_empty() {
                        v["description"] = json!(r.description.chars().take(1024).collect::<String>());
                    }
                    if !r.amendments.is_empty() {
                        v["amendments"] = json!(r.amendments.iter().map(|d| d.to_hex()).collect::<Vec<_>>());
                    }
                    if !r.correlation.is_empty() {
                        v["correlation"] = json!(r
                            .correlation
                            .iter()
                            .map(|c| json!({ "from": c.from, "to": c.to, "document": c.document.to_hex() }))
                            .collect::<Vec<_>>());
                    }
                    if !r.note.is_empty() {
                        v["note"] = json!(r.note);
                    }
                    v
                })
                .collect();
            Ok(json!({
                "title": { "en": format!("{} {} {}→{}: chapter {chapter}", scope.administration,
                    scope.scope.replace('_', " "), scope.from, scope.to) },
                "administration": scope.administration,
                "scope": scope.scope,
                "edition_from": scope.from.to_string(),
                "edition_to": scope.to.to_string(),
                "chapter": chapter,
                "status": "draft",
                "lines": lines,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests;
