//! The node's directory, its configuration file and what opening a node means.
//!
//! A node directory holds `config.toml`, `keyring.json`, the signing key (publishing nodes
//! only) and the RocksDB store. Paths in the config are relative to the directory.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::authority::{Keyring, KeyringError, Organization};
use crate::charter::{self, CharterHash, SignedCharter, VerifiedChain};
use crate::document::{OrgId, TypeName};
use crate::publish::Publisher;
use crate::store::{Store, StoreBudget, StoreError};

mod pin;
use pin::{charter_section, copy_charters};
pub use pin::{pin_charter, CharterPin};

/// Name of the configuration file inside a node directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Why a node directory cannot be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} already holds a node (config.toml exists); choose another directory")]
    AlreadyInitialized(PathBuf),
    #[error("no node in {0}: config.toml is missing; run `entrepot init --dir {0}` first")]
    NotInitialized(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid configuration: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("signing key {path} is not valid: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("charter {path} is not usable: {reason}")]
    Charter { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The contents of `config.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Network name; every node of one network uses the same one.
    pub network: String,
    /// The organization this node publishes for; absent on a read replica.
    pub organization: Option<OrgId>,
    /// Path of the signing key file; absent on a read replica.
    pub signing_key: Option<PathBuf>,
    /// Path of the keyring file (unused when `charter` is set).
    #[serde(default = "default_keyring")]
    pub keyring: PathBuf,
    /// A charter network: the pinned genesis and the charter files; replaces the keyring and
    /// makes the network id the genesis hash.
    #[serde(default)]
    pub charter: Option<CharterConfig>,
    /// Path of the RocksDB directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Peer-to-peer networking.
    #[serde(default)]
    pub p2p: P2pConfig,
    /// What this node replicates.
    #[serde(default)]
    pub replication: ReplicationConfig,
    /// The HTTP API and web page.
    #[serde(default)]
    pub http: HttpConfig,
}

/// `[p2p]`: libp2p settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// Multiaddresses to listen on.
    pub listen: Vec<String>,
    /// Peers to dial at start, and again whenever not connected (with a backoff, never while
    /// banned), as multiaddresses ending in `/p2p/PEER_ID`.
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network with mDNS (for labs and LANs only).
    pub mdns: bool,
    /// Find more peers through Kademlia (routing-table refreshes and lookups, which dial the
    /// peers they find). Off, there is no Kademlia: a node talks only to its bootstrap peers
    /// (and mDNS finds, if `mdns` is on) and to those that dial it, a fixed topology.
    pub discovery: bool,
    /// Connections kept (inbound and outbound together); more are let go, keeping bootstrap
    /// peers and diversity (docs/PROTOCOL.md §8.1). 4 to 128.
    pub connections: usize,
    /// The node's libp2p identity key (ed25519 secret, hex), distinct from any signing key.
    pub identity: PathBuf,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: vec!["/ip4/0.0.0.0/tcp/4001".into()],
            bootstrap: Vec::new(),
            mdns: false,
            discovery: true,
            connections: crate::node::core::topology::CONNECTIONS_TARGET,
            identity: "keys/node.key".into(),
        }
    }
}

/// `[replication]`: filtered replication. Empty lists mean everything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// Only these publishers' feeds.
    pub publishers: Vec<OrgId>,
    /// Only documents of these types. Not enforced by sync protocol version 1 (a feed's
    /// continuity needs every envelope; docs/PROTOCOL.md §8.4): a node with types set warns.
    pub types: Vec<TypeName>,
}

/// `[http]`: the HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Socket address to listen on; loopback by default.
    pub listen: String,
    /// File holding the bearer token that POST requests (publishing) must present.
    pub token_file: PathBuf,
    /// Whether reading needs the token too (`false`: reads are open to whoever reaches the port).
    pub read_requires_token: bool,
    /// Requests a second each client address may make, sustained (0: no limit).
    pub rate_limit_per_second: u32,
    /// Requests a client may make at once before the sustained rate applies.
    pub rate_limit_burst: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            token_file: "keys/api.token".into(),
            read_requires_token: false,
            rate_limit_per_second: crate::api::RateLimit::default().per_second,
            rate_limit_burst: crate::api::RateLimit::default().burst,
        }
    }
}

/// The `[charter]` section of `config.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharterConfig {
    /// SHA-256 of the genesis charter body, hex: the pin, and the network id.
    pub genesis_hash: String,
    /// Directory of charter files (`*.charter`, any order: they are applied by version).
    #[serde(default = "default_charter_dir")]
    pub dir: PathBuf,
    /// This node's certificate from its organization (`entrepot charter certify-node`). Peers of
    /// a charter network admit no node without one (docs/PROTOCOL.md §11).
    #[serde(default)]
    pub certificate: Option<PathBuf>,
}

fn default_charter_dir() -> PathBuf {
    "charter".into()
}

/// The file name `charter install` gives a version: sorts by version, says what it is.
pub fn charter_file_name(version: u32) -> String {
    format!("v{version:06}.charter")
}

/// Most charter files a node loads.
pub const CHARTER_FILES_MAX: usize = 1024;
/// Largest charter file read.
pub const CHARTER_FILE_MAX_BYTES: u64 = 2 * 1024 * 1024;

fn default_keyring() -> PathBuf {
    "keyring.json".into()
}

fn default_data_dir() -> PathBuf {
    "db".into()
}

/// Longest network name accepted.
pub const NETWORK_NAME_LEN_MAX: usize = 64;

/// The network id signed into every document: `SHA-256("entrepot/network/v1" || 0x00 || name)`.
pub fn network_id(name: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"entrepot/network/v1\0");
    h.update(name.as_bytes());
    h.finalize().into()
}

/// Bounds of `[p2p] connections`: enough peers to stay connected through churn, and well
/// within the libp2p cap ([`crate::net::limits::CONNECTIONS_MAX`]) that bounds what arrives
/// between two prunes.
pub const P2P_CONNECTIONS_MIN: usize = 4;
pub const P2P_CONNECTIONS_MAX: usize = 128;
const _: () = assert!(P2P_CONNECTIONS_MAX < crate::net::limits::CONNECTIONS_MAX as usize);

impl Config {
    /// Parses and checks a configuration text.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { path: path.to_owned(), reason };
        let config: Config = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if config.network.is_empty() || config.network.len() > NETWORK_NAME_LEN_MAX {
            return Err(invalid(format!("network must be 1-{NETWORK_NAME_LEN_MAX} characters")));
        }
        if let Some(c) = &config.charter {
            CharterHash::from_hex(&c.genesis_hash).map_err(|e| invalid(format!("charter.genesis_hash: {e}")))?;
        }
        if !(P2P_CONNECTIONS_MIN..=P2P_CONNECTIONS_MAX).contains(&config.p2p.connections) {
            return Err(invalid(format!(
                "p2p.connections must be {P2P_CONNECTIONS_MIN}-{P2P_CONNECTIONS_MAX}, not {}",
                config.p2p.connections
            )));
        }
        if config.organization.is_some() != config.signing_key.is_some() {
            return Err(invalid(
                "organization and signing_key go together: set both on a publishing node, neither on a replica".into(),
            ));
        }
        Ok(config)
    }

    /// The network id: the genesis charter hash on a charter network, else derived from the name.
    pub fn network_id(&self) -> [u8; 32] {
        match &self.charter {
            Some(c) => CharterHash::from_hex(&c.genesis_hash).map(|h| h.0).unwrap_or([0; 32]),
            None => network_id(&self.network),
        }
    }
}

/// Reads a charter file (bytes of docs/PROTOCOL.md §10.1).
pub fn read_charter_file(path: &Path) -> Result<SignedCharter, ConfigError> {
    let err = |reason: String| ConfigError::Charter { path: path.to_owned(), reason };
    let len = std::fs::metadata(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?.len();
    if len > CHARTER_FILE_MAX_BYTES {
        return Err(err(format!("{len} bytes, more than {CHARTER_FILE_MAX_BYTES}")));
    }
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    charter::decode(&bytes).map_err(|e| err(e.to_string()))
}

/// Reads a node certificate file (bytes of docs/PROTOCOL.md §11).
pub fn read_certificate(path: &Path) -> Result<charter::NodeCert, ConfigError> {
    let err = |reason: String| ConfigError::Charter { path: path.to_owned(), reason };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read the node certificate: {e}")))?;
    if bytes.len() > crate::sync::wire::CERT_MAX_BYTES {
        return Err(err(format!("a node certificate is at most {} bytes", crate::sync::wire::CERT_MAX_BYTES)));
    }
    charter::decode_cert(&bytes).map_err(|e| err(format!("not a node certificate: {e}")))
}

/// Loads and verifies a node's charter chain from its `[charter]` section.
pub fn load_charter_chain(dir: &Path, c: &CharterConfig) -> Result<VerifiedChain, ConfigError> {
    let pinned = CharterHash::from_hex(&c.genesis_hash)
        .map_err(|e| ConfigError::Charter { path: dir.join(CONFIG_FILE), reason: e.to_string() })?;
    let cdir = dir.join(&c.dir);
    let entries = std::fs::read_dir(&cdir).map_err(|source| ConfigError::Read { path: cdir.clone(), source })?;
    let mut charters = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| ConfigError::Read { path: cdir.clone(), source })?.path();
        if path.extension().is_some_and(|e| e == "charter") {
            if charters.len() == CHARTER_FILES_MAX {
                return Err(ConfigError::Charter {
                    path: cdir,
                    reason: format!("more than {CHARTER_FILES_MAX} files"),
                });
            }
            charters.push(read_charter_file(&path)?);
        }
    }
    // Applied by version; duplicates and gaps are then refused by the chain rules.
    charters.sort_by_key(|c| c.charter.version);
    charter::verify_chain(&pinned, &charters)
        .map_err(|e| ConfigError::Charter { path: cdir, reason: format!("{e} ({})", e.code()) })
}

