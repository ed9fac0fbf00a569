//! The PostgreSQL table as a [`Search`] backend: what `/search`, the Tally webhook and
//! `snapembed search` call when `--search-url` is given. The trait is blocking (calls arrive on
//! a blocking thread), so each call drives the async client on the runtime it was built in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::runtime::{Handle, Runtime};

use super::{model_id, PgError, PgQuery, PgSearch};
use crate::search::{CorpusInfo, FilterValue, Search, SearchError, SearchHit, SearchParams};
use crate::Embedder;

pub struct PgBackend {
    pub pg: Arc<PgSearch>,
    model: String,
    dims: usize,
    handle: Handle,
    /// Set when no runtime was running at construction (the CLI): this one drives the client.
    _own: Option<Runtime>,
    documents: AtomicU64,
    chunks: AtomicU64,
}

impl PgBackend {
    /// Connects to nothing: the first search (or [`PgBackend::probe`]) does.
    pub fn new(pg: PgSearch, model: &Embedder) -> Result<PgBackend, std::io::Error> {
        let (handle, own) = match Handle::try_current() {
            Ok(h) => (h, None),
            Err(_) => {
                // One worker thread, not a current-thread runtime: `Handle::block_on` cannot
                // drive a current-thread runtime's I/O, and would wait forever.
                let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
                (rt.handle().clone(), Some(rt))
            }
        };
        Ok(PgBackend {
            pg: Arc::new(pg),
            model: model_id(model),
            dims: model.dimensions(),
            handle,
            _own: own,
            documents: AtomicU64::new(0),
            chunks: AtomicU64::new(0),
        })
    }

    /// Runs `f` to completion on the backend's runtime, from a thread outside it.
    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.handle.block_on(f)
    }

    /// Reachability and layout, plus the row counts `/health` reports. Async, for the server's
    /// start and `/health`.
    pub async fn probe(&self) -> Result<(), PgError> {
        self.pg.probe(&self.model, self.dims).await?;
        let (docs, chunks) = self.pg.counts().await?;
        self.documents.store(docs, Ordering::Relaxed);
        self.chunks.store(chunks, Ordering::Relaxed);
        Ok(())
    }

    /// `probe` bounded by the backend's timeout.
    pub async fn probe_within(&self, timeout: Duration) -> Result<(), PgError> {
        tokio::time::timeout(timeout, self.probe()).await.unwrap_or(Err(PgError::Timeout(timeout)))
    }
}

/// The shared filter shape as SQL's: one value, or a list meaning any of them.
fn filter_json(params: &SearchParams) -> Option<Map<String, Value>> {
    let filter = params.filter.as_ref()?;
    Some(
        filter
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    FilterValue::One(x) => x.clone(),
                    FilterValue::AnyOf(xs) => Value::Array(xs.clone()),
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

impl Search for PgBackend {
    fn info(&self) -> CorpusInfo {
        CorpusInfo {
            documents: self.documents.load(Ordering::Relaxed),
            chunks: self.chunks.load(Ordering::Relaxed),
            checksum: self.model.clone(),
            source: format!("{} table {}", self.pg.url.redacted, self.pg.table.name()),
            bytes: 0,
            load_ms: 0.0,
            model: self.model.clone(),
            scheme: "postgres+pgvector".into(),
        }
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn remote(&self) -> bool {
        true
    }

    fn reachable(&self) -> Result<(), SearchError> {
        let timeout = self.pg.options.timeout;
        self.block(self.probe_within(timeout)).map_err(SearchError::from)
    }

    fn search(&self, queries: &[Vec<f32>], params: &SearchParams) -> Result<Vec<SearchHit>, SearchError> {
        let filter = filter_json(params);
        let top_k = params.top_k();
        // A long query gives several vectors: each document keeps its best score over all.
        let mut best: HashMap<String, SearchHit> = HashMap::new();
        for q in queries {
            let query = PgQuery { vector: q, top_k, filter: filter.as_ref(), min_score: params.min_score };
            for h in self.block(self.pg.search(&self.model, self.dims, &query))? {
                let hit = SearchHit { id: h.id, score: h.score, snippet: h.snippet, span: h.span, metadata: h.metadata };
                match best.get(&hit.id) {
                    Some(b) if b.score >= hit.score => {}
                    _ => {
                        best.insert(hit.id.clone(), hit);
                    }
                }
            }
        }
        let mut hits: Vec<SearchHit> = best.into_values().collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        hits.truncate(top_k);
        Ok(hits)
    }

    fn check_model(&self, model: &Embedder) -> Result<(), SearchError> {
        // The table's model is checked on first contact (start-up probe or first search);
        // here only that this backend was built for `model`.
        if model_id(model) != self.model || model.dimensions() != self.dims {
            return Err(SearchError::from(PgError::ModelMismatch {
                table: self.pg.table.name().into(),
                built_with: self.model.clone(),
                serving: model_id(model),
            }));
        }
        Ok(())
    }
}
