//! Bundles: a file of signed documents and what a third party needs to verify them offline,
//! for air-gapped replicas and auditors (docs/PROTOCOL.md §6).
//!
//! Layout (all integers big-endian): magic `ENTRPBND` · version u8 · network id (32) ·
//! keyring length u32 · keyring JSON · in version 2 the trust section ([`trust`]: the charter
//! chain and each feed's cosigned checkpoint) · then documents until the end of the file, each
//! as length u32 · envelope, and in version 2 its inclusion proof against its feed's
//! checkpoint (u8 count · that many 32-byte hashes). The keyring inside a bundle is
//! informative; trust comes from what the verifier already holds: a keyring, or the genesis
//! hash the bundle's charter chain must start from ([`audit`]).

pub mod audit;
pub mod trust;

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::document::DOCUMENT_SIZE_MAX_BYTES;
use crate::tlog::merkle::Hash;

pub use trust::{Trust, TrustCheckpoint};

/// The first eight bytes of a bundle.
pub const BUNDLE_MAGIC: &[u8; 8] = b"ENTRPBND";
/// Bundle format of documents and keys only.
pub const BUNDLE_VERSION: u8 = 1;
/// Bundle format that also carries its trust and each document's inclusion proof.
pub const BUNDLE_VERSION_TRUSTED: u8 = 2;
/// Most hashes in a document's inclusion proof (a tree of fewer than 2^64 entries).
pub const INCLUSION_HASHES_MAX: usize = 64;
/// Largest keyring section accepted.
pub const BUNDLE_KEYRING_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Why a bundle cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot open bundle {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("bundle I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a bundle: the file does not start with \"ENTRPBND\"")]
    BadMagic,
    #[error("bundle version {0} is not supported (this build reads versions 1 and 2)")]
    UnsupportedVersion(u8),
    #[error("bundle is truncated inside {0}")]
    Truncated(&'static str),
    #[error("bundle {what} is {len} bytes, more than the {max}-byte limit")]
    TooLarge { what: &'static str, len: usize, max: usize },
    #[error("bundle keyring is not UTF-8")]
    KeyringNotText,
    #[error("bundle keyring is not a valid keyring: {0}")]
    KeyringInvalid(String),
    #[error("bundle {what} count is {count}, more than {max}")]
    TooMany { what: &'static str, count: usize, max: usize },
    #[error("a version 1 bundle carries no inclusion proof")]
    NoProofs,
}

impl BundleError {
    /// A stable machine-readable reason (docs/PROTOCOL.md §6), used by the test vectors.
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::Open { .. } | BundleError::Io(_) => "bundle_io",
            BundleError::BadMagic => "bad_magic",
            BundleError::UnsupportedVersion(_) => "unsupported_version",
            BundleError::Truncated(_) => "truncated",
            BundleError::TooLarge { .. } => "too_large",
            BundleError::KeyringNotText => "keyring_not_text",
            BundleError::KeyringInvalid(_) => "keyring_invalid",
            BundleError::TooMany { .. } => "too_many",
            BundleError::NoProofs => "no_proofs",
        }
    }
}

/// Writes a bundle.
pub struct BundleWriter<W: Write> {
    out: W,
    version: u8,
    pub count: u64,
}

impl BundleWriter<BufWriter<std::fs::File>> {
    /// Creates a bundle file: version 2 carrying `trust`, or version 1 without.
    pub fn create(
        path: &Path,
        network_id: &[u8; 32],
        keyring_json: &str,
        trust: Option<&Trust>,
    ) -> Result<Self, BundleError> {
        let file = std::fs::File::create(path)
            .map_err(|source| BundleError::Open { path: path.display().to_string(), source })?;
        let out = BufWriter::new(file);
        match trust {
            Some(trust) => BundleWriter::with_trust(out, network_id, keyring_json, trust),
            None => BundleWriter::new(out, network_id, keyring_json),
        }
    }
}

impl<W: Write> BundleWriter<W> {
    /// Writes the header of a version 1 bundle.
    pub fn new(out: W, network_id: &[u8; 32], keyring_json: &str) -> Result<Self, BundleError> {
        BundleWriter::header(out, BUNDLE_VERSION, network_id, keyring_json)
    }

