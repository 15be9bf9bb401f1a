//! The charter: the network's signed root of trust (root keys and threshold, member
//! organizations, their keys with feed-position validity, what each may publish, an expiry).
//!
//! This module does no I/O and reads no clock: callers pass the time. Only `envelope.rs` knows
//! the charter's byte layout (docs/PROTOCOL.md §10); `chain.rs` decides which versions are
//! trusted; `permit.rs` answers "may this header be accepted"; `cert.rs` is the node
//! certificate (§9).

mod cert;
mod chain;
mod envelope;
mod permit;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::document::{OrgId, Seq, TypeName};

pub use cert::{certify_node, decode_cert, CertError, NodeCert, CERT_MAGIC, NODE_CERT_DOMAIN};
pub use chain::{verify_chain, ChainError, ExpiryStatus, VerifiedChain, EXPIRY_WARNING_MS};
pub use envelope::{decode, encode, CharterSignature, SignedCharter, CHARTER_MAGIC};

/// Domain-separation context for charter signatures (docs/PROTOCOL.md §2).
pub const CHARTER_DOMAIN: &[u8] = b"entrepot/charter/v1";
/// Largest charter body accepted (a charter with 400 organizations is ~200 KiB).
pub const CHARTER_BODY_MAX_BYTES: usize = 1024 * 1024;
/// Most root keys a charter may name.
pub const ROOT_KEYS_MAX: usize = 32;
/// Most member organizations a charter may list.
pub const MEMBERS_MAX: usize = 4096;
/// Most keys (current and revoked) one organization may hold in a charter.
pub const MEMBER_KEYS_MAX: usize = 64;
/// Most permissions one organization may hold.
pub const PERMISSIONS_MAX: usize = 64;

/// The hash of a charter: SHA-256 of its body bytes (signatures excluded, so collecting
/// signatures never changes it, and a genesis hash can be pinned before it is signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CharterHash(pub [u8; 32]);

impl CharterHash {
    /// Hashes body bytes.
    pub fn of_body(body: &[u8]) -> CharterHash {
        use sha2::{Digest, Sha256};
        CharterHash(Sha256::digest(body).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<CharterHash, CharterError> {
        let mut raw = [0u8; 32];
        hex::decode_to_slice(s, &mut raw)
            .map_err(|_| CharterError::Invalid(format!("'{s}' is not a charter hash (64 hex digits)")))?;
        Ok(CharterHash(raw))
    }
}

impl std::fmt::Display for CharterHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for CharterHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for CharterHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CharterHash::from_hex(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An ed25519 public key that is a valid, non-weak curve point (checked on parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Checks that `raw` is a usable ed25519 key.
    pub fn new(raw: [u8; 32]) -> Result<PublicKey, CharterError> {
        match crate::document::public_key(&raw) {
            Ok(_) => Ok(PublicKey(raw)),
            Err(crate::document::VerifyError::WeakKey) => {
                Err(CharterError::Invalid(format!("key {} is a weak key", hex::encode(raw))))
            }
            Err(_) => Err(CharterError::Invalid(format!("key {} is not an ed25519 point", hex::encode(raw)))),
        }
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).expect("checked in PublicKey::new")
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut raw = [0u8; 32];
        hex::decode_to_slice(&s, &mut raw)
            .map_err(|_| serde::de::Error::custom(format!("key '{s}' is not 64 hex digits")))?;
        PublicKey::new(raw).map_err(serde::de::Error::custom)
    }
}

/// Why a charter body is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CharterError {
    #[error("charter body is not valid: {0}")]
    Invalid(String),
}

impl CharterError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        "charter_invalid"
    }
}

/// The root of trust of one version: who may sign the next version, and how many must.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    pub keys: Vec<PublicKey>,
    pub threshold: u8,
}

/// What kind of member an organization is (informative; permissions are explicit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Secretariat,
    Customs,
    Rilo,
    Observer,
}

/// One signing key of an organization and the feed positions it may sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberKey {
    pub key: PublicKey,
    /// First feed position this key may sign (≥ 1).
    pub valid_from_seq: Seq,
    /// First feed position it may no longer sign; documents before it stay valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_seq: Option<Seq>,
}

/// A document type an organization may publish, optionally narrowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    #[serde(rename = "type")]
    pub doc_type: TypeName,
    /// Two-digit HS chapters the document's indexed subjects must fall in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs_chapters: Option<Vec<String>>,
    /// Regions (informative in this version; see docs/PROTOCOL.md §10.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
}

/// A member organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: OrgId,
    pub name: String,
    /// ISO 3166-1 alpha-2 code, for national administrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// WCO region code (e.g. `EU`, `AP`, `ESA`): an enforcement notice whose audience is a
    /// region reaches the members of that region (see `crate::notice::may_read`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub role: Role,
    pub keys: Vec<MemberKey>,
    pub permissions: Vec<Permission>,
}

/// A charter body, parsed and checked. Serialized, it is the JSON that root keys sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charter {
    pub version: u32,
    /// Hash of version − 1; absent exactly for the genesis (version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<CharterHash>,
    /// RFC 3339 UTC time after which the charter extends no trust.
    pub expires: String,
    pub root: Root,
    pub organizations: Vec<Member>,
}

