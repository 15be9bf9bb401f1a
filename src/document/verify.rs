//! Signature verification: the one check every document passes, whoever served it.
//!
//! The check is ed25519-dalek's `verify_strict`, exactly: it accepts the same (key, message,
//! signature) triples and refuses the same, so every node reaches the same verdict on a
//! document. It is computed here from curve25519-dalek's primitives (the ones `verify_strict`
//! itself uses) in order to do less per document, never to accept differently:
//!
//! * the publisher key is decoded once per batch, not once per document ([`KeyCache`]);
//! * the message `domain || 0x00 || bytes` is hashed in its parts, never copied into one buffer;
//! * `verify_strict` compares the *encoding* of `[s]B − [k]A` with the signature's R bytes,
//!   which costs a field inversion; here the point is compared with R decoded, and R's
//!   encoding is required canonical instead. The two agree: an encoding produced by
//!   compression is canonical, and a canonical encoding of a point that is not of small order
//!   (y ≠ ±1, so x ≠ 0) is the compression of the point it decodes to.
//!
//! One rule is added to `verify_strict`'s, for keys only (docs/PROTOCOL.md §3.1): a key must be
//! the canonical encoding of its point ([`public_key`]), so that one key has one encoding.
//!
//! What `verify_strict` requires, and so this: `s` canonical (`s < ℓ`); R decodes to a point;
//! neither R nor A is of small order; the cofactorless equation `[s]B − [k]A = R` with
//! `k = SHA-512(R || A || message) mod ℓ` and R's bytes those of the result's encoding. The
//! differential tests (`verify_tests.rs`, and `entrepot bench verify` for long runs) compare
//! it with `verify_strict` on edge-case and random inputs.

use std::collections::HashMap;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

use super::envelope::SignedDocument;
use super::DOCUMENT_DOMAIN;

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

/// An ed25519 public key decoded once: a valid point, not of small order.
#[derive(Debug, Clone, Copy)]
pub struct PublicKey {
    encoded: [u8; 32],
    /// −A, as the verification equation uses it.
    minus_point: EdwardsPoint,
}

impl PublicKey {
    /// Decodes a key as [`public_key`] does: `BadKey` unless the bytes are the canonical
    /// encoding of a curve point, `WeakKey` when it has small order (which `verify_strict`
    /// would refuse for every signature).
    pub fn decode(encoded: &[u8; 32]) -> Result<PublicKey, VerifyError> {
        let point = CompressedEdwardsY(*encoded).decompress().ok_or(VerifyError::BadKey)?;
        if point.compress().to_bytes() != *encoded {
            return Err(VerifyError::BadKey);
        }
        if point.is_small_order() {
            return Err(VerifyError::WeakKey);
        }
        Ok(PublicKey { encoded: *encoded, minus_point: -point })
    }

    /// Whether `signature` is valid for the message made of `parts` (hashed in order, as if
    /// concatenated), under exactly `verify_strict`'s rules (see the module documentation).
    pub fn verify_strict(&self, parts: &[&[u8]], signature: &[u8; 64]) -> bool {
        let r_encoded: [u8; 32] = signature[..32].try_into().expect("32 of 64 bytes");
        let s_encoded: [u8; 32] = signature[32..].try_into().expect("32 of 64 bytes");
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_encoded)) else { return false };
        let Some(r) = CompressedEdwardsY(r_encoded).decompress() else { return false };
        // Small-order R refused (as verify_strict does); this also rules out x = 0, the one case
        // where a y below p still has a second, non-canonical encoding (the sign bit set).
        if r.is_small_order() || !y_is_canonical(&r_encoded) {
            return false;
        }
        let mut h = Sha512::new();
        h.update(r_encoded);
        h.update(self.encoded);
        for part in parts {
            h.update(part);
        }
        let k = Scalar::from_hash(h);
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &self.minus_point, &s) == r
    }
}

/// Whether the y coordinate of an encoded point (its low 255 bits, little-endian) is below
/// p = 2^255 − 19, i.e. reduced.
fn y_is_canonical(encoded: &[u8; 32]) -> bool {
    // y ≥ p exactly when its bits are all ones but for the lowest byte, which is ≥ 0xed.
    let all_ones_above = encoded[31] & 0x7f == 0x7f && encoded[1..31].iter().all(|b| *b == 0xff);
    !(all_ones_above && encoded[0] >= 0xed)
}

/// Decoded publisher keys, so that a batch of one feed decodes its key once. Bounded: it is
/// emptied when full (a batch names few keys; a hostile one naming many only loses the reuse).
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: HashMap<[u8; 32], Result<PublicKey, VerifyError>>,
}

/// Most keys a [`KeyCache`] holds.
pub const KEY_CACHE_MAX: usize = 64;

impl KeyCache {
    /// The decoded key (or why it is refused) for `encoded`.
    pub fn get(&mut self, encoded: &[u8; 32]) -> Result<PublicKey, VerifyError> {
        if let Some(found) = self.keys.get(encoded) {
            return found.clone();
        }
        if self.keys.len() >= KEY_CACHE_MAX {
            self.keys.clear();
        }
        let decoded = PublicKey::decode(encoded);
        self.keys.insert(*encoded, decoded.clone());
        decoded
    }
}

/// The verdict of docs/PROTOCOL.md §3.1 on one signature: the key's encoding and order
/// ([`public_key`]), then `verify_strict` over `message` (domain included).
pub fn verify_signature(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<(), VerifyError> {
    public_key(key)?.verify_strict(message, &Signature::from_bytes(signature)).map_err(|_| VerifyError::BadSignature)
}

/// Checks the network id and the signature with `verify_strict`, rejecting weak keys.
/// Nothing is re-serialized: the signature is checked over the bytes as received.
pub fn verify(doc: SignedDocument, network_id: &[u8; 32]) -> Result<VerifiedDocument, VerifyError> {
    verify_with(doc, network_id, &mut KeyCache::default())
}

/// As [`verify`], decoding the key through `keys`.
pub fn verify_with(
    doc: SignedDocument,
    network_id: &[u8; 32],
    keys: &mut KeyCache,
) -> Result<VerifiedDocument, VerifyError> {
    if &doc.header.network_id != network_id {
        return Err(VerifyError::WrongNetwork {
            expected: hex::encode(network_id),
            found: hex::encode(doc.header.network_id),
        });
    }
    let key = keys.get(&doc.header.key)?;
    // The signed message is DOCUMENT_DOMAIN || 0x00 || signed part (see `signing_message`).
    if !key.verify_strict(&[DOCUMENT_DOMAIN, &[0], doc.signed_part()], doc.signature()) {
        return Err(VerifyError::BadSignature);
    }
    Ok(VerifiedDocument(doc))
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;

#[cfg(test)]
mod key_tests {
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
