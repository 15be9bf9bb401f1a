//! Differential checking of [`PublicKey::verify_strict`] against ed25519-dalek's own
//! `verify_strict`: the edge cases of ed25519 implementations (small-order and mixed-order
//! keys and R, non-canonical encodings of points and of s, signatures valid only under the
//! cofactored equation) and seeded random valid, mutated and crafted signatures. The unit
//! tests run a bounded number; `entrepot bench verify` runs as many as asked and times both.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha512};

use super::verify::PublicKey;

/// One verification input.
#[derive(Debug, Clone)]
pub struct Case {
    pub key: [u8; 32],
    pub message: Vec<u8>,
    pub signature: [u8; 64],
    /// What the case exercises.
    pub what: &'static str,
}

/// `ed25519_dalek`'s verdict: the key decodes, is not weak, and `verify_strict` accepts.
pub fn reference(case: &Case) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&case.key) else { return false };
    !key.is_weak() && key.verify_strict(&case.message, &Signature::from_bytes(&case.signature)).is_ok()
}

/// This crate's verdict, the message hashed in two parts to exercise that path too.
pub fn ours(case: &Case) -> bool {
    let Ok(key) = PublicKey::decode(&case.key) else { return false };
    let split = case.message.len() / 3;
    key.verify_strict(&[&case.message[..split], &case.message[split..]], &case.signature)
}

/// The order ℓ of the prime-order subgroup, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Adds two 256-bit little-endian integers, or `None` on overflow.
fn add_256(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = a[i] as u16 + b[i] as u16 + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    (carry == 0).then_some(out)
}

/// A scalar from 64 random bytes.
fn random_scalar(rng: &mut impl RngCore) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// `k = SHA-512(R || A || message) mod ℓ`.
fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(message);
    Scalar::from_hash(h)
}

/// A signature `(R, s = r + k·a)` made by hand, so that keys and R can be of any order.
fn sign_raw(a: &Scalar, key: &[u8; 32], r: &Scalar, r_point: &EdwardsPoint, message: &[u8]) -> [u8; 64] {
    let r_encoded = r_point.compress().to_bytes();
    let s = r + challenge(&r_encoded, key, message) * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_encoded);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// Every encoding (canonical or not, either sign bit) whose low 255 bits have y below 19 or
/// y = p − 1, the only y values with a second encoding or x = 0; kept when they decode.
pub fn special_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut p_minus_1 = p;
    p_minus_1[0] = 0xec;
    let mut ys: Vec<[u8; 32]> = (0u8..19)
        .map(|y| {
            let mut e = [0u8; 32];
            e[0] = y;
            e
        })
        .collect();
    ys.extend((0u8..19).filter_map(|y| {
        let mut e = [0u8; 32];
        e[0] = y;
        add_256(&e, &p)
    }));
    ys.push(p_minus_1);
    for y in ys {
        for sign in [0u8, 0x80] {
            let mut e = y;
            e[31] |= sign;
            if CompressedEdwardsY(e).decompress().is_some() {
                out.push(e);
            }
        }
    }
    out
}

/// The published categories of ed25519 edge cases, built from first principles.
pub fn edge_cases() -> Vec<Case> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0ed2_5519);
    let mut cases = Vec::new();
    let message = b"entrepot edge case".to_vec();
    let a = random_scalar(&mut rng);
    let a_point = ED25519_BASEPOINT_POINT * a;
    let key = a_point.compress().to_bytes();
    let r = random_scalar(&mut rng);
    let valid = sign_raw(&a, &key, &r, &(ED25519_BASEPOINT_POINT * r), &message);
    cases.push(Case { key, message: message.clone(), signature: valid, what: "valid" });
    cases.push(Case {
        key,
        message: Vec::new(),
        signature: sign_raw(&a, &key, &r, &(ED25519_BASEPOINT_POINT * r), &[]),
        what: "valid, empty message",
    });

    let torsion: Vec<EdwardsPoint> = EIGHT_TORSION.to_vec();
    let specials = special_encodings();
    let small: Vec<[u8; 32]> =
        torsion.iter().map(|t| t.compress().to_bytes()).chain(specials.iter().copied()).collect();
    for enc in &small {
        // A small-order (or otherwise special) key, with R and s from a real signature and with
        // R and s zero (the "identity signs everything" case).
        cases.push(Case { key: *enc, message: message.clone(), signature: valid, what: "special key" });
        let mut zero_s = [0u8; 64];
        zero_s[..32].copy_from_slice(enc);
        cases.push(Case { key: *enc, message: message.clone(), signature: zero_s, what: "special key and R, s = 0" });
        // A special R under a valid key: s chosen so the equation holds where possible.
        let mut sig = valid;
        sig[..32].copy_from_slice(enc);
        cases.push(Case { key, message: message.clone(), signature: sig, what: "special R" });
        // s = k·a makes [s]B − [k]A the identity: the equation holds when R is the identity.
        let k = challenge(enc, &key, &message);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(enc);
        sig[32..].copy_from_slice((k * a).as_bytes());
        cases.push(Case { key, message: message.clone(), signature: sig, what: "special R, s = k·a" });
    }
    for t in &torsion {
        // Mixed-order key A = aB + T: valid exactly when k·T is the identity.
        let mixed = a_point + t;
        let mixed_key = mixed.compress().to_bytes();
        for i in 0..8u8 {
            let m = [message.as_slice(), &[i]].concat();
            let sig = sign_raw(&a, &mixed_key, &r, &(ED25519_BASEPOINT_POINT * r), &m);
            cases.push(Case { key: mixed_key, message: m, signature: sig, what: "mixed-order key" });
        }
        // Mixed-order R = rB + T with s = r + k·a: holds only under the cofactored equation
        // (unless T is the identity).
        let sig = sign_raw(&a, &key, &r, &(ED25519_BASEPOINT_POINT * r + t), &message);
        cases.push(Case { key, message: message.clone(), signature: sig, what: "mixed-order R (cofactored only)" });
    }
    // Non-canonical s: s + ℓ, ℓ itself, and the high bits set.
    let mut s_plus_ell = valid;
    if let Some(s) = add_256(valid[32..].try_into().expect("32 bytes"), &ELL) {
        s_plus_ell[32..].copy_from_slice(&s);
        cases.push(Case { key, message: message.clone(), signature: s_plus_ell, what: "s + ℓ" });
    }
    let mut s_ell = valid;
    s_ell[32..].copy_from_slice(&ELL);
    cases.push(Case { key, message: message.clone(), signature: s_ell, what: "s = ℓ" });
    let mut s_high = valid;
    s_high[63] |= 0xe0;
    cases.push(Case { key, message: message.clone(), signature: s_high, what: "s with high bits" });
    // The valid key's and the valid R's other sign bit (another point, or none).
    let mut other_key = key;
    other_key[31] ^= 0x80;
    cases.push(Case { key: other_key, message: message.clone(), signature: valid, what: "key sign bit flipped" });
    let mut other_r = valid;
    other_r[31] ^= 0x80;
    cases.push(Case { key, message: message.clone(), signature: other_r, what: "R sign bit flipped" });
    cases
}

