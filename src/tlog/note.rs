//! C2SP signed notes (docs/PROTOCOL.md §13.2): a text, a blank line, and signature lines
//! `— <key name> base64(key id (4) || signature)`. The only code that reads or writes the
//! note syntax; checkpoints and cosignatures (`checkpoint.rs`) give the text and signatures
//! their meaning.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The largest note read, signatures included.
pub const NOTE_MAX_BYTES: usize = 64 * 1024;
/// The most signature lines read in one note (C2SP asks for at least 16).
pub const SIGNATURES_MAX: usize = 64;
/// Signature type byte of an Ed25519 note signature (C2SP `signed-note`).
pub const SIG_TYPE_ED25519: u8 = 0x01;
/// Signature type byte of a timestamped Ed25519 cosignature (C2SP `tlog-cosignature`).
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;

const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    /// What follows the key id: 64 bytes for Ed25519, 8 + 64 for a cosignature.
    pub data: Vec<u8>,
}

/// A parsed note: its text (ending in a newline) and its signature lines, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// Why bytes are not a signed note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note is {0} bytes, over the {NOTE_MAX_BYTES}-byte bound")]
    TooLarge(usize),
    #[error("note is not UTF-8 or holds a control character other than newline")]
    BadText,
    #[error("note has no blank line before its signatures, or its text does not end in a newline")]
    NoSignatures,
    #[error("note has more than {SIGNATURES_MAX} signatures")]
    TooManySignatures,
    #[error("note signature line {0} is malformed")]
    BadSignatureLine(usize),
}

impl NoteError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            NoteError::TooLarge(_) => "note_too_large",
            NoteError::BadText => "note_bad_text",
            NoteError::NoSignatures => "note_no_signatures",
            NoteError::TooManySignatures => "note_too_many_signatures",
            NoteError::BadSignatureLine(_) => "note_bad_signature_line",
        }
    }
}

/// Whether `name` may name a key: non-empty, no Unicode space, no `+`.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The C2SP key id: the first four bytes of SHA-256(name || 0x0A || type || public key).
pub fn key_id(name: &str, sig_type: u8, key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, sig_type]);
    h.update(key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Parses a signed note strictly: UTF-8 without control characters but newline, a text
/// ending in a newline, a blank line, then 1..=64 signature lines with canonical base64.
pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
    if bytes.len() > NOTE_MAX_BYTES {
        return Err(NoteError::TooLarge(bytes.len()));
    }
    let s = std::str::from_utf8(bytes).map_err(|_| NoteError::BadText)?;
    if s.chars().any(|c| c != '\n' && (c as u32) < 0x20) {
        return Err(NoteError::BadText);
    }
    // The text ends at the last blank line; signatures follow it.
    let split = s.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
    let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::NoSignatures);
    }
    let mut signatures = Vec::new();
    for (i, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        if signatures.len() == SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        let bad = || NoteError::BadSignatureLine(i + 1);
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(bad)?;
        let (name, b64) = rest.split_once(' ').ok_or_else(bad)?;
        if !valid_key_name(name) {
            return Err(bad());
        }
        let raw = STANDARD.decode(b64).map_err(|_| bad())?;
        if raw.len() < 5 {
            return Err(bad());
        }
        signatures.push(NoteSignature {
            name: name.to_owned(),
            key_id: [raw[0], raw[1], raw[2], raw[3]],
            data: raw[4..].to_vec(),
        });
    }
    Ok(Note { text: text.to_owned(), signatures })
}

