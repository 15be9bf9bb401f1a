//! `entrepot charter …`: create, sign, verify, install and edit charters; certify nodes.
//! Signing is offline and one key at a time, so root keys never need to share a machine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde::Deserialize;

use entrepot::charter::{self, Charter, Member, MemberKey, PublicKey, Root, SignedCharter};
use entrepot::config;
use entrepot::document::{OrgId, Seq};

#[derive(Subcommand)]
pub enum CharterCommand {
    /// Make a new ed25519 key (a root key, or an organization's key) in a new file (64 hex
    /// digits, mode 0600; an existing file is never overwritten), and print its public key.
    /// Run it on the machine that keeps the key; send only the public key.
    Keygen {
        /// The key file to create.
        #[arg(long)]
        out: PathBuf,
    },
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
    /// Pin a charter network in this (stopped) node, made by `init` without one: check the
    /// files from the genesis hash, re-bind the store to it (only a store that holds nothing
    /// can be), copy the files under `charter/` and add a `[charter]` section (with
    /// `certificate = "node.cert"`) to config.toml. Nodes made after the genesis can instead
    /// be made with `init --genesis-hash HASH --charter FILE`.
    Pin {
        /// The genesis charter file (and any later versions).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The genesis hash all nodes agreed on (printed by `charter genesis`).
        #[arg(long)]
        genesis_hash: String,
    },
    /// Install a charter version into this (stopped) node's `[charter]` directory once it
    /// verifies after the versions the node holds; it is in force at the next start.
    Install { file: PathBuf },
    /// Publish a charter version to this running node (`POST /v1/admin/charter`): it is put in
    /// force at once and every peer pulls it from there.
    Publish { file: PathBuf },
    /// Write the next version of a charter, unsigned: members added or removed, keys added or
    /// revoked, a new expiry.
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
        /// Add a member organization from a JSON file (repeatable): `{"id", "name", "country",
        /// "region", "role", "keys": [{"key", "valid_from_seq"}], "permissions": [{"type"}]}`
        /// (country and region optional; role one of secretariat, customs, rilo, observer).
        #[arg(long = "add-org")]
        add_org: Vec<PathBuf>,
        /// Remove a member organization (repeatable): its nodes lose their certificates.
        #[arg(long = "remove-org")]
        remove_org: Vec<String>,
        /// New expiry (RFC 3339); default: unchanged.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Certify a node (a publishing node or a replica): sign a binding of its libp2p peer id
    /// to an organization with one of the organization's current charter keys. By default the
    /// key and organization are this publishing node's (`--dir`) and the charter is the one it
    /// has pinned; a member that runs only replicas gives its key with --org-key and --org,
    /// and the charter with --genesis-hash and --charter unless --dir holds a pinned node.
    /// The store is not opened (a running node is certified again without stopping it; send
    /// it SIGHUP to show the new certificate). Refused when the certificate would not be valid
    /// under the charter's latest version.
    CertifyNode {
        /// The libp2p peer id of the node to certify (`entrepot --dir NODE peer-id`).
        #[arg(long)]
        peer_id: String,
        /// The certificate file to write (must not exist; the path `[charter] certificate`
        /// names, e.g. NODE/node.cert).
        #[arg(long)]
        out: PathBuf,
        /// The organization's key file (64 hex digits) instead of this node's signing key.
        #[arg(long, requires = "org")]
        org_key: Option<PathBuf>,
        /// The organization the key belongs to (with --org-key).
        #[arg(long, requires = "org_key")]
        org: Option<String>,
        /// The pinned genesis hash, when --dir holds no pinned node.
        #[arg(long, requires = "charter")]
        genesis_hash: Option<String>,
        /// The charter files (genesis first or any order), with --genesis-hash.
        #[arg(long, requires = "genesis_hash")]
        charter: Vec<PathBuf>,
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
        CharterCommand::Keygen { out } => {
            let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
            write_secret(out, format!("{}\n", hex::encode(key.to_bytes())).as_bytes())?;
            println!(
                "secret key written to {} (mode 0600: keep it there, never send it)\npublic key {}",
                out.display(),
                hex::encode(key.verifying_key().to_bytes())
            );
            Ok(ExitCode::SUCCESS)
        }
        CharterCommand::Pin { files, genesis_hash } => {
            let pin = config::CharterPin { genesis_hash, files };
            let chain = config::pin_charter(dir, &pin)?;
            let latest = &chain.latest().charter;
            println!(
                "{} is pinned to genesis {} (charter version {}, {} organizations); the store is bound to it.\n\
                 Next: certify this node (`entrepot --dir {} peer-id`, then `charter certify-node`) into {}",
                dir.display(),
                chain.genesis(),
                latest.version,
                latest.organizations.len(),
                dir.display(),
                dir.join("node.cert").display()
            );
            Ok(ExitCode::SUCCESS)
        }
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
        CharterCommand::Next { file, out, add_key, revoke_key, add_org, remove_org, expires } => {
            let current = read(file)?;
            let mut c = current.charter.clone();
            c.version = c.version.checked_add(1).context("version overflow")?;
            c.previous = Some(current.hash());
            if let Some(e) = expires {
                c.expires = e.clone();
            }
            for path in add_org {
                let m = new_member(path)?;
                if c.member(&m.id).is_some() {
                    bail!(
                        "--add-org {}: {} is already a member of version {}",
                        path.display(),
                        m.id,
                        current.charter.version
                    );
                }
                for k in &m.keys {
                    if let Some(holder) = c.organizations.iter().find(|o| o.keys.iter().any(|h| h.key == k.key)) {
                        bail!("--add-org {}: key {} is already {}'s", path.display(), hex::encode(k.key.0), holder.id);
                    }
                }
                c.organizations.push(m);
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
            let next = SignedCharter::unsigned(c.to_body()).context("the next version would not be a valid charter")?;
            write_new(out, &charter::encode(&next))?;
            println!("version {} written to {} (unsigned); hash {}", next.charter.version, out.display(), next.hash());
            Ok(ExitCode::SUCCESS)
        }
        CharterCommand::CertifyNode { peer_id, out, org_key, org, genesis_hash, charter } => {
            let certifier = Certifier { dir, org_key: org_key.as_deref(), org: org.as_deref() };
            let pin = genesis_hash.as_deref().map(|h| config::CharterPin { genesis_hash: h, files: charter });
            certify(&certifier, pin, peer_id, out)
        }
    }
}

/// Who signs a certificate: the organization's key in a file, or the node's own signing key.
struct Certifier<'a> {
    dir: &'a Path,
    org_key: Option<&'a Path>,
    org: Option<&'a str>,
}

