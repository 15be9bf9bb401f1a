//! `entrepot bench sync`: replication measured between real node processes on loopback,
//! beside this machine's raw verification rate measured in the same run.
//!
//! 1. Cold bootstrap: node A holds N documents; replica B starts empty and fetches them all.
//! 2. Incremental catch-up: B stops, A publishes 1,000 more, B restarts and catches up; the
//!    sync protocol's bytes (framing included) are compared with the new documents' size.
//! 3. Propagation: a network of K nodes; one publishes, every node reports when it stored
//!    each document; latency is publish → stored on the last node.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::authority::Organization;
use crate::config::{self, InitOptions};
use crate::document::{DocumentId, OrgId, Seq};
use crate::hsdata::{ruling_documents_from, shared_dir, HsData};
use crate::ingest::Ingestor;

use super::{measure_verify_rates, percentile, sign_feed};

/// Options of `entrepot bench sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// Documents held by the source node for the cold bootstrap.
    #[arg(long, default_value_t = 100_000)]
    pub docs: usize,
    /// New documents for the incremental catch-up.
    #[arg(long, default_value_t = 1_000)]
    pub catch_up: usize,
    /// Nodes in the propagation network (0 skips it).
    #[arg(long, default_value_t = 20)]
    pub nodes: usize,
    /// Documents published for the propagation measurement.
    #[arg(long, default_value_t = 200)]
    pub publish: usize,
    /// Milliseconds between those publishes.
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
    /// Give up on any phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_s: u64,
}

const NETWORK: &str = "entrepot-bench-sync";
/// Seconds a replica stays idle after its store settled, before its RSS at rest is read:
/// longer than the process's malloc trim interval (30 s, `main.rs`), as a node at rest is.
const SETTLE_IDLE_S: u64 = 35;

/// A child node process and what it last reported.
struct NodeProcess {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    address: String,
    head: u64,
    sync_in: u64,
    sync_out: u64,
    peak_kib: u64,
    rss_kib: u64,
    peers: usize,
    stored: Vec<(u64, u128)>,
    published: Vec<(u64, u64, u128)>,
    /// What `settle` reported: store directory bytes, live store bytes, RSS KiB.
    settled: Option<(u64, u64, u64)>,
    /// The last `MEMORY` line, and the one with the largest anonymous RSS so far.
    memory: Memory,
    memory_at_peak: Memory,
}

/// Where a node's resident memory is (a `MEMORY` line of `bench node`).
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    anon_kib: u64,
    block_cache: u64,
    block_cache_pinned: u64,
    memtables: u64,
    table_readers: u64,
    malloc_used: u64,
    malloc_free: u64,
    malloc_mmapped: u64,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = |b: u64| b as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "anonymous {:.0} MiB: RocksDB block cache {:.1} (pinned {:.1}), memtables {:.1}, table readers {:.1}; \
             malloc in use {:.1} (mmapped {:.1}), free in its heaps {:.1}",
            mib(self.anon_kib),
            m(self.block_cache),
            m(self.block_cache_pinned),
            m(self.memtables),
            m(self.table_readers),
            m(self.malloc_used + self.malloc_mmapped),
            m(self.malloc_mmapped),
            m(self.malloc_free)
        )
    }
}

