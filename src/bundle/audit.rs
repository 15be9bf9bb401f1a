//! Offline audit of a version 2 bundle (docs/PROTOCOL.md §6.1): from the genesis hash alone,
//! the charter chain, then each feed's checkpoint (its publisher's signature and the
//! cosignatures of witnesses the charter certifies), then each document's place in its feed
//! by its inclusion proof. Pure: bytes in, verdicts out; no clock, no store.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use super::trust::TrustCheckpoint;
use crate::authority::Keyring;
use crate::charter::{decode_cert, verify_chain, CharterHash, VerifiedChain};
use crate::document::{DocumentId, OrgId, Seq};
use crate::service::peer_key;
use crate::tlog::checkpoint::{verify_cosignature, witness_name};
use crate::tlog::merkle::{self, Hash};
use crate::tlog::note::{key_id, SIG_TYPE_COSIGNATURE_V1};
use crate::tlog::signed::{self, OpenError};

/// Why a bundle's trust, or a document's place, does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("charter file {index} of the bundle is not a charter: {reason}")]
    CharterFile { index: usize, reason: String },
    #[error("the bundle's charter chain does not start from the genesis hash or does not verify: {0}")]
    Chain(String),
    #[error("a checkpoint's origin {0:?} names no feed of this network")]
    CheckpointOrigin(String),
    #[error("the checkpoint of {org} is refused: {error}")]
    Checkpoint { org: OrgId, error: OpenError },
    #[error("the bundle carries two checkpoints of {0}")]
    CheckpointRepeated(OrgId),
    #[error("the cosignature of certified witness {0} on a checkpoint does not verify")]
    CosignatureInvalid(String),
    #[error("the bundle carries no checkpoint of {0}'s feed")]
    NoCheckpoint(OrgId),
    #[error("#{seq} is not under the bundle's checkpoint of {size} entries")]
    NotCovered { seq: u64, size: u64 },
    #[error("the inclusion proof does not lead to the checkpoint's root: {0}")]
    InclusionInvalid(merkle::ProofError),
    #[error("cosigned by {have} member organization(s) other than the publisher, fewer than the {need} asked")]
    WitnessesTooFew { have: usize, need: usize },
}

impl AuditError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            AuditError::CharterFile { .. } => "charter_invalid",
            AuditError::Chain(_) => "chain_invalid",
            AuditError::CheckpointOrigin(_) => "checkpoint_origin_unknown",
            AuditError::Checkpoint { error, .. } => error.code(),
            AuditError::CheckpointRepeated(_) => "checkpoint_repeated",
            AuditError::CosignatureInvalid(_) => "cosignature_invalid",
            AuditError::NoCheckpoint(_) => "no_checkpoint",
            AuditError::NotCovered { .. } => "not_covered",
            AuditError::InclusionInvalid(_) => "inclusion_invalid",
            AuditError::WitnessesTooFew { .. } => "witnesses_too_few",
        }
    }
}

/// A feed's checkpoint whose publisher signature verified, with who cosigned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// Each organization other than the publisher with a certified witness whose cosignature
    /// verified, with its earliest cosignature time (POSIX seconds).
    pub witnesses: BTreeMap<OrgId, u64>,
}

