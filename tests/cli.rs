//! The command line, end to end through the real binary: the happy path, and bad input that
//! gets a clear error and leaves the store unchanged.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::bin;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin()).arg("--dir").arg(dir).args(args).output().expect("entrepot runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(out.status.success(), "entrepot {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(dir: &Path, args: &[&str], code: i32, expect_in_stderr: &str) -> String {
    let out = run(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "entrepot {args:?}: {stderr}");
    assert!(stderr.contains(expect_in_stderr), "entrepot {args:?}: expected '{expect_in_stderr}' in: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

const OPINION: &str = r#"{
  "title": { "en": "Classification of a camera drone", "fr": "Classement d'un drone" },
  "reference": "HSC/70/1",
  "product": { "description": { "en": "Quadcopter with camera, 0.9 kg" } },
  "classification": { "edition": "HS2022", "code": "8806.22" },
  "gir": ["1", "6"],
  "reasons": { "en": "Heading 8806 covers unmanned aircraft." },
  "validity": { "from": "2022-01-01" }
}"#;

#[test]
fn publish_get_list_export_import_and_verify_across_two_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("wco");
    let b = tmp.path().join("replica");
    ok(&a, &["init", "--org", "WCO", "--name", "World Customs Organization", "--network", "cli-test"]);
    fails(&a, &["init", "--org", "WCO", "--network", "cli-test"], 1, "already holds a node");
    let body = tmp.path().join("opinion.json");
    std::fs::write(&body, OPINION).unwrap();
    let published = ok(&a, &["publish", body.to_str().unwrap(), "--type", "classification.opinion"]);
    let id = published.split_whitespace().next().unwrap().to_owned();
    assert!(published.contains("WCO#1"));

    let got: serde_json::Value = serde_json::from_str(&ok(&a, &["get", &id])).unwrap();
    assert_eq!(got["verification"]["valid"], true);
    assert_eq!(got["header"]["publisher"], "WCO");
    assert_eq!(got["body"]["reference"], "HSC/70/1");

    assert!(ok(&a, &["list", "--hs", "88"]).contains(&id));
    assert!(ok(&a, &["list", "--hs", "8806.22", "--in-force", "2023-05-01"]).contains(&id));
    assert!(!ok(&a, &["list", "--in-force", "2021-12-31"]).contains(&id));
    assert!(ok(&a, &["list", "--text", "DRONE"]).contains(&id));

    let bundle = tmp.path().join("wco.bundle");
    ok(&a, &["export", "--out", bundle.to_str().unwrap()]);
    let keyring = a.join("keyring.json");
    let verified = ok(tmp.path(), &["verify", bundle.to_str().unwrap(), "--keyring", keyring.to_str().unwrap()]);
    assert!(verified.contains("verified 1 document(s), refused 0"), "{verified}");

    ok(&b, &["init", "--replica", "--network", "cli-test"]);
    fails(&b, &["publish", body.to_str().unwrap(), "--type", "classification.opinion"], 1, "read replica");
    // The replica does not trust WCO yet: the import refuses the document and stores nothing.
    let report = fails(&b, &["import", bundle.to_str().unwrap()], 2, "1 refused");
    assert!(report.contains("unknown_publisher"), "{report}");
    assert_eq!(ok(&b, &["heads"]), "");
    let key = ok(&a, &["public-key"]).trim().to_owned();
    ok(&b, &["keyring", "add", "--org", "WCO", "--name", "World Customs Organization", "--key", &key]);
    let report = ok(&b, &["import", bundle.to_str().unwrap()]);
    assert!(report.contains("\"result\":\"stored\""), "{report}");
    let report = ok(&b, &["import", bundle.to_str().unwrap()]);
    assert!(report.contains("\"result\":\"duplicate\""), "{report}");
    assert!(ok(&b, &["heads"]).contains(&id));
    assert_eq!(ok(&a, &["heads"]), ok(&b, &["heads"]));
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("wco");
    ok(&a, &["init", "--org", "WCO", "--network", "cli-test"]);
    let body = tmp.path().join("opinion.json");
    std::fs::write(&body, OPINION).unwrap();
    ok(&a, &["publish", body.to_str().unwrap(), "--type", "classification.opinion"]);
    let heads_before = ok(&a, &["heads"]);

    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, OPINION.replace("\"gir\": [\"1\", \"6\"],", "")).unwrap();
    fails(&a, &["publish", bad.to_str().unwrap(), "--type", "classification.opinion"], 1, "gir");
    std::fs::write(&bad, "{ not json").unwrap();
    fails(&a, &["publish", bad.to_str().unwrap(), "--type", "classification.opinion"], 1, "not JSON");
    fails(&a, &["publish", body.to_str().unwrap(), "--type", "hs.tariff"], 1, "unknown document type 'hs.tariff'");
    fails(&a, &["publish", "/nonexistent/body.json", "--type", "classification.opinion"], 1, "/nonexistent/body.json");
    std::fs::write(&bad, OPINION.replace("8806.22", "8806.2")).unwrap();
    fails(&a, &["publish", bad.to_str().unwrap(), "--type", "classification.opinion"], 1, "schema");
    std::fs::write(&bad, OPINION.replace("2022-01-01", "2022-02-30")).unwrap();
    fails(&a, &["publish", bad.to_str().unwrap(), "--type", "classification.opinion"], 1, "2022-02-30");
    fails(&a, &["get", "xyz"], 1, "64 hex digits");
    fails(&a, &["get", &"ab".repeat(32)], 1, "no document");
    fails(&a, &["list", "--in-force", "yesterday"], 1, "not a date");
    fails(&a, &["list", "--hs", "85A"], 1, "digits");
    fails(&a, &["list", "--limit", "0"], 1, "--limit");
    fails(&a, &["list", "--cursor", "00ff"], 1, "cursor");
    fails(&a, &["import", body.to_str().unwrap()], 1, "not a bundle");
    fails(&a, &["keyring", "add", "--org", "wto", "--name", "x", "--key", "00"], 1, "organization id");
    fails(&a, &["keyring", "add", "--org", "WTO", "--name", "x", "--key", "00"], 1, "64 hex digits");
    assert_eq!(ok(&a, &["heads"]), heads_before);

    // A bundle from another network is refused whole.
    let other = tmp.path().join("other");
    ok(&other, &["init", "--org", "WCO", "--network", "other-net"]);
    ok(&other, &["publish", body.to_str().unwrap(), "--type", "classification.opinion"]);
    let bundle = tmp.path().join("other.bundle");
    ok(&other, &["export", "--out", bundle.to_str().unwrap()]);
    fails(&a, &["import", bundle.to_str().unwrap()], 1, "nothing was imported");
    assert_eq!(ok(&a, &["heads"]), heads_before);

    // A tampered bundle: verify names the document, import refuses it and stores nothing.
    let mine = tmp.path().join("mine.bundle");
    ok(&a, &["export", "--out", mine.to_str().unwrap()]);
    let mut bytes = std::fs::read(&mine).unwrap();
    let at = bytes.windows(8).position(|w| w == b"HSC/70/1").unwrap();
    bytes[at + 7] = b'2';
    std::fs::write(&mine, &bytes).unwrap();
    let fresh = tmp.path().join("fresh");
    ok(&fresh, &["init", "--replica", "--network", "cli-test"]);
    std::fs::copy(a.join("keyring.json"), fresh.join("keyring.json")).unwrap();
    let out = run(&fresh, &["verify", mine.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bad_signature"));
    let report = fails(&fresh, &["import", mine.to_str().unwrap()], 2, "0 stored");
    assert!(report.contains("bad_signature"), "{report}");
    assert_eq!(ok(&fresh, &["heads"]), "");

    // A broken config names the file and the problem.
    std::fs::write(a.join("config.toml"), "network = 5\n").unwrap();
    fails(&a, &["heads"], 1, "config.toml");
    let nowhere = tmp.path().join("nowhere");
    fails(&nowhere, &["heads"], 1, "entrepot init");
}

#[test]
fn search_finds_a_stopped_nodes_documents_and_rebuilds_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("wco");
    ok(&a, &["init", "--org", "WCO", "--network", "cli-search"]);
    let body = tmp.path().join("opinion.json");
    std::fs::write(&body, OPINION).unwrap();
    let published = ok(&a, &["publish", body.to_str().unwrap(), "--type", "classification.opinion"]);
    let id = published.split_whitespace().next().unwrap().to_owned();

    // The first search indexes what the store holds, then answers.
    let found = ok(&a, &["search", "quadcopter", "cameras"]);
    assert!(found.contains("1 documents match") && found.contains(&id), "{found}");
    assert!(found.contains("HS2022:880622"), "the classification is shown: {found}");
    assert!(ok(&a, &["search", "drone", "--hs", "88.06", "--publisher", "WCO"]).contains(&id));
    assert!(ok(&a, &["search", "drone", "--hs", "85"]).contains("0 documents match"));
    assert!(ok(&a, &["search", "--type", "classification.opinion"]).contains(&id), "no words: the newest");

    let rebuilt = run(&a, &["search", "--rebuild"]);
    assert!(rebuilt.status.success());
    assert!(String::from_utf8_lossy(&rebuilt.stderr).contains("indexed 1 documents"), "{rebuilt:?}");
    assert!(ok(&a, &["search", "drone"]).contains(&id));

    // Bad input: a clear error, nothing done.
    fails(&a, &["search", "drone", "--hs", "88A"], 1, "--hs '88A' must be 1 to 10 digits");
    fails(&a, &["search", "drone", "--limit", "0"], 1, "--limit must be between 1 and 100");
    fails(&a, &["search", "drone", "--from", "2026-02-01", "--to", "2026-01-01"], 1, "--from is after --to");
    fails(&a, &["search", &"x".repeat(201)], 1, "at most 200 characters");
    fails(&a, &["search", "drone", "--type", "hs.tariff"], 1, "hs.tariff");
}
