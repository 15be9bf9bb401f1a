//! `/metrics` as Prometheus and an operator read it: the store's size before any flush,
//! refusals that mean a fault kept apart from documents that are only early, every known
//! series present at 0, HTTP, process and build series, and `promtool check metrics` clean.

use entrepot::hsdata::HsData;
use entrepot::service::Source;

use super::common::{feed, key, opinion};
use super::http::{request, NodeOptions, TestServer};
use super::seed::WCO_KEY;

/// The value of the sample `series` (name and labels exactly as written) in a metrics text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn wco_node(envelopes: Vec<Vec<u8>>) -> TestServer {
    let wco = key(WCO_KEY);
    TestServer::start(&NodeOptions { org: None, trust: &[("WCO", &wco)], read_requires_token: false }, envelopes)
}

#[test]
fn store_bytes_counts_documents_not_flushed_yet() {
    // 300 documents stay in the memtables (64 MiB write buffers): no SST file exists yet.
    let drafts: Vec<_> = (0..300).map(|n| opinion(n, "8806.22")).collect();
    let envelopes = feed(&drafts, "WCO", &key(WCO_KEY));
    let envelope_bytes: usize = envelopes.iter().map(Vec::len).sum();
    let srv = wco_node(envelopes);
    let text = srv.get("/metrics").text();
    let bytes = sample(&text, "entrepot_store_bytes").unwrap_or_else(|| panic!("no store_bytes in:\n{text}"));
    // At least the envelopes themselves; at most what a few memtable arenas per column family
    // allocate on top of the indexes (far below the 64 MiB write buffer of each).
    assert!(bytes >= envelope_bytes as f64, "store_bytes {bytes} < {envelope_bytes} bytes of envelopes");
    assert!(
        bytes < (envelope_bytes * 20 + 32 * 1024 * 1024) as f64,
        "store_bytes {bytes} for {envelope_bytes} bytes of envelopes"
    );
    assert_eq!(sample(&text, "entrepot_feed_documents{publisher=\"WCO\"}"), Some(300.0), "{text}");
}

#[test]
fn a_gap_is_deferred_not_refused_and_every_known_series_shows_zero_before_it_happens() {
    let drafts: Vec<_> = (0..5).map(|n| opinion(n, "8806.22")).collect();
    let mut entries = feed(&drafts, "WCO", &key(WCO_KEY));
    let (mut fourth, fifth) = (entries.remove(3), entries.remove(3));
    let srv = wco_node(entries);
    let text = srv.get("/metrics").text();
    for zero in [
        "entrepot_documents_refused_total{reason=\"bad_signature\"}",
        "entrepot_documents_refused_total{reason=\"schema_invalid\"}",
        "entrepot_documents_refused_total{reason=\"peer_cert_bad_signature\"}",
        "entrepot_documents_deferred_total{reason=\"feed_gap\"}",
        "entrepot_documents_deferred_total{reason=\"lifecycle_target_missing\"}",
        "entrepot_peer_penalties_total{offense=\"invalid_gossip\"}",
        "entrepot_feed_lag{publisher=\"WCO\"}",
        "entrepot_http_requests_total{route=\"/v1/documents\",method=\"POST\",status=\"5xx\"}",
        "entrepot_http_request_duration_seconds_count{route=\"/v1/hs/{edition}/{code}\"}",
    ] {
        assert_eq!(sample(&text, zero), Some(0.0), "'{zero}' is not at 0 in:\n{text}");
    }
    assert_eq!(sample(&text, "entrepot_feed_documents{publisher=\"WCO\"}"), Some(3.0));

    // WCO #5 while the node holds #3: early, not wrong (sent twice). A tampered #4 is wrong.
    let last = fourth.len() - 1;
    fourth[last] ^= 1;
    let results = srv.service.ingest(vec![fifth.clone(), fifth, fourth], Source::Sync).unwrap();
    assert!(results.iter().all(Result::is_err), "{results:?}");
    let text = srv.get("/metrics").text();
    assert_eq!(sample(&text, "entrepot_documents_deferred_total{reason=\"feed_gap\"}"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "entrepot_documents_refused_total{reason=\"feed_gap\"}"), None, "{text}");
    assert_eq!(sample(&text, "entrepot_documents_refused_total{reason=\"bad_signature\"}"), Some(1.0), "{text}");
}

