//! Vectors for the bundle file (docs/PROTOCOL.md §6) and the sync messages (§8.2), checked
//! into `tests/vectors/bundles.json` and `tests/vectors/sync.json`.

use serde_json::{json, Value};

use crate::bundle::{BUNDLE_KEYRING_MAX_BYTES, BUNDLE_MAGIC, BUNDLE_VERSION};
use crate::document::{DocumentId, OrgId, Seq, DOCUMENT_SIZE_MAX_BYTES};
use crate::sync::wire::{
    encode_request, encode_response, FeedHead, HeadsDigest, RefusalCode, Request, Response, Status,
};

fn bundle_bytes(network_id: &[u8; 32], keyring: &[u8], docs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(BUNDLE_MAGIC);
    out.push(BUNDLE_VERSION);
    out.extend_from_slice(network_id);
    out.extend_from_slice(&(keyring.len() as u32).to_be_bytes());
    out.extend_from_slice(keyring);
    for d in docs {
        out.extend_from_slice(&(d.len() as u32).to_be_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// Bundle vectors from the document vectors: `documents` is the generated documents.json.
pub fn generate_bundles(documents: &Value) -> Value {
    let hex_field = |v: &Value| hex::decode(v.as_str().expect("hex string")).expect("hex");
    let network: [u8; 32] = hex_field(&documents["network"]["id"]).try_into().expect("32 bytes");
    let keyring = documents["keyring"].to_string().into_bytes();
    let envelopes: Vec<Vec<u8>> =
        documents["valid"].as_array().expect("valid").iter().map(|d| hex_field(&d["envelope"])).collect();
    let docs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    let altered = hex_field(&documents["invalid"][0]["envelope"]);
    let valid = bundle_bytes(&network, &keyring, &docs);
    let empty = bundle_bytes(&network, &keyring, &[]);
    let case = |name: &str, bytes: &[u8], error: Option<&str>, documents: Value| json!({ "name": name, "bytes": hex::encode(bytes), "error": error, "documents": documents });
    let ids: Vec<Value> = documents["valid"].as_array().expect("valid").iter().map(|d| d["id"].clone()).collect();
    let mut cases = vec![
        case("three_documents", &valid, None, json!(ids)),
        case("no_documents", &empty, None, json!([])),
        case(
            "a_bad_document",
            &bundle_bytes(&network, &keyring, &[docs[0], &altered]),
            None,
            json!([ids[0], "bad_signature"]),
        ),
    ];
    cases.push(case("shorter_than_the_magic", b"ENTRP", Some("bad_magic"), json!([])));
    cases.push(case("a_document_magic", &envelopes[0], Some("bad_magic"), json!([])));
    cases.push(case("magic_only", BUNDLE_MAGIC, Some("truncated"), json!([])));
    let mut v3 = valid.clone();
    v3[8] = 3;
    cases.push(case("version_3", &v3, Some("unsupported_version"), json!([])));
    cases.push(case("cut_in_the_network_id", &valid[..20], Some("truncated"), json!([])));
    let mut big = valid[..41].to_vec();
    big.extend_from_slice(&(BUNDLE_KEYRING_MAX_BYTES as u32 + 1).to_be_bytes());
    cases.push(case("keyring_over_4_mib", &big, Some("too_large"), json!([])));
    cases.push(case("cut_in_the_keyring", &valid[..50], Some("truncated"), json!([])));
    cases.push(case(
        "keyring_not_utf8",
        &bundle_bytes(&network, b"{\"organizations\": [\xff]}", &docs),
        Some("keyring_not_text"),
        json!([]),
    ));
    let twice = br#"{"organizations": [], "organizations": []}"#;
    cases.push(case("keyring_field_twice", &bundle_bytes(&network, twice, &docs), Some("keyring_invalid"), json!([])));
    cases.push(case(
        "keyring_not_a_keyring",
        &bundle_bytes(&network, br#"{"orgs": []}"#, &docs),
        Some("keyring_invalid"),
        json!([]),
    ));
    let header_len = empty.len();
    let first_end = header_len + 4 + envelopes[0].len();
    cases.push(case(
        "cut_in_a_document_length",
        &valid[..first_end + 2],
        Some("truncated"),
        json!([ids[0], "truncated"]),
    ));
    cases.push(case("cut_in_a_document", &valid[..first_end + 10], Some("truncated"), json!([ids[0], "truncated"])));
    let mut over = empty.clone();
    over.extend_from_slice(&(DOCUMENT_SIZE_MAX_BYTES as u32 + 1).to_be_bytes());
    cases.push(case("document_over_1_mib", &over, Some("too_large"), json!(["too_large"])));
    cases.extend(trusted_cases(&network, &keyring, &envelopes, &ids));
    json!({
        "about": "entrepot bundle vectors: docs/PROTOCOL.md §6, run as docs/CONFORMANCE.md says. Documents are checked against documents.json's network and keyring.",
        "cases": cases,
    })
}

/// Version 2 bundles (§6.1) of the same three documents, with WCO's checkpoint of them and
/// each one's inclusion proof. `inclusion` gives each document's verdict against the bundle's
/// checkpoint (`included` or the audit code); framing errors are as in version 1.
fn trusted_cases(network: &[u8; 32], keyring: &[u8], envelopes: &[Vec<u8>], ids: &[Value]) -> Vec<Value> {
    use crate::bundle::{BundleWriter, Trust, TrustCheckpoint};
    use crate::tlog::checkpoint::{origin, Checkpoint};
    use crate::tlog::merkle::{self, MemoryTree};
    use crate::tlog::note::Note;

    let doc_ids: Vec<DocumentId> = envelopes.iter().map(|e| DocumentId::of_envelope(e)).collect();
    let mut tree = MemoryTree::default();
    for id in &doc_ids {
        tree.push(&id.0);
    }
    let n = doc_ids.len() as u64;
    let root = merkle::root(&tree, n).expect("a memory tree holds every node");
    let cp = Checkpoint { origin: origin(network, &OrgId::new("WCO").expect("org id")), size: n, root };
    let note = Note { text: cp.text(), signatures: vec![cp.sign(&super::vector_key("WCO"))] }.encode();
    let trust = Trust {
        charters: Vec::new(),
        checkpoints: vec![TrustCheckpoint { note: note.into_bytes(), certificates: Vec::new() }],
    };
    let keyring = std::str::from_utf8(keyring).expect("UTF-8 keyring");
    let write = |proofs: &[Vec<merkle::Hash>]| {
        let mut w = BundleWriter::with_trust(Vec::new(), network, keyring, &trust).expect("bundle header");
        for (e, p) in envelopes.iter().zip(proofs) {
            w.push_proved(e, p).expect("bounded proof");
        }
        w.finish().expect("in memory")
    };
    let proofs: Vec<Vec<merkle::Hash>> =
        (0..n).map(|i| merkle::inclusion_proof(&tree, i, n).expect("every node").expect("in the tree")).collect();
    let valid = write(&proofs);
    let mut altered = proofs.clone();
    altered[2][0][0] ^= 1;
    let case = |name: &str, bytes: &[u8], error: Option<&str>, documents: Value, inclusion: Value| json!({ "name": name, "bytes": hex::encode(bytes), "error": error, "documents": documents, "inclusion": inclusion });
    let header_end = {
        let w = BundleWriter::with_trust(Vec::new(), network, keyring, &trust).expect("bundle header");
        w.finish().expect("in memory").len()
    };
    let mut too_many = valid[..header_end].to_vec();
    too_many.extend_from_slice(&(envelopes[0].len() as u32).to_be_bytes());
    too_many.extend_from_slice(&envelopes[0]);
    too_many.push(65);
    vec![
        case("trusted_three_documents", &valid, None, json!(ids), json!(["included", "included", "included"])),
        case(
            "trusted_a_proof_altered",
            &write(&altered),
            None,
            json!(ids),
            json!(["included", "included", "inclusion_invalid"]),
        ),
        case(
            "trusted_no_proofs",
            &write(&[Vec::new(), Vec::new(), Vec::new()]),
            None,
            json!(ids),
            json!(["inclusion_invalid", "inclusion_invalid", "inclusion_invalid"]),
        ),
        case("trusted_cut_in_the_trust_section", &valid[..header_end - 10], Some("truncated"), json!([]), json!([])),
        case("trusted_proof_over_64_hashes", &too_many, Some("too_many"), json!(["too_many"]), json!([])),
    ]
}

/// Sync message vectors (docs/PROTOCOL.md §8.2): valid requests and responses with their
/// bytes, and malformed messages with their error codes.
pub fn generate_sync(envelope: &[u8], charter_file: &[u8], cert: &[u8]) -> Value {
    let org = OrgId::new("WCO").expect("org id");
    let id = DocumentId::of_envelope(envelope);
    let heads = vec![
        FeedHead { org: org.clone(), seq: Seq(3), id, forked_at: None },
        FeedHead {
            org: OrgId::new("FR").expect("org id"),
            seq: Seq(120),
            id: DocumentId([0xab; 32]),
            forked_at: Some(Seq(7)),
        },
    ];
    let network_id = [0x11; 32];
    let heads_digest = Status::compose(network_id, 2, heads.clone(), HeadsDigest::NONE, HeadsDigest::NONE).digest;
    let requests = [
        ("hello", Request::Hello { cert: cert.to_vec() }),
        ("hello_without_certificate", Request::Hello { cert: Vec::new() }),
        (
            "status",
            Request::Status(Status::compose(network_id, 2, heads.clone(), HeadsDigest::NONE, HeadsDigest::NONE)),
        ),
        ("range", Request::Range { org: org.clone(), from: Seq(1), count_max: 1024, bytes_max: 4 * 1024 * 1024 }),
        ("charters", Request::Charters { from_version: 2 }),
        ("fork_proofs", Request::ForkProofs { org: org.clone() }),
        ("payloads", Request::Payloads { ids: vec![id, DocumentId([0xcd; 32])] }),
        (
            "status_heads_by_digest",
            Request::Status(Status::compose(network_id, 2, heads.clone(), HeadsDigest::NONE, heads_digest)),
        ),
    ];
    let responses = [
        ("hello", Response::Hello { cert: cert.to_vec() }),
        ("status", Response::Status(Status::compose(network_id, 0, heads, heads_digest, HeadsDigest::NONE))),
        ("range", Response::Range { docs: vec![envelope.to_vec()] }),
        ("range_empty", Response::Range { docs: vec![] }),
        (
            "refused_busy",
            Response::Refused { code: RefusalCode::Busy, reason: "busy: 16 requests being served".into() },
        ),
        ("refused_unassigned_code", Response::Refused { code: RefusalCode::from_byte(200), reason: String::new() }),
        ("charters", Response::Charters { files: vec![charter_file.to_vec()] }),
        ("fork_proofs", Response::ForkProofs { pairs: vec![(envelope.to_vec(), envelope.to_vec())] }),
        ("payloads", Response::Payloads { items: vec![(id, b"{\"summary\":\"-\"}".to_vec())] }),
    ];
    let valid = |name: &str, direction: &str, bytes: Vec<u8>| json!({ "name": name, "direction": direction, "message": hex::encode(bytes) });
    let mut valid_cases: Vec<Value> = requests.iter().map(|(n, r)| valid(n, "request", encode_request(r))).collect();
    valid_cases.extend(responses.iter().map(|(n, r)| valid(n, "response", encode_response(r))));

    let invalid = |name: &str, direction: &str, bytes: &[u8], error: &str| json!({ "name": name, "direction": direction, "message": hex::encode(bytes), "error": error });
    let range = encode_request(&requests[3].1);
    let mut from_zero = range.clone();
    from_zero[1 + 1 + 3..1 + 1 + 3 + 8].copy_from_slice(&0u64.to_be_bytes());
    let mut lower_org = range.clone();
    lower_org[2] = b'w';
    let mut trailing = range.clone();
    trailing.push(0);
    let mut many_docs = vec![2u8];
    many_docs.extend_from_slice(&1025u32.to_be_bytes());
    let mut big_doc = vec![2u8, 0, 0, 0, 1];
    big_doc.extend_from_slice(&(DOCUMENT_SIZE_MAX_BYTES as u32 + 1).to_be_bytes());
    let mut big_cert = vec![4u8];
    big_cert.extend_from_slice(&1025u32.to_be_bytes());
    let mut many_ids = vec![7u8];
    many_ids.extend_from_slice(&65u16.to_be_bytes());
    let invalid_cases = vec![
        invalid("empty", "request", &[], "wire_truncated"),
        invalid("unknown_tag", "request", &[3], "wire_unknown_tag"),
        invalid("unknown_tag_99", "response", &[99], "wire_unknown_tag"),
        invalid("range_from_zero", "request", &from_zero, "wire_invalid"),
        invalid("range_organization_lower_case", "request", &lower_org, "wire_invalid"),
        invalid("range_cut_short", "request", &range[..range.len() - 1], "wire_truncated"),
        invalid("range_trailing_byte", "request", &trailing, "wire_trailing"),
        invalid("range_answer_over_1024_documents", "response", &many_docs, "wire_over_limit"),
        invalid("range_answer_document_over_1_mib", "response", &big_doc, "wire_over_limit"),
        invalid("hello_certificate_over_1_kib", "request", &big_cert, "wire_over_limit"),
        invalid("payloads_over_64", "request", &many_ids, "wire_over_limit"),
        invalid("charters_over_8", "response", &[5, 9], "wire_over_limit"),
        invalid("fork_proofs_over_2", "response", &[6, 3], "wire_over_limit"),
        invalid("refusal_reason_over_1_kib", "response", &[3, 1, 0x04, 0x01], "wire_over_limit"),
        invalid("refusal_reason_not_utf8", "response", &[3, 1, 0, 1, 0xff], "wire_invalid"),
        invalid("refusal_cut_in_the_code", "response", &[3], "wire_truncated"),
    ];
    json!({
        "about": "entrepot sync protocol /entrepot/sync/3 messages (without the u32 frame length): docs/PROTOCOL.md §8.2, run as docs/CONFORMANCE.md says.",
        "valid": valid_cases,
        "invalid": invalid_cases,
    })
}
