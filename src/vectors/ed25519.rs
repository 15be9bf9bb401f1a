//! Ed25519 edge cases (docs/PROTOCOL.md §3.1), checked into `tests/vectors/ed25519.json`: each
//! case is a key, a message and a signature with the verdict the specification gives it. The
//! verdicts are written here from the specification's rules; the test checks that
//! `document::verify_signature` reaches each one.
//!
//! The signatures are built with curve arithmetic rather than a signing key, because most of
//! these cases (a small-order R that satisfies the equation, a mixed-order key) are exactly
//! what an honest signer never produces.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

/// The message every case signs.
const MESSAGE: &[u8] = b"entrepot conformance: ed25519 edge cases";

/// A scalar derived from a label, as the signing-key seeds of the other vectors are.
fn scalar(label: &str) -> Scalar {
    let bytes: [u8; 32] = Sha256::digest(format!("entrepot test vector scalar {label}").as_bytes()).into();
    Scalar::from_bytes_mod_order(bytes)
}

/// RFC 8032's challenge `k = SHA-512(R || A || M) mod L`, over the encodings as given.
fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let h: [u8; 64] = Sha512::new().chain_update(r).chain_update(a).chain_update(m).finalize().into();
    Scalar::from_bytes_mod_order_wide(&h)
}

fn signature(r: &[u8; 32], s: &Scalar) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s.as_bytes());
    out
}

/// A point of order 8.
fn torsion8() -> EdwardsPoint {
    let t = EIGHT_TORSION[1];
    assert!(!(t * Scalar::from(4u8)).is_identity(), "EIGHT_TORSION[1] has order 8");
    t
}

/// An honest signature by `a` with nonce `r`, and `R = [r]B + extra`, `A = [a]B + key_extra`.
fn sign_with(a: &Scalar, key_extra: EdwardsPoint, r: &Scalar, extra: EdwardsPoint) -> ([u8; 32], [u8; 64]) {
    let key = (ED25519_BASEPOINT_POINT * a + key_extra).compress().to_bytes();
    let big_r = (ED25519_BASEPOINT_POINT * r + extra).compress().to_bytes();
    let k = challenge(&big_r, &key, MESSAGE);
    (key, signature(&big_r, &(r + k * a)))
}

/// The first nonce label `i` for which `accept(k)` holds, with its key and signature.
fn search(
    a: &Scalar,
    key_extra: EdwardsPoint,
    extra: EdwardsPoint,
    accept: impl Fn(&Scalar) -> bool,
) -> ([u8; 32], [u8; 64]) {
    for i in 0..256 {
        let r = scalar(&format!("nonce {i}"));
        let (key, sig) = sign_with(a, key_extra, &r, extra);
        let big_r: [u8; 32] = sig[..32].try_into().expect("32 bytes");
        if accept(&challenge(&big_r, &key, MESSAGE)) {
            return (key, sig);
        }
    }
    unreachable!("each try succeeds with probability 1/8; 256 tries do not all fail")
}

/// `p + k`, little-endian: a non-canonical encoding of the point with y = k (if there is one).
fn y_over_p(k: u8) -> [u8; 32] {
    let mut raw = [0xffu8; 32];
    raw[0] = 0xed + k;
    raw[31] = 0x7f;
    raw
}

/// The smallest `k` for which `p + k` decodes to a point that is not of small order.
pub(crate) fn non_canonical_usable_encoding() -> [u8; 32] {
    (2..=18)
        .map(y_over_p)
        .find(|raw| CompressedEdwardsY(*raw).decompress().is_some_and(|p| !p.is_small_order()))
        .expect("some y in 2..=18 is on the curve")
}

fn case(name: &str, description: &str, key: &[u8; 32], sig: &[u8; 64], verdict: &str) -> Value {
    json!({ "name": name, "description": description, "key": hex::encode(key),
            "signature": hex::encode(sig), "verdict": verdict })
}

