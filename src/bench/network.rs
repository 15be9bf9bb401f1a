//! `entrepot bench network`: the whole-network harness (`src/harness/`) at a chosen size,
//! printing propagation, burst, traffic, bootstrap, convergence, memory and CPU figures beside
//! this machine's raw ed25519 verification rate and load average, measured in the same run.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::harness::scenario::{self, Plan, Scenario};
use crate::harness::{default_root, HarnessConfig, Profile};

use super::measure_verify_rates;

/// Options of `entrepot bench network`.
#[derive(Debug, Clone, clap::Args)]
pub struct NetworkArgs {
    /// Nodes in the network (replicas and the publisher, for `--scenario bootstrap`).
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Nodes that publish, each for its own organization.
    #[arg(long, default_value_t = 20)]
    pub publishers: usize,
    /// Documents of the burst, or of the publisher's history for `--scenario bootstrap`.
    #[arg(long, default_value_t = 300)]
    pub documents: usize,
    /// How far apart the nodes are.
    #[arg(long, value_enum, default_value_t = Profile::Continents)]
    pub latency: Profile,
    /// What to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,
    /// Fixes keys, regions, bootstrap lists, crashes and losses.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Each link's bandwidth one way, in Mbit/s (0: unlimited).
    #[arg(long, default_value_t = 100)]
    pub bandwidth_mbit: u64,
    /// Each link's segment loss, in percent.
    #[arg(long, default_value_t = 0.1)]
    pub loss_percent: f64,
    /// Publishers that join by a charter version during `--scenario charter` (the genesis
    /// names the others).
    #[arg(long, default_value_t = 20)]
    pub joining: usize,
    /// Rounds of steady publishing (one document per publisher per round).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds between two rounds.
    #[arg(long, default_value_t = 10)]
    pub round_s: u64,
    /// Seconds the started network runs before the first document is published.
    #[arg(long, default_value_t = 0)]
    pub warmup_s: u64,
    /// Seconds of the idle window.
    #[arg(long, default_value_t = 60)]
    pub idle_s: u64,
    /// Seconds the network stays idle before the idle window opens (discovery settles).
    #[arg(long, default_value_t = 0)]
    pub settle_s: u64,
    /// Seconds a partition, or a crash, lasts.
    #[arg(long, default_value_t = 60)]
    pub outage_s: u64,
    /// Longest wait for convergence at each step, in seconds.
    #[arg(long, default_value_t = 300)]
    pub converge_s: u64,
    /// Worker threads of the runtime the nodes share (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// The run is stopped (exit 3) when the process's resident memory passes this, in GiB, so
    /// that a network too large for the machine does not push other work out of memory.
    #[arg(long, default_value_t = 18)]
    pub memory_max_gib: u64,
}

/// Stops the process when its resident memory passes `max` bytes, removing `root` first.
fn memory_watchdog(max: u64, root: std::path::PathBuf) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        let rss = crate::harness::measure::rss_bytes();
        if rss > max {
            println!("STOPPED: resident memory {} MiB passed --memory-max-gib; the network does not fit", rss >> 20);
            let _ = std::fs::remove_dir_all(&root);
            std::process::exit(3);
        }
    });
}

/// The 1-minute load average.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "unknown".into(), |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Runs `entrepot bench network`.
pub fn run(args: &NetworkArgs) -> Result<()> {
    if !(0.0..100.0).contains(&args.loss_percent) {
        bail!("--loss-percent must be in [0, 100)");
    }
    let rates = measure_verify_rates(5_000);
    println!(
        "machine: {} cores ({}); load average {} at start; verify_strict {:.0}/s on one core, {:.0}/s on all",
        rates.cores,
        super::cpu_model(),
        load_average(),
        rates.strict_one_core,
        rates.strict_all_cores
    );
    let root = default_root("bench");
    let mut config = HarnessConfig::new(args.nodes, args.publishers, args.seed, args.latency, root.clone());
    config.bandwidth_bytes_per_s = args.bandwidth_mbit * 1_000_000 / 8;
    config.loss = args.loss_percent / 100.0;
    config.joining = args.joining;
    let plan = Plan {
        scenario: args.scenario,
        documents: args.documents,
        rounds: args.rounds,
        round_interval: Duration::from_secs(args.round_s),
        idle: Duration::from_secs(args.idle_s),
        settle: Duration::from_secs(args.settle_s),
        warmup: Duration::from_secs(args.warmup_s),
        outage: Duration::from_secs(args.outage_s),
        converge_max: Duration::from_secs(args.converge_s),
        verify_nodes: 3,
    };
    println!(
        "network: {} nodes, {} publishers, latency {:?}, {} Mbit/s links, {} % loss, seed {}, scenario {:?}, nodes in {}",
        args.nodes,
        args.publishers,
        args.latency,
        args.bandwidth_mbit,
        args.loss_percent,
        args.seed,
        args.scenario,
        root.display()
    );
    memory_watchdog(args.memory_max_gib << 30, root.clone());
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        runtime.worker_threads(args.threads);
    }
    let runtime = runtime.enable_all().build().context("starting the runtime")?;
    let t0 = Instant::now();
    let report = runtime.block_on(scenario::run_reporting(config, &plan, true))?;
    println!("load average {} at the end; {:.0} s in all", load_average(), t0.elapsed().as_secs_f64());
    runtime.shutdown_timeout(Duration::from_secs(10));
    if report.faults.is_empty() {
        println!(
            "checks: every node holds the same heads and documents, no fork, no peer banned, sampled stores verify"
        );
        Ok(())
    } else {
        bail!("{} faults", report.faults.len())
    }
}
