//! `/metrics`: the node's Prometheus metrics, in OpenMetrics text for a client that asks for
//! it (Prometheus does) and in the classic Prometheus text format (0.0.4) otherwise.
//!
//! Why metrics are built per scrape from the service's counters rather than kept in a registry
//! all the time: the counters belong to [`crate::service::Counters`], shared with the network
//! engine, and the gauges (lag, store size, feeds) are reads of the store; a scrape reads them
//! all at one instant, and the core keeps no dependency on the metrics crate.
//!
//! Every label set is bounded: reasons and offenses by the node's stable codes, publishers by
//! the feeds the node follows (only publishers its trust knows, at most the keyring's 4096
//! organizations), routes by the router's templates ([`super::metrics_http`]). Each known
//! reason is present at 0 before it first happens, so a `rate()` or an alert sees its first
//! event.
//!
//! Why two formats: prometheus-client writes OpenMetrics, where a counter's family is named
//! without `_total`; tools that read the classic format (`promtool check metrics`, older
//! scrapers) then see a family with no samples and samples with no help. [`classic`] renames
//! the counter families and drops what that format lacks (`# UNIT`, `# EOF`).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::metrics_http::HttpMetrics;
use super::{ApiError, AppState};
use crate::service::Service;

/// Content type of the OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic Prometheus text.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

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

/// A counter family by `reason`: every code of `known` at 0 at least, then what was counted
/// (a code outside `known` still shows).
fn by_reason(
    known: &[&'static str],
    counted: &std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    for reason in known {
        drop(family.get_or_create(&vec![("reason".into(), (*reason).to_owned())]));
    }
    for (reason, n) in counted.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        family.get_or_create(&vec![("reason".into(), (*reason).to_owned())]).inc_by(*n);
    }
    family
}

