//! `entrepot config check`: everything that can be said about a configuration file without
//! starting a node. Reads only; never creates or changes a file.
//!
//! Errors are what would stop a node (the file does not parse, a field is invalid); warnings
//! are what a node would accept but an operator should look at twice (an open HTTP API, a
//! missing key file that `init` would have created).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libp2p::multiaddr::{Multiaddr, Protocol};

use crate::charter::ExpiryStatus;
use crate::config::{Config, ConfigError};
use crate::doctype::DocType;

/// Largest configuration file read.
pub const CONFIG_FILE_MAX_BYTES: u64 = 1024 * 1024;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The node would refuse to start, or would not do what the file says.
    Error,
    /// Accepted, but worth a second look.
    Warning,
}

/// One finding about a configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// The field concerned (`p2p.listen[0]`), or `file`.
    pub field: String,
    pub message: String,
}

/// The result of checking one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub path: PathBuf,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// What [`check_file`] looks at besides the file itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// The file is a template (an example config): do not look for the key, token and keyring
    /// files it names, which exist only in a node directory.
    pub template: bool,
}

/// Checks the configuration file at `path`. Paths inside it are taken relative to its
/// directory, as the node takes them.
pub fn check_file(path: &Path, options: CheckOptions) -> Report {
    let mut report = Report { path: path.to_owned(), findings: Vec::new() };
    let text = match std::fs::metadata(path) {
        Ok(m) if m.len() > CONFIG_FILE_MAX_BYTES => {
            report.error("file", format!("{} bytes, more than {CONFIG_FILE_MAX_BYTES}", m.len()));
            return report;
        }
        Ok(_) => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                report.error("file", format!("cannot read: {e}"));
                return report;
            }
        },
        Err(e) => {
            report.error("file", format!("cannot read: {e}"));
            return report;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    check_text(&text, path, base, options, &mut report);
    report
}

impl Report {
    fn error(&mut self, field: &str, message: String) {
        self.findings.push(Finding { severity: Severity::Error, field: field.into(), message });
    }

    fn warn(&mut self, field: &str, message: String) {
        self.findings.push(Finding { severity: Severity::Warning, field: field.into(), message });
    }
}

fn check_text(text: &str, path: &Path, base: &Path, options: CheckOptions, report: &mut Report) {
    let config = match Config::parse(text, path) {
        Ok(c) => c,
        Err(ConfigError::Invalid { reason, .. }) => return report.error("file", reason),
        Err(e) => return report.error("file", e.to_string()),
    };
    for (i, addr) in config.p2p.listen.iter().enumerate() {
        if let Err(e) = addr.parse::<Multiaddr>() {
            report.error(&format!("p2p.listen[{i}]"), format!("'{addr}' is not a multiaddress: {e}"));
        }
    }
    for (i, addr) in config.p2p.bootstrap.iter().enumerate() {
        let field = format!("p2p.bootstrap[{i}]");
        match addr.parse::<Multiaddr>() {
            Err(e) => report.error(&field, format!("'{addr}' is not a multiaddress: {e}")),
            Ok(m) if !matches!(m.iter().last(), Some(Protocol::P2p(_))) => {
                report.error(&field, format!("'{addr}' must end in /p2p/PEER_ID (the peer's libp2p identity)"))
            }
            Ok(_) => {}
        }
    }
    if config.p2p.listen.is_empty() && !config.p2p.bootstrap.is_empty() {
        report.warn("p2p.listen", "empty: this node dials its bootstrap peers but accepts no connections".into());
    }
    if config.p2p.mdns {
        report.warn("p2p.mdns", "mDNS announces this node on the local network: for labs and LANs only".into());
    }
    for (i, name) in config.replication.types.iter().enumerate() {
        if let Err(e) = DocType::by_name(name.as_str()) {
            report.error(&format!("replication.types[{i}]"), e.to_string());
        }
    }
    match config.http.listen.parse::<SocketAddr>() {
        Err(e) => report.error("http.listen", format!("'{}' is not an IP address and port: {e}", config.http.listen)),
        Ok(a) if !a.ip().is_loopback() && !config.http.read_requires_token => report.warn(
            "http.listen",
            format!("{a} is reachable beyond this machine and reads need no token: anyone who reaches the port reads every document (put a TLS proxy or a firewall in front, or set read_requires_token)"),
        ),
        Ok(_) => {}
    }
    if options.template {
        return;
    }
    match &config.charter {
        Some(c) => check_charter(base, c, &config.p2p.identity, report),
        None if !base.join(&config.keyring).exists() => {
            let full = base.join(&config.keyring);
            report.warn("keyring", format!("{} does not exist yet (`entrepot init` creates it)", full.display()));
        }
        None => {}
    }
    let mut secrets = vec![("p2p.identity", &config.p2p.identity), ("http.token_file", &config.http.token_file)];
    if let Some(key) = &config.signing_key {
        secrets.push(("signing_key", key));
    }
    for (field, file) in secrets {
        let full = base.join(file);
        match std::fs::metadata(&full) {
            Err(_) => report.warn(field, format!("{} does not exist yet (`entrepot init` creates it)", full.display())),
            Ok(m) => check_secret_mode(field, &full, &m, report),
        }
    }
}