#[test]
fn http_requests_are_counted_by_route_template_and_timed() {
    let srv = wco_node(Vec::new());
    for path in ["/v1/documents/00", "/v1/documents/11", "/v1/feeds", "/no/such/path", "/healthz"] {
        srv.get(path);
    }
    request(srv.addr, "BREW", "/v1/feeds", &[], &[]);
    let text = srv.get("/metrics").text();
    for (series, n) in [
        // Two ids, one template (both 400: not an id).
        ("entrepot_http_requests_total{route=\"/v1/documents/{id}\",method=\"GET\",status=\"4xx\"}", 2.0),
        ("entrepot_http_requests_total{route=\"/v1/feeds\",method=\"GET\",status=\"2xx\"}", 1.0),
        ("entrepot_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"4xx\"}", 1.0),
        ("entrepot_http_requests_total{route=\"/v1/feeds\",method=\"other\",status=\"4xx\"}", 1.0),
        ("entrepot_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"2xx\"}", 1.0),
        ("entrepot_http_request_duration_seconds_count{route=\"/v1/documents/{id}\"}", 2.0),
        ("entrepot_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/v1/feeds\"}", 2.0),
    ] {
        assert_eq!(sample(&text, series), Some(n), "'{series}' in:\n{text}");
    }
    assert!(!text.contains("/no/such/path") && !text.contains("/v1/documents/00"), "a raw path became a label");
}

#[test]
fn build_and_process_series_are_exposed() {
    let srv = wco_node(Vec::new());
    let text = srv.get("/metrics").text();
    let build = format!(
        "entrepot_build_info{{version=\"{}\",protocol=\"{}\",store_format=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        entrepot::sync::wire::SYNC_PROTOCOL,
        entrepot::store::STORE_FORMAT_VERSION
    );
    assert_eq!(sample(&text, &build), Some(1.0), "{text}");
    if cfg!(target_os = "linux") {
        let rss = sample(&text, "process_resident_memory_bytes").expect("process_resident_memory_bytes");
        assert!(rss > 1e6, "{rss}");
        assert!(sample(&text, "process_open_fds").is_some_and(|n| n >= 3.0));
        assert!(sample(&text, "process_cpu_seconds_total").is_some_and(|s| s > 0.0));
        let start = sample(&text, "process_start_time_seconds").unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(start <= now + 1.0 && start > now - 86_400.0, "start {start}, now {now}");
        let avail = sample(&text, "entrepot_store_filesystem_avail_bytes").expect("store_filesystem_avail_bytes");
        let size = sample(&text, "entrepot_store_filesystem_size_bytes").expect("store_filesystem_size_bytes");
        assert!(size > 0.0 && avail <= size, "{avail} of {size}");
    }
}

#[test]
fn prometheus_gets_openmetrics_and_other_clients_the_classic_text() {
    let srv = wco_node(Vec::new());
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let om = request(srv.addr, "GET", "/metrics", &[("Accept", accept)], &[]);
    assert!(om.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let om = om.text();
    assert!(om.trim_end().ends_with("# EOF") && om.contains("# TYPE entrepot_documents_stored counter"), "{om}");
    let classic = srv.get("/metrics");
    assert!(classic.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let classic = classic.text();
    assert!(
        !classic.contains("# EOF") && classic.contains("# TYPE entrepot_documents_stored_total counter"),
        "{classic}"
    );
}

/// `promtool check metrics` on a live node's `/metrics`, after traffic of every kind.
#[test]
fn promtool_check_metrics_passes_on_a_live_node() {
    let promtool = std::path::Path::new("/usr/bin/promtool");
    let promtool = if promtool.exists() { promtool.to_owned() } else { which("promtool") };
    if !promtool.exists() {
        assert!(std::env::var_os("CI").is_none(), "CI is set and promtool is missing (apt-get install prometheus)");
        eprintln!("skipping: promtool is not installed (Debian: apt-get install prometheus)");
        return;
    }
    let (srv, _) = super::start_seeded(&HsData::excerpt(), false);
    for path in ["/v1/documents", "/v1/feeds", "/v1/peers", "/nope", "/v1/documents/zz"] {
        srv.get(path);
    }
    let text = srv.get("/metrics").text();
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}\non:\n{text}",
        out.status
    );
}

fn which(name: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.exists()).unwrap_or_default()
}