/// Reasons a node refuses a peer rather than a document (`node/shell.rs`), counted with the
/// refusals: a certificate the charter does not accept, or a request before admission.
const PEER_REFUSAL_CODES: &[&str] = &[
    "peer_cert_malformed",
    "peer_cert_wrong_network",
    "peer_cert_unknown_organization",
    "peer_cert_key_not_authorized",
    "peer_cert_bad_signature",
    "peer_cert_wrong_peer",
    "peer_not_admitted",
];

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The metrics text of a service at this instant, in OpenMetrics.
fn render(service: &Service, http: &HttpMetrics) -> Result<String, ApiError> {
    let mut root = Registry::default();
    process(&mut root);
    let registry = root.sub_registry_with_prefix("entrepot");
    let build = Family::<Labels, Gauge>::default();
    build
        .get_or_create(&vec![
            ("version".into(), env!("CARGO_PKG_VERSION").into()),
            ("protocol".into(), crate::sync::wire::SYNC_PROTOCOL.into()),
            ("store_format".into(), crate::store::STORE_FORMAT_VERSION.to_string()),
        ])
        .set(1);
    registry.register("build_info", "Always 1; the labels say which build runs", build);
    http.register(registry);
    let c = &service.counters;
    counter(registry, "documents_stored", "Documents stored since start", c.stored.load(Ordering::Relaxed));
    counter(
        registry,
        "documents_duplicate",
        "Documents received again since start (already held: nothing stored, no fault)",
        c.duplicates.load(Ordering::Relaxed),
    );
    counter(registry, "forks_detected", "Forks detected since start", c.forks.load(Ordering::Relaxed));
    let known: Vec<&'static str> = crate::ingest::FAULT_CODES.iter().chain(PEER_REFUSAL_CODES).copied().collect();
    registry.register(
        "documents_refused",
        "Documents (and peers) refused since start for a fault, by stable reason code",
        by_reason(&known, &c.refused),
    );
    registry.register(
        "documents_deferred",
        "Documents not stored yet because of their feed position (a gap, a target not held yet; no fault: fetched again), by reason",
        by_reason(crate::ingest::DEFERRED_CODES, &c.deferred),
    );
    directional(
        registry,
        "gossip_messages",
        "Gossip messages",
        c.gossip_messages_in.load(Ordering::Relaxed),
        c.gossip_messages_out.load(Ordering::Relaxed),
    );
    directional(
        registry,
        "sync_requests",
        "Sync requests",
        c.sync_requests_in.load(Ordering::Relaxed),
        c.sync_requests_out.load(Ordering::Relaxed),
    );
    directional(
        registry,
        "sync_bytes",
        "Sync payload bytes",
        c.sync_bytes_in.load(Ordering::Relaxed),
        c.sync_bytes_out.load(Ordering::Relaxed),
    );
    let by_message = Family::<Labels, Counter>::default();
    for (message, as_request, as_response) in c.sync_bytes_out_by_message.written() {
        for (role, n) in [("request", as_request), ("response", as_response)] {
            by_message.get_or_create(&vec![("message".into(), message.into()), ("role".into(), role.into())]).inc_by(n);
        }
    }
    registry.register(
        "sync_bytes_sent_by_message",
        "Sync bytes written (framing included) by message kind and whether it was a request or a response",
        by_message,
    );
    let view = service.peers.read().unwrap_or_else(|p| p.into_inner()).clone();
    gauge(registry, "peers_connected", "Connected peers", clamp(view.peers.len() as u64));
    gauge(registry, "peers_banned", "Peers banned now", clamp(view.banned.len() as u64));
    counter(registry, "peer_bans", "Peers banned since start", view.bans_total);
    counter(
        registry,
        "peers_incompatible",
        "Peers disconnected since start because they speak no sync protocol version in common",
        c.peers_incompatible.load(Ordering::Relaxed),
    );
    let penalties = Family::<Labels, Counter>::default();
    for offense in crate::node::core::penalties::Offense::ALL {
        drop(penalties.get_or_create(&vec![("offense".into(), offense.code().to_owned())]));
    }
    for (offense, n) in &view.penalties {
        penalties.get_or_create(&vec![("offense".into(), offense.clone())]).inc_by(*n);
    }
    registry.register("peer_penalties", "Penalties given to peers since start, by offense", penalties);
    let running = matches!(service.replication(), crate::service::Replication::Running);
    gauge(registry, "replication_running", "1 while replication runs in this process", running as i64);
    let heads = service.store.heads()?;
    let lag = Family::<Labels, Gauge>::default();
    let held = Family::<Labels, Gauge>::default();
    for (publisher, head) in &heads {
        // Every followed feed at 0 lag at least, so that "behind" alerts see each one.
        drop(lag.get_or_create(&vec![("publisher".into(), publisher.to_string())]));
        held.get_or_create(&vec![("publisher".into(), publisher.to_string())]).set(clamp(head.seq.0));
    }
    for l in super::network::lag(service)? {
        lag.get_or_create(&vec![("publisher".into(), l.publisher)]).set(clamp(l.lag));
    }
    registry.register("feed_lag", "Best head announced by a peer minus our head, per publisher", lag);
    registry.register(
        "feed_documents",
        "Entries held in each followed feed (its head position; fork evidence not counted), per publisher",
        held,
    );
    gauge(registry, "feeds", "Feeds held", clamp(heads.len() as u64));
    let forks = service.store.forks()?;
    let unresolved: std::collections::BTreeSet<_> =
        forks.iter().filter(|f| !f.resolved).map(|f| (f.publisher.clone(), f.seq)).collect();
    gauge(registry, "forks_recorded", "Forked positions not resolved by the charter", clamp(unresolved.len() as u64));
    gauge(
        registry,
        "last_arrival",
        "Arrival number of the latest stored document",
        clamp(service.store.last_arrival()),
    );
    let store_bytes = Gauge::<i64>::default();
    store_bytes.set(clamp(service.store.disk_bytes()));
    registry.register_with_unit(
        "store",
        "Bytes the store holds: live SST files plus memtables not flushed yet (whose data the WAL holds)",
        Unit::Bytes,
        store_bytes,
    );
    if let Some((avail, size)) = super::process::filesystem(service.store.path()) {
        let gauge_bytes = |registry: &mut Registry, name: &str, help: &str, v: u64| {
            let g = Gauge::<i64>::default();
            g.set(clamp(v));
            registry.register_with_unit(name, help, Unit::Bytes, g);
        };
        gauge_bytes(registry, "store_filesystem_avail", "Bytes free for the node on the store's filesystem", avail);
        gauge_bytes(registry, "store_filesystem_size", "Size of the store's filesystem", size);
    }
    if let Some(charter) = service.charter_info() {
        gauge(registry, "charter_version", "Charter version in force", i64::from(charter.version));
        gauge(
            registry,
            "charter_expiry_seconds",
            "Seconds until the charter in force expires (negative: expired, no trust extended)",
            charter.seconds_left,
        );
        let state = match charter.state {
            "valid" => 0,
            "expiring_soon" => 1,
            _ => 2,
        };
        gauge(registry, "charter_state", "0 valid, 1 expires within 30 days, 2 expired", state);
    }
    let mut text = String::new();
    encode(&mut text, &root).map_err(|_| ApiError::Store("metrics could not be encoded".into()))?;
    Ok(text)
}

