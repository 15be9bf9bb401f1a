//! Every node a witness (docs/PROTOCOL.md §13.4–13.6): checkpoints received from peers are
//! checked against the tree this node holds and stored, their cosignatures verified and kept,
//! and the node cosigns a feed's checkpoint once it holds every entry under it, at most once
//! per feed per [`COSIGN_INTERVAL_S`]. A cosignature is a receipt: the node of organization O
//! (by its certificate) held the feed up to that size at that time.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::Serialize;

use super::Service;
use crate::charter::{decode_cert, NodeCert};
use crate::document::{DocumentId, OrgId, Seq};
use crate::store::keys::{CosignatureValue, WitnessedValue};
use crate::store::{StoreError, RECEIPT_SCAN_MAX};
use crate::tlog::checkpoint::{cosign, origin, verify_cosignature, witness_name, Checkpoint};
use crate::tlog::note::{Note, NoteSignature};
use crate::tlog::signed::{self, ForkEvidence, OpenError};

/// A node cosigns each feed at most once per this many seconds.
pub const COSIGN_INTERVAL_S: u64 = 30;
/// Cosignatures a served checkpoint carries at most (with the publisher's, 64 note lines).
pub const COSIGNATURES_SERVED_MAX: usize = 63;
/// How far in the future a cosignature's timestamp may be and still be accepted.
pub const COSIGNATURE_CLOCK_SKEW_S: u64 = 600;

/// This node as a witness: its libp2p identity key and the certificate that ties it to its
/// organization.
pub struct Witness {
    key: SigningKey,
    pub cert: NodeCert,
    pub name: String,
}

impl Witness {
    /// The witness of a node whose identity key `key` is the one its certificate certifies.
    pub fn new(key: SigningKey, cert: NodeCert) -> Option<Witness> {
        (peer_key(&cert.peer_id) == Some(key.verifying_key().to_bytes())).then(|| Witness {
            name: witness_name(&cert.organization, &cert.peer_id),
            key,
            cert,
        })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

/// The Ed25519 key a libp2p peer id embeds (an identity multihash of the protobuf-encoded key:
/// bytes `00 24 08 01 12 20` then the 32-byte key), or `None` for any other peer id.
pub fn peer_key(peer_id: &str) -> Option<[u8; 32]> {
    let id: libp2p::PeerId = peer_id.parse().ok()?;
    let bytes = id.to_bytes();
    let key: [u8; 32] = bytes.strip_prefix(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20])?.try_into().ok()?;
    let public = libp2p::identity::ed25519::PublicKey::try_from_bytes(&key).ok()?;
    (libp2p::identity::PublicKey::from(public).to_peer_id() == id).then_some(key)
}

/// A checkpoint note with the cosignatures held of it, and its witnesses' certificates.
pub type CosignedCheckpoint = (String, Vec<Vec<u8>>);

/// What taking a checkpoint from a peer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckpointTaken {
    /// The checkpoint was new here and is stored.
    pub stored: bool,
    /// Cosignatures new here that verified and are stored (a line held already is skipped).
    pub cosignatures: usize,
    /// This node cosigned it.
    pub cosigned: bool,
    /// Larger than the feed held here: kept for later (the next pull offers it again).
    pub ahead: bool,
    /// It contradicts the feed held here: a checkpoint fork was recorded and the feed frozen.
    pub forked: bool,
}

/// Why a checkpoint from a peer is refused (the peer is at fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointRefused {
    #[error("checkpoint names no feed of this network: {0}")]
    Origin(String),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("a cosignature by a certified witness does not verify")]
    BadCosignature,
}

impl CheckpointRefused {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            CheckpointRefused::Origin(_) => "checkpoint_unknown_origin",
            CheckpointRefused::Open(e) => e.code(),
            CheckpointRefused::BadCosignature => "checkpoint_bad_cosignature",
        }
    }
}

/// One receipt of a document: a witness that cosigned a checkpoint covering it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub organization: OrgId,
    pub peer_id: String,
    /// The witness's key name in the cosignature line.
    pub witness: String,
    /// The smallest cosigned checkpoint covering the document.
    pub checkpoint_size: u64,
    /// When the witness cosigned it (POSIX seconds).
    pub timestamp_s: u64,
}

impl Service {
    /// The origin line of `org`'s feed on this network.
    pub fn origin(&self, org: &OrgId) -> String {
        origin(&self.network_id, org)
    }

