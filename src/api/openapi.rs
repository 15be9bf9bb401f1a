//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa).
//!
//! Why generated and also checked in: generated, it cannot drift from the code; checked in
//! (`docs/openapi.json`), it can be read and diffed in review without running a node. The test
//! `openapi_file_is_current` fails when the two differ (regenerate with
//! `ENTREPOT_UPDATE_OPENAPI=1 cargo test --release --test api`).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    admin, analytics, charter, documents, error, hs, lifecycle, network, search, stream, tlog, transposition, views,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "entrepot node API",
        description = "Signed customs and trade documents held by an entrepot node: query, read, verify, publish, \
                       follow live, and track HS codes across editions. Errors are JSON: {\"error\": {\"code\", \"message\"}}. \
                       Reads are open unless the node sets http.read_requires_token; publishing and the sealed payloads of enforcement \
                       notices always need the bearer token.",
        license(name = "Apache-2.0")
    ),
    paths(
        documents::list,
        documents::get_one,
        documents::raw,
        documents::payload,
        documents::publish,
        network::feeds,
        network::peers,
        network::forks,
        stream::stream,
        hs::tracker,
        hs::changes,
        hs::editions,
        transposition::workbench_route,
        transposition::progress_route,
        analytics::counts,
        analytics::impact,
        search::search,
        search::similar,
        search::divergences,
        search::rebuild,
        admin::backup,
        charter::show,
        charter::organizations,
        charter::apply,
        tlog::inclusion,
        tlog::consistency,
        tlog::receipts,
        tlog::checkpoint_forks,
        tlog::checkpoint,
    ),
    components(schemas(
        error::ErrorBody,
        admin::BackupRequest,
        charter::CharterView,
        charter::MemberView,
        charter::OrganizationView,
        charter::OrganizationList,
        lifecycle::LifecycleEvent,
        lifecycle::LifecycleState,
        charter::CharterAppliedView,
        error::ErrorDetail,
        views::DocumentSummary,
        views::DocumentList,
        views::DocumentView,
        views::Verification,
        views::Link,
        views::ChainEntry,
        views::PublishedView,
        views::SealedPayloadView,
        views::IntegrityFlag,
        views::FeedHead,
        views::FeedList,
        views::PeerEntry,
        views::BanEntry,
        views::LagEntry,
        views::PeersView,
        views::ForkEntry,
        views::ForkList,
        views::StreamEvent,
        views::SignedBytes,
        views::InclusionView,
        views::ConsistencyView,
        views::ReceiptEntry,
        views::ReceiptsView,
        views::CheckpointForkEntry,
        views::CheckpointForkList,
        hs::HsView,
        hs::NomenclatureEntry,
        hs::AmendmentTouch,
        hs::Operation,
        hs::CorrelationRow,
        hs::ChangesView,
        hs::EditionsView,
        transposition::LineView,
        transposition::WorkbenchView,
        transposition::MemberProgress,
        transposition::ProgressView,
        analytics::CountsView,
        analytics::ChapterImpact,
        analytics::ImpactView,
        search::SearchResult,
        search::SearchView,
        search::Classified,
        search::SimilarEntry,
        search::SimilarView,
        search::Divergence,
        search::DivergencesView,
        search::RebuildView,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "documents", description = "Query, read, verify and publish documents"),
        (name = "network", description = "Feeds, peers, lag and forks"),
        (name = "stream", description = "Live Server-Sent Events of newly stored documents"),
        (name = "hs", description = "The HS tracker: codes across editions"),
        (name = "proofs", description = "Transparency log: inclusion and consistency proofs, receipts, checkpoints, C2SP tiles"),
        (name = "analytics", description = "Counts over time and the impact of edition changes"),
        (name = "search", description = "Full-text search, similar classifications and divergences between administrations"),
        (name = "transposition", description = "National tariffs moved to a new edition: the workbench and members' progress"),
    )
)]
struct ApiDoc;

/// The OpenAPI document as pretty JSON with a final newline (the checked-in form).
pub fn openapi_json() -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    super::openapi_tighten::tighten(&mut doc);
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// `GET /v1/openapi.json`.
pub async fn serve_openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}
