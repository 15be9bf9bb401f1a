//! Enforcement notices: the sealed payload, its commitment, and who may read it.
//!
//! A notice's signed body is replicated to every member node; its payload (modus operandi,
//! indicators, routes) is meant only for its audience. So unless the notice is marked
//! `handling: public`, the body carries no payload but a commitment to it,
//! `sealed_payload: {"sha256", "bytes"}`, and the payload travels beside the envelope as its own
//! byte string, the **sealed payload**: UTF-8 JSON satisfying
//! `schemas/enforcement.notice.payload.json`, with a 32-byte random `nonce` so that a short or
//! guessable payload cannot be confirmed by hashing guesses against the public commitment.
//!
//! What each node sees (docs/PROTOCOL.md §5.1):
//!
//! | part of a notice                                                        | visible to        |
//! |-------------------------------------------------------------------------|-------------------|
//! | envelope header (publisher, key, seq, prev, issued_at, validity, HS subjects, references, signature) | every member node |
//! | body: `title`, `validity`, `header` {`kind`, `risk_area`, `hs`, `region`, `handling`}, `audience`, `references` | every member node |
//! | body: `sealed_payload` {`sha256`, `bytes`}, the commitment              | every member node |
//! | body: `payload`, inline, only when `handling` is `public`               | every member node |
//! | the sealed payload (`summary`, `indicators`, `routes`, `nonce`)         | the audience (and the publisher) |
//!
//! Who is the audience ([`may_read`]):
//!
//! | `audience.scope` | charter network                                              | keyring network (no roles or regions) |
//! |------------------|--------------------------------------------------------------|---------------------------------------|
//! | `all_customs`    | members with role `secretariat`, `customs` or `rilo`         | every organization in the keyring     |
//! | `region`         | those same members whose charter `region` is `audience.region` | nobody                              |
//! | `group`          | the members listed in `audience.group`, whatever their role  | the listed organizations in the keyring |
//!
//! The publisher may always read its own payload; an organization that is not a member (not in
//! the charter, or not in the keyring) never may. Observers read a payload only when a `group`
//! names them.
//!
//! A replica that may not read a payload still proves its copy of the feed complete: it holds
//! and verifies every envelope of the feed (signature, feed position, `prev` chain), exactly as
//! for any other document, and the signed commitment binds the one payload it does not hold, so
//! no one can later show it a different payload for that notice.
//!
//! Pure: no I/O, except that [`seal`] draws its nonce from the operating system's random
//! number generator.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::authority::Keyring;
use crate::charter::Role;
use crate::doctype::validate_notice_payload;
use crate::document::{DocumentId, OrgId, SignedDocument};

/// The document type that carries sealed payloads.
pub const NOTICE_TYPE: &str = "enforcement.notice";
/// Largest sealed payload (the bound `sealed_payload.bytes` has in the notice schema).
pub const SEALED_PAYLOAD_MAX_BYTES: usize = 256 * 1024;
/// Bytes of randomness in a payload's nonce (64 hex digits).
pub const NONCE_BYTES: usize = 32;

/// Why a payload cannot be sealed, or does not belong to its notice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("document {0} has no sealed payload (it is not an enforcement notice, or its handling is public and its payload is in its body)")]
    NotSealed(DocumentId),
    #[error("the payload does not match the notice's commitment: {0}")]
    PayloadMismatch(String),
    #[error("the payload is not valid (schemas/enforcement.notice.payload.json): {0}")]
    PayloadInvalid(String),
    #[error("the sealed payload is {bytes} bytes; at most {SEALED_PAYLOAD_MAX_BYTES} are allowed")]
    PayloadTooLarge { bytes: usize },
    #[error("the notice body cannot be sealed: {0}")]
    NotSealable(String),
    #[error("an enforcement notice whose handling is not public is published with its payload apart, which the node seals (command line: --payload FILE; HTTP API: seal_payload=true with the payload in the body's 'payload')")]
    PayloadRequired,
}

impl NoticeError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            NoticeError::NotSealed(_) => "not_sealed",
            NoticeError::PayloadMismatch(_) => "payload_mismatch",
            NoticeError::PayloadInvalid(_) => "payload_invalid",
            NoticeError::PayloadTooLarge { .. } => "payload_too_large",
            NoticeError::NotSealable(_) => "not_sealable",
            NoticeError::PayloadRequired => "payload_required",
        }
    }
}

