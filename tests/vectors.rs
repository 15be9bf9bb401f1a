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

/// Compares a checked-in vector file with a fresh generation, byte for byte (the file is the
/// generation pretty-printed, with a final newline); `ENTREPOT_UPDATE_VECTORS=1` rewrites it.
fn fresh_equals_file(name: &str, fresh: &Value) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(fresh).unwrap() + "\n";
    if std::env::var_os("ENTREPOT_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let held = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        held == text,
        "{name} differs from a fresh generation: regenerate with ENTREPOT_UPDATE_VECTORS=1 and update docs/PROTOCOL.md"
    );
    serde_json::from_str(&held).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn every_vector_file_is_byte_for_byte_a_fresh_generation() {
    fresh_equals_file("documents.json", &entrepot::vectors::generate());
    fresh_equals_file("charter.json", &entrepot::vectors::generate_charter());
}

#[test]
fn ed25519_edge_cases_get_the_verdicts_the_specification_gives() {
    let v = fresh_equals_file("ed25519.json", &entrepot::vectors::ed25519::generate());
    let message = unhex(&v["message"]);
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    for case in cases {
        let key: [u8; 32] = unhex(&case["key"]).try_into().unwrap();
        let sig: [u8; 64] = unhex(&case["signature"]).try_into().unwrap();
        let verdict = match entrepot::document::verify_signature(&key, &message, &sig) {
            Ok(()) => "valid",
            Err(e) => e.code(),
        };
        assert_eq!(verdict, case["verdict"].as_str().unwrap(), "{}", case["name"]);
    }
    let verdicts: Vec<&str> = cases.iter().map(|c| c["verdict"].as_str().unwrap()).collect();
    for expected in ["valid", "bad_key", "weak_key", "bad_signature"] {
        assert!(verdicts.contains(&expected), "no case with the verdict {expected}");
    }
}