    /// The organization whose feed `origin` names on this network.
    fn origin_org(&self, origin_line: &str) -> Option<OrgId> {
        let rest = origin_line.strip_prefix("entrepot/")?;
        let (net, org) = rest.split_once('/')?;
        (net == hex::encode(self.network_id)).then(|| OrgId::new(org).ok()).flatten()
    }

    /// The witness certificate `bytes` when the charter in force accepts it (for its own peer
    /// id); none off a charter network.
    fn accepted_witness_cert(&self, bytes: &[u8]) -> Option<NodeCert> {
        let keyring = self.keyring();
        let chain = keyring.charter()?;
        let cert = decode_cert(bytes).ok()?;
        cert.verify(chain, &self.network_id, &cert.peer_id).ok()?;
        Some(cert)
    }

    /// Takes a signed checkpoint note from a peer, with the certificates of the witnesses
    /// whose cosignatures it carries, at `now_s`.
    pub fn take_checkpoint(&self, bytes: &[u8], certs: &[Vec<u8>], now_s: u64) -> Result<CheckpointTaken, TakeError> {
        let note = crate::tlog::note::parse(bytes).map_err(|e| TakeError::Refused(OpenError::Note(e).into()))?;
        let origin_line = note.text.split('\n').next().unwrap_or_default().to_owned();
        let org = self
            .origin_org(&origin_line)
            .ok_or_else(|| TakeError::Refused(CheckpointRefused::Origin(origin_line.clone())))?;
        let keyring = self.keyring();
        let held_note = |size| self.store.tree_checkpoint(&org, size).ok().flatten();
        let signed = signed::open_held(bytes, &origin_line, |size| keyring.checkpoint_keys(&org, size), held_note)
            .map_err(|e| TakeError::Refused(e.into()))?;
        let cp = &signed.checkpoint;
        let mut taken = CheckpointTaken::default();
        let held = self.store.head(&org)?.map_or(0, |h| h.seq.0);
        if cp.size == 0 || cp.size > held {
            taken.ahead = cp.size > held;
            return Ok(taken);
        }
        let local_root = self.store.tree_root(&org, cp.size)?;
        if local_root != cp.root {
            taken.forked = self.record_split_view(&org, &signed.publisher_note(), cp.size, local_root)?;
            return Ok(taken);
        }
        if self.store.tree_checkpoint(&org, cp.size)?.is_none() {
            taken.stored = self.store.put_checkpoint(&org, cp.size, signed.publisher_note().as_bytes())?;
        }
        // A line byte for byte one held of this checkpoint was verified when it was stored: it
        // is neither verified nor written again. Every peer's answer repeats the cosignatures
        // it holds (up to 63), each a certificate check, a signature check and a synced write.
        let held_lines = self.cosignature_lines(&org, cp.size, COSIGNATURES_SERVED_MAX + 1)?;
        for sig in signed.note.signatures.iter().filter(|s| s.name != origin_line) {
            if held_lines.iter().any(|(line, _)| line == sig) {
                continue;
            }
            match self.check_cosignature(sig, certs, &note.text, now_s) {
                Some(Ok((key, value))) => {
                    self.store.put_cosignature(&org, cp.size, &key, &value)?;
                    taken.cosignatures += 1;
                }
                Some(Err(e)) => return Err(TakeError::Refused(e)),
                None => {}
            }
        }
        taken.cosigned = self.cosign_if_due(&org, cp, now_s)?;
        Ok(taken)
    }

    /// The cosignatures held of `org`'s checkpoint of `size` entries (at most `max`) as note
    /// lines, each with its witness's certificate.
    fn cosignature_lines(
        &self,
        org: &OrgId,
        size: u64,
        max: usize,
    ) -> Result<Vec<(NoteSignature, Vec<u8>)>, StoreError> {
        let mut lines = Vec::new();
        for (_, value) in self.store.cosignatures(org, size, max)? {
            let Ok(cert) = decode_cert(&value.cert) else { continue };
            let name = witness_name(&cert.organization, &cert.peer_id);
            let Some(key) = peer_key(&cert.peer_id) else { continue };
            let mut data = value.timestamp_s.to_be_bytes().to_vec();
            data.extend_from_slice(&value.signature);
            let key_id = crate::tlog::note::key_id(&name, crate::tlog::note::SIG_TYPE_COSIGNATURE_V1, &key);
            lines.push((NoteSignature { name, key_id, data }, value.cert));
        }
        Ok(lines)
    }

