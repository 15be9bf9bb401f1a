//! The charter's byte layout (docs/PROTOCOL.md §10.1): the only code that reads or writes it.
//!
//! `ENTRPCHR || u8 version || u32 body_length || body || u8 count || count × (key, signature)`.
//! Signatures cover `CHARTER_DOMAIN || 0x00 || body` only, so signers can work offline and in
//! any order, and the charter hash (of the body) never changes as signatures are added.

use ed25519_dalek::{Signature, Signer, SigningKey};

use super::{Charter, CharterError, CharterHash, PublicKey, CHARTER_BODY_MAX_BYTES, CHARTER_DOMAIN};
use crate::document::signing_message;

/// The first eight bytes of a charter file.
pub const CHARTER_MAGIC: &[u8; 8] = b"ENTRPCHR";
const FORMAT_VERSION: u8 = 1;
/// Most signatures one charter carries (at most one per root key of two versions).
const SIGNATURES_MAX: usize = 64;

/// One (root key, signature) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharterSignature {
    pub key: PublicKey,
    pub signature: [u8; 64],
}

impl CharterSignature {
    /// Whether the signature verifies (strictly) over `body`.
    pub fn verifies(&self, body: &[u8]) -> bool {
        let msg = signing_message(CHARTER_DOMAIN, body);
        self.key.verifying_key().verify_strict(&msg, &Signature::from_bytes(&self.signature)).is_ok()
    }
}

/// A charter as stored and sent: body bytes verbatim, its parse, and its signatures sorted
/// by key. Signatures are not checked here; see [`super::verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCharter {
    pub body: Vec<u8>,
    pub charter: Charter,
    pub signatures: Vec<CharterSignature>,
}

impl SignedCharter {
    /// An unsigned charter from a body.
    pub fn unsigned(body: Vec<u8>) -> Result<SignedCharter, CharterError> {
        let charter = Charter::from_body(&body)?;
        Ok(SignedCharter { body, charter, signatures: Vec::new() })
    }

    pub fn hash(&self) -> CharterHash {
        CharterHash::of_body(&self.body)
    }

    /// Adds (or replaces) `key`'s signature over the body, keeping signatures sorted by key.
    pub fn sign(&mut self, key: &SigningKey) -> Result<(), CharterError> {
        let public = PublicKey::new(key.verifying_key().to_bytes())?;
        let signature = key.sign(&signing_message(CHARTER_DOMAIN, &self.body)).to_bytes();
        self.signatures.retain(|s| s.key != public);
        self.signatures.push(CharterSignature { key: public, signature });
        self.signatures.sort_by_key(|s| s.key);
        if self.signatures.len() > SIGNATURES_MAX {
            return Err(CharterError::Invalid(format!("more than {SIGNATURES_MAX} signatures")));
        }
        Ok(())
    }
}

/// Lays out a signed charter.
pub fn encode(c: &SignedCharter) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 1 + 4 + c.body.len() + 1 + c.signatures.len() * 96);
    out.extend_from_slice(CHARTER_MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&(c.body.len() as u32).to_be_bytes());
    out.extend_from_slice(&c.body);
    out.push(c.signatures.len() as u8);
    for s in &c.signatures {
        out.extend_from_slice(&s.key.0);
        out.extend_from_slice(&s.signature);
    }
    out
}

/// Parses charter bytes: layout, canonical signature order, and the body's own rules.
pub fn decode(bytes: &[u8]) -> Result<SignedCharter, CharterError> {
    let bad = |s: &str| CharterError::Invalid(s.to_owned());
    let mut r = bytes;
    let mut take = |n: usize, field: &str| -> Result<&[u8], CharterError> {
        if r.len() < n {
            return Err(CharterError::Invalid(format!("truncated in {field}")));
        }
        let (head, tail) = r.split_at(n);
        r = tail;
        Ok(head)
    };
    if take(8, "magic")? != CHARTER_MAGIC {
        return Err(bad("not a charter: the first bytes are not \"ENTRPCHR\""));
    }
    let version = take(1, "format_version")?[0];
    if version != FORMAT_VERSION {
        return Err(CharterError::Invalid(format!("charter format version {version} is not supported")));
    }
    let len = u32::from_be_bytes(take(4, "body_length")?.try_into().expect("4 bytes")) as usize;
    if len > CHARTER_BODY_MAX_BYTES {
        return Err(bad("charter body is larger than 1 MiB"));
    }
    let body = take(len, "body")?.to_vec();
    let count = take(1, "signature_count")?[0] as usize;
    if count > SIGNATURES_MAX {
        return Err(CharterError::Invalid(format!("more than {SIGNATURES_MAX} signatures")));
    }
    let mut signatures = Vec::with_capacity(count);
    for _ in 0..count {
        let mut key = [0u8; 32];
        key.copy_from_slice(take(32, "signature key")?);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(take(64, "signature")?);
        signatures.push(CharterSignature { key: PublicKey::new(key)?, signature });
    }
    if !r.is_empty() {
        return Err(CharterError::Invalid(format!("{} trailing bytes after the signatures", r.len())));
    }
    // One encoding per signature set: strictly increasing keys, so no key counts twice.
    if !signatures.windows(2).all(|w| w[0].key < w[1].key) {
        return Err(bad("signatures must be sorted by key, one per key"));
    }
    let charter = Charter::from_body(&body)?;
    Ok(SignedCharter { body, charter, signatures })
}