/// Verifies the bundle's charter files as a chain from `genesis`.
pub fn open_chain(genesis: &CharterHash, files: &[Vec<u8>]) -> Result<VerifiedChain, AuditError> {
    let charters = files
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            crate::charter::decode(bytes).map_err(|e| AuditError::CharterFile { index, reason: e.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    verify_chain(genesis, &charters).map_err(|e| AuditError::Chain(format!("{e} ({})", e.code())))
}

/// The organization whose feed `origin` names on `network_id`.
fn origin_org(network_id: &[u8; 32], origin: &str) -> Option<OrgId> {
    let (net, org) = origin.strip_prefix("entrepot/")?.split_once('/')?;
    (net == hex::encode(network_id)).then(|| OrgId::new(org).ok()).flatten()
}

/// Opens every checkpoint of the bundle: the publisher's signature by a key `keyring` allows
/// at that size, then each cosignature line of a witness whose certificate (carried beside the
/// checkpoint) the charter accepts. Lines of witnesses not certified are ignored, as unknown
/// keys are in a signed note; a certified witness's line that fails refuses the checkpoint.
pub fn open_checkpoints(
    network_id: &[u8; 32],
    keyring: &Keyring,
    checkpoints: &[TrustCheckpoint],
) -> Result<BTreeMap<OrgId, FeedCheckpoint>, AuditError> {
    let mut feeds = BTreeMap::new();
    for cp in checkpoints {
        let origin = String::from_utf8_lossy(&cp.note).split('\n').next().unwrap_or_default().to_owned();
        let org = origin_org(network_id, &origin).ok_or_else(|| AuditError::CheckpointOrigin(origin.clone()))?;
        let signed = signed::open(&cp.note, &origin, |size| keyring.checkpoint_keys(&org, size))
            .map_err(|error| AuditError::Checkpoint { org: org.clone(), error })?;
        let mut witnesses = BTreeMap::new();
        if let Some(chain) = keyring.charter() {
            for (name, witness_org, key) in certified_witnesses(chain, network_id, &cp.certificates) {
                for sig in signed.note.signatures.iter().filter(|s| s.name == name) {
                    if sig.key_id != key_id(&name, SIG_TYPE_COSIGNATURE_V1, key.as_bytes()) {
                        continue;
                    }
                    let at = verify_cosignature(sig, &key, &signed.note.text)
                        .ok_or_else(|| AuditError::CosignatureInvalid(name.clone()))?;
                    if witness_org != org {
                        let earliest = witnesses.entry(witness_org.clone()).or_insert(at);
                        *earliest = (*earliest).min(at);
                    }
                }
            }
        }
        let (size, root) = (signed.checkpoint.size, signed.checkpoint.root);
        if feeds.insert(org.clone(), FeedCheckpoint { size, root, witnesses }).is_some() {
            return Err(AuditError::CheckpointRepeated(org));
        }
    }
    Ok(feeds)
}

/// The witnesses of `certificates` the charter accepts: key name, organization, key.
fn certified_witnesses(
    chain: &VerifiedChain,
    network_id: &[u8; 32],
    certificates: &[Vec<u8>],
) -> Vec<(String, OrgId, VerifyingKey)> {
    let mut out: Vec<(String, OrgId, VerifyingKey)> = Vec::new();
    for bytes in certificates {
        let Ok(cert) = decode_cert(bytes) else { continue };
        if cert.verify(chain, network_id, &cert.peer_id).is_err() {
            continue;
        }
        let Some(key) = peer_key(&cert.peer_id).and_then(|k| VerifyingKey::from_bytes(&k).ok()) else { continue };
        let name = witness_name(&cert.organization, &cert.peer_id);
        if !out.iter().any(|(n, _, _)| *n == name) {
            out.push((name, cert.organization, key));
        }
    }
    out
}

/// Proves that document `id` is entry `seq` of `publisher`'s feed under the bundle's
/// checkpoint of that feed, and returns the checkpoint.
pub fn prove_inclusion<'a>(
    feeds: &'a BTreeMap<OrgId, FeedCheckpoint>,
    id: &DocumentId,
    publisher: &OrgId,
    seq: Seq,
    proof: &[Hash],
) -> Result<&'a FeedCheckpoint, AuditError> {
    let cp = feeds.get(publisher).ok_or_else(|| AuditError::NoCheckpoint(publisher.clone()))?;
    if seq.0 == 0 || seq.0 > cp.size {
        return Err(AuditError::NotCovered { seq: seq.0, size: cp.size });
    }
    merkle::verify_inclusion(seq.0 - 1, cp.size, &merkle::leaf_hash(&id.0), proof, &cp.root)
        .map_err(AuditError::InclusionInvalid)?;
    Ok(cp)
}

/// The witness policy: at least `need` organizations other than the publisher cosigned.
pub fn enough_witnesses(cp: &FeedCheckpoint, need: usize) -> Result<(), AuditError> {
    if cp.witnesses.len() < need {
        return Err(AuditError::WitnessesTooFew { have: cp.witnesses.len(), need });
    }
    Ok(())
}