    /// Writes the header of a version 2 bundle, with its trust section.
    pub fn with_trust(out: W, network_id: &[u8; 32], keyring_json: &str, trust: &Trust) -> Result<Self, BundleError> {
        let mut w = BundleWriter::header(out, BUNDLE_VERSION_TRUSTED, network_id, keyring_json)?;
        trust.write(&mut w.out)?;
        Ok(w)
    }

    fn header(mut out: W, version: u8, network_id: &[u8; 32], keyring_json: &str) -> Result<Self, BundleError> {
        if keyring_json.len() > BUNDLE_KEYRING_MAX_BYTES {
            return Err(BundleError::TooLarge {
                what: "keyring",
                len: keyring_json.len(),
                max: BUNDLE_KEYRING_MAX_BYTES,
            });
        }
        out.write_all(BUNDLE_MAGIC)?;
        out.write_all(&[version])?;
        out.write_all(network_id)?;
        out.write_all(&(keyring_json.len() as u32).to_be_bytes())?;
        out.write_all(keyring_json.as_bytes())?;
        Ok(BundleWriter { out, version, count: 0 })
    }

    /// Appends one envelope (in version 2, with an empty inclusion proof: not covered).
    pub fn push(&mut self, envelope: &[u8]) -> Result<(), BundleError> {
        self.push_proved(envelope, &[])
    }

    /// Appends one envelope with its inclusion proof against its feed's checkpoint in the
    /// trust section (version 2 only, unless the proof is empty).
    pub fn push_proved(&mut self, envelope: &[u8], proof: &[Hash]) -> Result<(), BundleError> {
        if self.version == BUNDLE_VERSION && !proof.is_empty() {
            return Err(BundleError::NoProofs);
        }
        if proof.len() > INCLUSION_HASHES_MAX {
            return Err(BundleError::TooMany { what: "proof hash", count: proof.len(), max: INCLUSION_HASHES_MAX });
        }
        self.out.write_all(&(envelope.len() as u32).to_be_bytes())?;
        self.out.write_all(envelope)?;
        if self.version == BUNDLE_VERSION_TRUSTED {
            self.out.write_all(&[proof.len() as u8])?;
            for h in proof {
                self.out.write_all(h)?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, BundleError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// An envelope and its inclusion proof.
pub type Entry = (Vec<u8>, Vec<Hash>);

/// Reads a bundle one envelope at a time, so a bundle of any size needs bounded memory.
pub struct BundleReader<R: Read> {
    input: R,
    pub version: u8,
    pub network_id: [u8; 32],
    pub keyring_json: String,
    /// The trust section of a version 2 bundle.
    pub trust: Option<Trust>,
}

impl BundleReader<BufReader<std::fs::File>> {
    /// Opens a bundle file and reads its header.
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let file = std::fs::File::open(path)
            .map_err(|source| BundleError::Open { path: path.display().to_string(), source })?;
        BundleReader::new(BufReader::new(file))
    }
}

pub(crate) fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], what: &'static str) -> Result<(), BundleError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => BundleError::Truncated(what),
        _ => BundleError::Io(e),
    })
}

impl<R: Read> BundleReader<R> {
    /// Reads the bundle header.
    pub fn new(mut input: R) -> Result<Self, BundleError> {
        let mut magic = [0u8; 8];
        read_exact_or(&mut input, &mut magic, "magic").map_err(|_| BundleError::BadMagic)?;
        if &magic != BUNDLE_MAGIC {
            return Err(BundleError::BadMagic);
        }
        let mut version = [0u8; 1];
        read_exact_or(&mut input, &mut version, "version")?;
        if version[0] != BUNDLE_VERSION && version[0] != BUNDLE_VERSION_TRUSTED {
            return Err(BundleError::UnsupportedVersion(version[0]));
        }
        let mut network_id = [0u8; 32];
        read_exact_or(&mut input, &mut network_id, "network id")?;
        let mut len = [0u8; 4];
        read_exact_or(&mut input, &mut len, "keyring length")?;
        let len = u32::from_be_bytes(len) as usize;
        if len > BUNDLE_KEYRING_MAX_BYTES {
            return Err(BundleError::TooLarge { what: "keyring", len, max: BUNDLE_KEYRING_MAX_BYTES });
        }
        let mut keyring = vec![0u8; len];
        read_exact_or(&mut input, &mut keyring, "keyring")?;
        let keyring_json = String::from_utf8(keyring).map_err(|_| BundleError::KeyringNotText)?;
        let trust = if version[0] == BUNDLE_VERSION_TRUSTED { Some(Trust::read(&mut input)?) } else { None };
        Ok(BundleReader { input, version: version[0], network_id, keyring_json, trust })
    }

