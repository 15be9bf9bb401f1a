//! Unit tests of the charter rules: one scenario per rule.

use ed25519_dalek::SigningKey;

use super::*;
use crate::document::{DocumentId, Header, OrgId, Seq, TypeName, Validity};

fn key(label: u8) -> SigningKey {
    SigningKey::from_bytes(&[label; 32])
}

fn pk(k: &SigningKey) -> PublicKey {
    PublicKey::new(k.verifying_key().to_bytes()).unwrap()
}

const FAR: &str = "2099-01-01T00:00:00Z";

/// A charter with root keys 1..=n, threshold t, and WCO publishing opinions with key 10.
fn charter(version: u32, previous: Option<CharterHash>, roots: &[u8], threshold: u8) -> Charter {
    Charter {
        version,
        previous,
        expires: FAR.into(),
        root: Root { keys: roots.iter().map(|r| pk(&key(*r))).collect(), threshold },
        organizations: vec![Member {
            id: OrgId::new("WCO").unwrap(),
            name: "World Customs Organization".into(),
            country: None,
            region: None,
            role: Role::Secretariat,
            keys: vec![MemberKey { key: pk(&key(10)), valid_from_seq: Seq(1), revoked_at_seq: None }],
            permissions: vec![Permission {
                doc_type: TypeName::new("classification.opinion").unwrap(),
                hs_chapters: None,
                regions: None,
            }],
        }],
    }
}

fn signed(c: &Charter, signers: &[u8]) -> SignedCharter {
    let mut s = SignedCharter::unsigned(c.to_body()).unwrap();
    for k in signers {
        s.sign(&key(*k)).unwrap();
    }
    // Every test charter goes through the byte layout, so the round trip is always covered.
    decode(&encode(&s)).unwrap()
}

fn genesis() -> SignedCharter {
    signed(&charter(1, None, &[1, 2, 3], 2), &[1, 2])
}

fn code(e: ChainError) -> &'static str {
    e.code()
}

#[test]
fn genesis_is_trusted_only_by_its_pinned_hash_and_its_threshold() {
    let g = genesis();
    assert!(verify_chain(&g.hash(), std::slice::from_ref(&g)).is_ok());
    assert_eq!(code(verify_chain(&CharterHash([7; 32]), std::slice::from_ref(&g)).unwrap_err()), "genesis_mismatch");
    let one = signed(&charter(1, None, &[1, 2, 3], 2), &[1]);
    assert_eq!(code(verify_chain(&one.hash(), &[one]).unwrap_err()), "too_few_signatures");
    assert_eq!(code(verify_chain(&g.hash(), &[]).unwrap_err()), "charter_missing");
}

#[test]
fn adding_signatures_does_not_change_the_hash() {
    let a = signed(&charter(1, None, &[1, 2, 3], 2), &[1]);
    let b = signed(&charter(1, None, &[1, 2, 3], 2), &[3, 1, 2]);
    assert_eq!(a.hash(), b.hash());
    assert_eq!(b.signatures.len(), 3);
}

#[test]
fn next_version_needs_both_the_old_and_the_new_threshold() {
    let g = genesis();
    // Rotation: root keys {1,2,3} → {3,4,5}, threshold 2.
    let v2 = charter(2, Some(g.hash()), &[3, 4, 5], 2);
    let ok = signed(&v2, &[1, 2, 4, 5]);
    assert_eq!(verify_chain(&g.hash(), &[g.clone(), ok.clone()]).unwrap().latest().charter.version, 2);
    // Old threshold only.
    let e = verify_chain(&g.hash(), &[g.clone(), signed(&v2, &[1, 2])]).unwrap_err();
    assert!(matches!(e, ChainError::TooFewSignatures { by: "its own", .. }), "{e}");
    // New threshold only.
    let e = verify_chain(&g.hash(), &[g.clone(), signed(&v2, &[4, 5])]).unwrap_err();
    assert!(matches!(e, ChainError::TooFewSignatures { by: "the previous version's", .. }), "{e}");
    // Key 3 is in both sets and counts for each, but one key is not two.
    assert_eq!(code(verify_chain(&g.hash(), &[g.clone(), signed(&v2, &[3, 4])]).unwrap_err()), "too_few_signatures");
}

#[test]
fn signatures_by_keys_outside_the_root_do_not_count() {
    let g = genesis();
    let v2 = charter(2, Some(g.hash()), &[1, 2, 3], 2);
    let e = verify_chain(&g.hash(), &[g.clone(), signed(&v2, &[1, 9, 10])]).unwrap_err();
    assert_eq!(code(e), "too_few_signatures");
}

#[test]
fn a_root_signature_that_does_not_verify_is_reported() {
    let g = genesis();
    let mut v2 = signed(&charter(2, Some(g.hash()), &[1, 2, 3], 2), &[1, 2]);
    v2.signatures[0].signature[0] ^= 1;
    assert_eq!(code(verify_chain(&g.hash(), &[g.clone(), v2]).unwrap_err()), "bad_signature");
}

