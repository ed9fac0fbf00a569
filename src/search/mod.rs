//! Search over a corpus: the request/response types every backend shares, the [`Search`]
//! trait, and [`run`], which turns query text into hits with the [`Embedder`].
//! - [`corpus`]: reading JSON Lines / CSV corpora, with per-line problems counted and reported
//! - [`builder`]: documents → chunks → vectors → index bytes, deterministically
//! - [`format`]: the mapped index file format (spec)
//! - [`index`]: the validating reader of that format and its [`Search`] implementation
//! - [`scan`]: the int8 scan kernel and f16 rescoring
//! - [`writer`]: lays out the index file deterministically
//! - [`postgres`]: the same search on PostgreSQL + pgvector, for corpora past one machine
//!
//! Knows nothing of HTTP; the service maps [`SearchError`] to statuses.

pub mod builder;
pub mod corpus;
pub mod format;
pub mod index;
pub mod postgres;
pub mod scan;
pub mod writer;

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::{EmbedOptions, Embedder};

pub use index::{IndexError, MappedIndex};

/// Most hits one search returns.
pub const MAX_TOP_K: usize = 100;
pub const DEFAULT_TOP_K: usize = 5;

/// A metadata value a filter accepts: one value, or a list meaning any of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FilterValue {
    AnyOf(Vec<serde_json::Value>),
    One(serde_json::Value),
}

/// What `validate` accepts: a scalar, or a non-empty list of scalars.
impl PartialSchema for FilterValue {
    fn schema() -> RefOr<Schema> {
        let scalar = || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Number, Type::Boolean, Type::Null]));
        OneOfBuilder::new()
            .item(scalar().description(Some("Matches documents whose metadata key equals this value.")))
            .item(ArrayBuilder::new().items(scalar()).min_items(Some(1)).description(Some("Matches any of these values.")))
            .into()
    }
}
impl ToSchema for FilterValue {}

fn filter_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(FilterValue::schema()))
        .description(Some("Every key must match the document's metadata exactly (a list: any of its values)."))
}

impl FilterValue {
    pub fn values(&self) -> &[serde_json::Value] {
        match self {
            FilterValue::AnyOf(v) => v,
            FilterValue::One(v) => std::slice::from_ref(v),
        }
    }
}

/// Metadata filter: every key must match (exactly; a list means any of its values).
pub type Filter = BTreeMap<String, FilterValue>;

/// How to search, whatever the query: what the HTTP API, the CLI and the Tally webhook share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchParams {
    /// Hits to return, 1..=100 (default 5).
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub filter: Option<Filter>,
    /// Leave out hits scoring below this cosine (-1..=1).
    #[serde(default)]
    pub min_score: Option<f32>,
}

impl SearchParams {
    pub fn top_k(&self) -> usize {
        self.top_k.unwrap_or(DEFAULT_TOP_K)
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<(), SearchError> {
        let invalid = |field: &str, reason: String| Err(SearchError::InvalidParam { field: field.to_owned(), reason });
        if let Some(k) = self.top_k {
            if k == 0 || k > MAX_TOP_K {
                return invalid("top_k", format!("must be between 1 and {MAX_TOP_K}, got {k}"));
            }
        }
        if let Some(s) = self.min_score {
            if !(-1.0..=1.0).contains(&s) {
                return invalid("min_score", format!("must be between -1 and 1 (a cosine), got {s}"));
            }
        }
        for (key, value) in self.filter.iter().flatten() {
            let values = value.values();
            if values.is_empty() {
                return invalid(&format!("filter.{key}"), "an empty list matches nothing".into());
            }
            if values.iter().any(|v| v.is_object() || v.is_array()) {
                return invalid(&format!("filter.{key}"), "must be a string, number, boolean or null, or a list of them".into());
            }
        }
        Ok(())
    }
}

/// `POST /search` and `snapembed search`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SearchRequest {
    /// The query; a long one is chunked like a document (at most 50,000 characters by default).
    #[schema(min_length = 1, max_length = 50_000)]
    pub query: String,
    /// Hits to return (default 5).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub top_k: Option<usize>,
    #[serde(default)]
    #[schema(schema_with = filter_schema)]
    pub filter: Option<Filter>,
    /// Leave out hits scoring below this cosine.
    #[serde(default)]
    #[schema(minimum = -1, maximum = 1)]
    pub min_score: Option<f32>,
}

impl SearchRequest {
    pub fn into_parts(self) -> (String, SearchParams) {
        (self.query, SearchParams { top_k: self.top_k, filter: self.filter, min_score: self.min_score })
    }
}

/// One document, with its best chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    pub id: String,
    /// Cosine similarity of the query and the best chunk.
    pub score: f32,
    /// The best chunk's text (shortened to about `SNIPPET_CHARS`).
    pub snippet: String,
    /// The best chunk's span in the document's text, in characters (Unicode scalar values).
    #[schema(min_items = 2, max_items = 2)]
    pub span: [usize; 2],
    /// The document's metadata as indexed.
    pub metadata: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub results: Vec<SearchHit>,
    pub took_ms: f64,
}

