//! What each type's body says about the indexed header fields.

use chrono::NaiveDate;
use serde_json::Value;

use super::registry::{DocType, TypeError};
use crate::document::{DocumentId, Edition, FieldError, HsCode, HsSubject, RefKind, Reference, Validity, SUBJECTS_MAX};

/// The header fields a body determines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Projection {
    /// Sorted, without duplicates.
    pub subjects: Vec<HsSubject>,
    pub validity: Validity,
    /// Lifecycle target first (if any), then the body's `references` in order.
    pub references: Vec<Reference>,
}

fn field(name: &'static str, reason: impl Into<String>) -> TypeError {
    TypeError::Field(FieldError { field: name, reason: reason.into() })
}

fn str_at<'a>(v: &'a Value, key: &'static str) -> Result<&'a str, TypeError> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| field(key, "missing or not a string"))
}

fn edition_at(v: &Value, key: &'static str) -> Result<Edition, TypeError> {
    Ok(Edition::parse(str_at(v, key)?)?)
}

pub(super) fn subject(edition: Edition, code: &str) -> Result<HsSubject, TypeError> {
    Ok(HsSubject { edition, code: HsCode::parse(code)? })
}

fn subject_obj(v: &Value) -> Result<HsSubject, TypeError> {
    subject(edition_at(v, "edition")?, str_at(v, "code")?)
}

fn date(v: Option<&Value>, name: &'static str) -> Result<Option<NaiveDate>, TypeError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| field(name, format!("'{s}' is not a calendar date"))),
        Some(_) => Err(field(name, "not a string")),
    }
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn ref_kind(s: &str) -> Result<RefKind, TypeError> {
    serde_json::from_value(Value::String(s.to_owned())).map_err(|_| field("references", format!("unknown kind '{s}'")))
}

/// Computes the header projection of a schema-valid body.
pub fn project(ty: &DocType, body: &Value) -> Result<Projection, TypeError> {
    let mut subjects = Vec::new();
    match ty.name {
        "hs.amendment" => {
            let from = edition_at(body, "edition_from")?;
            let to = edition_at(body, "edition_to")?;
            for op in array(body, "operations") {
                let code = op.get("target").map(|t| str_at(t, "code")).transpose()?.unwrap_or_default();
                match str_at(op, "op")? {
                    "delete" => subjects.push(subject(from, code)?),
                    "insert" => subjects.push(subject(to, code)?),
                    _ => {
                        subjects.push(subject(from, code)?);
                        subjects.push(subject(to, code)?);
                    }
                }
            }
            for row in array(body, "correlation") {
                subjects.push(subject(from, str_at(row, "from")?)?);
                subjects.push(subject(to, str_at(row, "to")?)?);
            }
        }
        "hs.correlation" => {
            let from = edition_at(body, "edition_from")?;
            let to = edition_at(body, "edition_to")?;
            for row in array(body, "rows") {
                subjects.push(subject(from, str_at(row, "from")?)?);
                subjects.push(subject(to, str_at(row, "to")?)?);
            }
        }
        "hs.transposition" => {
            // Indexed by subheading (six digits): the national lines' HS part in each edition.
            let from = edition_at(body, "edition_from")?;
            let to = edition_at(body, "edition_to")?;
            for line in array(body, "lines") {
                let six =
                    |s: &str| s.get(..6).map(str::to_owned).ok_or_else(|| field("lines", "a line is 8 or 10 digits"));
                subjects.push(subject(from, &six(str_at(line, "old")?)?)?);
                for new in array(line, "new") {
                    let new = new.as_str().ok_or_else(|| field("lines.new", "not a string"))?;
                    subjects.push(subject(to, &six(new)?)?);
                }
            }
        }
        "hs.nomenclature" => {
            let edition = edition_at(body, "edition")?;
            subjects.push(subject(edition, str_at(body, "chapter")?)?);
            for entry in array(body, "entries") {
                subjects.push(subject(edition, str_at(entry, "code")?)?);
            }
        }
        "classification.opinion" | "classification.decision" | "classification.ruling" => {
            subjects.push(subject_obj(body.get("classification").unwrap_or(&Value::Null))?);
            for cited in array(body, "cites") {
                subjects.push(subject_obj(cited)?);
            }
        }
        "enforcement.notice" => {
            for s in body.get("header").map(|h| array(h, "hs")).unwrap_or(&[]) {
                subjects.push(subject_obj(s)?);
            }
        }
        _ => {}
    }
    let validity = match body.get("validity") {
        Some(v) => Validity::new(date(v.get("from"), "validity.from")?, date(v.get("to"), "validity.to")?)?,
        None => Validity::default(),
    };

    let mut references = Vec::new();
    if ty.is_lifecycle() {
        let kind = match ty.name {
            "lifecycle.supersede" => RefKind::Supersedes,
            "lifecycle.correct" => RefKind::Corrects,
            _ => RefKind::Withdraws,
        };
        references.push(Reference { kind, target: DocumentId::from_hex(str_at(body, "target")?)? });
    }
    for r in array(body, "references") {
        references
            .push(Reference { kind: ref_kind(str_at(r, "kind")?)?, target: DocumentId::from_hex(str_at(r, "id")?)? });
    }
    finish(subjects, validity, references)
}

/// The projection of what a body states, with its subjects sorted and deduplicated and both
/// lists within their bounds (shared with the fast path, `fast.rs`).
pub(super) fn finish(
    mut subjects: Vec<HsSubject>,
    validity: Validity,
    references: Vec<Reference>,
) -> Result<Projection, TypeError> {
    subjects.sort();
    subjects.dedup();
    if subjects.len() > SUBJECTS_MAX {
        return Err(field("subjects", format!("{} HS subjects, more than {SUBJECTS_MAX}", subjects.len())));
    }
    if references.len() > crate::document::REFERENCES_MAX {
        return Err(field("references", "more than 32 references"));
    }
    Ok(Projection { subjects, validity, references })
}

/// The English title (or the first language given), for listings and text search.
pub fn title_of(body: &Value) -> String {
    let Some(title) = body.get("title").and_then(Value::as_object) else {
        return String::new();
    };
    title.get("en").or_else(|| title.values().next()).and_then(Value::as_str).unwrap_or_default().to_owned()
}
