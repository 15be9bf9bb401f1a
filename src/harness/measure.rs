//! What the harness counts: when each node stored each document, and the process's memory
//! and CPU while a scenario runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::document::{DocumentId, OrgId};

/// Most documents whose arrivals are kept at once (each keeps one instant per node).
pub const TRACKED_DOCUMENTS_MAX: usize = 20_000;

/// When each node stored each tracked document.
pub struct Tracker {
    /// Which node publishes for each organization.
    orgs: HashMap<OrgId, usize>,
    enabled: AtomicBool,
    lagged: AtomicU64,
    docs: Mutex<HashMap<DocumentId, Arrivals>>,
}

/// One document's arrivals.
#[derive(Debug, Default, Clone)]
pub struct Arrivals {
    /// When its publisher stored it.
    pub published: Option<Instant>,
    /// When each other node stored it.
    pub at: Vec<Instant>,
}

/// Propagation figures over a set of documents.
#[derive(Debug, Clone, Default)]
pub struct Propagation {
    /// Documents counted.
    pub documents: usize,
    /// Delays from publish to one node's store, over every (document, node).
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Documents that reached every receiver, and the median and slowest time to do so.
    pub everywhere: usize,
    pub everywhere_p50: Duration,
    pub everywhere_max: Duration,
}

impl Tracker {
    /// A tracker for `nodes` nodes, `orgs` giving each publisher's node.
    pub fn new(_nodes: usize, orgs: HashMap<OrgId, usize>) -> Tracker {
        Tracker { orgs, enabled: AtomicBool::new(false), lagged: AtomicU64::new(0), docs: Mutex::new(HashMap::new()) }
    }

    /// Starts (or stops) keeping arrivals; starting forgets what was kept.
    pub fn track(&self, on: bool) {
        if on {
            self.lock().clear();
        }
        self.enabled.store(on, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DocumentId, Arrivals>> {
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Node `node` stored document `id` of `publisher` at `at`.
    pub fn stored(&self, node: usize, publisher: &OrgId, id: DocumentId, at: Instant) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let mut docs = self.lock();
        if !docs.contains_key(&id) && docs.len() >= TRACKED_DOCUMENTS_MAX {
            return;
        }
        let entry = docs.entry(id).or_default();
        if self.orgs.get(publisher) == Some(&node) {
            entry.published = Some(at);
        } else {
            entry.at.push(at);
        }
    }

    /// A watcher fell behind its node's event channel by `n` events (their arrivals are
    /// missing from the figures; the store still holds them).
    pub fn lagged(&self, n: u64) {
        self.lagged.fetch_add(n, Ordering::Relaxed);
    }

    /// Events missed by watchers since start.
    pub fn lagged_total(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// Propagation of the tracked documents, `receivers` being how many nodes other than the
    /// publisher should store each.
    pub fn propagation(&self, receivers: usize) -> Propagation {
        let docs = self.lock();
        let mut delays = Vec::new();
        let mut everywhere = Vec::new();
        let mut documents = 0;
        for a in docs.values() {
            let Some(published) = a.published else { continue };
            documents += 1;
            let mine: Vec<Duration> = a.at.iter().map(|t| t.saturating_duration_since(published)).collect();
            if mine.len() >= receivers {
                everywhere.push(mine.iter().copied().max().unwrap_or_default());
            }
            delays.extend(mine);
        }
        delays.sort();
        everywhere.sort();
        Propagation {
            documents,
            p50: percentile(&delays, 0.50),
            p99: percentile(&delays, 0.99),
            max: delays.last().copied().unwrap_or_default(),
            everywhere: everywhere.len(),
            everywhere_p50: percentile(&everywhere, 0.50),
            everywhere_max: everywhere.last().copied().unwrap_or_default(),
        }
    }

    /// When the last tracked document reached its last node, after the first was published.
    pub fn span(&self) -> Option<Duration> {
        let docs = self.lock();
        let first = docs.values().filter_map(|a| a.published).min()?;
        let last = docs.values().flat_map(|a| a.at.iter().copied().chain(a.published)).max()?;
        Some(last.saturating_duration_since(first))
    }
}

/// Percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    crate::bench::percentile(sorted, p)
}

/// This process's resident memory now (VmRSS), in bytes.
pub fn rss_bytes() -> u64 {
    proc_status_number("VmRSS:") * 1024
}

/// Threads of this process.
pub fn thread_count() -> u64 {
    proc_status_number("Threads:")
}

/// This process's peak resident memory (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    proc_status_number("VmHWM:") * 1024
}

fn proc_status_number(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Bytes used under a directory (a tmpfs store's memory).
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// Samples the process's resident memory every half second until dropped.
pub struct MemorySampler {
    samples: Arc<Mutex<(u64, u64, u64)>>,
    task: tokio::task::JoinHandle<()>,
}

impl MemorySampler {
    /// Starts sampling.
    pub fn start() -> MemorySampler {
        let samples = Arc::new(Mutex::new((0u64, 0u64, 0u64)));
        let s = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let rss = rss_bytes();
                let mut g = s.lock().unwrap_or_else(|p| p.into_inner());
                g.0 += 1;
                g.1 += rss;
                g.2 = g.2.max(rss);
            }
        });
        MemorySampler { samples, task }
    }

    /// (mean, peak) resident bytes over the samples so far.
    pub fn figures(&self) -> (u64, u64) {
        let g = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        (g.1.checked_div(g.0).unwrap_or(0), g.2)
    }
}

impl Drop for MemorySampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
