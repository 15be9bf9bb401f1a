//! Which connected peers are admitted on a charter network: a peer is admitted once it has
//! shown a node certificate the charter in force accepts (docs/PROTOCOL.md §11). Until then it
//! is answered nothing but a hello or a charter request, receives no gossip, and is
//! disconnected after [`ADMISSION_TIMEOUT`].
//!
//! Pure bookkeeping: the engine verifies certificates and closes connections.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::document::OrgId;

/// How long a connected peer may stay without a valid certificate.
pub const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Admission state of every connected peer.
#[derive(Default)]
pub struct Admission {
    /// Admitted peers: their organization and the certificate they showed (checked again
    /// whenever the charter changes).
    admitted: HashMap<PeerId, (OrgId, Vec<u8>)>,
    /// Connected, not admitted: since when, and the certificate shown if any (kept so that a
    /// charter update this node had not seen yet can still admit it).
    waiting: HashMap<PeerId, (Instant, Option<Vec<u8>>)>,
}

impl Admission {
    pub fn connected(&mut self, peer: PeerId, now: Instant) {
        if !self.admitted.contains_key(&peer) {
            self.waiting.entry(peer).or_insert((now, None));
        }
    }

    pub fn disconnected(&mut self, peer: &PeerId) {
        self.admitted.remove(peer);
        self.waiting.remove(peer);
    }

    /// The organization of an admitted peer.
    pub fn org(&self, peer: &PeerId) -> Option<&OrgId> {
        self.admitted.get(peer).map(|(org, _)| org)
    }

    pub fn is_admitted(&self, peer: &PeerId) -> bool {
        self.admitted.contains_key(peer)
    }

    /// Every admitted peer.
    pub fn admitted_peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self.admitted.keys().copied().collect();
        peers.sort();
        peers
    }

    /// Records a valid certificate; true when the peer was not admitted before.
    pub fn admit(&mut self, peer: PeerId, org: OrgId, cert: Vec<u8>) -> bool {
        self.waiting.remove(&peer);
        self.admitted.insert(peer, (org, cert)).is_none()
    }

    /// Keeps a certificate that did not verify (yet), for [`Admission::recheck`].
    pub fn shown(&mut self, peer: PeerId, cert: Vec<u8>) {
        if let Some((_, shown)) = self.waiting.get_mut(&peer) {
            *shown = Some(cert);
        }
    }

    /// Waiting peers past the timeout; they are forgotten here and must be disconnected.
    pub fn overdue(&mut self, now: Instant) -> Vec<PeerId> {
        let overdue: Vec<PeerId> = self
            .waiting
            .iter()
            .filter(|(_, (since, _))| now.duration_since(*since) >= ADMISSION_TIMEOUT)
            .map(|(p, _)| *p)
            .collect();
        for p in &overdue {
            self.waiting.remove(p);
        }
        overdue
    }

    /// After a charter change: checks every certificate again with `verify` (which returns the
    /// certified organization). Returns the peers that lost admission (to disconnect) and the
    /// waiting peers that gained it.
    pub fn recheck(&mut self, verify: impl Fn(&[u8], &PeerId) -> Option<OrgId>) -> (Vec<PeerId>, Vec<(PeerId, OrgId)>) {
        let lost: Vec<PeerId> =
            self.admitted.iter().filter(|(peer, (_, cert))| verify(cert, peer).is_none()).map(|(p, _)| *p).collect();
        for p in &lost {
            self.admitted.remove(p);
        }
        let gained: Vec<(PeerId, OrgId, Vec<u8>)> = self
            .waiting
            .iter()
            .filter_map(|(peer, (_, cert))| {
                let cert = cert.as_ref()?;
                verify(cert, peer).map(|org| (*peer, org, cert.clone()))
            })
            .collect();
        let mut admitted = Vec::new();
        for (peer, org, cert) in gained {
            self.admit(peer, org.clone(), cert);
            admitted.push((peer, org));
        }
        (lost, admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_waits_until_admitted_and_is_overdue_after_the_timeout() {
        let mut a = Admission::default();
        let (p, q) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        a.connected(p, t0);
        a.connected(q, t0);
        assert!(!a.is_admitted(&p));
        assert!(a.admit(p, OrgId::new("FR").unwrap(), b"cert".to_vec()));
        assert!(!a.admit(p, OrgId::new("FR").unwrap(), b"cert".to_vec()), "admitting twice is not new");
        assert_eq!(a.org(&p).map(|o| o.as_str()), Some("FR"));
        assert!(a.overdue(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(a.overdue(t0 + ADMISSION_TIMEOUT), vec![q]);
        assert!(a.overdue(t0 + ADMISSION_TIMEOUT * 2).is_empty(), "an overdue peer is reported once");
        a.disconnected(&p);
        assert!(!a.is_admitted(&p));
    }

    #[test]
    fn a_charter_change_removes_and_grants_admission() {
        let mut a = Admission::default();
        let (member, leaver, newcomer) = (PeerId::random(), PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        for p in [member, leaver, newcomer] {
            a.connected(p, t0);
        }
        a.admit(member, OrgId::new("FR").unwrap(), b"fr".to_vec());
        a.admit(leaver, OrgId::new("XX").unwrap(), b"xx".to_vec());
        a.shown(newcomer, b"nl".to_vec());
        let verify = |cert: &[u8], _: &PeerId| match cert {
            b"fr" => Some(OrgId::new("FR").unwrap()),
            b"nl" => Some(OrgId::new("NL").unwrap()),
            _ => None,
        };
        let (lost, gained) = a.recheck(verify);
        assert_eq!(lost, vec![leaver]);
        assert_eq!(gained, vec![(newcomer, OrgId::new("NL").unwrap())]);
        assert!(a.is_admitted(&member) && a.is_admitted(&newcomer) && !a.is_admitted(&leaver));
    }
}
