//! Vectors for the transparency log (docs/PROTOCOL.md §13), checked into
//! `tests/vectors/tlog.json`: a feed's tree (roots, inclusion and consistency proofs, valid and
//! altered), its publisher's checkpoint as a signed note (valid and refused, with codes), a
//! witness cosignature, and checkpoint-fork evidence. The tree's entries are the ids of documents.json's valid documents
//! (WCO #1–#3) followed by made-up ids, so the first three leaves are real feed entries.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{vector_key, VECTOR_NETWORK};
use crate::config::network_id;
use crate::document::OrgId;
use crate::tlog::checkpoint::{cosign, origin, verify_cosignature, witness_name, Checkpoint};
use crate::tlog::merkle::{self, Hash, MemoryTree};
use crate::tlog::note::{self, Note, NoteSignature};
use crate::tlog::signed;

/// Leaves in the vector tree.
const LEAVES: usize = 13;
/// Cosignature time of the vector witness: 2024-07-01T00:00:00Z.
const COSIGNED_AT_S: u64 = 1_719_792_000;

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// The vector tree's entries: the given ids, then SHA-256 of `"entrepot test vector leaf " || i`.
fn entries(ids: &[[u8; 32]]) -> Vec<[u8; 32]> {
    (0..LEAVES)
        .map(|i| ids.get(i).copied().unwrap_or_else(|| Sha256::digest(format!("entrepot test vector leaf {i}")).into()))
        .collect()
}

fn root_of(tree: &MemoryTree, size: u64) -> Hash {
    merkle::root(tree, size).expect("a memory tree holds every node")
}

fn inclusion_of(tree: &MemoryTree, index: u64, size: u64) -> Vec<Hash> {
    merkle::inclusion_proof(tree, index, size).expect("a memory tree holds every node").expect("index in the tree")
}

fn consistency_of(tree: &MemoryTree, old: u64, new: u64) -> Vec<Hash> {
    merkle::consistency_proof(tree, old, new).expect("a memory tree holds every node").expect("sizes in order")
}

fn proof_code(r: Result<(), merkle::ProofError>) -> String {
    r.map_or_else(|e| e.code().to_owned(), |_| "valid".to_owned())
}

/// The witness's libp2p peer id: the peer id of the Ed25519 key of seed `key`.
fn peer_id_of(key: &ed25519_dalek::SigningKey) -> String {
    let mut seed = key.to_bytes();
    let kp = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed).expect("32-byte seed");
    kp.public().to_peer_id().to_string()
}

fn signed_note(text: &str, sigs: Vec<NoteSignature>) -> String {
    Note { text: text.to_owned(), signatures: sigs }.encode()
}

