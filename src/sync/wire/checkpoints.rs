//! The checkpoints message (tag 8, added in `/entrepot/sync/4`): a node asks a peer for its
//! latest cosigned checkpoints of some feeds; the answer carries, per feed, the signed note
//! with its cosignatures and the witnesses' node certificates, and any checkpoint-fork
//! evidence of those feeds (docs/PROTOCOL.md §8.2, §13.5).

use super::{put_bytes32, put_str8, Reader, WireError, CERT_MAX_BYTES};
use crate::document::OrgId;

/// Feeds asked for (and checkpoints answered) at most per request.
pub const CHECKPOINT_FEEDS_MAX: usize = 32;
/// Largest checkpoint note (a signed note with its cosignatures).
pub const CHECKPOINT_NOTE_MAX_BYTES: usize = crate::tlog::note::NOTE_MAX_BYTES;
/// Witness certificates per checkpoint at most (one per cosignature line besides the publisher's).
pub const CHECKPOINT_CERTS_MAX: usize = 63;
/// Checkpoint-fork evidence items per answer at most.
pub const CHECKPOINT_FORKS_MAX: usize = 4;
/// Largest checkpoint-fork evidence (two notes and a proof).
pub const CHECKPOINT_FORK_MAX_BYTES: usize = 2 * CHECKPOINT_NOTE_MAX_BYTES + 4 * 1024;

/// One feed's checkpoint as a peer holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointItem {
    /// The signed note: the checkpoint, its publisher's signature and the cosignatures.
    pub note: Vec<u8>,
    /// The node certificates of the witnesses whose cosignatures the note carries.
    pub certs: Vec<Vec<u8>>,
}

pub(super) fn put_request(out: &mut Vec<u8>, orgs: &[OrgId]) {
    out.push(orgs.len().min(CHECKPOINT_FEEDS_MAX) as u8);
    for org in orgs.iter().take(CHECKPOINT_FEEDS_MAX) {
        put_str8(out, org.as_str());
    }
}

pub(super) fn read_request(r: &mut Reader<'_>) -> Result<Vec<OrgId>, WireError> {
    let n = r.u8("checkpoint feed count")? as usize;
    if n > CHECKPOINT_FEEDS_MAX {
        return Err(WireError::OverLimit("checkpoint feeds"));
    }
    (0..n).map(|_| r.org()).collect()
}

pub(super) fn put_response(out: &mut Vec<u8>, items: &[CheckpointItem], forks: &[Vec<u8>]) {
    out.push(items.len().min(CHECKPOINT_FEEDS_MAX) as u8);
    for item in items.iter().take(CHECKPOINT_FEEDS_MAX) {
        put_bytes32(out, &item.note);
        out.push(item.certs.len().min(CHECKPOINT_CERTS_MAX) as u8);
        for cert in item.certs.iter().take(CHECKPOINT_CERTS_MAX) {
            put_bytes32(out, cert);
        }
    }
    out.push(forks.len().min(CHECKPOINT_FORKS_MAX) as u8);
    for f in forks.iter().take(CHECKPOINT_FORKS_MAX) {
        put_bytes32(out, f);
    }
}

pub(super) fn read_response(r: &mut Reader<'_>) -> Result<(Vec<CheckpointItem>, Vec<Vec<u8>>), WireError> {
    let n = r.u8("checkpoint count")? as usize;
    if n > CHECKPOINT_FEEDS_MAX {
        return Err(WireError::OverLimit("checkpoints"));
    }
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let note = r.bytes(CHECKPOINT_NOTE_MAX_BYTES, "checkpoint note")?;
        let c = r.u8("certificate count")? as usize;
        if c > CHECKPOINT_CERTS_MAX {
            return Err(WireError::OverLimit("witness certificates"));
        }
        let certs = (0..c).map(|_| r.bytes(CERT_MAX_BYTES, "certificate")).collect::<Result<_, _>>()?;
        items.push(CheckpointItem { note, certs });
    }
    let f = r.u8("checkpoint fork count")? as usize;
    if f > CHECKPOINT_FORKS_MAX {
        return Err(WireError::OverLimit("checkpoint forks"));
    }
    let forks = (0..f).map(|_| r.bytes(CHECKPOINT_FORK_MAX_BYTES, "checkpoint fork")).collect::<Result<_, _>>()?;
    Ok((items, forks))
}
