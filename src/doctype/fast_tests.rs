//! Differential tests of the fast path against the schema path: over the conformance
//! vectors, the HS data's rulings, hand-made bodies using every optional member, and seeded
//! random mutations of all of them, the fast path accepts exactly the bodies that
//! `json::parse_strict` + the JSON Schema + `project` accept, with the same projection.
//!
//! `cargo test --release --lib doctype::fast` runs a bounded number of mutations (seconds);
//! `ENTREPOT_FAST_PATH_CASES=2000000` runs that many (and `ENTREPOT_FAST_PATH_SEED` another
//! seed) for the long run.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::classification;
use crate::doctype::{project, DocType, Projection};

/// Mutated bodies per run in CI.
const CASES_DEFAULT: usize = 30_000;

/// The three types the fast path covers: one schema shape.
const TYPES: [&str; 3] = ["classification.opinion", "classification.decision", "classification.ruling"];

/// The schema path's verdict: the projection of a valid body, `None` for any refusal.
fn by_schema(ty: &DocType, body: &[u8]) -> Option<Projection> {
    let value = crate::json::parse_strict(body).ok()?;
    ty.validate(&value).ok()?;
    project(ty, &value).ok()
}

/// Checks one body under each covered type; returns whether it was accepted.
fn agree(body: &[u8]) -> bool {
    agree_as(&TYPES, body)
}

/// Checks one body under the `types` given (the three share one schema shape, pinned below).
fn agree_as(types: &[&str], body: &[u8]) -> bool {
    let fast = classification(body);
    for &name in types {
        let slow = by_schema(DocType::by_name(name).unwrap(), body);
        assert_eq!(
            fast,
            slow,
            "fast path and {name} schema path disagree on {}",
            String::from_utf8_lossy(&body[..body.len().min(4000)])
        );
    }
    fast.is_some()
}

fn seeds() -> Vec<Value> {
    let mut out = Vec::new();
    // The HS data's rulings, as `bench ingest` and the demo publish them.
    let data = crate::hsdata::HsData::excerpt();
    for d in crate::hsdata::ruling_documents_from(&data, 0, 40, "FR") {
        out.push(d.body);
    }
    // The conformance vectors' bodies of these types, valid and invalid.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/documents.json")).unwrap();
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let mut from_vectors = 0;
    for v in vectors["valid"].as_array().unwrap().iter().chain(vectors["invalid"].as_array().unwrap()) {
        let bytes = hex::decode(v["envelope"].as_str().unwrap()).unwrap();
        let Ok(doc) = crate::document::decode(&bytes) else { continue };
        if TYPES.contains(&doc.header.doc_type.as_str()) {
            if let Ok(body) = serde_json::from_slice::<Value>(doc.body()) {
                out.push(body);
                from_vectors += 1;
            }
        }
    }
    assert!(from_vectors >= 2, "the conformance vectors hold classification documents");
    // Every optional member, at least once, and text that JSON must escape.
    out.push(json!({
        "title": { "en": "Camera \"drone\"\n of 0.9 kg", "fr": "Drone à caméra de 0,9 kg" },
        "reference": "HSC/69/2022/1 — é",
        "product": {
            "description": { "en": "Quadcopter\\camera", "es": "Dron" },
            "composition": "plastic, 𝄞 lithium battery",
            "function": ""
        },
        "classification": { "edition": "HS2022", "code": "880622" },
        "cites": [
            { "edition": "HS2022", "code": "8525.89" },
            { "edition": "HS2017", "code": "85" },
            { "edition": "HS2022", "code": "8806.2210" },
            { "edition": "HS1992", "code": "8806221010" }
        ],
        "gir": ["1", "3 (b)", "3(c)", "6"],
        "reasons": { "en": "GIR 1 and 6." },
        "validity": { "from": "2022-01-01", "to": "2024-02-29" },
        "references": [
            { "kind": "cites", "id": "0".repeat(64) },
            { "kind": "supersedes", "id": "ab".repeat(32) }
        ]
    }));
    out.push(json!({
        "title": { "en": "t" }, "reference": "r", "product": { "description": { "en": "p" } },
        "classification": { "edition": "HS2022", "code": "01" }, "gir": ["1"], "reasons": { "en": "r" },
        "validity": { "from": "2026-12-31" }, "cites": [], "references": []
    }));
    out
}

