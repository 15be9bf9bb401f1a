//! One record per connected peer: identity, admission, what it announced, what it is being
//! served, and when it was last asked for charter versions. A record is created when the
//! first connection with the peer is established and removed when the last one closes, so
//! nothing about a peer outlives its connection except its penalty points and bans
//! ([`super::penalties`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::checkpoints::PeerCheckpoints;
use crate::document::{OrgId, Seq};
use crate::sync::heads::PeerHeads;

/// How long a connected peer may stay without a valid certificate (charter networks).
pub const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused peer keeps its connection, so that the refusal already sent reaches it.
pub const TURN_AWAY_GRACE: Duration = Duration::from_millis(500);

/// Where a peer stands with this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Connected on a charter network, no valid certificate yet; the certificate it showed, if
    /// any, is kept so that a charter version this node has not seen yet can still admit it.
    Waiting { since: Instant, shown: Option<Vec<u8>> },
    /// Admitted: by certificate on a charter network (its organization and certificate, checked
    /// again at every charter change), or by connecting at all on a keyring network.
    Admitted { org: Option<OrgId>, cert: Vec<u8> },
    /// Turned away; disconnected at `at` unless admitted before (a charter version arriving
    /// meanwhile may make its certificate valid).
    Leaving { at: Instant, shown: Option<Vec<u8>> },
}

/// A connected peer.
#[derive(Debug, Clone)]
pub struct PeerRecord {
    /// The peer id the connection authenticated, as text.
    pub name: String,
    /// Remote address of its first connection.
    pub address: String,
    /// When its first connection was established.
    pub since: Instant,
    pub standing: Standing,
    /// Heads it announced in its last status, for the peers view (trusted publishers only).
    pub heads: BTreeMap<OrgId, Seq>,
    /// The charter version it announced last.
    pub charter_version: u32,
    /// Its requests being answered now.
    pub serving: usize,
    /// When it was last asked for charter versions.
    pub charters_asked: Option<Instant>,
    /// Which of its feeds' checkpoints are due to be asked for.
    pub checkpoints: PeerCheckpoints,
    /// Its heads as last received, and what it holds of ours: statuses name unchanged heads
    /// by digest.
    pub status: PeerHeads,
    /// When this node last answered its status request, and the sync engine's
    /// [`local_moves`](crate::sync::engine::SyncEngine::local_moves) then: what decides
    /// whether this node's own status round may leave it out ([`super::STATUS_ANSWERED_WITHIN`]).
    pub answered: Option<(Instant, u64)>,
}

impl PeerRecord {
    pub fn new(name: String, address: String, standing: Standing, since: Instant) -> PeerRecord {
        PeerRecord {
            since,
            name,
            address,
            standing,
            heads: BTreeMap::new(),
            charter_version: 0,
            serving: 0,
            charters_asked: None,
            checkpoints: PeerCheckpoints::default(),
            status: PeerHeads::default(),
            answered: None,
        }
    }

    pub fn is_admitted(&self) -> bool {
        matches!(self.standing, Standing::Admitted { .. })
    }

    /// The certified organization of an admitted peer.
    pub fn org(&self) -> Option<&OrgId> {
        match &self.standing {
            Standing::Admitted { org, .. } => org.as_ref(),
            _ => None,
        }
    }

    /// The certificate it showed and that did not verify (yet).
    pub fn shown(&self) -> Option<&[u8]> {
        match &self.standing {
            Standing::Waiting { shown, .. } | Standing::Leaving { shown, .. } => shown.as_deref(),
            Standing::Admitted { .. } => None,
        }
    }

    /// When something must happen to this peer without any event: the admission timeout or
    /// the end of the turn-away grace.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.standing {
            Standing::Waiting { since, .. } => Some(*since + ADMISSION_TIMEOUT),
            Standing::Leaving { at, .. } => Some(*at),
            Standing::Admitted { .. } => None,
        }
    }
}
