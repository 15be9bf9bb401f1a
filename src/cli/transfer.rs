//! Bundles in and out: verify (offline), export, import.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use entrepot::authority::Keyring;
use entrepot::bundle::audit::{self, AuditError};
use entrepot::bundle::{BundleReader, BundleWriter, Trust, TrustCheckpoint};
use entrepot::charter::CharterHash;
use entrepot::config;
use entrepot::document::{decode, DocumentId, OrgId, Seq, MAGIC};
use entrepot::ingest::{check, IngestError, Ingestor, INGEST_BATCH_MAX};
use entrepot::service::Service;
use entrepot::store::{IngestOutcome, RECEIPT_SCAN_MAX};
use entrepot::tlog::merkle::Hash;

use super::EXIT_SOME_REFUSED;

/// Most bytes of documents held back for another import pass (their feed predecessor or
/// lifecycle target comes later in the bundle).
const IMPORT_RETRY_MAX_BYTES: usize = 256 * 1024 * 1024;
/// Most passes over held-back documents.
const IMPORT_PASSES_MAX: usize = 16;
/// Documents read per export step.
const EXPORT_CHUNK: usize = 1024;

/// Where `verify` takes its trust from, and the witness policy.
pub struct VerifyTrust<'a> {
    pub keyring: Option<&'a Path>,
    /// The genesis charter hash: trust the bundle's own charter chain once verified from it.
    pub genesis: Option<&'a str>,
    /// Organizations (other than the publisher) whose witnesses must have cosigned.
    pub witnesses: Option<usize>,
    pub network: Option<&'a str>,
}

/// An envelope and its inclusion proof, as a bundle gives them.
type Entries = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<Hash>)>>>;

