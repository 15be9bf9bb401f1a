//! The conformance vectors (docs/CONFORMANCE.md): made deterministically from fixed seeds,
//! checked into `tests/vectors/*.json`, and compared byte for byte with a fresh generation by
//! `tests/vectors.rs`, so the files, this code and docs/PROTOCOL.md cannot drift apart.
//! Documents and charters here; Ed25519 edge cases in `ed25519.rs`; bundles and sync messages
//! in `formats.rs`; the transparency log (trees, proofs, checkpoints, cosignatures) in `tlog.rs`.

pub mod ed25519;
pub mod formats;
pub mod tlog;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::authority::{Keyring, Organization};
use crate::config::network_id;
use crate::doctype::{project, DocType};
use crate::document::envelope_for_vectors::encode_and_sign_in_domain;
use crate::document::{
    date_to_days_opt, encode_and_sign, DocumentId, Header, OrgId, Seq, SignedDocument, TypeName, DOCUMENT_DOMAIN,
    FORMAT_VERSION,
};

/// Network name used by every vector.
pub const VECTOR_NETWORK: &str = "entrepot-test-vectors";
/// Issue time of every vector: 2024-07-01T00:00:00Z.
const ISSUED_AT_MS: i64 = 1_719_792_000_000;

/// The signing key derived from a label: SHA-256 of `"entrepot test vector key " || label`.
pub fn vector_key(label: &str) -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(format!("entrepot test vector key {label}").as_bytes()).into();
    SigningKey::from_bytes(&seed)
}

fn header_for(org: &str, key: &SigningKey, ty: &str, body: &Value, seq: u64, prev: DocumentId) -> Header {
    let doc_type = DocType::by_name(ty).expect("vector types are known");
    let p = project(doc_type, body).expect("vector bodies project");
    Header {
        format_version: FORMAT_VERSION,
        network_id: network_id(VECTOR_NETWORK),
        doc_type: TypeName::new(ty).expect("type name"),
        schema_version: doc_type.schema_version,
        publisher: OrgId::new(org).expect("org id"),
        key: key.verifying_key().to_bytes(),
        seq: Seq(seq),
        prev,
        issued_at_ms: ISSUED_AT_MS,
        validity: p.validity,
        references: p.references,
        subjects: p.subjects,
    }
}

fn sign(header: &Header, body: &Value, key: &SigningKey) -> SignedDocument {
    encode_and_sign(header, body.to_string().as_bytes(), key).expect("vector documents encode")
}

fn opinion_body() -> Value {
    json!({
        "title": { "en": "Classification of an unmanned aircraft with a camera", "fr": "Classement d'un aéronef sans pilote équipé d'une caméra" },
        "reference": "HSC/66/2020/1",
        "product": { "description": { "en": "Quadcopter of a weight of 0.9 kg, with a built-in camera, remotely controlled." } },
        "classification": { "edition": "HS2022", "code": "8806.22" },
        "cites": [{ "edition": "HS2022", "code": "8525.89" }],
        "gir": ["1", "6"],
        "reasons": { "en": "Heading 8806 covers unmanned aircraft; the camera does not give the whole its essential character." },
        "validity": { "from": "2022-01-01" }
    })
}

fn amendment_body() -> Value {
    json!({
        "title": { "en": "HS2022 amendment: new heading 8549 (electrical and electronic waste)" },
        "recommendation": { "reference": "Article 16 Recommendation amending the Nomenclature (HS2022 cycle)", "notified": "2019-07-04" },
        "edition_from": "HS2017",
        "edition_to": "HS2022",
        "set_number": 1,
        "entry_into_force": "2022-01-01",
        "validity": { "from": "2022-01-01" },
        "operations": [
            { "op": "insert", "target": { "kind": "heading", "code": "8549" },
              "text": { "en": "Electrical and electronic waste and scrap." } }
        ]
    })
}

fn hex_of(doc: &SignedDocument) -> Value {
    json!({
        "envelope": hex::encode(&doc.bytes),
        "id": doc.id.to_hex(),
        "signature": hex::encode(doc.signature()),
        "signed_part_len": doc.signed_part().len(),
    })
}

