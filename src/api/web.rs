//! The web page at `/`: one HTML file, one stylesheet and one script, embedded in the binary.
//!
//! Why no front-end build: a replica in an air-gapped data centre must serve its page from
//! the binary alone, and reviewers read the page's code as they read the Rust. The script
//! reads only the public `/v1` API with `fetch`, so the page can do nothing a client of the API
//! cannot. View state lives in the URL query (`/?q=drone&type=…`, `/?doc=ID`, `/?hs=HS2022/8806`,
//! `/?view=network`), so every view can be bookmarked, shared and loaded directly.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

const INDEX_HTML: &str = include_str!("web/index.html");
const APP_CSS: &str = include_str!("web/app.css");

/// The scripts, by file name under `/assets/`, in the order index.html loads them: app.js
/// (helpers, live stream, router), one file per view, and the transposition view and
/// held-edition menus (issue 14).
const SCRIPTS: [(&str, &str); 7] = [
    ("app.js", include_str!("web/app.js")),
    ("bodies.js", include_str!("web/bodies.js")),
    ("documents.js", include_str!("web/documents.js")),
    ("hs.js", include_str!("web/hs.js")),
    ("network.js", include_str!("web/network.js")),
    ("transposition.js", include_str!("web/transposition.js")),
    ("search.js", include_str!("web/search.js")),
];

/// Security headers for the page: only our own scripts and styles, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// The page's routes.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new().route("/", get(index)).route("/assets/app.css", get(css));
    for (name, body) in SCRIPTS {
        router = router.route(
            &format!("/assets/{name}"),
            get(move || async move { asset("text/javascript; charset=utf-8", body) }),
        );
    }
    router
}