pub fn verify(dir: &Path, file: &Path, t: &VerifyTrust) -> Result<ExitCode> {
    let mut magic = [0u8; 8];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        f.read_exact(&mut magic)
            .with_context(|| format!("{} is too short to be a document or bundle", file.display()))?;
    }
    let node_config = config::load_config(dir).ok();
    let (mut entries, bundle_network, bundle_keyring, section): (Entries, _, _, Option<Trust>) =
        if &magic == entrepot::bundle::BUNDLE_MAGIC {
            let mut reader = BundleReader::open(file).map_err(|e| anyhow!("{e} ({})", e.code()))?;
            let (net, ring, section) = (reader.network_id, reader.keyring_json.clone(), reader.trust.take());
            let iter = std::iter::from_fn(move || reader.next_entry().map_err(anyhow::Error::from).transpose());
            (Box::new(iter), Some(net), Some(ring), section)
        } else if &magic == MAGIC {
            let bytes = std::fs::read(file)?;
            (Box::new(std::iter::once(Ok((bytes, Vec::new())))), None, None, None)
        } else {
            bail!("{} is neither an entrepot bundle nor a document (unknown magic bytes)", file.display());
        };

    let pinned = t.genesis.map(CharterHash::from_hex).transpose().context("--genesis")?;
    let (keyring, trust) = match (t.keyring, &pinned, &node_config, &bundle_keyring) {
        (Some(path), _, _, _) => (Keyring::load(path)?, format!("keyring {}", path.display())),
        (None, Some(genesis), _, _) => {
            let charters = section.as_ref().map(|s| s.charters.as_slice()).unwrap_or_default();
            if charters.is_empty() {
                bail!("--genesis needs a bundle that carries its charter chain (version 2, exported from a node of a charter network)");
            }
            let chain = audit::open_chain(genesis, charters).map_err(|e| anyhow!("{e} ({})", e.code()))?;
            let version = chain.latest().charter.version;
            let text =
                format!("the bundle's charter chain, verified from genesis {} (version {version})", genesis.to_hex());
            (Keyring::from_charter(chain), text)
        }
        // On a charter network the node's trust is its verified charter chain, not the
        // (empty) keyring file.
        (None, None, Some(c), _) => match &c.charter {
            Some(cc) => (
                Keyring::from_charter(config::load_charter_chain(dir, cc)?),
                format!("the charter of node {}", dir.display()),
            ),
            None => (Keyring::load(&dir.join(&c.keyring))?, format!("the keyring of node {}", dir.display())),
        },
        (None, None, None, Some(ring)) => {
            eprintln!("warning: no trusted keyring given: using the keys inside the bundle, which proves the documents are intact and consistent, not who published them");
            (
                Keyring::from_json(ring).map_err(anyhow::Error::msg).context("the bundle's keyring")?,
                "the bundle's own keys".into(),
            )
        }
        (None, None, None, None) => bail!("give --keyring FILE (trusted public keys) to verify a single document"),
    };
    let network_id = match (t.network, &pinned, &node_config, bundle_network) {
        (Some(name), _, _, _) => config::network_id(name),
        (None, Some(genesis), _, _) => genesis.0,
        (None, None, Some(c), _) => c.network_id(),
        (None, None, None, Some(id)) => id,
        (None, None, None, None) => bail!("give --network NAME to verify a single document"),
    };
    if let Some(b) = bundle_network {
        if b != network_id {
            bail!("the bundle is for network {}, not {}", hex::encode(b), hex::encode(network_id));
        }
    }
    if t.witnesses.is_some() && section.is_none() {
        bail!("--witnesses needs a bundle that carries checkpoints (version 2, from `entrepot export`)");
    }
    println!("trusting {trust}; network {}", hex::encode(network_id));
    let feeds = match &section {
        Some(s) => audit::open_checkpoints(&network_id, &keyring, &s.checkpoints)
            .map_err(|e| anyhow!("the bundle's checkpoints are refused: {e} ({})", e.code()))?,
        None => BTreeMap::new(),
    };
    for (org, cp) in &feeds {
        let by: Vec<String> = cp.witnesses.iter().map(|(o, at)| format!("{o} at {}", utc(*at))).collect();
        let by = if by.is_empty() { "no witness".to_owned() } else { by.join(", ") };
        println!(
            "checkpoint {org}: {} entries, root {}, cosigned by {} organization(s): {by}",
            cp.size,
            hex::encode(cp.root),
            cp.witnesses.len()
        );
    }
    let (mut ok, mut refused) = (0u64, 0u64);
    let mut chains: HashMap<OrgId, (Seq, DocumentId)> = HashMap::new();
    while let Some((bytes, proof)) = entries.next().transpose()? {
        let id = DocumentId::of_envelope(&bytes);
        let doc = match check(bytes, &network_id, &keyring, entrepot::clock::now_ms()) {
            Ok(doc) => doc,
            Err(e) => {
                println!("REFUSED {id}  {}: {e}", e.code());
                refused += 1;
                continue;
            }
        };
        let h = &doc.doc().header;
        let place = match (&section, audit::prove_inclusion(&feeds, &id, &h.publisher, h.seq, &proof)) {
            (None, _) => Ok(String::new()),
            (Some(_), Ok(cp)) => match t.witnesses.map(|k| audit::enough_witnesses(cp, k)) {
                Some(Err(e)) => Err(e),
                _ => Ok(format!("  included in checkpoint {}, {} witness org(s)", cp.size, cp.witnesses.len())),
            },
            // A proof that does not lead to the root is evidence of tampering, policy or not.
            (Some(_), Err(e @ AuditError::InclusionInvalid(_))) => Err(e),
            (Some(_), Err(e)) if t.witnesses.is_some() => Err(e),
            (Some(_), Err(e)) => Ok(format!("  not proved included: {e}")),
        };
        match place {
            Ok(place) => {
                let chain = match chains.get(&h.publisher) {
                    None if h.seq == Seq::FIRST => "feed start".to_owned(),
                    None => format!("first in bundle (#1..#{} not included)", h.seq.0 - 1),
                    Some((s, prev)) if s.next() == h.seq && *prev == h.prev => "chained".to_owned(),
                    Some((s, _)) => format!("NOT chained to #{s} before it"),
                };
                chains.insert(h.publisher.clone(), (h.seq, id));
                println!("ok      {id}  {}#{}  {}  {chain}{place}", h.publisher, h.seq, h.doc_type);
                ok += 1;
            }
            Err(e) => {
                println!("REFUSED {id}  {}#{}  {}: {e}", h.publisher, h.seq, e.code());
                refused += 1;
            }
        }
    }
    println!("verified {ok} document(s), refused {refused}");
    Ok(if refused == 0 { ExitCode::SUCCESS } else { ExitCode::from(EXIT_SOME_REFUSED) })
}

