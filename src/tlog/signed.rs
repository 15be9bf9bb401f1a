//! Signed checkpoints as nodes exchange them (docs/PROTOCOL.md §13.3–13.6): opening one
//! against the publisher's keys, and checkpoint-fork evidence, two signed checkpoints of one
//! feed that no single history contains, with the proof that shows it.

use ed25519_dalek::VerifyingKey;

use super::checkpoint::{Checkpoint, CheckpointError};
use super::merkle::{self, Hash, PROOF_HASHES_MAX};
use super::note::{self, Note, NoteError, NoteSignature};

/// The first eight bytes of checkpoint-fork evidence.
pub const EVIDENCE_MAGIC: &[u8; 8] = b"ENTRPCKF";
const EVIDENCE_VERSION: u8 = 1;

/// A checkpoint whose publisher signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The whole note as received (other signatures, e.g. cosignatures, included).
    pub note: Note,
    /// The publisher's signature line.
    pub signature: NoteSignature,
}

impl SignedCheckpoint {
    /// The note with only the publisher's signature: what a node stores as the checkpoint.
    pub fn publisher_note(&self) -> String {
        Note { text: self.note.text.clone(), signatures: vec![self.signature.clone()] }.encode()
    }
}

/// Why a signed checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("checkpoint origin {found:?} is not the feed's origin {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("the publisher's checkpoint signature does not verify")]
    BadSignature,
    #[error("checkpoint carries no signature by a key the publisher may sign it with")]
    NotSigned,
}

impl OpenError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::Note(e) => e.code(),
            OpenError::Checkpoint(e) => e.code(),
            OpenError::WrongOrigin { .. } => "checkpoint_wrong_origin",
            OpenError::BadSignature => "checkpoint_bad_signature",
            OpenError::NotSigned => "checkpoint_not_signed",
        }
    }
}

/// Opens a signed checkpoint of the feed `origin`: a strict note whose text is a checkpoint of
/// that origin, signed under the origin by one of `keys_for_size(size)`. A signature that
/// names a candidate key and fails refuses the whole note (C2SP `signed-note`).
pub fn open(
    bytes: &[u8],
    origin: &str,
    keys_for_size: impl Fn(u64) -> Vec<[u8; 32]>,
) -> Result<SignedCheckpoint, OpenError> {
    open_held(bytes, origin, keys_for_size, |_| None)
}

/// As [`open`], for a node that may already hold a checkpoint of that size: `held(size)` is the
/// publisher note it stored (the text and one publisher signature, as
/// [`SignedCheckpoint::publisher_note`] encodes it), which was verified before it was stored.
/// A signature line that, with this text, makes exactly that note is not verified again: the
/// same bytes verify the same way. Peers send a node the checkpoints it holds over and over
/// (every new connection asks for every feed's, §8.2), and verifying them again was a third
/// of an idle 300-node harness's CPU with 200 feeds.
pub fn open_held(
    bytes: &[u8],
    origin: &str,
    keys_for_size: impl Fn(u64) -> Vec<[u8; 32]>,
    held: impl Fn(u64) -> Option<Vec<u8>>,
) -> Result<SignedCheckpoint, OpenError> {
    let note = note::parse(bytes)?;
    let checkpoint = Checkpoint::parse(&note.text)?;
    if checkpoint.origin != origin {
        return Err(OpenError::WrongOrigin { expected: origin.to_owned(), found: checkpoint.origin });
    }
    // Key ids first: a key is decompressed (a third of a verification's cost) only to verify.
    let keys: Vec<([u8; 4], [u8; 32])> = keys_for_size(checkpoint.size)
        .into_iter()
        .map(|k| (note::key_id(origin, note::SIG_TYPE_ED25519, &k), k))
        .collect();
    let held = held(checkpoint.size);
    // The held note's bytes are the text, a blank line and the one signature line.
    let verified_before = |sig: &NoteSignature| {
        held.as_deref().is_some_and(|h| {
            h.strip_prefix(note.text.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"\n"))
                .is_some_and(|line| line == sig.line().as_bytes())
        })
    };
    let mut verified = None;
    for sig in note.signatures.iter().filter(|s| s.name == origin) {
        for (key_id, key) in &keys {
            if sig.key_id != *key_id {
                continue;
            }
            if !verified_before(sig) {
                let Ok(key) = VerifyingKey::from_bytes(key) else { continue };
                if !checkpoint.verify(sig, &key) {
                    return Err(OpenError::BadSignature);
                }
            }
            verified.get_or_insert_with(|| sig.clone());
        }
    }
    let signature = verified.ok_or(OpenError::NotSigned)?;
    Ok(SignedCheckpoint { checkpoint, note, signature })
}

