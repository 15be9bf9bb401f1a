//! Real HS reference data (UN nomenclatures, HS2017→HS2022 changes and correlation) and the
//! documents built from it for the demo, the tests and the benchmarks.
//!
//! The full files live in `../shared/data/hs/` beside a checkout; a small excerpt (five
//! chapters) is embedded in the binary so the demo and the always-on tests run anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Why the HS files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HsDataError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{file} row {row}: {reason}")]
    Row { file: &'static str, row: usize, reason: String },
}

/// One nomenclature row.
#[derive(Debug, Clone)]
pub struct NomEntry {
    pub section: Option<String>,
    pub code: String,
    pub description: String,
    pub parent: String,
    pub level: u8,
}

/// One HS2017→HS2022 change.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: String,
    pub code: String,
    pub old: String,
    pub new: String,
}

/// One HS2022↔HS2017 correlation row.
#[derive(Debug, Clone)]
pub struct CorrRow {
    pub hs2022: String,
    pub hs2017: String,
    pub relationship: String,
}

/// The reference data set.
#[derive(Debug, Clone, Default)]
pub struct HsData {
    pub hs2022: Vec<NomEntry>,
    pub hs2017: Vec<NomEntry>,
    pub sections: BTreeMap<String, String>,
    pub changes: Vec<Change>,
    pub correlation: Vec<CorrRow>,
}

const EXCERPT: [(&str, &str); 5] = [
    ("hs2022-nomenclature.csv", include_str!("../data/hs-excerpt/hs2022-nomenclature.csv")),
    ("hs2017-nomenclature.csv", include_str!("../data/hs-excerpt/hs2017-nomenclature.csv")),
    ("hs2022-sections.csv", include_str!("../data/hs-excerpt/hs2022-sections.csv")),
    ("hs2017-hs2022-changes.csv", include_str!("../data/hs-excerpt/hs2017-hs2022-changes.csv")),
    ("hs2022-hs2017-correlation.csv", include_str!("../data/hs-excerpt/hs2022-hs2017-correlation.csv")),
];

/// The full data folder beside this checkout (`../shared/data/hs`), if present.
pub fn shared_dir() -> Option<PathBuf> {
    let candidates =
        [Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/hs"), PathBuf::from("../shared/data/hs")];
    candidates.into_iter().find(|p| p.join("hs2022-nomenclature.csv").is_file())
}

fn rows(file: &'static str, text: &str) -> Result<Vec<csv::StringRecord>, HsDataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| HsDataError::Row { file, row: i + 2, reason: e.to_string() }))
        .collect()
}

fn col<'a>(file: &'static str, row: usize, r: &'a csv::StringRecord, i: usize) -> Result<&'a str, HsDataError> {
    r.get(i).ok_or_else(|| HsDataError::Row { file, row, reason: format!("missing column {}", i + 1) })
}

impl HsData {
    /// The embedded five-chapter excerpt.
    pub fn excerpt() -> HsData {
        HsData::parse(|name| Ok(EXCERPT.iter().find(|(n, _)| *n == name).expect("embedded file").1.to_owned()))
            .expect("the embedded excerpt parses")
    }

    /// Loads the full files from a folder such as `../shared/data/hs`.
    pub fn load(dir: &Path) -> Result<HsData, HsDataError> {
        HsData::parse(|name| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| HsDataError::Read { path, source })
        })
    }

    fn parse(read: impl Fn(&'static str) -> Result<String, HsDataError>) -> Result<HsData, HsDataError> {
        let mut data = HsData::default();
        let f = "hs2022-nomenclature.csv";
        for (i, r) in rows(f, &read(f)?)?.iter().enumerate() {
            let c = |j| col(f, i + 2, r, j);
            data.hs2022.push(NomEntry {
                section: Some(c(0)?.to_owned()),
                code: c(1)?.to_owned(),
                description: c(2)?.to_owned(),
                parent: c(3)?.to_owned(),
                level: c(4)?.parse().map_err(|_| HsDataError::Row {
                    file: f,
                    row: i + 2,
                    reason: "bad level".into(),
                })?,
            });
        }
        let f = "hs2017-nomenclature.csv";
        for (i, r) in rows(f, &read(f)?)?.iter().enumerate() {
            let c = |j| col(f, i + 2, r, j);
            data.hs2017.push(NomEntry {
                section: None,
                code: c(0)?.to_owned(),
                description: c(1)?.to_owned(),
                parent: c(2)?.to_owned(),
                level: c(3)?.parse().map_err(|_| HsDataError::Row {
                    file: f,
                    row: i + 2,
                    reason: "bad level".into(),
                })?,
            });
        }
        let f = "hs2022-sections.csv";
        for (i, r) in rows(f, &read(f)?)?.iter().enumerate() {
            data.sections.insert(col(f, i + 2, r, 0)?.to_owned(), col(f, i + 2, r, 1)?.to_owned());
        }
        let f = "hs2017-hs2022-changes.csv";
        for (i, r) in rows(f, &read(f)?)?.iter().enumerate() {
            let c = |j| col(f, i + 2, r, j);
            data.changes.push(Change { kind: c(0)?.into(), code: c(1)?.into(), old: c(2)?.into(), new: c(3)?.into() });
        }
        let f = "hs2022-hs2017-correlation.csv";
        for (i, r) in rows(f, &read(f)?)?.iter().enumerate() {
            let c = |j| col(f, i + 2, r, j);
            data.correlation.push(CorrRow { hs2022: c(0)?.into(), hs2017: c(1)?.into(), relationship: c(2)?.into() });
        }
        Ok(data)
    }

    /// Two-digit chapters of HS2022 that have entries (the statistical chapter 99 excluded).
    pub fn chapters_2022(&self) -> Vec<&NomEntry> {
        self.hs2022.iter().filter(|e| e.level == 2 && e.code != "99").collect()
    }

    /// The HS2022 description of a code, if it exists.
    pub fn describe_2022(&self, code: &str) -> Option<&str> {
        self.hs2022.iter().find(|e| e.code == code).map(|e| e.description.as_str())
    }
}

