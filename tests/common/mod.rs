//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod charters;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use entrepot::authority::{Keyring, Organization};
use entrepot::bench::sign_feed;
use entrepot::config::network_id;
use entrepot::document::{DocumentId, OrgId, Seq};
use entrepot::hsdata::DraftDocument;

pub const NETWORK: &str = "entrepot-tests";

pub fn net() -> [u8; 32] {
    network_id(NETWORK)
}

pub fn key(label: u8) -> SigningKey {
    SigningKey::from_bytes(&[label; 32])
}

pub fn org(id: &str) -> OrgId {
    OrgId::new(id).unwrap()
}

/// A keyring trusting each (org, key) pair for every type.
pub fn keyring(entries: &[(&str, &SigningKey)]) -> Keyring {
    let mut ring = Keyring::default();
    for (id, k) in entries {
        ring.insert(Organization {
            id: org(id),
            name: id.to_string(),
            keys: vec![hex::encode(k.verifying_key().to_bytes())],
            types: None,
        })
        .unwrap();
    }
    ring
}

/// A small valid classification opinion on `code`.
pub fn opinion(n: usize, code: &str) -> DraftDocument {
    DraftDocument {
        doc_type: "classification.opinion",
        body: json!({
            "title": { "en": format!("Opinion {n} on {code}") },
            "reference": format!("HSC/{n}"),
            "product": { "description": { "en": "A product" } },
            "classification": { "edition": "HS2022", "code": code },
            "gir": ["1"],
            "reasons": { "en": "Terms of the heading." },
            "validity": { "from": "2022-01-01", "to": "2027-12-31" }
        }),
    }
}

pub fn draft(doc_type: &'static str, body: Value) -> DraftDocument {
    DraftDocument { doc_type, body }
}

/// Signs drafts as a feed from position 1.
pub fn feed(drafts: &[DraftDocument], publisher: &str, k: &SigningKey) -> Vec<Vec<u8>> {
    sign_feed(drafts, &org(publisher), k, &net(), Seq::FIRST, DocumentId::ZERO)
}

/// Path of the built `entrepot` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_entrepot")
}
