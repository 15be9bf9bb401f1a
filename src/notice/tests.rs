//! Unit tests of sealing, payload checks and the audience rules: one scenario per rule.

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use super::*;
use crate::authority::Organization;
use crate::charter::{verify_chain, Charter, Member, MemberKey, PublicKey, Root, SignedCharter};
use crate::doctype::{project, DocType};
use crate::document::{encode_and_sign, Header, Seq, TypeName, FORMAT_VERSION};

fn key(label: u8) -> SigningKey {
    SigningKey::from_bytes(&[label; 32])
}

fn org(id: &str) -> OrgId {
    OrgId::new(id).unwrap()
}

/// A notice body without its payload, with this handling and audience.
fn body(handling: &str, audience: Value) -> Value {
    json!({
        "title": { "en": "Counterfeit camera drones" },
        "validity": { "from": "2026-01-01" },
        "header": {
            "kind": "ipr_alert", "risk_area": "ipr",
            "hs": [{ "edition": "HS2022", "code": "8806.22" }],
            "region": "EU", "handling": handling
        },
        "audience": audience
    })
}

fn payload() -> Value {
    json!({ "summary": { "en": "Drones with a protected trademark, in small parcels." }, "routes": ["CN-FR"] })
}

/// A signed document of `ty` published by `publisher`, with its header projected from `body`.
fn doc_of(ty: &str, publisher: &str, body: &[u8]) -> SignedDocument {
    let doc_type = DocType::by_name(ty).unwrap();
    let value: Value = serde_json::from_slice(body).unwrap();
    let p = project(doc_type, &value).unwrap();
    let header = Header {
        format_version: FORMAT_VERSION,
        network_id: [9; 32],
        doc_type: TypeName::new(ty).unwrap(),
        schema_version: doc_type.schema_version,
        publisher: org(publisher),
        key: key(1).verifying_key().to_bytes(),
        seq: Seq::FIRST,
        prev: DocumentId::ZERO,
        issued_at_ms: 1_767_225_600_000,
        validity: p.validity,
        references: p.references,
        subjects: p.subjects,
    };
    encode_and_sign(&header, body, &key(1)).unwrap()
}

/// A sealed notice by FR for `audience`, and its sealed payload.
fn sealed_notice(audience: Value) -> (SignedDocument, Vec<u8>) {
    let sealed = seal_body_with_nonce(body("customs_only", audience).to_string().as_bytes(), &payload(), &[3; 32])
        .expect("a valid payload seals");
    let doc = doc_of(NOTICE_TYPE, "FR", &sealed.body);
    DocType::by_name(NOTICE_TYPE).unwrap().validate(&serde_json::from_slice(doc.body()).unwrap()).unwrap();
    (doc, sealed.payload)
}

fn code<T: std::fmt::Debug>(r: Result<T, NoticeError>) -> &'static str {
    r.unwrap_err().code()
}

#[test]
fn a_sealed_payload_matches_its_notice_and_stays_out_of_the_body() {
    let (doc, payload) = sealed_notice(json!({ "scope": "all_customs" }));
    assert_eq!(check_payload(&doc, &payload), Ok(()));
    let seal = sealed_ref(&doc).unwrap();
    assert_eq!(seal.bytes as usize, payload.len());
    assert_eq!(seal, SealRef::of(&payload));
    let body = String::from_utf8(doc.body().to_vec()).unwrap();
    assert!(!body.contains("protected trademark") && !body.contains("\"payload\""), "{body}");
    let sealed: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(sealed["nonce"], json!(hex::encode([3u8; 32])));
    assert_eq!(sealed["routes"], json!(["CN-FR"]));
}

#[test]
fn fresh_seals_of_one_payload_differ_so_guesses_cannot_be_confirmed() {
    let (a, seal_a) = seal(&payload()).unwrap();
    let (b, seal_b) = seal(&payload()).unwrap();
    assert_ne!(a, b);
    assert_ne!(seal_a.sha256, seal_b.sha256);
}

#[test]
fn a_payload_with_one_byte_changed_is_a_mismatch() {
    let (doc, mut payload) = sealed_notice(json!({ "scope": "all_customs" }));
    let at = payload.iter().position(|b| *b == b'D').unwrap();
    payload[at] = b'd';
    assert_eq!(code(check_payload(&doc, &payload)), "payload_mismatch");
}

#[test]
fn a_payload_of_another_length_is_a_mismatch() {
    let (doc, payload) = sealed_notice(json!({ "scope": "all_customs" }));
    let mut longer = payload.clone();
    longer.push(b' ');
    let err = check_payload(&doc, &longer).unwrap_err();
    assert_eq!(err.code(), "payload_mismatch");
    assert!(err.to_string().contains(&format!("commits to {}", payload.len())), "{err}");
    assert_eq!(code(check_payload(&doc, &payload[..payload.len() - 1])), "payload_mismatch");
    assert_eq!(code(check_payload(&doc, &[])), "payload_mismatch");
}