#[test]
fn versions_apply_in_order_without_replay_or_gap() {
    let g = genesis();
    let v2 = signed(&charter(2, Some(g.hash()), &[1, 2, 3], 2), &[1, 2]);
    let mut chain = verify_chain(&g.hash(), &[g.clone(), v2.clone()]).unwrap();
    assert_eq!(code(chain.extend(v2.clone()).unwrap_err()), "charter_version_replayed");
    assert_eq!(code(chain.extend(g.clone()).unwrap_err()), "charter_version_replayed");
    let v4 = signed(&charter(4, Some(v2.hash()), &[1, 2, 3], 2), &[1, 2]);
    assert_eq!(code(chain.extend(v4).unwrap_err()), "charter_version_gap");
    let v3_wrong_prev = signed(&charter(3, Some(g.hash()), &[1, 2, 3], 2), &[1, 2]);
    assert_eq!(code(chain.extend(v3_wrong_prev).unwrap_err()), "charter_previous_mismatch");
    let v3 = signed(&charter(3, Some(v2.hash()), &[1, 2, 3], 2), &[1, 2]);
    chain.extend(v3).unwrap();
    assert_eq!(chain.versions().len(), 3);
    // A chain must start at the genesis.
    assert_eq!(code(verify_chain(&v2.hash(), &[v2]).unwrap_err()), "not_genesis");
}

#[test]
fn expiry_warns_thirty_days_ahead_and_then_refuses_trust() {
    let g = genesis();
    let chain = verify_chain(&g.hash(), &[g]).unwrap();
    let expires = chain.latest().charter.expires_ms();
    assert_eq!(chain.expiry_status(expires - EXPIRY_WARNING_MS - 1), ExpiryStatus::Valid);
    assert_eq!(chain.expiry_status(expires - 1000), ExpiryStatus::ExpiringSoon { remaining_ms: 1000 });
    assert_eq!(chain.expiry_status(expires), ExpiryStatus::Expired);
    let e = chain.check(&header("WCO", 10, 1, "classification.opinion"), expires).unwrap_err();
    assert_eq!(e.code(), "charter_expired");
}

fn header(publisher: &str, k: u8, seq: u64, doc_type: &str) -> Header {
    Header {
        format_version: 1,
        network_id: [0; 32],
        doc_type: TypeName::new(doc_type).unwrap(),
        schema_version: 1,
        publisher: OrgId::new(publisher).unwrap(),
        key: key(k).verifying_key().to_bytes(),
        seq: Seq(seq),
        prev: if seq == 1 { DocumentId::ZERO } else { DocumentId([1; 32]) },
        issued_at_ms: 0,
        validity: Validity::default(),
        references: Vec::new(),
        subjects: Vec::new(),
    }
}

#[test]
fn authority_follows_membership_key_positions_and_types() {
    let mut c = charter(1, None, &[1], 1);
    c.organizations[0].keys = vec![
        MemberKey { key: pk(&key(10)), valid_from_seq: Seq(1), revoked_at_seq: Some(Seq(5)) },
        MemberKey { key: pk(&key(11)), valid_from_seq: Seq(5), revoked_at_seq: None },
    ];
    let g = signed(&c, &[1]);
    let chain = verify_chain(&g.hash(), &[g]).unwrap();
    let now = 0;
    let check = |h: Header| chain.check(&h, now).map_err(|e| e.code());
    assert_eq!(check(header("WCO", 10, 4, "classification.opinion")), Ok(()));
    assert_eq!(check(header("WCO", 10, 5, "classification.opinion")), Err("key_revoked"));
    assert_eq!(check(header("WCO", 11, 4, "classification.opinion")), Err("key_not_valid_at_position"));
    assert_eq!(check(header("WCO", 11, 5, "classification.opinion")), Ok(()));
    assert_eq!(check(header("WCO", 12, 5, "classification.opinion")), Err("key_not_authorized"));
    assert_eq!(check(header("WTO", 11, 5, "classification.opinion")), Err("unknown_publisher"));
    assert_eq!(check(header("WCO", 11, 5, "hs.amendment")), Err("type_not_permitted"));
}

