//! The harness's scenarios and the figures each prints. Each ends with the checks of
//! [`Harness::check`]: a scenario that does not converge within its bound, or breaks a check,
//! reports faults; the figures are measurements, never pass or fail.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::measure::{dir_bytes, rss_bytes, MemorySampler};
use super::{Harness, HarnessConfig, HarnessError, REGIONS};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// One publisher publishes a burst of documents at once.
    Burst,
    /// Every publisher publishes, round after round.
    Steady,
    /// Replicas start empty together and fetch a publisher's history.
    Bootstrap,
    /// A tenth of the nodes crash while publishing goes on, and restart.
    Churn,
    /// A region is cut off while both sides publish, then healed.
    Partition,
    /// Steady, idle, burst, churn and partition in one network, in that order.
    All,
    /// On a charter network: a version adding the last `--joining` publishers as members is
    /// given to the first node and to the joining members' nodes, which start and publish at
    /// once while every other publisher publishes too.
    Charter,
}

/// The sizes and bounds of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    /// Documents of the burst, and of the publisher's history in a bootstrap.
    pub documents: usize,
    /// Rounds of steady publishing (each publisher publishes one document per round).
    pub rounds: usize,
    /// Time between two rounds.
    pub round_interval: Duration,
    /// How long the started network runs before anything is published: a real network has
    /// formed long before a document is published; a large harness takes minutes to.
    pub warmup: Duration,
    /// The idle window over which idle traffic is measured.
    pub idle: Duration,
    /// How long the network stays idle before that window opens (discovery settling).
    pub settle: Duration,
    /// How long a partition lasts, and how long crashed nodes stay down.
    pub outage: Duration,
    /// Longest wait for convergence at each step.
    pub converge_max: Duration,
    /// Nodes whose every stored document is verified again at the end.
    pub verify_nodes: usize,
}

/// What a run measured, as lines to print, and what it found wrong.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub faults: Vec<String>,
    /// Print each line and fault as it is found (the benchmark), not only at the end.
    pub echo: bool,
}

impl Report {
    fn line(&mut self, text: String) {
        if self.echo {
            println!("{text}");
        }
        self.lines.push(text);
    }

