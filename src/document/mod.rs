//! The signed document: its fields, its byte layout, signing and verification.
//!
//! This module does no I/O and knows nothing of storage or the network. Only `envelope.rs`
//! knows the signed byte layout; everything else sees [`Header`] and [`SignedDocument`].

pub mod differential;
mod envelope;
mod fields;
mod verify;

pub use envelope::{
    decode, decode_header, decode_owned, encode_and_sign, DecodeError, SignedDocument, MAGIC, SIGNATURE_LEN,
};

/// Signing under another domain, only to make the "wrong domain" test vector.
pub mod envelope_for_vectors {
    pub use super::envelope::encode_and_sign_in_domain;
}
pub use fields::{
    date_to_days, date_to_days_opt, days_to_date, DocumentId, Edition, FieldError, Header, HsCode, HsSubject, OrgId,
    RefKind, Reference, Seq, TypeName, Validity,
};
pub use verify::{
    public_key, verify, verify_signature, verify_with, KeyCache, PublicKey, VerifiedDocument, VerifyError,
    KEY_CACHE_MAX,
};

/// Version of the envelope layout written by this build.
pub const FORMAT_VERSION: u8 = 1;

/// Domain-separation context for document signatures (see docs/PROTOCOL.md, "Domains").
pub const DOCUMENT_DOMAIN: &[u8] = b"entrepot/document/v1";

/// Largest envelope accepted anywhere (decode, store, wire, bundle).
pub const DOCUMENT_SIZE_MAX_BYTES: usize = 1024 * 1024;
/// Most references one document may carry.
pub const REFERENCES_MAX: usize = 32;
/// Most HS subjects one document may carry (a correlation chapter can cite a thousand codes).
pub const SUBJECTS_MAX: usize = 4096;

/// The message an ed25519 signature covers: `domain || 0x00 || bytes`.
pub fn signing_message(domain: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(domain.len() + 1 + bytes.len());
    msg.extend_from_slice(domain);
    msg.push(0);
    msg.extend_from_slice(bytes);
    msg
}