fn invalid(name: &str, description: &str, bytes: &[u8], error: &str) -> Value {
    json!({ "name": name, "description": description, "envelope": hex::encode(bytes), "error": error })
}

/// Byte offset of the key field in an envelope with these type and publisher names.
fn key_offset(doc_type: &str, publisher: &str) -> usize {
    8 + 1 + 32 + 1 + doc_type.len() + 2 + 1 + publisher.len()
}

/// Generates every vector as JSON.
pub fn generate() -> Value {
    let wco = vector_key("WCO");
    let intruder = vector_key("intruder");
    let wco_pub = hex::encode(wco.verifying_key().to_bytes());

    let mut keyring = Keyring::default();
    keyring
        .insert(Organization {
            id: OrgId::new("WCO").unwrap(),
            name: "World Customs Organization".into(),
            keys: vec![wco_pub.clone()],
            types: None,
        })
        .expect("vector keyring");

    let opinion = opinion_body();
    let d1 = sign(&header_for("WCO", &wco, "classification.opinion", &opinion, 1, DocumentId::ZERO), &opinion, &wco);
    let amendment = amendment_body();
    let d2 = sign(&header_for("WCO", &wco, "hs.amendment", &amendment, 2, d1.id), &amendment, &wco);
    let withdraw = json!({
        "title": { "en": "Withdrawal of opinion HSC/66/2020/1" },
        "target": d1.id.to_hex(),
        "reason": { "en": "Superseded by the Explanatory Notes to heading 8806." },
        "validity": { "from": "2024-07-01" }
    });
    let d3 = sign(&header_for("WCO", &wco, "lifecycle.withdraw", &withdraw, 3, d2.id), &withdraw, &wco);

    let mut cases = Vec::new();
    let b = &d1.bytes;
    let body_start = d1.bytes.len() - 64 - d1.body().len();

    let mut m = b.clone();
    let i = body_start + d1.body().iter().position(|c| *c == b'Q').expect("body has a Q");
    m[i] = b'q';
    cases.push(invalid("body_altered", "one body byte changed after signing ('Q' to 'q')", &m, "bad_signature"));

    let mut m = b.clone();
    let n = m.len();
    m[n - 1] ^= 0x01;
    cases.push(invalid("signature_altered", "last signature bit flipped", &m, "bad_signature"));

    // s + L: the same signature with a non-canonical scalar; verify_strict must refuse it.
    let mut m = b.clone();
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let s_start = n - 32;
    let mut carry = 0u16;
    for k in 0..32 {
        let sum = m[s_start + k] as u16 + l[k] as u16 + carry;
        m[s_start + k] = sum as u8;
        carry = sum >> 8;
    }
    cases.push(invalid("non_canonical_s", "signature scalar S replaced by S + L (malleated)", &m, "bad_signature"));

    let mut m = b.clone();
    let k = key_offset("classification.opinion", "WCO");
    m[k..k + 32].copy_from_slice(&[1u8].iter().chain([0u8; 31].iter()).copied().collect::<Vec<_>>());
    cases.push(invalid("weak_key", "key replaced by the identity point (small order)", &m, "weak_key"));

    let mut m = b.clone();
    m.push(0);
    cases.push(invalid("trailing_byte", "one zero byte appended after the signature", &m, "trailing_bytes"));

    cases.push(invalid("truncated", "last byte of the signature removed", &b[..b.len() - 1], "truncated"));

    let wrong_domain = encode_and_sign_in_domain(&d1.header, d1.body(), &wco, b"entrepot/charter/v1").expect("encode");
    cases.push(invalid(
        "wrong_domain",
        "signed under the domain \"entrepot/charter/v1\" instead of \"entrepot/document/v1\"",
        &wrong_domain.bytes,
        "bad_signature",
    ));

    let mut other = d1.header.clone();
    other.network_id = network_id("another-network");
    let wrong_net = encode_and_sign(&other, d1.body(), &wco).expect("encode");
    cases.push(invalid(
        "wrong_network",
        "validly signed for the network \"another-network\"",
        &wrong_net.bytes,
        "wrong_network",
    ));

    let mut m = b.clone();
    m[0] = b'X';
    cases.push(invalid("bad_magic", "first byte changed", &m, "bad_magic"));

    let mut m = b.clone();
    m[8] = 2;
    cases.push(invalid("unsupported_version", "format version byte set to 2", &m, "unsupported_version"));

    // The opinion has two subjects of six digits each; swapping them breaks canonical order.
    let mut m = b.clone();
    let subj_start = d1.signed_part().len() - d1.body().len() - 4 - 2 * 9;
    let (first, second) = (m[subj_start..subj_start + 9].to_vec(), m[subj_start + 9..subj_start + 18].to_vec());
    m[subj_start..subj_start + 9].copy_from_slice(&second);
    m[subj_start + 9..subj_start + 18].copy_from_slice(&first);
    cases.push(invalid("unsorted_subjects", "the two HS subjects swapped (not in canonical order)", &m, "bad_field"));

    let mut h = d1.header.clone();
    h.subjects.pop();
    let mismatch = encode_and_sign(&h, d1.body(), &wco).expect("encode");
    cases.push(invalid(
        "header_mismatch",
        "validly signed, but the header omits an HS subject the body cites",
        &mismatch.bytes,
        "header_mismatch",
    ));

    let mut bad_body = opinion.clone();
    bad_body.as_object_mut().unwrap().remove("gir");
    let schema_bad =
        sign(&header_for("WCO", &wco, "classification.opinion", &opinion, 1, DocumentId::ZERO), &bad_body, &wco);
    cases.push(invalid(
        "schema_invalid",
        "validly signed, but the body lacks the required 'gir'",
        &schema_bad.bytes,
        "schema_invalid",
    ));

    let mut h = d1.header.clone();
    h.doc_type = TypeName::new("hs.tariff").unwrap();
    let unknown = encode_and_sign(&h, d1.body(), &wco).expect("encode");
    cases.push(invalid("unknown_type", "validly signed, of a type no schema defines", &unknown.bytes, "unknown_type"));

    let mut h = header_for("WCO", &intruder, "classification.opinion", &opinion, 1, DocumentId::ZERO);
    h.publisher = OrgId::new("WCO").unwrap();
    let forged = sign(&h, &opinion, &intruder);
    cases.push(invalid(
        "key_not_in_keyring",
        "validly signed as WCO by a key the keyring does not hold for WCO",
        &forged.bytes,
        "key_not_authorized",
    ));

    extra_document_cases(&mut cases, &d1, &opinion, &wco);

    let valid: Vec<Value> = [
        json!({ "name": "opinion_seq1", "type": "classification.opinion", "body": opinion, "seq": 1 }),
        json!({ "name": "amendment_seq2", "type": "hs.amendment", "body": amendment, "seq": 2 }),
        json!({ "name": "withdraw_seq3", "type": "lifecycle.withdraw", "body": withdraw, "seq": 3 }),
    ]
    .into_iter()
    .zip([&d1, &d2, &d3])
    .map(|(mut v, d)| {
        v.as_object_mut().expect("object").extend(hex_of(d).as_object().expect("object").clone());
        v
    })
    .collect();
    json!({
        "about": "entrepot document format test vectors; see docs/PROTOCOL.md. Regenerate with ENTREPOT_UPDATE_VECTORS=1 cargo test --release --test vectors.",
        "network": { "name": VECTOR_NETWORK, "id": hex::encode(network_id(VECTOR_NETWORK)) },
        "domain": String::from_utf8_lossy(DOCUMENT_DOMAIN),
        "keyring": serde_json::from_str::<Value>(&keyring.to_json()).expect("keyring JSON"),
        "keys": [{
            "label": "WCO",
            "seed": hex::encode(wco.to_bytes()),
            "public": wco_pub,
        }],
        "valid": valid,
        "invalid": cases,
    })
}

