//! One search as one SQL statement. The HNSW scan orders chunks by cosine distance to the
//! query, the filter is a `jsonb @>` containment on the same rows (GIN-indexed), the best chunk
//! of each document wins, and `min_score` cuts the tail. All of it runs in one transaction whose
//! `SET LOCAL`s (statement timeout, `hnsw.ef_search`, `hnsw.iterative_scan`) end with it, which is
//! what transaction-mode poolers (PgBouncer, Supabase port 6543) require.

use serde_json::{Map, Value};
use tokio_postgres::types::{ToSql, Type};

use super::schema::Layout;
use super::{PgError, PgSearch};

/// Chunks fetched per document asked for: a document is reported once, by its best chunk, so
/// the scan must look past documents' second and third chunks to fill `top_k`.
const CHUNKS_PER_HIT: usize = 4;
/// pgvector's ceiling for `hnsw.ef_search`.
const MAX_EF_SEARCH: usize = 1000;

/// What to look for. `vector` is the embedded query (unit length).
pub struct PgQuery<'a> {
    pub vector: &'a [f32],
    pub top_k: usize,
    /// `{"key": value}` matches metadata exactly; `{"key": [v1, v2]}` matches any of them.
    pub filter: Option<&'a Map<String, Value>>,
    pub min_score: Option<f32>,
}

/// One document: its best chunk's score, text and span.
#[derive(Debug, Clone, PartialEq)]
pub struct PgHit {
    pub id: String,
    pub score: f32,
    pub snippet: String,
    pub span: [usize; 2],
    pub metadata: Value,
}

/// The statement for a filter of `keys` keys, each one `@> ANY(array)` (GIN serves both).
fn sql(layout: &Layout, table: &super::Table, keys: usize) -> String {
    let vt = layout.sql_type();
    let filters: Vec<String> = (0..keys).map(|i| format!("metadata @> ANY(${}::jsonb[])", 5 + i)).collect();
    let filter = if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
    format!(
        "SELECT doc_id, score, snippet, span_start, span_end, metadata FROM (
             SELECT DISTINCT ON (doc_id) doc_id, (1 - dist)::real AS score, snippet, span_start, span_end, metadata
             FROM (SELECT doc_id, snippet, span_start, span_end, metadata,
                          embedding <=> ($1::real[])::{vt} AS dist
                   FROM {chunks} {filter}
                   ORDER BY embedding <=> ($1::real[])::{vt}
                   LIMIT $2) c
             ORDER BY doc_id, dist) d
         WHERE score >= $3
         ORDER BY score DESC, doc_id
         LIMIT $4",
        chunks = table.chunks()
    )
}

impl PgSearch {
    /// The best `top_k` documents. `model`/`dims` identify the embedder, checked against the
    /// table once.
    pub async fn search(&self, model: &str, dims: usize, q: &PgQuery<'_>) -> Result<Vec<PgHit>, PgError> {
        let layout = self.layout(model, dims).await?.clone();
        let candidates = (q.top_k * CHUNKS_PER_HIT).clamp(1, MAX_EF_SEARCH);
        let ef = self.options.ef_search.max(candidates).min(MAX_EF_SEARCH);

        // Each key is an array of one-key objects, any of which may be contained: the value
        // itself, and the value inside a list, since a metadata list matches when any of its
        // items does (jsonb's `@>` does not look into a nested list for a scalar).
        let lists: Vec<Vec<Value>> = q
            .filter
            .into_iter()
            .flatten()
            .map(|(key, value)| {
                let values = match value {
                    Value::Array(options) => options.clone(),
                    v => vec![v.clone()],
                };
                values
                    .into_iter()
                    .flat_map(|v| {
                        let one = |x: Value| Value::Object(Map::from_iter([(key.clone(), x)]));
                        [one(v.clone()), one(Value::Array(vec![v]))]
                    })
                    .collect()
            })
            .collect();
        let sql = sql(&layout, &self.table, lists.len());
        let vector = q.vector.to_vec();
        let limit = candidates as i64;
        let min = q.min_score.unwrap_or(f32::NEG_INFINITY);
        let top_k = q.top_k as i64;
        let mut params: Vec<(&(dyn ToSql + Sync), Type)> =
            vec![(&vector, Type::FLOAT4_ARRAY), (&limit, Type::INT8), (&min, Type::FLOAT4), (&top_k, Type::INT8)];
        for list in &lists {
            params.push((list, Type::JSONB_ARRAY));
        }

        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        let mut settings = format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL hnsw.ef_search = {ef};",
            self.options.timeout.as_millis().max(1)
        );
        if layout.iterative_scan() {
            // strict_order: results stay exactly ordered while the scan widens past filtered-out rows.
            settings.push_str(" SET LOCAL hnsw.iterative_scan = strict_order;");
        }
        tx.batch_execute(&settings).await.map_err(|e| self.error(e))?;
        let rows = run(&tx, self.url.pgbouncer, &sql, &params).await.map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;

        rows.iter()
            .map(|r| {
                let start: i32 = r.try_get(3)?;
                let end: i32 = r.try_get(4)?;
                Ok(PgHit {
                    id: r.try_get(0)?,
                    score: r.try_get(1)?,
                    snippet: r.try_get(2)?,
                    span: [start.max(0) as usize, end.max(0) as usize],
                    metadata: r.try_get(5)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(PgError::Query)
    }
}

/// Runs `sql` with typed parameters: as a cached prepared statement normally; as an unnamed
/// statement (Parse/Bind/Execute in one round trip) behind a transaction-mode pooler, where a
/// named statement may land on another server connection.
pub(crate) async fn run(
    tx: &deadpool_postgres::Transaction<'_>,
    pgbouncer: bool,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    if pgbouncer {
        tx.query_typed(sql, params).await
    } else {
        let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
        let statement = tx.prepare_typed_cached(sql, &types).await?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
        tx.query(&statement, &values).await
    }
}
