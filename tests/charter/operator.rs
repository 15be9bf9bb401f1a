//! The operator's commands one by one, through the real binary: what each refuses (with a
//! clear error, a non-zero exit and nothing written) as well as what it does, and a running
//! node certified again without a restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::charters::*;
use crate::common::{bin, key, org};
use crate::procs::{free_port, get_json, NodeDir, Proc};
use crate::readme::{eventually, start};
use entrepot::charter::{certify_node, encode, SignedCharter};

fn run(dir: Option<&Path>, cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    if let Some(d) = dir {
        cmd.arg("--dir").arg(d);
    }
    cmd.args(args).current_dir(cwd).env_remove("ENTREPOT_DIR").output().unwrap()
}

fn ok(dir: Option<&Path>, cwd: &Path, args: &[&str]) -> String {
    let out = run(dir, cwd, args);
    assert!(out.status.success(), "entrepot {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with exit 1 and `expect` in its error; returns the error.
fn refused(dir: Option<&Path>, cwd: &Path, args: &[&str], expect: &str) -> String {
    let out = run(dir, cwd, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "entrepot {args:?} should fail: {stderr}");
    assert!(stderr.contains(expect), "entrepot {args:?}: expected '{expect}' in: {stderr}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A signed genesis in `w/v1.charter`: WCO publishes opinions with key 1, FR (replicas only)
/// holds key 3.
fn genesis_file(w: &Path) -> (SignedCharter, PathBuf) {
    let mut fr = member("FR", vec![grant(&key(3), 1, None)], &[]);
    fr.country = Some("FR".into());
    let g = sign(&genesis(FAR, vec![member("WCO", vec![grant(&key(1), 1, None)], &[OPINION]), fr]), &[100, 101]);
    let path = w.join("v1.charter");
    std::fs::write(&path, encode(&g)).unwrap();
    (g, path)
}

fn write_key(w: &Path, name: &str, label: u8) -> PathBuf {
    let path = w.join(name);
    std::fs::write(&path, hex::encode(key(label).to_bytes())).unwrap();
    path
}

const OPINION_BODY: &str = r#"{"title": {"en": "Camera drone"}, "reference": "HSC/70/1",
  "product": {"description": {"en": "Quadcopter with camera"}},
  "classification": {"edition": "HS2022", "code": "8806.22"}, "gir": ["1", "6"],
  "reasons": {"en": "Heading 8806."}, "validity": {"from": "2022-01-01"}}"#;

#[test]
fn keygen_makes_a_private_key_file_prints_its_public_key_and_never_overwrites_one() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let out = ok(None, w, &["charter", "keygen", "--out", "root.key"]);
    let printed = out.lines().find_map(|l| l.strip_prefix("public key ")).unwrap();
    let secret = entrepot::config::load_signing_key(&w.join("root.key")).unwrap();
    assert_eq!(printed, hex::encode(secret.verifying_key().to_bytes()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(w.join("root.key")).unwrap().permissions().mode() & 0o777, 0o600);
    let before = std::fs::read(w.join("root.key")).unwrap();
    refused(None, w, &["charter", "keygen", "--out", "root.key"], "must not exist");
    assert_eq!(std::fs::read(w.join("root.key")).unwrap(), before, "the key is unchanged");
}

#[test]
fn certify_node_refuses_without_a_pinned_charter_and_with_a_key_the_charter_does_not_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let (g, v1) = genesis_file(w);
    let hash = g.hash().to_hex();
    let wco = w.join("wco");
    ok(Some(&wco), w, &["init", "--org", "WCO", "--network", "lab"]);
    let peer = ok(Some(&wco), w, &["peer-id"]).trim().to_owned();
    // Before pinning, a certificate would name the keyring network: refused, nothing written.
    let cert = w.join("wco.cert");
    refused(Some(&wco), w, &["charter", "certify-node", "--peer-id", &peer, "--out", s(&cert)], "no charter is pinned");
    assert!(!cert.exists());
    // Pinned: the node's own key (the one `init` made) is not WCO's key 1 in this genesis.
    ok(Some(&wco), w, &["charter", "pin", s(&v1), "--genesis-hash", &hash]);
    let e = refused(
        Some(&wco),
        w,
        &["charter", "certify-node", "--peer-id", &peer, "--out", s(&cert)],
        "would not be valid",
    );
    assert!(e.contains("key_not_authorized"), "{e}");
    assert!(!cert.exists());
    // Not a peer id at all.
    refused(
        Some(&wco),
        w,
        &["charter", "certify-node", "--peer-id", "node-1", "--out", s(&cert)],
        "not a libp2p peer id",
    );
    // With WCO's key the certificate is made, although config.toml already names node.cert
    // and the file does not exist yet (`pin` wrote the line).
    assert!(std::fs::read_to_string(wco.join("config.toml")).unwrap().contains("certificate = \"node.cert\""));
    std::fs::write(wco.join("keys/signing.key"), hex::encode(key(1).to_bytes())).unwrap();
    let made = ok(Some(&wco), w, &["charter", "certify-node", "--peer-id", &peer, "--out", s(&wco.join("node.cert"))]);
    assert!(made.contains("(WCO, charter version 1)"), "{made}");
    let node = entrepot::config::open(&wco).unwrap();
    let held = node.certificate.as_ref().expect("the node loads its certificate");
    assert_eq!(held.verify(node.keyring.charter().unwrap(), &g.hash().0, &peer), Ok(()));
}

#[test]
fn a_member_without_a_publishing_node_certifies_its_replica_with_its_organization_key() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let (g, v1) = genesis_file(w);
    let hash = g.hash().to_hex();
    let fr = w.join("fr");
    // A bad pin (a hash the files do not verify from) creates nothing.
    let other = "ab".repeat(32);
    refused(Some(&fr), w, &["init", "--replica", "--genesis-hash", &other, "--charter", s(&v1)], "do not verify");
    assert!(!fr.exists(), "nothing was created");
    let made = ok(Some(&fr), w, &["init", "--replica", "--genesis-hash", &hash, "--charter", s(&v1)]);
    assert!(made.contains(&format!("genesis {hash}")), "{made}");
    let peer = ok(Some(&fr), w, &["peer-id"]).trim().to_owned();
    let fr_key = write_key(w, "fr.key", 3);
    let wco_key = write_key(w, "wco.key", 1);
    let cert = fr.join("node.cert");
    let base = ["charter", "certify-node", "--genesis-hash", &hash, "--charter", s(&v1), "--peer-id", &peer];
    // A key of another member does not certify FR's node; FR's own key does, run anywhere.
    let e = refused(None, w, &[&base[..], &["--org-key", s(&wco_key), "--org", "FR", "--out", s(&cert)]].concat(), "");
    assert!(e.contains("key_not_authorized"), "{e}");
    refused(
        None,
        w,
        &[&base[..], &["--org-key", s(&fr_key), "--org", "XX", "--out", s(&cert)]].concat(),
        "unknown_organization",
    );
    assert!(!cert.exists());
    ok(None, w, &[&base[..], &["--org-key", s(&fr_key), "--org", "FR", "--out", s(&cert)]].concat());
    // The replica's own charter serves as well (`--dir` on the replica, no --genesis-hash).
    let again = w.join("again.cert");
    ok(
        Some(&fr),
        w,
        &["charter", "certify-node", "--org-key", s(&fr_key), "--org", "FR", "--peer-id", &peer, "--out", s(&again)],
    );
    let node = entrepot::config::open(&fr).unwrap();
    assert_eq!(node.network_id, g.hash().0, "the store is bound to the genesis from the start");
    let held = node.certificate.as_ref().unwrap();
    assert_eq!(held.organization, org("FR"));
    assert_eq!(held.verify(node.keyring.charter().unwrap(), &g.hash().0, &peer), Ok(()));
}

#[test]
fn pin_re_binds_an_empty_store_and_refuses_one_that_holds_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let (g, v1) = genesis_file(w);
    let hash = g.hash().to_hex();
    std::fs::write(w.join("opinion.json"), OPINION_BODY).unwrap();
    let used = w.join("used");
    ok(Some(&used), w, &["init", "--org", "WCO", "--network", "lab"]);
    // The body as an option, as the README writes it; and positional, as before.
    ok(Some(&used), w, &["publish", "--type", OPINION, "--body", "opinion.json"]);
    let positional = ok(Some(&used), w, &["publish", "opinion.json", "--type", OPINION]);
    assert!(positional.contains("already published"), "{positional}");
    let both = run(Some(&used), w, &["publish", "opinion.json", "--type", OPINION, "--body", "opinion.json"]);
    assert_eq!(both.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
    let config = std::fs::read_to_string(used.join("config.toml")).unwrap();
    let e = refused(Some(&used), w, &["charter", "pin", s(&v1), "--genesis-hash", &hash], "cannot be re-bound");
    assert!(e.contains("aside"), "{e}");
    assert_eq!(std::fs::read_to_string(used.join("config.toml")).unwrap(), config, "config.toml unchanged");
    assert!(!used.join("charter").exists());
    assert_eq!(ok(Some(&used), w, &["heads"]).lines().count(), 1, "the node still opens, with its document");

    let fresh = w.join("fresh");
    ok(Some(&fresh), w, &["init", "--org", "WCO", "--network", "lab"]);
    refused(Some(&fresh), w, &["charter", "pin", s(&v1), "--genesis-hash", &"cd".repeat(32)], "do not verify");
    ok(Some(&fresh), w, &["charter", "pin", s(&v1), "--genesis-hash", &hash]);
    refused(Some(&fresh), w, &["charter", "pin", s(&v1), "--genesis-hash", &hash], "already pinned");
    let node = entrepot::config::open(&fresh).unwrap();
    assert_eq!(node.network_id, g.hash().0);
    assert_eq!(node.keyring.charter().unwrap().latest().charter.version, 1);
}

#[test]
fn charter_next_adds_a_member_from_a_file_and_refuses_a_duplicate_a_taken_key_or_a_bad_field() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let (g, v1) = genesis_file(w);
    let be_key = hex::encode(key(7).verifying_key().to_bytes());
    let org_file = |name: &str, id: &str, country: &str, k: &str| {
        let body = serde_json::json!({ "id": id, "name": "Douanes", "country": country, "region": "EU",
            "role": "customs", "keys": [{ "key": k, "valid_from_seq": 1 }],
            "permissions": [{ "type": "classification.ruling" }] });
        std::fs::write(w.join(name), body.to_string()).unwrap();
        name.to_owned()
    };
    let v2 = w.join("v2.charter");
    let next = |file: &str| ["charter", "next", s(&v1), "--out", s(&v2), "--add-org", file].map(str::to_owned);
    let fail = |file: String, expect: &str| {
        refused(None, w, &strs(&next(&file)), expect);
        assert!(!v2.exists(), "nothing written for {file}");
    };
    fail(org_file("dup.json", "FR", "FR", &be_key), "FR is already a member");
    let wco_key = hex::encode(key(1).verifying_key().to_bytes());
    fail(org_file("taken.json", "BE", "BE", &wco_key), "already WCO's");
    fail(org_file("country.json", "BE", "bel", &be_key), "country");
    std::fs::write(
        w.join("extra.json"),
        r#"{"id": "BE", "name": "x", "role": "customs", "keys": [], "permissions": [], "vat": 1}"#,
    )
    .unwrap();
    fail("extra.json".into(), "unknown field");
    ok(None, w, &strs(&next(&org_file("be.json", "BE", "BE", &be_key))));
    let v2c = entrepot::config::read_charter_file(&v2).unwrap();
    assert_eq!(v2c.charter.version, 2);
    assert_eq!(v2c.charter.previous, Some(g.hash()));
    let be = v2c.charter.member(&org("BE")).expect("BE is a member of version 2");
    assert_eq!(be.country.as_deref(), Some("BE"));
    assert_eq!(hex::encode(be.keys[0].key.0), be_key);
}

