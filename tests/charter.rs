//! The charter as a node enforces it: scenarios through the ingest pipeline and the store, and
//! a node directory configured with a charter.

mod common;
#[path = "charter/operator.rs"]
mod operator;
#[path = "common/procs.rs"]
mod procs;
#[path = "charter/readme.rs"]
mod readme;

use common::charters::*;
use common::*;
use entrepot::authority::Keyring;
use entrepot::bench::sign_feed;
use entrepot::charter::{certify_node, decode_cert, encode, verify_chain, Charter, CharterHash};
use entrepot::document::{DocumentId, Seq};
use entrepot::ingest::{IngestError, Ingestor};
use entrepot::store::{IngestOutcome, Store};

/// Root keys 100, 101, 102 with threshold 2; WCO publishes opinions with key 1.
fn genesis_body(expires: &str) -> Charter {
    genesis(
        expires,
        vec![
            member("WCO", vec![grant(&key(1), 1, None)], &[OPINION]),
            member("FR", vec![grant(&key(3), 1, None)], &["classification.ruling"]),
        ],
    )
}

fn codes(r: Vec<Result<IngestOutcome, IngestError>>) -> Vec<Result<IngestOutcome, String>> {
    r.into_iter().map(|r| r.map_err(|e| e.code().to_owned())).collect()
}

/// A store and the network id of a charter network (the genesis hash).
fn ingest(store: &Store, ring: &Keyring, net: [u8; 32], docs: Vec<Vec<u8>>) -> Vec<Result<IngestOutcome, String>> {
    codes(Ingestor { store, network_id: net, keyring: ring, sync: false }.ingest(docs).unwrap())
}

#[test]
fn a_non_member_and_a_type_not_permitted_are_refused_and_nothing_is_stored() {
    let g = sign(&genesis_body(FAR), &[100, 101]);
    let net = g.hash().0;
    let ring = Keyring::from_charter(chain(&[g]));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net).unwrap();

    let stranger = sign_feed(&[opinion(1, "8806.22")], &org("XX"), &key(9), &net, Seq::FIRST, DocumentId::ZERO);
    assert_eq!(ingest(&store, &ring, net, stranger), vec![Err("unknown_publisher".to_owned())]);
    let wrong_type = sign_feed(&[opinion(1, "8806.22")], &org("FR"), &key(3), &net, Seq::FIRST, DocumentId::ZERO);
    assert_eq!(ingest(&store, &ring, net, wrong_type), vec![Err("type_not_permitted".to_owned())]);
    let wrong_key = sign_feed(&[opinion(1, "8806.22")], &org("WCO"), &key(2), &net, Seq::FIRST, DocumentId::ZERO);
    assert_eq!(ingest(&store, &ring, net, wrong_key), vec![Err("key_not_authorized".to_owned())]);
    assert_eq!(store.document_count().unwrap(), 0);

    let good = sign_feed(&[opinion(1, "8806.22")], &org("WCO"), &key(1), &net, Seq::FIRST, DocumentId::ZERO);
    assert_eq!(ingest(&store, &ring, net, good), vec![Ok(IngestOutcome::Stored)]);
}

