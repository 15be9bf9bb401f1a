//! `entrepot bench`: this machine's ed25519 rates beside the end-to-end ingest rate (`ingest`)
//! and replication between node processes (`sync`, with `node` as its child), printed side by
//! side so results compare across machines.

pub mod child;
pub mod network;
pub mod query;
pub mod search;
pub mod sync;
pub mod transpose;
pub mod verify;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::authority::{Keyring, Organization};
use crate::config::network_id;
use crate::doctype::{project, DocType};
use crate::document::{
    encode_and_sign, signing_message, DocumentId, Header, OrgId, Seq, TypeName, DOCUMENT_DOMAIN, FORMAT_VERSION,
};
use crate::hsdata::{ruling_documents_from, shared_dir, HsData};
use crate::ingest::Ingestor;
use crate::store::Store;

/// `entrepot bench` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchCommand {
    /// Ingest rate of signed documents into one store.
    Ingest(BenchArgs),
    /// Replication between node processes: bootstrap, catch-up, propagation.
    Sync(sync::SyncArgs),
    /// A network of in-process nodes on simulated links: propagation, traffic, convergence.
    Network(network::NetworkArgs),
    /// The transposition workbench on a national tariff of HS2017 lines (to HS2022).
    Transpose(transpose::TransposeArgs),
    /// Query latency (HS prefix, in force on a day) over a large store.
    Query(query::QueryArgs),
    /// Full-text search latency over an index of many rulings and opinions.
    Search(search::SearchArgs),
    /// The document signature check against verify_strict: agreement and speed.
    Verify(verify::VerifyArgs),
    /// A node run by `bench sync` (reports on stdout, takes commands on stdin).
    #[command(hide = true)]
    Node(child::NodeArgs),
}

/// Runs a benchmark subcommand.
pub fn run_command(command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => run(args),
        BenchCommand::Sync(args) => sync::run(args),
        BenchCommand::Network(args) => network::run(args),
        BenchCommand::Transpose(args) => transpose::run(args),
        BenchCommand::Query(args) => query::run(args),
        BenchCommand::Search(args) => search::run(args),
        BenchCommand::Verify(args) => verify::run(args),
        BenchCommand::Node(args) => child::run(args),
    }
}

/// Options of `entrepot bench ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Documents to ingest.
    #[arg(long, default_value_t = 50_000)]
    pub docs: usize,
    /// Documents per ingest batch (one atomic, fsynced write each).
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Single-document publishes (one fsync each) to time for the latency figures.
    #[arg(long, default_value_t = 500)]
    pub single: usize,
    /// Signatures per raw verification measurement.
    #[arg(long, default_value_t = 20_000)]
    pub signatures: usize,
}

const BENCH_NETWORK: &str = "entrepot-bench";

/// Peak resident memory of this process so far (VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time (user + system) this process has used.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of /proc/self/stat, 12 and 13 after the ')'.
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 1000 / clock_ticks_per_second())
}

/// CPU time (user + system) of the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    stat_cpu_time("/proc/thread-self/stat")
}

/// CPU time (user + system) process `pid` has used (zero when it cannot be read).
pub fn process_cpu_time(pid: u32) -> Duration {
    stat_cpu_time(&format!("/proc/{pid}/stat"))
}

fn stat_cpu_time(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / clock_ticks_per_second())
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

fn clock_ticks_per_second() -> u64 {
    100 // USER_HZ on Linux is 100 on every architecture this runs on.
}

/// Percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The raw ed25519 rates of this machine.
pub struct VerifyRates {
    pub strict_one_core: f64,
    /// CPU time of one `verify_strict` on one core (thread CPU time, so other load on the
    /// machine does not inflate it as it does the wall-clock rate).
    pub strict_cpu_us: f64,
    pub strict_all_cores: f64,
    pub batch_one_core: f64,
    pub cores: usize,
}

