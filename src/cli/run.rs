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
        let failure = std::sync::Arc::new(std::sync::Mutex::new(None));
        let noted = failure.clone();
        let stop = async move {
            tokio::select! {
                () = shutdown_signal() => {}
                reason = failed => *noted.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason),
            }
        };
        let served = api::serve(service.clone(), listener, auth, stop).await;
        tracing::info!("shutting down");
        running.shutdown().await;
        served.context("serving HTTP")?;
        if let Some(reason) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            eprintln!("entrepot: the node stopped: {reason}");
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Structured logs to stderr; `RUST_LOG` overrides the default level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=warn,libp2p_kad=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
