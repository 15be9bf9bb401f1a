//! `entrepot charter …`: create, sign, verify, install and edit charters; certify nodes.
//! Signing is offline and one key at a time, so root keys never need to share a machine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde::Deserialize;

use entrepot::charter::{self, Charter, Member, MemberKey, PublicKey, Root, SignedCharter};
use entrepot::config;
use entrepot::document::{OrgId, Seq};

#[derive(Subcommand)]
pub enum CharterCommand {
    /// Write an unsigned genesis charter (version 1) from a JSON input file
    /// (`{"expires", "root": {"keys", "threshold"}, "organizations": [...]}`), and print its hash.
    Genesis {
        /// The input file.
        #[arg(long)]
        input: PathBuf,
        /// The charter file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add one signature to a charter file, in place (run once per root key, on its own machine).
    Sign {
        file: PathBuf,
        /// A signing key file (64 hex digits).
        #[arg(long)]
        key: PathBuf,
    },
    /// Verify a chain of charter files, genesis first, and print the trusted latest version.
    Verify {
        files: Vec<PathBuf>,
        /// The pinned genesis hash (default: the first file's hash, which proves nothing about
        /// which genesis is the right one).
        #[arg(long)]
        genesis_hash: Option<String>,
    },
    /// Install a charter version into this (stopped) node's `[charter]` directory once it
    /// verifies after the versions the node holds; it is in force at the next start.
    Install { file: PathBuf },
    /// Publish a charter version to this running node (`POST /v1/admin/charter`): it is put in
    /// force at once and every peer pulls it from there.
    Publish { file: PathBuf },
    /// Write the next version of a charter, unsigned, with keys added or revoked.
    Next {
        /// The current (latest) charter.
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Add a key: ORG:HEXKEY:VALID_FROM_SEQ (repeatable).
        #[arg(long = "add-key")]
        add_key: Vec<String>,
        /// Revoke a key: ORG:HEXKEY:REVOKED_AT_SEQ (repeatable).
        #[arg(long = "revoke-key")]
        revoke_key: Vec<String>,
        /// Remove a member organization (repeatable): its nodes lose their certificates.
        #[arg(long = "remove-org")]
        remove_org: Vec<String>,
        /// New expiry (RFC 3339); default: unchanged.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Certify a node: sign a binding of a libp2p peer id to this node's organization with the
    /// node's signing key.
    CertifyNode {
        /// The libp2p peer id of the node to certify (`entrepot peer-id` on that node).
        #[arg(long)]
        peer_id: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisInput {
    expires: String,
    root: Root,
    organizations: Vec<Member>,
}

pub fn run(dir: &Path, command: &CharterCommand) -> Result<ExitCode> {
    match command {
        CharterCommand::Genesis { input, out } => {
            let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
            let g: GenesisInput =
                serde_json::from_str(&text).with_context(|| format!("{} is not valid", input.display()))?;
            let c = Charter {
                version: 1,
                previous: None,
                expires: g.expires,
                root: g.root,
                organizations: g.organizations,
            };
            let signed = SignedCharter::unsigned(c.to_body())?;
            write_new(out, &charter::encode(&signed))?;
            println!("genesis charter written to {}\nhash {}", out.display(), signed.hash());
            Ok(ExitCode::SUCCESS)
        }
        CharterCommand::Sign { file, key } => {
            let mut c = read(file)?;
            let key = config::load_signing_key(key)?;
            c.sign(&key)?;
            replace(file, &charter::encode(&c))?;
            let root = &c.charter.root;
            let own = c.signatures.iter().filter(|s| root.keys.contains(&s.key)).count();
            println!(
                "signed version {} ({}); {own} of its {} root keys have signed, threshold {}",
                c.charter.version,
                c.hash(),
                root.keys.len(),
                root.threshold
            );
            Ok(ExitCode::SUCCESS)
        }
        CharterCommand::Verify { files, genesis_hash } => {
            let charters = files.iter().map(|f| read(f)).collect::<Result<Vec<_>>>()?;
            let Some(first) = charters.first() else { bail!("give the charter files, genesis first") };
            let pinned = match genesis_hash {
                Some(h) => charter::CharterHash::from_hex(h)?,
                None => {
                    eprintln!("warning: no --genesis-hash: trusting the first file's hash {}", first.hash());
                    first.hash()
                }
            };
            let chain = charter::verify_chain(&pinned, &charters).map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
            let latest = &chain.latest().charter;
            println!(
                "charter chain valid: genesis {}, latest version {} ({}), {} organizations, expires {}: {:?}",
                chain.genesis(),
                latest.version,
                chain.latest().hash(),
                latest.organizations.len(),
                latest.expires,
                chain.expiry_status(entrepot::clock::now_ms())
            );
            Ok(ExitCode::SUCCESS)
        }
        CharterCommand::Install { file } => {
            let cfg = config::load_config(dir)?;
            let Some(cc) = &cfg.charter else { bail!("{} is not configured with a [charter]", dir.display()) };
            let mut chain = config::load_charter_chain(dir, cc)?;
            let next = read(file)?;
            let version = next.charter.version;
            let bytes = charter::encode(&next);
            chain.extend(next).map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
            let dest = dir.join(&cc.dir).join(config::charter_file_name(version));
            write_new(&dest, &bytes)?;
            println!(
                "installed charter version {version} as {}; it is in force from the node's next start \
                 (a running node takes it with `charter publish`)",
                dest.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CharterCommand::Publish { file } => {
            let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            charter::decode(&bytes).map_err(|e| anyhow::anyhow!("{} is not a charter file: {e}", file.display()))?;
            let config = config::load_config(dir)?;
            let token = super::status::token(dir, &config, true)?;
            let answer = super::status::request(
                &config.http.listen,
                "POST",
                "/v1/admin/charter",
                token.as_deref(),
                Some(("application/octet-stream", &bytes)),
            )?;
            let (from, to) = (answer["from"].as_u64().unwrap_or(0), answer["to"].as_u64().unwrap_or(0));
            if from == to {
                println!("charter version {to} was already in force on this node");
            } else {
                println!("charter version {to} is in force on this node (was {from}); peers pull it from here");
            }
            Ok(ExitCode::SUCCESS)
        }
        CharterCommand::Next { file, out, add_key, revoke_key, remove_org, expires } => {
            let current = read(file)?;
            let mut c = current.charter.clone();
            c.version = c.version.checked_add(1).context("version overflow")?;
            c.previous = Some(current.hash());
            if let Some(e) = expires {
                c.expires = e.clone();
            }
            for spec in add_key {
                let (org, key, seq) = key_edit(spec)?;
                let m = member(&mut c, &org)?;
                if m.keys.iter().any(|k| k.key == key) {
                    bail!("{org} already holds key {}", hex::encode(key.0));
                }
                m.keys.push(MemberKey { key, valid_from_seq: seq, revoked_at_seq: None });
            }
            for spec in revoke_key {
                let (org, key, seq) = key_edit(spec)?;
                let m = member(&mut c, &org)?;
                let Some(k) = m.keys.iter_mut().find(|k| k.key == key) else {
                    bail!("{org} holds no key {}", hex::encode(key.0))
                };
                k.revoked_at_seq = Some(seq);
            }
            for id in remove_org {
                let org = OrgId::new(id).map_err(|e| anyhow::anyhow!("--remove-org {id}: {e}"))?;
                let before = c.organizations.len();
                c.organizations.retain(|m| m.id != org);
                if c.organizations.len() == before {
                    bail!("{org} is not a member of version {}", current.charter.version);
                }
            }
            let next = SignedCharter::unsigned(c.to_body())?;
            write_new(out, &charter::encode(&next))?;
            println!("version {} written to {} (unsigned); hash {}", next.charter.version, out.display(), next.hash());
            Ok(ExitCode::SUCCESS)
        }
        CharterCommand::CertifyNode { peer_id, out } => {
            let node = config::open(dir)?;
            let (Some(org), Some(key_path)) = (&node.config.organization, &node.config.signing_key) else {
                bail!("{} has no signing key: certify from a publishing node", dir.display())
            };
            let key = config::load_signing_key(&dir.join(key_path))?;
            let cert = charter::certify_node(&node.network_id, org, peer_id, entrepot::clock::now_ms(), &key)?;
            if let Some(chain) = node.keyring.charter() {
                cert.verify(chain, &node.network_id, peer_id).map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
            }
            write_new(out, &cert.bytes)?;
            println!("node certificate for {peer_id} ({org}) written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read(path: &Path) -> Result<SignedCharter> {
    Ok(config::read_charter_file(path)?)
}

/// Parses ORG:HEXKEY:SEQ.
fn key_edit(spec: &str) -> Result<(OrgId, PublicKey, Seq)> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [org, key, seq] = parts[..] else { bail!("'{spec}' is not ORG:HEXKEY:SEQ") };
    let mut raw = [0u8; 32];
    hex::decode_to_slice(key, &mut raw).map_err(|_| anyhow::anyhow!("'{key}' is not 64 hex digits"))?;
    let seq: u64 = seq.parse().map_err(|_| anyhow::anyhow!("'{seq}' is not a feed position"))?;
    if seq == 0 {
        bail!("feed positions start at 1");
    }
    Ok((OrgId::new(org)?, PublicKey::new(raw)?, Seq(seq)))
}

fn member<'a>(c: &'a mut Charter, org: &OrgId) -> Result<&'a mut Member> {
    c.organizations.iter_mut().find(|m| &m.id == org).with_context(|| format!("{org} is not a member"))
}

/// Writes a new file, refusing to overwrite one.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", path.display()))
}

/// Replaces a file atomically (write beside, then rename), so a crash leaves old or new.
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}
