//! Integrity of a body beyond its schema: HS codes that exist in their edition, editions and
//! dates that are real, and the natural key that makes a document the one of its kind.
//!
//! Why apart from the schema and the projection: these checks depend on what a node holds (an
//! edition's signed nomenclature) and on the day, so they cannot decide ingest, which must reach
//! the same verdict on every node (docs/PROTOCOL.md §5.4). Publishing refuses a body with any
//! finding; a document received from a peer is stored all the same and its findings are shown
//! as flags. Pure: what the node holds is given as [`Held`], the day as a parameter.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use serde_json::Value;

use super::registry::DocType;
use super::Projection;
use crate::document::Edition;

/// The HS editions that exist: the 1988 original and each amended edition since.
pub const KNOWN_EDITIONS: [u16; 9] = [1988, 1992, 1996, 2002, 2007, 2012, 2017, 2022, 2028];
/// Earliest year of a real date in a document: the Customs Co-operation Council's convention
/// dates from 1950; nothing with legal effect under the HS is older.
pub const DATE_YEAR_MIN: i32 = 1950;
/// Latest year of a real date: beyond it a date is a typing error, not a plan.
pub const DATE_YEAR_MAX: i32 = 2199;
/// How many years ahead an amendment may announce an edition not yet known (the HS is
/// reviewed in five-year cycles; ten allows for one cycle's delay).
pub const EDITION_AHEAD_YEARS_MAX: i32 = 10;
/// Most findings reported for one body.
pub const FINDINGS_MAX: usize = 16;

/// One thing wrong with a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// An edition that does not exist (`HS2099`), and that nothing this node holds names.
    EditionUnknown { field: String, edition: String },
    /// A day outside [`DATE_YEAR_MIN`]..=[`DATE_YEAR_MAX`] (`0000-01-01`).
    DateImplausible { field: String, date: String },
    /// A code that cannot be in any edition (chapter 00, reserved chapter 77), or that the
    /// edition's signed nomenclature, held by this node, does not list.
    HsCodeUnknown { edition: String, code: String, reason: String },
}

impl Finding {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Finding::EditionUnknown { .. } => "edition_unknown",
            Finding::DateImplausible { .. } => "date_implausible",
            Finding::HsCodeUnknown { .. } => "hs_code_unknown",
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::EditionUnknown { field, edition } => write!(
                f,
                "{field}: {edition} is not an HS edition (known: {}) and this node holds nothing for it",
                KNOWN_EDITIONS.map(|y| format!("HS{y}")).join(", ")
            ),
            Finding::DateImplausible { field, date } => {
                write!(
                    f,
                    "{field}: {date} is not a real date for a document (years {DATE_YEAR_MIN} to {DATE_YEAR_MAX})"
                )
            }
            Finding::HsCodeUnknown { edition, code, reason } => write!(f, "{edition} {code}: {reason}"),
        }
    }
}

/// What the node holds that the checks depend on.
#[derive(Debug, Clone, Default)]
pub struct Held {
    /// Per (edition, chapter) whose signed nomenclature the node holds: the codes it lists
    /// (digits: chapter, headings, subheadings).
    pub chapters: BTreeMap<(Edition, String), HashSet<String>>,
    /// Editions some held document is indexed under.
    pub editions: BTreeSet<Edition>,
}

/// The (edition, chapter) pairs whose nomenclature the checks of this projection read.
pub fn chapters_needed(projection: &Projection) -> BTreeSet<(Edition, String)> {
    projection.subjects.iter().filter_map(|s| s.code.as_str().get(..2).map(|ch| (s.edition, ch.to_owned()))).collect()
}

/// The editions a body names, with the field that names each.
pub fn editions_named(body: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(body, "", &mut |path, key, v| {
        if matches!(key, "edition" | "edition_from" | "edition_to") {
            if let Some(s) = v.as_str() {
                out.push((path.to_owned(), s.to_owned()));
            }
        }
    });
    out
}

/// Calls `f(path, key, value)` for every member of every object under `v`.
fn walk(v: &Value, path: &str, f: &mut impl FnMut(&str, &str, &Value)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                f(&p, k, child);
                walk(child, &p, f);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{path}[{i}]"), f);
            }
        }
        _ => {}
    }
}

