//! `/v1/analytics`: counts of held documents over time by type, publisher and chapter, and the
//! impact of an edition change by chapter (subheadings split, merged, moved, deleted, created,
//! re-worded) with the members' transposition progress beside it.
//!
//! Both read held documents within the publish lookups' bound (`LOOKUP_PAGES_MAX` pages of
//! 1,000) and say `truncated` when it was reached.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::params;
use super::transposition::{progress, ProgressParams, ProgressView};
use super::{ApiError, AppState};
use crate::publish::{walk_query, LOOKUP_PAGES_MAX};
use crate::service::Service;
use crate::store::Query as StoreQuery;
use crate::transposition::{classify, load_basis, BasisError, Relationship, TariffLine};

/// Documents by year of issue, and by type, publisher and chapter within each year.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountsView {
    /// Year → count.
    #[schema(value_type = Object)]
    pub by_year: BTreeMap<i32, usize>,
    /// Year → type → count.
    #[schema(value_type = Object)]
    pub by_type: BTreeMap<i32, BTreeMap<String, usize>>,
    /// Year → publisher → count.
    #[schema(value_type = Object)]
    pub by_publisher: BTreeMap<i32, BTreeMap<String, usize>>,
    /// Year → HS chapter (of any subject) → count.
    #[schema(value_type = Object)]
    pub by_chapter: BTreeMap<i32, BTreeMap<String, usize>>,
    pub documents: usize,
    /// Whether the bound on documents read was reached.
    pub truncated: bool,
}

fn counts_view(service: &Service) -> Result<CountsView, ApiError> {
    let mut v = CountsView {
        by_year: BTreeMap::new(),
        by_type: BTreeMap::new(),
        by_publisher: BTreeMap::new(),
        by_chapter: BTreeMap::new(),
        documents: 0,
        truncated: false,
    };
    walk_query(&service.store, StoreQuery::default(), |doc| {
        let h = &doc.header;
        let year = chrono::DateTime::from_timestamp_millis(h.issued_at_ms).map_or(0, |t| chrono::Datelike::year(&t));
        v.documents += 1;
        *v.by_year.entry(year).or_default() += 1;
        *v.by_type.entry(year).or_default().entry(h.doc_type.to_string()).or_default() += 1;
        *v.by_publisher.entry(year).or_default().entry(h.publisher.to_string()).or_default() += 1;
        let chapters: BTreeSet<&str> = h.subjects.iter().filter_map(|s| s.code.as_str().get(..2)).collect();
        for ch in chapters {
            *v.by_chapter.entry(year).or_default().entry(ch.to_owned()).or_default() += 1;
        }
        Ok(false)
    })?;
    v.truncated = v.documents >= LOOKUP_PAGES_MAX * 1000;
    Ok(v)
}

#[utoipa::path(
    get, path = "/v1/analytics/counts", tag = "analytics",
    responses((status = 200, description = "Held documents by year of issue, type, publisher and chapter", body = CountsView))
)]
/// Counts of held documents over time, by type, publisher and HS chapter.
pub(crate) async fn counts(State(state): State<AppState>) -> Result<Json<CountsView>, ApiError> {
    let service = state.service.clone();
    Ok(Json(tokio::task::spawn_blocking(move || counts_view(&service)).await??))
}

/// One chapter's change between two editions.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ChapterImpact {
    pub chapter: String,
    pub split: usize,
    pub merged: usize,
    pub moved: usize,
    pub deleted: usize,
    pub description_changed: usize,
    /// Subheadings of the new edition that no old subheading keeps its code in.
    pub created: usize,
}

/// An edition change by chapter, and who has transposed it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpactView {
    pub from: String,
    pub to: String,
    pub chapters: Vec<ChapterImpact>,
    pub transposition: ProgressView,
}

fn impact_view(service: &Service, p: &ProgressParams) -> Result<ImpactView, ApiError> {
    let (from, to) = (params::edition(&p.from)?, params::edition(&p.to)?);
    let basis = load_basis(&service.store, from, to).map_err(|e| match e {
        BasisError::Store(e) => e.into(),
        BasisError::Order { .. } => ApiError::BadRequest(e.to_string()),
        other => ApiError::Absent { code: "basis_not_held", message: other.to_string() },
    })?;
    // Every old subheading, as if it were a national line of its own.
    let mut old: BTreeSet<String> = basis.old_codes.keys().cloned().collect();
    old.extend(basis.forward.keys().cloned());
    let lines: Vec<TariffLine> =
        old.iter().map(|c| TariffLine { code: format!("{c}00"), description: String::new() }).collect();
    let mut chapters: BTreeMap<String, ChapterImpact> = BTreeMap::new();
    fn entry<'a>(chapters: &'a mut BTreeMap<String, ChapterImpact>, ch: &str) -> &'a mut ChapterImpact {
        chapters
            .entry(ch.to_owned())
            .or_insert_with(|| ChapterImpact { chapter: ch.to_owned(), ..ChapterImpact::default() })
    }
    for r in classify(&basis, &lines) {
        let c = entry(&mut chapters, &r.old[..2]);
        match r.relationship {
            Relationship::Split => c.split += 1,
            Relationship::Merged => c.merged += 1,
            Relationship::Moved => c.moved += 1,
            Relationship::Deleted => c.deleted += 1,
            Relationship::DescriptionChanged => c.description_changed += 1,
            Relationship::Unchanged => {}
        }
    }
    let mut new: BTreeSet<String> = basis.new_codes.keys().cloned().collect();
    new.extend(basis.backward.keys().cloned());
    for code in new.iter().filter(|c| !old.contains(*c)) {
        entry(&mut chapters, &code[..2]).created += 1;
    }
    let transposition = progress(service, from, to)?;
    Ok(ImpactView {
        from: from.to_string(),
        to: to.to_string(),
        chapters: chapters.into_values().collect(),
        transposition,
    })
}

#[utoipa::path(
    get, path = "/v1/analytics/impact", tag = "analytics",
    params(ProgressParams),
    responses(
        (status = 200, description = "Subheadings split, merged, moved, deleted, re-worded and created, by chapter, \
            from the held nomenclatures, amendment sets and correlation tables; and the members' transposition progress", body = ImpactView),
        (status = 400, description = "Malformed editions, or `from` not older than `to`", body = ErrorBody),
        (status = 404, description = "No amendment set or correlation table between the editions is held (`basis_not_held`)", body = ErrorBody),
    )
)]
/// The impact of an edition change by chapter, with transposition progress.
pub(crate) async fn impact(
    State(state): State<AppState>,
    q: Result<Query<ProgressParams>, QueryRejection>,
) -> Result<Json<ImpactView>, ApiError> {
    let p = params::query(q)?;
    let service = state.service.clone();
    Ok(Json(tokio::task::spawn_blocking(move || impact_view(&service, &p)).await??))
}