#[test]
fn rotation_revokes_the_old_key_at_a_position_and_earlier_documents_stay_valid() {
    let g = sign(&genesis_body(FAR), &[100, 101]);
    let net = g.hash().0;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net).unwrap();
    let (old, new) = (key(1), key(2));

    // Four documents signed with the old key under version 1.
    let first = sign_feed(
        &(1..=4).map(|i| opinion(i, "8806.22")).collect::<Vec<_>>(),
        &org("WCO"),
        &old,
        &net,
        Seq(1),
        DocumentId::ZERO,
    );
    let head = DocumentId::of_envelope(&first[3]);
    let v1 = Keyring::from_charter(chain(std::slice::from_ref(&g)));
    assert!(ingest(&store, &v1, net, first.clone()).iter().all(|r| r.is_ok()));

    // The new key is not yet a WCO key under version 1.
    let by_new = sign_feed(&[opinion(5, "8806.22")], &org("WCO"), &new, &net, Seq(5), head);
    assert_eq!(ingest(&store, &v1, net, by_new.clone()), vec![Err("key_not_authorized".to_owned())]);

    // Version 2 (signed by 2 of the old roots and 2 of its own, which are the same set) rotates
    // WCO's key at position 5.
    let mut v2 = genesis_body(FAR);
    v2.version = 2;
    v2.previous = Some(g.hash());
    v2.organizations[0].keys = vec![grant(&old, 1, Some(5)), grant(&new, 5, None)];
    let v2 = sign(&v2, &[101, 102]);
    let ring = Keyring::from_charter(chain(&[g, v2]));

    // After the revocation point the old key is refused; the new one is accepted.
    let by_old = sign_feed(&[opinion(5, "8806.22")], &org("WCO"), &old, &net, Seq(5), head);
    assert_eq!(ingest(&store, &ring, net, by_old), vec![Err("key_revoked".to_owned())]);
    assert_eq!(ingest(&store, &ring, net, by_new), vec![Ok(IngestOutcome::Stored)]);

    // Before it, documents by the old key are still valid: a replica that receives them only
    // now, under version 2, stores them.
    let late = tempfile::tempdir().unwrap();
    let replica = Store::open(late.path(), &net).unwrap();
    assert!(ingest(&replica, &ring, net, first).iter().all(|r| *r == Ok(IngestOutcome::Stored)));
    // A key whose validity starts at 5 cannot sign position 1.
    let early = sign_feed(&[opinion(1, "8806.22")], &org("WCO"), &new, &net, Seq(1), DocumentId::ZERO);
    let other = tempfile::tempdir().unwrap();
    let fresh = Store::open(other.path(), &net).unwrap();
    assert_eq!(ingest(&fresh, &ring, net, early), vec![Err("key_not_valid_at_position".to_owned())]);
}

#[test]
fn an_expired_charter_extends_no_trust() {
    let g = sign(&genesis_body("2020-01-01T00:00:00Z"), &[100, 101]);
    let net = g.hash().0;
    let ring = Keyring::from_charter(chain(&[g]));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &net).unwrap();
    let doc = sign_feed(&[opinion(1, "8806.22")], &org("WCO"), &key(1), &net, Seq::FIRST, DocumentId::ZERO);
    assert_eq!(ingest(&store, &ring, net, doc), vec![Err("charter_expired".to_owned())]);
    assert_eq!(store.document_count().unwrap(), 0);
}

#[test]
fn a_charter_update_with_too_few_signatures_is_refused_and_the_old_version_stays() {
    let g = sign(&genesis_body(FAR), &[100, 101]);
    let mut body = genesis_body(FAR);
    body.version = 2;
    body.previous = Some(g.hash());
    body.organizations.push(member("XX", vec![grant(&key(9), 1, None)], &[OPINION]));
    let mut trusted = chain(std::slice::from_ref(&g));
    // One root signature, and one by a key that is not a root key.
    let short = sign(&body, &[100, 9]);
    let e = trusted.extend(short).unwrap_err();
    assert_eq!(e.code(), "too_few_signatures");
    assert_eq!(trusted.latest().charter.version, 1);
    // From the file bytes, too.
    let bytes = encode(&sign(&body, &[102]));
    let decoded = entrepot::charter::decode(&bytes).unwrap();
    assert_eq!(verify_chain(&g.hash(), &[g.clone(), decoded]).unwrap_err().code(), "too_few_signatures");
    // A genesis other than the pinned one is refused outright.
    assert_eq!(verify_chain(&CharterHash([1; 32]), &[g]).unwrap_err().code(), "genesis_mismatch");
}

#[test]
fn node_certificates_bind_a_libp2p_peer_to_its_organization() {
    let g = sign(&genesis_body(FAR), &[100, 101]);
    let net = g.hash().0;
    let chain = chain(&[g]);
    let peer = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id().to_string();
    let other = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id().to_string();

    let cert = certify_node(&net, &org("WCO"), &peer, 0, &key(1)).unwrap();
    let cert = decode_cert(&cert.bytes).unwrap();
    assert_eq!(cert.verify(&chain, &net, &peer), Ok(()));
    assert_eq!(cert.verify(&chain, &net, &other).unwrap_err().code(), "wrong_peer");
    let wrong_key = certify_node(&net, &org("WCO"), &peer, 0, &key(7)).unwrap();
    assert_eq!(wrong_key.verify(&chain, &net, &peer).unwrap_err().code(), "key_not_authorized");
}

