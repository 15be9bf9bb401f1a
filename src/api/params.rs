//! Query parameters: parsed, checked and bounded before anything reads the store.
//!
//! Why strict: unknown parameters are refused (`deny_unknown_fields`), so a misspelt filter
//! (`?publsher=WCO`) is an error rather than a silently unfiltered answer.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiError;
use crate::doctype::DocType;
use crate::document::{Edition, OrgId, TypeName};
use crate::store::{self, QUERY_LIMIT_MAX};

/// Default page size.
pub const LIMIT_DEFAULT: usize = 50;
/// Longest text search.
pub const TEXT_LEN_MAX: usize = 200;
/// Longest cursor (a hex-encoded index key of at most 512 bytes, plus its tag).
pub const CURSOR_LEN_MAX: usize = 1100;

/// Filters of a document query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Document type, e.g. `classification.opinion`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub doc_type: Option<String>,
    /// Publishing organization, e.g. `WCO`.
    pub publisher: Option<String>,
    /// HS code or prefix (1 to 10 digits; dots and spaces allowed: 880610, 8806.10, 8806 10), within `edition`.
    pub hs: Option<String>,
    /// HS edition for `hs` (default HS2022).
    pub edition: Option<String>,
    /// Only documents in force on this day (YYYY-MM-DD).
    pub in_force: Option<String>,
    /// Only documents issued on or after this day (YYYY-MM-DD) or instant (RFC 3339).
    pub issued_since: Option<String>,
    /// Case-insensitive text in the title (at most 200 characters).
    pub q: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Filters of the event stream (a subset of the document filters).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Document type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub doc_type: Option<String>,
    /// Publishing organization.
    pub publisher: Option<String>,
    /// HS code or prefix within `edition`.
    pub hs: Option<String>,
    /// HS edition for `hs` (default HS2022).
    pub edition: Option<String>,
    /// Resume after this position (same as the `Last-Event-ID` header, which wins): an
    /// arrival number, or a feed cursor `feeds:ORG=SEQ,...` (long ones go in the header).
    #[param(
        pattern = r"^([0-9]{1,20}|feeds:([A-Z0-9][A-Z0-9-]{0,31}=[0-9]{1,20}(,[A-Z0-9][A-Z0-9-]{0,31}=[0-9]{1,20})*)?)$"
    )]
    pub after: Option<String>,
    /// Event ids to send: `arrival` (this node's arrival numbers, the default) or `feed`
    /// (feed cursors, which resume on any node). Resuming from a feed cursor implies `feed`.
    #[param(inline)]
    pub ids: Option<StreamIds>,
}

/// Kinds of event id a stream can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamIds {
    Arrival,
    Feed,
}

/// Turns axum's query rejection into our JSON 400.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|e| ApiError::BadRequest(format!("bad query parameters: {}", e.body_text())))
}

/// A known document type.
pub fn doc_type(s: &str) -> Result<TypeName, ApiError> {
    DocType::by_name(s).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    TypeName::new(s).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// An organization id.
pub fn org(s: &str) -> Result<OrgId, ApiError> {
    OrgId::new(s).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// An HS edition such as `HS2022`.
pub fn edition(s: &str) -> Result<Edition, ApiError> {
    Edition::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// An HS code prefix: 1 to 10 digits once the dots and spaces people write are removed
/// (`880610`, `8806.10`, `8806 10` and `88.06` are the same code).
pub fn hs_prefix(s: &str) -> Result<String, ApiError> {
    let digits: String = s.chars().filter(|c| *c != '.' && *c != ' ').collect();
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!(
            "HS code '{}' must be 1 to 10 digits (dots and spaces allowed), such as 85, 8549.11 or 8549 11",
            s.chars().take(32).collect::<String>()
        )));
    }
    Ok(digits)
}

/// The `(edition, prefix)` filter from `hs` and `edition`.
pub fn hs_filter(hs: Option<&str>, ed: Option<&str>) -> Result<Option<(Edition, String)>, ApiError> {
    match (hs, ed) {
        (Some(code), ed) => Ok(Some((edition(ed.unwrap_or("HS2022"))?, hs_prefix(code)?))),
        (None, Some(_)) => Err(ApiError::BadRequest("`edition` goes with `hs`: give an HS code too".into())),
        (None, None) => Ok(None),
    }
}

/// A calendar day.
pub fn day(s: &str, what: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::BadRequest(format!(
            "{what} '{}' is not a date of the form 2022-01-01",
            s.chars().take(32).collect::<String>()
        ))
    })
}