/// The standard `process_*` series (no prefix: dashboards expect these names), where
/// `/proc/self` can be read.
fn process(registry: &mut Registry) {
    let Some(p) = super::process::read() else { return };
    let float_gauge = |v: f64| {
        let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        g.set(v);
        g
    };
    let cpu = Counter::<f64, std::sync::atomic::AtomicU64>::default();
    cpu.inc_by(p.cpu_seconds);
    registry.register_with_unit("process_cpu", "User and system CPU time spent", Unit::Seconds, cpu);
    registry.register_with_unit(
        "process_resident_memory",
        "Resident memory size",
        Unit::Bytes,
        float_gauge(p.resident_bytes as f64),
    );
    registry.register_with_unit(
        "process_virtual_memory",
        "Virtual memory size",
        Unit::Bytes,
        float_gauge(p.virtual_bytes as f64),
    );
    registry.register("process_open_fds", "Open file descriptors", float_gauge(p.open_fds as f64));
    if let Some(max) = p.max_fds {
        registry.register("process_max_fds", "Limit of open file descriptors", float_gauge(max as f64));
    }
    registry.register_with_unit(
        "process_start_time",
        "Start time of the process since the Unix epoch",
        Unit::Seconds,
        float_gauge(p.start_time_seconds),
    );
}

/// OpenMetrics text as the classic Prometheus text format: each counter family's `# HELP`
/// and `# TYPE` take the `_total` name its samples carry, and `# UNIT` and `# EOF` go.
pub fn classic(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Whether the client's `Accept` asks for OpenMetrics (Prometheus's scrapes do).
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let service = state.service.clone();
    let http = state.http.clone();
    let text = tokio::task::spawn_blocking(move || render(&service, &http)).await??;
    Ok(if wants_openmetrics(&headers) {
        ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
    } else {
        ([(header::CONTENT_TYPE, CLASSIC)], classic(&text)).into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_text_names_counter_families_by_their_samples_and_drops_unit_and_eof() {
        let om = "# HELP a_seconds A.\n# TYPE a_seconds counter\n# UNIT a_seconds seconds\na_seconds_total 1.5\n\
                  # HELP b B.\n# TYPE b gauge\nb{x=\"1\"} 2\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP a_seconds_total A.\n# TYPE a_seconds_total counter\na_seconds_total 1.5\n# HELP b B.\n# TYPE b gauge\nb{x=\"1\"} 2\n"
        );
    }
}