    /// The keyring the bundle carries, parsed (informative: it says which keys signed, it does
    /// not make them trusted).
    pub fn keyring(&self) -> Result<crate::authority::Keyring, BundleError> {
        crate::authority::Keyring::from_json(&self.keyring_json).map_err(BundleError::KeyringInvalid)
    }

    /// The next envelope, or `None` at the end of the bundle (its proof, in version 2, read
    /// and dropped).
    pub fn next_envelope(&mut self) -> Result<Option<Vec<u8>>, BundleError> {
        Ok(self.next_entry()?.map(|(envelope, _)| envelope))
    }

    /// The next envelope and its inclusion proof (empty in version 1, or when not covered).
    pub fn next_entry(&mut self) -> Result<Option<Entry>, BundleError> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.input.read(&mut len[got..])? {
                0 if got == 0 => return Ok(None),
                0 => return Err(BundleError::Truncated("document length")),
                n => got += n,
            }
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > DOCUMENT_SIZE_MAX_BYTES {
            return Err(BundleError::TooLarge { what: "document", len, max: DOCUMENT_SIZE_MAX_BYTES });
        }
        let mut doc = vec![0u8; len];
        read_exact_or(&mut self.input, &mut doc, "document")?;
        let mut proof = Vec::new();
        if self.version == BUNDLE_VERSION_TRUSTED {
            let mut count = [0u8; 1];
            read_exact_or(&mut self.input, &mut count, "proof length")?;
            let count = count[0] as usize;
            if count > INCLUSION_HASHES_MAX {
                return Err(BundleError::TooMany { what: "proof hash", count, max: INCLUSION_HASHES_MAX });
            }
            for _ in 0..count {
                let mut h = [0u8; 32];
                read_exact_or(&mut self.input, &mut h, "proof")?;
                proof.push(h);
            }
        }
        Ok(Some((doc, proof)))
    }

    /// Up to `max` next envelopes.
    pub fn next_chunk(&mut self, max: usize) -> Result<Vec<Vec<u8>>, BundleError> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.next_envelope()? {
                Some(doc) => out.push(doc),
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation_is_reported() {
        let mut w = BundleWriter::new(Vec::new(), &[7; 32], "{\"organizations\":[]}").unwrap();
        w.push(b"first").unwrap();
        w.push(b"second document").unwrap();
        let bytes = w.finish().unwrap();
        let mut r = BundleReader::new(bytes.as_slice()).unwrap();
        assert_eq!(r.network_id, [7; 32]);
        assert_eq!(r.keyring_json, "{\"organizations\":[]}");
        assert_eq!(r.next_chunk(10).unwrap(), vec![b"first".to_vec(), b"second document".to_vec()]);
        assert!(r.next_envelope().unwrap().is_none());

        let cut = &bytes[..bytes.len() - 3];
        let mut r = BundleReader::new(cut).unwrap();
        r.next_envelope().unwrap();
        assert!(matches!(r.next_envelope(), Err(BundleError::Truncated("document"))));
        assert!(matches!(BundleReader::new(&b"ENTRPDOC"[..]), Err(BundleError::BadMagic)));
    }

    #[test]
    fn oversized_lengths_are_refused_before_allocating() {
        let mut bytes = BundleWriter::new(Vec::new(), &[0; 32], "").unwrap().finish().unwrap();
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut r = BundleReader::new(bytes.as_slice()).unwrap();
        assert!(matches!(r.next_envelope(), Err(BundleError::TooLarge { what: "document", .. })));
    }
}