#[test]
fn bodies_that_break_the_rules_are_refused() {
    let g = charter(1, None, &[1, 2], 2);
    let mutate = |f: &dyn Fn(&mut Charter)| {
        let mut c = g.clone();
        f(&mut c);
        Charter::from_body(&c.to_body()).map(|_| ()).map_err(|e| e.to_string())
    };
    assert!(mutate(&|_| ()).is_ok());
    assert!(mutate(&|c| c.root.threshold = 3).is_err());
    assert!(mutate(&|c| c.root.threshold = 0).is_err());
    assert!(mutate(&|c| c.previous = Some(CharterHash([0; 32]))).is_err());
    assert!(mutate(&|c| c.expires = "tomorrow".into()).is_err());
    // One form of time: RFC 3339 with an upper-case T and Z (or an offset), no leap second.
    assert!(mutate(&|c| c.expires = "2030-01-01T00:00:00.5+01:00".into()).is_ok());
    for other in ["2030-01-01t00:00:00Z", "2030-01-01 00:00:00Z", "2030-01-01T00:00:00z", "2030-06-30T23:59:60Z"] {
        assert!(mutate(&|c| c.expires = other.into()).is_err(), "{other} was accepted");
    }
    assert!(mutate(&|c| c.expires = "2030-02-30T00:00:00Z".into()).is_err());
    assert!(mutate(&|c| c.organizations.push(c.organizations[0].clone())).is_err());
    assert!(mutate(&|c| c.organizations[0].country = Some("fra".into())).is_err());
    assert!(mutate(&|c| c.organizations[0].region = Some("EU".into())).is_ok());
    assert!(mutate(&|c| c.organizations[0].region = Some("eu".into())).is_err());
    let mut bad_region = g.clone();
    bad_region.organizations[0].region = Some("E".into());
    assert!(bad_region.check().unwrap_err().to_string().contains("region 'E'"));
    assert!(mutate(&|c| c.organizations[0].keys[0].revoked_at_seq = Some(Seq(0))).is_err());
    assert!(Charter::from_body(b"{\"version\":1,\"unknown\":true}").is_err());
    // The schema itself refuses a malformed chapter before serde sees it.
    let e = mutate(&|c| c.organizations[0].permissions[0].hs_chapters = Some(vec!["100".into()])).unwrap_err();
    assert!(e.contains("schemas/charter.json"), "{e}");
    // Bytes: magic, trailing bytes, truncation.
    let bytes = encode(&signed(&g, &[1, 2]));
    assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(decode(&trailing).is_err());
    let mut magic = bytes;
    magic[0] = b'X';
    assert!(decode(&magic).is_err());
}

#[test]
fn node_certificates_bind_a_peer_to_a_member_key() {
    let g = genesis();
    let chain = verify_chain(&g.hash(), &[g]).unwrap();
    let net = [9u8; 32];
    let wco = OrgId::new("WCO").unwrap();
    let peer = "12D3KooWExamplePeer";
    let cert = certify_node(&net, &wco, peer, 0, &key(10)).unwrap();
    let cert = decode_cert(&cert.bytes).unwrap();
    assert_eq!(cert.verify(&chain, &net, peer), Ok(()));
    assert_eq!(cert.verify(&chain, &net, "12D3KooWOther").unwrap_err().code(), "wrong_peer");
    assert_eq!(cert.verify(&chain, &[8; 32], peer).unwrap_err().code(), "wrong_network");
    let wrong_key = certify_node(&net, &wco, peer, 0, &key(11)).unwrap();
    assert_eq!(wrong_key.verify(&chain, &net, peer).unwrap_err().code(), "key_not_authorized");
    let stranger = certify_node(&net, &OrgId::new("XX").unwrap(), peer, 0, &key(10)).unwrap();
    assert_eq!(stranger.verify(&chain, &net, peer).unwrap_err().code(), "unknown_organization");
    let mut tampered = cert.bytes.clone();
    let n = tampered.len();
    tampered[n - 66] ^= 1; // inside issued_at, just before the signature
    assert_eq!(decode_cert(&tampered).unwrap().verify(&chain, &net, peer).unwrap_err().code(), "bad_signature");
}

#[test]
fn a_charter_body_naming_a_field_twice_is_refused() {
    let body = String::from_utf8(charter(1, None, &[1, 2], 2).to_body()).unwrap();
    assert!(Charter::from_body(body.as_bytes()).is_ok());
    let twice = body.replacen("\"version\": 1,", "\"version\": 1, \"version\": 1,", 1);
    assert_ne!(twice, body);
    let e = Charter::from_body(twice.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("appears twice"), "{e}");
}

#[test]
fn a_charter_key_that_is_not_canonical_is_refused() {
    // y = p + 3 (little-endian p = 2^255 - 19 is ed ff .. ff 7f): if it decodes at all, it is
    // another encoding of the point with y = 3, and a key has one encoding.
    let mut on_curve = 0;
    for y_over_p in 2u8..=18 {
        let mut raw = [0xffu8; 32];
        raw[0] = 0xed + y_over_p;
        raw[31] = 0x7f;
        if ed25519_dalek::VerifyingKey::from_bytes(&raw).is_ok() {
            on_curve += 1;
            assert!(PublicKey::new(raw).is_err(), "non-canonical key {} was accepted", hex::encode(raw));
        }
    }
    assert!(on_curve > 0, "no y in p+2..p+18 is on the curve: the test shows nothing");
}