#[test]
fn a_node_configured_with_a_charter_uses_it_and_its_genesis_as_network_id() {
    let g = sign(&genesis_body(FAR), &[100, 101]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("charter")).unwrap();
    std::fs::write(dir.path().join("charter/v000001.charter"), encode(&g)).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("network = \"charter-test\"\n[charter]\ngenesis_hash = \"{}\"\n", g.hash()),
    )
    .unwrap();
    let node = entrepot::config::open(dir.path()).unwrap();
    assert_eq!(node.network_id, g.hash().0);
    assert!(node.keyring.charter().is_some());
    let net = node.network_id;
    let good = sign_feed(&[opinion(1, "8806.22")], &org("WCO"), &key(1), &net, Seq::FIRST, DocumentId::ZERO);
    let bad = sign_feed(&[opinion(1, "8806.22")], &org("XX"), &key(9), &net, Seq::FIRST, DocumentId::ZERO);
    assert_eq!(
        ingest(&node.store, &node.keyring, net, [good, bad].concat()),
        vec![Ok(IngestOutcome::Stored), Err("unknown_publisher".to_owned())]
    );
    drop(node);

    // A wrong pin stops the node from opening.
    std::fs::write(
        dir.path().join("config.toml"),
        format!("network = \"charter-test\"\n[charter]\ngenesis_hash = \"{}\"\n", "ab".repeat(32)),
    )
    .unwrap();
    let e = entrepot::config::open(dir.path()).err().expect("a wrong pin is refused");
    assert!(e.to_string().contains("genesis"), "{e}");
}