/// An opened node directory.
pub struct Node {
    pub dir: PathBuf,
    pub config: Config,
    pub network_id: [u8; 32],
    pub keyring: Keyring,
    pub store: Store,
    pub publisher: Option<Publisher>,
    /// This node's certificate, on a charter network that configures one and once its file
    /// exists (a node starts without it, and peers admit it once it is there: see
    /// [`Node::certificate_path`]).
    pub certificate: Option<charter::NodeCert>,
}

impl Node {
    /// Where `[charter] certificate` says this node's certificate is, if it says.
    pub fn certificate_path(&self) -> Option<PathBuf> {
        certificate_path(&self.dir, &self.config)
    }
}

/// `[charter] certificate`, joined to the node directory.
pub fn certificate_path(dir: &Path, config: &Config) -> Option<PathBuf> {
    config.charter.as_ref().and_then(|c| c.certificate.as_ref()).map(|p| dir.join(p))
}

/// Reads the node's certificate when its file exists; `None` when none is configured or the
/// file is not there yet (the node is certified after `init`, from its peer id).
pub fn read_own_certificate(dir: &Path, config: &Config) -> Result<Option<charter::NodeCert>, ConfigError> {
    match certificate_path(dir, config) {
        Some(path) => match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => read_certificate(&path).map(Some),
        },
        None => Ok(None),
    }
}