/// Why bytes are not checkpoint-fork evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("checkpoint-fork evidence is malformed: {0}")]
    Malformed(&'static str),
    #[error("a checkpoint of the evidence is refused: {0}")]
    Checkpoint(#[from] OpenError),
    #[error("the two checkpoints are consistent: the evidence proves no fork")]
    Consistent,
}

impl EvidenceError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceError::Malformed(_) => "evidence_malformed",
            EvidenceError::Checkpoint(e) => e.code(),
            EvidenceError::Consistent => "evidence_consistent",
        }
    }
}

/// Checkpoint-fork evidence: checkpoint `a` (size m), checkpoint `b` (size n ≥ m), the root
/// of `b`'s history at size m and the consistency proof from it to `b`'s root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkEvidence {
    pub a: Vec<u8>,
    pub b: Vec<u8>,
    pub root_at_a: Hash,
    pub proof: Vec<Hash>,
}

impl ForkEvidence {
    /// The byte layout (docs/PROTOCOL.md §13.6).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.a.len() + self.b.len() + 32 * self.proof.len());
        out.extend_from_slice(EVIDENCE_MAGIC);
        out.push(EVIDENCE_VERSION);
        for note in [&self.a, &self.b] {
            out.extend_from_slice(&(note.len() as u32).to_be_bytes());
            out.extend_from_slice(note);
        }
        out.extend_from_slice(&self.root_at_a);
        out.push(self.proof.len() as u8);
        for h in &self.proof {
            out.extend_from_slice(h);
        }
        out
    }

    /// Decodes the layout strictly (bounded before allocating, nothing after the proof).
    pub fn decode(bytes: &[u8]) -> Result<ForkEvidence, EvidenceError> {
        let mut r = bytes;
        let mut take = |n: usize, what: &'static str| -> Result<&[u8], EvidenceError> {
            let (head, tail) = r.split_at_checked(n).ok_or(EvidenceError::Malformed(what))?;
            r = tail;
            Ok(head)
        };
        if take(8, "magic")? != EVIDENCE_MAGIC || take(1, "version")? != [EVIDENCE_VERSION] {
            return Err(EvidenceError::Malformed("magic or version"));
        }
        let mut notes = Vec::new();
        for _ in 0..2 {
            let len = u32::from_be_bytes(take(4, "note length")?.try_into().expect("4 bytes")) as usize;
            if len > note::NOTE_MAX_BYTES {
                return Err(EvidenceError::Malformed("note over its bound"));
            }
            notes.push(take(len, "note")?.to_vec());
        }
        let root_at_a: Hash = take(32, "root")?.try_into().expect("32 bytes");
        let count = take(1, "proof length")?[0] as usize;
        if count > PROOF_HASHES_MAX {
            return Err(EvidenceError::Malformed("proof over its bound"));
        }
        let proof =
            (0..count).map(|_| take(32, "proof").map(|h| h.try_into().expect("32 bytes"))).collect::<Result<_, _>>()?;
        if !r.is_empty() {
            return Err(EvidenceError::Malformed("trailing bytes"));
        }
        let b = notes.pop().expect("two notes");
        let a = notes.pop().expect("two notes");
        Ok(ForkEvidence { a, b, root_at_a, proof })
    }

    /// Checks the evidence: both checkpoints open for `origin`, `a` is no larger than `b`, the
    /// proof leads from `root_at_a` to `b`'s root, and `root_at_a` is not `a`'s root. Returns
    /// the two sizes.
    pub fn verify(
        &self,
        origin: &str,
        keys_for_size: impl Fn(u64) -> Vec<[u8; 32]>,
    ) -> Result<(u64, u64), EvidenceError> {
        let a = open(&self.a, origin, &keys_for_size)?.checkpoint;
        let b = open(&self.b, origin, &keys_for_size)?.checkpoint;
        if a.size > b.size {
            return Err(EvidenceError::Malformed("checkpoint a is larger than b"));
        }
        merkle::verify_consistency(a.size, b.size, &self.proof, &self.root_at_a, &b.root)
            .map_err(|_| EvidenceError::Malformed("the proof does not lead to b's root"))?;
        if self.root_at_a == a.root {
            return Err(EvidenceError::Consistent);
        }
        Ok((a.size, b.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::MemoryTree;
    use ed25519_dalek::SigningKey;

    const ORIGIN: &str = "entrepot/00/WCO";

    fn signed(tree: &MemoryTree, size: u64, key: &SigningKey) -> Vec<u8> {
        let cp = Checkpoint { origin: ORIGIN.into(), size, root: merkle::root(tree, size).unwrap() };
        Note { text: cp.text(), signatures: vec![cp.sign(key)] }.encode().into_bytes()
    }

    fn trees() -> (MemoryTree, MemoryTree) {
        let (mut a, mut b) = (MemoryTree::default(), MemoryTree::default());
        for i in 0..10u32 {
            a.push(&i.to_be_bytes());
            b.push(&(if i < 4 { i } else { i + 100 }).to_be_bytes());
        }
        (a, b)
    }

    #[test]
    fn a_checkpoint_opens_only_with_the_publishers_key_and_origin() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let (tree, _) = trees();
        let bytes = signed(&tree, 5, &key);
        let keys = |_| vec![key.verifying_key().to_bytes()];
        assert_eq!(open(&bytes, ORIGIN, keys).unwrap().checkpoint.size, 5);
        assert_eq!(open(&bytes, ORIGIN, |_| vec![other.verifying_key().to_bytes()]).unwrap_err(), OpenError::NotSigned);
        assert!(matches!(open(&bytes, "entrepot/00/FR", keys), Err(OpenError::WrongOrigin { .. })));
        let tampered = String::from_utf8(bytes.clone()).unwrap().replace("\n5\n", "\n6\n");
        assert_eq!(open(tampered.as_bytes(), ORIGIN, keys).unwrap_err(), OpenError::BadSignature);
    }

    #[test]
    fn a_checkpoint_held_byte_for_byte_is_not_verified_again_and_anything_else_is() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (tree, _) = trees();
        let bytes = signed(&tree, 5, &key);
        let keys = |_| vec![key.verifying_key().to_bytes()];
        let held = |note: &[u8]| {
            let note = note.to_vec();
            move |size| (size == 5).then(|| note.clone())
        };
        // The note held, taken again: the same answer as a full check.
        assert_eq!(open_held(&bytes, ORIGIN, keys, held(&bytes)), open(&bytes, ORIGIN, keys));
        // What the node holds is what it verified before storing it: a held note is trusted
        // as it is, which is what spares the signature check (shown with a signature that
        // would not verify).
        let mut forged = note::parse(&bytes).unwrap();
        forged.signatures[0].data[0] ^= 1;
        let forged = forged.encode().into_bytes();
        assert_eq!(open(&forged, ORIGIN, keys).unwrap_err(), OpenError::BadSignature);
        assert_eq!(open_held(&forged, ORIGIN, keys, held(&forged)).unwrap().checkpoint.size, 5);
        // Anything but the held bytes is verified: another signature on the held text, another
        // text under the held signature, a size the node holds nothing of.
        assert_eq!(open_held(&forged, ORIGIN, keys, held(&bytes)).unwrap_err(), OpenError::BadSignature);
        let tampered = String::from_utf8(bytes.clone()).unwrap().replace("\n5\n", "\n6\n");
        assert_eq!(
            open_held(tampered.as_bytes(), ORIGIN, keys, |_| Some(bytes.clone())).unwrap_err(),
            OpenError::BadSignature
        );
        assert_eq!(open_held(&forged, ORIGIN, keys, |_| None).unwrap_err(), OpenError::BadSignature);
        // The key is still the keyring's to give: a held note under a key no longer given is
        // not signed.
        let other = SigningKey::from_bytes(&[2; 32]);
        let others = |_| vec![other.verifying_key().to_bytes()];
        assert_eq!(open_held(&bytes, ORIGIN, others, held(&bytes)).unwrap_err(), OpenError::NotSigned);
    }

    #[test]
    fn evidence_of_a_split_view_verifies_and_consistent_checkpoints_prove_nothing() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let keys = |_| vec![key.verifying_key().to_bytes()];
        let (honest, other) = trees();
        // Same size, different roots; and a smaller one against a larger one.
        for (m, n) in [(7, 7), (6, 9), (5, 10)] {
            let ev = ForkEvidence {
                a: signed(&other, m, &key),
                b: signed(&honest, n, &key),
                root_at_a: merkle::root(&honest, m).unwrap(),
                proof: merkle::consistency_proof(&honest, m, n).unwrap().unwrap(),
            };
            let decoded = ForkEvidence::decode(&ev.encode()).unwrap();
            assert_eq!(decoded, ev);
            assert_eq!(decoded.verify(ORIGIN, keys), Ok((m, n)));
        }
        // Checkpoints of one history are no fork.
        let ev = ForkEvidence {
            a: signed(&honest, 6, &key),
            b: signed(&honest, 9, &key),
            root_at_a: merkle::root(&honest, 6).unwrap(),
            proof: merkle::consistency_proof(&honest, 6, 9).unwrap().unwrap(),
        };
        assert_eq!(ev.verify(ORIGIN, keys), Err(EvidenceError::Consistent));
        // A forged root for a's size does not lead to b's root.
        let forged = ForkEvidence { root_at_a: [9; 32], ..ev.clone() };
        assert!(matches!(forged.verify(ORIGIN, keys), Err(EvidenceError::Malformed(_))));
        let mut bytes = ev.encode();
        bytes.push(0);
        assert!(matches!(ForkEvidence::decode(&bytes), Err(EvidenceError::Malformed("trailing bytes"))));
        assert!(ForkEvidence::decode(&bytes[..20]).is_err());
    }
}
