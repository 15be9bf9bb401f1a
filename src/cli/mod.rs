//! Command-line parsing and the commands that act on a node directory.

mod charter;
mod demo;
mod docs;
mod ops;
mod run;
mod search;
mod serve;
mod status;
mod transfer;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use entrepot::authority::Organization;
use entrepot::config::{self, InitOptions};
use entrepot::document::OrgId;

/// entrepot: a node of the customs and trade authorities' document exchange network.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The node directory (config.toml, keyring, keys, store).
    #[arg(long, global = true, env = "ENTREPOT_DIR", default_value = "entrepot-node")]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node directory: a publishing node with --org, or a read replica with --replica.
    Init {
        /// Organization id this node publishes for (WCO, WTO, an ISO 3166 code…).
        #[arg(long, conflicts_with = "replica", required_unless_present = "replica")]
        org: Option<String>,
        /// Display name of the organization.
        #[arg(long, requires = "org")]
        name: Option<String>,
        /// A read replica: no signing key.
        #[arg(long)]
        replica: bool,
        /// Network name; every node of one network uses the same.
        #[arg(long, default_value = "entrepot-local")]
        network: String,
        /// libp2p listen multiaddress.
        #[arg(long, default_value = "/ip4/0.0.0.0/tcp/4001")]
        p2p_listen: String,
        /// HTTP API listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http_listen: String,
        /// A peer to dial at start (multiaddress ending in /p2p/PEER_ID); repeatable.
        #[arg(long)]
        bootstrap: Vec<String>,
        /// Join a charter network: its genesis hash (printed by `charter genesis`). The store is
        /// bound to it from the start; with --charter.
        #[arg(long, requires = "charter")]
        genesis_hash: Option<String>,
        /// The charter files (the genesis, then any later versions) that verify from
        /// --genesis-hash; copied under charter/, and config.toml gets a [charter] section
        /// naming the certificate file node.cert (certify the node next).
        #[arg(long, requires = "genesis_hash")]
        charter: Vec<PathBuf>,
    },
    /// Validate, sign, store durably and print the id of a new document (on a stopped node:
    /// a running node publishes through POST /v1/documents).
    Publish {
        /// A JSON file holding the document body (or give it with --body).
        #[arg(required_unless_present = "body", conflicts_with = "body")]
        file: Option<PathBuf>,
        /// A JSON file holding the document body (the same as the positional FILE).
        #[arg(long)]
        body: Option<PathBuf>,
        /// Document type, e.g. hs.amendment.
        #[arg(long = "type")]
        doc_type: String,
        /// For an enforcement.notice whose handling is not public: a JSON file holding the
        /// payload, which is sealed (a fresh nonce), kept out of the signed body (the body
        /// commits to it as sealed_payload), and stored beside the document for its audience.
        #[arg(long)]
        payload: Option<PathBuf>,
    },
    /// Classify every line of a national tariff (CSV: line, description) from one HS edition
    /// to the next, from the signed nomenclatures, amendment sets and correlation tables this
    /// node holds, and write one draft hs.transposition per chapter to review and publish.
    Transpose {
        /// The tariff file (CSV of 8- or 10-digit national lines and descriptions).
        #[arg(long)]
        tariff: PathBuf,
        /// The edition the tariff is in, e.g. HS2017.
        #[arg(long)]
        from: String,
        /// The edition to transpose to, e.g. HS2022.
        #[arg(long)]
        to: String,
        /// The folder the drafts (one JSON body per chapter) and lines.csv are written to.
        #[arg(long)]
        out: PathBuf,
        /// Whose tariff (default: this node's organization).
        #[arg(long)]
        administration: Option<String>,
        /// national_tariff or wto_schedule.
        #[arg(long, default_value = "national_tariff")]
        scope: String,
    },
    /// Print a stored document: header, body and verification result (and the sealed payload
    /// of an enforcement notice, when this node holds it).
    Get {
        /// Document id (64 hex digits).
        id: String,
        /// Also write the raw signed envelope to this file.
        #[arg(long)]
        raw: Option<PathBuf>,
    },
    /// List documents matching filters, newest first (by HS code when --hs is given).
    List(docs::ListArgs),
    /// Full-text search of this (stopped) node's documents, ranked; --rebuild drops the search
    /// index and builds it again from the store.
    Search(search::SearchArgs),
    /// Print every feed's head.
    Heads,
    /// Print recorded forks.
    Forks,
    /// Verify a bundle or a single document offline, with only public keys.
    Verify {
        /// A bundle (from `export`) or a single envelope (from `get --raw`).
        file: PathBuf,
        /// Trusted keyring; without it the node's own keyring is used if --dir holds a node,
        /// and otherwise the keys inside the bundle (which proves integrity, not origin).
        #[arg(long, conflicts_with = "genesis")]
        keyring: Option<PathBuf>,
        /// Genesis charter hash (64 hex digits): trust the charter chain the bundle carries,
        /// once verified from it; nothing else is needed.
        #[arg(long)]
        genesis: Option<String>,
        /// Witness policy: every document must be proved included in a checkpoint cosigned by
        /// witnesses of at least this many member organizations other than its publisher.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=63))]
        witnesses: Option<u16>,
        /// Network name the documents must belong to (default: the node's, else the bundle's).
        #[arg(long, conflicts_with = "genesis")]
        network: Option<String>,
    },
    /// Write a bundle of whole feeds (or one document) with what verifies them offline: the
    /// keys, the charter chain, each feed's cosigned checkpoint and each document's inclusion
    /// proof.
    Export {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Only this organization's feed.
        #[arg(long, conflicts_with = "id")]
        publisher: Option<String>,
        /// Only this document.
        #[arg(long)]
        id: Option<String>,
    },
    /// Verify and store every document of a bundle, with a per-document report.
    Import {
        /// The bundle.
        file: PathBuf,
        /// Write the per-document report (JSON lines) here instead of standard output.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Manage trusted organizations and their keys.
    #[command(subcommand)]
    Keyring(KeyringCommand),
    /// Start a local network of three nodes (two publishers and a read replica) filled with
    /// real HS data, each serving its web page; runs until Ctrl-C.
    Demo {
        /// Where the demo's node directories live (reused on the next run).
        #[arg(long, default_value = "entrepot-demo")]
        root: PathBuf,
        /// First of three consecutive HTTP ports (0: let the system choose).
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Run the node: replicate with peers over libp2p until SIGINT or SIGTERM.
    Run,
    /// Ask the running node for its peers and, per publisher, its lag behind the best peer.
    Status,
    /// Print this node's public signing key.
    PublicKey,
    /// Print this node's libp2p peer id (from its identity key), for other nodes' bootstrap lists.
    PeerId,
    /// Back up a stopped node's store (a RocksDB checkpoint and a manifest) into a new directory.
    /// A running node is backed up through its HTTP API: POST /v1/admin/backup.
    Backup {
        /// The backup directory (created; must be new or empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into this (stopped) node's store, checked against the backup's manifest.
    Restore {
        /// A directory written by `backup` (or POST /v1/admin/backup).
        #[arg(long)]
        from: PathBuf,
        /// Replace a store that holds documents (it is kept beside, renamed, not deleted).
        #[arg(long)]
        force: bool,
    },
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The charter: create, sign, verify, install and edit versions; certify nodes.
    #[command(subcommand)]
    Charter(charter::CharterCommand),
    /// Print the document format test vectors (JSON).
    Vectors,
    /// Serve the HTTP API and web page on http.listen until SIGINT or SIGTERM (no libp2p:
    /// for a replica fed by bundles).
    Serve {
        /// Listen here instead of the config's http.listen (e.g. 127.0.0.1:0 for any port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Measure this machine's signature verification and ingest rates.
    #[command(subcommand)]
    Bench(entrepot::bench::BenchCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check configuration files (default: the node's config.toml) without starting anything.
    Check {
        /// Configuration files to check.
        files: Vec<PathBuf>,
        /// The files are templates (examples): skip the key, token and keyring files they name.
        #[arg(long)]
        template: bool,
    },
}

#[derive(Subcommand)]
enum KeyringCommand {
    /// Add or replace an organization.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        /// Public keys (64 hex digits each).
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// Document types it may publish (default: all).
        #[arg(long = "type")]
        types: Vec<String>,
    },
    /// Print the keyring.
    Show,
}

/// Exit status when a command ran but some documents were refused.
const EXIT_SOME_REFUSED: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let dir = cli.dir;
    match cli.command {
        Command::Init { org, name, replica, network, p2p_listen, http_listen, bootstrap, genesis_hash, charter } => {
            let organization = match (org, replica) {
                (Some(org), false) => {
                    let id = OrgId::new(&org)?;
                    let name = name.unwrap_or_else(|| org.clone());
                    Some((id, name))
                }
                _ => None,
            };
            let options = InitOptions {
                network: &network,
                organization,
                p2p_listen: &p2p_listen,
                http_listen: &http_listen,
                bootstrap: &bootstrap,
                charter: genesis_hash.as_deref().map(|h| config::CharterPin { genesis_hash: h, files: &charter }),
            };
            let node = config::init(&dir, &options)?;
            match &node.publisher {
                Some(p) => println!(
                    "initialized publishing node for {} in {}\npublic key {}",
                    p.org,
                    dir.display(),
                    hex::encode(p.public_key())
                ),
                None => println!("initialized read replica in {}", dir.display()),
            }
            match node.keyring.charter() {
                Some(chain) => println!(
                    "charter network {} (genesis {}, version {}); certify this node next: its peer id is {}",
                    node.config.network,
                    chain.genesis(),
                    chain.latest().charter.version,
                    entrepot::net::load_identity(&dir.join(&node.config.p2p.identity))?.public().to_peer_id()
                ),
                None => println!("network {} ({})", node.config.network, hex::encode(node.network_id)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Publish { file, body, doc_type, payload } => {
            let file = file.or(body).context("give the body file")?;
            docs::publish(&dir, &file, &doc_type, payload.as_deref())
        }
        Command::Transpose { tariff, from, to, out, administration, scope } => {
            docs::transpose(&dir, &tariff, (&from, &to), &out, administration.as_deref(), &scope)
        }
        Command::Get { id, raw } => docs::get(&dir, &id, raw.as_deref()),
        Command::List(args) => docs::list(&dir, &args),
        Command::Search(args) => search::search(&dir, &args),
        Command::Heads => docs::heads(&dir),
        Command::Forks => docs::forks(&dir),
        Command::Verify { file, keyring, genesis, witnesses, network } => {
            let trust = transfer::VerifyTrust {
                keyring: keyring.as_deref(),
                genesis: genesis.as_deref(),
                witnesses: witnesses.map(usize::from),
                network: network.as_deref(),
            };
            transfer::verify(&dir, &file, &trust)
        }
        Command::Export { out, publisher, id } => transfer::export(&dir, &out, publisher.as_deref(), id.as_deref()),
        Command::Import { file, report } => transfer::import(&dir, &file, report.as_deref()),
        Command::Keyring(KeyringCommand::Add { org, name, keys, types }) => {
            let mut node = config::open(&dir)?;
            let types =
                if types.is_empty() { None } else { Some(config::parse_types(&types).map_err(anyhow::Error::msg)?) };
            let org = Organization { id: OrgId::new(&org)?, name, keys, types };
            let id = org.id.clone();
            node.add_organization(org)?;
            println!("keyring: {id} added");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keyring(KeyringCommand::Show) => {
            let node = config::load_config(&dir)?;
            let ring = entrepot::authority::Keyring::load(&dir.join(&node.keyring))?;
            println!("{}", ring.to_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { root, port } => demo::demo(&root, port),
        Command::Run => run::run(&dir),
        Command::Status => status::status(&dir),
        Command::PublicKey => {
            let node = config::load_config(&dir)?;
            let Some(path) = node.signing_key else {
                bail!("{} is a read replica: it has no signing key", dir.display())
            };
            let key = config::load_signing_key(&dir.join(path)).context("reading the signing key")?;
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
            Ok(ExitCode::SUCCESS)
        }
        Command::PeerId => ops::peer_id(&dir),
        Command::Backup { out } => ops::backup(&dir, &out),
        Command::Restore { from, force } => ops::restore(&dir, &from, force),
        Command::Config(ConfigCommand::Check { files, template }) => {
            ops::config_check(&dir, &files, entrepot::config_check::CheckOptions { template })
        }
        Command::Charter(command) => charter::run(&dir, &command),
        Command::Vectors => {
            println!("{}", serde_json::to_string_pretty(&entrepot::vectors::generate())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { listen } => serve::serve(&dir, listen.as_deref()),
        Command::Bench(command) => {
            entrepot::bench::run_command(&command)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