/// Every case, as JSON.
pub fn generate() -> Value {
    let a = scalar("key");
    let zero = EdwardsPoint::default();
    let t = torsion8();
    let (key, good) = sign_with(&a, zero, &scalar("nonce"), zero);
    let mut cases = vec![case("valid", "an honest signature", &key, &good, "valid")];

    let mut bad = good;
    bad[63] ^= 0x01;
    cases.push(case("altered", "the last signature bit flipped", &key, &bad, "bad_signature"));

    let mut s_plus_l = good;
    let s = Scalar::from_canonical_bytes(good[32..].try_into().expect("32 bytes")).expect("canonical S");
    let l_bytes = (Scalar::ZERO - Scalar::ONE).to_bytes(); // L - 1
    let mut carry = 1u16; // L = (L - 1) + 1
    for i in 0..32 {
        let sum = s.as_bytes()[i] as u16 + l_bytes[i] as u16 + carry;
        s_plus_l[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    cases.push(case("s_not_canonical", "S replaced by S + L (step 3)", &key, &s_plus_l, "bad_signature"));

    let non_canonical = non_canonical_usable_encoding();
    cases.push(case(
        "key_y_not_below_p",
        "A = p + k: y >= p, another encoding of a point that is not of small order (step 1)",
        &non_canonical,
        &good,
        "bad_key",
    ));
    let mut identity_signed = [0u8; 32];
    identity_signed[0] = 1;
    identity_signed[31] = 0x80;
    cases.push(case(
        "key_x_zero_sign_set",
        "A = the identity (x = 0) with the sign bit set (step 1)",
        &identity_signed,
        &good,
        "bad_key",
    ));
    let mut not_on_curve = [0u8; 32];
    not_on_curve[0] = 2;
    assert!(CompressedEdwardsY(not_on_curve).decompress().is_none(), "y = 2 is not on the curve");
    cases.push(case(
        "key_not_on_curve",
        "A has y = 2, for which no x exists (step 1)",
        &not_on_curve,
        &good,
        "bad_key",
    ));

    // A = identity: [S]B = R + [k]A holds for S = r and any message.
    let r = scalar("nonce");
    let identity = EdwardsPoint::default().compress().to_bytes();
    let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
    cases.push(case(
        "key_small_order_identity",
        "A = the identity; the equation holds for every message (step 2)",
        &identity,
        &signature(&big_r, &r),
        "weak_key",
    ));
    cases.push(case(
        "key_small_order_8",
        "A = a point of order 8 (step 2)",
        &t.compress().to_bytes(),
        &good,
        "weak_key",
    ));

    // R = identity with S = k·a: the cofactorless equation holds, but R has small order.
    let key_bytes = (ED25519_BASEPOINT_POINT * a).compress().to_bytes();
    let k = challenge(&identity, &key_bytes, MESSAGE);
    cases.push(case(
        "r_small_order",
        "R = the identity, S = k·a: the equation holds, R is of small order (step 4)",
        &key_bytes,
        &signature(&identity, &(k * a)),
        "bad_signature",
    ));
    let mut r_non_canonical = good;
    r_non_canonical[..32].copy_from_slice(&non_canonical);
    cases.push(case(
        "r_not_canonical",
        "R = p + k, a non-canonical encoding; the equation fails too (steps 4-5)",
        &key,
        &r_non_canonical,
        "bad_signature",
    ));

    // Mixed order: A = [a]B + T and/or R = [r]B + T, T of order 8.
    let (mixed_key, sig) = search(&a, t, zero, |k| (t * k).is_identity());
    cases.push(case(
        "key_mixed_order_equation_holds",
        "A = [a]B + T (T of order 8), k a multiple of 8: [S]B - [k]A = R exactly",
        &mixed_key,
        &sig,
        "valid",
    ));
    let (mixed_key, sig) = search(&a, t, zero, |k| !(t * k).is_identity());
    cases.push(case(
        "key_mixed_order_cofactored_only",
        "A = [a]B + T, k not a multiple of 8: only the cofactored equation holds (step 5)",
        &mixed_key,
        &sig,
        "bad_signature",
    ));
    let (prime_key, sig) = search(&a, zero, t, |_| true);
    cases.push(case(
        "r_mixed_order_cofactored_only",
        "R = [r]B + T, A of prime order: only the cofactored equation holds (step 5)",
        &prime_key,
        &sig,
        "bad_signature",
    ));
    let (mixed_key, sig) = search(&a, t, t, |k| (t * (k + Scalar::ONE)).is_identity());
    cases.push(case(
        "both_mixed_order_equation_holds",
        "A = [a]B + T and R = [r]B + T with k = 7 mod 8: [S]B - [k]A = R exactly",
        &mixed_key,
        &sig,
        "valid",
    ));
    json!({
        "about": "Ed25519 verification edge cases: docs/PROTOCOL.md §3.1, run as docs/CONFORMANCE.md says.",
        "message": hex::encode(MESSAGE),
        "cases": cases,
    })
}
