//! A version 2 bundle's trust section: what lets a verifier holding only the network's genesis
//! hash check every document, and prove each one's place in its feed (docs/PROTOCOL.md §6.1).
//!
//! Layout (big-endian): charter count u16 (≤ [`CHARTERS_MAX`]) · that many × (u32 length ≤
//! [`CHARTER_FILE_MAX_BYTES`] · charter file, §10.1), the chain from genesis in version order ·
//! checkpoint count u16 (≤ [`CHECKPOINTS_MAX`]) · that many × (u32 length ≤ [`NOTE_MAX_BYTES`] ·
//! cosigned checkpoint note, §13.4 · u8 certificate count (≤ [`WITNESS_CERTS_MAX`]) · that many ×
//! (u32 length ≤ [`CERT_MAX_BYTES`] · node certificate, §11)). The whole section is at most
//! [`TRUST_MAX_BYTES`]. Reading checks only this framing; what the bytes mean is checked by
//! [`super::audit`].

use std::io::{Read, Write};

use super::{read_exact_or, BundleError};
use crate::sync::wire::{CERT_MAX_BYTES, CHARTER_FILE_MAX_BYTES};
use crate::tlog::note::NOTE_MAX_BYTES;

/// Most charter files in a bundle (as in a node's charter directory).
pub const CHARTERS_MAX: usize = crate::config::CHARTER_FILES_MAX;
/// Most checkpoints in a bundle: one per feed, and a keyring names at most this many.
pub const CHECKPOINTS_MAX: usize = crate::authority::KEYRING_ORGS_MAX;
/// Most witness certificates per checkpoint (a note holds 64 signature lines, one the
/// publisher's).
pub const WITNESS_CERTS_MAX: usize = crate::service::COSIGNATURES_SERVED_MAX;
/// Most bytes of a whole trust section.
pub const TRUST_MAX_BYTES: usize = 64 * 1024 * 1024;

/// One feed's checkpoint with its cosignatures, and the certificates of its witnesses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustCheckpoint {
    pub note: Vec<u8>,
    pub certificates: Vec<Vec<u8>>,
}

/// The charter chain and the checkpoints a version 2 bundle carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// Charter files (§10.1), genesis first; empty on a keyring network.
    pub charters: Vec<Vec<u8>>,
    pub checkpoints: Vec<TrustCheckpoint>,
}

/// Counts bytes read against [`TRUST_MAX_BYTES`].
struct Budget(usize);

impl Budget {
    fn take(&mut self, len: usize) -> Result<(), BundleError> {
        self.0 = self.0.checked_sub(len).ok_or(BundleError::TooLarge {
            what: "trust section",
            len: TRUST_MAX_BYTES - self.0 + len,
            max: TRUST_MAX_BYTES,
        })?;
        Ok(())
    }
}

fn read_count<R: Read>(r: &mut R, width: usize, what: &'static str, max: usize) -> Result<usize, BundleError> {
    let mut b = [0u8; 2];
    read_exact_or(r, &mut b[2 - width..], what)?;
    let count = u16::from_be_bytes(b) as usize;
    if count > max {
        return Err(BundleError::TooMany { what, count, max });
    }
    Ok(count)
}

fn read_item<R: Read>(r: &mut R, what: &'static str, max: usize, budget: &mut Budget) -> Result<Vec<u8>, BundleError> {
    let mut len = [0u8; 4];
    read_exact_or(r, &mut len, what)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(BundleError::TooLarge { what, len, max });
    }
    budget.take(len)?;
    let mut bytes = vec![0u8; len];
    read_exact_or(r, &mut bytes, what)?;
    Ok(bytes)
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), BundleError> {
    if len > max {
        return Err(BundleError::TooLarge { what, len, max });
    }
    Ok(())
}

fn check_count(what: &'static str, count: usize, max: usize) -> Result<(), BundleError> {
    if count > max {
        return Err(BundleError::TooMany { what, count, max });
    }
    Ok(())
}

fn write_item<W: Write>(w: &mut W, bytes: &[u8]) -> Result<(), BundleError> {
    w.write_all(&(bytes.len() as u32).to_be_bytes())?;
    w.write_all(bytes)?;
    Ok(())
}

