//! Bounded, coverage-less fuzzing of every decoder that reads outside input, on stable Rust:
//! the document envelope (also the gossip payload), sync requests and responses, bundles and
//! the config file. Each decoder gets a seeded random corpus plus structured mutations of valid
//! inputs (bit flips, truncations, length-field edits, splices, byte insertions).
//!
//! Checks: no decoder panics; an accepted input decodes the same way twice; an accepted wire
//! message re-encodes to bytes that decode to the same message; an accepted envelope verifies
//! (or not) the same way every time, and only the untouched originals verify.
//!
//! This is not coverage-guided fuzzing (cargo-fuzz targets for that are in `fuzz/`). Scale with
//! `ENTREPOT_FUZZ_COUNT` (inputs per decoder, default 20000) and replay with `ENTREPOT_FUZZ_SEED`.

mod common;

use std::path::Path;

use common::*;
use entrepot::bundle::{BundleReader, BundleWriter};
use entrepot::config::Config;
use entrepot::document::{decode, verify, DocumentId, OrgId, Seq};
use entrepot::sync::wire::{self, FeedHead, HeadsDigest, RefusalCode, Request, Response, Status};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn settings() -> (usize, u64) {
    let count = std::env::var("ENTREPOT_FUZZ_COUNT").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let seed = std::env::var("ENTREPOT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xF022_5EED);
    (count, seed)
}

/// One input: random bytes, or a mutation of a valid sample.
fn input(rng: &mut Rng, valid: &[Vec<u8>]) -> Vec<u8> {
    let choice = rng.below(10);
    if choice == 0 || valid.is_empty() {
        let len = rng.below(512);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut b = valid[rng.below(valid.len())].clone();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        if b.is_empty() {
            break;
        }
        match rng.below(7) {
            0 | 1 => {
                // Bit flip.
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            2 => b.truncate(rng.below(b.len())),
            3 => {
                // A length-like field edit: overwrite 1, 2 or 4 bytes with an extreme value.
                let width = [1, 2, 4][rng.below(3)];
                let i = rng.below(b.len());
                let value: [u8; 4] = match rng.below(4) {
                    0 => [0xff; 4],
                    1 => [0; 4],
                    2 => [0x7f, 0xff, 0xff, 0xff],
                    _ => (rng.next() as u32).to_be_bytes(),
                };
                for (k, v) in value.iter().take(width).enumerate() {
                    if let Some(x) = b.get_mut(i + k) {
                        *x = *v;
                    }
                }
            }
            4 => {
                // Splice: a tail of another valid sample.
                let other = &valid[rng.below(valid.len())];
                let at = rng.below(b.len());
                let from = rng.below(other.len());
                b.truncate(at);
                b.extend_from_slice(&other[from..]);
            }
            5 => {
                let at = rng.below(b.len() + 1);
                let n = 1 + rng.below(16);
                let extra: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(at..at, extra);
            }
            _ => {
                let at = rng.below(b.len());
                let n = 1 + rng.below(16).min(b.len() - at);
                b.drain(at..(at + n).min(b.len()));
            }
        }
    }
    b
}

fn valid_envelopes() -> Vec<Vec<u8>> {
    let drafts: Vec<_> = (0..6).map(|i| opinion(i, "8806.22")).collect();
    let mut all = feed(&drafts, "WCO", &key(1));
    all.extend(feed(&drafts[..2], "US", &key(2)));
    all
}

#[test]
fn document_envelopes_and_gossip_payloads_survive_mutation() {
    let (count, seed) = settings();
    println!("envelope fuzz: {count} inputs, seed {seed} (ENTREPOT_FUZZ_COUNT / ENTREPOT_FUZZ_SEED)");
    let valid = valid_envelopes();
    let mut rng = Rng(seed);
    let (mut decoded, mut verified) = (0, 0);
    for _ in 0..count {
        let bytes = input(&mut rng, &valid);
        let Ok(doc) = decode(&bytes) else { continue };
        decoded += 1;
        let again = decode(&bytes).expect("decoding is deterministic");
        assert_eq!(doc.id, again.id);
        assert_eq!(doc.bytes, bytes, "a decoded envelope keeps its bytes verbatim");
        assert_eq!(doc.id, DocumentId::of_envelope(&bytes));
        let first = verify(doc, &net()).is_ok();
        assert_eq!(first, verify(again, &net()).is_ok(), "verification is deterministic");
        if first {
            verified += 1;
            assert!(valid.contains(&bytes), "a mutated envelope verified: signature check is broken");
        }
    }
    println!("envelope fuzz: {decoded} decoded, {verified} verified (only unmutated samples may)");
}

fn valid_wire() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let heads: Vec<FeedHead> = (0..5)
        .map(|i| FeedHead {
            org: OrgId::new(["WCO", "US", "FR", "DE", "WTO"][i]).unwrap(),
            seq: Seq(i as u64 * 1000 + 1),
            id: DocumentId([i as u8; 32]),
            forked_at: (i == 2).then_some(Seq(1500)),
        })
        .collect();
    let requests = [
        Request::Hello { cert: vec![7; 180] },
        Request::Status(Status::compose(net(), 2, heads.clone(), HeadsDigest([3; 32]), HeadsDigest::NONE)),
        Request::Status(Status::compose(net(), 0, vec![], HeadsDigest::NONE, HeadsDigest::NONE)),
        Request::Status(Status {
            heads: None,
            ..Status::compose(net(), 0, heads.clone(), HeadsDigest::NONE, HeadsDigest::NONE)
        }),
        Request::Range { org: OrgId::new("WCO").unwrap(), from: Seq(7), count_max: 1024, bytes_max: 1 << 22 },
        Request::Charters { from_version: 3 },
        Request::ForkProofs { org: OrgId::new("FR").unwrap() },
        Request::Payloads { ids: vec![DocumentId([1; 32]), DocumentId([2; 32])] },
    ];
    let responses = [
        Response::Hello { cert: vec![7; 180] },
        Response::Status(Status::compose(net(), 1, heads, HeadsDigest::NONE, HeadsDigest::NONE)),
        Response::Range { docs: valid_envelopes() },
        Response::Range { docs: vec![] },
        Response::Refused { code: RefusalCode::Busy, reason: "busy".into() },
        Response::Refused {
            code: RefusalCode::CertificateInvalid,
            reason: "not admitted: node certificate signature does not verify".into(),
        },
        Response::Refused { code: RefusalCode::from_byte(0xee), reason: String::new() },
        Response::Charters { files: vec![vec![1; 300], vec![2; 400]] },
        Response::ForkProofs { pairs: valid_envelopes().into_iter().take(2).map(|e| (e.clone(), e)).collect() },
        Response::Payloads { items: vec![(DocumentId([3; 32]), b"{\"nonce\":\"00\"}".to_vec())] },
    ];
    (requests.iter().map(wire::encode_request).collect(), responses.iter().map(wire::encode_response).collect())
}

#[test]
fn sync_wire_messages_survive_mutation() {
    let (count, seed) = settings();
    println!("wire fuzz: {count} inputs per direction, seed {seed}");
    let (requests, responses) = valid_wire();
    let mut rng = Rng(seed);
    let (mut req_ok, mut res_ok) = (0, 0);
    for _ in 0..count {
        let bytes = input(&mut rng, &requests);
        if let Ok(r) = wire::decode_request(&bytes) {
            req_ok += 1;
            assert_eq!(wire::decode_request(&wire::encode_request(&r)).as_ref(), Ok(&r), "request round trip");
        }
        let bytes = input(&mut rng, &responses);
        if let Ok(r) = wire::decode_response(&bytes) {
            res_ok += 1;
            assert_eq!(wire::decode_response(&wire::encode_response(&r)).as_ref(), Ok(&r), "response round trip");
        }
    }
    println!("wire fuzz: {req_ok} requests and {res_ok} responses accepted and round-tripped");
}

#[test]
fn bundles_survive_mutation() {
    let (count, seed) = settings();
    println!("bundle fuzz: {count} inputs, seed {seed}");
    let mut valid = Vec::new();
    for docs in [valid_envelopes(), vec![], vec![b"x".to_vec()]] {
        let mut w = BundleWriter::new(Vec::new(), &net(), "{\"organizations\":[]}").unwrap();
        for d in &docs {
            w.push(d).unwrap();
        }
        valid.push(w.finish().unwrap());
    }
    let mut rng = Rng(seed);
    let (mut opened, mut envelopes) = (0, 0usize);
    for _ in 0..count {
        let bytes = input(&mut rng, &valid);
        let Ok(mut reader) = BundleReader::new(bytes.as_slice()) else { continue };
        opened += 1;
        // A reader makes progress on every call, so this loop ends within the input's length.
        for _ in 0..=bytes.len() {
            match reader.next_envelope() {
                Ok(Some(doc)) => {
                    envelopes += 1;
                    assert!(doc.len() <= bytes.len());
                    let _ = decode(&doc);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    println!("bundle fuzz: {opened} headers accepted, {envelopes} envelopes read");
}

#[test]
fn config_files_survive_mutation() {
    let (count, seed) = settings();
    let count = count / 4; // TOML parsing is the slowest decoder; a quarter keeps CI quick.
    println!("config fuzz: {count} inputs, seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let options = entrepot::config::InitOptions {
        network: "fuzz",
        organization: Some((OrgId::new("WCO").unwrap(), "WCO".into())),
        p2p_listen: "/ip4/127.0.0.1/tcp/0",
        http_listen: "127.0.0.1:0",
        ..Default::default()
    };
    entrepot::config::init(dir.path(), &options).unwrap();
    let text = std::fs::read(dir.path().join("config.toml")).unwrap();
    let path = Path::new("config.toml");
    assert!(Config::parse(std::str::from_utf8(&text).unwrap(), path).is_ok(), "the sample config parses");
    let valid = vec![text];
    let mut rng = Rng(seed);
    let mut accepted = 0;
    for _ in 0..count {
        let bytes = input(&mut rng, &valid);
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        if let Ok(c) = Config::parse(text, path) {
            accepted += 1;
            let again = Config::parse(text, path).expect("parsing is deterministic");
            assert_eq!(format!("{c:?}"), format!("{again:?}"));
            assert!(!c.network.is_empty() && c.network.len() <= entrepot::config::NETWORK_NAME_LEN_MAX);
            assert_eq!(c.organization.is_some(), c.signing_key.is_some());
        }
    }
    println!("config fuzz: {accepted} mutated configs accepted (and checked)");
}
