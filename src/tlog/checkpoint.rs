//! Checkpoints (C2SP `tlog-checkpoint`) and witness cosignatures (C2SP `tlog-cosignature`,
//! Ed25519 `cosignature/v1`), docs/PROTOCOL.md §13.3–13.4. A checkpoint is the note text
//! `<origin>\n<size>\n<base64 root>\n`; its publisher signs it as a signed note, witnesses add
//! timestamped cosignature lines.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::merkle::Hash;
use super::note::{self, NoteSignature, SIG_TYPE_COSIGNATURE_V1};
use crate::document::OrgId;

/// A feed's tree head: what a checkpoint's text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Why a note text is not a checkpoint, or a signature line not a cosignature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint text must be exactly three lines: origin, tree size, base64 root hash")]
    Lines,
    #[error("checkpoint origin is empty or holds a space or '+'")]
    Origin,
    #[error("checkpoint tree size is not a decimal number without leading zeros")]
    Size,
    #[error("checkpoint root hash is not the canonical base64 of 32 bytes")]
    Root,
}

impl CheckpointError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            CheckpointError::Lines => "checkpoint_lines",
            CheckpointError::Origin => "checkpoint_origin",
            CheckpointError::Size => "checkpoint_size",
            CheckpointError::Root => "checkpoint_root",
        }
    }
}

/// The origin line of `org`'s feed on the network `network_id`:
/// `entrepot/<network id, 64 lowercase hex>/<org>`. It is also the publisher's key name.
pub fn origin(network_id: &[u8; 32], org: &OrgId) -> String {
    format!("entrepot/{}/{}", hex::encode(network_id), org.as_str())
}

/// The key name of a witness: `entrepot/witness/<org>/<peer id>`.
pub fn witness_name(org: &OrgId, peer_id: &str) -> String {
    format!("entrepot/witness/{}/{}", org.as_str(), peer_id)
}

impl Checkpoint {
    /// The note text.
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root))
    }

    /// Parses a note text strictly: three lines and no extension lines (entrepot writes
    /// none, so a checkpoint of one tree head has exactly one text).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::Lines)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root] = lines[..] else { return Err(CheckpointError::Lines) };
        if !note::valid_key_name(origin) {
            return Err(CheckpointError::Origin);
        }
        let canonical =
            !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
        let size: u64 = size.parse().ok().filter(|_| canonical).ok_or(CheckpointError::Size)?;
        let root: Hash = STANDARD.decode(root).ok().and_then(|r| r.try_into().ok()).ok_or(CheckpointError::Root)?;
        Ok(Checkpoint { origin: origin.to_owned(), size, root })
    }

    /// The publisher's signature: an Ed25519 note signature under the origin as key name.
    pub fn sign(&self, key: &SigningKey) -> NoteSignature {
        note::sign_ed25519(&self.origin, key, &self.text())
    }

    /// Whether `sig` is the publisher's valid signature of this checkpoint by `key`.
    pub fn verify(&self, sig: &NoteSignature, key: &VerifyingKey) -> bool {
        sig.name == self.origin && note::verify_ed25519(sig, key, &self.text())
    }
}

/// The message a `cosignature/v1` signs: two header lines, then the checkpoint text.
fn cosigned_message(timestamp_s: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {timestamp_s}\n{text}")
}

/// A witness's `cosignature/v1` of a checkpoint text at `timestamp_s` (POSIX seconds).
pub fn cosign(name: &str, key: &SigningKey, text: &str, timestamp_s: u64) -> NoteSignature {
    debug_assert!(timestamp_s <= i64::MAX as u64);
    let sig = key.sign(cosigned_message(timestamp_s, text).as_bytes());
    let mut data = timestamp_s.to_be_bytes().to_vec();
    data.extend_from_slice(&sig.to_bytes());
    NoteSignature {
        name: name.to_owned(),
        key_id: note::key_id(name, SIG_TYPE_COSIGNATURE_V1, key.as_bytes_public()),
        data,
    }
}

/// The timestamp of `sig` when it is a valid `cosignature/v1` of `text` by `key`.
pub fn verify_cosignature(sig: &NoteSignature, key: &VerifyingKey, text: &str) -> Option<u64> {
    if sig.key_id != note::key_id(&sig.name, SIG_TYPE_COSIGNATURE_V1, key.as_bytes()) || sig.data.len() != 72 {
        return None;
    }
    let timestamp_s = u64::from_be_bytes(sig.data[..8].try_into().ok()?);
    if timestamp_s > i64::MAX as u64 {
        return None;
    }
    let bytes: [u8; 64] = sig.data[8..].try_into().ok()?;
    key.verify_strict(cosigned_message(timestamp_s, text).as_bytes(), &ed25519_dalek::Signature::from_bytes(&bytes))
        .ok()
        .map(|_| timestamp_s)
}