/// A secret readable by group or others is a finding: `init` writes them mode 0600.
#[cfg(unix)]
fn check_secret_mode(field: &str, path: &Path, m: &std::fs::Metadata, report: &mut Report) {
    use std::os::unix::fs::PermissionsExt;
    let mode = m.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        report.warn(field, format!("{} is a secret but has mode {mode:04o}; run chmod 600 on it", path.display()));
    }
}

#[cfg(not(unix))]
fn check_secret_mode(_field: &str, _path: &Path, _m: &std::fs::Metadata, _report: &mut Report) {}

/// Peers admit a node only by a certificate naming its peer id and a current key of a member
/// (docs/PROTOCOL.md §11): a node without a valid one replicates nothing.
fn check_certificate(
    base: &Path,
    c: &crate::config::CharterConfig,
    identity: &Path,
    chain: &crate::charter::VerifiedChain,
    report: &mut Report,
) {
    let Some(path) = &c.certificate else {
        return report.warn(
            "charter.certificate",
            "not set: peers admit no node without a certificate (`entrepot charter certify-node` on a publishing node of this organization)".into(),
        );
    };
    let Ok(keypair) = crate::net::load_identity(&base.join(identity)) else {
        return; // reported with the other secrets
    };
    let peer = keypair.public().to_peer_id().to_string();
    let full = base.join(path);
    if !full.exists() {
        // The node starts without it (it is made from the peer id, after `init`).
        return report.warn(
            "charter.certificate",
            format!(
                "{} does not exist yet: peers admit this node only once it does (`entrepot charter certify-node --peer-id {peer} --out {}`, then SIGHUP to a running node)",
                path.display(),
                full.display()
            ),
        );
    }
    let cert = match crate::config::read_certificate(&full) {
        Ok(cert) => cert,
        Err(e) => return report.error("charter.certificate", e.to_string()),
    };
    if let Err(e) = cert.verify(chain, &chain.genesis().0, &peer) {
        report.error(
            "charter.certificate",
            format!("{} is not valid for this node ({peer}): {e} ({}); peers will refuse it", path.display(), e.code()),
        );
    }
}

/// A charter network's chain must verify from its pin; expiry is an error once past (the node
/// would accept nothing) and a warning within [`crate::charter::EXPIRY_WARNING_MS`] of it.
fn check_charter(base: &Path, c: &crate::config::CharterConfig, identity: &Path, report: &mut Report) {
    let chain = match crate::config::load_charter_chain(base, c) {
        Ok(chain) => chain,
        Err(e) => return report.error("charter", e.to_string()),
    };
    check_certificate(base, c, identity, &chain, report);
    let latest = &chain.latest().charter;
    match chain.expiry_status(crate::clock::now_ms()) {
        ExpiryStatus::Valid => {}
        ExpiryStatus::ExpiringSoon { remaining_ms } => report.warn(
            "charter",
            format!(
                "charter version {} expires at {} (in {} days): sign and install the next version",
                latest.version,
                latest.expires,
                remaining_ms / (24 * 3600 * 1000)
            ),
        ),
        ExpiryStatus::Expired => report.error(
            "charter",
            format!(
                "charter version {} expired at {}: the node accepts no document until a newer version is installed",
                latest.version, latest.expires
            ),
        ),
    }
}