/// Measures `verify_strict` (one core, all cores) and batch verification over `n` signatures
/// of 1.4 KB messages.
pub fn measure_verify_rates(n: usize) -> VerifyRates {
    let key = SigningKey::from_bytes(&[7; 32]);
    let vk: VerifyingKey = key.verifying_key();
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| signing_message(DOCUMENT_DOMAIN, &[(i % 251) as u8; 1400])).collect();
    let sigs: Vec<Signature> = msgs.iter().map(|m| key.sign(m)).collect();

    let t = Instant::now();
    let cpu0 = thread_cpu_time();
    for (m, s) in msgs.iter().zip(&sigs) {
        vk.verify_strict(m, s).expect("bench signature verifies");
    }
    let strict_cpu_us = thread_cpu_time().saturating_sub(cpu0).as_secs_f64() * 1e6 / n as f64;
    let strict_one_core = n as f64 / t.elapsed().as_secs_f64();

    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let share = n.div_ceil(cores);
    let t = Instant::now();
    std::thread::scope(|scope| {
        for (m, s) in msgs.chunks(share).zip(sigs.chunks(share)) {
            scope.spawn(move || {
                for (m, s) in m.iter().zip(s) {
                    vk.verify_strict(m, s).expect("bench signature verifies");
                }
            });
        }
    });
    let strict_all_cores = n as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    for (m, s) in msgs.chunks(64).zip(sigs.chunks(64)) {
        let refs: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
        let keys = vec![vk; refs.len()];
        ed25519_dalek::verify_batch(&refs, s, &keys).expect("bench batch verifies");
    }
    let batch_one_core = n as f64 / t.elapsed().as_secs_f64();
    VerifyRates { strict_one_core, strict_cpu_us, strict_all_cores, batch_one_core, cores }
}

/// Signs `drafts` as consecutive entries of `org`'s feed, starting at `first`.
pub fn sign_feed(
    drafts: &[crate::hsdata::DraftDocument],
    org: &OrgId,
    key: &SigningKey,
    network: &[u8; 32],
    first: Seq,
    prev: DocumentId,
) -> Vec<Vec<u8>> {
    let mut prev = prev;
    let mut seq = first;
    let mut out = Vec::with_capacity(drafts.len());
    for d in drafts {
        let ty = DocType::by_name(d.doc_type).expect("known type");
        let p = project(ty, &d.body).expect("draft projects");
        let header = Header {
            format_version: FORMAT_VERSION,
            network_id: *network,
            doc_type: TypeName::new(d.doc_type).expect("type"),
            schema_version: ty.schema_version,
            publisher: org.clone(),
            key: key.verifying_key().to_bytes(),
            seq,
            prev,
            issued_at_ms: 1_767_225_600_000 + seq.0 as i64,
            validity: p.validity,
            references: p.references,
            subjects: p.subjects,
        };
        let doc = encode_and_sign(&header, d.body.to_string().as_bytes(), key).expect("draft encodes");
        prev = doc.id;
        seq = seq.next();
        out.push(doc.bytes);
    }
    out
}

