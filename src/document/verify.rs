//! Signature verification: the one check every document passes, whoever served it.

use ed25519_dalek::{Signature, VerifyingKey};

use super::envelope::SignedDocument;
use super::{signing_message, DOCUMENT_DOMAIN};

/// Why a well-formed envelope is not a valid signed document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("document belongs to network {found}, not this node's network {expected}")]
    WrongNetwork { expected: String, found: String },
    #[error("the signing key is not a valid ed25519 point")]
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

/// Checks the network id and the signature with `verify_strict`, rejecting weak keys.
/// Nothing is re-serialized: the signature is checked over the bytes as received.
pub fn verify(doc: SignedDocument, network_id: &[u8; 32]) -> Result<VerifiedDocument, VerifyError> {
    if &doc.header.network_id != network_id {
        return Err(VerifyError::WrongNetwork {
            expected: hex::encode(network_id),
            found: hex::encode(doc.header.network_id),
        });
    }
    let key = VerifyingKey::from_bytes(&doc.header.key).map_err(|_| VerifyError::BadKey)?;
    if key.is_weak() {
        return Err(VerifyError::WeakKey);
    }
    let signature = Signature::from_bytes(doc.signature());
    key.verify_strict(&signing_message(DOCUMENT_DOMAIN, doc.signed_part()), &signature)
        .map_err(|_| VerifyError::BadSignature)?;
    Ok(VerifiedDocument(doc))
}
