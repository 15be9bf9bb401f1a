//! The running node: the swarm task (`net`), the node shell around the sans-IO node core
//! (`core`, which runs the sync engine), and the ingest worker, wired to the [`Service`].
//!
//! Every task is owned by a supervisor that [`RunningNode`] holds. A task that ends while the
//! node is not shutting down (the ingest worker on a store failure or a panic, the swarm task,
//! the shell) stops the node: the supervisor logs why, marks replication stopped on the
//! service (`/readyz` answers 503), stops the other tasks, and [`RunningNode::failed`]
//! resolves, so `entrepot run` exits non-zero. Shutdown is bounded by [`SHUTDOWN_MAX`].

pub mod core;
mod serve;
mod shell;
mod worker;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use self::core::{Core, CoreConfig, INGEST_JOBS_MAX};
use crate::config::Config;
use crate::net::{self, limits, NetError};
use crate::service::{Replication, Service};
use crate::sync::SyncConfig;

/// Longest a shutdown waits for the tasks before aborting them.
pub const SHUTDOWN_MAX: Duration = Duration::from_secs(5);

/// A node started by [`start`].
pub struct RunningNode {
    pub peer_id: PeerId,
    shutdown: watch::Sender<bool>,
    failure: watch::Receiver<Option<String>>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl RunningNode {
    /// Resolves when the node stopped by itself, with why (it never resolves otherwise).
    pub fn failed(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        when_failed(self.failure.clone())
    }

    /// Stops every task and waits for them, at most [`SHUTDOWN_MAX`] (then aborts them).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let mut supervisor = self.supervisor;
        if tokio::time::timeout(SHUTDOWN_MAX + Duration::from_secs(1), &mut supervisor).await.is_err() {
            tracing::error!("node tasks did not stop in time; aborted");
            supervisor.abort();
        }
    }
}

