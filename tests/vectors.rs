//! The checked-in test vectors agree with this build: regenerating gives the same file, every
//! valid vector verifies with its stated id and signature, and every invalid vector is refused
//! with its stated error.

use entrepot::authority::Keyring;
use entrepot::document::{decode, verify, DocumentId};
use entrepot::ingest::check;
use serde_json::Value;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/documents.json");

fn load() -> Value {
    serde_json::from_str(&std::fs::read_to_string(PATH).expect("tests/vectors/documents.json exists")).unwrap()
}

#[test]
fn checked_in_vectors_equal_a_fresh_generation() {
    let fresh = entrepot::vectors::generate();
    if std::env::var_os("ENTREPOT_UPDATE_VECTORS").is_some() {
        std::fs::write(PATH, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    assert_eq!(
        load(),
        fresh,
        "the format changed: regenerate with ENTREPOT_UPDATE_VECTORS=1 and update docs/PROTOCOL.md"
    );
}

fn network(v: &Value) -> [u8; 32] {
    hex::decode(v["network"]["id"].as_str().unwrap()).unwrap().try_into().unwrap()
}

fn keyring(v: &Value) -> Keyring {
    Keyring::from_json(&v["keyring"].to_string()).unwrap()
}

#[test]
fn every_valid_vector_verifies_with_its_id_and_signature() {
    let v = load();
    let net = network(&v);
    let ring = keyring(&v);
    let valid = v["valid"].as_array().unwrap();
    assert_eq!(valid.len(), 3);
    let mut prev = DocumentId::ZERO;
    for case in valid {
        let bytes = hex::decode(case["envelope"].as_str().unwrap()).unwrap();
        let doc = decode(&bytes).unwrap();
        assert_eq!(doc.id.to_hex(), case["id"].as_str().unwrap(), "{}", case["name"]);
        assert_eq!(hex::encode(doc.signature()), case["signature"].as_str().unwrap());
        assert_eq!(doc.header.seq.0, case["seq"].as_u64().unwrap());
        assert_eq!(doc.header.prev, prev, "feed chain");
        let body: Value = serde_json::from_slice(doc.body()).unwrap();
        assert_eq!(body, case["body"]);
        verify(doc.clone(), &net).unwrap();
        check(bytes, &net, &ring, entrepot::clock::now_ms()).unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
        prev = doc.id;
    }
}

#[test]
fn every_invalid_vector_is_refused_with_its_error() {
    let v = load();
    let net = network(&v);
    let ring = keyring(&v);
    let invalid = v["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 14);
    for case in invalid {
        let bytes = hex::decode(case["envelope"].as_str().unwrap()).unwrap();
        let err = check(bytes, &net, &ring, entrepot::clock::now_ms())
            .err()
            .unwrap_or_else(|| panic!("{} was accepted", case["name"]));
        assert_eq!(err.code(), case["error"].as_str().unwrap(), "{}: {err}", case["name"]);
    }
}

const CHARTER_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/charter.json");

#[test]
fn charter_vectors_equal_a_fresh_generation_and_verify_as_stated() {
    use entrepot::charter::{decode, decode_cert, verify_chain, CharterHash};
    let fresh = entrepot::vectors::generate_charter();
    if std::env::var_os("ENTREPOT_UPDATE_VECTORS").is_some() {
        std::fs::write(CHARTER_PATH, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(CHARTER_PATH).expect("charter vectors")).unwrap();
    assert_eq!(v, fresh, "the charter format changed: regenerate with ENTREPOT_UPDATE_VECTORS=1");

    let bytes = |c: &Value| hex::decode(c["bytes"].as_str().unwrap()).unwrap();
    let pinned = CharterHash::from_hex(v["genesis_hash"].as_str().unwrap()).unwrap();
    let chain: Vec<_> = v["valid_chain"].as_array().unwrap().iter().map(|c| decode(&bytes(c)).unwrap()).collect();
    for (c, case) in chain.iter().zip(v["valid_chain"].as_array().unwrap()) {
        assert_eq!(c.hash().to_hex(), case["hash"].as_str().unwrap());
        assert_eq!(c.body, case["body"].as_str().unwrap().as_bytes());
    }
    let genesis_only = verify_chain(&pinned, &chain[..1]).unwrap();
    assert_eq!(verify_chain(&pinned, &chain).unwrap().latest().charter.version, 2);
    for bad in v["invalid_next"].as_array().unwrap() {
        let mut trusted = genesis_only.clone();
        let next = decode(&bytes(&bad["case"])).unwrap();
        assert_eq!(trusted.extend(next).unwrap_err().code(), bad["error"].as_str().unwrap(), "{}", bad["case"]["name"]);
    }
    let net: [u8; 32] = hex::decode(v["network_id"].as_str().unwrap()).unwrap().try_into().unwrap();
    let cert = decode_cert(&bytes(&v["node_cert"])).unwrap();
    cert.verify(&genesis_only, &net, v["node_cert"]["peer_id"].as_str().unwrap()).unwrap();
}

/// A body in which one object names a field twice: two JSON parsers may read different content
/// from one signature, so it is refused wherever signed JSON enters (§5.2).
fn twice_named_body() -> Vec<u8> {
    br#"{"title":{"en":"Twice named"},"reference":"HSC/1","product":{"description":{"en":"A drone."}},"classification":{"edition":"HS2022","code":"8806.22"},"classification":{"edition":"HS2022","code":"8525.89"},"gir":["1"],"reasons":{"en":"-"}}"#.to_vec()
}

#[test]
fn a_body_naming_a_field_twice_is_refused_at_check_and_at_publish() {
    use entrepot::authority::Organization;
    use entrepot::document::{encode_and_sign, Edition, Header, HsCode, HsSubject, OrgId, Seq, TypeName, Validity};
    let key = entrepot::vectors::vector_key("WCO");
    let net = [7u8; 32];
    let mut ring = Keyring::default();
    ring.insert(Organization {
        id: OrgId::new("WCO").unwrap(),
        name: "WCO".into(),
        keys: vec![hex::encode(key.verifying_key().to_bytes())],
        types: None,
    })
    .unwrap();
    // The header indexes the code a last-value-wins parser reads.
    let header = Header {
        format_version: 1,
        network_id: net,
        doc_type: TypeName::new("classification.opinion").unwrap(),
        schema_version: 1,
        publisher: OrgId::new("WCO").unwrap(),
        key: key.verifying_key().to_bytes(),
        seq: Seq(1),
        prev: DocumentId::ZERO,
        issued_at_ms: 0,
        validity: Validity::default(),
        references: vec![],
        subjects: vec![HsSubject {
            edition: Edition::from_year(2022).unwrap(),
            code: HsCode::parse("852589").unwrap(),
        }],
    };
    let doc = encode_and_sign(&header, &twice_named_body(), &key).unwrap();
    let err = check(doc.bytes, &net, &ring, 0).expect_err("a twice-named field was accepted");
    assert_eq!(err.code(), "body_not_json", "{err}");

    let dir = tempfile::tempdir().unwrap();
    let store = entrepot::store::Store::open(dir.path(), &net).unwrap();
    let publisher = entrepot::publish::Publisher::new(OrgId::new("WCO").unwrap(), key);
    let err = publisher
        .publish(&store, &ring, &net, "classification.opinion", &twice_named_body(), 0)
        .expect_err("publish accepted a twice-named field");
    assert!(err.to_string().contains("appears twice"), "{err}");
    assert_eq!(store.head(&OrgId::new("WCO").unwrap()).unwrap(), None, "nothing is stored");
}