/// The cases that pin the decoding order (§3.4), the key rules (§3.1) and strict JSON (§5.2).
fn extra_document_cases(cases: &mut Vec<Value>, d1: &SignedDocument, opinion: &Value, wco: &SigningKey) {
    let b = &d1.bytes;
    cases.push(invalid("shorter_than_the_magic", "the first 5 bytes of the magic only", &b[..5], "bad_magic"));
    cases.push(invalid("magic_only", "the 8 bytes of the magic, no format version", &b[..8], "truncated"));
    cases.push(invalid("cut_in_doc_type", "cut inside the doc_type string", &b[..50], "truncated"));
    let mut m = b[..70].to_vec();
    m[42] = b'C';
    cases.push(invalid(
        "bad_field_before_the_cut",
        "doc_type starts with an upper-case letter, and the envelope is cut after it: the first faulty field decides",
        &m,
        "bad_field",
    ));
    let k = key_offset("classification.opinion", "WCO");
    let flags_at = k + 32 + 8 + 32 + 8;
    let mut m = b.clone();
    m[flags_at + 1..flags_at + 5].copy_from_slice(&2_932_897i32.to_be_bytes());
    cases.push(invalid("date_after_9999", "effective_from is 10000-01-01", &m, "bad_field"));
    let mut m = b.clone();
    let from_days = date_to_days_opt(d1.header.validity.from).expect("the opinion has a validity");
    m[flags_at] |= 0b10;
    m[flags_at + 5..flags_at + 9].copy_from_slice(&(from_days - 1).to_be_bytes());
    cases.push(invalid(
        "effective_to_before_from",
        "effective_to set to the day before effective_from",
        &m,
        "bad_field",
    ));
    let mut m = b.clone();
    m[flags_at] |= 0b100;
    cases.push(invalid("unknown_validity_flag", "validity flag bit 2 set", &m, "bad_field"));

    // p + k (p = 2^255 - 19, little-endian ed ff .. ff 7f) for the smallest k whose y is on the
    // curve and not of small order.
    let mut y_over_p = ed25519::non_canonical_usable_encoding();
    let mut m = b.clone();
    m[k..k + 32].copy_from_slice(&y_over_p);
    cases.push(invalid(
        "key_not_canonical",
        "key replaced by p + k, a non-canonical encoding (y >= p) of a point of large order",
        &m,
        "bad_key",
    ));
    y_over_p[0] = 0xed + 1; // p + 1: y = 1, the identity
    let mut m = b.clone();
    m[k..k + 32].copy_from_slice(&y_over_p);
    cases.push(invalid(
        "weak_key_not_canonical",
        "key replaced by p + 1, the identity encoded non-canonically: the encoding is checked first",
        &m,
        "bad_key",
    ));

    let resign = |body: &[u8]| encode_and_sign(&d1.header, body, wco).expect("encode").bytes;
    let text = opinion.to_string();
    let mut not_utf8 = text.clone().into_bytes();
    let at = text.find("Quadcopter").expect("the opinion describes a quadcopter");
    not_utf8[at] = 0xff;
    cases.push(invalid("body_not_utf8", "validly signed; one body byte is 0xff", &resign(&not_utf8), "bad_field"));
    let twice = text.replacen(r#""gir":["1","6"]"#, r#""gir":["1"],"gir":["1","6"]"#, 1);
    assert_ne!(twice, text, "the opinion body has its gir");
    cases.push(invalid(
        "body_names_a_field_twice",
        "validly signed; one object of the body names \"gir\" twice",
        &resign(twice.as_bytes()),
        "body_not_json",
    ));
    let surrogate = text.replacen("Quadcopter", r"\ud800Quadcopter", 1);
    cases.push(invalid(
        "body_lone_surrogate",
        "validly signed; a body string holds the escape \\ud800 alone",
        &resign(surrogate.as_bytes()),
        "body_not_json",
    ));
    let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(127), "]".repeat(127));
    cases.push(invalid(
        "body_nested_128_deep",
        "validly signed; the body nests 128 levels of objects and arrays",
        &resign(deep.as_bytes()),
        "body_not_json",
    ));
    let mut h = d1.header.clone();
    h.schema_version = 2;
    let v2 = encode_and_sign(&h, d1.body(), wco).expect("encode");
    cases.push(invalid(
        "unknown_schema_version",
        "validly signed as schema version 2",
        &v2.bytes,
        "unknown_schema_version",
    ));
}