impl Charter {
    /// Parses and checks body bytes (UTF-8 JSON).
    pub fn from_body(body: &[u8]) -> Result<Charter, CharterError> {
        if body.len() > CHARTER_BODY_MAX_BYTES {
            return Err(CharterError::Invalid(format!("body is larger than {CHARTER_BODY_MAX_BYTES} bytes")));
        }
        let value =
            crate::json::parse_strict(body).map_err(|e| CharterError::Invalid(format!("not strict JSON: {e}")))?;
        if let Some(e) = schema().iter_errors(&value).next() {
            return Err(CharterError::Invalid(format!("schemas/charter.json: {e} at {}", e.instance_path)));
        }
        let charter: Charter = serde_json::from_value(value).map_err(|e| CharterError::Invalid(e.to_string()))?;
        charter.check()?;
        Ok(charter)
    }

    /// The body bytes for this charter (pretty JSON, as `charter genesis` writes it).
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("charter serializes")
    }

    /// Expiry in milliseconds since the Unix epoch.
    pub fn expires_ms(&self) -> i64 {
        chrono::DateTime::parse_from_rfc3339(&self.expires).map(|t| t.timestamp_millis()).unwrap_or(i64::MIN)
    }

    /// The member with this id.
    pub fn member(&self, id: &OrgId) -> Option<&Member> {
        self.organizations.iter().find(|m| &m.id == id)
    }

    /// Every invariant a body must meet beyond its JSON shape.
    pub fn check(&self) -> Result<(), CharterError> {
        let bad = |s: String| Err(CharterError::Invalid(s));
        if self.version == 0 {
            return bad("version starts at 1".into());
        }
        if (self.version == 1) != self.previous.is_none() {
            return bad("previous is absent exactly for version 1 (the genesis)".into());
        }
        if chrono::DateTime::parse_from_rfc3339(&self.expires).is_err() {
            return bad(format!("expires '{}' is not an RFC 3339 time", self.expires));
        }
        let r = &self.root;
        if r.keys.is_empty() || r.keys.len() > ROOT_KEYS_MAX {
            return bad(format!("root must have 1 to {ROOT_KEYS_MAX} keys"));
        }
        if r.threshold == 0 || r.threshold as usize > r.keys.len() {
            return bad(format!("root threshold {} must be 1 to the number of root keys", r.threshold));
        }
        if !distinct(r.keys.iter()) {
            return bad("root keys must be distinct".into());
        }
        if self.organizations.len() > MEMBERS_MAX {
            return bad(format!("more than {MEMBERS_MAX} organizations"));
        }
        let mut ids = BTreeMap::new();
        for m in &self.organizations {
            if ids.insert(&m.id, ()).is_some() {
                return bad(format!("organization {} is listed twice", m.id));
            }
            check_member(m)?;
        }
        Ok(())
    }
}

/// The compiled `schemas/charter.json`; the schema is the published contract for bodies.
fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schemas/charter.json")).expect("schemas/charter.json is JSON");
        // Behind a `$ref`, as the document types' schemas are: see `build_embedded`.
        crate::doctype::build_embedded(jsonschema::options().with_draft(jsonschema::Draft::Draft202012), schema)
            .expect("schemas/charter.json compiles")
    })
}

/// Whether `s` is a region code as enforcement notices and charter members write it.
pub fn is_region_code(s: &str) -> bool {
    (2..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

fn distinct<T: Ord>(items: impl Iterator<Item = T>) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    items.into_iter().all(|i| seen.insert(i))
}

fn check_member(m: &Member) -> Result<(), CharterError> {
    let bad = |s: String| Err(CharterError::Invalid(format!("organization {}: {s}", m.id)));
    if m.name.is_empty() || m.name.len() > 256 {
        return bad("name must be 1-256 characters".into());
    }
    if let Some(c) = &m.country {
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad(format!("country '{c}' is not an ISO 3166-1 alpha-2 code"));
        }
    }
    if let Some(r) = &m.region {
        if !is_region_code(r) {
            return bad(format!("region '{r}' is not a WCO region code (2-16 of A-Z, 0-9, -)"));
        }
    }
    if m.keys.len() > MEMBER_KEYS_MAX || m.permissions.len() > PERMISSIONS_MAX {
        return bad(format!("at most {MEMBER_KEYS_MAX} keys and {PERMISSIONS_MAX} permissions"));
    }
    if !distinct(m.keys.iter().map(|k| k.key)) {
        return bad("keys must be distinct".into());
    }
    for k in &m.keys {
        if k.valid_from_seq.0 == 0 {
            return bad("valid_from_seq starts at 1".into());
        }
        if k.revoked_at_seq.is_some_and(|r| r < k.valid_from_seq) {
            return bad("revoked_at_seq is before valid_from_seq".into());
        }
    }
    if !distinct(m.permissions.iter().map(|p| &p.doc_type)) {
        return bad("each type is permitted once".into());
    }
    for p in &m.permissions {
        for ch in p.hs_chapters.iter().flatten() {
            let ok = ch.len() == 2 && ch.bytes().all(|b| b.is_ascii_digit()) && ch.as_str() != "00";
            if !ok {
                return bad(format!("hs chapter '{ch}' is not 01-99"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
