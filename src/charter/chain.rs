//! Which charter versions are trusted: the genesis by its pinned hash, each later version by a
//! threshold of the previous version's root keys and a threshold of its own (TUF's root
//! rotation). Expiry is a property of the latest version, judged at a time the caller passes.

use super::{Charter, CharterHash, PublicKey, SignedCharter};

/// How long before expiry a node warns (30 days).
pub const EXPIRY_WARNING_MS: i64 = 30 * 24 * 3600 * 1000;

/// Why a charter version is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("no charter given: a chain starts with the genesis charter")]
    Empty,
    #[error("genesis charter hash {found} is not the pinned hash {pinned}; check the node's charter configuration")]
    GenesisMismatch { pinned: CharterHash, found: CharterHash },
    #[error("the first charter must be version 1 with no previous hash, not version {0}")]
    NotGenesis(u32),
    #[error("charter version {found} is not newer than the trusted version {trusted}")]
    VersionReplayed { trusted: u32, found: u32 },
    #[error("charter version {found} skips versions: the next is {expected}")]
    VersionGap { expected: u32, found: u32 },
    #[error("charter version {version} names previous {found}, but the trusted version before it is {expected}")]
    PreviousMismatch { version: u32, expected: CharterHash, found: CharterHash },
    #[error("charter version {version} has {valid} valid signatures from {by} root keys; {needed} are needed")]
    TooFewSignatures { version: u32, by: &'static str, valid: usize, needed: usize },
    #[error("charter version {version} carries a signature by {key} that does not verify")]
    BadSignature { version: u32, key: String },
}

impl ChainError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            ChainError::Empty => "charter_missing",
            ChainError::GenesisMismatch { .. } => "genesis_mismatch",
            ChainError::NotGenesis(_) => "not_genesis",
            ChainError::VersionReplayed { .. } => "charter_version_replayed",
            ChainError::VersionGap { .. } => "charter_version_gap",
            ChainError::PreviousMismatch { .. } => "charter_previous_mismatch",
            ChainError::TooFewSignatures { .. } => "too_few_signatures",
            ChainError::BadSignature { .. } => "bad_signature",
        }
    }
}

/// Where the latest charter stands against its expiry at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryStatus {
    Valid,
    /// Expires within [`EXPIRY_WARNING_MS`]; operators should publish the next version.
    ExpiringSoon {
        remaining_ms: i64,
    },
    /// No trust is extended.
    Expired,
}

/// A chain of charter versions from the pinned genesis, each verified against its predecessor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    genesis: CharterHash,
    versions: Vec<SignedCharter>,
}

/// Verifies `charters` (genesis first, then versions 2, 3, … in order) against the pinned
/// genesis hash.
pub fn verify_chain(pinned: &CharterHash, charters: &[SignedCharter]) -> Result<VerifiedChain, ChainError> {
    let (genesis, rest) = charters.split_first().ok_or(ChainError::Empty)?;
    let found = genesis.hash();
    if &found != pinned {
        return Err(ChainError::GenesisMismatch { pinned: *pinned, found });
    }
    if genesis.charter.version != 1 || genesis.charter.previous.is_some() {
        return Err(ChainError::NotGenesis(genesis.charter.version));
    }
    // The genesis is trusted by its pin, and still must meet its own threshold, so a pinned
    // hash of a draft nobody approved never becomes a root of trust.
    check_signatures(genesis, &genesis.charter, "its own")?;
    let mut chain = VerifiedChain { genesis: found, versions: vec![genesis.clone()] };
    for next in rest {
        chain.extend(next.clone())?;
    }
    Ok(chain)
}

/// Counts distinct keys of `signer`'s root that validly signed `c`; a signature by a root key
/// that does not verify is an error (a damaged file is worth knowing about), one by another
/// key is ignored.
fn check_signatures(c: &SignedCharter, signer: &Charter, by: &'static str) -> Result<(), ChainError> {
    let version = c.charter.version;
    let mut valid = 0;
    for s in c.signatures.iter().filter(|s| signer.root.keys.contains(&s.key)) {
        if !s.verifies(&c.body) {
            return Err(ChainError::BadSignature { version, key: hex::encode(s.key.0) });
        }
        valid += 1;
    }
    let needed = signer.root.threshold as usize;
    if valid < needed {
        return Err(ChainError::TooFewSignatures { version, by, valid, needed });
    }
    Ok(())
}

impl VerifiedChain {
    /// The pinned genesis hash; for a charter network it is also the network id.
    pub fn genesis(&self) -> CharterHash {
        self.genesis
    }

    /// The newest trusted version.
    pub fn latest(&self) -> &SignedCharter {
        self.versions.last().expect("a chain holds at least the genesis")
    }

    /// Every trusted version, genesis first.
    pub fn versions(&self) -> &[SignedCharter] {
        &self.versions
    }

    /// Accepts the next version if it follows the latest one and both thresholds are met.
    pub fn extend(&mut self, next: SignedCharter) -> Result<(), ChainError> {
        let latest = self.latest();
        let trusted = latest.charter.version;
        let found = next.charter.version;
        if found <= trusted {
            return Err(ChainError::VersionReplayed { trusted, found });
        }
        if found != trusted + 1 {
            return Err(ChainError::VersionGap { expected: trusted + 1, found });
        }
        let expected = latest.hash();
        let previous = next.charter.previous.unwrap_or(CharterHash([0; 32]));
        if previous != expected {
            return Err(ChainError::PreviousMismatch { version: found, expected, found: previous });
        }
        check_signatures(&next, &latest.charter, "the previous version's")?;
        check_signatures(&next, &next.charter, "its own")?;
        self.versions.push(next);
        Ok(())
    }

    /// The latest version's standing at `now_ms` (milliseconds since the Unix epoch).
    pub fn expiry_status(&self, now_ms: i64) -> ExpiryStatus {
        let remaining_ms = self.latest().charter.expires_ms().saturating_sub(now_ms);
        if remaining_ms <= 0 {
            ExpiryStatus::Expired
        } else if remaining_ms <= EXPIRY_WARNING_MS {
            ExpiryStatus::ExpiringSoon { remaining_ms }
        } else {
            ExpiryStatus::Valid
        }
    }

    /// Root keys of the latest version (who signs the next one).
    pub fn root_keys(&self) -> &[PublicKey] {
        &self.latest().charter.root.keys
    }
}
