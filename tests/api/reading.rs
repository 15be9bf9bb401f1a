//! What the web page reads, as the API gives it: what ended a document (dates, acts, reasons),
//! list rows with their lifecycle badge and verified mark, publishers' names, lists in issue
//! order with cursors that stay stable while documents arrive, HS codes typed as people write
//! them, and the charter's members.

use serde_json::{json, Value};

use entrepot::charter::{Member, Permission, Role};
use entrepot::document::{OrgId, TypeName};
use entrepot::hsdata::HsData;

use super::common::charters::{genesis, grant, sign, FAR};
use super::common::key;
use super::http::TestServer;
use super::{ids, start_seeded, DRONE_OPINION};

#[test]
fn a_superseded_or_withdrawn_document_says_when_by_what_and_why() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);
    let old = srv.get(&format!("/v1/documents/{}", s.opinion_old)).json();
    assert_eq!(old["summary"]["lifecycle"], "superseded", "{old}");
    let events = old["lifecycle"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{old}");
    let e = &events[0];
    assert_eq!(e["state"], "superseded");
    assert_eq!(e["on"], "2023-01-01");
    assert_eq!(e["in_effect"], true);
    assert_eq!(e["by"]["id"], s.supersede_act.to_hex());
    assert_eq!(e["replacement"]["id"], s.opinion_new.to_hex());
    assert_eq!(e["replacement"]["document"]["title"], "Classification of camera drones (revised)");
    assert_eq!(e["reason"]["en"], "Revised after the HSC 70th session.");

    let ruling = srv.get(&format!("/v1/documents/{}", s.ruling)).json();
    assert_eq!(ruling["summary"]["lifecycle"], "withdrawn");
    let e = &ruling["lifecycle"][0];
    assert_eq!((e["state"].as_str(), e["on"].as_str()), (Some("withdrawn"), Some("2024-06-01")), "{ruling}");
    assert_eq!(e["reason"]["en"], "Issued on incomplete information.");
    assert!(e["replacement"].is_null(), "a withdrawal replaces nothing: {e}");

    // The successor and an untouched document carry no lifecycle.
    let new = srv.get(&format!("/v1/documents/{}", s.opinion_new)).json();
    assert!(new["summary"].get("lifecycle").is_none() && new["lifecycle"] == json!([]), "{new}");

    // Lists: every row says whether it verifies and what ended it.
    let list = srv.get("/v1/documents?type=classification.opinion").json();
    let rows = list["documents"].as_array().unwrap();
    assert!(rows.iter().all(|d| d["verified"] == true), "{list}");
    let state = |id: &str| rows.iter().find(|d| d["id"] == id).map(|d| d.get("lifecycle").cloned());
    assert_eq!(state(&s.opinion_old.to_hex()), Some(Some(json!("superseded"))));
    assert_eq!(state(&s.opinion_new.to_hex()), Some(None));
}

#[test]
fn hs_lists_come_newest_first_and_their_cursor_holds_while_documents_arrive() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);
    // The HS index orders the documents under one code by id; the seed's two opinions happen to
    // be in date order by id too (tests/store.rs has a walk where they are not), so what this
    // adds is the `order` the answer declares and the cursor's stability.
    let all = srv.get("/v1/documents?hs=880622&type=classification.opinion").json();
    assert_eq!(ids(&all), vec![s.opinion_new.to_hex(), s.opinion_old.to_hex()], "newest issue first: {all}");
    assert_eq!(all["order"], "issued");
    let issued: Vec<&str> =
        all["documents"].as_array().unwrap().iter().map(|d| d["issued_at"].as_str().unwrap()).collect();
    assert!(issued[0] > issued[1], "{issued:?}");

    // One per page: a document published between the pages does not shift the second.
    let first = srv.get("/v1/documents?hs=880622&type=classification.opinion&limit=1").json();
    assert_eq!(ids(&first), vec![s.opinion_new.to_hex()]);
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let published = srv.post("/v1/documents?type=classification.opinion", DRONE_OPINION.as_bytes(), Some(&srv.token));
    assert_eq!(published.status, 201, "{}", published.text());
    let second =
        srv.get(&format!("/v1/documents?hs=880622&type=classification.opinion&limit=1&cursor={cursor}")).json();
    assert_eq!(ids(&second), vec![s.opinion_old.to_hex()], "{second}");
    assert!(second["next_cursor"].is_null(), "the last page: {second}");
    // Started again, the new document comes first.
    let again = srv.get("/v1/documents?hs=880622&type=classification.opinion").json();
    assert_eq!(ids(&again)[0], published.json()["id"].as_str().unwrap());
    assert_eq!(ids(&again).len(), 3);

    // Other walks say their order.
    assert_eq!(srv.get("/v1/documents?type=classification.opinion").json()["order"], "issued");
    assert_eq!(srv.get("/v1/documents?publisher=US").json()["order"], "feed");
    assert_eq!(srv.get("/v1/documents?in_force=2024-01-01").json()["order"], "valid_from");
    // A cursor of one walk is not one of another.
    let bad = srv.get(&format!("/v1/documents?hs=880622&cursor=06{}", "00".repeat(8)));
    assert_eq!(bad.status, 400, "{}", bad.text());
}

