//! Operations: `/healthz` (the process answers), `/readyz` (the store opens and answers) and
//! `/metrics` (Prometheus / OpenMetrics text).
//!
//! Why metrics are built per scrape from the service's counters rather than kept in a registry
//! all the time: the counters belong to [`crate::service::Counters`], shared with the network
//! engine, and the gauges (lag, store size, feeds) are reads of the store; a scrape reads them
//! all at one instant, and the core keeps no dependency on the metrics crate.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;

use super::{ApiError, AppState};
use crate::service::Service;

/// The process is up (no store access: a liveness probe must not fail on a slow disk).
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The store opens and answers a read, and replication, where this process runs it, runs.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if let crate::service::Replication::Stopped(why) = state.service.replication() {
        return Err(ApiError::NotReplicating(why));
    }
    let service = state.service.clone();
    let feeds = tokio::task::spawn_blocking(move || service.store.heads().map(|h| h.len()))
        .await?
        .map_err(|e| ApiError::Store(format!("store not ready: {e}")))?;
    Ok(Json(json!({ "status": "ready", "feeds": feeds, "network": state.service.network_name })))
}

type Labels = Vec<(String, String)>;

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
}

fn directional(registry: &mut Registry, name: &str, help: &str, inbound: u64, outbound: u64) {
    let family = Family::<Labels, Counter>::default();
    family.get_or_create(&vec![("direction".into(), "in".into())]).inc_by(inbound);
    family.get_or_create(&vec![("direction".into(), "out".into())]).inc_by(outbound);
    registry.register(name, help, family);
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The metrics text of a service at this instant.
fn render(service: &Service) -> Result<String, ApiError> {
    let c = &service.counters;
    let mut registry = Registry::with_prefix("entrepot");
    counter(&mut registry, "documents_stored", "Documents stored since start", c.stored.load(Ordering::Relaxed));
    counter(
        &mut registry,
        "documents_duplicate",
        "Documents received again since start (nothing stored)",
        c.duplicates.load(Ordering::Relaxed),
    );
    counter(&mut registry, "forks_detected", "Forks detected since start", c.forks.load(Ordering::Relaxed));
    let refused = Family::<Labels, Counter>::default();
    for (reason, n) in c.refused.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        refused.get_or_create(&vec![("reason".into(), (*reason).to_owned())]).inc_by(*n);
    }
    registry.register("documents_refused", "Documents refused since start, by stable reason code", refused);
    directional(
        &mut registry,
        "gossip_messages",
        "Gossip messages",
        c.gossip_messages_in.load(Ordering::Relaxed),
        c.gossip_messages_out.load(Ordering::Relaxed),
    );
    directional(
        &mut registry,
        "sync_requests",
        "Sync requests",
        c.sync_requests_in.load(Ordering::Relaxed),
        c.sync_requests_out.load(Ordering::Relaxed),
    );
    directional(
        &mut registry,
        "sync_bytes",
        "Sync payload bytes",
        c.sync_bytes_in.load(Ordering::Relaxed),
        c.sync_bytes_out.load(Ordering::Relaxed),
    );
    let view = service.peers.read().unwrap_or_else(|p| p.into_inner()).clone();
    gauge(&mut registry, "peers_connected", "Connected peers", clamp(view.peers.len() as u64));
    gauge(&mut registry, "peers_banned", "Peers banned now", clamp(view.banned.len() as u64));
    counter(&mut registry, "peer_bans", "Peers banned since start", view.bans_total);
    counter(
        &mut registry,
        "peers_incompatible",
        "Peers disconnected since start because they speak no sync protocol version in common",
        c.peers_incompatible.load(Ordering::Relaxed),
    );
    let penalties = Family::<Labels, Counter>::default();
    for (offense, n) in &view.penalties {
        penalties.get_or_create(&vec![("offense".into(), offense.clone())]).inc_by(*n);
    }
    registry.register("peer_penalties", "Penalties given to peers since start, by offense", penalties);
    let running = matches!(service.replication(), crate::service::Replication::Running);
    gauge(&mut registry, "replication_running", "1 while replication runs in this process", running as i64);
    let lag = Family::<Labels, Gauge>::default();
    for l in super::network::lag(service)? {
        lag.get_or_create(&vec![("publisher".into(), l.publisher)]).set(clamp(l.lag));
    }
    registry.register("feed_lag", "Best head announced by a peer minus our head, per publisher", lag);
    gauge(&mut registry, "feeds", "Feeds held", clamp(service.store.heads()?.len() as u64));
    let forks = service.store.forks()?;
    let unresolved: std::collections::BTreeSet<_> =
        forks.iter().filter(|f| !f.resolved).map(|f| (f.publisher.clone(), f.seq)).collect();
    gauge(
        &mut registry,
        "forks_recorded",
        "Forked positions not resolved by the charter",
        clamp(unresolved.len() as u64),
    );
    gauge(
        &mut registry,
        "last_arrival",
        "Arrival number of the latest stored document",
        clamp(service.store.last_arrival()),
    );
    gauge(
        &mut registry,
        "store_bytes",
        "Approximate bytes of the store on disk (SST files)",
        clamp(service.store.disk_bytes()),
    );
    if let Some(charter) = service.charter_info() {
        gauge(&mut registry, "charter_version", "Charter version in force", i64::from(charter.version));
        gauge(
            &mut registry,
            "charter_expiry_seconds",
            "Seconds until the charter in force expires (negative: expired, no trust extended)",
            charter.seconds_left,
        );
        let state = match charter.state {
            "valid" => 0,
            "expiring_soon" => 1,
            _ => 2,
        };
        gauge(&mut registry, "charter_state", "0 valid, 1 expires within 30 days, 2 expired", state);
    }
    let mut text = String::new();
    encode(&mut text, &registry).map_err(|_| ApiError::Store("metrics could not be encoded".into()))?;
    Ok(text)
}

/// Prometheus metrics (OpenMetrics text format).
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let service = state.service.clone();
    let text = tokio::task::spawn_blocking(move || render(&service)).await??;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}
