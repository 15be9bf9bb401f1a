//! Search, similar classifications and divergences over HTTP, on the seeded node (WCO's camera
//! drone opinions, one superseded; a withdrawn US ruling) plus France's own rulings.

use entrepot::hsdata::HsData;
use serde_json::{json, Value};

use super::start_seeded;

/// France's ruling on the same camera drone as WCO's opinions, under the camera heading 8525.
fn fr_drone_ruling() -> Value {
    json!({
        "title": { "en": "Quadcopter camera drone", "fr": "Drone quadricoptère avec caméra" },
        "reference": "FR-BTI-2026-7",
        "product": {
            "description": { "en": "Quadcopter with a 4K camera, take-off weight 0.9 kg, remote controlled, for aerial photography",
                             "fr": "Quadricoptère équipé d'une caméra 4K, masse au décollage 0,9 kg, télécommandé" }
        },
        "classification": { "edition": "HS2022", "code": "8525.89" },
        "gir": ["1", "3 (b)"],
        "reasons": { "en": "The camera gives the essential character." },
        "validity": { "from": "2026-01-01" }
    })
}

fn publish(srv: &super::http::TestServer, doc_type: &str, body: &Value) -> String {
    let created = srv.post(&format!("/v1/documents?type={doc_type}"), body.to_string().as_bytes(), Some(&srv.token));
    assert_eq!(created.status, 201, "{}", created.text());
    created.json()["id"].as_str().unwrap().to_owned()
}

