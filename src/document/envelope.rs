//! The signed byte layout. This is the only code that reads or writes it; docs/PROTOCOL.md
//! describes the same layout field by field and the test vectors pin it.
//!
//! All integers are big-endian and fixed-size. Strings are ASCII with a one-byte length.
//! The signature covers `DOCUMENT_DOMAIN || 0x00 || envelope-without-signature`; the
//! document id is SHA-256 of the whole envelope, signature included.

use ed25519_dalek::{Signer, SigningKey};

use super::fields::{
    date_to_days, days_to_date, DocumentId, Edition, FieldError, Header, HsCode, HsSubject, OrgId, RefKind, Reference,
    Seq, TypeName, Validity,
};
use super::{signing_message, DOCUMENT_DOMAIN, DOCUMENT_SIZE_MAX_BYTES, FORMAT_VERSION, REFERENCES_MAX, SUBJECTS_MAX};

/// The first eight bytes of every document envelope.
pub const MAGIC: &[u8; 8] = b"ENTRPDOC";
/// Length of the trailing ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

const VALIDITY_HAS_FROM: u8 = 0b01;
const VALIDITY_HAS_TO: u8 = 0b10;
/// The earliest and latest days a validity date may name: 0000-01-01 and 9999-12-31, the
/// dates a body's `YYYY-MM-DD` can state (docs/PROTOCOL.md §3, fields 12–13).
const DAYS_MIN: i32 = -719_528;
const DAYS_MAX: i32 = 2_932_896;

/// Why bytes are not a well-formed envelope. Each variant has a stable [`DecodeError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("document is {len} bytes, more than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("not an entrepot document: the first bytes are not the magic \"ENTRPDOC\"")]
    BadMagic,
    #[error("document format version {0} is not supported by this build (it knows version 1)")]
    UnsupportedVersion(u8),
    #[error("document is truncated: it ends inside the {0} field")]
    Truncated(&'static str),
    #[error("document has {0} trailing bytes after its signature")]
    TrailingBytes(usize),
    #[error("document field is malformed: {0}")]
    BadField(#[from] FieldError),
}

impl DecodeError {
    /// A stable machine-readable reason, used in reports, metrics and test vectors.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::BadMagic => "bad_magic",
            DecodeError::UnsupportedVersion(_) => "unsupported_version",
            DecodeError::Truncated(_) => "truncated",
            DecodeError::TrailingBytes(_) => "trailing_bytes",
            DecodeError::BadField(_) => "bad_field",
        }
    }
}

/// A decoded envelope: the parsed header, the body, the signature and the verbatim bytes.
/// Not yet verified; see [`super::verify`].
#[derive(Debug, Clone)]
pub struct SignedDocument {
    pub header: Header,
    body_range: std::ops::Range<usize>,
    pub bytes: Vec<u8>,
    pub id: DocumentId,
}

impl SignedDocument {
    /// The body: UTF-8 JSON exactly as signed.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.body_range.clone()]
    }

    /// The 64-byte signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        self.bytes[self.bytes.len() - SIGNATURE_LEN..].try_into().expect("length checked at decode")
    }

    /// The bytes the signature covers (everything but the signature).
    pub fn signed_part(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - SIGNATURE_LEN]
    }
}

fn put_str8(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.len() <= u8::MAX as usize);
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Lays out `header` and `body`, signs them with `key` and returns the decoded result.
/// `header.key` must be `key`'s public key; the subjects must be sorted and unique.
pub fn encode_and_sign(header: &Header, body: &[u8], key: &SigningKey) -> Result<SignedDocument, FieldError> {
    encode_and_sign_in_domain(header, body, key, DOCUMENT_DOMAIN)
}