    fn fault(&mut self, text: String) {
        if self.echo {
            println!("FAULT: {text}");
        }
        self.faults.push(text);
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// Runs `plan` on a network built from `config`, and removes its directories after.
pub async fn run(config: HarnessConfig, plan: &Plan) -> Result<Report, HarnessError> {
    run_reporting(config, plan, false).await
}

/// [`run`], printing each figure as soon as it is measured when `echo`.
pub async fn run_reporting(config: HarnessConfig, plan: &Plan, echo: bool) -> Result<Report, HarnessError> {
    let mut config = config;
    if plan.scenario == Scenario::Bootstrap {
        // Every replica knows the publisher and two other replicas.
        config.bootstrap_node0 = true;
        config.bootstrap_peers = 3;
        config.publishers = 1;
    }
    if plan.scenario == Scenario::Charter {
        config.charter = true;
    }
    let mut h = Harness::prepare(config)?;
    let mut report = Report { echo, ..Report::default() };
    let result = match plan.scenario {
        Scenario::Bootstrap => bootstrap(&mut h, plan, &mut report).await,
        Scenario::Charter => charter_join(&mut h, plan, &mut report).await,
        _ => network(&mut h, plan, &mut report).await,
    };
    if result.is_ok() {
        report.faults.extend(h.check(plan.verify_nodes));
        let penalties = h.penalties();
        report.line(format!("penalties given (not bans): {penalties:?}"));
        report.line(format!("events missed by the harness's watchers: {}", h.tracker.lagged_total()));
    }
    h.stop_all().await;
    h.remove_dirs();
    result.map(|()| report)
}

/// Starts every node but those of `except`, waits for each to have a peer and the gossip mesh
/// to form.
async fn start_network(h: &mut Harness, report: &mut Report, except: &[usize]) -> Result<(), HarnessError> {
    let rss0 = rss_bytes();
    let t0 = Instant::now();
    let mut last = Instant::now();
    for i in 0..h.nodes.len() {
        if !except.contains(&i) {
            h.start(i).await?;
        }
        if report.echo && (i + 1) % 100 == 0 {
            println!(
                "  started {} nodes in {} (last 100 in {}); process RSS {}; threads {}",
                i + 1,
                ms(t0.elapsed()),
                ms(last.elapsed()),
                mib(rss_bytes() as f64),
                super::measure::thread_count()
            );
            last = Instant::now();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while h.peer_counts().0 == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A few gossipsub heartbeats for the mesh.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let n = h.nodes.len() as f64;
    let (min, mean, max) = h.peer_counts();
    report.line(format!(
        "started {} nodes in {}; peers per node min {min} mean {mean:.1} max {max}",
        h.nodes.len() - except.len(),
        ms(t0.elapsed())
    ));
    report.line(format!(
        "memory per started node (RSS growth / nodes): {}; store files per node (tmpfs): {}",
        mib((rss_bytes().saturating_sub(rss0)) as f64 / n),
        mib(dir_bytes(&h.config.root) as f64 / n)
    ));
    Ok(())
}

async fn network(h: &mut Harness, plan: &Plan, report: &mut Report) -> Result<(), HarnessError> {
    let rss0 = rss_bytes();
    let cpu0 = crate::bench::cpu_time();
    let run0 = Instant::now();
    let sampler = MemorySampler::start();
    start_network(h, report, &[]).await?;
    if !plan.warmup.is_zero() {
        let cpu = crate::bench::cpu_time();
        tokio::time::sleep(plan.warmup).await;
        let (min, mean, max) = h.peer_counts();
        report.line(format!(
            "after a warm-up of {}: peers per node min {min} mean {mean:.1} max {max}; CPU per node {:.2} ms a second over it",
            ms(plan.warmup),
            crate::bench::cpu_time().saturating_sub(cpu).as_secs_f64() * 1000.0 / h.nodes.len() as f64 / plan.warmup.as_secs_f64()
        ));
    }
    let n = h.nodes.len();
    let publishers: Vec<usize> = (0..h.config.publishers).collect();
    let mut rng = StdRng::seed_from_u64(h.config.seed ^ 0x5eed);
    let all = plan.scenario == Scenario::All;

    if matches!(plan.scenario, Scenario::Steady | Scenario::All | Scenario::Churn | Scenario::Partition) {
        h.tracker.track(true);
        let t0 = Instant::now();
        for _ in 0..plan.rounds {
            steady_round(h, &publishers, plan.round_interval, &mut rng).await?;
        }
        let published = t0.elapsed();
        let converged = h.converge(plan.converge_max).await;
        let p = h.tracker.propagation(n - 1);
        h.tracker.track(false);
        let everywhere = match &converged {
            Ok(t) => format!("every node held every head {} after the last publish", ms(*t)),
            Err(lagging) => {
                format!("{} nodes still lagging {} after the last publish", lagging.len(), ms(plan.converge_max))
            }
        };
        report.line(format!(
            "steady: {} rounds x {} publishers = {} documents published in {}; {everywhere}",
            plan.rounds,
            publishers.len(),
            p.documents,
            ms(published)
        ));
        report.line(format!(
            "steady propagation to one node: p50 {} p99 {} max {}; to every node: median {} slowest {} ({} of {} documents reached all)",
            ms(p.p50), ms(p.p99), ms(p.max), ms(p.everywhere_p50), ms(p.everywhere_max), p.everywhere, p.documents
        ));
        if let Err(lagging) = converged {
            report.fault(format!("steady: {} nodes had not converged after {}", lagging.len(), ms(plan.converge_max)));
            return Ok(());
        }
    }

    if all || plan.scenario == Scenario::Steady {
        tokio::time::sleep(plan.settle).await;
        let sent0 = h.bytes_sent_total();
        let dialed0 = h.net.connections_opened();
        let (sync0, gossip0) = h.protocol_bytes_sent();
        let by_message0 = h.sync_bytes_by_message();
        let idle_cpu0 = crate::bench::cpu_time();
        let t0 = Instant::now();
        tokio::time::sleep(plan.idle).await;
        let idle_cpu = crate::bench::cpu_time().saturating_sub(idle_cpu0);
        let minutes = t0.elapsed().as_secs_f64() / 60.0;
        let rate = |bytes: u64| bytes as f64 / n as f64 / minutes;
        let per_minute = rate(h.bytes_sent_total() - sent0);
        let (sync, gossip) = h.protocol_bytes_sent();
        let (min, mean, max) = h.peer_counts();
        report.line(format!(
            "idle traffic with {} feeds, over {:.0} s from {:.0} s after every node held every head: {:.0} bytes sent per node per minute ({:.0} B/s; of which sync protocol \
             {:.0}, gossip payload {:.0}, the rest framing, gossipsub control, Kademlia, identify, ping); {:.1} \
             connections opened per node per minute; peers per node min {min} mean {mean:.1} max {max}; \
             CPU per node {:.2} ms a second",
            h.expected.len(),
            plan.idle.as_secs_f64(),
            plan.settle.as_secs_f64(),
            per_minute,
            per_minute / 60.0,
            rate(sync - sync0),
            rate(gossip - gossip0),
            (h.net.connections_opened() - dialed0) as f64 / n as f64 / minutes,
            idle_cpu.as_secs_f64() * 1000.0 / n as f64 / t0.elapsed().as_secs_f64()
        ));
        let seconds = t0.elapsed().as_secs_f64();
        let by_message: Vec<String> = h
            .sync_bytes_by_message()
            .into_iter()
            .zip(by_message0)
            .filter(|((_, q, r), (_, q0, r0))| q + r > q0 + r0)
            .map(|((kind, q, r), (_, q0, r0))| {
                let per_s = |b: u64| b as f64 / n as f64 / seconds;
                format!("{kind} {:.0} + {:.0}", per_s(q - q0), per_s(r - r0))
            })
            .collect();
        report.line(format!(
            "idle sync bytes per node per second by message (as requests + as responses): {}",
            if by_message.is_empty() { "none".to_owned() } else { by_message.join(", ") }
        ));
    }

    if all || plan.scenario == Scenario::Burst {
        let publisher = publishers.first().copied().ok_or(HarnessError::Config("a burst needs a publisher".into()))?;
        let idle0 = h.bytes_sent_total();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let idle_rate = (h.bytes_sent_total() - idle0) as f64 / 5.0;
        h.tracker.track(true);
        let sent0 = h.bytes_sent_total();
        let t0 = Instant::now();
        h.publish(publisher, plan.documents).await?;
        let published_in = t0.elapsed();
        let converged = h.converge(plan.converge_max).await;
        let took = t0.elapsed();
        let sent = (h.bytes_sent_total() - sent0) as f64;
        let p = h.tracker.propagation(n - 1);
        h.tracker.track(false);
        let doc_bytes = document_bytes(h, publisher);
        let per_node_doc = sent / n as f64 / plan.documents as f64;
        let net_of_idle = (sent - idle_rate * took.as_secs_f64()).max(0.0) / n as f64 / plan.documents as f64;
        match converged {
            Ok(_) => report.line(format!(
                "burst: {} documents published in {}, everywhere {} after the first publish",
                plan.documents,
                ms(published_in),
                ms(took)
            )),
            Err(lagging) => {
                report.fault(format!("burst: {} nodes lagging after {}", lagging.len(), ms(plan.converge_max)))
            }
        }
        report.line(format!("burst propagation to one node: p50 {} p99 {} max {}", ms(p.p50), ms(p.p99), ms(p.max)));
        report.line(format!(
            "burst bytes sent per node per document: {per_node_doc:.0} ({:.1}x the {doc_bytes}-byte document; {net_of_idle:.0} net of idle traffic, {:.1}x)",
            per_node_doc / doc_bytes as f64,
            net_of_idle / doc_bytes as f64
        ));
    }

    if all || plan.scenario == Scenario::Churn {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let down: Vec<usize> = order.into_iter().take((n / 10).max(1)).collect();
        for i in &down {
            h.crash(*i).await;
        }
        let up: Vec<usize> = publishers.iter().copied().filter(|p| h.is_running(*p)).collect();
        steady_round(h, &up, plan.round_interval, &mut rng).await?;
        tokio::time::sleep(plan.outage).await;
        let t0 = Instant::now();
        for i in &down {
            h.start(*i).await?;
        }
        match h.converge(plan.converge_max).await {
            Ok(d) => report.line(format!(
                "churn: {} nodes crashed for {}, restarted; converged {} after the restarts began ({} to restart them)",
                down.len(),
                ms(plan.outage),
                ms(t0.elapsed().max(d)),
                ms(t0.elapsed() - d)
            )),
            Err(lagging) => {
                report.fault(format!("churn: {} nodes lagging after {}", lagging.len(), ms(plan.converge_max)))
            }
        }
    }

    if all || plan.scenario == Scenario::Partition {
        let region = 1;
        h.isolate_region(region);
        let t0 = Instant::now();
        steady_round(h, &publishers, plan.round_interval, &mut rng).await?;
        let left = plan.outage.saturating_sub(t0.elapsed());
        tokio::time::sleep(left).await;
        h.heal();
        match h.converge(plan.converge_max).await {
            Ok(d) => report.line(format!(
                "partition: region {} cut off for {} while every publisher published; converged {} after the heal",
                REGIONS[region],
                ms(t0.elapsed() - d),
                ms(d)
            )),
            Err(lagging) => report.fault(format!(
                "partition: {} nodes lagging {} after the heal",
                lagging.len(),
                ms(plan.converge_max)
            )),
        }
    }

    let (mean, peak) = sampler.figures();
    let cpu = crate::bench::cpu_time().saturating_sub(cpu0);
    report.line(format!(
        "memory per node (RSS above the harness's own / nodes): mean {} peak {}; CPU per node {:.2} s over {:.0} s",
        mib(mean.saturating_sub(rss0) as f64 / n as f64),
        mib(peak.saturating_sub(rss0) as f64 / n as f64),
        cpu.as_secs_f64() / n as f64,
        run0.elapsed().as_secs_f64()
    ));
    Ok(())
}

async fn charter_join(h: &mut Harness, plan: &Plan, report: &mut Report) -> Result<(), HarnessError> {
    let cpu0 = crate::bench::cpu_time();
    let run0 = Instant::now();
    let Some(members) = h.charter.as_ref().map(|c| c.genesis_members()) else {
        return Err(HarnessError::Config("the charter scenario needs a charter network".into()));
    };
    let publishers: Vec<usize> = (0..h.config.publishers).collect();
    let joining: Vec<usize> = (members..h.config.publishers).collect();
    let mut rng = StdRng::seed_from_u64(h.config.seed ^ 0xc4a7);
    start_network(h, report, &joining).await?;
    // A history under the genesis first.
    steady_round(h, &publishers[..members], plan.round_interval, &mut rng).await?;
    if let Err(lagging) = h.converge(plan.converge_max).await {
        report.fault(format!("charter: {} nodes lagging before the new version", lagging.len()));
        return Ok(());
    }
    let next = h.charter.as_ref().map(|c| c.next_version()).expect("a charter network");
    let t0 = Instant::now();
    h.give_charter(0, &next).await?;
    for j in &joining {
        h.give_charter(*j, &next).await?;
        h.start(*j).await?;
    }
    let started = t0.elapsed();
    for _ in 0..plan.rounds {
        steady_round(h, &publishers, plan.round_interval, &mut rng).await?;
    }
    let published = t0.elapsed();
    match h.converge(plan.converge_max).await {
        Ok(_) => report.line(format!(
            "charter: version 2 adding {} members given to node 0 and to them (their nodes started in {}); \
             {} rounds of every publisher in {}; every node held version 2 and every document {} after it was given",
            joining.len(),
            ms(started),
            plan.rounds,
            ms(published),
            ms(t0.elapsed())
        )),
        Err(lagging) => {
            report.fault(format!("charter: {} nodes lagging after {}", lagging.len(), ms(plan.converge_max)))
        }
    }
    report.line(format!(
        "CPU per node {:.2} s over {:.0} s",
        crate::bench::cpu_time().saturating_sub(cpu0).as_secs_f64() / h.nodes.len() as f64,
        run0.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// One round: each publisher (in a random order) publishes one document, spread over
/// `interval`.
async fn steady_round(
    h: &mut Harness,
    publishers: &[usize],
    interval: Duration,
    rng: &mut StdRng,
) -> Result<(), HarnessError> {
    let mut order = publishers.to_vec();
    order.shuffle(rng);
    let gap = interval / (order.len().max(1) as u32);
    for p in order {
        h.publish(p, 1).await?;
        tokio::time::sleep(gap).await;
    }
    Ok(())
}

/// The size of publisher `i`'s last document.
fn document_bytes(h: &Harness, i: usize) -> u64 {
    let org = h.nodes[i].org.as_ref();
    let found = org
        .and_then(|o| h.expected.get(o))
        .and_then(|(_, id)| h.nodes[i].service().and_then(|s| s.store.get(id).ok().flatten()).map(|b| b.len() as u64));
    found.unwrap_or(1).max(1)
}

async fn bootstrap(h: &mut Harness, plan: &Plan, report: &mut Report) -> Result<(), HarnessError> {
    let rss0 = rss_bytes();
    let cpu0 = crate::bench::cpu_time();
    let sampler = MemorySampler::start();
    h.start(0).await?;
    let t0 = Instant::now();
    let data = h.prefill(0, plan.documents).await?;
    report.line(format!(
        "publisher holds {} documents ({}) after {}",
        plan.documents,
        mib(data as f64),
        ms(t0.elapsed())
    ));
    let sent0: Vec<u64> = (0..h.nodes.len()).map(|i| h.net.bytes_sent(i)).collect();
    let received0: Vec<u64> = (0..h.nodes.len()).map(|i| h.net.bytes_received(i)).collect();
    let t0 = Instant::now();
    h.start_all().await?;
    let started = t0.elapsed();
    let converged = h.converge(plan.converge_max).await;
    let took = t0.elapsed();
    let replicas = h.nodes.len() - 1;
    let publisher_sent = h.net.bytes_sent(0) - sent0[0];
    let replicas_received: u64 = (1..h.nodes.len()).map(|i| h.net.bytes_received(i) - received0[i]).sum();
    match converged {
        Ok(_) => report.line(format!(
            "bootstrap: {replicas} empty replicas started together (in {}) each held every document {} after the first start",
            ms(started),
            ms(took)
        )),
        Err(lagging) => report.fault(format!("bootstrap: {} replicas lagging after {}", lagging.len(), ms(plan.converge_max))),
    }
    let mut line = String::new();
    let _ = write!(
        line,
        "bootstrap: the publisher sent {} of the {} the replicas received ({:.0} %), {:.1} full copies of its data",
        mib(publisher_sent as f64),
        mib(replicas_received as f64),
        publisher_sent as f64 * 100.0 / replicas_received.max(1) as f64,
        publisher_sent as f64 / data.max(1) as f64
    );
    report.line(line);
    let (mean, peak) = sampler.figures();
    let n = h.nodes.len() as f64;
    report.line(format!(
        "memory per node (RSS above the harness's own / nodes): mean {} peak {}; CPU per node {:.2} s",
        mib(mean.saturating_sub(rss0) as f64 / n),
        mib(peak.saturating_sub(rss0) as f64 / n),
        crate::bench::cpu_time().saturating_sub(cpu0).as_secs_f64() / n
    ));
    Ok(())
}
