//! HTTP request metrics: a count by route template, method and status class, and a latency
//! histogram by route, kept by a middleware around every route.
//!
//! Why the route *template* (`/v1/documents/{id}`) and not the path: a label per raw path
//! would make one series per document id a client asks for. Every label here has a bounded
//! set of values: routes are the router's templates (a request no route matches is
//! `unmatched`), methods the nine of HTTP plus `other`, statuses five classes.
//!
//! Unlike the node's counters, these live in the API (an HTTP concern, with nothing to share
//! with the network engine) as prometheus-client families, registered into each scrape's
//! registry.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::AppState;

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The route label of a request no route matched (a 404 for any path).
pub const UNMATCHED: &str = "unmatched";
/// Latency buckets, in seconds: 1 ms to 10 s (a tracker answer over a large store is the slow
/// end; an event stream is timed to its response head, not its end).
const LATENCY_BUCKETS_S: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

/// The request counters and latency histograms of one router.
#[derive(Clone)]
pub(crate) struct HttpMetrics {
    requests: Family<Labels, Counter>,
    latency: HistogramFamily,
}

impl HttpMetrics {
    /// Families with every route the OpenAPI document lists present at 0 (each of its methods,
    /// every status class but 1xx and 3xx, which the API does not answer), so that a rate
    /// of 5xx answers exists before the first one.
    pub fn new() -> HttpMetrics {
        let metrics = HttpMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        };
        let doc: serde_json::Value = serde_json::from_str(&super::openapi_json()).unwrap_or_default();
        for (route, ops) in doc["paths"].as_object().into_iter().flatten() {
            for method in ops.as_object().into_iter().flatten().map(|(m, _)| m.to_ascii_uppercase()) {
                for status in ["2xx", "4xx", "5xx"] {
                    drop(metrics.requests.get_or_create(&labels(route, &method, status)));
                }
            }
            drop(metrics.latency.get_or_create(&vec![("route".into(), route.clone())]));
        }
        metrics
    }

    fn observe(&self, route: &str, method: &Method, status: StatusCode, seconds: f64) {
        self.requests.get_or_create(&labels(route, method_label(method), status_class(status))).inc();
        self.latency.get_or_create(&vec![("route".into(), route.to_owned())]).observe(seconds);
    }

    /// Adds both families to a scrape's registry (under its `entrepot_` prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status class",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response head, by route template",
            Unit::Seconds,
            self.latency.clone(),
        );
    }
}

fn labels(route: &str, method: &str, status: &str) -> Labels {
    vec![("route".into(), route.to_owned()), ("method".into(), method.to_owned()), ("status".into(), status.to_owned())]
}

/// The method as a bounded label: one of HTTP's nine, else `other` (an extension method).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"];
    KNOWN.iter().copied().find(|m| *m == method.as_str()).unwrap_or("other")
}

/// The status as a bounded label: its class.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The route template a request was routed to; [`UNMATCHED`] for a fallback (a nested
/// router's fallback has a template made of axum's private tail parameter: also unmatched).
fn route_of(request: &Request) -> String {
    match request.extensions().get::<MatchedPath>() {
        Some(p) if !p.as_str().contains("__private__") => p.as_str().to_owned(),
        _ => UNMATCHED.to_owned(),
    }
}

/// The middleware: times and counts every request, whatever answered it (a handler, the
/// rate limit, a rejection).
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = route_of(&request);
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    state.http.observe(&route, &method, response.status(), start.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_statuses_map_to_bounded_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::CONNECT), "CONNECT");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        let m = HttpMetrics::new();
        m.observe("/healthz", &Method::GET, StatusCode::OK, 0.002);
        m.observe("/healthz", &Method::GET, StatusCode::SERVICE_UNAVAILABLE, 0.002);
        m.observe(UNMATCHED, &Method::from_bytes(b"BREW").unwrap(), StatusCode::NOT_FOUND, 0.002);
        assert_eq!(m.requests.get_or_create(&labels("/healthz", "GET", "2xx")).get(), 1);
        assert_eq!(m.requests.get_or_create(&labels("/healthz", "GET", "5xx")).get(), 1);
        assert_eq!(m.requests.get_or_create(&labels(UNMATCHED, "other", "4xx")).get(), 1);
    }
}
