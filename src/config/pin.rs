//! Pinning a charter network in a node directory: `init --genesis-hash --charter` and
//! `charter pin` (the genesis verified from its hash, the files copied, the `[charter]` section
//! written, the store bound to the genesis hash).

use std::path::{Path, PathBuf};

use super::{
    charter_file_name, default_charter_dir, load_config, read_charter_file, toml_str, write, Config, ConfigError,
    CONFIG_FILE,
};
use crate::charter::{self, CharterHash, SignedCharter, VerifiedChain};
use crate::store::Store;

/// A genesis to pin: the hash every node agrees on out of band, and the charter files (the
/// genesis, then any later versions), which must verify from it.
#[derive(Debug, Clone, Copy)]
pub struct CharterPin<'a> {
    /// The genesis hash, 64 hex digits.
    pub genesis_hash: &'a str,
    /// Charter files, in any order.
    pub files: &'a [PathBuf],
}

impl CharterPin<'_> {
    /// Reads the files and verifies them as a chain from the pinned hash.
    pub fn verify(&self) -> Result<(VerifiedChain, Vec<SignedCharter>), ConfigError> {
        let invalid = |reason: String| ConfigError::Charter { path: PathBuf::from("--charter"), reason };
        let pinned = CharterHash::from_hex(self.genesis_hash).map_err(|e| invalid(format!("--genesis-hash: {e}")))?;
        if self.files.is_empty() {
            return Err(invalid("give the genesis charter file (and any later versions)".into()));
        }
        let mut charters = self.files.iter().map(|f| read_charter_file(f)).collect::<Result<Vec<_>, _>>()?;
        charters.sort_by_key(|c| c.charter.version);
        let chain = charter::verify_chain(&pinned, &charters)
            .map_err(|e| invalid(format!("the files do not verify from genesis {pinned}: {e} ({})", e.code())))?;
        Ok((chain, charters))
    }
}

/// The `[charter]` section `init --genesis-hash` and `charter pin` write.
pub(super) fn charter_section(genesis_hash: &str) -> String {
    format!(
        "\n\
         # A charter network (docs/PROTOCOL.md section 10): the pinned genesis hash is the network\n\
         # id, and the charter (not the keyring) says who may publish what.\n\
         [charter]\n\
         genesis_hash = {hash}\n\
         # Charter files (*.charter, applied by version); later versions arrive from peers.\n\
         dir = \"charter\"\n\
         # This node's certificate from its organization (`entrepot charter certify-node`). The\n\
         # node starts without the file, but peers admit it only once it is there; a running node\n\
         # re-reads it on SIGHUP.\n\
         certificate = \"node.cert\"\n",
        hash = toml_str(genesis_hash)
    )
}

/// Copies verified charter files into the node's charter directory (a file already there
/// with the same bytes is kept).
pub(super) fn copy_charters(dir: &Path, charters: &[SignedCharter]) -> Result<(), ConfigError> {
    let cdir = dir.join(default_charter_dir());
    std::fs::create_dir_all(&cdir).map_err(|source| ConfigError::Write { path: cdir.clone(), source })?;
    for c in charters {
        let path = cdir.join(charter_file_name(c.charter.version));
        let bytes = charter::encode(c);
        if std::fs::read(&path).is_ok_and(|held| held == bytes) {
            continue;
        }
        std::fs::write(&path, bytes).map_err(|source| ConfigError::Write { path, source })?;
    }
    Ok(())
}

/// Pins a charter in an existing node directory made without one: checks the files, re-binds
/// the store to the genesis hash (only a store that holds nothing can be; a running node holds
/// its lock), copies the files under `charter/` and appends a `[charter]` section to the
/// config. Nothing is changed when any step before the copy fails.
pub fn pin_charter(dir: &Path, pin: &CharterPin) -> Result<VerifiedChain, ConfigError> {
    let config = load_config(dir)?;
    let path = dir.join(CONFIG_FILE);
    if let Some(c) = &config.charter {
        return Err(ConfigError::Invalid {
            path,
            reason: format!(
                "the node is already pinned to genesis {}; a node's network cannot change once it has one",
                c.genesis_hash
            ),
        });
    }
    let (chain, charters) = pin.verify()?;
    let genesis = chain.genesis();
    drop(Store::open(&dir.join(&config.data_dir), &genesis.0)?);
    copy_charters(dir, &charters)?;
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    let pinned = format!("{}{}", text.trim_end_matches('\n').to_owned() + "\n", charter_section(&genesis.to_hex()));
    Config::parse(&pinned, &path)?;
    write(&path, &pinned)?;
    Ok(chain)
}