fn is_day(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shaped = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// Whether `edition` is real: a known edition, one a held document is indexed under, or (for
/// the edition an amendment set leads to) a later one within [`EDITION_AHEAD_YEARS_MAX`].
fn edition_real(edition: Edition, field: &str, ty: &DocType, today: NaiveDate, held: &Held) -> bool {
    if KNOWN_EDITIONS.contains(&edition.year()) || held.editions.contains(&edition) {
        return true;
    }
    let announces = ty.name == "hs.amendment" && field == "edition_to";
    announces && i32::from(edition.year()) <= today.year() + EDITION_AHEAD_YEARS_MAX
}

/// Everything wrong with a schema-valid body and its projection, at most [`FINDINGS_MAX`].
pub fn check(ty: &DocType, body: &Value, projection: &Projection, today: NaiveDate, held: &Held) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (field, name) in editions_named(body) {
        match Edition::parse(&name) {
            Ok(e) if edition_real(e, &field, ty, today, held) => {}
            _ => findings.push(Finding::EditionUnknown { field, edition: name }),
        }
    }
    walk(body, "", &mut |path, _, v| {
        let Some(s) = v.as_str() else { return };
        if let Some(day) = is_day(s) {
            if !(DATE_YEAR_MIN..=DATE_YEAR_MAX).contains(&day.year()) {
                findings.push(Finding::DateImplausible { field: path.to_owned(), date: s.to_owned() });
            }
        }
    });
    // A nomenclature defines its codes; it is not checked against itself.
    if ty.name != "hs.nomenclature" {
        for s in &projection.subjects {
            if let Some(reason) = code_problem(s.edition, s.code.as_str(), held) {
                findings.push(Finding::HsCodeUnknown {
                    edition: s.edition.to_string(),
                    code: dotted(s.code.as_str()),
                    reason,
                });
            }
        }
    }
    findings.truncate(FINDINGS_MAX);
    findings
}

/// Why `code` (digits) is not a code of `edition`, if it is not.
fn code_problem(edition: Edition, code: &str, held: &Held) -> Option<String> {
    let chapter = code.get(..2)?;
    match chapter {
        "00" => return Some("chapter 00 does not exist in any edition (chapters run from 01 to 99)".into()),
        "77" => return Some("chapter 77 is reserved and holds no codes".into()),
        _ => {}
    }
    let codes = held.chapters.get(&(edition, chapter.to_owned()))?;
    // A national line (8 or 10 digits) extends a subheading: its first six digits must exist.
    let hs_part = &code[..code.len().min(6)];
    if codes.contains(hs_part) {
        return None;
    }
    Some(format!("not in the signed {edition} nomenclature of chapter {chapter} held by this node"))
}

