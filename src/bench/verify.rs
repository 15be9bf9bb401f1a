//! `entrepot bench verify`: the document signature check against ed25519-dalek's
//! `verify_strict`, for agreement (a long differential run over edge cases and seeded random,
//! mutated and crafted signatures) and for speed (the same messages timed both ways).

use std::time::Instant;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::document::differential;
use crate::document::{signing_message, KeyCache, DOCUMENT_DOMAIN};

/// Options of `entrepot bench verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Random cases of the differential run (split over the cores).
    #[arg(long, default_value_t = 2_000_000)]
    pub cases: u64,
    /// Seed of the random cases (each core adds its index).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Signatures per speed measurement.
    #[arg(long, default_value_t = 20_000)]
    pub signatures: usize,
}

/// Runs the benchmark and prints its figures; a disagreement is an error.
pub fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as u64;
    println!("entrepot bench verify: {} × {cores} cores", super::cpu_model());
    let key = SigningKey::from_bytes(&[9; 32]);
    let signed: Vec<Vec<u8>> = (0..args.signatures).map(|i| vec![(i % 251) as u8; 1690]).collect();
    let sigs: Vec<Signature> = signed.iter().map(|m| key.sign(&signing_message(DOCUMENT_DOMAIN, m))).collect();
    let encoded = key.verifying_key().to_bytes();
    // As a document was checked before: decode the key, build the message, verify_strict.
    let t = Instant::now();
    for (m, s) in signed.iter().zip(&sigs) {
        let vk = VerifyingKey::from_bytes(&encoded).expect("a valid key");
        anyhow::ensure!(!vk.is_weak() && vk.verify_strict(&signing_message(DOCUMENT_DOMAIN, m), s).is_ok());
    }
    let reference = args.signatures as f64 / t.elapsed().as_secs_f64();
    // As a document is checked now: the key decoded once per batch, the message in parts.
    let t = Instant::now();
    let mut keys = KeyCache::default();
    for (m, s) in signed.iter().zip(&sigs) {
        let pk = keys.get(&encoded)?;
        anyhow::ensure!(pk.verify_strict(&[DOCUMENT_DOMAIN, &[0], m], &s.to_bytes()));
    }
    let ours = args.signatures as f64 / t.elapsed().as_secs_f64();
    println!("reference  key decode + verify_strict, 1 core: {reference:>9.0} signatures/s (1,690-byte documents)");
    println!(
        "entrepot   document check, 1 core:            {ours:>9.0} signatures/s ({:.2}× the reference)",
        ours / reference
    );

    let per_core = args.cases.div_ceil(cores);
    let t = Instant::now();
    let tallies: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..cores).map(|c| scope.spawn(move || differential::run(per_core, args.seed + c))).collect();
        handles.into_iter().map(|h| h.join().expect("no panic")).collect()
    });
    let (mut cases, mut accepted) = (0, 0);
    for tally in tallies {
        match tally {
            Ok(t) => {
                cases += t.cases;
                accepted += t.accepted;
            }
            Err(case) => anyhow::bail!("disagreement with verify_strict on {}: {case:?}", case.what),
        }
    }
    println!(
        "agreement  {cases} cases ({accepted} accepted by both, {} refused by both), no disagreement, {:.0} s",
        cases - accepted,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
