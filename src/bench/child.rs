//! `entrepot bench node`: a node run as a child of the sync benchmark. It reports on standard
//! output, one line each:
//!
//! * `READY <multiaddr>` once listening;
//! * `HEAD <sum of feed heads> <sync bytes in> <sync bytes out> <peak RSS KiB> <RSS KiB> <peers>` every 100 ms;
//! * `STORED <publisher> <seq> <unix µs>` per stored document, with `--trace`;
//! * `PUBLISHED <seq> <bytes> <unix µs>` per document published on command;
//! * `SETTLED <store directory bytes> <live store bytes> <RSS KiB>` after `settle`;
//! * `MEMORY <anonymous RSS KiB> <block cache> <of which pinned> <memtables> <table readers>
//!   <malloc in use> <malloc free> <malloc mmapped>` (bytes but the first) with every `HEAD`
//!   and before `SETTLED`: where the resident memory is.
//!
//! It reads commands on standard input: `publish N INTERVAL_MS`, `settle IDLE_S` (flush the
//! store, wait for its compactions, stay idle that many seconds, then report) and `quit`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::config;
use crate::hsdata::{ruling_documents_from, shared_dir, HsData};
use crate::service::Service;

/// Options of `entrepot bench node`.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// Node directory.
    #[arg(long)]
    pub node: PathBuf,
    /// Peers to dial.
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Print a STORED line for every stored document.
    #[arg(long)]
    pub trace: bool,
}

/// Longest idle time `settle` accepts.
const SETTLE_IDLE_MAX_S: u64 = 600;
/// Longest wait for the store's compactions in `settle`.
const SETTLE_COMPACTION_TIMEOUT: Duration = Duration::from_secs(300);

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

fn proc_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// The glibc allocator's bytes in use, free in its heaps, and in mmapped chunks (zeros on
/// another allocator).
fn malloc_bytes() -> (u64, u64, u64) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let m = unsafe { libc::mallinfo2() };
        (m.uordblks as u64, m.fordblks as u64, m.hblkhd as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    (0, 0, 0)
}

fn memory_line(service: &Service) -> String {
    let m = service.store.memory();
    let (used, free, mmapped) = malloc_bytes();
    format!(
        "MEMORY {} {} {} {} {} {used} {free} {mmapped}",
        proc_kib("RssAnon:"),
        m.block_cache_bytes,
        m.block_cache_pinned_bytes,
        m.memtables_bytes,
        m.table_readers_bytes
    )
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The parent reading our output is the only consumer; if it is gone, so are we.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the child node until `quit` or end of input.
pub fn run(args: &NodeArgs) -> anyhow::Result<()> {
    let mut node = config::open(&args.node)?;
    node.config.p2p.bootstrap = args.bootstrap.clone();
    let config = node.config.clone();
    let service = Arc::new(Service::new(node));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let running = crate::node::start(service.clone(), &args.node, &config).await?;
        loop {
            let addr = service.peers.read().unwrap_or_else(|p| p.into_inner()).listen_addresses.first().cloned();
            if let Some(addr) = addr {
                say(&format!("READY {addr}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let reporter = {
            let service = service.clone();
            tokio::spawn(async move {
                loop {
                    let total: u64 = service.store.heads().map(|h| h.iter().map(|(_, h)| h.seq.0).sum()).unwrap_or(0);
                    let peers = service.peers.read().unwrap_or_else(|p| p.into_inner()).peers.len();
                    say(&format!(
                        "HEAD {total} {} {} {} {} {peers}",
                        service.counters.sync_bytes_in.load(Ordering::Relaxed),
                        service.counters.sync_bytes_out.load(Ordering::Relaxed),
                        proc_kib("VmHWM:"),
                        proc_kib("VmRSS:"),
                    ));
                    say(&memory_line(&service));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let tracer = args.trace.then(|| {
            let mut events = service.subscribe();
            tokio::spawn(async move {
                while let Ok(ev) = events.recv().await {
                    say(&format!("STORED {} {} {}", ev.publisher, ev.seq, unix_micros()));
                }
            })
        });
        let svc = service.clone();
        let commands = tokio::task::spawn_blocking(move || read_commands(&svc));
        let result = commands.await?;
        reporter.abort();
        if let Some(t) = tracer {
            t.abort();
        }
        running.shutdown().await;
        result
    })
}

fn read_commands(service: &Service) -> anyhow::Result<()> {
    let data = match shared_dir() {
        Some(dir) => HsData::load(&dir)?,
        None => HsData::excerpt(),
    };
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["publish", n, interval_ms] => {
                let n: usize = n.parse()?;
                let interval = Duration::from_millis(interval_ms.parse()?);
                let org = service
                    .publisher
                    .as_ref()
                    .map(|p| p.org.clone())
                    .ok_or_else(|| anyhow::anyhow!("a replica cannot publish"))?;
                let start = service.store.head(&org)?.map_or(0, |h| h.seq.0 as usize);
                for d in ruling_documents_from(&data, start + 1_000_000, n, org.as_str()) {
                    let body = d.body.to_string();
                    let published = service.publish(d.doc_type, body.as_bytes())?;
                    let size = service.store.get(&published.id)?.map_or(0, |b| b.len());
                    say(&format!("PUBLISHED {} {size} {}", published.seq, unix_micros()));
                    std::thread::sleep(interval);
                }
            }
            ["settle", idle_s] => {
                let idle = Duration::from_secs(idle_s.parse::<u64>()?.min(SETTLE_IDLE_MAX_S));
                service.store.settle(SETTLE_COMPACTION_TIMEOUT)?;
                std::thread::sleep(idle);
                say(&memory_line(service));
                say(&format!(
                    "SETTLED {} {} {}",
                    super::dir_bytes(service.store.path()),
                    service.store.disk_bytes(),
                    proc_kib("VmRSS:")
                ));
            }
            ["quit"] => break,
            _ => say(&format!("ERROR unknown command '{line}'")),
        }
    }
    Ok(())
}
