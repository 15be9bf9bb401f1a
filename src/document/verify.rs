//! Signature verification: the one check every document passes, whoever served it.

use ed25519_dalek::{Signature, VerifyingKey};

use super::envelope::SignedDocument;
use super::{signing_message, DOCUMENT_DOMAIN};

/// Why a well-formed envelope is not a valid signed document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("document belongs to network {found}, not this node's network {expected}")]
    WrongNetwork { expected: String, found: String },
    #[error("the signing key is not the canonical encoding of an ed25519 point")]
    BadKey,
    #[error("the signing key is weak (small order) and is never accepted")]
    WeakKey,
    #[error("the signature does not verify for this document and key")]
    BadSignature,
}

impl VerifyError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::WrongNetwork { .. } => "wrong_network",
            VerifyError::BadKey => "bad_key",
            VerifyError::WeakKey => "weak_key",
            VerifyError::BadSignature => "bad_signature",
        }
    }
}

/// A document whose signature verified under the expected network. Only [`verify`] makes one,
/// so a function taking `VerifiedDocument` cannot be handed unverified bytes.
#[derive(Debug, Clone)]
pub struct VerifiedDocument(SignedDocument);

impl VerifiedDocument {
    pub fn doc(&self) -> &SignedDocument {
        &self.0
    }

    pub fn into_doc(self) -> SignedDocument {
        self.0
    }
}

impl std::ops::Deref for VerifiedDocument {
    type Target = SignedDocument;
    fn deref(&self) -> &SignedDocument {
        &self.0
    }
}

/// Checks an ed25519 public key as every signed format here does (docs/PROTOCOL.md §3.1):
/// `BadKey` when the bytes are not the canonical encoding of a curve point (y ≥ p, or x = 0
/// with the sign bit set, decode in ed25519-dalek but are refused here, so that one key has one
/// encoding and its bytes can be its id), `WeakKey` when the point has small order.
pub fn public_key(raw: &[u8; 32]) -> Result<VerifyingKey, VerifyError> {
    let key = VerifyingKey::from_bytes(raw).map_err(|_| VerifyError::BadKey)?;
    if key.to_edwards().compress().to_bytes() != *raw {
        return Err(VerifyError::BadKey);
    }
    if key.is_weak() {
        return Err(VerifyError::WeakKey);
    }
    Ok(key)
}

/// The verdict of docs/PROTOCOL.md §3.1 on one signature: the key's encoding and order
/// ([`public_key`]), then `verify_strict` over `message` (domain included).
pub fn verify_signature(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<(), VerifyError> {
    public_key(key)?.verify_strict(message, &Signature::from_bytes(signature)).map_err(|_| VerifyError::BadSignature)
}

/// Checks the network id and the signature with `verify_strict`, rejecting weak keys.
/// Nothing is re-serialized: the signature is checked over the bytes as received.
pub fn verify(doc: SignedDocument, network_id: &[u8; 32]) -> Result<VerifiedDocument, VerifyError> {
    if &doc.header.network_id != network_id {
        return Err(VerifyError::WrongNetwork {
            expected: hex::encode(network_id),
            found: hex::encode(doc.header.network_id),
        });
    }
    verify_signature(&doc.header.key, &signing_message(DOCUMENT_DOMAIN, doc.signed_part()), doc.signature())?;
    Ok(VerifiedDocument(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `p + k` for small `k`, little-endian, with the sign bit as given: an encoding of the
    /// point whose y is `k`, but not the canonical one.
    fn y_over_p(k: u8, sign: bool) -> [u8; 32] {
        let mut raw = [0xffu8; 32];
        raw[0] = 0xed + k;
        raw[31] = 0x7f | if sign { 0x80 } else { 0 };
        raw
    }

    #[test]
    fn a_key_encoding_that_is_not_canonical_is_a_bad_key_even_of_a_usable_point() {
        let mut decodable = 0;
        for k in 0..=18 {
            for sign in [false, true] {
                let raw = y_over_p(k, sign);
                if VerifyingKey::from_bytes(&raw).is_ok() {
                    decodable += 1;
                    assert_eq!(public_key(&raw).err(), Some(VerifyError::BadKey), "{}", hex::encode(raw));
                }
            }
        }
        assert!(decodable > 2, "few non-canonical encodings decode: the test shows little");
        // x = 0 with the sign bit set: the identity (y = 1) and the point of order 2 (y = -1).
        let mut identity_negative = [0u8; 32];
        identity_negative[0] = 1;
        identity_negative[31] = 0x80;
        assert_eq!(public_key(&identity_negative).err(), Some(VerifyError::BadKey));
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(public_key(&identity).err(), Some(VerifyError::WeakKey));
    }
}