/// The transparency-log vectors; `ids` are documents.json's valid document ids in feed order.
pub fn generate(ids: &[[u8; 32]]) -> Value {
    let leaves = entries(ids);
    let mut tree = MemoryTree::default();
    let mut roots = vec![json!({ "size": 0, "root": hex::encode(merkle::EMPTY_ROOT) })];
    for e in &leaves {
        tree.push(e);
        roots.push(json!({ "size": tree.size(), "root": hex::encode(root_of(&tree, tree.size())) }));
    }
    let n = LEAVES as u64;
    let root = root_of(&tree, n);
    let leaf = |i: usize| merkle::leaf_hash(&leaves[i]);

    let mut inclusion = Vec::new();
    for (index, size) in [(0u64, 1u64), (0, 3), (2, 3), (0, n), (5, n), (12, n), (6, 7), (3, 8)] {
        let proof = inclusion_of(&tree, index, size);
        let r = root_of(&tree, size);
        let verdict = proof_code(merkle::verify_inclusion(index, size, &leaf(index as usize), &proof, &r));
        assert_eq!(verdict, "valid");
        inclusion.push(json!({ "name": format!("leaf_{index}_of_{size}"), "index": index, "size": size, "leaf_hash": hex::encode(leaf(index as usize)), "proof": hexes(&proof), "root": hex::encode(r), "verdict": verdict }));
    }
    let good = inclusion_of(&tree, 5, n);
    let mut flipped = good.clone();
    flipped[1][0] ^= 1;
    let altered: [(&str, u64, Vec<Hash>); 4] = [
        ("a_proof_hash_altered", 5, flipped),
        ("a_proof_hash_missing", 5, good[..good.len() - 1].to_vec()),
        ("a_proof_hash_too_many", 5, [good.clone(), vec![[0u8; 32]]].concat()),
        ("index_beyond_the_tree", n, good.clone()),
    ];
    for (name, index, proof) in altered {
        let l = leaf((index as usize).min(LEAVES - 1));
        let verdict = proof_code(merkle::verify_inclusion(index, n, &l, &proof, &root));
        assert_ne!(verdict, "valid", "{name}");
        inclusion.push(json!({ "name": name, "index": index, "size": n, "leaf_hash": hex::encode(l), "proof": hexes(&proof), "root": hex::encode(root), "verdict": verdict }));
    }

    let mut consistency = Vec::new();
    for (old, new) in [(1u64, n), (3, n), (4, 8), (6, n), (7, n), (n, n)] {
        let proof = consistency_of(&tree, old, new);
        let (r_old, r_new) = (root_of(&tree, old), root_of(&tree, new));
        let verdict = proof_code(merkle::verify_consistency(old, new, &proof, &r_old, &r_new));
        assert_eq!(verdict, "valid");
        consistency.push(json!({ "name": format!("from_{old}_to_{new}"), "old_size": old, "new_size": new, "old_root": hex::encode(r_old), "new_root": hex::encode(r_new), "proof": hexes(&proof), "verdict": verdict }));
    }
    let mut proof = consistency_of(&tree, 6, n);
    proof[0][31] ^= 1;
    let (r6, rn) = (root_of(&tree, 6), root_of(&tree, n));
    let verdict = proof_code(merkle::verify_consistency(6, n, &proof, &r6, &rn));
    assert_ne!(verdict, "valid");
    consistency.push(json!({ "name": "a_proof_hash_altered", "old_size": 6, "new_size": n, "old_root": hex::encode(r6), "new_root": hex::encode(rn), "proof": hexes(&proof), "verdict": verdict }));

    // The publisher's checkpoint of the 13 entries, and refused variants.
    let net = network_id(VECTOR_NETWORK);
    let wco = OrgId::new("WCO").expect("org id");
    let wco_key = vector_key("WCO");
    let feed = origin(&net, &wco);
    let cp = Checkpoint { origin: feed.clone(), size: n, root };
    let text = cp.text();
    let valid = signed_note(&text, vec![cp.sign(&wco_key)]);
    let other_root = Checkpoint { root: root_of(&tree, n - 1), ..cp.clone() }.text();
    let mut checkpoint_cases = vec![("valid", valid.clone())];
    // The text changed under the publisher's signature.
    checkpoint_cases.push(("root_altered_under_the_signature", signed_note(&other_root, vec![cp.sign(&wco_key)])));
    checkpoint_cases.push(("signed_by_another_key", signed_note(&text, vec![cp.sign(&vector_key("intruder"))])));
    let other_origin = Checkpoint { origin: origin(&[0x22; 32], &wco), ..cp.clone() };
    checkpoint_cases
        .push(("another_network_s_origin", signed_note(&other_origin.text(), vec![other_origin.sign(&wco_key)])));
    checkpoint_cases.push(("size_with_a_leading_zero", valid.replacen(&format!("\n{n}\n"), &format!("\n0{n}\n"), 1)));
    checkpoint_cases.push(("root_not_canonical_base64", valid.replacen(&STANDARD.encode(root), "!", 1)));
    checkpoint_cases.push(("no_signature_line", format!("{text}\n")));
    let keys = [wco_key.verifying_key().to_bytes()];
    let checkpoints: Vec<Value> = checkpoint_cases
        .into_iter()
        .map(|(name, note)| {
            let verdict = signed::open(note.as_bytes(), &feed, |_| keys.to_vec())
                .map_or_else(|e| e.code().to_owned(), |_| "valid".to_owned());
            json!({ "name": name, "note": note, "verdict": verdict })
        })
        .collect();

    // A witness of FR cosigns it (C2SP cosignature/v1).
    let witness_key = vector_key("witness FR");
    let peer = peer_id_of(&witness_key);
    let name = witness_name(&OrgId::new("FR").expect("org id"), &peer);
    let cosig = cosign(&name, &witness_key, &text, COSIGNED_AT_S);
    let cosigned = signed_note(&text, vec![cp.sign(&wco_key), cosig.clone()]);
    let wk = witness_key.verifying_key();
    let mut late = cosig.clone();
    late.data[7] ^= 1;
    let cosignature_cases: Vec<Value> = [
        ("valid", cosig.clone(), text.clone()),
        ("timestamp_altered", late, text.clone()),
        ("of_another_checkpoint", cosig, other_root),
    ]
    .into_iter()
    .map(|(case, sig, of)| {
        let verdict = verify_cosignature(&sig, &wk, &of).map_or_else(|| "invalid".to_owned(), |t| t.to_string());
        json!({ "name": case, "checkpoint_text": of, "signature_line": sig.line(), "verdict": verdict })
    })
    .collect();
    assert!(note::parse(cosigned.as_bytes()).is_ok());

    // Checkpoint-fork evidence (§13.6): WCO signed checkpoint A of this tree at 8 entries and
    // checkpoint B of another history (the same first 6 entries) at 13.
    let mut other = MemoryTree::default();
    for (i, e) in leaves.iter().enumerate() {
        let forked: [u8; 32] = Sha256::digest(format!("entrepot test vector other leaf {i}")).into();
        other.push(if i < 6 { e } else { &forked });
    }
    let sign_at = |t: &MemoryTree, size: u64| {
        let c = Checkpoint { origin: feed.clone(), size, root: root_of(t, size) };
        signed_note(&c.text(), vec![c.sign(&wco_key)]).into_bytes()
    };
    let fork = signed::ForkEvidence {
        a: sign_at(&tree, 8),
        b: sign_at(&other, n),
        root_at_a: root_of(&other, 8),
        proof: consistency_of(&other, 8, n),
    };
    let consistent = signed::ForkEvidence {
        a: sign_at(&tree, 8),
        b: sign_at(&tree, n),
        root_at_a: root_of(&tree, 8),
        proof: consistency_of(&tree, 8, n),
    };
    let mut bad_proof = fork.clone();
    bad_proof.proof[0][0] ^= 1;
    let reversed = signed::ForkEvidence { a: fork.b.clone(), b: fork.a.clone(), ..fork.clone() };
    let mut trailing = fork.encode();
    trailing.push(0);
    let evidence: Vec<Value> = [
        ("a_fork_proven", fork.encode()),
        ("two_consistent_checkpoints", consistent.encode()),
        ("a_proof_hash_altered", bad_proof.encode()),
        ("a_larger_than_b", reversed.encode()),
        ("a_byte_after_the_proof", trailing),
        ("magic_only", signed::EVIDENCE_MAGIC.to_vec()),
    ]
    .into_iter()
    .map(|(name, bytes)| {
        let verdict = match signed::ForkEvidence::decode(&bytes).and_then(|e| e.verify(&feed, |_| keys.to_vec())) {
            Ok((a, b)) => format!("fork {a} {b}"),
            Err(e) => e.code().to_owned(),
        };
        json!({ "name": name, "bytes": hex::encode(&bytes), "verdict": verdict })
    })
    .collect();

    json!({
        "about": "entrepot transparency-log vectors: docs/PROTOCOL.md §13, run as docs/CONFORMANCE.md says. Leaves are 32-byte entries (document ids); leaf and node hashes are RFC 6962's.",
        "entries": hexes(&leaves),
        "roots": roots,
        "inclusion": inclusion,
        "consistency": consistency,
        "checkpoint": {
            "origin": feed,
            "publisher_key": hex::encode(keys[0]),
            "publisher_key_id": hex::encode(note::key_id(&feed, note::SIG_TYPE_ED25519, &keys[0])),
            "cases": checkpoints,
        },
        "cosignature": {
            "witness_name": name,
            "witness_peer_id": peer,
            "witness_key": hex::encode(wk.to_bytes()),
            "timestamp_s": COSIGNED_AT_S,
            "cosigned_note": cosigned,
            "cases": cosignature_cases,
        },
        "fork_evidence": evidence,
    })
}
