//! `entrepot run`: the node. Replicates over libp2p and serves the HTTP API and web page, until
//! SIGINT or SIGTERM, then stops both and closes the store.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use entrepot::api::{self, ApiAuth};
use entrepot::config;
use entrepot::service::Service;

use super::serve::shutdown_signal;

pub fn run(dir: &Path) -> Result<ExitCode> {
    init_logging();
    let node = config::open(dir)?;
    let auth = ApiAuth::from_config(dir, &node.config.http)?;
    let config = node.config.clone();
    let service = Arc::new(Service::new(node));
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.http.listen).await.with_context(|| {
            format!("cannot listen on {} (http.listen); is another process using it?", config.http.listen)
        })?;
        let http = listener.local_addr().context("reading the HTTP address")?;
        let running = entrepot::node::start(service.clone(), dir, &config).await?;
        let search = entrepot::search::start(service.clone())?;
        // Listening before the node says it runs: a SIGHUP that came before would end it.
        let hangups = hangup_signals();
        let reloads = tokio::spawn(reload_certificate_on_hangup(service.clone(), running.peer_id.to_string(), hangups));
        // Scripts and tests read these lines to find the node (ports may be 0 in the config).
        println!("peer {}", running.peer_id);
        if !config.p2p.listen.is_empty() {
            // Listening starts asynchronously; wait briefly so the printed addresses are real.
            for _ in 0..250 {
                let addrs = service.peers.read().unwrap_or_else(|p| p.into_inner()).listen_addresses.clone();
                if !addrs.is_empty() {
                    for a in addrs {
                        println!("p2p {a}");
                    }
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        println!("serving http://{http}/ (API under /v1); stop with Ctrl-C");
        tracing::info!(peer = %running.peer_id, network = %config.network, %http, "node running");
        // A node task that stops by itself (a store failure, a panic) stops the process too,
        // with a non-zero exit: a supervisor restarts it, and nobody mistakes it for a replica.
        let failed = running.failed();
        let search_failed = search.failed();
        let failure = std::sync::Arc::new(std::sync::Mutex::new(None));
        let noted = failure.clone();
        let stop = async move {
            tokio::select! {
                () = shutdown_signal() => {}
                reason = failed => *noted.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason),
                reason = search_failed => *noted.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason),
            }
        };
        let served = api::serve(service.clone(), listener, auth, stop).await;
        tracing::info!("shutting down");
        reloads.abort();
        running.shutdown().await;
        search.shutdown().await;
        served.context("serving HTTP")?;
        if let Some(reason) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            eprintln!("entrepot: the node stopped: {reason}");
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

/// SIGHUP, caught from now on (its default action would end the process).
#[cfg(unix)]
fn hangup_signals() -> Hangups {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; restart the node to load a new certificate");
            None
        }
    }
}

/// No SIGHUP off Unix: a new certificate takes a restart.
#[cfg(not(unix))]
fn hangup_signals() -> Hangups {
    None
}

/// Re-reads the node's certificate file on each SIGHUP (`systemctl reload`): a node certified
/// again (a new key, a new organization key) shows the new certificate without a restart. A
/// file that is missing or not valid changes nothing and is logged as an error.
async fn reload_certificate_on_hangup(service: Arc<Service>, peer_id: String, hangups: Hangups) {
    #[cfg(unix)]
    if let Some(mut hangups) = hangups {
        while hangups.recv().await.is_some() {
            match service.reload_certificate(&peer_id) {
                Ok(cert) => tracing::info!(
                    organization = %cert.organization,
                    issued_at_ms = cert.issued_at_ms,
                    "SIGHUP: the node certificate was re-read and is in force"
                ),
                Err(e) => tracing::error!(error = %e, "SIGHUP: the node certificate was not replaced"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (service, peer_id, hangups);
}

/// Structured logs to stderr; `RUST_LOG` overrides the default level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=warn,libp2p_kad=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