/// The public half of a signing key, as bytes.
trait PublicBytes {
    fn as_bytes_public(&self) -> &[u8; 32];
}

impl PublicBytes for SigningKey {
    fn as_bytes_public(&self) -> &[u8; 32] {
        self.as_ref().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    // C2SP's example checkpoint text.
    const SOFA: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    /// The key of the vectors below: seed SHA-256("entrepot test witness").
    fn key() -> SigningKey {
        SigningKey::from_bytes(&Sha256::digest(b"entrepot test witness").into())
    }

    #[test]
    fn the_c2sp_example_checkpoint_parses_and_prints_back_byte_for_byte() {
        let cp = Checkpoint::parse(SOFA).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20852163);
        assert_eq!(cp.text(), SOFA);
    }

    // Expected lines computed by another Ed25519 implementation (OpenSSL, through Python's
    // `cryptography`) from the C2SP formats: Ed25519 is deterministic, so any two correct
    // implementations print the same bytes. The cosignature's timestamp bytes
    // (`AAAAAGQYUMs`, 1679315147) are those of the C2SP example cosignature.
    #[test]
    fn signatures_match_another_implementation_byte_for_byte() {
        let k = key();
        assert_eq!(
            hex::encode(k.verifying_key().as_bytes()),
            "b9c5f50a72eedda260dfcdd0a430e3285eddcc0a676db3e85cb966480fafaa62"
        );
        let cp = Checkpoint::parse(SOFA).unwrap();
        assert_eq!(
            cp.sign(&k).line(),
            "\u{2014} example.com/behind-the-sofa n8X/nV61ofTwBoeX4a+z7T4JhsIJEkzgQZN4ofJNE6TGdLyo3aXNcZ1iOuoepHquDG+gkbsSPjqkTvzN2x+7B/zcCwU=\n"
        );
        let cosig = cosign("witness.example/w1", &k, SOFA, 1679315147);
        assert_eq!(
            cosig.line(),
            "\u{2014} witness.example/w1 aC4nSgAAAABkGFDLkzl5ZaGp8t6f9GTpjOtBNVyhKbLPPpxzseMscf+LlKHtR7zrhdYD4KvGZso78h0VbErGqXOGqOdtPVmQXV3zBw==\n"
        );
        assert_eq!(verify_cosignature(&cosig, &k.verifying_key(), SOFA), Some(1679315147));
        assert!(cp.verify(&cp.sign(&k), &k.verifying_key()));
    }

    #[test]
    fn the_timestamp_layout_reads_the_go_witness_vector() {
        // transparency-dev/formats' cosignature vector: key id, then the u64 timestamp.
        let raw = STANDARD.decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==").unwrap();
        assert_eq!(raw.len(), 4 + 8 + 64);
        assert_eq!(u64::from_be_bytes(raw[4..12].try_into().unwrap()), 1727964367);
    }

    #[test]
    fn a_cosignature_of_another_text_or_key_or_time_does_not_verify() {
        let k = key();
        let other = SigningKey::from_bytes(&[7; 32]);
        let cosig = cosign("w", &k, SOFA, 5);
        assert_eq!(verify_cosignature(&cosig, &other.verifying_key(), SOFA), None);
        assert_eq!(verify_cosignature(&cosig, &k.verifying_key(), &SOFA.replace("63", "64")), None);
        let mut later = cosig.clone();
        later.data[7] = 6;
        assert_eq!(verify_cosignature(&later, &k.verifying_key(), SOFA), None);
        // A publisher signature is not a cosignature, nor the reverse.
        let cp = Checkpoint::parse(SOFA).unwrap();
        assert_eq!(verify_cosignature(&cp.sign(&k), &k.verifying_key(), SOFA), None);
        let as_origin = cosign(&cp.origin, &k, SOFA, 5);
        assert!(!cp.verify(&as_origin, &k.verifying_key()));
    }

    #[test]
    fn malformed_checkpoint_texts_are_refused_with_their_reason() {
        let cases = [
            ("a\n1\n", "checkpoint_lines"),
            ("a\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", "checkpoint_lines"),
            ("a\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\next\n", "checkpoint_lines"),
            ("a b\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "checkpoint_origin"),
            ("\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "checkpoint_origin"),
            ("a\n01\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "checkpoint_size"),
            ("a\n+1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "checkpoint_size"),
            ("a\n18446744073709551616\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "checkpoint_size"),
            ("a\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2=\n", "checkpoint_root"),
            ("a\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", "checkpoint_root"),
        ];
        for (text, code) in cases {
            assert_eq!(Checkpoint::parse(text).unwrap_err().code(), code, "{text:?}");
        }
        assert_eq!(Checkpoint::parse("a\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n").unwrap().size, 0);
    }
}