/// Test vectors for the charter and node certificate formats (docs/PROTOCOL.md §10–11), checked
/// into `tests/vectors/charter.json`. Ed25519 signing is deterministic, so this is too.
pub fn generate_charter() -> Value {
    use crate::charter::{
        certify_node, encode, Charter, Member, MemberKey, Permission, PublicKey, Role, Root, SignedCharter,
    };
    let pk = |label: &str| PublicKey::new(vector_key(label).verifying_key().to_bytes()).expect("vector key");
    let wco = |keys: Vec<MemberKey>| Member {
        id: OrgId::new("WCO").expect("org id"),
        name: "World Customs Organization".into(),
        country: None,
        region: None,
        role: Role::Secretariat,
        keys,
        permissions: vec![Permission {
            doc_type: TypeName::new("hs.amendment").expect("type"),
            hs_chapters: None,
            regions: None,
        }],
    };
    let signed = |c: &Charter, signers: &[&str]| {
        let mut s = SignedCharter::unsigned(c.to_body()).expect("vector charter is valid");
        for label in signers {
            s.sign(&vector_key(label)).expect("vector signature");
        }
        s
    };
    let case = |name: &str, s: &SignedCharter| {
        json!({ "name": name, "hash": s.hash().to_hex(), "body": String::from_utf8_lossy(&s.body),
                "bytes": hex::encode(encode(s)) })
    };
    let genesis = Charter {
        version: 1,
        previous: None,
        expires: "2030-01-01T00:00:00Z".into(),
        root: Root { keys: vec![pk("root-a"), pk("root-b"), pk("root-c")], threshold: 2 },
        organizations: vec![wco(vec![MemberKey { key: pk("wco"), valid_from_seq: Seq(1), revoked_at_seq: None }])],
    };
    let g = signed(&genesis, &["root-a", "root-b"]);
    // Version 2 rotates WCO's key at position 100 and replaces root key a by d.
    let v2 = Charter {
        version: 2,
        previous: Some(g.hash()),
        root: Root { keys: vec![pk("root-b"), pk("root-c"), pk("root-d")], threshold: 2 },
        organizations: vec![wco(vec![
            MemberKey { key: pk("wco"), valid_from_seq: Seq(1), revoked_at_seq: Some(Seq(100)) },
            MemberKey { key: pk("wco-2"), valid_from_seq: Seq(100), revoked_at_seq: None },
        ])],
        ..genesis.clone()
    };
    let v2_ok = signed(&v2, &["root-a", "root-b", "root-d"]);
    let v2_old_only = signed(&v2, &["root-a", "root-b"]);
    let mut v2_bad_sig = v2_ok.clone();
    v2_bad_sig.signatures[0].signature[10] ^= 0x01;
    let v3_gap =
        signed(&Charter { version: 3, previous: Some(g.hash()), ..v2.clone() }, &["root-b", "root-c", "root-d"]);
    let net = g.hash().0;
    let peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let cert = certify_node(&net, &OrgId::new("WCO").expect("org id"), peer, ISSUED_AT_MS, &vector_key("wco"))
        .expect("vector certificate");
    let org = |id: &str| OrgId::new(id).expect("org id");
    let cert_case = |name: &str, bytes: &[u8], error: &str| json!({ "name": name, "bytes": hex::encode(bytes), "peer_id": peer, "error": error });
    let other_net = certify_node(&[0x22; 32], &org("WCO"), peer, ISSUED_AT_MS, &vector_key("wco")).expect("cert");
    let not_member = certify_node(&net, &org("WTO"), peer, ISSUED_AT_MS, &vector_key("wco")).expect("cert");
    let by_root = certify_node(&net, &org("WCO"), peer, ISSUED_AT_MS, &vector_key("root-a")).expect("cert");
    let other_peer = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq";
    let for_other = certify_node(&net, &org("WCO"), other_peer, ISSUED_AT_MS, &vector_key("wco")).expect("cert");
    let mut damaged = cert.bytes.clone();
    let n = damaged.len();
    damaged[n - 1] ^= 0x01;
    let mut trailing = cert.bytes.clone();
    trailing.push(0);
    let mut lower = cert.bytes.clone();
    lower[8 + 1 + 32 + 1] = b'w';
    let invalid_certs = vec![
        cert_case("another_network", &other_net.bytes, "wrong_network"),
        cert_case("not_a_member", &not_member.bytes, "unknown_organization"),
        cert_case("signed_by_a_root_key", &by_root.bytes, "key_not_authorized"),
        cert_case("signature_altered", &damaged, "bad_signature"),
        cert_case("for_another_peer", &for_other.bytes, "wrong_peer"),
        cert_case("cut_short", &cert.bytes[..cert.bytes.len() - 1], "cert_malformed"),
        cert_case("trailing_byte", &trailing, "cert_malformed"),
        cert_case("organization_lower_case", &lower, "cert_malformed"),
        cert_case("a_charter_magic", &encode(&g)[..], "cert_malformed"),
    ];
    let file_case =
        |name: &str, bytes: &[u8]| json!({ "name": name, "bytes": hex::encode(bytes), "error": "charter_invalid" });
    let g_bytes = encode(&g);
    let body_at = 8 + 1 + 4;
    let mut unsorted = g_bytes.clone();
    let sigs_at = body_at + g.body.len() + 1;
    let (first, second) = (unsorted[sigs_at..sigs_at + 96].to_vec(), unsorted[sigs_at + 96..sigs_at + 192].to_vec());
    unsorted[sigs_at..sigs_at + 96].copy_from_slice(&second);
    unsorted[sigs_at + 96..sigs_at + 192].copy_from_slice(&first);
    let mut trailing_file = g_bytes.clone();
    trailing_file.push(0);
    let twice_body = String::from_utf8(g.body.clone()).expect("UTF-8 body").replacen(
        "\"version\": 1,",
        "\"version\": 1,\n  \"version\": 1,",
        1,
    );
    let twice = encode(&SignedCharter { body: twice_body.into_bytes(), ..g.clone() });
    let mut bad_magic = g_bytes.clone();
    bad_magic[0] = b'X';
    let invalid_files = vec![
        file_case("bad_magic", &bad_magic),
        file_case("cut_short", &g_bytes[..g_bytes.len() - 1]),
        file_case("trailing_byte", &trailing_file),
        file_case("signatures_not_sorted_by_key", &unsorted),
        file_case("body_names_a_field_twice", &twice),
    ];
    let keys: Vec<Value> = ["root-a", "root-b", "root-c", "root-d", "wco", "wco-2"]
        .iter()
        .map(|l| json!({ "label": l, "seed": hex::encode(vector_key(l).to_bytes()), "public": hex::encode(pk(l).0) }))
        .collect();
    json!({
        "keys": keys,
        "genesis_hash": g.hash().to_hex(),
        "network_id": hex::encode(net),
        "valid_chain": [case("genesis", &g), case("version 2: rotation, signed by a, b (old root) and b, d (new root)", &v2_ok)],
        "invalid_next": [
            { "case": case("version 2 signed by the old root only", &v2_old_only), "error": "too_few_signatures" },
            { "case": case("version 2 with a damaged signature", &v2_bad_sig), "error": "bad_signature" },
            { "case": case("version 3 right after the genesis", &v3_gap), "error": "charter_version_gap" },
            { "case": case("the genesis again", &g), "error": "charter_version_replayed" }
        ],
        "invalid_files": invalid_files,
        "node_cert": { "organization": "WCO", "peer_id": peer, "key": "wco", "issued_at_ms": ISSUED_AT_MS,
                       "bytes": hex::encode(&cert.bytes) },
        "invalid_node_certs": invalid_certs,
    })
}

/// The sync message vectors, built around a document, a charter file and a certificate of the
/// other vector sets.
pub fn generate_sync() -> Value {
    let unhex = |v: &Value| hex::decode(v.as_str().expect("hex string")).expect("hex");
    let documents = generate();
    let charter = generate_charter();
    formats::generate_sync(
        &unhex(&documents["valid"][0]["envelope"]),
        &unhex(&charter["valid_chain"][0]["bytes"]),
        &unhex(&charter["node_cert"]["bytes"]),
    )
}