/// `880310` → `8803.10`; other lengths as they are, dotted after the heading.
pub fn dotted(code: &str) -> String {
    if code.len() > 4 {
        format!("{}.{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// The natural key of a body: what makes it *the* document of its kind for its publisher (an
/// amendment set's recommendation and number, a nomenclature's edition and chapter, a
/// transposition's editions and scope). `None` for types without one.
pub fn natural_key(ty: &DocType, body: &Value) -> Option<String> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    match ty.name {
        "hs.amendment" => {
            let reference = body.get("recommendation").and_then(|r| r.get("reference")).and_then(Value::as_str)?;
            let set = body.get("set_number").and_then(Value::as_u64)?;
            Some(format!("{} to {}, {reference}, set {set}", s("edition_from"), s("edition_to")))
        }
        "hs.nomenclature" => Some(format!("{} chapter {}", s("edition"), s("chapter"))),
        "hs.transposition" => Some(format!(
            "{} to {}, {} of {} chapter {}",
            s("edition_from"),
            s("edition_to"),
            s("scope"),
            s("administration"),
            s("chapter")
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctype::project;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    fn ruling(edition: &str, code: &str, from: &str) -> Value {
        json!({
            "title": { "en": "t" }, "reference": "r",
            "product": { "description": { "en": "p" } },
            "classification": { "edition": edition, "code": code },
            "gir": ["1"], "reasons": { "en": "r" }, "validity": { "from": from }
        })
    }

    fn findings(body: &Value, held: &Held) -> Vec<&'static str> {
        let ty = DocType::by_name("classification.ruling").unwrap();
        ty.validate(body).unwrap();
        let p = project(ty, body).unwrap();
        check(ty, body, &p, today(), held).iter().map(Finding::code).collect()
    }

    fn held_88() -> Held {
        let mut held = Held::default();
        let e = Edition::parse("HS2022").unwrap();
        held.chapters.insert((e, "88".into()), ["88", "8806", "880622"].map(String::from).into());
        held
    }

    #[test]
    fn a_code_is_checked_only_where_the_chapter_nomenclature_is_held() {
        let held = held_88();
        assert!(findings(&ruling("HS2022", "8806.22", "2026-01-01"), &held).is_empty());
        assert_eq!(findings(&ruling("HS2022", "8803.10", "2026-01-01"), &held), ["hs_code_unknown"]);
        assert!(findings(&ruling("HS2017", "8803.10", "2026-01-01"), &held).is_empty(), "HS2017 88 not held");
        assert!(findings(&ruling("HS2022", "8471.30", "2026-01-01"), &held).is_empty(), "chapter 84 not held");
        assert!(findings(&ruling("HS2022", "8806.2210", "2026-01-01"), &held).is_empty(), "a national line");
        assert_eq!(findings(&ruling("HS2022", "0000.00", "2026-01-01"), &Held::default()), ["hs_code_unknown"]);
        assert_eq!(findings(&ruling("HS2022", "7701.00", "2026-01-01"), &Held::default()), ["hs_code_unknown"]);
    }

    #[test]
    fn editions_and_dates_must_be_real() {
        let none = Held::default();
        assert_eq!(findings(&ruling("HS2099", "8806.22", "2026-01-01"), &none), ["edition_unknown"]);
        let mut held = Held::default();
        held.editions.insert(Edition::parse("HS2033").unwrap());
        assert!(findings(&ruling("HS2033", "8806.22", "2034-01-01"), &held).is_empty(), "a held edition is real");
        assert_eq!(findings(&ruling("HS2022", "8806.22", "0000-01-01"), &none), ["date_implausible"]);
        assert_eq!(findings(&ruling("HS2022", "8806.22", "9999-12-31"), &none), ["date_implausible"]);
        assert!(findings(&ruling("HS2022", "8806.22", "1950-01-01"), &none).is_empty());
    }

    #[test]
    fn an_amendment_may_announce_the_next_edition_but_not_a_far_one() {
        let ty = DocType::by_name("hs.amendment").unwrap();
        let set = |to: &str| {
            json!({
                "title": { "en": "t" }, "recommendation": { "reference": "R", "notified": "2030-07-01" },
                "edition_from": "HS2028", "edition_to": to, "set_number": 1, "entry_into_force": "2033-01-01",
                "validity": { "from": "2033-01-01" },
                "operations": [{ "op": "amend_text", "target": { "kind": "chapter_note", "code": "88" },
                    "find": { "en": "a" }, "replace": { "en": "b" } }]
            })
        };
        let codes = |body: &Value| {
            ty.validate(body).unwrap();
            let p = project(ty, body).unwrap();
            check(ty, body, &p, today(), &Held::default()).iter().map(Finding::code).collect::<Vec<_>>()
        };
        assert!(codes(&set("HS2033")).is_empty());
        assert_eq!(codes(&set("HS2099")), ["edition_unknown"]);
    }

    #[test]
    fn natural_keys_name_the_amendment_set_and_the_nomenclature_chapter() {
        let ty = DocType::by_name("hs.amendment").unwrap();
        let body = json!({ "edition_from": "HS2017", "edition_to": "HS2022", "set_number": 7,
            "recommendation": { "reference": "Rec 2019" } });
        assert_eq!(natural_key(ty, &body).unwrap(), "HS2017 to HS2022, Rec 2019, set 7");
        let ruling = DocType::by_name("classification.ruling").unwrap();
        assert_eq!(natural_key(ruling, &body), None);
    }
}
