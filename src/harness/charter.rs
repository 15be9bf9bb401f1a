//! A harness network under a charter (docs/PROTOCOL.md §10–11) instead of a keyring: three
//! root keys (threshold 2) sign a genesis naming the first publishers as members; every node is
//! certified by a member organization (a replica by one of the genesis members, a publisher by
//! its own organization) and admits its peers by certificate. The last `joining` publishers
//! are not in the genesis: [`CharterSetup::next_version`] signs the version that adds them, as
//! the root-key holders would when an administration joins.

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::Rng;

use crate::charter::{self, Charter, Member, MemberKey, Permission, PublicKey, Role, Root, SignedCharter};
use crate::document::{OrgId, Seq, TypeName};

use std::path::{Path, PathBuf};

use super::DOC_TYPE;
use crate::config;

/// The charter of a harness network and the keys that sign its versions.
pub struct CharterSetup {
    roots: Vec<SigningKey>,
    /// Every publisher's organization, key and whether the genesis names it.
    publishers: Vec<(OrgId, SigningKey)>,
    /// Publishers `0..members` are in the genesis; the rest join by the next version.
    members: usize,
    expires: String,
    pub genesis: SignedCharter,
}

impl CharterSetup {
    /// A genesis naming `publishers[..publishers.len() - joining]`, valid for a year.
    pub fn new(rng: &mut StdRng, publishers: Vec<(OrgId, SigningKey)>, joining: usize) -> CharterSetup {
        let roots: Vec<SigningKey> = (0..3).map(|_| SigningKey::from_bytes(&rng.gen())).collect();
        let members = publishers.len() - joining.min(publishers.len());
        let expires =
            (chrono::Utc::now() + chrono::Duration::days(365)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let genesis = sign(&roots, &publishers[..members], &expires, 1, None);
        CharterSetup { roots, publishers, members, expires, genesis }
    }

    /// The organization whose certificate node `i` carries, and the key that signs it.
    pub fn certifier(&self, i: usize) -> (&OrgId, &SigningKey) {
        let (org, key) =
            if i < self.publishers.len() { &self.publishers[i] } else { &self.publishers[i % self.members] };
        (org, key)
    }

    /// The version after the genesis, naming every publisher.
    pub fn next_version(&self) -> SignedCharter {
        sign(&self.roots, &self.publishers, &self.expires, 2, Some(self.genesis.hash()))
    }

    /// Publishers `0..members` stay members through every version the harness signs.
    pub fn genesis_members(&self) -> usize {
        self.members
    }
}

/// A charter `version` naming `members`, signed by two of the three `roots`.
fn sign(
    roots: &[SigningKey],
    members: &[(OrgId, SigningKey)],
    expires: &str,
    version: u32,
    previous: Option<charter::CharterHash>,
) -> SignedCharter {
    let key = |k: &SigningKey| PublicKey::new(k.verifying_key().to_bytes()).expect("a generated key is canonical");
    let organizations = members
        .iter()
        .map(|(org, k)| Member {
            id: org.clone(),
            name: format!("administration {org}"),
            country: None,
            region: None,
            role: Role::Customs,
            keys: vec![MemberKey { key: key(k), valid_from_seq: Seq::FIRST, revoked_at_seq: None }],
            permissions: vec![Permission {
                doc_type: TypeName::new(DOC_TYPE).expect("a valid type name"),
                hs_chapters: None,
                regions: None,
            }],
        })
        .collect();
    let body = Charter {
        version,
        previous,
        expires: expires.to_string(),
        root: Root { keys: roots.iter().map(key).collect(), threshold: 2 },
        organizations,
    };
    let mut signed = SignedCharter::unsigned(body.to_body()).expect("a harness charter encodes");
    for r in &roots[..2] {
        signed.sign(r).expect("a root key signs");
    }
    signed
}

/// Writes the genesis into node `i`'s charter directory, its certificate from
/// [`CharterSetup::certifier`], and the `[charter]` section of its configuration.
pub(super) fn pin_and_certify(dir: &Path, c: &CharterSetup, i: usize, peer: &libp2p::PeerId) -> Result<(), String> {
    let (org, key) = c.certifier(i);
    let cert = crate::charter::certify_node(&c.genesis.hash().0, org, &peer.to_string(), crate::clock::now_ms(), key)
        .map_err(|e| e.to_string())?;
    let write =
        |path: PathBuf, bytes: &[u8]| std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir.join("charter")).map_err(|e| e.to_string())?;
    write(dir.join("charter").join(config::charter_file_name(1)), &crate::charter::encode(&c.genesis))?;
    write(dir.join("node.cert"), &cert.bytes)?;
    let mut text = std::fs::read_to_string(dir.join(config::CONFIG_FILE)).map_err(|e| e.to_string())?;
    text.push_str(&format!("[charter]\ngenesis_hash = \"{}\"\ncertificate = \"node.cert\"\n", c.genesis.hash()));
    write(dir.join(config::CONFIG_FILE), text.as_bytes())
}
