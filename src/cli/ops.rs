//! Operations on a node directory: backup, restore and configuration checks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use entrepot::config::{self, CONFIG_FILE};
use entrepot::config_check::{self, CheckOptions, Severity};
use entrepot::store::backup::{self, BackupError};
use entrepot::store::{Store, StoreError};

/// What to do when the store is held by a running node: its admin endpoint takes the backup.
fn running_node_backup(dir: &Path, cfg: &config::Config, out: &Path) -> String {
    format!(
        "the node is running (it holds the store's lock). Back it up through the running node instead, with its admin endpoint POST /v1/admin/backup: `curl -fsS -X POST -H \"Authorization: Bearer $(cat {token})\" -H 'Content-Type: application/json' -d '{{\"out\": \"{out}\"}}' http://{listen}/v1/admin/backup` (see docs/OPERATIONS.md, \"Backup and restore\"), or stop the node and run `entrepot backup` again",
        token = dir.join(&cfg.http.token_file).display(),
        out = out.display(),
        listen = cfg.http.listen,
    )
}

pub fn backup(dir: &Path, out: &Path) -> Result<ExitCode> {
    let cfg = config::load_config(dir)?;
    let store = match Store::open(&dir.join(&cfg.data_dir), &cfg.network_id()) {
        Err(StoreError::Locked { .. }) => {
            bail!("cannot back up {}: {}", dir.display(), running_node_backup(dir, &cfg, out))
        }
        other => other?,
    };
    let manifest = backup::backup(&store, out)?;
    println!(
        "backup of {} written to {}: {} document(s), {} feed(s), store format version {}",
        dir.display(),
        out.display(),
        manifest.document_count,
        manifest.heads.len(),
        manifest.store_format_version
    );
    Ok(ExitCode::SUCCESS)
}

pub fn restore(dir: &Path, from: &Path, force: bool) -> Result<ExitCode> {
    let cfg = config::load_config(dir)?;
    let data_dir = dir.join(&cfg.data_dir);
    let restored = match backup::restore(from, &data_dir, &cfg.network_id(), force) {
        Err(BackupError::Store(StoreError::Locked { .. })) => {
            bail!(
                "cannot restore into {}: the node is running (it holds the store's lock); stop it first",
                dir.display()
            )
        }
        other => other?,
    };
    for m in &restored.migrations {
        println!("migrated the restored store from format version {} to {}: {}", m.from, m.to, m.summary);
    }
    if let Some(old) = &restored.replaced {
        println!("the replaced store was moved to {}; delete it once the node runs well", old.display());
    }
    println!(
        "restored {} into {}: {} document(s) and {} feed head(s) match the manifest",
        from.display(),
        data_dir.display(),
        restored.manifest.document_count,
        restored.manifest.heads.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn config_check(dir: &Path, files: &[PathBuf], options: CheckOptions) -> Result<ExitCode> {
    let files = if files.is_empty() { vec![dir.join(CONFIG_FILE)] } else { files.to_vec() };
    let mut failed = 0;
    for file in &files {
        let report = config_check::check_file(file, options);
        for f in &report.findings {
            let level = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            println!("{}: {level}: {}: {}", file.display(), f.field, f.message);
        }
        if report.has_errors() {
            failed += 1;
        } else {
            println!("{}: ok", file.display());
        }
    }
    if failed > 0 {
        bail!("{failed} of {} configuration file(s) have errors", files.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// The libp2p peer id of the node's identity key (ed25519 secret, hex), as peers see it.
pub fn peer_id(dir: &Path) -> Result<ExitCode> {
    let cfg = config::load_config(dir)?;
    let path = dir.join(&cfg.p2p.identity);
    let key =
        config::load_signing_key(&path).with_context(|| format!("reading the identity key {}", path.display()))?;
    let secret = libp2p::identity::ed25519::SecretKey::try_from_bytes(key.to_bytes())
        .with_context(|| format!("{} is not an ed25519 secret key", path.display()))?;
    let keypair = libp2p::identity::Keypair::from(libp2p::identity::ed25519::Keypair::from(secret));
    println!("{}", keypair.public().to_peer_id());
    Ok(ExitCode::SUCCESS)
}
