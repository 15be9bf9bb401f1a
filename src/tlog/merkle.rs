//! RFC 6962 Merkle trees (docs/PROTOCOL.md §13.1): hashing, roots, inclusion and consistency
//! proofs over a tree whose complete subtrees are read one by one, and their verification.
//!
//! The tree is never held whole. Every complete subtree is a [`NodeId`] (a level and an index
//! within it); whoever stores a tree stores those nodes, and every function here reads
//! O(log n) of them through a [`NodeReader`]. Verification needs no reader at all.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf, a node or a root.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Levels a tree of `u64` leaves can have above its leaves.
pub const LEVELS_MAX: u8 = 64;
/// Hashes in a proof between trees of at most 2^64 leaves (inclusion ≤ 64, consistency ≤ 65).
pub const PROOF_HASHES_MAX: usize = 66;

/// RFC 6962 leaf hash: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// RFC 6962 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A complete subtree: the `index`-th run of 2^`level` leaves, covering leaves
/// `[index · 2^level, (index + 1) · 2^level)`. Level 0 holds the leaf hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    /// The first leaf past this subtree, or `None` past `u64`.
    pub fn end(&self) -> Option<u64> {
        self.index.checked_add(1)?.checked_mul(1u64.checked_shl(self.level as u32)?)
    }
}

/// Where a tree's complete subtrees are read from (a store, or memory in tests).
pub trait NodeReader {
    type Error;
    /// The hash of a complete subtree of the tree; the caller asks only for nodes of the
    /// tree size it works on, so a missing node is the reader's error (a corrupt store).
    fn node(&self, id: NodeId) -> Result<Hash, Self::Error>;
}

/// The nodes that appending leaf number `index` (0-based: the tree held `index` leaves) to a
/// tree completes, lowest first: the leaf itself and each subtree it closes. Reads the left
/// siblings it combines with, at most one per level.
pub fn append<R: NodeReader>(reader: &R, index: u64, leaf: Hash) -> Result<Vec<(NodeId, Hash)>, R::Error> {
    let mut out = vec![(NodeId { level: 0, index }, leaf)];
    let (mut level, mut i, mut hash) = (0u8, index, leaf);
    while i & 1 == 1 {
        let left = reader.node(NodeId { level, index: i - 1 })?;
        hash = node_hash(&left, &hash);
        level += 1;
        i >>= 1;
        out.push((NodeId { level, index: i }, hash));
    }
    Ok(out)
}

/// The largest power of two smaller than `n` (n ≥ 2): RFC 6962's split point.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start:end]) for a range RFC 6962's recursion reaches: `start` is a multiple of the
/// largest power of two not above `end - start`, so every power-of-two piece is one node.
fn range_hash<R: NodeReader>(reader: &R, start: u64, end: u64) -> Result<Hash, R::Error> {
    let n = end - start;
    if n == 0 {
        return Ok(EMPTY_ROOT);
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return reader.node(NodeId { level: n.trailing_zeros() as u8, index: start >> n.trailing_zeros() });
    }
    let k = split(n);
    let left = range_hash(reader, start, start + k)?;
    let right = range_hash(reader, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree's first `size` leaves.
pub fn root<R: NodeReader>(reader: &R, size: u64) -> Result<Hash, R::Error> {
    range_hash(reader, 0, size)
}

/// Why a proof cannot be made or does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {old} is larger than {new}")]
    SizesReversed { old: u64, new: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the given root")]
    RootMismatch,
}

impl ProofError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::IndexOutOfRange { .. } => "index_out_of_range",
            ProofError::SizesReversed { .. } => "sizes_reversed",
            ProofError::WrongLength => "proof_wrong_length",
            ProofError::RootMismatch => "proof_root_mismatch",
        }
    }
}

/// RFC 6962 audit path of leaf `index` in the tree of `size` leaves, from the leaf's sibling
/// upwards. `Ok(Err(_))` when the index is not in the tree.
pub fn inclusion_proof<R: NodeReader>(
    reader: &R,
    index: u64,
    size: u64,
) -> Result<Result<Vec<Hash>, ProofError>, R::Error> {
    if index >= size {
        return Ok(Err(ProofError::IndexOutOfRange { index, size }));
    }
    let mut path = Vec::new();
    // Walk down from the root, remembering siblings; the path lists them bottom-up.
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            path.push(range_hash(reader, start + k, end)?);
            end = start + k;
        } else {
            path.push(range_hash(reader, start, start + k)?);
            start += k;
        }
    }
    path.reverse();
    Ok(Ok(path))
}

/// RFC 6962 consistency proof from the tree of `old` leaves to the tree of `new` leaves.
/// Empty when `old` is 0 or equals `new`.
pub fn consistency_proof<R: NodeReader>(
    reader: &R,
    old: u64,
    new: u64,
) -> Result<Result<Vec<Hash>, ProofError>, R::Error> {
    if old > new {
        return Ok(Err(ProofError::SizesReversed { old, new }));
    }
    let mut proof = Vec::new();
    if old == 0 || old == new {
        return Ok(Ok(proof));
    }
    // SUBPROOF(m, D[start:end], whole), unrolled: each step adds the hash of the half it
    // leaves, and the proof lists them bottom-up.
    let (mut m, mut start, mut end, mut whole) = (old, 0u64, new, true);
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                proof.push(range_hash(reader, start, end)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            proof.push(range_hash(reader, start + k, end)?);
            end = start + k;
        } else {
            proof.push(range_hash(reader, start, start + k)?);
            m -= k;
            start += k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(Ok(proof))
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of
/// `new` leaves with root `new_root` (RFC 9162 §2.1.4.2; equal sizes need equal roots and an
/// empty proof, and the empty tree is a prefix of every tree).
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizesReversed { old, new });
    }
    if old == new || old == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old == new && old_root != new_root { Err(ProofError::RootMismatch) } else { Ok(()) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A tree held in memory: tests, and proofs over a bundle's few nodes.
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    nodes: std::collections::HashMap<NodeId, Hash>,
    size: u64,
}

/// A node a [`MemoryTree`] does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the tree holds no node at level {} index {}", .0.level, .0.index)]
pub struct MissingNode(pub NodeId);

impl MemoryTree {
    /// Appends one entry (hashed as a leaf).
    pub fn push(&mut self, entry: &[u8]) {
        let added = append(self, self.size, leaf_hash(entry)).expect("a memory tree holds every left sibling");
        self.nodes.extend(added);
        self.size += 1;
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl NodeReader for MemoryTree {
    type Error = MissingNode;
    fn node(&self, id: NodeId) -> Result<Hash, MissingNode> {
        self.nodes.get(&id).copied().ok_or(MissingNode(id))
    }
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