/// Strings worth putting anywhere: each pattern's edges and near misses, empty, non-ASCII.
fn interesting(rng: &mut StdRng) -> String {
    const VALUES: &[&str] = &[
        "",
        "x",
        "é",
        "𝄞",
        "\n",
        " ",
        "null",
        "en",
        "EN",
        "e",
        "eng",
        "fr",
        "zz",
        "2024-02-29",
        "2023-02-29",
        "2024-02-30",
        "2024-04-31",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "2024-01-32",
        "2024-1-01",
        "2024-01-01\n",
        " 2024-01-01",
        "2024/01/01",
        "0000-01-01",
        "9999-12-31",
        "2024-01-01T00:00:00Z",
        "HS2022",
        "HS1987",
        "HS1988",
        "HS2099",
        "HS2100",
        "HS2101",
        "HS1899",
        "HS2200",
        "hs2022",
        "HS 2022",
        "HS22",
        "HS20222",
        "2022",
        "HS2022\n",
        "88",
        "8",
        "880",
        "8806",
        "8806.",
        "8806.2",
        "8806.22",
        "8806..22",
        "880622",
        "88062",
        "8806.221",
        "8806.2210",
        "88062210",
        "8806.221010",
        "8806221010",
        "88062210101",
        "8806.22101010",
        "88.0622",
        "880622.10",
        "８８",
        "1",
        "6",
        "7",
        "0",
        "3 (b)",
        "3(b)",
        "3  (b)",
        "3 (d)",
        "3 (B)",
        "3 b",
        "3 (b) ",
        "1\n",
        "supersedes",
        "corrects",
        "withdraws",
        "cites",
        "Cites",
        "cite",
    ];
    match rng.gen_range(0..10) {
        0 => "0123456789abcdef".chars().cycle().skip(rng.gen_range(0..16)).take(rng.gen_range(62..67)).collect(),
        1 => "AB".repeat(32),
        _ => VALUES[rng.gen_range(0..VALUES.len())].to_owned(),
    }
}

/// A string of `n` characters of one kind (ASCII, two-byte, four-byte).
fn of_chars(rng: &mut StdRng, n: usize) -> String {
    let c = ['a', 'é', '𝄞', '"'][rng.gen_range(0..4)];
    std::iter::repeat_n(c, n).collect()
}

/// Lengths at the schemas' bounds.
fn bound_length(rng: &mut StdRng) -> usize {
    const BOUNDS: &[usize] = &[0, 1, 2, 127, 128, 129, 4095, 4096, 4097, 65535, 65536, 65537];
    BOUNDS[rng.gen_range(0..BOUNDS.len())]
}

fn other_value(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(1.5),
        4 => json!(-1),
        5 => json!([]),
        6 => json!({}),
        7 => json!({ "en": "x" }),
        8 => json!(["1"]),
        9 => json!({ "edition": "HS2022", "code": "8806.22" }),
        10 => json!({ "kind": "cites", "id": "0".repeat(64) }),
        _ => Value::String(interesting(rng)),
    }
}

/// Every place in `v` (as a path of keys and indexes).
fn places(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(path.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                path.push(Step::Key(k.clone()));
                places(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Step::Index(i));
                places(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()).unwrap(),
        Step::Index(i) => v.get_mut(*i).unwrap(),
    })
}

const NAMES: &[&str] = &[
    "title",
    "reference",
    "product",
    "classification",
    "cites",
    "gir",
    "reasons",
    "validity",
    "references",
    "en",
    "fr",
    "de",
    "e",
    "EN",
    "description",
    "composition",
    "function",
    "edition",
    "code",
    "from",
    "to",
    "kind",
    "id",
    "target",
    "extra",
    "",
];