fn result_ids(v: &Value) -> Vec<String> {
    v["results"].as_array().unwrap().iter().map(|r| r["document"]["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn an_officer_finds_documents_by_words_in_english_and_french_with_filters_and_marks() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);
    // Published just before: the search waits for the index to take it in.
    let fr = publish(&srv, "classification.ruling", &fr_drone_ruling());

    let v = srv.get("/v1/search?q=drones").json();
    let ids = result_ids(&v);
    for id in [&fr, &s.opinion_old.to_hex(), &s.opinion_new.to_hex()] {
        assert!(ids.contains(id), "{id} in {v}");
    }
    assert_eq!(v["total"], 3, "{v}");
    assert!(v["indexed_arrival"].as_u64().unwrap() >= v["store_arrival"].as_u64().unwrap());
    let scores: Vec<f64> = v["results"].as_array().unwrap().iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ranked by relevance: {scores:?}");
    // A superseded opinion is found, and marked; every result carries the verified mark.
    let old = v["results"].as_array().unwrap().iter().find(|r| r["document"]["id"] == s.opinion_old.to_hex()).unwrap();
    assert_eq!(old["document"]["lifecycle"], "superseded");
    assert!(v["results"].as_array().unwrap().iter().all(|r| r["document"]["verified"] == true));
    // French, with its stemmer and without accents.
    assert_eq!(
        result_ids(&srv.get("/v1/search?q=quadricoptere%20t%C3%A9l%C3%A9command%C3%A9").json()),
        vec![fr.clone()]
    );
    // A withdrawn ruling is found, and marked.
    let tobacco = srv.get("/v1/search?q=tobacco%20sticks&type=classification.ruling").json();
    assert_eq!(result_ids(&tobacco), vec![s.ruling.to_hex()]);
    assert_eq!(tobacco["results"][0]["document"]["lifecycle"], "withdrawn");

    // Filters: HS prefix (dots allowed), publisher, type, issue days.
    // (WCO's opinions cite 8525.89 too: a subject is any code a document names.)
    let in_8806 = result_ids(&srv.get("/v1/search?q=drone&hs=88.06").json());
    assert_eq!(in_8806.len(), 2);
    assert!(!in_8806.contains(&fr));
    assert_eq!(result_ids(&srv.get("/v1/search?q=drone&publisher=FR").json()), vec![fr.clone()]);
    assert_eq!(srv.get("/v1/search?q=drone&type=classification.opinion").json()["total"], 2);
    let today = chrono::Utc::now().date_naive();
    let from = today.to_string();
    assert_eq!(result_ids(&srv.get(&format!("/v1/search?q=drone&from={from}")).json()), vec![fr.clone()]);
    assert_eq!(srv.get("/v1/search?q=drone&to=2000-01-01").json()["total"], 0);
    // No words: what the filters keep, newest first, paged with a cursor.
    let page1 = srv.get("/v1/search?type=classification.opinion&limit=1").json();
    assert_eq!(page1["total"], 2);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = srv.get(&format!("/v1/search?type=classification.opinion&limit=1&cursor={cursor}")).json();
    assert_eq!(page2["results"].as_array().unwrap().len(), 1);
    assert_ne!(result_ids(&page1), result_ids(&page2));
    assert!(page2["next_cursor"].is_null());

    // Bad input: a clear 400, never a 500.
    let long = "a".repeat(201);
    for bad in [
        format!("/v1/search?q={long}"),
        "/v1/search?limit=0".into(),
        "/v1/search?limit=101".into(),
        "/v1/search?hs=88A".into(),
        "/v1/search?type=hs.tariff".into(),
        "/v1/search?publisher=not%20an%20org".into(),
        "/v1/search?from=yesterday".into(),
        "/v1/search?from=2026-02-01&to=2026-01-01".into(),
        "/v1/search?cursor=abc".into(),
        "/v1/search?cursor=5000".into(),
        "/v1/search?qq=drone".into(),
        "/v1/search?edition=HS2022".into(),
    ] {
        assert_eq!(srv.get(&bad).error(400), "bad_request", "{bad}");
    }
    // Query syntax people mistype is searched as words.
    assert_eq!(srv.get("/v1/search?q=%22drone%20(camera").status, 200);
}

#[test]
fn a_ruling_shows_other_administrations_similar_classifications_and_divergences_by_chapter() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);
    let fr = publish(&srv, "classification.ruling", &fr_drone_ruling());

    let v = srv.get(&format!("/v1/documents/{fr}/similar")).json();
    assert_eq!(v["classification"], "HS2022:852589");
    assert_eq!(v["heading"], "8525");
    let similar = v["similar"].as_array().unwrap();
    let ids: Vec<&str> = similar.iter().map(|x| x["document"]["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&s.opinion_new.to_hex().as_str()) && ids.contains(&s.opinion_old.to_hex().as_str()), "{v}");
    for x in similar {
        assert_ne!(x["document"]["publisher"], "FR", "only other administrations: {v}");
        assert!(x["similarity"].as_f64().unwrap() > 0.0 && x["similarity"].as_f64().unwrap() <= 1.0);
        if x["heading"] == "8806" {
            assert_eq!(x["divergent"], true, "{x}");
            assert_eq!(x["classification"], "HS2022:880622");
        }
    }
    // From WCO's side, France's ruling is the divergent one.
    let w = srv.get(&format!("/v1/documents/{}/similar", s.opinion_new.to_hex())).json();
    let to_fr = w["similar"].as_array().unwrap().iter().find(|x| x["document"]["id"] == fr.as_str()).unwrap();
    assert_eq!(to_fr["divergent"], true);

    // Divergences: the revised opinion (in force) against France's ruling; the superseded
    // opinion is left out, and so is the withdrawn US ruling.
    let d = srv.get("/v1/divergences?chapter=88").json();
    let pairs = d["divergences"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{d}");
    let pair: Vec<&str> =
        [&pairs[0]["a"], &pairs[0]["b"]].iter().map(|c| c["document"]["id"].as_str().unwrap()).collect();
    assert!(pair.contains(&fr.as_str()) && pair.contains(&s.opinion_new.to_hex().as_str()), "{d}");
    assert!(d["examined"].as_u64().unwrap() >= 2);
    assert_eq!(d["truncated"], false);
    // The same pair from the other chapter.
    assert_eq!(srv.get("/v1/divergences?chapter=85").json()["divergences"].as_array().unwrap().len(), 1);
    assert!(srv.get("/v1/divergences?chapter=24").json()["divergences"].as_array().unwrap().is_empty());

    // Bad input.
    for bad in
        ["/v1/divergences", "/v1/divergences?chapter=8", "/v1/divergences?chapter=00", "/v1/divergences?chapter=8a"]
    {
        assert_eq!(srv.get(bad).error(400), "bad_request", "{bad}");
    }
    let not_a_ruling = srv.get(&format!("/v1/documents/{}/similar", s.supersede_act.to_hex()));
    assert_eq!(not_a_ruling.error(400), "bad_request");
    assert_eq!(srv.get(&format!("/v1/documents/{}/similar", "ab".repeat(32))).error(404), "not_found");
    assert_eq!(srv.get(&format!("/v1/documents/{fr}/similar?limit=51")).error(400), "bad_request");
}

#[test]
fn the_index_is_rebuilt_on_demand_and_catches_up_from_the_store() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);
    assert_eq!(srv.post("/v1/admin/search/rebuild", b"", None).error(401), "unauthorized");
    let r = srv.post("/v1/admin/search/rebuild", b"", Some(&srv.token));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["cleared"], true);
    // Until the index covers the store again, answers say how far it got.
    let mut v = srv.get("/v1/search?q=tobacco").json();
    for _ in 0..600 {
        if v["indexed_arrival"] == v["store_arrival"] {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        v = srv.get("/v1/search?q=tobacco").json();
    }
    assert_eq!(v["indexed_arrival"], v["store_arrival"], "{v}");
    assert!(result_ids(&v).contains(&s.ruling.to_hex()), "{v}");
}
