//! `entrepot config check`: every example config in deploy/config loads; each kind of bad
//! config gets an error naming the field and the problem, and checking changes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::bin;

fn check(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin()).arg("--dir").arg(dir).args(["config", "check"]).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn every_example_config_in_deploy_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 3, "secretariat, member replica and air-gapped replica examples");
    for file in &examples {
        let o = check(Path::new("."), &["--template", file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains(": ok"), "{}", text(&o));
    }
}

#[test]
fn a_node_directory_config_checks_with_its_files_and_flags_an_open_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("wco");
    let o =
        Command::new(bin()).arg("--dir").arg(&node).args(["init", "--org", "WCO", "--network", "n"]).output().unwrap();
    assert!(o.status.success());
    let o = check(&node, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    // The peer id other nodes put in their bootstrap lists: an ed25519 libp2p id.
    let o = Command::new(bin()).arg("--dir").arg(&node).arg("peer-id").output().unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("12D3KooW"), "{}", text(&o));

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(node.join("keys/signing.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(node.join("keys/api.token")).unwrap();
    let o = check(&node, &[]);
    assert!(o.status.success(), "warnings do not fail the check: {}", text(&o));
    assert!(text(&o).contains("warning: signing_key") && text(&o).contains("mode 0644"), "{}", text(&o));
    assert!(text(&o).contains("warning: http.token_file"), "{}", text(&o));
}

#[test]
fn each_bad_config_gets_a_clear_error_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config/member-replica.toml"))
        .unwrap();
    let cases: &[(&str, String, &str)] = &[
        ("not TOML", "network = \"n\"\n[p2p\n".into(), "file"),
        (
            "unknown field",
            good.replace("data_dir = \"db\"", "data_dir = \"db\"\ndatadir = \"x\""),
            "unknown field `datadir`",
        ),
        (
            "empty network",
            good.replace("network = \"wco-wto-hs\"", "network = \"\""),
            "network must be 1-64 characters",
        ),
        (
            "organization without key",
            good.replace("keyring = \"keyring.json\"", "organization = \"WCO\"\nkeyring = \"keyring.json\""),
            "organization and signing_key go together",
        ),
        ("listen not a multiaddress", good.replace("/ip4/0.0.0.0/tcp/4001\"]", "0.0.0.0:4001\"]"), "p2p.listen[0]"),
        (
            "bootstrap without peer id",
            good.replace("/tcp/4001/p2p/12D3KooWKtpLQisqubVWfZzqnBxBSUJMsH5bnGByjixtAM2QxCMN", "/tcp/4001"),
            "p2p.bootstrap[0]: '/dns4/node1.wcoomd.example/tcp/4001' must end in /p2p/PEER_ID",
        ),
        (
            "http listen not an address",
            good.replace("listen = \"127.0.0.1:8080\"", "listen = \"localhost\""),
            "http.listen: 'localhost' is not an IP address and port",
        ),
        (
            "unknown document type",
            good.replace("types = []", "types = [\"hs.tariff\"]"),
            "replication.types[0]: unknown document type 'hs.tariff'",
        ),
    ];
    for (what, config, expect) in cases {
        let file = tmp.path().join("config.toml");
        std::fs::write(&file, config).unwrap();
        let o = check(tmp.path(), &["--template", file.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
        assert!(text(&o).contains(expect), "{what}: expected '{expect}' in {}", text(&o));
        assert!(text(&o).contains("1 of 1 configuration file(s) have errors"), "{what}: {}", text(&o));
        assert_eq!(&std::fs::read_to_string(&file).unwrap(), config, "{what}: the file is unchanged");
        let entries: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "{what}: checking creates nothing");
    }
    // An open API is accepted with a warning.
    std::fs::write(tmp.path().join("config.toml"), good.replace("127.0.0.1:8080", "0.0.0.0:8080")).unwrap();
    let o = check(tmp.path(), &["--template"]);
    assert!(o.status.success() && text(&o).contains("warning: http.listen"), "{}", text(&o));
    // No file at all.
    let o = check(&tmp.path().join("nowhere"), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("nowhere/config.toml: error: file: cannot read"), "{}", text(&o));
}