/// One random change of the value at one random place.
fn mutate_value(rng: &mut StdRng, body: &mut Value) {
    let mut all = Vec::new();
    places(body, &mut Vec::new(), &mut all);
    let path = &all[rng.gen_range(0..all.len())];
    let choice = rng.gen_range(0..9);
    // Removed (or emptied, at the root).
    if choice == 0 {
        let Some((last, parent)) = path.split_last() else {
            *body = json!({});
            return;
        };
        match (at(body, parent), last) {
            (Value::Object(m), Step::Key(k)) => {
                m.remove(k.as_str());
            }
            (Value::Array(a), Step::Index(i)) => {
                a.remove(*i);
            }
            _ => unreachable!("a path leads through objects by key and arrays by index"),
        }
        return;
    }
    let v = at(body, path);
    match choice {
        // A member added.
        1 => {
            if let Value::Object(m) = v {
                m.insert(NAMES[rng.gen_range(0..NAMES.len())].to_owned(), other_value(rng));
            } else if let Value::Array(a) = v {
                let item = if a.is_empty() || rng.gen_bool(0.3) { other_value(rng) } else { a[0].clone() };
                a.push(item);
            } else {
                *v = other_value(rng);
            }
        }
        // Retyped.
        2 => *v = other_value(rng),
        // A string at a length bound.
        3 => {
            let n = bound_length(rng);
            *v = Value::String(of_chars(rng, n));
        }
        // A pattern broken (or kept) by one character.
        4 | 5 => {
            if let Value::String(s) = v {
                let mut chars: Vec<char> = s.chars().collect();
                let c = ['0', '9', '.', ' ', 'a', 'G', '-', '(', ')', 'é', '\n', '"', '\\', '\0', 'ǅ']
                    [rng.gen_range(0..15)];
                let i = rng.gen_range(0..=chars.len());
                match rng.gen_range(0..3) {
                    0 if i < chars.len() => chars[i] = c,
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ => chars.insert(i, c),
                }
                *s = chars.into_iter().collect();
            } else {
                *v = Value::String(interesting(rng));
            }
        }
        // An interesting string.
        6 | 7 => *v = Value::String(interesting(rng)),
        // An array grown to its bound (cites 64, references 32) and past it.
        _ => {
            if let Value::Array(a) = v {
                let target = [31, 32, 33, 63, 64, 65][rng.gen_range(0..6)];
                let item = a.first().cloned().unwrap_or_else(|| other_value(rng));
                while a.len() < target {
                    a.push(item.clone());
                }
            } else {
                *v = Value::String(interesting(rng));
            }
        }
    }
}

/// Changes of the text that a `Value` cannot express: repeated names, escaped names, bytes
/// broken anywhere.
fn mutate_text(rng: &mut StdRng, text: &mut Vec<u8>) {
    let replace_first = |text: &mut Vec<u8>, from: &str, to: &str| {
        let s = String::from_utf8_lossy(text).into_owned();
        *text = s.replacen(from, to, 1).into_bytes();
    };
    match rng.gen_range(0..8) {
        0 => replace_first(text, "\"en\":", "\"en\":\"x\",\"en\":"),
        1 => replace_first(text, "{", "{\"reference\":\"x\","),
        2 => replace_first(text, "\"code\":", "\"code\":\"88\",\"code\":"),
        3 => replace_first(text, "\"en\":", "\"\\u0065n\":"),
        4 => replace_first(text, "\"code\":", "\"\\u0063ode\":"),
        5 => {
            let i = rng.gen_range(0..text.len());
            text.remove(i);
        }
        6 => {
            let i = rng.gen_range(0..=text.len());
            let b = [b'"', b',', b'{', b'}', b'[', b']', b':', b' ', b'\\', b'a', b'0', 0xff, 0xc3, b'\n'];
            text.insert(i, b[rng.gen_range(0..b.len())]);
        }
        _ => {
            let i = rng.gen_range(0..text.len());
            text[i] ^= 1 << rng.gen_range(0..8);
        }
    }
}

