//! Node certificates (docs/PROTOCOL.md §11): an organization's signed statement that a libp2p
//! peer id is one of its nodes. The only code that knows the certificate's byte layout.

use ed25519_dalek::{Signature, Signer, SigningKey};

use super::VerifiedChain;
use crate::document::{signing_message, OrgId};

/// Domain-separation context for node certificates.
pub const NODE_CERT_DOMAIN: &[u8] = b"entrepot/node-cert/v1";
/// The first eight bytes of a node certificate.
pub const CERT_MAGIC: &[u8; 8] = b"ENTRPNCT";
const FORMAT_VERSION: u8 = 1;
const SIGNATURE_LEN: usize = 64;

/// A decoded node certificate (not yet verified unless returned by [`NodeCert::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCert {
    pub network_id: [u8; 32],
    pub organization: OrgId,
    /// The libp2p peer id in its usual base58 text form.
    pub peer_id: String,
    pub key: [u8; 32],
    pub issued_at_ms: i64,
    pub bytes: Vec<u8>,
}

/// Why a node certificate is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("node certificate is malformed: {0}")]
    Malformed(String),
    #[error("node certificate is for another network")]
    WrongNetwork,
    #[error("node certificate names {0}, which is not a member organization of the charter")]
    UnknownOrganization(OrgId),
    #[error("node certificate is signed by a key that is not a current key of {0}")]
    KeyNotAuthorized(OrgId),
    #[error("node certificate signature does not verify")]
    BadSignature,
    #[error("node certificate is for peer {certified}, not for the connected peer {actual}")]
    WrongPeer { certified: String, actual: String },
}

impl CertError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            CertError::Malformed(_) => "cert_malformed",
            CertError::WrongNetwork => "wrong_network",
            CertError::UnknownOrganization(_) => "unknown_organization",
            CertError::KeyNotAuthorized(_) => "key_not_authorized",
            CertError::BadSignature => "bad_signature",
            CertError::WrongPeer { .. } => "wrong_peer",
        }
    }

    /// The reason a node counts when it refuses a peer for this certificate (metrics keep
    /// peers' refusals apart from documents').
    pub fn refusal_code(&self) -> &'static str {
        match self {
            CertError::Malformed(_) => "peer_cert_malformed",
            CertError::WrongNetwork => "peer_cert_wrong_network",
            CertError::UnknownOrganization(_) => "peer_cert_unknown_organization",
            CertError::KeyNotAuthorized(_) => "peer_cert_key_not_authorized",
            CertError::BadSignature => "peer_cert_bad_signature",
            CertError::WrongPeer { .. } => "peer_cert_wrong_peer",
        }
    }
}

/// Signs a certificate binding `peer_id` to `organization` with one of its keys.
pub fn certify_node(
    network_id: &[u8; 32],
    organization: &OrgId,
    peer_id: &str,
    issued_at_ms: i64,
    key: &SigningKey,
) -> Result<NodeCert, CertError> {
    if peer_id.is_empty() || peer_id.len() > u8::MAX as usize || !peer_id.is_ascii() {
        return Err(CertError::Malformed("peer id must be 1-255 ASCII characters".into()));
    }
    let mut out = Vec::with_capacity(128 + peer_id.len());
    out.extend_from_slice(CERT_MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(network_id);
    out.push(organization.as_str().len() as u8);
    out.extend_from_slice(organization.as_str().as_bytes());
    out.push(peer_id.len() as u8);
    out.extend_from_slice(peer_id.as_bytes());
    out.extend_from_slice(&key.verifying_key().to_bytes());
    out.extend_from_slice(&issued_at_ms.to_be_bytes());
    let signature = key.sign(&signing_message(NODE_CERT_DOMAIN, &out));
    out.extend_from_slice(&signature.to_bytes());
    decode_cert(&out)
}

/// Parses certificate bytes (layout only).
pub fn decode_cert(bytes: &[u8]) -> Result<NodeCert, CertError> {
    let mut r = bytes;
    let mut take = |n: usize, field: &str| -> Result<&[u8], CertError> {
        if r.len() < n {
            return Err(CertError::Malformed(format!("truncated in {field}")));
        }
        let (head, tail) = r.split_at(n);
        r = tail;
        Ok(head)
    };
    if take(8, "magic")? != CERT_MAGIC {
        return Err(CertError::Malformed("not a node certificate (magic)".into()));
    }
    if take(1, "format_version")?[0] != FORMAT_VERSION {
        return Err(CertError::Malformed("unsupported format version".into()));
    }
    let network_id: [u8; 32] = take(32, "network_id")?.try_into().expect("32 bytes");
    let n = take(1, "organization length")?[0] as usize;
    let org = std::str::from_utf8(take(n, "organization")?).map_err(|_| CertError::Malformed("organization".into()))?;
    let organization = OrgId::new(org).map_err(|e| CertError::Malformed(e.to_string()))?;
    let n = take(1, "peer id length")?[0] as usize;
    let peer = take(n, "peer id")?;
    if peer.is_empty() || !peer.is_ascii() {
        return Err(CertError::Malformed("peer id must be 1-255 ASCII characters".into()));
    }
    let peer_id = String::from_utf8(peer.to_vec()).map_err(|_| CertError::Malformed("peer id".into()))?;
    let key: [u8; 32] = take(32, "key")?.try_into().expect("32 bytes");
    let issued_at_ms = i64::from_be_bytes(take(8, "issued_at")?.try_into().expect("8 bytes"));
    take(SIGNATURE_LEN, "signature")?;
    if !r.is_empty() {
        return Err(CertError::Malformed("trailing bytes".into()));
    }
    Ok(NodeCert { network_id, organization, peer_id, key, issued_at_ms, bytes: bytes.to_vec() })
}

impl NodeCert {
    /// Checks the certificate for a connection from `actual_peer`: same network, a member
    /// organization, signed by one of its keys that is not revoked (a revoked key certifies
    /// nothing, whenever it signed: certificates carry no feed position), and the peer id.
    pub fn verify(&self, chain: &VerifiedChain, network_id: &[u8; 32], actual_peer: &str) -> Result<(), CertError> {
        if &self.network_id != network_id {
            return Err(CertError::WrongNetwork);
        }
        let member = chain
            .latest()
            .charter
            .member(&self.organization)
            .ok_or_else(|| CertError::UnknownOrganization(self.organization.clone()))?;
        if !member.keys.iter().any(|k| k.key.0 == self.key && k.revoked_at_seq.is_none()) {
            return Err(CertError::KeyNotAuthorized(self.organization.clone()));
        }
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&self.key).map_err(|_| CertError::BadSignature)?;
        let (signed, sig) = self.bytes.split_at(self.bytes.len() - SIGNATURE_LEN);
        let sig = Signature::from_bytes(sig.try_into().expect("64 bytes"));
        vk.verify_strict(&signing_message(NODE_CERT_DOMAIN, signed), &sig).map_err(|_| CertError::BadSignature)?;
        if self.peer_id != actual_peer {
            return Err(CertError::WrongPeer { certified: self.peer_id.clone(), actual: actual_peer.to_owned() });
        }
        Ok(())
    }
}