#[test]
fn bundle_vectors_read_as_stated() {
    use entrepot::bundle::BundleReader;
    let v = fresh_equals_file("bundles.json", &entrepot::vectors::formats::generate_bundles(&load()));
    let docs = load();
    let (net, ring) = (network(&docs), keyring(&docs));
    for case in v["cases"].as_array().unwrap() {
        let bytes = unhex(&case["bytes"]);
        // Each envelope read gives its id or its error; a framing error while reading the
        // documents ends the list; an error in the header leaves it empty.
        let mut outcomes = Vec::new();
        // In version 2, each document's place against the bundle's checkpoint of its feed.
        let mut inclusion = Vec::new();
        let mut header_read = false;
        let error = (|| {
            let mut reader = BundleReader::new(&bytes[..])?;
            reader.keyring()?;
            header_read = true;
            let feeds = reader
                .trust
                .as_ref()
                .map(|t| entrepot::bundle::audit::open_checkpoints(&net, &ring, &t.checkpoints).unwrap());
            while let Some((envelope, proof)) = reader.next_entry()? {
                outcomes.push(match check(envelope, &net, &ring, entrepot::clock::now_ms()) {
                    Ok(d) => {
                        let h = &d.doc().header;
                        if let Some(feeds) = &feeds {
                            let placed = entrepot::bundle::audit::prove_inclusion(
                                feeds,
                                &d.doc().id,
                                &h.publisher,
                                h.seq,
                                &proof,
                            );
                            inclusion.push(placed.map_or_else(|e| e.code().to_owned(), |_| "included".to_owned()));
                        }
                        d.doc().id.to_hex()
                    }
                    Err(e) => e.code().to_owned(),
                });
            }
            Ok::<_, entrepot::bundle::BundleError>(())
        })()
        .err()
        .map(|e| e.code());
        let name = &case["name"];
        assert_eq!(error, case["error"].as_str(), "{name}");
        if let (Some(e), true) = (error, header_read) {
            outcomes.push(e.to_owned());
        }
        let expected: Vec<String> =
            case["documents"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect();
        assert_eq!(outcomes, expected, "{name}");
        let stated: Vec<String> = case["inclusion"]
            .as_array()
            .map(|a| a.iter().map(|d| d.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        if error.is_none() {
            assert_eq!(inclusion, stated, "{name}: inclusion");
        }
    }
}

#[test]
fn sync_message_vectors_decode_and_encode_as_stated() {
    use entrepot::sync::wire::{decode_request, decode_response, encode_request, encode_response};
    let v = fresh_equals_file("sync.json", &entrepot::vectors::generate_sync());
    for case in v["valid"].as_array().unwrap() {
        let bytes = unhex(&case["message"]);
        let again = match case["direction"].as_str().unwrap() {
            "request" => encode_request(&decode_request(&bytes).unwrap_or_else(|e| panic!("{}: {e}", case["name"]))),
            _ => encode_response(&decode_response(&bytes).unwrap_or_else(|e| panic!("{}: {e}", case["name"]))),
        };
        assert_eq!(again, bytes, "{} does not re-encode to its bytes", case["name"]);
    }
    for case in v["invalid"].as_array().unwrap() {
        let bytes = unhex(&case["message"]);
        let err = match case["direction"].as_str().unwrap() {
            "request" => decode_request(&bytes).err(),
            _ => decode_response(&bytes).err(),
        };
        let code = err.unwrap_or_else(|| panic!("{} was accepted", case["name"])).code();
        assert_eq!(code, case["error"].as_str().unwrap(), "{}", case["name"]);
    }
}

#[test]
fn charter_files_and_node_certificates_are_refused_with_their_codes() {
    use entrepot::charter::{decode, decode_cert, verify_chain, CharterHash};
    let v = fresh_equals_file("charter.json", &entrepot::vectors::generate_charter());
    for case in v["invalid_files"].as_array().unwrap() {
        let err = decode(&unhex(&case["bytes"])).err().unwrap_or_else(|| panic!("{} was accepted", case["name"]));
        assert_eq!(err.code(), case["error"].as_str().unwrap(), "{}", case["name"]);
    }
    let pinned = CharterHash::from_hex(v["genesis_hash"].as_str().unwrap()).unwrap();
    let genesis = verify_chain(&pinned, &[decode(&unhex(&v["valid_chain"][0]["bytes"])).unwrap()]).unwrap();
    let net: [u8; 32] = unhex(&v["network_id"]).try_into().unwrap();
    for case in v["invalid_node_certs"].as_array().unwrap() {
        let peer = case["peer_id"].as_str().unwrap();
        let code = match decode_cert(&unhex(&case["bytes"])) {
            Err(e) => e.code(),
            Ok(cert) => cert
                .verify(&genesis, &net, peer)
                .err()
                .unwrap_or_else(|| panic!("{} was accepted", case["name"]))
                .code(),
        };
        assert_eq!(code, case["error"].as_str().unwrap(), "{}", case["name"]);
    }
}

/// Proof that the specification suffices: `tests/vectors/verify.py`, written from
/// docs/PROTOCOL.md and docs/CONFORMANCE.md without this code, reaches every verdict of
/// ed25519.json, documents.json and tlog.json. Skips when python3 or its `jsonschema` module is missing,
/// except under CI=true, where it fails.
#[test]
fn an_independent_python_verifier_reaches_every_stated_verdict() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let root = env!("CARGO_MANIFEST_DIR");
    let run = std::process::Command::new("python3").arg(format!("{root}/tests/vectors/verify.py")).arg(root).output();
    let out = match run {
        Ok(out) => out,
        Err(e) => {
            assert!(!ci, "python3 is needed to run tests/vectors/verify.py: {e}");
            eprintln!("skipped: python3 cannot be run ({e})");
            return;
        }
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.code() == Some(2) {
        assert!(!ci, "the Python module jsonschema is needed under CI: {text}");
        eprintln!("skipped: {text}");
        return;
    }
    assert!(out.status.success(), "the independent verifier disagrees with the vectors:\n{text}");
}

fn hash_of(v: &Value) -> [u8; 32] {
    unhex(v).try_into().unwrap()
}

fn hashes_of(v: &Value) -> Vec<[u8; 32]> {
    v.as_array().unwrap().iter().map(hash_of).collect()
}

fn proof_verdict(r: Result<(), entrepot::tlog::merkle::ProofError>) -> String {
    r.map_or_else(|e| e.code().to_owned(), |_| "valid".to_owned())
}

/// The transparency-log vectors (tests/vectors/tlog.json): each stated root, proof verdict,
/// checkpoint verdict and cosignature verdict is what this build computes from the bytes.
#[test]
fn transparency_log_vectors_verify_as_stated() {
    use entrepot::tlog::{checkpoint, merkle, note, signed};
    let ids: Vec<[u8; 32]> = load()["valid"].as_array().unwrap().iter().map(|d| hash_of(&d["id"])).collect();
    let v = fresh_equals_file("tlog.json", &entrepot::vectors::tlog::generate(&ids));
    let entries = hashes_of(&v["entries"]);
    assert_eq!(&entries[..3], &ids[..], "the first leaves are documents.json's feed");
    // Roots, from the entries alone (RFC 6962 MTH, recursively).
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => merkle::EMPTY_ROOT,
            1 => merkle::leaf_hash(&leaves[0]),
            n => {
                // The largest power of two smaller than n.
                let k = n.next_power_of_two() / 2;
                merkle::node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }
    for r in v["roots"].as_array().unwrap() {
        let size = r["size"].as_u64().unwrap() as usize;
        assert_eq!(mth(&entries[..size]), hash_of(&r["root"]), "root of {size}");
    }
    let mut verdicts = Vec::new();
    for c in v["inclusion"].as_array().unwrap() {
        let (index, size) = (c["index"].as_u64().unwrap(), c["size"].as_u64().unwrap());
        let got = merkle::verify_inclusion(
            index,
            size,
            &hash_of(&c["leaf_hash"]),
            &hashes_of(&c["proof"]),
            &hash_of(&c["root"]),
        );
        assert_eq!(proof_verdict(got), c["verdict"].as_str().unwrap(), "inclusion {}", c["name"]);
        verdicts.push(c["verdict"].as_str().unwrap().to_owned());
    }
    for c in v["consistency"].as_array().unwrap() {
        let (old, new) = (c["old_size"].as_u64().unwrap(), c["new_size"].as_u64().unwrap());
        let got = merkle::verify_consistency(
            old,
            new,
            &hashes_of(&c["proof"]),
            &hash_of(&c["old_root"]),
            &hash_of(&c["new_root"]),
        );
        assert_eq!(proof_verdict(got), c["verdict"].as_str().unwrap(), "consistency {}", c["name"]);
        verdicts.push(c["verdict"].as_str().unwrap().to_owned());
    }
    for expected in ["valid", "proof_root_mismatch", "proof_wrong_length", "index_out_of_range"] {
        assert!(verdicts.iter().any(|v| v == expected), "no proof vector with the verdict {expected}");
    }
    let cp = &v["checkpoint"];
    let origin = cp["origin"].as_str().unwrap();
    let key = hash_of(&cp["publisher_key"]);
    let mut verdicts = Vec::new();
    for c in cp["cases"].as_array().unwrap() {
        let got = signed::open(c["note"].as_str().unwrap().as_bytes(), origin, |_| vec![key])
            .map_or_else(|e| e.code().to_owned(), |_| "valid".to_owned());
        assert_eq!(got, c["verdict"].as_str().unwrap(), "checkpoint {}", c["name"]);
        verdicts.push(got);
    }
    assert!(verdicts.iter().filter(|v| *v != "valid").count() >= 5, "{verdicts:?}");
    let cs = &v["cosignature"];
    assert_eq!(
        entrepot::service::peer_key(cs["witness_peer_id"].as_str().unwrap()),
        Some(hash_of(&cs["witness_key"])),
        "the witness's peer id embeds its key"
    );
    let wk = ed25519_dalek::VerifyingKey::from_bytes(&hash_of(&cs["witness_key"])).unwrap();
    let cosigned = note::parse(cs["cosigned_note"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(cosigned.signatures.len(), 2);
    for c in cs["cases"].as_array().unwrap() {
        let line = c["signature_line"].as_str().unwrap();
        // A signature line (newline included) parsed as a note with that one line.
        let text = c["checkpoint_text"].as_str().unwrap();
        let one = note::parse(format!("{text}\n{line}").as_bytes()).unwrap();
        let got = checkpoint::verify_cosignature(&one.signatures[0], &wk, text)
            .map_or_else(|| "invalid".to_owned(), |t| t.to_string());
        assert_eq!(got, c["verdict"].as_str().unwrap(), "cosignature {}", c["name"]);
    }
    assert_eq!(cs["cases"][0]["verdict"], cs["timestamp_s"].to_string());
    let mut verdicts = Vec::new();
    for c in v["fork_evidence"].as_array().unwrap() {
        let got = match signed::ForkEvidence::decode(&unhex(&c["bytes"])).and_then(|e| e.verify(origin, |_| vec![key]))
        {
            Ok((a, b)) => format!("fork {a} {b}"),
            Err(e) => e.code().to_owned(),
        };
        assert_eq!(got, c["verdict"].as_str().unwrap(), "fork evidence {}", c["name"]);
        verdicts.push(got);
    }
    for expected in ["fork 8 13", "evidence_consistent", "evidence_malformed"] {
        assert!(verdicts.iter().any(|v| v == expected), "no evidence vector with the verdict {expected}");
    }
}
