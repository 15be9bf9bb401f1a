//! The node's trust at run time: the charter version in force, new versions arriving from
//! peers or from the operator, and what a new version changes (the files kept on disk, the
//! keyring every check uses, forks it resolves, the peers the network engine re-admits).

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use tokio::sync::watch;

use super::Service;
use crate::authority::Keyring;
use std::collections::BTreeMap;

use crate::charter::{self, CertError, ChainError, ExpiryStatus, NodeCert, PublicKey, SignedCharter};
use crate::clock::now_ms;
use crate::config::charter_file_name;
use crate::document::{OrgId, Seq};
use crate::ingest::{check, IngestError};
use crate::store::{ProofOutcome, StoreError};

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
    /// The version is in force (kept on disk, keyring replaced) but applying it to the feeds
    /// failed; forks are judged again at the next start.
    #[error("charter applied, but the store failed while applying it to the feeds: {0}")]
    Store(StoreError),
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
            TrustError::Store(_) => "store_failed",
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

    /// Trusted charter files from `from_version` on, consecutive, at most `count_max`.
    pub fn charter_files_from(&self, from_version: u32, count_max: usize) -> Vec<Vec<u8>> {
        let keyring = self.keyring();
        let Some(chain) = keyring.charter() else { return Vec::new() };
        chain
            .versions()
            .iter()
            .filter(|c| c.charter.version >= from_version)
            .take(count_max)
            .map(charter::encode)
            .collect()
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
        let before = self.keyring();
        self.set_keyring(Keyring::from_charter(chain));
        tracing::info!(from, to, "charter version {to} is in force");
        self.apply_to_feeds(&before).map_err(TrustError::Store)?;
        self.charter_version.send_replace(to);
        Ok(CharterApplied::Applied { from, to })
    }

    /// What a new charter version does to the feeds held: entries signed with a key it revokes
    /// at or before their position are removed (with everything after them in their feed),
    /// forks it leaves with one valid entry are resolved (the feed unfrozen, the survivor
    /// re-ingested when the feed now ends before it). Feeds whose head moved are queued for
    /// the sync engine ([`Service::take_feed_resets`]).
    fn apply_to_feeds(&self, before: &Keyring) -> Result<(), StoreError> {
        let keyring = self.keyring();
        let heads_before: BTreeMap<OrgId, (Seq, bool)> =
            self.store.heads()?.into_iter().map(|(org, h)| (org, (h.seq, h.forked_at.is_some()))).collect();
        for org in revocations_changed(before, &keyring) {
            if heads_before.contains_key(&org) {
                if let Some(from) = self.store.truncate_unauthorized(&org, &keyring)? {
                    tracing::warn!(%org, from = from.0, "entries signed with a key revoked at their position removed");
                }
            }
        }
        let mut reingest = Vec::new();
        for r in self.store.resolve_forks(&keyring)? {
            if r.resolved {
                tracing::info!(publisher = %r.publisher, seq = r.seq.0, "fork resolved by the charter");
            }
            if let Some(from) = r.truncated_from {
                tracing::warn!(publisher = %r.publisher, from = from.0, "feed truncated by the charter");
            }
            reingest.extend(r.reingest);
        }
        if !reingest.is_empty() {
            self.ingest(reingest, super::Source::Sync)?;
        }
        let mut resets = self.feed_resets.lock().unwrap_or_else(|p| p.into_inner());
        for (org, h) in self.store.heads()? {
            if heads_before.get(&org) != Some(&(h.seq, h.forked_at.is_some())) {
                resets.push((org, h.seq));
            }
        }
        Ok(())
    }

    /// Checks and records fork proofs from a peer (pairs of envelopes). `Err` says why a pair
    /// is the sender's fault: it does not decode or verify, or is not two entries of one
    /// position. A pair whose entries this node's charter does not accept is skipped.
    pub fn record_fork_proofs(&self, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), &'static str> {
        let keyring = self.keyring();
        for (a, b) in pairs {
            let now = now_ms();
            let checked = (check(a, &self.network_id, &keyring, now), check(b, &self.network_id, &keyring, now));
            let (a, b) = match checked {
                (Ok(a), Ok(b)) => (a, b),
                (Err(IngestError::Authority(_)), _) | (_, Err(IngestError::Authority(_))) => continue,
                (Err(e), _) | (_, Err(e)) => return Err(e.code()),
            };
            match self.store.record_fork_proof(&a, &b) {
                Ok(ProofOutcome::Recorded { seq, .. }) => {
                    self.counters.forks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(publisher = %a.doc().header.publisher, seq = seq.0, "fork proof recorded; the feed is frozen from there");
                }
                Ok(ProofOutcome::AlreadyKnown) => {}
                Err(StoreError::NotAForkProof(e)) => return Err(e.code()),
                Err(e) => {
                    tracing::error!(error = %e, "cannot record a fork proof");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Feeds a charter version changed, with their new heads, since the last call: the sync
    /// engine fetches them again from there (a head can move down, and a feed unfreeze).
    pub fn take_feed_resets(&self) -> Vec<(OrgId, Seq)> {
        std::mem::take(&mut *self.feed_resets.lock().unwrap_or_else(|p| p.into_inner()))
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

/// Organizations whose key revocations differ between two trust anchors (a key revoked, or
/// revoked from another position): only their feeds can hold entries the new one condemns.
fn revocations_changed(before: &Keyring, after: &Keyring) -> Vec<OrgId> {
    let revocations = |k: &Keyring| -> BTreeMap<OrgId, Vec<(PublicKey, Option<Seq>)>> {
        k.charter()
            .map(|c| {
                c.latest()
                    .charter
                    .organizations
                    .iter()
                    .map(|m| (m.id.clone(), m.keys.iter().map(|k| (k.key, k.revoked_at_seq)).collect()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old, new) = (revocations(before), revocations(after));
    new.into_iter().filter(|(org, keys)| old.get(org) != Some(keys)).map(|(org, _)| org).collect()
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