/// Resolves with the first reason `failure` holds (a task that stopped by itself), and never
/// if its sender goes without one: how a process watches the tasks it owns.
pub(crate) async fn when_failed(mut failure: watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(reason) = failure.borrow_and_update().clone() {
            return reason;
        }
        if failure.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Starts the node's networking on an opened service. `dir` is the node directory (for the
/// identity key path in `config`).
pub async fn start(service: Arc<Service>, dir: &std::path::Path, config: &Config) -> Result<RunningNode, NodeError> {
    start_on(net::NetTransport::Tcp, service, dir, config).await
}

/// [`start`] over the given transport (the whole-network harness runs nodes in memory).
pub async fn start_on(
    transport: net::NetTransport,
    service: Arc<Service>,
    dir: &std::path::Path,
    config: &Config,
) -> Result<RunningNode, NodeError> {
    if !config.replication.types.is_empty() {
        tracing::warn!("[replication] types is not enforced by the sync protocol; this node replicates every type of the feeds it follows");
    }
    let keypair = net::load_identity(&dir.join(&config.p2p.identity))?;
    let peer_id = keypair.public().to_peer_id();
    let bootstrap =
        config.p2p.bootstrap.iter().map(|b| net::parse_bootstrap(b)).collect::<Result<Vec<_>, NetError>>()?;
    // On a charter network peers are admitted by node certificate (docs/PROTOCOL.md §11).
    let permissioned = service.keyring().charter().is_some();
    let own_cert = match (service.certificate(), permissioned) {
        (Some(cert), true) => {
            if let Err(e) = service.check_certificate(&cert.bytes, &peer_id.to_string()) {
                tracing::warn!(error = %e, code = e.code(), "this node's certificate is not valid; peers will not admit it");
            }
            cert.bytes
        }
        (None, true) => {
            match service.certificate_path() {
                Some(path) => {
                    tracing::warn!(%peer_id, path = %path.display(), "this node's certificate file does not exist yet: peers will not admit this node until it does (certify it with `entrepot charter certify-node --peer-id {peer_id} --out {}`, then send the node SIGHUP)", path.display())
                }
                None => {
                    tracing::warn!(%peer_id, "no [charter] certificate configured: peers will not admit this node (certify it with `entrepot charter certify-node`)")
                }
            }
            Vec::new()
        }
        _ => Vec::new(),
    };
    let codec = net::codec::SyncCodec {
        read: service.counters.sync_bytes_in.clone(),
        written: service.counters.sync_bytes_out.clone(),
        by_message: service.counters.sync_bytes_out_by_message.clone(),
    };
    let swarm = net::build_swarm_on(
        transport,
        keypair,
        &service.network_id,
        &config.p2p.listen,
        config.p2p.mdns,
        config.p2p.discovery,
        permissioned,
        codec,
    )?;
    let (heads, known_forks) = {
        let s = service.clone();
        tokio::task::spawn_blocking(move || {
            // A charter version applied while the store failed (or before a crash) may have
            // left forks it resolves unjudged; judging them again is cheap (frozen feeds only).
            if permissioned {
                let survivors: Vec<Vec<u8>> =
                    s.store.resolve_forks(&s.keyring())?.into_iter().filter_map(|r| r.reingest).collect();
                if !survivors.is_empty() {
                    s.ingest(survivors, crate::service::Source::Sync)?;
                }
            }
            let known: BTreeSet<_> = s.store.forks()?.into_iter().map(|f| (f.publisher, f.seq)).collect();
            Ok::<_, crate::store::StoreError>((s.store.heads()?, known))
        })
        .await
        .map_err(|e| NetError::Setup(format!("reading the store's heads: {e}")))??
    };
    let core = Core::new(CoreConfig {
        connections_target: config.p2p.connections,
        bootstrap: bootstrap.iter().map(|(peer, _)| peer.to_string()).collect(),
        sync: SyncConfig {
            publishers: (!config.replication.publishers.is_empty())
                .then(|| config.replication.publishers.iter().cloned().collect()),
            ..SyncConfig::default()
        },
        permissioned,
        own_cert,
        network_id: service.network_id,
        own_org: service.publisher.as_ref().map(|p| p.org.clone()),
        reader: permissioned.then(|| service.certificate().map(|c| c.organization)).flatten(),
        charter_version: serve::charter_version(&service),
        trusted: service.keyring().organizations().map(|o| o.id.clone()).collect(),
        heads: heads.into_iter().map(|(o, h)| (o, h.seq)).collect(),
        known_forks,
    });

    let (cmd_tx, cmd_rx) = mpsc::channel(limits::COMMAND_QUEUE);
    let (ev_tx, ev_rx) = mpsc::channel(limits::EVENT_QUEUE);
    let (job_tx, job_rx) = mpsc::channel(INGEST_JOBS_MAX);
    // One more than the jobs the core lets be outstanding, so the worker never waits on it.
    let (done_tx, done_rx) = mpsc::channel(INGEST_JOBS_MAX + 1);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (failure_tx, failure) = watch::channel(None);

    let mut tasks: JoinSet<(&'static str, Result<(), String>)> = JoinSet::new();
    let options = net::RunOptions {
        bootstrap,
        discovery: config.p2p.discovery,
        permissioned,
        network_id: service.network_id,
        connections_target: config.p2p.connections,
    };
    let swarm_shutdown = shutdown_rx.clone();
    tasks.spawn(async move {
        net::run_swarm(swarm, options, cmd_rx, ev_tx, swarm_shutdown).await;
        ("swarm task", Ok(()))
    });
    let worker_service = service.clone();
    // A plain thread, not a task: it blocks on RocksDB and on verification. It ends when the
    // shell drops the job sender, or on a store failure (then the shell notices).
    let worker = std::thread::Builder::new()
        .name("entrepot-ingest".into())
        .spawn(move || {
            if let Err(reason) = worker::run(worker_service, job_rx, done_tx) {
                tracing::error!(%reason, "the ingest worker stopped");
            }
        })
        .map_err(|e| NetError::Setup(format!("cannot start the ingest thread: {e}")))?;
    {
        let mut view = service.peers.write().unwrap_or_else(|p| p.into_inner());
        view.local_peer_id = peer_id.to_string();
    }
    let inputs = shell::Inputs {
        net: ev_rx,
        done: done_rx,
        stored: service.subscribe(),
        charter: service.watch_charter(),
        certificate: service.watch_certificate(),
        shutdown: shutdown_rx.clone(),
    };
    let shell = shell::Shell {
        core,
        service: service.clone(),
        commands: cmd_tx,
        jobs: job_tx,
        peer_id,
        keys: HashMap::new(),
        ids: HashMap::new(),
        next_key: 1,
        gossip: HashMap::new(),
        next_gossip: 0,
        io: JoinSet::new(),
        gossip_reads: 0,
        own_envelope: None,
        view: shell::ViewRefresh::default(),
    };
    tasks.spawn(async move { ("node shell", shell.run(inputs).await) });
    service.set_replication(Replication::Running);
    let supervisor = tokio::spawn(supervise(tasks, worker, shutdown.clone(), shutdown_rx, failure_tx, service.clone()));
    Ok(RunningNode { peer_id, shutdown, failure, supervisor })
}

/// Waits for shutdown or for the first task to end; a task that ends first stops the node.
async fn supervise(
    mut tasks: JoinSet<(&'static str, Result<(), String>)>,
    worker: std::thread::JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    mut shutdown_rx: watch::Receiver<bool>,
    failure: watch::Sender<Option<String>>,
    service: Arc<Service>,
) {
    let ended = tokio::select! {
        _ = shutdown_rx.changed() => None,
        ended = tasks.join_next() => ended,
    };
    if let Some(ended) = ended {
        let reason = match ended {
            Ok((task, Ok(()))) => format!("the {task} ended"),
            Ok((task, Err(why))) => format!("the {task} stopped: {why}"),
            Err(e) if e.is_panic() => format!("a node task panicked: {e}"),
            Err(e) => format!("a node task was cancelled: {e}"),
        };
        tracing::error!(%reason, "replication stopped; the node stops");
        service.set_replication(Replication::Stopped(reason.clone()));
        let _ = failure.send(Some(reason));
        let _ = shutdown.send(true);
    }
    if tokio::time::timeout(SHUTDOWN_MAX, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
        tracing::error!("node tasks did not stop within {SHUTDOWN_MAX:?}; aborting them");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    // The shell has ended and dropped the job sender, so the worker finishes its current batch
    // and returns; a batch is bounded, but a stuck disk is not waited on for ever.
    let joined = tokio::task::spawn_blocking(move || worker.join());
    if tokio::time::timeout(SHUTDOWN_MAX, joined).await.is_err() {
        tracing::error!("the ingest worker did not stop within {SHUTDOWN_MAX:?}; leaving it");
    }
    if !matches!(service.replication(), Replication::Stopped(_)) {
        service.set_replication(Replication::Off);
    }
}
