//! The tree against published RFC 6962 values (the leaves, roots and proofs that
//! transparency-dev/merkle and Certificate Transparency test against), and every proof of
//! every tree up to 64 leaves against the verifiers.

use super::*;

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// The eight leaf inputs of the RFC 6962 reference vectors.
fn leaves() -> Vec<Vec<u8>> {
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
}

/// Roots of the trees of 1..=8 of those leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn tree(n: usize) -> MemoryTree {
    let mut t = MemoryTree::default();
    for leaf in leaves().iter().take(n) {
        t.push(leaf);
    }
    t
}

#[test]
fn roots_match_the_published_rfc6962_values() {
    assert_eq!(root(&MemoryTree::default(), 0).unwrap(), EMPTY_ROOT);
    assert_eq!(hex::encode(EMPTY_ROOT), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    let t = tree(8);
    for (i, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&t, i as u64 + 1).unwrap(), h(want), "root of size {}", i + 1);
    }
    // Interior nodes as published (level 1 index 1, level 2 index 1).
    assert_eq!(
        t.node(NodeId { level: 1, index: 1 }).unwrap(),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e")
    );
    assert_eq!(
        t.node(NodeId { level: 2, index: 1 }).unwrap(),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")
    );
}

#[test]
fn inclusion_proofs_match_the_published_values() {
    let t = tree(8);
    // (leaf index, tree size, proof), 0-based indexes.
    let cases: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, want) in cases {
        let proof = inclusion_proof(&t, index, size).unwrap().unwrap();
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(proof, want, "inclusion of {index} in {size}");
        let leaf = leaf_hash(&leaves()[index as usize]);
        verify_inclusion(index, size, &leaf, &proof, &h(ROOTS[size as usize - 1])).unwrap();
    }
}

#[test]
fn consistency_proofs_match_the_published_values() {
    let t = tree(8);
    let cases: [(u64, u64, &[&str]); 4] = [
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (old, new, want) in cases {
        let proof = consistency_proof(&t, old, new).unwrap().unwrap();
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(proof, want, "consistency {old} → {new}");
        verify_consistency(old, new, &proof, &h(ROOTS[old as usize - 1]), &h(ROOTS[new as usize - 1])).unwrap();
    }
}

#[test]
fn every_proof_of_every_small_tree_verifies_and_no_altered_one_does() {
    let mut t = MemoryTree::default();
    for i in 0..64u32 {
        t.push(&i.to_be_bytes());
    }
    let roots: Vec<Hash> = (0..=64).map(|n| root(&t, n).unwrap()).collect();
    for size in 1..=64u64 {
        for index in 0..size {
            let leaf = leaf_hash(&(index as u32).to_be_bytes());
            let proof = inclusion_proof(&t, index, size).unwrap().unwrap();
            verify_inclusion(index, size, &leaf, &proof, &roots[size as usize]).unwrap();
            assert!(verify_inclusion(index, size, &leaf_hash(b"other"), &proof, &roots[size as usize]).is_err());
            if index + 1 < size {
                assert!(verify_inclusion(index + 1, size, &leaf, &proof, &roots[size as usize]).is_err());
            }
            let mut longer = proof.clone();
            longer.push(roots[size as usize]);
            assert_eq!(
                verify_inclusion(index, size, &leaf, &longer, &roots[size as usize]),
                Err(ProofError::WrongLength)
            );
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i][0] ^= 8;
                assert!(verify_inclusion(index, size, &leaf, &bad, &roots[size as usize]).is_err());
            }
        }
        for old in 0..=size {
            let proof = consistency_proof(&t, old, size).unwrap().unwrap();
            verify_consistency(old, size, &proof, &roots[old as usize], &roots[size as usize]).unwrap();
            if old > 0 && old < size {
                let other = leaf_hash(b"not the old root");
                assert!(verify_consistency(old, size, &proof, &other, &roots[size as usize]).is_err());
                assert!(verify_consistency(old, size, &proof, &roots[old as usize], &other).is_err());
                assert!(verify_consistency(
                    old,
                    size,
                    &proof[..proof.len() - 1],
                    &roots[old as usize],
                    &roots[size as usize]
                )
                .is_err());
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][0] ^= 16;
                    assert!(verify_consistency(old, size, &bad, &roots[old as usize], &roots[size as usize]).is_err());
                }
            }
        }
    }
}

#[test]
fn edge_cases_refuse_what_rfc9162_refuses() {
    let r1 = leaf_hash(b"1");
    let r2 = leaf_hash(b"2");
    assert!(verify_consistency(0, 0, &[], &r1, &r1).is_ok());
    assert!(verify_consistency(0, 1, &[], &r1, &r2).is_ok());
    assert!(verify_consistency(1, 1, &[], &r1, &r2).is_err());
    assert!(verify_consistency(0, 0, &[], &r1, &r2).is_err());
    assert!(verify_consistency(2, 1, &[], &r1, &r2).is_err());
    assert!(verify_consistency(1, 2, &[], &r1, &r2).is_err());
    assert!(verify_consistency(1, 1, &[EMPTY_ROOT], &r1, &r1).is_err());
    assert!(verify_inclusion(0, 0, &r1, &[], &r1).is_err());
    assert!(verify_inclusion(0, 1, &r1, &[], &r1).is_ok());
    assert!(verify_inclusion(1, 1, &r1, &[], &r1).is_err());
    assert!(inclusion_proof(&tree(3), 3, 3).unwrap().is_err());
    assert!(consistency_proof(&tree(3), 3, 2).unwrap().is_err());
}

#[test]
fn a_proof_reads_logarithmically_many_nodes() {
    use std::cell::Cell;
    struct Counting<'a>(&'a MemoryTree, Cell<usize>);
    impl NodeReader for Counting<'_> {
        type Error = MissingNode;
        fn node(&self, id: NodeId) -> Result<Hash, MissingNode> {
            self.1.set(self.1.get() + 1);
            self.0.node(id)
        }
    }
    let mut t = MemoryTree::default();
    for i in 0..1000u32 {
        t.push(&i.to_be_bytes());
    }
    let c = Counting(&t, Cell::new(0));
    for (index, size) in [(0, 1000), (999, 1000), (511, 777), (3, 513)] {
        c.1.set(0);
        inclusion_proof(&c, index, size).unwrap().unwrap();
        assert!(c.1.get() <= 2 * 10, "inclusion {index}/{size} read {} nodes", c.1.get());
        c.1.set(0);
        consistency_proof(&c, index + 1, size).unwrap().unwrap();
        assert!(c.1.get() <= 2 * 10, "consistency {}/{size} read {} nodes", index + 1, c.1.get());
    }
}