impl NodeProcess {
    fn spawn(dir: &Path, bootstrap: &[String], trace: bool) -> Result<NodeProcess> {
        // ENTREPOT_BENCH_WRAP="heaptrack -o /tmp/h" runs each node under a tool (its
        // words, then the node's command line).
        let wrap = std::env::var("ENTREPOT_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut cmd = match words.next() {
            Some(tool) => {
                let mut cmd = Command::new(tool);
                cmd.args(words).arg(std::env::current_exe()?);
                cmd
            }
            None => Command::new(std::env::current_exe()?),
        };
        cmd.args(["bench", "node", "--node"]).arg(dir);
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        if trace {
            cmd.arg("--trace");
        }
        // ENTREPOT_BENCH_LOGS=DIR keeps each node's debug log, for looking into a slow run.
        let stderr = match std::env::var_os("ENTREPOT_BENCH_LOGS") {
            Some(logs) => {
                let name = dir.file_name().map_or("node".into(), |n| n.to_string_lossy().into_owned());
                cmd.env("RUST_LOG", "entrepot=debug,info");
                Stdio::from(std::fs::File::create(Path::new(&logs).join(format!("{name}-{}.log", std::process::id())))?)
            }
            None => {
                cmd.env("RUST_LOG", "error");
                Stdio::null()
            }
        };
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr).spawn().context("starting a bench node")?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = NodeProcess {
            child,
            stdin,
            lines,
            address: String::new(),
            head: 0,
            sync_in: 0,
            sync_out: 0,
            peak_kib: 0,
            rss_kib: 0,
            peers: 0,
            stored: Vec::new(),
            published: Vec::new(),
            settled: None,
            memory: Memory::default(),
            memory_at_peak: Memory::default(),
        };
        p.wait(Duration::from_secs(60), |p| !p.address.is_empty())?;
        Ok(p)
    }

    /// Reads what the child said so far.
    fn poll(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["READY", addr] => self.address = addr.to_string(),
                ["HEAD", head, sin, sout, peak, rss, peers] => {
                    self.head = head.parse().unwrap_or(0);
                    self.sync_in = sin.parse().unwrap_or(0);
                    self.sync_out = sout.parse().unwrap_or(0);
                    self.peak_kib = peak.parse().unwrap_or(0);
                    self.rss_kib = rss.parse().unwrap_or(0);
                    self.peers = peers.parse().unwrap_or(0);
                }
                ["STORED", _, seq, t] => self.stored.push((seq.parse().unwrap_or(0), t.parse().unwrap_or(0))),
                ["PUBLISHED", seq, bytes, t] => {
                    self.published.push((seq.parse().unwrap_or(0), bytes.parse().unwrap_or(0), t.parse().unwrap_or(0)))
                }
                ["MEMORY", figures @ ..] if figures.len() == 8 => {
                    let f: Vec<u64> = figures.iter().map(|v| v.parse().unwrap_or(0)).collect();
                    self.memory = Memory {
                        anon_kib: f[0],
                        block_cache: f[1],
                        block_cache_pinned: f[2],
                        memtables: f[3],
                        table_readers: f[4],
                        malloc_used: f[5],
                        malloc_free: f[6],
                        malloc_mmapped: f[7],
                    };
                    if self.memory.anon_kib >= self.memory_at_peak.anon_kib {
                        self.memory_at_peak = self.memory;
                    }
                }
                ["SETTLED", dir, live, rss] => {
                    self.settled = Some((dir.parse().unwrap_or(0), live.parse().unwrap_or(0), rss.parse().unwrap_or(0)))
                }
                _ => {}
            }
        }
    }

    fn wait(&mut self, timeout: Duration, done: impl Fn(&NodeProcess) -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll();
            if done(self) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("a bench node did not reach the expected state within {timeout:?}");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("a bench node exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, command: &str) -> Result<()> {
        writeln!(self.stdin, "{command}")?;
        Ok(self.stdin.flush()?)
    }

    fn quit(mut self) -> Result<()> {
        let _ = self.send("quit");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // Never leave a node running behind the benchmark.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a publishing node for `org` and `replicas` replica directories trusting it.
fn init_network(root: &Path, org: &str, replicas: usize) -> Result<(PathBuf, Vec<PathBuf>)> {
    let listen = "/ip4/127.0.0.1/tcp/0";
    let a = root.join(org.to_lowercase());
    let node = config::init(
        &a,
        &InitOptions {
            network: NETWORK,
            organization: Some((OrgId::new(org)?, format!("{org} benchmark"))),
            p2p_listen: listen,
            ..Default::default()
        },
    )?;
    let key = hex::encode(node.publisher.as_ref().context("publisher")?.public_key());
    drop(node);
    let mut dirs = Vec::new();
    for i in 0..replicas {
        let dir = root.join(format!("replica-{i}"));
        let mut node = config::init(&dir, &InitOptions { network: NETWORK, p2p_listen: listen, ..Default::default() })?;
        node.add_organization(Organization {
            id: OrgId::new(org)?,
            name: org.into(),
            keys: vec![key.clone()],
            types: None,
        })?;
        dirs.push(dir);
    }
    Ok((a, dirs))
}

/// Fills a publishing node's store with `n` signed rulings, as its own feed.
fn fill(dir: &Path, data: &HsData, n: usize) -> Result<u64> {
    let node = config::open(dir)?;
    let publisher = node.publisher.as_ref().context("publisher")?;
    let key = config::load_signing_key(&dir.join(node.config.signing_key.as_ref().context("key")?))?;
    let org = publisher.org.clone();
    let ingestor = Ingestor { store: &node.store, network_id: node.network_id, keyring: &node.keyring, sync: false };
    let mut prev = DocumentId::ZERO;
    let mut bytes = 0u64;
    let mut start = 0;
    while start < n {
        let count = (n - start).min(4096);
        let drafts = ruling_documents_from(data, start, count, org.as_str());
        let envelopes = sign_feed(&drafts, &org, &key, &node.network_id, Seq(start as u64 + 1), prev);
        prev = DocumentId::of_envelope(envelopes.last().context("non-empty")?);
        bytes += envelopes.iter().map(|e| e.len() as u64).sum::<u64>();
        for r in ingestor.ingest(envelopes)? {
            r.context("filling the source store")?;
        }
        start += count;
    }
    Ok(bytes)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &SyncArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.timeout_s);
    let (data, source) = match shared_dir() {
        Some(dir) => (HsData::load(&dir)?, "full HS2022 data"),
        None => (HsData::excerpt(), "embedded excerpt"),
    };
    let root = std::env::temp_dir().join(format!("entrepot-bench-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let result = run_in(args, &root, &data, source, timeout);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn run_in(args: &SyncArgs, root: &Path, data: &HsData, source: &str, timeout: Duration) -> Result<()> {
    println!(
        "entrepot bench sync: {} cores, documents from the {source}",
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    let rates = measure_verify_rates(10_000);
    println!(
        "reference  ed25519 verify_strict, 1 core: {:>9.0}/s   {} cores: {:>9.0}/s   CPU {:.1} µs per signature; load {}",
        rates.strict_one_core,
        rates.cores,
        rates.strict_all_cores,
        rates.strict_cpu_us,
        super::load_average()
    );

    // 1. Cold bootstrap.
    let (a_dir, replicas) = init_network(&root.join("bootstrap"), "BENCH", 1)?;
    let t = Instant::now();
    let bytes = fill(&a_dir, data, args.docs)?;
    println!(
        "setup      source filled with {} documents ({:.1} MB) in {:.1} s",
        args.docs,
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let mut a = NodeProcess::spawn(&a_dir, &[], false)?;
    let a_cpu0 = super::process_cpu_time(a.child.id());
    let t = Instant::now();
    let mut b = NodeProcess::spawn(&replicas[0], std::slice::from_ref(&a.address), false)?;
    let n = args.docs as u64;
    b.wait(timeout, |p| p.head >= n)?;
    let secs = t.elapsed().as_secs_f64();
    let a_cpu = super::process_cpu_time(a.child.id()).saturating_sub(a_cpu0);
    let b_cpu = super::process_cpu_time(b.child.id());
    a.poll();
    println!(
        "bootstrap  {} documents in {:.2} s: {:.0} documents/s, {:.1} MB/s ({:.0}% of one core's verify_strict rate)",
        n,
        secs,
        n as f64 / secs,
        bytes as f64 / secs / 1e6,
        100.0 * n as f64 / secs / rates.strict_one_core
    );
    let per_doc = |cpu: Duration| cpu.as_secs_f64() * 1e6 / n as f64;
    println!(
        "cpu        per replicated document: source {:.1} µs + replica {:.1} µs = {:.1} µs ({:.2} × one verify_strict; target ≤ 65 µs)",
        per_doc(a_cpu),
        per_doc(b_cpu),
        per_doc(a_cpu + b_cpu),
        per_doc(a_cpu + b_cpu) / rates.strict_cpu_us
    );
    println!(
        "disk       replica store {:.0} MB just after the bootstrap for {} documents ({:.1} MB of envelopes; WAL and memtables included)",
        super::dir_bytes(&replicas[0]) as f64 / 1e6,
        n,
        bytes as f64 / 1e6
    );
    println!(
        "memory     peak RSS: source {:.0} MiB, replica {:.0} MiB (target ≤ 200); replica RSS just after the bootstrap {:.0} MiB",
        mib(a.peak_kib),
        mib(b.peak_kib),
        mib(b.rss_kib),
    );
    println!("memory     source at its largest, {}", a.memory_at_peak);
    println!("memory     replica at its largest, {}", b.memory_at_peak);
    // At rest: the replica's memtables flushed, its compactions done, then idle a while.
    b.send(&format!("settle {SETTLE_IDLE_S}"))?;
    b.wait(timeout, |p| p.settled.is_some())?;
    let (dir_bytes, live_bytes, rest_kib) = b.settled.unwrap_or_default();
    println!(
        "disk       replica store at rest {:.0} MB ({:.0} MB of live SST files) for {} documents (target ≤ 1,000 MB at 1M)",
        dir_bytes as f64 / 1e6,
        live_bytes as f64 / 1e6,
        n
    );
    println!(
        "memory     replica RSS at rest {:.0} MiB holding {} documents (flushed, compacted, {SETTLE_IDLE_S} s idle; target ≤ 150 at 1M)",
        mib(rest_kib),
        n
    );
    println!("memory     replica at rest, {}", b.memory);

    // 2. Incremental catch-up.
    b.quit()?;
    let before = n;
    a.send(&format!("publish {} 0", args.catch_up))?;
    let total = before + args.catch_up as u64;
    a.wait(timeout, |p| p.published.len() >= args.catch_up)?;
    let new_bytes: u64 = a.published.iter().map(|(_, b, _)| *b).sum();
    let t = Instant::now();
    let mut b = NodeProcess::spawn(&replicas[0], std::slice::from_ref(&a.address), false)?;
    b.wait(timeout, |p| p.head >= total)?;
    let secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    b.poll();
    let wire = b.sync_in + b.sync_out;
    println!(
        "catch-up   {} new among {}: {:.2} s; sync bytes {} for {} bytes of documents = {:.3}×",
        args.catch_up,
        total,
        secs,
        wire,
        new_bytes,
        wire as f64 / new_bytes.max(1) as f64
    );
    println!(
        "memory     replica after catch-up: RSS {:.0} MiB, peak {:.0} MiB with {} documents",
        mib(b.rss_kib),
        mib(b.peak_kib),
        total
    );
    b.quit()?;
    a.quit()?;

    // 3. Propagation over a network of K nodes.
    if args.nodes >= 2 {
        propagation(args, root, timeout)?;
    }
    Ok(())
}

fn propagation(args: &SyncArgs, root: &Path, timeout: Duration) -> Result<()> {
    let (p_dir, replicas) = init_network(&root.join("propagation"), "PUB", args.nodes - 1)?;
    let mut nodes = vec![NodeProcess::spawn(&p_dir, &[], true)?];
    // Each node dials the one before it and the one at half its index: a connected graph
    // with a diameter of a few hops, not a star around the publisher.
    for (i, dir) in replicas.iter().enumerate() {
        let k = i + 1;
        let mut boot = vec![nodes[k - 1].address.clone()];
        if k / 2 != k - 1 {
            boot.push(nodes[k / 2].address.clone());
        }
        nodes.push(NodeProcess::spawn(dir, &boot, true)?);
    }
    // Let connections settle and gossipsub build its mesh (it grafts on heartbeats).
    std::thread::sleep(Duration::from_secs(3));
    nodes[0].send(&format!("publish {} {}", args.publish, args.interval_ms))?;
    let expected = args.publish as u64;
    for node in nodes.iter_mut() {
        node.wait(timeout, |p| p.head >= expected)?;
    }
    std::thread::sleep(Duration::from_millis(200));
    for node in nodes.iter_mut() {
        node.poll();
    }
    let mut latencies = Vec::new();
    for (seq, _, t_pub) in &nodes[0].published {
        let mut last = *t_pub;
        for node in &nodes[1..] {
            let Some((_, t)) = node.stored.iter().find(|(s, _)| s == seq) else {
                bail!("a node never reported storing #{seq}");
            };
            last = last.max(*t);
        }
        latencies.push(Duration::from_micros((last - t_pub) as u64));
    }
    latencies.sort();
    let peak = nodes.iter().map(|n| n.peak_kib).max().unwrap_or(0);
    let degree: Vec<usize> = nodes.iter().map(|n| n.peers).collect();
    println!(
        "propagate  {} documents on {} nodes, publish → stored on every node: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        latencies.len(),
        nodes.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    println!(
        "network    peers per node min {} max {}; largest peak RSS {:.0} MiB",
        degree.iter().min().unwrap_or(&0),
        degree.iter().max().unwrap_or(&0),
        mib(peak)
    );
    for node in nodes {
        node.quit()?;
    }
    Ok(())
}