fn temp_store_dir(label: &str) -> PathBuf {
    std::env::temp_dir().join(format!("entrepot-bench-{label}-{}", std::process::id()))
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.docs > 0 && args.batch > 0 && args.batch <= crate::ingest::INGEST_BATCH_MAX,
        "--docs and --batch must be positive, --batch at most 4096"
    );
    let (data, source) = match shared_dir() {
        Some(dir) => (HsData::load(&dir)?, format!("full HS2022 data in {}", dir.display())),
        None => (HsData::excerpt(), "embedded five-chapter excerpt (../shared/data/hs not found)".to_owned()),
    };
    println!(
        "entrepot bench: {} × {} cores, {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        source
    );

    let rates = measure_verify_rates(args.signatures);
    println!("reference  ed25519 verify_strict, 1 core:      {:>9.0} signatures/s", rates.strict_one_core);
    println!(
        "reference  ed25519 verify_strict, {} cores:     {:>9.0} signatures/s",
        rates.cores, rates.strict_all_cores
    );
    println!("reference  ed25519 batch verify (64), 1 core:  {:>9.0} signatures/s", rates.batch_one_core);
    println!("reference  ed25519 verify_strict CPU per signature: {:.1} µs (thread CPU time)", rates.strict_cpu_us);
    println!("load       average {}", load_average());

    let network = network_id(BENCH_NETWORK);
    let org = OrgId::new("BENCH")?;
    let key = SigningKey::from_bytes(&[42; 32]);
    let mut keyring = Keyring::default();
    keyring
        .insert(Organization {
            id: org.clone(),
            name: "Benchmark customs".into(),
            keys: vec![hex::encode(key.verifying_key().to_bytes())],
            types: None,
        })
        .map_err(anyhow::Error::msg)?;
    // Sign in chunks so the JSON drafts never all live at once: the peak memory figure
    // should be the ingest's, not the generator's.
    let total = args.docs + args.single;
    let mut envelopes: Vec<Vec<u8>> = Vec::with_capacity(total);
    let mut prev = DocumentId::ZERO;
    for start in (0..total).step_by(1000) {
        let n = (total - start).min(1000);
        let drafts = ruling_documents_from(&data, start, n, org.as_str());
        let chunk = sign_feed(&drafts, &org, &key, &network, Seq(start as u64 + 1), prev);
        prev = DocumentId::of_envelope(chunk.last().expect("non-empty chunk"));
        envelopes.extend(chunk);
    }
    let total_bytes: usize = envelopes[..args.docs].iter().map(Vec::len).sum();
    println!(
        "documents  {} classification.ruling envelopes, mean {} bytes (HS2022 subheadings)",
        args.docs,
        total_bytes / args.docs
    );

    let dir = temp_store_dir("ingest");
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir, &network)?;
    let ingestor = Ingestor { store: &store, network_id: network, keyring: &keyring, sync: true };
    let mut batch_latencies = Vec::new();
    let cpu0 = cpu_time();
    let t = Instant::now();
    let single = envelopes.split_off(args.docs);
    let mut bulk = envelopes.into_iter();
    // The batches are moved into the pipeline, as a node's jobs are: no copy of a document.
    let batches = std::iter::from_fn(|| {
        let batch: Vec<Vec<u8>> = bulk.by_ref().take(args.batch).collect();
        (!batch.is_empty()).then_some(((), batch))
    });
    let mut refused = None;
    let mut batch_started = Instant::now();
    ingestor.ingest_pipelined(&|| None, batches, |_, report| {
        batch_latencies.push(batch_started.elapsed());
        batch_started = Instant::now();
        if refused.is_none() {
            refused = report.results.into_iter().find_map(Result::err);
        }
    })?;
    if let Some(e) = refused {
        anyhow::bail!("benchmark document refused: {e}");
    }
    let elapsed = t.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    let rate = args.docs as f64 / elapsed.as_secs_f64();
    batch_latencies.sort();
    println!(
        "ingest     {:>9.0} documents/s  {:>6.1} MB/s  ({} docs in {:.2} s, batches of {}, fsync per batch)",
        rate,
        total_bytes as f64 / elapsed.as_secs_f64() / 1e6,
        args.docs,
        elapsed.as_secs_f64(),
        args.batch
    );
    println!(
        "ingest     = {:.0}% of verify_strict × {} cores ({:.0}/s); {:.0}% of measured all-core verify_strict; {:.1} µs CPU per document",
        100.0 * rate / (rates.strict_one_core * rates.cores as f64),
        rates.cores,
        rates.strict_one_core * rates.cores as f64,
        100.0 * rate / rates.strict_all_cores,
        cpu.as_secs_f64() * 1e6 / args.docs as f64
    );
    println!(
        "ingest     CPU per document = {:.2} × one verify_strict ({:.1} µs) of this run (target ≤ 1.2)",
        cpu.as_secs_f64() * 1e6 / args.docs as f64 / rates.strict_cpu_us,
        rates.strict_cpu_us
    );
    println!(
        "latency    between durable batch commits (a document is acknowledged when its batch is): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        ms(percentile(&batch_latencies, 0.50)),
        ms(percentile(&batch_latencies, 0.99)),
        ms(*batch_latencies.last().unwrap_or(&Duration::ZERO))
    );
    let mut singles = Vec::with_capacity(single.len());
    for doc in single {
        let t = Instant::now();
        let r = ingestor.ingest(vec![doc])?;
        singles.push(t.elapsed());
        if let Some(Err(e)) = r.first() {
            anyhow::bail!("benchmark document refused: {e}");
        }
    }
    singles.sort();
    if !singles.is_empty() {
        println!(
            "latency    one document per fsynced commit ({}): p50 {:.2} ms  p99 {:.2} ms",
            singles.len(),
            ms(percentile(&singles, 0.50)),
            ms(percentile(&singles, 0.99))
        );
    }
    println!(
        "memory     peak RSS {:.0} MiB (includes the {:.0} MB of pre-signed documents held for the run); store {:.1} MB on disk",
        peak_rss_mib().unwrap_or(0.0),
        (total_bytes as f64) / 1e6,
        store.disk_bytes() as f64 / 1e6
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
