//! `POST /search`, and [`search_text`], which the Tally webhook shares: admission (429), memory
//! pressure (503), one compute permit, then embed + scan on a blocking thread. A remote backend
//! (PostgreSQL) gets the permit for the embedding only, not for its round trip.

use std::time::Instant;

use axum::extract::State;
use axum::Json;

use super::error::{ApiError, ApiJson, ErrorBody, JsonBodyErrors};
use super::AppState;
use crate::search::{SearchError, SearchParams, SearchRequest, SearchResponse};

/// Semantic search over the loaded corpus.
#[utoipa::path(post, path = "/search", tag = "search", request_body = SearchRequest, responses(
        (status = 200, description = "The best documents, best first.", body = SearchResponse),
        JsonBodyErrors,
        (status = 503, description = "Memory pressure (`overloaded`, Retry-After), no model loaded (`unavailable`), no corpus loaded (`no_corpus`), or search unavailable (`search_unavailable`, Retry-After: the database is down, or the index was found damaged after start).", body = ErrorBody),
))]
pub async fn search(State(state): State<AppState>, ApiJson(req): ApiJson<SearchRequest>) -> Result<Json<SearchResponse>, ApiError> {
    let (query, params) = req.into_parts();
    Ok(Json(search_text(&state, query, params).await?))
}

/// Searches the loaded corpus with `text`; a long text is chunked like a document and its
/// chunks' matches merged (best score per document).
pub(crate) async fn search_text(state: &AppState, text: String, req: SearchParams) -> Result<SearchResponse, ApiError> {
    req.validate().map_err(map_error)?;
    if text.trim().is_empty() {
        return Err(map_error(SearchError::EmptyQuery));
    }
    let max = state.limits.max_text_chars;
    if text.len() > max && text.chars().count() > max {
        return Err(ApiError::TooLarge(format!("query has {} characters, at most {max} allowed", text.chars().count())));
    }
    let corpus = state.corpus.clone().ok_or(ApiError::NoCorpus)?;
    let model = state.model.as_ref().map_err(|e| ApiError::ModelUnavailable(e.clone()))?.clone();
    let _admitted = state.inflight.try_acquire().map_err(|_| ApiError::Overloaded(state.limits.max_inflight))?;
    // An emergency memory level was refused by the memory gate before this handler.
    let compute = super::embed::acquire_compute(state, 1).await?;
    let threads = compute.num_permits();
    let started = Instant::now();
    let response = if corpus.remote() {
        // Embed under the permit, then give it back before the database round trip, so the
        // CPU serves the next query's embedding meanwhile.
        let embed = tokio::task::spawn_blocking(move || crate::search::embed_query(&model, &text, &req, threads).map(|q| (q, req)));
        let (queries, req) = join(embed.await)?;
        drop(compute);
        let results = join(tokio::task::spawn_blocking(move || corpus.search(&queries, &req)).await)?;
        SearchResponse { results, took_ms: started.elapsed().as_secs_f64() * 1e3 }
    } else {
        let response = join(tokio::task::spawn_blocking(move || crate::search::run(&model, corpus.as_ref(), &text, &req, threads)).await)?;
        drop(compute);
        response
    };
    state.metrics.record_search(started.elapsed());
    Ok(response)
}

/// A blocking search task's result, its panic or cancellation as an internal error.
fn join<T>(r: Result<Result<T, SearchError>, tokio::task::JoinError>) -> Result<T, ApiError> {
    match r {
        Ok(r) => r.map_err(map_error),
        Err(e) => Err(ApiError::Internal(format!("search task failed: {e}"))),
    }
}

fn map_error(e: SearchError) -> ApiError {
    match e {
        SearchError::InvalidParam { .. } | SearchError::EmptyQuery => ApiError::Validation(e.to_string()),
        // Found damaged by the check that runs after start: the file must be rebuilt.
        SearchError::Index(e @ crate::search::index::IndexError::SectionChecksum { .. }) => ApiError::SearchUnavailable(e.to_string()),
        SearchError::Index(e) => ApiError::Internal(format!("{e:#}")),
        SearchError::Embed(e) => ApiError::Internal(format!("{e:#}")),
        // Down, restarting or slow: the caller retries. The message names no host or password.
        SearchError::Database(e) if e.is_transient() => {
            tracing::warn!(error = %e, "search database unavailable");
            ApiError::SearchUnavailable("the search database is not answering".into())
        }
        SearchError::Database(e) => ApiError::Internal(format!("{e:#}")),
    }
}