impl Trust {
    /// Reads the section, checking its framing and bounds.
    pub fn read<R: Read>(r: &mut R) -> Result<Trust, BundleError> {
        let mut budget = Budget(TRUST_MAX_BYTES);
        let n = read_count(r, 2, "charter", CHARTERS_MAX)?;
        let mut charters = Vec::with_capacity(n);
        for _ in 0..n {
            charters.push(read_item(r, "charter", CHARTER_FILE_MAX_BYTES, &mut budget)?);
        }
        let n = read_count(r, 2, "checkpoint", CHECKPOINTS_MAX)?;
        let mut checkpoints = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let note = read_item(r, "checkpoint", NOTE_MAX_BYTES, &mut budget)?;
            let m = read_count(r, 1, "witness certificate", WITNESS_CERTS_MAX)?;
            let mut certificates = Vec::with_capacity(m);
            for _ in 0..m {
                certificates.push(read_item(r, "witness certificate", CERT_MAX_BYTES, &mut budget)?);
            }
            checkpoints.push(TrustCheckpoint { note, certificates });
        }
        Ok(Trust { charters, checkpoints })
    }

    /// Writes the section; refuses what a reader would refuse.
    pub fn write<W: Write>(&self, w: &mut W) -> Result<(), BundleError> {
        check_count("charter", self.charters.len(), CHARTERS_MAX)?;
        check_count("checkpoint", self.checkpoints.len(), CHECKPOINTS_MAX)?;
        let mut total = 0usize;
        for c in &self.charters {
            check_len("charter", c.len(), CHARTER_FILE_MAX_BYTES)?;
            total += c.len();
        }
        for cp in &self.checkpoints {
            check_len("checkpoint", cp.note.len(), NOTE_MAX_BYTES)?;
            check_count("witness certificate", cp.certificates.len(), WITNESS_CERTS_MAX)?;
            total += cp.note.len();
            for cert in &cp.certificates {
                check_len("witness certificate", cert.len(), CERT_MAX_BYTES)?;
                total += cert.len();
            }
        }
        check_len("trust section", total, TRUST_MAX_BYTES)?;
        w.write_all(&(self.charters.len() as u16).to_be_bytes())?;
        for c in &self.charters {
            write_item(w, c)?;
        }
        w.write_all(&(self.checkpoints.len() as u16).to_be_bytes())?;
        for cp in &self.checkpoints {
            write_item(w, &cp.note)?;
            w.write_all(&[cp.certificates.len() as u8])?;
            for cert in &cp.certificates {
                write_item(w, cert)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Trust {
        Trust {
            charters: vec![b"charter one".to_vec(), b"charter two".to_vec()],
            checkpoints: vec![
                TrustCheckpoint { note: b"note a".to_vec(), certificates: vec![b"cert".to_vec(); 3] },
                TrustCheckpoint { note: b"note b".to_vec(), certificates: Vec::new() },
            ],
        }
    }

    #[test]
    fn the_section_round_trips_and_every_cut_is_truncated() {
        let mut bytes = Vec::new();
        sample().write(&mut bytes).unwrap();
        assert_eq!(Trust::read(&mut bytes.as_slice()).unwrap(), sample());
        for cut in 0..bytes.len() {
            let e = Trust::read(&mut &bytes[..cut]).unwrap_err();
            assert_eq!(e.code(), "truncated", "cut at {cut}");
        }
    }

    #[test]
    fn counts_and_lengths_over_their_bounds_are_refused_before_allocating() {
        let too_many = ((CHARTERS_MAX + 1) as u16).to_be_bytes();
        assert_eq!(Trust::read(&mut &too_many[..]).unwrap_err().code(), "too_many");
        let mut huge = 1u16.to_be_bytes().to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Trust::read(&mut huge.as_slice()).unwrap_err().code(), "too_large");
        let mut t = sample();
        t.checkpoints[0].certificates = vec![Vec::new(); WITNESS_CERTS_MAX + 1];
        assert_eq!(t.write(&mut Vec::new()).unwrap_err().code(), "too_many");
        let mut t = sample();
        t.checkpoints[1].note = vec![b'x'; NOTE_MAX_BYTES + 1];
        assert_eq!(t.write(&mut Vec::new()).unwrap_err().code(), "too_large");
    }
}
