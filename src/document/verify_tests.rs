//! `PublicKey::verify_strict` against ed25519-dalek's `verify_strict`: the edge cases, then
//! seeded random and mutated signatures (bounded; `entrepot bench verify` runs millions).

use super::*;
use crate::document::differential::{self, edge_cases, ours, reference};

#[test]
fn every_edge_case_gets_the_verdict_verify_strict_gives() {
    let cases = edge_cases();
    for case in &cases {
        assert_eq!(ours(case), reference(case), "disagreement on {}: {case:?}", case.what);
    }
    let verdicts = |what: &str| cases.iter().filter(|c| c.what == what).map(reference).collect::<Vec<_>>();
    // The cases are the ones that matter: each category reaches the verdict it exists for.
    assert_eq!(verdicts("valid"), [true]);
    assert_eq!(verdicts("valid, empty message"), [true]);
    assert!(verdicts("special key").iter().all(|v| !v), "small-order keys are refused");
    assert!(verdicts("special R, s = k·a").iter().all(|v| !v), "small-order R is refused");
    assert_eq!(verdicts("s + ℓ"), [false]);
    assert_eq!(verdicts("s = ℓ"), [false]);
    let cofactored_only = verdicts("mixed-order R (cofactored only)");
    assert_eq!(cofactored_only.iter().filter(|v| **v).count(), 1, "only R + identity holds cofactorless");
    let mixed_keys = verdicts("mixed-order key");
    assert!(mixed_keys.iter().any(|v| *v) && mixed_keys.iter().any(|v| !v), "mixed-order keys go both ways");
    assert!(cases.iter().filter(|c| c.what.starts_with("special")).count() > 40, "special encodings are covered");
}

#[test]
fn random_and_mutated_signatures_get_the_verdict_verify_strict_gives() {
    // Bounded: 60,000 cases, a few seconds (release) on two cores; `entrepot bench verify`
    // runs millions.
    let threads = 2u64;
    let per_thread = 30_000;
    let tallies: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..threads).map(|t| scope.spawn(move || differential::run(per_thread, 1000 + t))).collect();
        handles.into_iter().map(|h| h.join().expect("no panic")).collect()
    });
    for tally in tallies {
        let tally = tally.unwrap_or_else(|case| panic!("disagreement on {}: {case:?}", case.what));
        assert!(tally.cases > per_thread);
        // Valid and mixed-order cases are about a fifth: both verdicts are exercised.
        assert!(tally.accepted > per_thread / 10 && tally.accepted < per_thread / 2, "{tally:?}");
    }
}

#[test]
fn a_cached_key_gives_the_verdict_of_a_fresh_one() {
    let mut cache = KeyCache::default();
    for case in edge_cases() {
        let fresh = PublicKey::decode(&case.key).map(|k| k.verify_strict(&[&case.message], &case.signature));
        let cached = cache.get(&case.key).map(|k| k.verify_strict(&[&case.message], &case.signature));
        assert_eq!(fresh, cached, "{}", case.what);
        assert!(cache.keys.len() <= KEY_CACHE_MAX);
    }
}

#[test]
fn y_is_canonical_exactly_below_p() {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    assert!(!y_is_canonical(&p));
    let mut below = p;
    below[0] = 0xec;
    assert!(y_is_canonical(&below));
    let mut top = [0xffu8; 32];
    assert!(!y_is_canonical(&top), "2^255 − 1 with the sign bit");
    top[5] = 0xfe;
    assert!(y_is_canonical(&top), "the sign bit is not part of y");
    assert!(y_is_canonical(&[0u8; 32]));
}