/// POSIX seconds as an RFC 3339 UTC time.
fn utc(s: u64) -> String {
    chrono::DateTime::from_timestamp(s.min(i64::MAX as u64) as i64, 0)
        .map_or_else(|| format!("{s} s"), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The checkpoint of `org`'s feed a bundle carries, covering entry `from` on: of those this
/// node holds cosignatures of, the one with the most witnesses (the largest of those), else the
/// latest. Reads at most [`RECEIPT_SCAN_MAX`] cosignatures.
fn feed_checkpoint(service: &Service, org: &OrgId, from: u64) -> Result<Option<(u64, TrustCheckpoint)>> {
    let mut witnesses: BTreeMap<u64, usize> = BTreeMap::new();
    for (size, _, _) in service.store.cosignatures_from(org, from, RECEIPT_SCAN_MAX)? {
        *witnesses.entry(size).or_default() += 1;
    }
    let best = witnesses.iter().max_by_key(|(size, n)| (**n, **size)).map(|(size, _)| *size);
    let size = match best {
        Some(size) => size,
        None => match service.store.latest_checkpoint(org)? {
            Some((size, _)) if size >= from => size,
            _ => return Ok(None),
        },
    };
    let Some((note, certificates)) = service.cosigned_checkpoint(org, Some(size))? else { return Ok(None) };
    Ok(Some((size, TrustCheckpoint { note: note.into_bytes(), certificates })))
}

/// The inclusion proof of entry `seq` under a checkpoint of `size` entries; empty when the
/// checkpoint does not cover it.
fn proof_of(service: &Service, org: &OrgId, seq: Seq, size: Option<u64>) -> Result<Vec<Hash>> {
    match size {
        Some(size) if seq.0 <= size => {
            Ok(service.store.inclusion_proof(org, seq.0 - 1, size)?.map_err(|e| anyhow!("inclusion proof: {e}"))?)
        }
        _ => Ok(Vec::new()),
    }
}

pub fn export(dir: &Path, out: &Path, publisher: Option<&str>, id: Option<&str>) -> Result<ExitCode> {
    let service = Service::new(config::open(dir)?);
    let keyring = service.keyring();
    let charters: Vec<Vec<u8>> =
        keyring.charter().map(|c| c.versions().iter().map(entrepot::charter::encode).collect()).unwrap_or_default();
    // Which feeds, and which document of each (all when `None`).
    let single = id.map(|id| -> Result<_> {
        let id = DocumentId::from_hex(id)?;
        let Some(doc) = service.document(&id)? else { bail!("no document {id} in this node") };
        Ok((id, doc.header.publisher.clone(), doc.header.seq))
    });
    let single = single.transpose()?;
    let heads = service.store.heads()?;
    let orgs: Vec<OrgId> = match (&single, publisher.map(OrgId::new).transpose()?) {
        (Some((_, org, _)), _) => vec![org.clone()],
        (None, Some(org)) => {
            if !heads.iter().any(|(o, _)| *o == org) {
                bail!("this node holds no feed of {org}");
            }
            vec![org]
        }
        (None, None) => heads.iter().map(|(o, _)| o.clone()).collect(),
    };
    let mut sizes: HashMap<OrgId, u64> = HashMap::new();
    let mut checkpoints = Vec::new();
    for org in &orgs {
        let from = single.as_ref().map_or(1, |(_, _, seq)| seq.0);
        if let Some((size, cp)) = feed_checkpoint(&service, org, from)? {
            sizes.insert(org.clone(), size);
            checkpoints.push(cp);
        }
    }
    let trust = Trust { charters, checkpoints };
    let mut writer = BundleWriter::create(out, &service.network_id, &keyring.to_json(), Some(&trust))?;
    let mut uncovered = 0u64;
    if let Some((id, org, seq)) = &single {
        let Some(bytes) = service.store.get(id)? else { bail!("no document {id} in this node") };
        let proof = proof_of(&service, org, *seq, sizes.get(org).copied())?;
        uncovered += u64::from(proof.is_empty() && sizes.get(org).is_none_or(|s| seq.0 > *s));
        writer.push_proved(&bytes, &proof)?;
    } else {
        for (org, head) in heads.iter().filter(|(o, _)| orgs.contains(o)) {
            let size = sizes.get(org).copied();
            let mut next = Seq::FIRST;
            while next <= head.seq {
                let chunk = service.store.feed_range(org, next, EXPORT_CHUNK, usize::MAX)?;
                if chunk.is_empty() {
                    break;
                }
                for (i, bytes) in chunk.iter().enumerate() {
                    let seq = Seq(next.0 + i as u64);
                    let proof = proof_of(&service, org, seq, size)?;
                    uncovered += u64::from(size.is_none_or(|s| seq.0 > s));
                    writer.push_proved(bytes, &proof)?;
                }
                next = Seq(next.0 + chunk.len() as u64);
            }
        }
    }
    let count = writer.count;
    writer.finish()?.into_inner().context("flushing the bundle")?.sync_all()?;
    println!(
        "exported {count} document(s) to {}, with {} charter version(s) and {} checkpoint(s){}",
        out.display(),
        trust.charters.len(),
        trust.checkpoints.len(),
        if uncovered > 0 {
            format!("; {uncovered} document(s) newer than their feed's checkpoint carry no proof")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn import(dir: &Path, file: &Path, report: Option<&Path>) -> Result<ExitCode> {
    let node = config::open(dir)?;
    let mut reader = BundleReader::open(file)?;
    if reader.network_id != node.network_id {
        bail!(
            "the bundle is for network {}, but this node is on {} ({}); nothing was imported",
            hex::encode(reader.network_id),
            node.config.network,
            hex::encode(node.network_id)
        );
    }
    let mut out: Box<dyn Write> = match report {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let ingestor = Ingestor { store: &node.store, network_id: node.network_id, keyring: &node.keyring, sync: true };
    let mut counts: HashMap<&'static str, u64> = HashMap::new();
    let mut held: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut held_bytes = 0usize;
    let mut index = 0u64;
    let mut emit = |out: &mut dyn Write, i: u64, bytes: &[u8], r: &Result<IngestOutcome, IngestError>| -> Result<()> {
        let id = DocumentId::of_envelope(bytes);
        let position = decode(bytes).ok().map(|d| json!({ "publisher": d.header.publisher, "seq": d.header.seq }));
        let line = match r {
            Ok(o) => {
                let name = match o {
                    IngestOutcome::Stored => "stored",
                    IngestOutcome::Duplicate => "duplicate",
                    IngestOutcome::Forked { .. } => "forked",
                };
                *counts.entry(name).or_default() += 1;
                json!({ "index": i, "id": id, "feed": position, "result": name })
            }
            Err(e) => {
                *counts.entry("refused").or_default() += 1;
                json!({ "index": i, "id": id, "feed": position, "result": "refused", "code": e.code(), "error": e.to_string() })
            }
        };
        writeln!(out, "{line}")?;
        Ok(())
    };
    loop {
        let chunk = reader.next_chunk(INGEST_BATCH_MAX)?;
        if chunk.is_empty() {
            break;
        }
        let results = ingestor.ingest(chunk.clone())?;
        for (bytes, r) in chunk.into_iter().zip(results) {
            match &r {
                Err(e) if e.is_transient() && held_bytes + bytes.len() <= IMPORT_RETRY_MAX_BYTES => {
                    held_bytes += bytes.len();
                    held.push((index, bytes));
                }
                _ => emit(&mut *out, index, &bytes, &r)?,
            }
            index += 1;
        }
    }
    // Documents whose predecessor or lifecycle target came later in the bundle.
    for pass in 0..IMPORT_PASSES_MAX {
        if held.is_empty() {
            break;
        }
        let before = held.len();
        let results = ingestor.ingest(held.iter().map(|(_, b)| b.clone()).collect())?;
        let last_pass = pass + 1 == IMPORT_PASSES_MAX;
        let mut still = Vec::new();
        for ((i, bytes), r) in held.into_iter().zip(results) {
            match &r {
                Err(e) if e.is_transient() && !last_pass => still.push((i, bytes)),
                _ => emit(&mut *out, i, &bytes, &r)?,
            }
        }
        held = still;
        if held.len() == before {
            let results = ingestor.ingest(held.iter().map(|(_, b)| b.clone()).collect())?;
            for ((i, bytes), r) in held.drain(..).zip(results) {
                emit(&mut *out, i, &bytes, &r)?;
            }
        }
    }
    out.flush()?;
    let get = |k| counts.get(k).copied().unwrap_or(0);
    eprintln!(
        "import: {} stored, {} duplicate, {} forked, {} refused",
        get("stored"),
        get("duplicate"),
        get("forked"),
        get("refused")
    );
    Ok(if get("refused") == 0 { ExitCode::SUCCESS } else { ExitCode::from(EXIT_SOME_REFUSED) })
}
