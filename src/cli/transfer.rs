//! Bundles in and out: verify (offline), export, import.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;

use entrepot::authority::Keyring;
use entrepot::bundle::{BundleReader, BundleWriter};
use entrepot::config;
use entrepot::document::{decode, DocumentId, OrgId, Seq, MAGIC};
use entrepot::ingest::{check, IngestError, Ingestor, INGEST_BATCH_MAX};
use entrepot::store::IngestOutcome;

use super::EXIT_SOME_REFUSED;

/// Most bytes of documents held back for another import pass (their feed predecessor or
/// lifecycle target comes later in the bundle).
const IMPORT_RETRY_MAX_BYTES: usize = 256 * 1024 * 1024;
/// Most passes over held-back documents.
const IMPORT_PASSES_MAX: usize = 16;
/// Documents read per export step.
const EXPORT_CHUNK: usize = 1024;

pub fn verify(dir: &Path, file: &Path, keyring: Option<&Path>, network: Option<&str>) -> Result<ExitCode> {
    let mut magic = [0u8; 8];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        f.read_exact(&mut magic)
            .with_context(|| format!("{} is too short to be a document or bundle", file.display()))?;
    }
    let node_config = config::load_config(dir).ok();
    let (mut envelopes, bundle_network, bundle_keyring): (Box<dyn Iterator<Item = Result<Vec<u8>>>>, _, _) =
        if &magic == entrepot::bundle::BUNDLE_MAGIC {
            let mut reader = BundleReader::open(file)?;
            let (net, ring) = (reader.network_id, reader.keyring_json.clone());
            let iter = std::iter::from_fn(move || reader.next_envelope().map_err(anyhow::Error::from).transpose());
            (Box::new(iter), Some(net), Some(ring))
        } else if &magic == MAGIC {
            let bytes = std::fs::read(file)?;
            (Box::new(std::iter::once(Ok(bytes))), None, None)
        } else {
            bail!("{} is neither an entrepot bundle nor a document (unknown magic bytes)", file.display());
        };

    let (keyring, trust) = match (keyring, &node_config, &bundle_keyring) {
        (Some(path), _, _) => (Keyring::load(path)?, format!("keyring {}", path.display())),
        // On a charter network the node's trust is its verified charter chain, not the
        // (empty) keyring file.
        (None, Some(c), _) => match &c.charter {
            Some(cc) => (
                Keyring::from_charter(config::load_charter_chain(dir, cc)?),
                format!("the charter of node {}", dir.display()),
            ),
            None => (Keyring::load(&dir.join(&c.keyring))?, format!("the keyring of node {}", dir.display())),
        },
        (None, None, Some(ring)) => {
            eprintln!("warning: no trusted keyring given: using the keys inside the bundle, which proves the documents are intact and consistent, not who published them");
            (
                Keyring::from_json(ring).map_err(anyhow::Error::msg).context("the bundle's keyring")?,
                "the bundle's own keys".into(),
            )
        }
        (None, None, None) => bail!("give --keyring FILE (trusted public keys) to verify a single document"),
    };
    let network_id = match (network, &node_config, bundle_network) {
        (Some(name), _, _) => config::network_id(name),
        (None, Some(c), _) => c.network_id(),
        (None, None, Some(id)) => id,
        (None, None, None) => bail!("give --network NAME to verify a single document"),
    };
    if let Some(b) = bundle_network {
        if b != network_id {
            bail!("the bundle is for network {}, not {}", hex::encode(b), hex::encode(network_id));
        }
    }
    println!("trusting {trust}; network {}", hex::encode(network_id));
    let (mut ok, mut refused) = (0u64, 0u64);
    let mut chains: HashMap<OrgId, (Seq, DocumentId)> = HashMap::new();
    while let Some(bytes) = envelopes.next().transpose()? {
        let id = DocumentId::of_envelope(&bytes);
        match check(bytes, &network_id, &keyring, entrepot::clock::now_ms()) {
            Ok(doc) => {
                let h = &doc.doc().header;
                let chain = match chains.get(&h.publisher) {
                    None if h.seq == Seq::FIRST => "feed start".to_owned(),
                    None => format!("first in bundle (#1..#{} not included)", h.seq.0 - 1),
                    Some((s, prev)) if s.next() == h.seq && *prev == h.prev => "chained".to_owned(),
                    Some((s, _)) => format!("NOT chained to #{s} before it"),
                };
                chains.insert(h.publisher.clone(), (h.seq, id));
                println!("ok      {id}  {}#{}  {}  {chain}", h.publisher, h.seq, h.doc_type);
                ok += 1;
            }
            Err(e) => {
                println!("REFUSED {id}  {}: {e}", e.code());
                refused += 1;
            }
        }
    }
    println!("verified {ok} document(s), refused {refused}");
    Ok(if refused == 0 { ExitCode::SUCCESS } else { ExitCode::from(EXIT_SOME_REFUSED) })
}

pub fn export(dir: &Path, out: &Path, publisher: Option<&str>, id: Option<&str>) -> Result<ExitCode> {
    let node = config::open(dir)?;
    let mut writer = BundleWriter::create(out, &node.network_id, &node.keyring.to_json())?;
    if let Some(id) = id {
        let id = DocumentId::from_hex(id)?;
        let Some(bytes) = node.store.get(&id)? else { bail!("no document {id} in this node") };
        writer.push(&bytes)?;
    } else {
        let only = publisher.map(OrgId::new).transpose()?;
        let heads = node.store.heads()?;
        if let Some(org) = &only {
            if !heads.iter().any(|(o, _)| o == org) {
                bail!("this node holds no feed of {org}");
            }
        }
        for (org, head) in heads.iter().filter(|(o, _)| only.as_ref().is_none_or(|x| x == o)) {
            let mut next = Seq::FIRST;
            while next <= head.seq {
                let chunk = node.store.feed_range(org, next, EXPORT_CHUNK, usize::MAX)?;
                if chunk.is_empty() {
                    break;
                }
                for bytes in &chunk {
                    writer.push(bytes)?;
                }
                next = Seq(next.0 + chunk.len() as u64);
            }
        }
    }
    let count = writer.count;
    writer.finish()?.into_inner().context("flushing the bundle")?.sync_all()?;
    println!("exported {count} document(s) to {}", out.display());
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