/// A document ready to publish: its type and body.
#[derive(Debug, Clone)]
pub struct DraftDocument {
    pub doc_type: &'static str,
    pub body: Value,
}

/// HS2022 validity: 1 January 2022 until HS2028 takes over on 1 January 2028.
const HS2022_FROM: &str = "2022-01-01";
const HS2022_TO: &str = "2027-12-31";
/// HS2017 validity: 1 January 2017 until HS2022 took over.
const HS2017_FROM: &str = "2017-01-01";
const HS2017_TO: &str = "2021-12-31";

/// One `hs.nomenclature` document per HS2022 chapter.
pub fn nomenclature_documents(data: &HsData) -> Vec<DraftDocument> {
    nomenclature_of(&data.hs2022, "HS2022", HS2022_FROM, HS2022_TO)
}

/// One `hs.nomenclature` document per HS2017 chapter: the edition before, whose codes and texts
/// a deleted or changed code is shown with.
pub fn nomenclature_documents_2017(data: &HsData) -> Vec<DraftDocument> {
    nomenclature_of(&data.hs2017, "HS2017", HS2017_FROM, HS2017_TO)
}

fn nomenclature_of(rows: &[NomEntry], edition: &str, from: &str, to: &str) -> Vec<DraftDocument> {
    let mut by_chapter: BTreeMap<&str, Vec<&NomEntry>> = BTreeMap::new();
    for e in rows.iter().filter(|e| e.level >= 2 && !e.code.starts_with("99") && e.code != "TOTAL") {
        by_chapter.entry(&e.code[..2]).or_default().push(e);
    }
    by_chapter
        .into_iter()
        .map(|(chapter, entries)| {
            let head = entries.iter().find(|e| e.level == 2);
            let section = head.and_then(|e| e.section.clone()).unwrap_or_default();
            let mut body = json!({
                "title": { "en": format!("{edition} Chapter {chapter}: {}", head.map_or("", |e| e.description.as_str())) },
                "edition": edition,
                "chapter": chapter,
                "entries": entries.iter().map(|e| {
                    let mut v = json!({ "code": e.code, "level": e.level, "description": { "en": e.description } });
                    if e.level > 2 { v["parent"] = json!(e.parent); }
                    v
                }).collect::<Vec<_>>(),
                "validity": { "from": from, "to": to },
            });
            if section.chars().all(|c| "IVX".contains(c)) && !section.is_empty() {
                body["section"] = json!(section);
            }
            DraftDocument { doc_type: "hs.nomenclature", body }
        })
        .collect()
}