    /// A cosignature line checked against the certificate of the witness it names: `None`
    /// when no accepted certificate names it (ignored, as C2SP asks of unknown keys).
    fn check_cosignature(
        &self,
        sig: &NoteSignature,
        certs: &[Vec<u8>],
        text: &str,
        now_s: u64,
    ) -> Option<Result<([u8; 32], CosignatureValue), CheckpointRefused>> {
        let (bytes, cert) = certs.iter().find_map(|c| {
            let cert = decode_cert(c).ok()?;
            (witness_name(&cert.organization, &cert.peer_id) == sig.name).then_some((c, cert))
        })?;
        self.accepted_witness_cert(bytes)?;
        let key = peer_key(&cert.peer_id)?;
        let vk = VerifyingKey::from_bytes(&key).ok()?;
        let Some(timestamp_s) = verify_cosignature(sig, &vk, text) else {
            return Some(Err(CheckpointRefused::BadCosignature));
        };
        if timestamp_s > now_s + COSIGNATURE_CLOCK_SKEW_S {
            return Some(Err(CheckpointRefused::BadCosignature));
        }
        let signature: [u8; 64] = sig.data[8..].try_into().ok()?;
        Some(Ok((key, CosignatureValue { cert: bytes.clone(), timestamp_s, signature })))
    }

