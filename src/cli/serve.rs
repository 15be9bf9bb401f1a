//! `entrepot serve`: the HTTP API and web page over a node directory, without networking.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use entrepot::api::{self, ApiAuth};
use entrepot::config;
use entrepot::service::Service;

pub fn serve(dir: &Path, listen: Option<&str>) -> Result<ExitCode> {
    let node = config::open(dir)?;
    let auth = ApiAuth::from_config(dir, &node.config.http)?;
    let listen = listen.unwrap_or(&node.config.http.listen).to_owned();
    let service = Arc::new(Service::new(node));
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (http.listen); is another process using it?"))?;
        let addr = listener.local_addr().context("reading the listen address")?;
        // Scripts and tests read this line to find the port (with 127.0.0.1:0).
        // The search index follows the store (bundles imported meanwhile are indexed too); a
        // task that stops by itself stops the server, with a non-zero exit.
        let search = entrepot::search::start(service.clone())?;
        let search_failed = search.failed();
        let failure = Arc::new(std::sync::Mutex::new(None));
        let noted = failure.clone();
        let stop = async move {
            tokio::select! {
                () = shutdown_signal() => {}
                reason = search_failed => *noted.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason),
            }
        };
        println!("serving http://{addr}/ (API under /v1); stop with Ctrl-C");
        api::serve(service, listener, auth, stop).await.context("serving HTTP")?;
        search.shutdown().await;
        if let Some(reason) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            eprintln!("entrepot: {reason}");
            return Ok(ExitCode::FAILURE);
        }
        println!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, only SIGTERM stops the server.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