/// A day (its midnight UTC) or an RFC 3339 instant, as milliseconds since the epoch.
fn instant_ms(s: &str) -> Result<i64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let d = day(s, "issued_since")?;
    Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or_default())
}

impl ListParams {
    /// The store query these parameters ask for.
    pub fn to_query(&self) -> Result<store::Query, ApiError> {
        let limit = self.limit.unwrap_or(LIMIT_DEFAULT);
        if limit == 0 || limit > QUERY_LIMIT_MAX {
            return Err(ApiError::BadRequest(format!("limit must be between 1 and {QUERY_LIMIT_MAX}")));
        }
        if self.q.as_ref().is_some_and(|q| q.chars().count() > TEXT_LEN_MAX) {
            return Err(ApiError::BadRequest(format!("q must be at most {TEXT_LEN_MAX} characters")));
        }
        if self.cursor.as_ref().is_some_and(|c| c.len() > CURSOR_LEN_MAX) {
            return Err(ApiError::BadRequest("the cursor is not one this query returned".into()));
        }
        Ok(store::Query {
            doc_type: self.doc_type.as_deref().map(doc_type).transpose()?,
            publisher: self.publisher.as_deref().map(org).transpose()?,
            hs: hs_filter(self.hs.as_deref(), self.edition.as_deref())?,
            in_force_on: self.in_force.as_deref().map(|d| day(d, "in_force")).transpose()?,
            issued_since_ms: self.issued_since.as_deref().map(instant_ms).transpose()?,
            text: self.q.clone().filter(|q| !q.trim().is_empty()),
            limit,
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
            index_order: false,
        })
    }
}

/// The filters of a stream, checked.
#[derive(Debug, Clone, Default)]
pub struct StreamFilter {
    pub doc_type: Option<TypeName>,
    pub publisher: Option<OrgId>,
    pub hs: Option<(Edition, String)>,
}

impl StreamParams {
    /// The checked filter.
    pub fn filter(&self) -> Result<StreamFilter, ApiError> {
        Ok(StreamFilter {
            doc_type: self.doc_type.as_deref().map(doc_type).transpose()?,
            publisher: self.publisher.as_deref().map(org).transpose()?,
            hs: hs_filter(self.hs.as_deref(), self.edition.as_deref())?,
        })
    }
}

impl StreamFilter {
    /// Whether a header passes the filter.
    pub fn matches(&self, h: &crate::document::Header) -> bool {
        self.doc_type.as_ref().is_none_or(|t| *t == h.doc_type)
            && self.publisher.as_ref().is_none_or(|p| *p == h.publisher)
            && self.hs.as_ref().is_none_or(|(ed, prefix)| {
                h.subjects.iter().any(|s| s.edition == *ed && s.code.as_str().starts_with(prefix.as_str()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs_prefixes_drop_dots_and_refuse_anything_else() {
        assert_eq!(hs_prefix("8806.22").unwrap(), "880622");
        assert_eq!(hs_prefix("8").unwrap(), "8");
        for written in ["880610", "8806.10", "8806 10", " 8806.10 ", "88.06.10"] {
            assert_eq!(hs_prefix(written).unwrap(), "880610", "{written}");
        }
        for bad in ["", ".", " ", "85A", "12345678901", "８８", "8806\t10", "8806-10"] {
            assert!(hs_prefix(bad).is_err(), "{bad}");
        }
        assert!(hs_filter(None, Some("HS2022")).is_err(), "an edition alone filters nothing");
        assert_eq!(hs_filter(Some("88"), None).unwrap().unwrap().0.year(), 2022);
    }

    #[test]
    fn issued_since_takes_a_day_or_an_instant() {
        assert_eq!(instant_ms("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(instant_ms("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert!(instant_ms("yesterday").is_err());
    }

    #[test]
    fn list_parameters_are_bounded() {
        let p = |f: fn(&mut ListParams)| {
            let mut p = ListParams::default();
            f(&mut p);
            p.to_query()
        };
        assert_eq!(p(|_| {}).unwrap().limit, LIMIT_DEFAULT);
        assert!(p(|p| p.limit = Some(0)).is_err());
        assert!(p(|p| p.limit = Some(QUERY_LIMIT_MAX + 1)).is_err());
        assert!(p(|p| p.q = Some("x".repeat(TEXT_LEN_MAX + 1))).is_err());
        assert!(p(|p| p.cursor = Some("0".repeat(CURSOR_LEN_MAX + 1))).is_err());
        assert!(p(|p| p.doc_type = Some("hs.tariff".into())).is_err());
        assert!(p(|p| p.q = Some("  ".into())).unwrap().text.is_none());
    }
}