#[test]
fn a_payload_that_matches_its_commitment_but_not_the_schema_is_invalid() {
    // A publisher that sealed by hand, without a summary or a nonce.
    let bad = br#"{"routes":["CN-FR"]}"#;
    let mut b = body("restricted", json!({ "scope": "all_customs" }));
    b["sealed_payload"] = SealRef::of(bad).to_json();
    let doc = doc_of(NOTICE_TYPE, "FR", b.to_string().as_bytes());
    assert_eq!(code(check_payload(&doc, bad)), "payload_invalid");
    let not_json = b"\xff\xfe";
    b["sealed_payload"] = SealRef::of(not_json).to_json();
    let doc = doc_of(NOTICE_TYPE, "FR", b.to_string().as_bytes());
    assert_eq!(code(check_payload(&doc, not_json)), "payload_invalid");
}

#[test]
fn seal_refuses_what_the_payload_schema_refuses() {
    assert_eq!(code(seal(&json!({ "routes": ["CN-FR"] }))), "payload_invalid");
    assert_eq!(code(seal(&json!("a string"))), "payload_invalid");
    let mut with_nonce = payload();
    with_nonce["nonce"] = json!("00".repeat(32));
    assert_eq!(code(seal(&with_nonce)), "payload_invalid");
    let huge = json!({ "summary": { "en": "x".repeat(60_000), "fr": "x".repeat(60_000), "de": "x".repeat(60_000),
                                    "es": "x".repeat(60_000), "it": "x".repeat(60_000) } });
    assert_eq!(code(seal(&huge)), "payload_too_large");
}

#[test]
fn only_a_non_public_body_without_a_payload_is_sealed() {
    let public = body("public", json!({ "scope": "all_customs" }));
    assert_eq!(code(seal_body(public.to_string().as_bytes(), &payload())), "not_sealable");
    let mut inline = body("restricted", json!({ "scope": "all_customs" }));
    inline["payload"] = payload();
    assert_eq!(code(seal_body(inline.to_string().as_bytes(), &payload())), "not_sealable");
    assert_eq!(code(seal_body(b"[1, 2]", &payload())), "not_sealable");
}

#[test]
fn the_schema_ties_inline_payloads_to_public_handling() {
    let ty = DocType::by_name(NOTICE_TYPE).unwrap();
    let commitment = SealRef::of(b"{}").to_json();
    let mut public = body("public", json!({ "scope": "all_customs" }));
    assert!(ty.validate(&public).is_err(), "a public notice needs its payload inline");
    public["payload"] = payload();
    assert!(ty.validate(&public).is_ok());
    public["sealed_payload"] = commitment.clone();
    assert!(ty.validate(&public).is_err(), "a public notice is not sealed");

    let mut restricted = body("restricted", json!({ "scope": "all_customs" }));
    assert!(ty.validate(&restricted).is_err(), "a restricted notice needs its commitment");
    restricted["sealed_payload"] = commitment;
    assert!(ty.validate(&restricted).is_ok());
    restricted["payload"] = payload();
    assert!(ty.validate(&restricted).is_err(), "a restricted notice never carries its payload inline");
    restricted.as_object_mut().unwrap().remove("payload");
    restricted["sealed_payload"]["bytes"] = json!(SEALED_PAYLOAD_MAX_BYTES + 1);
    assert!(ty.validate(&restricted).is_err(), "the commitment bounds the payload's size");
}

#[test]
fn documents_without_a_sealed_payload_have_no_commitment() {
    let mut public = body("public", json!({ "scope": "group", "group": ["BE"] }));
    public["payload"] = payload();
    let doc = doc_of(NOTICE_TYPE, "FR", public.to_string().as_bytes());
    assert_eq!(sealed_ref(&doc), None);
    assert_eq!(code(check_payload(&doc, b"{}")), "not_sealed");
    // Its payload is in the envelope every member holds.
    assert!(may_read(&Keyring::default(), &org("US"), &doc));

    let opinion = json!({
        "title": { "en": "Opinion" }, "reference": "HSC/1",
        "product": { "description": { "en": "A product" } },
        "classification": { "edition": "HS2022", "code": "8806.22" },
        "gir": ["1"], "reasons": { "en": "Heading 8806." }
    });
    let doc = doc_of("classification.opinion", "WCO", opinion.to_string().as_bytes());
    assert_eq!(sealed_ref(&doc), None);
    assert_eq!(code(check_payload(&doc, b"{}")), "not_sealed");
}