fn entrepot(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(bin()).arg("--dir").arg(dir).args(args).output().unwrap();
    assert!(out.status.success(), "entrepot {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn entrepot_fails(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(bin()).arg("--dir").arg(dir).args(args).output().unwrap();
    assert!(!out.status.success(), "entrepot {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn operators_create_sign_pin_rotate_and_certify_from_the_command_line() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let node = w.join("node");
    let p = |name: &str| w.join(name).to_str().unwrap().to_owned();
    entrepot(&node, &["init", "--org", "WCO", "--network", "t"]);
    let wco_key = entrepot(&node, &["public-key"]).trim().to_owned();
    for r in [100u8, 101, 102] {
        std::fs::write(w.join(format!("root{r}.key")), hex::encode(key(r).to_bytes())).unwrap();
    }
    let roots: Vec<String> =
        [100u8, 101, 102].iter().map(|r| hex::encode(key(*r).verifying_key().to_bytes())).collect();
    let input = serde_json::json!({
        "expires": FAR,
        "root": { "keys": roots, "threshold": 2 },
        "organizations": [{ "id": "WCO", "name": "WCO", "role": "secretariat",
            "keys": [{ "key": wco_key, "valid_from_seq": 1 }],
            "permissions": [{ "type": OPINION }] }]
    });
    std::fs::write(w.join("genesis.json"), input.to_string()).unwrap();
    let g = w.join("v1.charter");
    let out = entrepot(w, &["charter", "genesis", "--input", &p("genesis.json"), "--out", g.to_str().unwrap()]);
    let hash = out.lines().find_map(|l| l.strip_prefix("hash ")).unwrap().to_owned();
    // Unsigned, it does not verify; each root key signs separately.
    let e = entrepot_fails(w, &["charter", "verify", "--genesis-hash", &hash, g.to_str().unwrap()]);
    assert!(e.contains("too_few_signatures"), "{e}");
    entrepot(w, &["charter", "sign", g.to_str().unwrap(), "--key", &p("root100.key")]);
    entrepot(w, &["charter", "sign", g.to_str().unwrap(), "--key", &p("root101.key")]);
    let ok = entrepot(w, &["charter", "verify", "--genesis-hash", &hash, g.to_str().unwrap()]);
    assert!(ok.contains("latest version 1"), "{ok}");

    // Pin it in the node: the network id becomes the genesis hash.
    std::fs::create_dir(node.join("charter")).unwrap();
    std::fs::copy(&g, node.join("charter/v000001.charter")).unwrap();
    let mut cfg = std::fs::read_to_string(node.join("config.toml")).unwrap();
    cfg.push_str(&format!("\n[charter]\ngenesis_hash = \"{hash}\"\n"));
    std::fs::write(node.join("config.toml"), cfg).unwrap();
    // The store was created for the name-derived network and refuses another id: a node joins
    // a charter network with a new store.
    std::fs::remove_dir_all(node.join("db")).unwrap();
    let opened = entrepot::config::open(&node).unwrap();
    assert_eq!(hex::encode(opened.network_id), hash);
    drop(opened);

    // The node certifies a peer with its organization key.
    let peer = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id().to_string();
    let cert_path = w.join("cert.bin");
    entrepot(&node, &["charter", "certify-node", "--peer-id", &peer, "--out", cert_path.to_str().unwrap()]);
    let cert = decode_cert(&std::fs::read(&cert_path).unwrap()).unwrap();
    let opened = entrepot::config::open(&node).unwrap();
    assert_eq!(cert.verify(opened.keyring.charter().unwrap(), &opened.network_id, &peer), Ok(()));
    drop(opened);

    // Rotation: version 2 adds a key from position 10 and revokes the old one there.
    let new_key = hex::encode(key(5).verifying_key().to_bytes());
    let v2 = w.join("v2.charter");
    entrepot(
        w,
        &[
            "charter",
            "next",
            g.to_str().unwrap(),
            "--out",
            v2.to_str().unwrap(),
            "--add-key",
            &format!("WCO:{new_key}:10"),
            "--revoke-key",
            &format!("WCO:{wco_key}:10"),
        ],
    );
    entrepot(w, &["charter", "sign", v2.to_str().unwrap(), "--key", &p("root102.key")]);
    let e = entrepot_fails(&node, &["charter", "install", v2.to_str().unwrap()]);
    assert!(e.contains("too_few_signatures"), "{e}");
    entrepot(w, &["charter", "sign", v2.to_str().unwrap(), "--key", &p("root100.key")]);
    entrepot(&node, &["charter", "install", v2.to_str().unwrap()]);
    let e = entrepot_fails(&node, &["charter", "install", v2.to_str().unwrap()]);
    assert!(e.contains("charter_version_replayed"), "{e}");
    let opened = entrepot::config::open(&node).unwrap();
    let chain = opened.keyring.charter().unwrap();
    assert_eq!(chain.latest().charter.version, 2);
    assert_eq!(chain.latest().charter.organizations[0].keys[0].revoked_at_seq, Some(Seq(10)));
    drop(opened);

    // The node's key is revoked now, so it certifies nothing; a node certified before the
    // rotation would have to be certified again with the new key.
    let again = w.join("cert2.bin");
    let e = entrepot_fails(&node, &["charter", "certify-node", "--peer-id", &peer, "--out", again.to_str().unwrap()]);
    assert!(e.contains("key_not_authorized"), "{e}");

    // Version 3, published to the running node: in force at once, shown by `status`.
    let v3 = w.join("v3.charter");
    let e = entrepot_fails(
        w,
        &["charter", "next", v2.to_str().unwrap(), "--out", v3.to_str().unwrap(), "--remove-org", "XX"],
    );
    assert!(e.contains("not a member"), "{e}");
    let later = "2100-06-30T00:00:00Z";
    entrepot(w, &["charter", "next", v2.to_str().unwrap(), "--out", v3.to_str().unwrap(), "--expires", later]);
    for r in ["root100.key", "root101.key"] {
        entrepot(w, &["charter", "sign", v3.to_str().unwrap(), "--key", &p(r)]);
    }
    let http =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let cfg = std::fs::read_to_string(node.join("config.toml")).unwrap();
    let cfg = cfg.replace("listen = \"127.0.0.1:8080\"", &format!("listen = \"{http}\""));
    let cfg = cfg.replace("/ip4/0.0.0.0/tcp/4001", "/ip4/127.0.0.1/tcp/0");
    std::fs::write(node.join("config.toml"), cfg).unwrap();
    let mut running = std::process::Command::new(bin())
        .arg("--dir")
        .arg(&node)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(&http).is_err() {
        assert!(std::time::Instant::now() < deadline, "the node's API did not come up");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let published = entrepot(&node, &["charter", "publish", v3.to_str().unwrap()]);
    assert!(published.contains("version 3 is in force"), "{published}");
    let again = entrepot(&node, &["charter", "publish", v3.to_str().unwrap()]);
    assert!(again.contains("already in force"), "{again}");
    let status = entrepot(&node, &["status"]);
    assert!(status.contains("charter version 3") && status.contains(later) && status.contains("valid"), "{status}");
    let _ = running.kill();
    let _ = running.wait();
    // Kept on disk: the next start has version 3 without being told again.
    assert_eq!(entrepot::config::open(&node).unwrap().keyring.charter().unwrap().latest().charter.version, 3);
}

#[test]
fn config_check_warns_before_the_charter_expires_and_refuses_a_wrong_pin() {
    let soon = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let g = sign(&genesis_body(&soon), &[100, 101]);
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    entrepot(&node, &["init", "--replica", "--network", "t"]);
    std::fs::create_dir(node.join("charter")).unwrap();
    std::fs::write(node.join("charter/v000001.charter"), encode(&g)).unwrap();
    let base = std::fs::read_to_string(node.join("config.toml")).unwrap();
    std::fs::write(node.join("config.toml"), format!("{base}\n[charter]\ngenesis_hash = \"{}\"\n", g.hash())).unwrap();
    let out = entrepot(&node, &["config", "check"]);
    assert!(out.contains("warning") && out.contains("expires") && out.contains("in 9 days"), "{out}");

    std::fs::write(node.join("config.toml"), format!("{base}\n[charter]\ngenesis_hash = \"{}\"\n", "cd".repeat(32)))
        .unwrap();
    let out = std::process::Command::new(bin()).arg("--dir").arg(&node).args(["config", "check"]).output().unwrap();
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("genesis_mismatch"), "{text}");
}

#[test]
fn config_check_says_whether_this_nodes_certificate_will_be_admitted() {
    let g = sign(&genesis_body(FAR), &[100, 101]);
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    entrepot(&node, &["init", "--replica", "--network", "t"]);
    std::fs::create_dir(node.join("charter")).unwrap();
    std::fs::write(node.join("charter/v000001.charter"), encode(&g)).unwrap();
    let base = std::fs::read_to_string(node.join("config.toml")).unwrap();
    let pinned = format!("{base}\n[charter]\ngenesis_hash = \"{}\"\n", g.hash());
    std::fs::write(node.join("config.toml"), &pinned).unwrap();
    let out = entrepot(&node, &["config", "check"]);
    assert!(out.contains("charter.certificate") && out.contains("not set"), "{out}");

    let check_fails = |what: &str| {
        let out = std::process::Command::new(bin()).arg("--dir").arg(&node).args(["config", "check"]).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{text}");
        assert!(text.contains(what), "{text}");
    };
    std::fs::write(node.join("config.toml"), format!("{pinned}certificate = \"node.cert\"\n")).unwrap();
    // Certified for another peer id: peers would refuse it.
    let other = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id().to_string();
    let wrong = certify_node(&g.hash().0, &org("FR"), &other, 1_800_000_000_000, &key(3)).unwrap();
    std::fs::write(node.join("node.cert"), &wrong.bytes).unwrap();
    check_fails("wrong_peer");
    // Certified by a key that is not FR's.
    let peer = entrepot(&node, &["peer-id"]).trim().to_owned();
    let forged = certify_node(&g.hash().0, &org("FR"), &peer, 1_800_000_000_000, &key(9)).unwrap();
    std::fs::write(node.join("node.cert"), &forged.bytes).unwrap();
    check_fails("key_not_authorized");
    let good = certify_node(&g.hash().0, &org("FR"), &peer, 1_800_000_000_000, &key(3)).unwrap();
    std::fs::write(node.join("node.cert"), &good.bytes).unwrap();
    let out = entrepot(&node, &["config", "check"]);
    assert!(!out.contains("charter.certificate"), "{out}");
}