#[test]
fn hs_codes_are_accepted_with_dots_spaces_or_digits_only() {
    let (srv, s) = start_seeded(&HsData::excerpt(), false);
    let want = vec![s.opinion_new.to_hex(), s.opinion_old.to_hex()];
    for written in ["880622", "8806.22", "8806%2022", "8806+22", "88.06.22"] {
        let r = srv.get(&format!("/v1/documents?hs={written}&type=classification.opinion"));
        assert_eq!(r.status, 200, "{written}: {}", r.text());
        assert_eq!(ids(&r.json()), want, "{written}");
        let t = srv.get(&format!("/v1/hs/HS2022/{}", written.replace('+', "%20")));
        assert_eq!(t.status, 200, "{written}: {}", t.text());
        assert_eq!(t.json()["code"], "880622", "{written}");
    }
    for bad in ["8806-22", "8806%0922", "88O6"] {
        let r = srv.get(&format!("/v1/documents?hs={bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "bad_request", "{bad}");
    }
}

#[test]
fn organizations_are_named_from_the_keyring_and_the_charter_lists_its_members() {
    let (srv, _) = start_seeded(&HsData::excerpt(), false);
    let orgs = srv.get("/v1/organizations").json();
    let names: Vec<(String, String)> = orgs["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_owned(), o["name"].as_str().unwrap().to_owned()))
        .collect();
    assert!(names.contains(&("WCO".into(), "World Customs Organization".into())), "{orgs}");
    assert!(names.contains(&("US".into(), "U.S. Customs and Border Protection".into())), "{orgs}");
    assert_eq!(srv.get("/v1/charter").status, 404, "a keyring network has no charter");

    let member = |id: &str, name: &str, role, country: Option<&str>, k| Member {
        id: OrgId::new(id).unwrap(),
        name: name.into(),
        country: country.map(str::to_owned),
        region: country.map(|_| "EU".to_owned()),
        role,
        keys: vec![grant(&key(k), 1, None)],
        permissions: vec![Permission {
            doc_type: TypeName::new("classification.opinion").unwrap(),
            hs_chapters: None,
            regions: None,
        }],
    };
    let g = sign(
        &genesis(
            FAR,
            vec![
                member("WCO", "World Customs Organization", Role::Secretariat, None, 1),
                member("FR", "Direction générale des douanes et droits indirects", Role::Customs, Some("FR"), 3),
            ],
        ),
        &[100, 101],
    );
    let srv = TestServer::start_charter("FR", &key(3), &g);
    let c = srv.get("/v1/charter").json();
    assert_eq!((c["version"].as_u64(), c["state"].as_str()), (Some(1), Some("valid")), "{c}");
    assert_eq!(c["expires"], FAR);
    let members: Vec<&Value> = c["members"].as_array().unwrap().iter().collect();
    assert_eq!(members.len(), 2, "{c}");
    let fr = members.iter().find(|m| m["id"] == "FR").expect("FR is a member");
    assert_eq!(fr["name"], "Direction générale des douanes et droits indirects");
    assert_eq!(
        (fr["role"].as_str(), fr["country"].as_str(), fr["region"].as_str()),
        (Some("customs"), Some("FR"), Some("EU"))
    );
    assert_eq!(fr["types"], json!(["classification.opinion"]));
    let wco = members.iter().find(|m| m["id"] == "WCO").unwrap();
    assert_eq!((wco["role"].as_str(), wco["country"].as_str()), (Some("secretariat"), None));
    let orgs = srv.get("/v1/organizations").json();
    let fr = orgs["organizations"].as_array().unwrap().iter().find(|o| o["id"] == "FR").cloned().unwrap();
    assert_eq!((fr["role"].as_str(), fr["country"].as_str()), (Some("customs"), Some("FR")), "{orgs}");
}