/// Options for [`init`].
pub struct InitOptions<'a> {
    pub network: &'a str,
    /// `Some` for a publishing node: its organization id and display name.
    pub organization: Option<(OrgId, String)>,
    /// libp2p listen multiaddress.
    pub p2p_listen: &'a str,
    /// HTTP listen socket address.
    pub http_listen: &'a str,
    /// Bootstrap peers (multiaddresses with `/p2p/PEER_ID`).
    pub bootstrap: &'a [String],
    /// A charter network: the store is bound to its genesis from the start.
    pub charter: Option<CharterPin<'a>>,
}

impl Default for InitOptions<'_> {
    fn default() -> Self {
        InitOptions {
            network: "entrepot-local",
            organization: None,
            p2p_listen: "/ip4/0.0.0.0/tcp/4001",
            http_listen: "127.0.0.1:8080",
            bootstrap: &[],
            charter: None,
        }
    }
}

fn write(path: &Path, contents: &str) -> Result<(), ConfigError> {
    std::fs::write(path, contents).map_err(|source| ConfigError::Write { path: path.to_owned(), source })
}

/// Creates a node directory: config with commented defaults, keyring, signing key (publishing
/// nodes) and an empty store. Refuses a directory that already holds a node.
pub fn init(dir: &Path, opts: &InitOptions) -> Result<Node, ConfigError> {
    let config_path = dir.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(ConfigError::AlreadyInitialized(dir.to_owned()));
    }
    if opts.network.is_empty() || opts.network.len() > NETWORK_NAME_LEN_MAX {
        return Err(ConfigError::Invalid {
            path: config_path,
            reason: format!("network must be 1-{NETWORK_NAME_LEN_MAX} characters"),
        });
    }
    // Checked before anything is written, so a bad pin leaves no half-made node.
    let pinned = opts.charter.map(|pin| pin.verify()).transpose()?;
    std::fs::create_dir_all(dir).map_err(|source| ConfigError::Write { path: dir.to_owned(), source })?;
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir).map_err(|source| ConfigError::Write { path: keys_dir.clone(), source })?;
    // The node's libp2p identity and the API token: secrets of this node, not of its organization.
    let identity = SigningKey::generate(&mut rand::rngs::OsRng);
    let identity_path = keys_dir.join("node.key");
    write(&identity_path, &format!("{}\n", hex::encode(identity.to_bytes())))?;
    restrict_permissions(&identity_path)?;
    let token: [u8; 32] = rand::random();
    let token_path = keys_dir.join("api.token");
    write(&token_path, &format!("{}\n", hex::encode(token)))?;
    restrict_permissions(&token_path)?;
    let mut keyring = Keyring::default();
    let publishing = match &opts.organization {
        Some((org, name)) => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let keys_dir = dir.join("keys");
            std::fs::create_dir_all(&keys_dir)
                .map_err(|source| ConfigError::Write { path: keys_dir.clone(), source })?;
            let key_path = keys_dir.join("signing.key");
            write(&key_path, &format!("{}\n", hex::encode(key.to_bytes())))?;
            restrict_permissions(&key_path)?;
            keyring
                .insert(Organization {
                    id: org.clone(),
                    name: name.clone(),
                    keys: vec![hex::encode(key.verifying_key().to_bytes())],
                    types: None,
                })
                .map_err(|reason| ConfigError::Invalid { path: dir.join("keyring.json"), reason })?;
            format!(
                "# The organization this node publishes for, and its ed25519 signing key (hex, keep it\n\
                 # secret: mode 0600). A read replica has neither line.\n\
                 organization = \"{org}\"\n\
                 signing_key = \"keys/signing.key\"\n"
            )
        }
        None => "# A read replica: no organization and no signing key.\n\
                 # organization = \"WCO\"\n\
                 # signing_key = \"keys/signing.key\"\n"
            .to_owned(),
    };
    keyring.save(&dir.join("keyring.json"))?;
    let text = format!(
        "# entrepot node configuration. Relative paths are relative to this file's directory.\n\
         \n\
         # The network this node belongs to. All nodes of a network use the same name. Without a\n\
         # [charter] section the network id signed into every document is\n\
         # SHA-256(\"entrepot/network/v1\" 0x00 name); with one it is the genesis charter hash\n\
         # ([charter] genesis_hash) and the name is only a label (docs/PROTOCOL.md section 1).\n\
         network = {network}\n\
         \n\
         {publishing}\
         \n\
         # Trusted organizations: their public keys and the document types each may publish.\n\
         # Add one with `entrepot keyring add`.\n\
         keyring = \"keyring.json\"\n\
         \n\
         # The RocksDB store.\n\
         data_dir = \"db\"\n\
         \n\
         [p2p]\n\
         # Multiaddresses to listen on for peers.\n\
         listen = [{p2p_listen}]\n\
         # Peers to dial at start and whenever not connected: multiaddresses ending in /p2p/PEER_ID.\n\
         bootstrap = [{bootstrap}]\n\
         # Discover peers on the local network with mDNS (labs and LANs only).\n\
         mdns = false\n\
         # Find more peers through Kademlia random walks; off, only bootstrap peers and those\n\
         # that dial in (a fixed topology).\n\
         discovery = true\n\
         # Connections kept (in and out); more are let go, bootstrap peers and one per\n\
         # organization first (docs/PROTOCOL.md section 8.1).\n\
         connections = 24\n\
         # This node's libp2p identity (not an organization signing key).\n\
         identity = \"keys/node.key\"\n\
         \n\
         [replication]\n\
         # Replicate only these publishers' feeds; empty means all. (Type filtering is not yet\n\
         # enforced by the sync protocol; see docs/PROTOCOL.md section 8.4.)\n\
         publishers = []\n\
         types = []\n\
         \n\
         [http]\n\
         # The HTTP API and web page. Loopback by default: put a TLS proxy in front to expose it.\n\
         listen = {http_listen}\n\
         # Bearer token required to publish (POST), and to read when read_requires_token is true.\n\
         token_file = \"keys/api.token\"\n\
         read_requires_token = false\n\
         # Per client address: requests a second sustained, and at once (0 turns the limit off;\n\
         # behind a reverse proxy every client is the proxy: raise these or limit there).\n\
         rate_limit_per_second = {per_second}\n\
         rate_limit_burst = {burst}\n",
        per_second = crate::api::RateLimit::default().per_second,
        burst = crate::api::RateLimit::default().burst,
        network = toml_str(opts.network),
        p2p_listen = toml_str(opts.p2p_listen),
        http_listen = toml_str(opts.http_listen),
        bootstrap = opts.bootstrap.iter().map(|b| toml_str(b)).collect::<Vec<_>>().join(", "),
    );
    let text = match &pinned {
        Some((chain, charters)) => {
            copy_charters(dir, charters)?;
            text + &charter_section(&chain.genesis().to_hex())
        }
        None => text,
    };
    write(&config_path, &text)?;
    open(dir)
}