/// `charter certify-node`: never opens the store, so it runs beside a running node.
fn certify(who: &Certifier, pin: Option<config::CharterPin>, peer_id: &str, out: &Path) -> Result<ExitCode> {
    let dir = who.dir;
    let node = if dir.join(config::CONFIG_FILE).exists() { Some(config::load_config(dir)?) } else { None };
    let chain = match (pin, node.as_ref().and_then(|n| n.charter.as_ref())) {
        (Some(pin), _) => pin.verify()?.0,
        (None, Some(cc)) => config::load_charter_chain(dir, cc)?,
        (None, None) => bail!(
            "no charter is pinned, so no certificate can be made: a certificate names the network id, which is the \
             genesis hash. Pin the charter in {} first (`entrepot --dir {} charter pin FILE --genesis-hash HASH`, or \
             `init --genesis-hash HASH --charter FILE`), or give --genesis-hash and --charter",
            dir.display(),
            dir.display()
        ),
    };
    libp2p::PeerId::from_str(peer_id).map_err(|e| {
        anyhow::anyhow!(
            "--peer-id '{peer_id}' is not a libp2p peer id ({e}); print it with `entrepot --dir NODE peer-id`"
        )
    })?;
    let (org, key) = match (who.org, who.org_key) {
        (Some(org), Some(path)) => (OrgId::new(org)?, config::load_signing_key(path)?),
        _ => {
            let (Some(org), Some(key_path)) =
                (node.as_ref().and_then(|n| n.organization.clone()), node.as_ref().and_then(|n| n.signing_key.clone()))
            else {
                bail!(
                    "{} is not a publishing node (no signing key): give the organization's key with --org-key FILE --org ID",
                    dir.display()
                )
            };
            (org, config::load_signing_key(&dir.join(key_path))?)
        }
    };
    let network_id = chain.genesis().0;
    let cert = charter::certify_node(&network_id, &org, peer_id, entrepot::clock::now_ms(), &key)?;
    cert.verify(&chain, &network_id, peer_id).map_err(|e| {
        anyhow::anyhow!(
            "no certificate written: it would not be valid under charter version {}: {e} ({}); certify with a current key of {org}",
            chain.latest().charter.version,
            e.code()
        )
    })?;
    write_new(out, &cert.bytes)?;
    println!(
        "node certificate for {peer_id} ({org}, charter version {}) written to {}",
        chain.latest().charter.version,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads a member organization for `charter next --add-org` (the schema and the charter's
/// rules check it again as part of the whole version).
fn new_member(path: &Path) -> Result<Member> {
    let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    if len > ORG_FILE_MAX_BYTES {
        bail!("--add-org {}: {len} bytes, more than {ORG_FILE_MAX_BYTES}", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("--add-org {} is not a valid organization", path.display()))
}

/// Largest `--add-org` file read (an organization with every key and permission is ~16 KiB).
const ORG_FILE_MAX_BYTES: u64 = 64 * 1024;

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

/// Writes a new secret file, mode 0600 from its creation, refusing to overwrite one.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", path.display()))
}

/// Replaces a file atomically (write beside, then rename), so a crash leaves old or new.
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}