fn member(id: &str, role: Role, region: Option<&str>, k: u8) -> Member {
    Member {
        id: org(id),
        name: id.into(),
        country: None,
        region: region.map(str::to_owned),
        role,
        keys: vec![MemberKey {
            key: PublicKey::new(key(k).verifying_key().to_bytes()).unwrap(),
            valid_from_seq: Seq(1),
            revoked_at_seq: None,
        }],
        permissions: vec![],
    }
}

/// A charter network: the WCO secretariat (no region), customs of FR, DE (EU) and US (AM), a
/// RILO in the EU and an observer in the EU.
fn charter_keyring() -> Keyring {
    let charter = Charter {
        version: 1,
        previous: None,
        expires: "2099-01-01T00:00:00Z".into(),
        root: Root { keys: vec![PublicKey::new(key(100).verifying_key().to_bytes()).unwrap()], threshold: 1 },
        organizations: vec![
            member("WCO", Role::Secretariat, None, 1),
            member("FR", Role::Customs, Some("EU"), 2),
            member("DE", Role::Customs, Some("EU"), 3),
            member("US", Role::Customs, Some("AM"), 4),
            member("RILO-WE", Role::Rilo, Some("EU"), 5),
            member("OBS", Role::Observer, Some("EU"), 6),
        ],
    };
    let mut signed = SignedCharter::unsigned(charter.to_body()).unwrap();
    signed.sign(&key(100)).unwrap();
    Keyring::from_charter(verify_chain(&signed.hash(), &[signed]).unwrap())
}

fn readers(keyring: &Keyring, doc: &SignedDocument) -> Vec<&'static str> {
    ["FR", "WCO", "DE", "US", "RILO-WE", "OBS", "XX"].into_iter().filter(|r| may_read(keyring, &org(r), doc)).collect()
}

#[test]
fn on_a_charter_network_all_customs_is_every_member_but_observers() {
    let (doc, _) = sealed_notice(json!({ "scope": "all_customs" }));
    assert_eq!(readers(&charter_keyring(), &doc), ["FR", "WCO", "DE", "US", "RILO-WE"]);
}

#[test]
fn on_a_charter_network_a_region_is_its_customs_members_and_the_publisher() {
    let (eu, _) = sealed_notice(json!({ "scope": "region", "region": "EU" }));
    assert_eq!(readers(&charter_keyring(), &eu), ["FR", "DE", "RILO-WE"]);
    let (am, _) = sealed_notice(json!({ "scope": "region", "region": "AM" }));
    // The publisher FR is in the EU, and reads its own notice all the same.
    assert_eq!(readers(&charter_keyring(), &am), ["FR", "US"]);
    let (nowhere, _) = sealed_notice(json!({ "scope": "region", "region": "ESA" }));
    assert_eq!(readers(&charter_keyring(), &nowhere), ["FR"]);
}

#[test]
fn on_a_charter_network_a_group_is_its_listed_members_whatever_their_role() {
    let (doc, _) = sealed_notice(json!({ "scope": "group", "group": ["DE", "OBS", "XX"] }));
    // XX is listed but is no member; FR is the publisher.
    assert_eq!(readers(&charter_keyring(), &doc), ["FR", "DE", "OBS"]);
}

#[test]
fn on_a_keyring_network_there_are_no_roles_or_regions() {
    let mut keyring = Keyring::default();
    for (id, k) in [("FR", 2), ("DE", 3), ("US", 4), ("OBS", 6)] {
        keyring
            .insert(Organization {
                id: org(id),
                name: id.into(),
                keys: vec![hex::encode(key(k).verifying_key().to_bytes())],
                types: None,
            })
            .unwrap();
    }
    let (all, _) = sealed_notice(json!({ "scope": "all_customs" }));
    assert_eq!(readers(&keyring, &all), ["FR", "DE", "US", "OBS"], "every organization in the keyring, no one else");
    let (region, _) = sealed_notice(json!({ "scope": "region", "region": "EU" }));
    assert_eq!(readers(&keyring, &region), ["FR"], "no regions without a charter: the publisher only");
    let (group, _) = sealed_notice(json!({ "scope": "group", "group": ["US", "XX"] }));
    assert_eq!(readers(&keyring, &group), ["FR", "US"]);
}

#[test]
fn the_audience_is_read_from_the_signed_body() {
    let (doc, _) = sealed_notice(json!({ "scope": "group", "group": ["DE", "BE"] }));
    assert_eq!(audience(&doc), Some(Audience::Group(vec![org("DE"), org("BE")])));
    let (doc, _) = sealed_notice(json!({ "scope": "region", "region": "EU" }));
    assert_eq!(audience(&doc), Some(Audience::Region("EU".into())));
}