/// `hs.amendment` sets reconstructed from the HS2017→HS2022 changes, one set per HS2017/HS2022
/// heading touched, with the correlation rows of the codes each set moves.
pub fn amendment_documents(data: &HsData) -> Vec<DraftDocument> {
    let mut by_heading: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in &data.changes {
        by_heading.entry(&c.code[..4]).or_default().push(c);
    }
    by_heading
        .into_iter()
        .enumerate()
        .map(|(i, (heading, changes))| {
            let mut operations = Vec::new();
            let (mut inserted, mut deleted, mut amended) = (0, 0, 0);
            let mut moved: Vec<&str> = Vec::new();
            for c in &changes {
                let kind = if c.code.len() == 4 { "heading" } else { "subheading" };
                let op = match c.kind.as_str() {
                    "new_heading" | "new_subheading" => {
                        inserted += 1;
                        json!({ "op": "insert", "target": { "kind": kind, "code": c.code }, "text": { "en": c.new } })
                    }
                    "deleted_heading" | "deleted_subheading" => {
                        deleted += 1;
                        json!({ "op": "delete", "target": { "kind": kind, "code": c.code } })
                    }
                    _ => {
                        amended += 1;
                        json!({ "op": "delete_substitute", "target": { "kind": kind, "code": c.code }, "text": { "en": c.new } })
                    }
                };
                operations.push(op);
                moved.push(&c.code);
            }
            let correlation: Vec<Value> = data
                .correlation
                .iter()
                .filter(|r| r.relationship != "1:1" && moved.iter().any(|m| r.hs2022.starts_with(m) || r.hs2017.starts_with(m)))
                .take(512)
                .map(|r| json!({ "from": r.hs2017, "to": r.hs2022, "relationship": r.relationship }))
                .collect();
            let description = data.describe_2022(heading).unwrap_or("(heading deleted in HS2022)");
            let mut body = json!({
                "title": { "en": format!("HS2022 amendment set {}: heading {heading}", i + 1) },
                "recommendation": {
                    "reference": "Article 16 Recommendation amending the Nomenclature (HS2022 cycle)",
                    "notified": "2019-07-04"
                },
                "edition_from": "HS2017",
                "edition_to": "HS2022",
                "set_number": i + 1,
                "entry_into_force": HS2022_FROM,
                "validity": { "from": HS2022_FROM },
                "operations": operations,
                "rationale": { "en": format!(
                    "Heading {heading} ({description}): {inserted} code(s) inserted, {deleted} deleted and {amended} text(s) substituted, \
                     as found by comparing the UN HS2017 and HS2022 nomenclatures."
                ) },
            });
            if !correlation.is_empty() {
                body["correlation"] = json!(correlation);
            }
            DraftDocument { doc_type: "hs.amendment", body }
        })
        .collect()
}

/// `hs.correlation` documents, one per HS2022 heading, from the UNSD HS2022→HS2017 table.
pub fn correlation_documents(data: &HsData) -> Vec<DraftDocument> {
    let mut by_heading: BTreeMap<&str, Vec<&CorrRow>> = BTreeMap::new();
    for r in &data.correlation {
        by_heading.entry(&r.hs2022[..4]).or_default().push(r);
    }
    by_heading
        .into_iter()
        .map(|(heading, rows)| DraftDocument {
            doc_type: "hs.correlation",
            body: json!({
                "title": { "en": format!("Correlation HS2022-HS2017, heading {heading}") },
                "edition_from": "HS2022",
                "edition_to": "HS2017",
                "guide_only": true,
                "chapter": &heading[..2],
                "rows": rows.iter().map(|r| json!({ "from": r.hs2022, "to": r.hs2017, "relationship": r.relationship })).collect::<Vec<_>>(),
            }),
        })
        .collect()
}

/// `n` classification rulings of about 1.4 KB, each on a real HS2022 subheading with its
/// chapter, heading and subheading texts, cycling through the subheadings.
pub fn ruling_documents(data: &HsData, n: usize, issuer: &str) -> Vec<DraftDocument> {
    ruling_documents_from(data, 0, n, issuer)
}

/// Rulings number `first + 1` to `first + n` of the sequence [`ruling_documents`] makes.
pub fn ruling_documents_from(data: &HsData, first: usize, n: usize, issuer: &str) -> Vec<DraftDocument> {
    let subheadings: Vec<&NomEntry> =
        data.hs2022.iter().filter(|e| e.level == 6 && !e.code.starts_with("99")).collect();
    let describe = |code: &str| data.hs2022.iter().find(|e| e.code == code).map_or("", |e| e.description.as_str());
    (first..first + n)
        .map(|i| {
            let sub = subheadings[i % subheadings.len()];
            let heading = &sub.code[..4];
            let chapter = &sub.code[..2];
            let year = 2022 + (i / subheadings.len()) % 5;
            let body = json!({
                "title": { "en": format!("Advance ruling {issuer}-{year}-{:06}: {}", i + 1, sub.description) },
                "reference": format!("{issuer}-BTI-{year}-{:06}", i + 1),
                "product": {
                    "description": { "en": format!("Goods presented as: {}. Imported in retail packaging, with technical documentation and samples examined by the laboratory.", sub.description) },
                    "composition": format!("As declared by the applicant and confirmed by analysis; falls within chapter {chapter} ({}).", describe(chapter)),
                    "function": format!("Used as described for heading {heading}: {}.", describe(heading))
                },
                "classification": { "edition": "HS2022", "code": format!("{}.{}", heading, &sub.code[4..]) },
                "gir": ["1", "6"],
                "reasons": { "en": format!(
                    "Classification is determined by the terms of heading {heading} ({}) and the notes to chapter {chapter}, under GIR 1. \
                     Within the heading, subheading {} ({}) is the one whose terms describe the goods most specifically, under GIR 6. \
                     Other headings were considered and excluded because the goods do not meet their terms.",
                    describe(heading), sub.code, sub.description
                ) },
                "validity": { "from": format!("{year}-01-01"), "to": format!("{}-12-31", year + 2) },
            });
            DraftDocument { doc_type: "classification.ruling", body }
        })
        .collect()
}
