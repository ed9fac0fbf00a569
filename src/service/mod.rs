//! The service: `app(state)` builds the one router that the server, the Lambda adapter and the
//! tests all use. Handlers live in `embed` (model work), `search` (corpus search), `score`
//! (the resume scorer), `tally` (the Tally form webhook) and `ops` (health and status); bodies
//! in `types`; the error shape in `error`; the resume scorer's request bodies in
//! `resume_input`; `oversize` answers bodies over the limit before reading them; `request_id`
//! tags each request; `openapi` documents every route. Around it: `config` (flags and limits), `memory` (the memory guard),
//! `metrics` (Prometheus), `server` (HTTP on a port) and `lambda` (the Lambda runtime adapter).

pub mod config;
mod embed;
mod error;
pub mod lambda;
pub mod memory;
pub mod metrics;
mod ops;
pub mod openapi;
pub mod resume_input;
mod score;
pub mod search;
mod oversize;
pub mod request_id;
pub mod server;
mod tally;
pub mod types;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
/// The `/rank` body, public so fuzz/ deserializes it as the handler does (`/score`'s is `resume_input::ResumeJson`).
pub use score::RankRequest;

use crate::service::config::{Limits, ScoreConfig};
use crate::service::memory::{Held, Level, MemoryGuard, Reclaim};
use crate::service::metrics::Metrics;
use crate::engine::cache::CacheStats;
use crate::engine::embedder::Workers;
use crate::Embedder;

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The model, or why it failed to load (the service then reports itself unhealthy).
    pub model: Result<Arc<Embedder>, String>,
    pub limits: Limits,
    pub metrics: Metrics,
    pub memory: MemoryGuard,
    /// Embedding jobs running at once (one per thread).
    pub compute: Semaphore,
    pub compute_permits: u32,
    /// How many jobs run at once and why (`compute_permits` of them).
    pub workers: Workers,
    /// Requests admitted (running or queued for compute); past this, 429.
    pub inflight: Semaphore,
    pub started: SystemTime,
    /// The corpus `/search` answers from (`None`: /search is a 503 saying how to give one).
    pub corpus: Option<Arc<dyn crate::search::Search>>,
    pub scoring: ScoreConfig,
    /// The Tally webhook: its settings and the memory of delivered events.
    pub tally: crate::tally::Webhook,
}

impl AppState {
    pub fn new(model: Result<Embedder, String>, limits: Limits, workers: impl Into<Workers>, memory: MemoryGuard) -> AppState {
        let workers = workers.into();
        let threads = workers.count.clamp(1, Semaphore::MAX_PERMITS) as u32;
        AppState(Arc::new(Inner {
            model: model.map(Arc::new),
            limits,
            metrics: Metrics::default(),
            memory,
            compute: Semaphore::new(threads as usize),
            compute_permits: threads,
            workers,
            inflight: Semaphore::new(limits.max_inflight),
            started: SystemTime::now(),
            corpus: None,
            scoring: ScoreConfig::default(),
            tally: crate::tally::Webhook::default(),
        }))
    }

    /// Sets the scorer's settings. Call before the state is shared (cloned).
    pub fn with_scoring(mut self, scoring: ScoreConfig) -> AppState {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => inner.scoring = scoring,
            None => tracing::error!("with_scoring called on a shared AppState; the scorer keeps its defaults"),
        }
        self
    }

    /// Serves `/search` from `corpus`. Call before the state is shared (cloned).
    pub fn with_corpus(mut self, corpus: Arc<dyn crate::search::Search>) -> AppState {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => inner.corpus = Some(corpus),
            None => tracing::error!("with_corpus called on a shared AppState; the corpus is not set"),
        }
        self
    }

    /// Sets up the Tally webhook (the default accepts unsigned deliveries and forwards
    /// nothing). Call before the state is shared (cloned).
    pub fn with_tally(mut self, tally: crate::tally::Webhook) -> AppState {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => inner.tally = tally,
            None => tracing::error!("with_tally called on a shared AppState; the webhook keeps its defaults"),
        }
        self
    }
}

impl AppState {
    /// What the bounded stores hold now (`/memory-status`).
    pub fn held(&self) -> Held {
        let (cache, (scratch, scratch_limit)) = match &self.model {
            Ok(m) => (m.cache_stats(), m.pooled_scratch()),
            Err(_) => (CacheStats::default(), (0, None)),
        };
        let (events, capacity) = self.tally.remembered();
        Held {
            embed_cache_entries: cache.entries,
            embed_cache_capacity: cache.capacity,
            pooled_scratch_bytes: scratch,
            pooled_scratch_limit_bytes: scratch_limit,
            tally_events: events,
            tally_capacity: capacity,
        }
    }

    /// What the memory guard may free: the model's cache and buffers, or nothing.
    pub fn reclaim(&self) -> &dyn Reclaim {
        match &self.model {
            Ok(m) => m.as_ref(),
            Err(_) => &(),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Every route, as a table so that `openapi`'s test can ask the router about each path.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/embed", post(embed::embed)),
        ("/v1/embeddings", post(embed::openai)),
        ("/similarity", post(embed::similarity)),
        ("/search", post(search::search)),
        ("/score", post(score::score)),
        ("/rank", post(score::rank)),
        ("/webhook/tally", post(tally::webhook)),
        ("/health", get(ops::health)),
        ("/model-status", get(ops::model_status)),
        ("/memory-status", get(ops::memory_status)),
        ("/info", get(ops::info)),
        ("/", get(ops::root)),
        ("/metrics", get(ops::metrics)),
        ("/openapi.json", get(openapi::openapi_json)),
    ]
}

pub fn app(state: AppState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, method)| router.route(path, method))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), memory_gate))
        .layer(middleware::from_fn_with_state(state.clone(), oversize::refuse_oversized))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("a handler panicked".into()).into_response()))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(request_id::request_id))
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_owned() }
}

/// Counts and times every request by its route template.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = req.method().to_string();
    let t = Instant::now();
    let resp = next.run(req).await;
    state.metrics.record_request(&route, &method, resp.status().as_u16(), t.elapsed());
    resp
}

/// Runs the memory guard's check before every request; in an emergency refuses new work with
/// 503 + Retry-After. Every POST is work (embedding, search, scoring, webhooks); the GETs
/// (health, status, info, metrics) keep answering so operators can see why.
async fn memory_gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.memory.check(state.reclaim()) == Level::Emergency && req.method() == Method::POST {
        return ApiError::MemoryPressure("resident memory is above the emergency share of the limit".into()).into_response();
    }
    next.run(req).await
}