/// As [`encode_and_sign`] with an explicit domain; other domains exist only to make the
/// "wrong domain" test vector.
pub fn encode_and_sign_in_domain(
    header: &Header,
    body: &[u8],
    key: &SigningKey,
    domain: &[u8],
) -> Result<SignedDocument, FieldError> {
    let err = |field, reason: &str| FieldError { field, reason: reason.to_owned() };
    if key.verifying_key().to_bytes() != header.key {
        return Err(err("key", "the header's key is not the signing key's public key"));
    }
    if (header.seq == Seq::FIRST) != (header.prev == DocumentId::ZERO) {
        return Err(err("prev", "prev must be all zeros exactly when seq is 1"));
    }
    if header.seq.0 == 0 {
        return Err(err("seq", "sequence numbers start at 1"));
    }
    if header.references.len() > REFERENCES_MAX {
        return Err(err("references", "more than 32 references"));
    }
    if header.subjects.len() > SUBJECTS_MAX {
        return Err(err("subjects", "more than 4096 HS subjects"));
    }
    if !header.subjects.windows(2).all(|w| w[0] < w[1]) {
        return Err(err("subjects", "HS subjects must be sorted and unique"));
    }
    let mut out = Vec::with_capacity(256 + body.len() + header.subjects.len() * 9);
    out.extend_from_slice(MAGIC);
    out.push(header.format_version);
    out.extend_from_slice(&header.network_id);
    put_str8(&mut out, header.doc_type.as_str());
    out.extend_from_slice(&header.schema_version.to_be_bytes());
    put_str8(&mut out, header.publisher.as_str());
    out.extend_from_slice(&header.key);
    out.extend_from_slice(&header.seq.0.to_be_bytes());
    out.extend_from_slice(&header.prev.0);
    out.extend_from_slice(&header.issued_at_ms.to_be_bytes());
    let mut flags = 0u8;
    if header.validity.from.is_some() {
        flags |= VALIDITY_HAS_FROM;
    }
    if header.validity.to.is_some() {
        flags |= VALIDITY_HAS_TO;
    }
    out.push(flags);
    out.extend_from_slice(&header.validity.from.map_or(0, date_to_days).to_be_bytes());
    out.extend_from_slice(&header.validity.to.map_or(0, date_to_days).to_be_bytes());
    out.push(header.references.len() as u8);
    for r in &header.references {
        out.push(r.kind as u8);
        out.extend_from_slice(&r.target.0);
    }
    out.extend_from_slice(&(header.subjects.len() as u16).to_be_bytes());
    for s in &header.subjects {
        out.extend_from_slice(&s.edition.year().to_be_bytes());
        put_str8(&mut out, s.code.as_str());
    }
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let body_start = out.len();
    out.extend_from_slice(body);
    let body_range = body_start..out.len();
    let signature = key.sign(&signing_message(domain, &out));
    out.extend_from_slice(&signature.to_bytes());
    if out.len() > DOCUMENT_SIZE_MAX_BYTES {
        return Err(err("body", "the document would exceed the 1 MiB size limit"));
    }
    let id = DocumentId::of_envelope(&out);
    Ok(SignedDocument { header: header.clone(), body_range, bytes: out, id })
}

/// A cursor over envelope bytes that names the field it was reading when the bytes ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or(DecodeError::Truncated(field))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take(2, field)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4, field)?.try_into().expect("4 bytes")))
    }
    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4, field)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8, field)?.try_into().expect("8 bytes")))
    }
    fn arr32(&mut self, field: &'static str) -> Result<[u8; 32], DecodeError> {
        Ok(self.take(32, field)?.try_into().expect("32 bytes"))
    }
    fn str8(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.u8(field)? as usize;
        let raw = self.take(len, field)?;
        std::str::from_utf8(raw).map_err(|_| bad(field, "not valid UTF-8"))
    }
}

fn bad(field: &'static str, reason: &str) -> DecodeError {
    DecodeError::BadField(FieldError { field, reason: reason.to_owned() })
}

/// Parses an envelope without verifying its signature. Rejects anything not in canonical
/// form (unknown flag bits, unsorted subjects, trailing bytes) so one document has exactly one
/// encoding.
pub fn decode(bytes: &[u8]) -> Result<SignedDocument, DecodeError> {
    decode_owned(bytes.to_vec())
}

/// As [`decode`], taking ownership of the bytes to avoid a copy.
pub fn decode_owned(bytes: Vec<u8>) -> Result<SignedDocument, DecodeError> {
    let (header, body_range) = parse(&bytes)?;
    let id = DocumentId::of_envelope(&bytes);
    Ok(SignedDocument { header, body_range, bytes, id })
}

/// The header of an envelope, checked exactly as [`decode`] checks it (the same parser), without
/// copying the bytes or hashing them for the id: for callers that need only a position, a
/// publisher or a type (the worker's placement check, a lifecycle target's owner).
pub fn decode_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    parse(bytes).map(|(header, _)| header)
}