/// One seeded random case: a valid signature, possibly mutated or crafted.
/// `specials` are [`special_encodings`], computed once by the caller.
pub fn random_case(rng: &mut impl Rng, specials: &[[u8; 32]]) -> Case {
    let a = random_scalar(rng);
    let a_point = ED25519_BASEPOINT_POINT * a;
    let len = rng.gen_range(0..300);
    let mut message = vec![0u8; len];
    rng.fill_bytes(&mut message);
    let r = random_scalar(rng);
    let r_point = ED25519_BASEPOINT_POINT * r;
    let torsion = EIGHT_TORSION[rng.gen_range(0..8)];
    let mut key = a_point.compress().to_bytes();
    let mut signature;
    let what = match rng.gen_range(0..12) {
        0 | 1 => {
            signature = sign_raw(&a, &key, &r, &r_point, &message);
            "valid"
        }
        2 => {
            signature = sign_raw(&a, &key, &r, &r_point, &message);
            let bit = rng.gen_range(0..512);
            signature[bit / 8] ^= 1 << (bit % 8);
            "signature bit flipped"
        }
        3 => {
            signature = sign_raw(&a, &key, &r, &r_point, &message);
            let bit = rng.gen_range(0..256);
            key[bit / 8] ^= 1 << (bit % 8);
            "key bit flipped"
        }
        4 => {
            signature = sign_raw(&a, &key, &r, &r_point, &message);
            if message.is_empty() {
                message.push(0);
            } else {
                let bit = rng.gen_range(0..message.len() * 8);
                message[bit / 8] ^= 1 << (bit % 8);
            }
            "message bit flipped"
        }
        5 => {
            key = (a_point + torsion).compress().to_bytes();
            signature = sign_raw(&a, &key, &r, &r_point, &message);
            "mixed-order key"
        }
        6 => {
            signature = sign_raw(&a, &key, &r, &(r_point + torsion), &message);
            "mixed-order R"
        }
        7 => {
            signature = sign_raw(&a, &key, &r, &r_point, &message);
            if let Some(s) = add_256(signature[32..].try_into().expect("32 bytes"), &ELL) {
                signature[32..].copy_from_slice(&s);
            }
            "s + ℓ"
        }
        8 => {
            signature = [0u8; 64];
            rng.fill_bytes(&mut signature);
            signature[63] &= 0x0f;
            "random signature"
        }
        9 => {
            signature = sign_raw(&a, &key, &r, &r_point, &message);
            rng.fill_bytes(&mut key);
            "random key"
        }
        10 => {
            signature = sign_raw(&a, &key, &r, &r_point, &message);
            signature[..32].copy_from_slice(&torsion.compress().to_bytes());
            "small-order R"
        }
        _ => {
            let special = specials[rng.gen_range(0..specials.len())];
            signature = sign_raw(&a, &key, &r, &r_point, &message);
            if rng.gen_bool(0.5) {
                key = special;
            } else {
                signature[..32].copy_from_slice(&special);
            }
            "special encoding"
        }
    };
    Case { key, message, signature, what }
}

/// Counts of a differential run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub cases: u64,
    pub accepted: u64,
}

/// Runs the edge cases and `random` seeded random cases; the first disagreement is an error.
pub fn run(random: u64, seed: u64) -> Result<Tally, Box<Case>> {
    let mut tally = Tally::default();
    let mut judge = |case: Case| -> Result<(), Box<Case>> {
        let expected = reference(&case);
        if ours(&case) != expected {
            return Err(Box::new(case));
        }
        tally.cases += 1;
        tally.accepted += expected as u64;
        Ok(())
    };
    for case in edge_cases() {
        judge(case)?;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let specials = special_encodings();
    for _ in 0..random {
        judge(random_case(&mut rng, &specials))?;
    }
    Ok(tally)
}