    /// Records a checkpoint of `org` that contradicts the feed held here, as portable
    /// evidence against the smallest checkpoint held that covers it. Without such a
    /// checkpoint there is nothing signed to hold it against: logged, nothing recorded.
    fn record_split_view(&self, org: &OrgId, note: &str, size: u64, local_root: [u8; 32]) -> Result<bool, StoreError> {
        let Some((size_b, b)) = self.store.checkpoint_at_or_above(org, size)? else {
            tracing::warn!(publisher = %org, size, "a peer's checkpoint contradicts the feed held here, but no signed checkpoint here covers it");
            return Ok(false);
        };
        let proof = self
            .store
            .consistency_proof(org, size, size_b)?
            .map_err(|_| StoreError::Corrupt { path: self.store.path().to_owned(), what: "checkpoint sizes" })?;
        let evidence = ForkEvidence { a: note.as_bytes().to_vec(), b, root_at_a: local_root, proof };
        self.store.record_checkpoint_fork(org, size, size_b, &evidence.encode())?;
        self.counters.forks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    /// Records checkpoint-fork evidence from elsewhere (a peer, the API) once it verifies.
    pub fn take_checkpoint_fork(&self, bytes: &[u8]) -> Result<bool, TakeError> {
        let evidence = ForkEvidence::decode(bytes).map_err(|e| TakeError::Evidence(e.code()))?;
        let a = crate::tlog::note::parse(&evidence.a).map_err(|e| TakeError::Evidence(e.code()))?;
        let origin_line = a.text.split('\n').next().unwrap_or_default().to_owned();
        let org = self.origin_org(&origin_line).ok_or(TakeError::Evidence("checkpoint_unknown_origin"))?;
        let keyring = self.keyring();
        let (size_a, size_b) = evidence
            .verify(&origin_line, |size| keyring.checkpoint_keys(&org, size))
            .map_err(|e| TakeError::Evidence(e.code()))?;
        Ok(self.store.record_checkpoint_fork(&org, size_a, size_b, bytes)?)
    }

    /// Cosigns `cp` of `org` (a checkpoint this node checked against the entries it holds)
    /// when it is larger than what this node last cosigned of the feed, that is consistent
    /// with it, and the interval since has passed.
    pub fn cosign_if_due(&self, org: &OrgId, cp: &Checkpoint, now_s: u64) -> Result<bool, StoreError> {
        let Some(witness) = self.witness() else { return Ok(false) };
        if let Some(last) = self.store.witnessed(org)? {
            if last.size >= cp.size || now_s < last.timestamp_s.saturating_add(COSIGN_INTERVAL_S) {
                return Ok(false);
            }
            // The tree held now must still contain what was cosigned (a truncation clears the
            // record, so this holds unless the store is damaged).
            if self.store.tree_root(org, last.size)? != last.root {
                tracing::error!(publisher = %org, size = last.size, "the feed no longer contains the tree this node cosigned; not cosigning");
                return Ok(false);
            }
        }
        if self.store.tree_checkpoint(org, cp.size)?.is_none() || self.store.tree_root(org, cp.size)? != cp.root {
            return Ok(false);
        }
        let sig = cosign(&witness.name, &witness.key, &cp.text(), now_s);
        let signature: [u8; 64] = sig.data[8..].try_into().expect("a cosignature holds 64 signature bytes");
        let value = CosignatureValue { cert: witness.cert.bytes.clone(), timestamp_s: now_s, signature };
        let record = WitnessedValue { size: cp.size, root: cp.root, timestamp_s: now_s };
        self.store.put_own_cosignature(org, &witness.public_key(), &value, &record)
    }

    /// Cosigns this node's own feed's checkpoint at its head, if due (after a publish).
    pub fn cosign_own_feed(&self, now_s: u64) -> Result<bool, StoreError> {
        let Some(publisher) = &self.publisher else { return Ok(false) };
        let Some((size, note)) = self.store.latest_checkpoint(&publisher.org)? else { return Ok(false) };
        let Ok(note) = crate::tlog::note::parse(&note) else { return Ok(false) };
        let Ok(cp) = Checkpoint::parse(&note.text) else { return Ok(false) };
        debug_assert_eq!(cp.size, size);
        self.cosign_if_due(&publisher.org, &cp, now_s)
    }

    /// `org`'s checkpoint (the latest, or of `size`) with the cosignatures held of it, as one
    /// signed note, and the certificates of its witnesses.
    pub fn cosigned_checkpoint(
        &self,
        org: &OrgId,
        size: Option<u64>,
    ) -> Result<Option<CosignedCheckpoint>, StoreError> {
        let found = match size {
            Some(s) => self.store.tree_checkpoint(org, s)?.map(|n| (s, n)),
            None => self.store.latest_checkpoint(org)?,
        };
        let Some((size, bytes)) = found else { return Ok(None) };
        let mut note: Note = crate::tlog::note::parse(&bytes)
            .map_err(|_| StoreError::Corrupt { path: self.store.path().to_owned(), what: "checkpoint note" })?;
        let mut certs = Vec::new();
        for (line, cert) in self.cosignature_lines(org, size, COSIGNATURES_SERVED_MAX)? {
            note.signatures.push(line);
            certs.push(cert);
        }
        Ok(Some((note.encode(), certs)))
    }

    /// The receipts of a held document: each witness (accepted by the charter in force) that
    /// cosigned a checkpoint of its feed covering it, with its earliest such cosignature.
    /// Reads at most [`RECEIPT_SCAN_MAX`] cosignatures.
    pub fn receipts(&self, id: &DocumentId) -> Result<Option<Vec<Receipt>>, StoreError> {
        let Some(doc) = self.document(id)? else { return Ok(None) };
        let (org, seq) = (&doc.header.publisher, doc.header.seq);
        if self.store.feed_entry(org, seq)? != Some(*id) {
            return Ok(Some(Vec::new()));
        }
        let mut by_witness: std::collections::BTreeMap<[u8; 32], Receipt> = std::collections::BTreeMap::new();
        for (size, key, value) in self.store.cosignatures_from(org, seq.0, RECEIPT_SCAN_MAX)? {
            if by_witness.get(&key).is_some_and(|r| r.timestamp_s <= value.timestamp_s) {
                continue;
            }
            let Some(cert) = self.accepted_witness_cert(&value.cert) else { continue };
            let witness = witness_name(&cert.organization, &cert.peer_id);
            by_witness.insert(
                key,
                Receipt {
                    organization: cert.organization,
                    peer_id: cert.peer_id,
                    witness,
                    checkpoint_size: size,
                    timestamp_s: value.timestamp_s,
                },
            );
        }
        let mut out: Vec<Receipt> = by_witness.into_values().collect();
        out.sort_by(|a, b| (a.timestamp_s, &a.organization).cmp(&(b.timestamp_s, &b.organization)));
        Ok(Some(out))
    }

    /// The position `seq` as a leaf index.
    pub fn leaf_index(seq: Seq) -> u64 {
        seq.0 - 1
    }
}

/// Why taking a checkpoint or evidence failed.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    #[error("checkpoint refused: {0}")]
    Refused(CheckpointRefused),
    #[error("checkpoint-fork evidence refused: {0}")]
    Evidence(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_id_gives_back_the_key_it_was_made_from() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let public = libp2p::identity::ed25519::PublicKey::try_from_bytes(key.verifying_key().as_bytes()).unwrap();
        let peer = libp2p::identity::PublicKey::from(public).to_peer_id().to_base58();
        assert_eq!(peer_key(&peer), Some(key.verifying_key().to_bytes()));
        assert_eq!(peer_key("not a peer id"), None);
        assert_eq!(peer_key(&libp2p::PeerId::random().to_base58()), None);
    }
}