/// The one parser of the layout: the header and where the body lies.
fn parse(bytes: &[u8]) -> Result<(Header, std::ops::Range<usize>), DecodeError> {
    if bytes.len() > DOCUMENT_SIZE_MAX_BYTES {
        return Err(DecodeError::TooLarge { len: bytes.len(), max: DOCUMENT_SIZE_MAX_BYTES });
    }
    let mut r = Reader { bytes, pos: 0 };
    if r.take(MAGIC.len(), "magic").map_err(|_| DecodeError::BadMagic)? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let format_version = r.u8("format_version")?;
    if format_version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion(format_version));
    }
    let network_id = r.arr32("network_id")?;
    let doc_type = TypeName::new(r.str8("doc_type")?)?;
    let schema_version = r.u16("schema_version")?;
    let publisher = OrgId::new(r.str8("publisher")?)?;
    let key = r.arr32("key")?;
    let seq = Seq(r.u64("seq")?);
    if seq.0 == 0 {
        return Err(bad("seq", "sequence numbers start at 1"));
    }
    let prev = DocumentId(r.arr32("prev")?);
    if (seq == Seq::FIRST) != (prev == DocumentId::ZERO) {
        return Err(bad("prev", "prev must be all zeros exactly when seq is 1"));
    }
    let issued_at_ms = r.u64("issued_at")? as i64;
    let flags = r.u8("validity_flags")?;
    if flags & !(VALIDITY_HAS_FROM | VALIDITY_HAS_TO) != 0 {
        return Err(bad("validity_flags", "unknown flag bits are set"));
    }
    let from_days = r.i32("effective_from")?;
    let to_days = r.i32("effective_to")?;
    let date = |present: bool, days: i32, field: &'static str| -> Result<_, DecodeError> {
        match (present, days) {
            (false, 0) => Ok(None),
            (false, _) => Err(bad(field, "an absent date must be encoded as 0")),
            (true, d) if (DAYS_MIN..=DAYS_MAX).contains(&d) => {
                days_to_date(d).map(Some).ok_or_else(|| bad(field, "date out of range"))
            }
            (true, _) => Err(bad(field, "a date must lie between 0000-01-01 and 9999-12-31")),
        }
    };
    let validity = Validity::new(
        date(flags & VALIDITY_HAS_FROM != 0, from_days, "effective_from")?,
        date(flags & VALIDITY_HAS_TO != 0, to_days, "effective_to")?,
    )?;
    let ref_count = r.u8("reference_count")? as usize;
    if ref_count > REFERENCES_MAX {
        return Err(bad("reference_count", "more than 32 references"));
    }
    let mut references = Vec::with_capacity(ref_count);
    for _ in 0..ref_count {
        let kind = RefKind::from_byte(r.u8("reference_kind")?).ok_or_else(|| bad("reference_kind", "unknown kind"))?;
        references.push(Reference { kind, target: DocumentId(r.arr32("reference_target")?) });
    }
    let subject_count = r.u16("subject_count")? as usize;
    if subject_count > SUBJECTS_MAX {
        return Err(bad("subject_count", "more than 4096 HS subjects"));
    }
    let mut subjects: Vec<HsSubject> = Vec::with_capacity(subject_count);
    for _ in 0..subject_count {
        let edition = Edition::from_year(r.u16("subject_edition")?)?;
        let raw = r.str8("subject_code")?;
        let code = HsCode::parse(raw)?;
        if code.as_str() != raw {
            return Err(bad("subject_code", "codes are encoded as digits only"));
        }
        let subject = HsSubject { edition, code };
        if subjects.last().is_some_and(|last| *last >= subject) {
            return Err(bad("subjects", "HS subjects must be sorted and unique"));
        }
        subjects.push(subject);
    }
    let body_len = r.u32("body_length")? as usize;
    let body_start = r.pos;
    let body = r.take(body_len, "body")?;
    if std::str::from_utf8(body).is_err() {
        return Err(bad("body", "not valid UTF-8"));
    }
    let body_range = body_start..r.pos;
    r.take(SIGNATURE_LEN, "signature")?;
    let trailing = bytes.len() - r.pos;
    if trailing != 0 {
        return Err(DecodeError::TrailingBytes(trailing));
    }
    let header = Header {
        format_version,
        network_id,
        doc_type,
        schema_version,
        publisher,
        key,
        seq,
        prev,
        issued_at_ms,
        validity,
        references,
        subjects,
    };
    Ok((header, body_range))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Validity;
    use chrono::NaiveDate;

    fn signed_with_from_days(days: i32) -> Vec<u8> {
        let key = SigningKey::from_bytes(&[9; 32]);
        let header = Header {
            format_version: FORMAT_VERSION,
            network_id: [1; 32],
            doc_type: TypeName::new("classification.opinion").unwrap(),
            schema_version: 1,
            publisher: OrgId::new("WCO").unwrap(),
            key: key.verifying_key().to_bytes(),
            seq: Seq(1),
            prev: DocumentId::ZERO,
            issued_at_ms: 0,
            validity: Validity::new(days_to_date(0), None).unwrap(),
            references: vec![],
            subjects: vec![],
        };
        let mut bytes = encode_and_sign(&header, b"{}", &key).unwrap().bytes;
        // effective_from follows the 8-byte issued_at and the flags byte.
        let at = 8 + 1 + 32 + 1 + 22 + 2 + 1 + 3 + 32 + 8 + 32 + 8 + 1;
        bytes[at..at + 4].copy_from_slice(&days.to_be_bytes());
        bytes
    }

    #[test]
    fn a_date_is_decoded_only_between_year_0_and_year_9999() {
        assert_eq!(date_to_days(NaiveDate::from_ymd_opt(0, 1, 1).unwrap()), DAYS_MIN);
        assert_eq!(date_to_days(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()), DAYS_MAX);
        for days in [DAYS_MIN, 0, DAYS_MAX] {
            assert!(decode(&signed_with_from_days(days)).is_ok(), "{days}");
        }
        for days in [DAYS_MIN - 1, DAYS_MAX + 1, i32::MIN, i32::MAX] {
            let err = decode(&signed_with_from_days(days)).unwrap_err();
            assert_eq!(err.code(), "bad_field", "{days}: {err}");
        }
    }
}