/// A node directory of `dir` with free ports, as procs.rs drives them.
fn node_dir(dir: &Path) -> NodeDir {
    let cfg = entrepot::config::load_config(dir).unwrap();
    let peer_id = entrepot::net::load_identity(&dir.join("keys/node.key")).unwrap().public().to_peer_id();
    NodeDir {
        dir: dir.to_owned(),
        http: cfg.http.listen.parse().unwrap(),
        p2p: format!("{}/p2p/{peer_id}", cfg.p2p.listen[0]),
        peer_id: peer_id.to_string(),
        token: std::fs::read_to_string(dir.join("keys/api.token")).unwrap().trim().to_owned(),
    }
}

#[test]
fn a_running_node_certified_again_shows_its_new_certificate_after_sighup_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let (g, v1) = genesis_file(w);
    let hash = g.hash().to_hex();
    // `init … --genesis-hash --charter` with free loopback ports, and `extra`.
    let init = |dir: &Path, role: &[&str], extra: &[&str]| {
        let mut a: Vec<String> =
            ["init", "--genesis-hash", hash.as_str(), "--charter", s(&v1)].map(str::to_owned).into();
        a.extend(role.iter().chain(extra).map(|x| x.to_string()));
        a.extend(["--p2p-listen".into(), format!("/ip4/127.0.0.1/tcp/{}", free_port())]);
        a.extend(["--http-listen".into(), format!("127.0.0.1:{}", free_port())]);
        ok(Some(dir), w, &strs(&a));
    };
    // FR's replica runs first, with no certificate yet (its config names node.cert).
    let fr = w.join("fr");
    init(&fr, &["--replica"], &[]);
    let fr_node = node_dir(&fr);
    let log = w.join("fr.log");
    let fr_proc = start(w, "entrepot --dir fr run", "info");

    // Certified while it runs: certify-node does not need the store the node holds.
    let fr_key = write_key(w, "fr.key", 3);
    let certify = |out: &Path, org_id: &str, k: &Path| {
        ok(
            None,
            w,
            &[
                "charter",
                "certify-node",
                "--genesis-hash",
                hash.as_str(),
                "--charter",
                s(&v1),
                "--peer-id",
                fr_node.peer_id.as_str(),
                "--org-key",
                s(k),
                "--org",
                org_id,
                "--out",
                s(out),
            ],
        )
    };
    // A certificate for another peer id in its place first: SIGHUP replaces nothing.
    let stranger = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id().to_string();
    let wrong = certify_node(&g.hash().0, &org("FR"), &stranger, 1_800_000_000_000, &key(3)).unwrap();
    std::fs::write(fr.join("node.cert"), &wrong.bytes).unwrap();
    fr_proc.signal("HUP");
    let logged = |what: &str| std::fs::read_to_string(&log).unwrap_or_default().contains(what);
    assert!(
        eventually(Duration::from_secs(20), || logged("was not replaced")),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(logged("wrong_peer"), "{}", std::fs::read_to_string(&log).unwrap());
    assert!(!logged("peers connecting from now on"), "nothing was replaced");
    std::fs::remove_file(fr.join("node.cert")).unwrap();
    certify(&fr.join("node.cert"), "FR", &fr_key);
    fr_proc.signal("HUP");
    assert!(
        eventually(Duration::from_secs(20), || logged("was re-read and is in force")
            && logged("peers connecting from now on")),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    // The WCO's node starts afterwards and dials the replica: it admits it as FR, by the
    // certificate the replica shows now, and the replica replicates its opinion.
    let wco = w.join("wco");
    init(&wco, &["--org", "WCO"], &["--bootstrap", fr_node.p2p.as_str()]);
    std::fs::write(wco.join("keys/signing.key"), hex::encode(key(1).to_bytes())).unwrap();
    let wco_node = node_dir(&wco);
    ok(Some(&wco), w, &["charter", "certify-node", "--peer-id", &wco_node.peer_id, "--out", s(&wco.join("node.cert"))]);
    std::fs::write(w.join("opinion.json"), OPINION_BODY).unwrap();
    ok(Some(&wco), w, &["publish", "--type", OPINION, "--body", "opinion.json"]);
    let _wco_proc = Proc::start(&wco_node, &[]);
    let admitted = || {
        get_json(wco_node.http, "/v1/peers").is_some_and(|p| {
            p["peers"].as_array().is_some_and(|peers| {
                peers
                    .iter()
                    .any(|x| x["peer_id"] == fr_node.peer_id && x["admitted"] == true && x["organization"] == "FR")
            })
        })
    };
    assert!(
        eventually(Duration::from_secs(60), admitted),
        "WCO did not admit the re-certified replica: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    let replicated = || {
        get_json(fr_node.http, "/v1/documents?type=classification.opinion")
            .is_some_and(|l| l["documents"].as_array().is_some_and(|d| d.len() == 1))
    };
    assert!(eventually(Duration::from_secs(60), replicated), "{}", std::fs::read_to_string(&log).unwrap());
}
