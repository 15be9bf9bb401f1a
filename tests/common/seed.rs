//! The documents the API and web tests serve: real HS data (HS2022 and HS2017 nomenclatures, amendments,
//! correlation) signed by the WCO, classification guidance with a supersession, a US ruling
//! later withdrawn, and a sealed enforcement notice (its payload apart, as only its audience
//! receives it).
#![allow(dead_code)]

use serde_json::json;

use entrepot::bench::sign_feed;
use entrepot::document::{DocumentId, Seq};
use entrepot::hsdata::{
    amendment_documents, correlation_documents, nomenclature_documents, nomenclature_documents_2017, DraftDocument,
    HsData,
};
use entrepot::notice::seal_body_with_nonce;

use crate::common::{draft, key, net, org};

/// The seeded documents and the ids the tests refer to.
pub struct Seeded {
    pub envelopes: Vec<Vec<u8>>,
    /// The WCO opinion on 8806.22 that `opinion_new` replaced.
    pub opinion_old: DocumentId,
    pub opinion_new: DocumentId,
    /// The `lifecycle.supersede` act from old to new.
    pub supersede_act: DocumentId,
    /// The US ruling that `withdraw_act` withdrew.
    pub ruling: DocumentId,
    pub withdraw_act: DocumentId,
    /// A sealed notice (handling `customs_only`); its payload is not among the envelopes.
    pub notice: DocumentId,
    /// The sealed payload `notice` commits to.
    pub notice_payload: Vec<u8>,
    /// How many WCO documents carry HS data (nomenclature, amendments, correlation).
    pub hs_documents: usize,
    /// The WCO feed's head position.
    pub wco_head: Seq,
}

/// The summary in the seed notice's sealed payload: it must never appear in an envelope.
pub const NOTICE_SUMMARY: &str = "Consignments declared as e-cigarette parts.";

pub const WCO_KEY: u8 = 1;
pub const US_KEY: u8 = 2;

fn opinion(reference: &str, title: &str, extra: serde_json::Value) -> DraftDocument {
    let mut body = json!({
        "title": { "en": title, "fr": "Classement d'un drone avec caméra" },
        "reference": reference,
        "product": { "description": { "en": "Quadcopter with a 4K camera, take-off weight 0.9 kg, remote controlled" } },
        "classification": { "edition": "HS2022", "code": "8806.22" },
        "cites": [{ "edition": "HS2022", "code": "8525.89" }],
        "gir": ["1", "6"],
        "reasons": { "en": "Heading 8806 covers unmanned aircraft; the camera does not give the essential character." },
        "validity": { "from": "2022-01-01" }
    });
    if let Some(refs) = extra.get("references") {
        body["references"] = refs.clone();
    }
    draft("classification.opinion", body)
}

/// Signs `drafts` after `prev` (the feed's last entry so far, if any).
fn append(
    out: &mut Vec<Vec<u8>>,
    drafts: &[DraftDocument],
    publisher: &str,
    k: u8,
    prev: Option<(Seq, DocumentId)>,
) -> (Seq, DocumentId) {
    let (first, prev_id) = prev.map_or((Seq::FIRST, DocumentId::ZERO), |(s, id)| (s.next(), id));
    let signed = sign_feed(drafts, &org(publisher), &key(k), &net(), first, prev_id);
    let last = DocumentId::of_envelope(signed.last().expect("at least one draft"));
    let seq = Seq(first.0 + signed.len() as u64 - 1);
    out.extend(signed);
    (seq, last)
}

/// Builds the seed from `data` (the excerpt or the full files).
pub fn seed(data: &HsData) -> Seeded {
    let mut envelopes = Vec::new();
    let mut hs = nomenclature_documents(data);
    hs.extend(nomenclature_documents_2017(data));
    hs.extend(amendment_documents(data));
    hs.extend(correlation_documents(data));
    let hs_documents = hs.len();
    let mut wco = append(&mut envelopes, &hs, "WCO", WCO_KEY, None);

    wco = append(
        &mut envelopes,
        &[opinion("HSC/68/1", "Classification of a camera drone", json!({}))],
        "WCO",
        WCO_KEY,
        Some(wco),
    );
    let opinion_old = wco.1;
    wco = append(
        &mut envelopes,
        &[opinion(
            "HSC/70/4",
            "Classification of camera drones (revised)",
            json!({ "references": [{ "kind": "cites", "id": opinion_old.to_hex() }] }),
        )],
        "WCO",
        WCO_KEY,
        Some(wco),
    );
    let opinion_new = wco.1;
    let act = draft(
        "lifecycle.supersede",
        json!({
            "title": { "en": "Opinion HSC/68/1 superseded by HSC/70/4" },
            "target": opinion_old.to_hex(),
            "replacement": opinion_new.to_hex(),
            "reason": { "en": "Revised after the HSC 70th session." },
            "validity": { "from": "2023-01-01" },
            "references": [{ "kind": "cites", "id": opinion_new.to_hex() }]
        }),
    );
    wco = append(&mut envelopes, &[act], "WCO", WCO_KEY, Some(wco));
    let supersede_act = wco.1;

    let ruling = draft(
        "classification.ruling",
        json!({
            "title": { "en": "Advance ruling US-2023-000042: heated tobacco sticks" },
            "reference": "US-BTI-2023-000042",
            "product": { "description": { "en": "Tobacco sticks for heating without combustion" } },
            "classification": { "edition": "HS2022", "code": "2404.11" },
            "gir": ["1", "6"],
            "reasons": { "en": "Heading 2404 covers products intended for inhalation without combustion." },
            "validity": { "from": "2023-01-01", "to": "2025-12-31" }
        }),
    );
    let sealed = seal_body_with_nonce(
        json!({
            "title": { "en": "Alert: undeclared heated tobacco sticks in postal consignments" },
            "validity": { "from": "2024-03-01", "to": "2026-12-31" },
            "header": { "kind": "alert", "risk_area": "tobacco", "hs": [{ "edition": "HS2022", "code": "2404.11" }], "region": "AM", "handling": "customs_only" },
            "audience": { "scope": "all_customs" }
        })
        .to_string()
        .as_bytes(),
        &json!({ "summary": { "en": NOTICE_SUMMARY } }),
        &[7; 32],
    )
    .expect("the seed notice seals");
    let notice = draft("enforcement.notice", serde_json::from_slice(&sealed.body).expect("sealed body is JSON"));
    let mut us = append(&mut envelopes, &[ruling], "US", US_KEY, None);
    let ruling = us.1;
    us = append(&mut envelopes, &[notice], "US", US_KEY, Some(us));
    let notice = us.1;
    let withdraw = draft(
        "lifecycle.withdraw",
        json!({
            "title": { "en": "Withdrawal of ruling US-2023-000042" },
            "target": ruling.to_hex(),
            "reason": { "en": "Issued on incomplete information." },
            "validity": { "from": "2024-06-01" }
        }),
    );
    us = append(&mut envelopes, &[withdraw], "US", US_KEY, Some(us));
    Seeded {
        envelopes,
        opinion_old,
        opinion_new,
        supersede_act,
        ruling,
        withdraw_act: us.1,
        notice,
        notice_payload: sealed.payload,
        hs_documents,
        wco_head: wco.0,
    }
}