/// A notice's commitment to its sealed payload, as its signed body states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealRef {
    /// SHA-256 of the sealed payload bytes.
    pub sha256: [u8; 32],
    /// Length of the sealed payload in bytes (1 to [`SEALED_PAYLOAD_MAX_BYTES`]).
    pub bytes: u32,
}

impl SealRef {
    /// The commitment to `payload`.
    pub fn of(payload: &[u8]) -> SealRef {
        SealRef { sha256: Sha256::digest(payload).into(), bytes: payload.len() as u32 }
    }

    /// The body's `sealed_payload` object.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "sha256": hex::encode(self.sha256), "bytes": self.bytes })
    }

    fn from_json(v: &Value) -> Option<SealRef> {
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(v.get("sha256")?.as_str()?, &mut sha256).ok()?;
        let bytes = v.get("bytes")?.as_u64()?;
        if bytes == 0 || bytes > SEALED_PAYLOAD_MAX_BYTES as u64 {
            return None;
        }
        Some(SealRef { sha256, bytes: bytes as u32 })
    }
}

impl Serialize for SealRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// A notice body with its payload sealed: what [`seal_body`] makes for a publish.
#[derive(Debug, Clone)]
pub struct SealedNotice {
    /// The body to sign: the given body plus `sealed_payload`.
    pub body: Vec<u8>,
    /// The sealed payload, to store beside the document.
    pub payload: Vec<u8>,
    pub seal: SealRef,
}

/// Seals a payload object with a fresh nonce from the operating system: the sealed payload
/// bytes and the commitment a notice body carries for them.
pub fn seal(payload: &Value) -> Result<(Vec<u8>, SealRef), NoticeError> {
    seal_with_nonce(payload, &fresh_nonce())
}

fn fresh_nonce() -> [u8; NONCE_BYTES] {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    nonce
}

/// [`seal`] with a given nonce: only for deterministic fixtures (test vectors, seeds). A real
/// notice needs a fresh random nonce, or its commitment can be tested against guesses.
pub fn seal_with_nonce(payload: &Value, nonce: &[u8; NONCE_BYTES]) -> Result<(Vec<u8>, SealRef), NoticeError> {
    let Value::Object(fields) = payload else {
        return Err(NoticeError::PayloadInvalid("the payload must be a JSON object".into()));
    };
    if fields.contains_key("nonce") {
        return Err(NoticeError::PayloadInvalid(
            "the payload already has a 'nonce'; sealing adds fresh randomness, so give the payload without it".into(),
        ));
    }
    let mut fields = fields.clone();
    fields.insert("nonce".into(), Value::String(hex::encode(nonce)));
    let value = Value::Object(fields);
    validate_notice_payload(&value).map_err(NoticeError::PayloadInvalid)?;
    let bytes = serde_json::to_vec(&value).expect("a JSON value serializes");
    if bytes.len() > SEALED_PAYLOAD_MAX_BYTES {
        return Err(NoticeError::PayloadTooLarge { bytes: bytes.len() });
    }
    let seal = SealRef::of(&bytes);
    Ok((bytes, seal))
}

/// Seals `payload` into a notice body that has none yet: the body gains `sealed_payload`.
/// Refuses a body that is not a JSON object, that already carries `payload` or
/// `sealed_payload`, or whose handling is `public` (a public notice carries its payload inline).
pub fn seal_body(body: &[u8], payload: &Value) -> Result<SealedNotice, NoticeError> {
    seal_body_with_nonce(body, payload, &fresh_nonce())
}

/// [`seal_body`] with a given nonce: only for deterministic fixtures, like [`seal_with_nonce`].
pub fn seal_body_with_nonce(
    body: &[u8],
    payload: &Value,
    nonce: &[u8; NONCE_BYTES],
) -> Result<SealedNotice, NoticeError> {
    let not_sealable = |s: &str| NoticeError::NotSealable(s.into());
    let Ok(Value::Object(mut fields)) = crate::json::parse_strict(body) else {
        return Err(not_sealable("the body is not a JSON object (strict JSON: no name twice in one object)"));
    };
    if fields.contains_key("payload") || fields.contains_key("sealed_payload") {
        return Err(not_sealable("the body already has 'payload' or 'sealed_payload'; give the payload separately"));
    }
    let handling = fields.get("header").and_then(|h| h.get("handling")).and_then(Value::as_str);
    if handling == Some("public") {
        return Err(not_sealable(
            "its header.handling is 'public': a public notice carries its payload inline in the body",
        ));
    }
    let (payload, seal) = seal_with_nonce(payload, nonce)?;
    fields.insert("sealed_payload".into(), seal.to_json());
    let body = serde_json::to_vec(&Value::Object(fields)).expect("a JSON value serializes");
    Ok(SealedNotice { body, payload, seal })
}