/// A TOML string literal, quoted and escaped.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| ConfigError::Write { path: path.to_owned(), source })
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

/// Reads a signing key file (64 hex digits).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let mut raw = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut raw)
        .map_err(|_| ConfigError::BadKey { path: path.to_owned(), reason: "expected 64 hex digits".into() })?;
    Ok(SigningKey::from_bytes(&raw))
}

/// Reads and checks a node directory's configuration without opening the store.
pub fn load_config(dir: &Path) -> Result<Config, ConfigError> {
    let path = dir.join(CONFIG_FILE);
    if !path.exists() {
        return Err(ConfigError::NotInitialized(dir.to_owned()));
    }
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    Config::parse(&text, &path)
}

/// Opens a node directory: configuration, keyring, signing key and store.
pub fn open(dir: &Path) -> Result<Node, ConfigError> {
    open_with(dir, &StoreBudget::default())
}

/// [`open`] with the store in another memory budget (the network harness's small nodes).
pub fn open_with(dir: &Path, budget: &StoreBudget) -> Result<Node, ConfigError> {
    let config = load_config(dir)?;
    let network_id = config.network_id();
    let keyring = match &config.charter {
        Some(c) => Keyring::from_charter(load_charter_chain(dir, c)?),
        None => Keyring::load(&dir.join(&config.keyring))?,
    };
    let publisher = match (&config.organization, &config.signing_key) {
        (Some(org), Some(key_path)) => {
            let key = load_signing_key(&dir.join(key_path))?;
            Some(Publisher::new(org.clone(), key))
        }
        _ => None,
    };
    let certificate = read_own_certificate(dir, &config)?;
    let store = Store::open_with(&dir.join(&config.data_dir), &network_id, budget)?;
    Ok(Node { dir: dir.to_owned(), config, network_id, keyring, store, publisher, certificate })
}

impl Node {
    /// Adds (or replaces) an organization in the keyring file and in memory.
    pub fn add_organization(&mut self, org: Organization) -> Result<(), ConfigError> {
        let path = self.dir.join(&self.config.keyring);
        self.keyring.insert(org).map_err(|reason| ConfigError::Invalid { path: path.clone(), reason })?;
        self.keyring.save(&path)?;
        Ok(())
    }
}

/// Parses a list of type names given on a command line or in a file.
pub fn parse_types(names: &[String]) -> Result<Vec<TypeName>, String> {
    names
        .iter()
        .map(|n| {
            crate::doctype::DocType::by_name(n).map_err(|e| e.to_string())?;
            TypeName::new(n).map_err(|e| e.to_string())
        })
        .collect()
}