/// What `/health` and `/model-status` report about a loaded corpus.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CorpusInfo {
    pub documents: u64,
    pub chunks: u64,
    /// The index's data checksum, `crc32:xxxxxxxx`.
    pub checksum: String,
    /// A path, or `embedded`.
    pub source: String,
    pub bytes: u64,
    pub load_ms: f64,
    pub model: String,
    pub scheme: String,
}

/// A corpus that answers searches. The mapped index implements it; a PostgreSQL + pgvector
/// backend can too (issue 10): queries arrive as vectors, embedded by this process's model,
/// and hits leave in the shared shape. Calls run on a blocking thread, so an implementation
/// may block.
pub trait Search: Send + Sync {
    fn info(&self) -> CorpusInfo;
    /// The best documents for any of `queries` (unit vectors from the index's model; a long
    /// query gives several), one hit per document, best first. `params` are validated.
    fn search(&self, queries: &[Vec<f32>], params: &SearchParams) -> Result<Vec<SearchHit>, SearchError>;
    /// Refuses a model other than the one the corpus was embedded with.
    fn check_model(&self, model: &Embedder) -> Result<(), SearchError>;
    /// Which engine answers, for `/health` and `/model-status`.
    fn backend(&self) -> &'static str {
        "mapped"
    }
    /// Whether searches can be answered now (a mapped file always can; a database may be down).
    /// Blocking, bounded by the backend's own timeout.
    fn reachable(&self) -> Result<(), SearchError> {
        Ok(())
    }
    /// Whether [`Search::search`] mostly waits on another machine (a database) rather than
    /// using this one's CPU. The service then releases its compute permit once the query is
    /// embedded: holding it through the round trip capped PostgreSQL search at one request per
    /// permit (15 req/s at 1 and at 8 clients, 100k rows, bench/results/postgres.md).
    fn remote(&self) -> bool {
        false
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{field} {reason}")]
    InvalidParam { field: String, reason: String },
    #[error("query must not be empty")]
    EmptyQuery,
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("embedding the query failed")]
    Embed(#[from] crate::EmbedError),
    #[error(transparent)]
    Database(#[from] postgres::PgError),
}

/// Where a long text is cut: the engine's overlapping windows that each fit the model, as byte
/// ranges. A text with no words (whitespace only) is one empty-handed window over all of it.
pub fn chunk_spans(model: &Embedder, text: &str) -> Vec<Range<usize>> {
    let mut spans: Vec<Range<usize>> = model.chunk(text).into_iter().map(|c| c.start..c.end).collect();
    if spans.is_empty() {
        spans.push(0..text.len());
    }
    spans
}

/// Embeds `text` (chunked like a document when long) and searches `backend` with it; the
/// matches of all chunks merge, best score per document. Embeds on up to `threads` threads.
pub fn run(model: &Embedder, backend: &dyn Search, text: &str, params: &SearchParams, threads: usize) -> Result<SearchResponse, SearchError> {
    let started = Instant::now();
    let queries = embed_query(model, text, params, threads)?;
    let results = backend.search(&queries, params)?;
    Ok(SearchResponse { results, took_ms: started.elapsed().as_secs_f64() * 1e3 })
}

/// The first half of [`run`]: validates and embeds `text` (one unit vector per window of a
/// long text). The service calls the halves apart when the backend is [`Search::remote`].
pub fn embed_query(model: &Embedder, text: &str, params: &SearchParams, threads: usize) -> Result<Vec<Vec<f32>>, SearchError> {
    params.validate()?;
    if text.trim().is_empty() {
        return Err(SearchError::EmptyQuery);
    }
    let pieces: Vec<&str> = chunk_spans(model, text).into_iter().filter_map(|r| text.get(r)).collect();
    let options = EmbedOptions { normalize: Some(true), truncate: true, threads: Some(threads), ..Default::default() };
    Ok(model.embed_with(&pieces, options)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> SearchParams {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation_names_the_field() {
        let err = |v| params(v).validate().unwrap_err().to_string();
        assert!(err(serde_json::json!({"top_k": 0})).starts_with("top_k "));
        assert!(err(serde_json::json!({"top_k": 101})).starts_with("top_k "));
        assert!(err(serde_json::json!({"min_score": 1.5})).starts_with("min_score "));
        assert!(err(serde_json::json!({"filter": {"tags": []}})).starts_with("filter.tags "));
        assert!(err(serde_json::json!({"filter": {"a": {"b": 1}}})).starts_with("filter.a "));
        assert!(params(serde_json::json!({"top_k": 100, "min_score": -1, "filter": {"a": ["x", 1]}})).validate().is_ok());
    }
}