/// The body of a notice, parsed; `None` for another type or a body that is not JSON.
fn notice_body(doc: &SignedDocument) -> Option<Value> {
    if doc.header.doc_type.as_str() != NOTICE_TYPE {
        return None;
    }
    serde_json::from_slice(doc.body()).ok()
}

/// The commitment of a sealed notice; `None` for other types and for notices whose payload is
/// inline (handling `public`).
pub fn sealed_ref(doc: &SignedDocument) -> Option<SealRef> {
    SealRef::from_json(notice_body(doc)?.get("sealed_payload")?)
}

/// Checks that `payload` is the sealed payload `doc` commits to: length, SHA-256, then JSON
/// and the payload schema. Length is compared first, so an oversized payload is never hashed.
pub fn check_payload(doc: &SignedDocument, payload: &[u8]) -> Result<(), NoticeError> {
    let seal = sealed_ref(doc).ok_or(NoticeError::NotSealed(doc.id))?;
    if payload.len() != seal.bytes as usize {
        return Err(NoticeError::PayloadMismatch(format!(
            "it is {} bytes, the notice commits to {}",
            payload.len(),
            seal.bytes
        )));
    }
    if SealRef::of(payload).sha256 != seal.sha256 {
        return Err(NoticeError::PayloadMismatch("its SHA-256 is not the one the notice commits to".into()));
    }
    let value = crate::json::parse_strict(payload)
        .map_err(|e| NoticeError::PayloadInvalid(format!("not strict UTF-8 JSON: {e}")))?;
    validate_notice_payload(&value).map_err(NoticeError::PayloadInvalid)
}

/// Who a notice's payload is for (`audience` in its body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    AllCustoms,
    Region(String),
    Group(Vec<OrgId>),
}

/// A notice's audience; `None` for other types or a body without a readable audience.
pub fn audience(doc: &SignedDocument) -> Option<Audience> {
    audience_of(&notice_body(doc)?)
}

fn audience_of(body: &Value) -> Option<Audience> {
    let a = body.get("audience")?;
    match a.get("scope")?.as_str()? {
        "all_customs" => Some(Audience::AllCustoms),
        "region" => Some(Audience::Region(a.get("region")?.as_str()?.to_owned())),
        "group" => {
            let ids = a.get("group")?.as_array()?;
            ids.iter().map(|id| OrgId::new(id.as_str()?).ok()).collect::<Option<Vec<_>>>().map(Audience::Group)
        }
        _ => None,
    }
}

/// Whether organization `reader` may read the payload of `doc` (see the tables above).
///
/// Documents whose content is all in the envelope (every other type, and public notices with
/// their payload inline) are readable by every member, so this is `true` for them; a sealed
/// notice whose audience cannot be read is readable by its publisher only. The keyring decides
/// who is a member: the latest charter version on a charter network (its expiry is not
/// considered here), the keyring file otherwise.
pub fn may_read(keyring: &Keyring, reader: &OrgId, doc: &SignedDocument) -> bool {
    if reader == &doc.header.publisher || doc.header.doc_type.as_str() != NOTICE_TYPE {
        return true;
    }
    let Some(body) = notice_body(doc) else { return false };
    if body.get("sealed_payload").is_none() {
        return body.get("payload").is_some();
    }
    let Some(audience) = audience_of(&body) else { return false };
    match keyring.charter() {
        Some(chain) => {
            let Some(member) = chain.latest().charter.member(reader) else { return false };
            let customs = member.role != Role::Observer;
            match &audience {
                Audience::AllCustoms => customs,
                Audience::Region(region) => customs && member.region.as_deref() == Some(region.as_str()),
                Audience::Group(ids) => ids.contains(reader),
            }
        }
        None => {
            if keyring.organization(reader).is_none() {
                return false;
            }
            match &audience {
                Audience::AllCustoms => true,
                Audience::Region(_) => false,
                Audience::Group(ids) => ids.contains(reader),
            }
        }
    }
}

#[cfg(test)]
mod tests;