impl NoteSignature {
    /// The line as a note carries it, newline included.
    pub fn line(&self) -> String {
        let mut raw = self.key_id.to_vec();
        raw.extend_from_slice(&self.data);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

impl Note {
    /// The note's bytes: text, blank line, signature lines.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    /// The signatures by the key `(name, key id)`.
    pub fn signatures_by<'a>(&'a self, name: &'a str, key_id: [u8; 4]) -> impl Iterator<Item = &'a NoteSignature> {
        self.signatures.iter().filter(move |s| s.name == name && s.key_id == key_id)
    }
}

/// An Ed25519 note signature over `text` by `key` under `name`.
pub fn sign_ed25519(name: &str, key: &SigningKey, text: &str) -> NoteSignature {
    NoteSignature {
        name: name.to_owned(),
        key_id: key_id(name, SIG_TYPE_ED25519, key.verifying_key().as_bytes()),
        data: key.sign(text.as_bytes()).to_bytes().to_vec(),
    }
}

/// Whether `sig` is a valid Ed25519 note signature over `text` by `key` (strict RFC 8032
/// verification, as for documents).
pub fn verify_ed25519(sig: &NoteSignature, key: &VerifyingKey, text: &str) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(sig.data.as_slice()) else { return false };
    sig.key_id == key_id(&sig.name, SIG_TYPE_ED25519, key.as_bytes())
        && key.verify_strict(text.as_bytes(), &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note's published example: key, text and signature.
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn go_keys() -> (SigningKey, VerifyingKey) {
        let seed = STANDARD.decode(GO_SKEY.splitn(5, '+').nth(4).unwrap()).unwrap();
        assert_eq!(seed[0], SIG_TYPE_ED25519);
        let sk = SigningKey::from_bytes(&seed[1..].try_into().unwrap());
        let vk = STANDARD.decode(GO_VKEY.splitn(3, '+').nth(2).unwrap()).unwrap();
        assert_eq!(vk[0], SIG_TYPE_ED25519);
        assert_eq!(sk.verifying_key().as_bytes(), &vk[1..]);
        let vk = sk.verifying_key();
        (sk, vk)
    }

    #[test]
    fn signing_the_go_example_reproduces_its_note_byte_for_byte() {
        let (sk, vk) = go_keys();
        assert_eq!(hex::encode(key_id("PeterNeumann", SIG_TYPE_ED25519, vk.as_bytes())), "c74f20a3");
        let note = Note { text: GO_TEXT.into(), signatures: vec![sign_ed25519("PeterNeumann", &sk, GO_TEXT)] };
        assert_eq!(note.encode(), format!("{GO_TEXT}\n{GO_SIG}"));
    }

    #[test]
    fn the_go_example_parses_and_verifies_and_an_altered_one_does_not() {
        let (_, vk) = go_keys();
        let bytes = format!("{GO_TEXT}\n{GO_SIG}");
        let note = parse(bytes.as_bytes()).unwrap();
        assert_eq!(note.text, GO_TEXT);
        assert_eq!(note.signatures.len(), 1);
        assert!(verify_ed25519(&note.signatures[0], &vk, &note.text));
        assert_eq!(note.encode(), bytes);
        let altered = parse(bytes.replace("cryptography", "cryptographY").as_bytes()).unwrap();
        assert!(!verify_ed25519(&altered.signatures[0], &vk, &altered.text));
    }

    #[test]
    fn malformed_notes_are_refused_with_their_reason() {
        let good = format!("{GO_TEXT}\n{GO_SIG}");
        let cases: Vec<(String, &str)> = vec![
            (GO_TEXT.to_string(), "note_no_signatures"),
            (format!("{GO_TEXT}\n"), "note_no_signatures"),
            (good.trim_end().to_string(), "note_no_signatures"),
            (good.replace("\u{2014} ", "- "), "note_bad_signature_line"),
            (good.replace("PeterNeumann x08", "Peter+Neumann x08"), "note_bad_signature_line"),
            (good.replace("nAM=", "nAN="), "note_bad_signature_line"),
            (good.replace("If you", "If\tyou"), "note_bad_text"),
            (format!("{GO_TEXT}\n\u{2014} k AAAA\n"), "note_bad_signature_line"),
            ("x".repeat(NOTE_MAX_BYTES + 1), "note_too_large"),
        ];
        for (bytes, code) in cases {
            assert_eq!(parse(bytes.as_bytes()).unwrap_err().code(), code, "{bytes:?}");
        }
        let mut many = format!("{GO_TEXT}\n");
        for _ in 0..=SIGNATURES_MAX {
            many.push_str(GO_SIG);
        }
        assert_eq!(parse(many.as_bytes()).unwrap_err(), NoteError::TooManySignatures);
        assert!(parse(&[0xff, b'\n', b'\n']).is_err());
    }
}