fn cases() -> usize {
    std::env::var("ENTREPOT_FAST_PATH_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(CASES_DEFAULT)
}

#[test]
fn the_fast_path_accepts_every_seed_the_schema_accepts_with_the_same_projection() {
    let seeds = seeds();
    let accepted = seeds.iter().filter(|s| agree(&serde_json::to_vec(s).unwrap())).count();
    // The hand-made bodies and the HS data's rulings are valid; some vectors are not.
    assert!(accepted >= seeds.len() - 4, "{accepted} of {} seeds accepted", seeds.len());
    // Pretty-printed text is the same body.
    for s in &seeds {
        agree(&serde_json::to_vec_pretty(s).unwrap());
    }
}

#[test]
fn the_fast_path_and_the_schema_agree_on_seeded_random_mutations() {
    let seed: u64 = std::env::var("ENTREPOT_FAST_PATH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(16);
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds = seeds();
    let (mut accepted, mut total) = (0usize, 0usize);
    for _ in 0..cases() {
        let mut body = seeds[rng.gen_range(0..seeds.len())].clone();
        for _ in 0..rng.gen_range(1..=3) {
            mutate_value(&mut rng, &mut body);
        }
        let mut text = serde_json::to_vec(&body).unwrap();
        if rng.gen_bool(0.2) {
            mutate_text(&mut rng, &mut text);
        }
        total += 1;
        accepted += usize::from(agree_as(&[TYPES[total % TYPES.len()]], &text));
    }
    // Both outcomes occur often enough for the agreement to mean something.
    assert!(accepted * 20 > total && accepted * 20 < total * 19, "{accepted} of {total} mutations accepted");
    eprintln!("fast path: {total} mutations (seed {seed}), {accepted} accepted by both, the rest refused by both");
}

#[test]
fn a_top_level_or_nested_array_in_place_of_an_object_is_refused() {
    // serde's derived structs read an array positionally; the schema wants objects.
    let body = br#"[{"en":"t"},"r",{"description":{"en":"p"}},{"edition":"HS2022","code":"01"},[],["1"],{"en":"r"},{"from":"2026-01-01"}]"#;
    assert!(!agree(body));
    let nested = br#"{"title":{"en":"t"},"reference":"r","product":{"description":{"en":"p"}},"classification":["HS2022","01"],"gir":["1"],"reasons":{"en":"r"},"validity":{"from":"2026-01-01"}}"#;
    assert!(!agree(nested));
}

#[test]
fn null_for_an_optional_member_is_refused() {
    let body = br#"{"title":{"en":"t"},"reference":"r","product":{"description":{"en":"p"},"composition":null},"classification":{"edition":"HS2022","code":"01"},"gir":["1"],"reasons":{"en":"r"},"validity":{"from":"2026-01-01"}}"#;
    assert!(!agree(body));
}

/// The fast path implements these schema files as they are: a change to any of them fails
/// here until `fast.rs` is checked against it and the pin updated.
#[test]
fn the_schemas_the_fast_path_implements_are_the_ones_it_was_written_for() {
    let hash = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    let shape = |name: &str| {
        let mut v: Value = serde_json::from_str(DocType::by_name(name).unwrap().schema).unwrap();
        let m = v.as_object_mut().unwrap();
        m.remove("$id");
        m.remove("title");
        v
    };
    for name in TYPES {
        assert_eq!(shape(name), shape("classification.ruling"), "{name} is no longer the shape of the others");
    }
    assert_eq!(
        hash(DocType::by_name("classification.ruling").unwrap().schema),
        "13e1273abf67749596fc1709b3154665f5682a0ac687f3c918bced78fb3e2177",
        "schemas/classification.ruling.json changed: check src/doctype/fast.rs against it"
    );
    assert_eq!(
        hash(super::super::registry::COMMON_SCHEMA),
        "c79ce191cd8d76c23d56afb743e04f1f30ae7b14a3788df7f5ef4cce9be3eae0",
        "schemas/common.json changed: check src/doctype/fast.rs against it"
    );
}
