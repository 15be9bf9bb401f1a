//! Field types of a document header, each checked on construction so that a value of the
//! type is always valid ("preconditions in types").

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a field value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

fn field_err(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError { field, reason: reason.into() }
}

/// SHA-256 of a document's complete signed envelope (signature included).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DocumentId(pub [u8; 32]);

impl DocumentId {
    /// The "no predecessor" id used as `prev` by sequence number 1.
    pub const ZERO: DocumentId = DocumentId([0; 32]);

    /// Hashes a complete envelope.
    pub fn of_envelope(bytes: &[u8]) -> DocumentId {
        DocumentId(Sha256::digest(bytes).into())
    }

    /// Lower-case hex, the form used in JSON, URLs and the CLI.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<DocumentId, FieldError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out)
            .map_err(|_| field_err("document id", format!("'{s}' is not 64 hex digits")))?;
        Ok(DocumentId(out))
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for DocumentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DocumentId::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A feed position: 1 for an organization's first document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seq(pub u64);

impl Seq {
    pub const FIRST: Seq = Seq(1);

    /// The position after this one.
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An organization id: `WCO`, `WTO`, an ISO 3166 code such as `FR`, `RILO-AP`.
/// 1–32 characters of `A-Z 0-9 -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrgId(String);

impl OrgId {
    pub const LEN_MAX: usize = 32;

    pub fn new(s: &str) -> Result<OrgId, FieldError> {
        let ok = !s.is_empty()
            && s.len() <= Self::LEN_MAX
            && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        if ok {
            Ok(OrgId(s.to_owned()))
        } else {
            Err(field_err(
                "organization id",
                format!("'{s}' must be 1-32 characters of A-Z, 0-9 and '-', not starting with '-'"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OrgId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OrgId::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A document type name such as `hs.amendment`: 1–64 characters of `a-z 0-9 . _`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TypeName(String);

impl TypeName {
    pub const LEN_MAX: usize = 64;

    pub fn new(s: &str) -> Result<TypeName, FieldError> {
        let ok = !s.is_empty()
            && s.len() <= Self::LEN_MAX
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
        if ok {
            Ok(TypeName(s.to_owned()))
        } else {
            Err(field_err("document type", format!("'{s}' must be 1-64 characters of a-z, 0-9, '.', '_'")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TypeName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TypeName::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An HS edition, identified by its year of entry into force (HS2017 is 2017).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edition(u16);

impl Edition {
    pub const YEAR_MIN: u16 = 1988;
    pub const YEAR_MAX: u16 = 2100;

    pub fn from_year(year: u16) -> Result<Edition, FieldError> {
        if (Self::YEAR_MIN..=Self::YEAR_MAX).contains(&year) {
            Ok(Edition(year))
        } else {
            Err(field_err("HS edition", format!("year {year} is outside 1988-2100")))
        }
    }

    /// Parses `HS2022` (or a bare `2022`).
    pub fn parse(s: &str) -> Result<Edition, FieldError> {
        let digits = s.strip_prefix("HS").unwrap_or(s);
        let year: u16 =
            digits.parse().map_err(|_| field_err("HS edition", format!("'{s}' is not of the form HS2022")))?;
        Edition::from_year(year)
    }

    pub fn year(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Edition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HS{}", self.0)
    }
}

impl Serialize for Edition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Edition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Edition::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An HS code: 2 (chapter), 4 (heading), 6 (subheading) digits, or 8/10 for national lines.
/// Dots are accepted on input (`8549.11`) and dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HsCode(String);

impl HsCode {
    pub fn parse(s: &str) -> Result<HsCode, FieldError> {
        let digits: String = s.chars().filter(|c| *c != '.').collect();
        let ok = matches!(digits.len(), 2 | 4 | 6 | 8 | 10) && digits.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(HsCode(digits))
        } else {
            Err(field_err("HS code", format!("'{s}' must be 2, 4, 6, 8 or 10 digits")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A code within an edition: the key of any HS code, since codes are reused across editions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct HsSubject {
    pub edition: Edition,
    #[serde(serialize_with = "ser_display")]
    pub code: HsCode,
}

fn ser_display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// How a document acts on an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    Supersedes = 1,
    Corrects = 2,
    Withdraws = 3,
    Cites = 4,
}

impl RefKind {
    pub fn from_byte(b: u8) -> Option<RefKind> {
        Some(match b {
            1 => RefKind::Supersedes,
            2 => RefKind::Corrects,
            3 => RefKind::Withdraws,
            4 => RefKind::Cites,
            _ => return None,
        })
    }

    /// Whether this reference ends the target's force (a lifecycle act).
    pub fn ends_force(self) -> bool {
        matches!(self, RefKind::Supersedes | RefKind::Withdraws)
    }
}

/// A reference from one document to another by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    pub kind: RefKind,
    pub target: DocumentId,
}

/// A legal validity period in whole days, both ends inclusive. Distinct from issue time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Validity {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Validity {
    pub fn new(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Validity, FieldError> {
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(field_err("validity", format!("effective_from {f} is after effective_to {t}")));
            }
        }
        Ok(Validity { from, to })
    }

    /// Whether `day` falls inside the period.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= day) && self.to.is_none_or(|t| day <= t)
    }

    pub fn is_empty(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// Days since 1970-01-01 (the encoding of dates in envelopes and keys).
pub fn date_to_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// [`date_to_days`] of an optional date.
pub fn date_to_days_opt(d: Option<NaiveDate>) -> Option<i32> {
    d.map(date_to_days)
}

/// Inverse of [`date_to_days`]; `None` outside chrono's range.
pub fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(days as i64))
}

/// Every signed field of a document except the body and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub format_version: u8,
    #[serde(serialize_with = "ser_hex32")]
    pub network_id: [u8; 32],
    pub doc_type: TypeName,
    pub schema_version: u16,
    pub publisher: OrgId,
    #[serde(serialize_with = "ser_hex32")]
    pub key: [u8; 32],
    pub seq: Seq,
    pub prev: DocumentId,
    /// Milliseconds since the Unix epoch, UTC, as stated by the publisher.
    pub issued_at_ms: i64,
    pub validity: Validity,
    pub references: Vec<Reference>,
    /// Sorted and without duplicates: a canonical form, so equal sets encode equally.
    pub subjects: Vec<HsSubject>,
}

fn ser_hex32<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}
