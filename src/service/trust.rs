//! The node's trust at run time: the charter version in force, new versions arriving from
//! peers or from the operator, and what a new version changes (the files kept on disk, the
//! keyring every check uses, forks it resolves, the peers the network engine re-admits).

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use tokio::sync::watch;

use super::Service;
use crate::authority::Keyring;
use crate::charter::{self, CertError, ChainError, ExpiryStatus, NodeCert, SignedCharter};
use crate::config::charter_file_name;
use crate::publish::now_ms;

/// The charter in force, as status, the API and metrics show it.
#[derive(Debug, Clone, Serialize)]
pub struct CharterInfo {
    pub genesis: String,
    pub version: u32,
    pub hash: String,
    pub expires: String,
    /// `valid`, `expiring_soon` (within 30 days) or `expired` (no trust is extended).
    pub state: &'static str,
    /// Seconds until expiry; negative once expired.
    pub seconds_left: i64,
    pub organizations: usize,
}

/// What applying charter versions did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharterApplied {
    /// Every version given was already in force.
    Unchanged {
        version: u32,
    },
    Applied {
        from: u32,
        to: u32,
    },
}

/// Why charter versions were not applied. Nothing changes when any version is refused.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("this node is not on a charter network")]
    NotCharterNetwork,
    #[error("not a charter file: {0}")]
    Decode(String),
    #[error("charter version {version} differs from the version {version} this node already trusts")]
    Conflict { version: u32 },
    #[error("{0} ({code})", code = .0.code())]
    Chain(#[from] ChainError),
    #[error("cannot keep charter version {version} in {path}: {source}")]
    Write { version: u32, path: String, source: std::io::Error },
}

impl TrustError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            TrustError::NotCharterNetwork => "not_charter_network",
            TrustError::Decode(_) => "charter_invalid",
            TrustError::Conflict { .. } => "charter_conflict",
            TrustError::Chain(e) => e.code(),
            TrustError::Write { .. } => "charter_write_failed",
        }
    }
}

impl Service {
    /// The charter in force, or `None` off a charter network.
    pub fn charter_info(&self) -> Option<CharterInfo> {
        let keyring = self.keyring();
        let chain = keyring.charter()?;
        let latest = chain.latest();
        let now = now_ms();
        let state = match chain.expiry_status(now) {
            ExpiryStatus::Valid => "valid",
            ExpiryStatus::ExpiringSoon { .. } => "expiring_soon",
            ExpiryStatus::Expired => "expired",
        };
        Some(CharterInfo {
            genesis: chain.genesis().to_hex(),
            version: latest.charter.version,
            hash: latest.hash().to_hex(),
            expires: latest.charter.expires.clone(),
            state,
            seconds_left: (latest.charter.expires_ms() - now).div_euclid(1000),
            organizations: latest.charter.organizations.len(),
        })
    }

    /// The charter version in force (0 off a charter network), watched for changes.
    pub fn watch_charter(&self) -> watch::Receiver<u32> {
        self.charter_version.subscribe()
    }

    /// Trusted charter files from `from_version` on, consecutive, at most `count_max` and about
    /// `bytes_max` bytes (one file larger than that is still sent alone).
    pub fn charter_files_from(&self, from_version: u32, count_max: usize, bytes_max: usize) -> Vec<Vec<u8>> {
        let keyring = self.keyring();
        let Some(chain) = keyring.charter() else { return Vec::new() };
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0;
        for c in chain.versions().iter().filter(|c| c.charter.version >= from_version).take(count_max) {
            let file = charter::encode(c);
            if !out.is_empty() && bytes + file.len() > bytes_max {
                break;
            }
            bytes += file.len();
            out.push(file);
        }
        out
    }

    /// Checks a peer's certificate against the charter in force: `peer` is the libp2p peer id
    /// the connection authenticated. Returns the certified organization.
    pub fn check_certificate(&self, bytes: &[u8], peer: &str) -> Result<NodeCert, CertError> {
        let cert = charter::decode_cert(bytes)?;
        let keyring = self.keyring();
        let chain = keyring.charter().ok_or(CertError::UnknownOrganization(cert.organization.clone()))?;
        cert.verify(chain, &self.network_id, peer)?;
        Ok(cert)
    }

    /// Applies charter versions (any order; those already in force are skipped after checking
    /// they are the same). All or nothing: each new version must extend the chain (both
    /// thresholds, docs/PROTOCOL.md §10.4) and is written to the charter directory before the
    /// new keyring is put in force, so a restart finds what the node last trusted.
    pub fn apply_charters(&self, mut charters: Vec<SignedCharter>) -> Result<CharterApplied, TrustError> {
        let _one_at_a_time = self.charter_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (Some(dir), Some(mut chain)) = (&self.charter_dir, self.keyring().charter().cloned()) else {
            return Err(TrustError::NotCharterNetwork);
        };
        let from = chain.latest().charter.version;
        charters.sort_by_key(|c| c.charter.version);
        let mut new = Vec::new();
        for c in charters {
            let version = c.charter.version;
            if let Some(held) = chain.versions().iter().find(|h| h.charter.version == version) {
                if held.hash() != c.hash() {
                    return Err(TrustError::Conflict { version });
                }
                continue;
            }
            chain.extend(c.clone())?;
            new.push(c);
        }
        let to = chain.latest().charter.version;
        if new.is_empty() {
            return Ok(CharterApplied::Unchanged { version: to });
        }
        for c in &new {
            keep_file(dir, c)?;
        }
        self.set_keyring(Keyring::from_charter(chain));
        self.charter_version.send_replace(to);
        tracing::info!(from, to, "charter version {to} is in force");
        Ok(CharterApplied::Applied { from, to })
    }

    /// Decodes charter files and applies them (see [`Service::apply_charters`]).
    pub fn apply_charter_files(&self, files: &[Vec<u8>]) -> Result<CharterApplied, TrustError> {
        let charters = files
            .iter()
            .map(|f| charter::decode(f).map_err(|e| TrustError::Decode(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        self.apply_charters(charters)
    }
}

/// Writes a charter version into the charter directory: beside, fsync, rename, so a crash
/// leaves the old set or the new one, never a torn file.
fn keep_file(dir: &Path, c: &SignedCharter) -> Result<(), TrustError> {
    let version = c.charter.version;
    let path = dir.join(charter_file_name(version));
    let err = |source| TrustError::Write { version, path: path.display().to_string(), source };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&charter::encode(c)).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}
