//! The tables behind one search table name `T`, created when missing:
//!
//! - `T_documents (id, content_hash, metadata, chunks, updated_at)`: one row per corpus
//!   document; `content_hash` lets a re-run skip documents that did not change.
//! - `T_chunks (doc_id, chunk, span_start, span_end, snippet, metadata, embedding)`: one row
//!   per embedded window. Metadata is copied here so a filter and the HNSW scan work on one
//!   table, which is what lets pgvector's iterative scan keep looking until `top_k` rows pass.
//! - `T_meta (key, value)`: the model checksum and dimensions the table was built with.
//!
//! Vectors are `halfvec` (2 bytes a dimension, half the index of `vector`) when pgvector ≥ 0.7,
//! indexed by HNSW on cosine distance; metadata is `jsonb` under a GIN index (`jsonb_path_ops`,
//! which serves the `@>` containment the filters compile to).

use tokio_postgres::GenericClient;

use super::PgError;

/// A validated table name: lowercase so it needs no quoting rules beyond ours.
#[derive(Debug, Clone)]
pub struct Table(String);

impl Table {
    pub fn new(name: &str) -> Result<Table, PgError> {
        let ok = (1..=40).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Table(name.to_owned()))
        } else {
            Err(PgError::TableName { table: name.to_owned() })
        }
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    pub fn documents(&self) -> String {
        format!("\"{}_documents\"", self.0)
    }

    pub fn chunks(&self) -> String {
        format!("\"{}_chunks\"", self.0)
    }

    pub fn meta(&self) -> String {
        format!("\"{}_meta\"", self.0)
    }
}

/// What a table holds, read from the catalog and `T_meta`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `halfvec` or `vector`.
    pub vector_type: String,
    pub dimensions: usize,
    /// The model checksum recorded at build time (`crc32:…`).
    pub model: String,
    /// pgvector's version, e.g. (0, 8, 6).
    pub pgvector: (u32, u32, u32),
}

impl Layout {
    /// pgvector 0.8 added `hnsw.iterative_scan`.
    pub fn iterative_scan(&self) -> bool {
        self.pgvector >= (0, 8, 0)
    }

    /// The SQL type a query vector is cast to, e.g. `halfvec(384)`.
    pub fn sql_type(&self) -> String {
        format!("{}({})", self.vector_type, self.dimensions)
    }

    pub fn check(&self, table: &Table, model: &str, dims: usize) -> Result<(), PgError> {
        if self.dimensions != dims {
            return Err(PgError::Dimensions { table: table.name().into(), found: self.dimensions, expected: dims });
        }
        if self.model != model {
            return Err(PgError::ModelMismatch {
                table: table.name().into(),
                built_with: self.model.clone(),
                serving: model.into(),
            });
        }
        Ok(())
    }
}

fn parse_version(v: &str) -> (u32, u32, u32) {
    let mut it = v.split(['.', '-']).map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0), it.next().unwrap_or(0))
}

pub(crate) async fn pgvector_version(client: &impl GenericClient) -> Result<Option<(u32, u32, u32)>, tokio_postgres::Error> {
    let rows = client.simple_query("SELECT extversion FROM pg_extension WHERE extname = 'vector'").await?;
    Ok(rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.try_get(0).ok().flatten().map(parse_version),
        _ => None,
    }))
}

/// Reads the layout with simple queries only (no prepared statements), so it runs through any pooler.
pub(crate) async fn read_layout(client: &impl GenericClient, table: &Table) -> Result<Layout, tokio_postgres::Error> {
    let pgvector = pgvector_version(client).await?.unwrap_or((0, 0, 0));
    // Names are validated by `Table::new`, so quoting them into SQL is safe.
    let sql = format!(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = '{}'::regclass AND attname = 'embedding'; \
         SELECT key, value FROM {}",
        table.chunks(),
        table.meta()
    );
    let mut vector_type = String::new();
    let mut dimensions = 0;
    let mut model = String::new();
    for m in client.simple_query(&sql).await? {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            // `SimpleQueryRow::get` panics past the last column: `try_get` does not.
            let (first, second) = (r.try_get(0).ok().flatten(), r.try_get(1).ok().flatten());
            match (r.columns().len(), first, second) {
                (1, Some(t), _) => {
                    // e.g. "halfvec(384)"
                    let (name, rest) = t.split_once('(').unwrap_or((t, ""));
                    vector_type = name.to_owned();
                    dimensions = rest.trim_end_matches(')').parse().unwrap_or(0);
                }
                (2, Some("model"), Some(v)) => model = v.to_owned(),
                _ => {}
            }
        }
    }
    Ok(Layout { vector_type, dimensions, model, pgvector })
}

/// HNSW graph options, pgvector's defaults written out so a change of default cannot change a
/// build. Measured on realistic vectors (bench/postgres.sh, 100k rows): recall@10 0.945 at
/// `ef_search` 40 and 0.995 at 100, the service's default; no need to pay more build time.
const HNSW_M: u32 = 16;
const HNSW_EF_CONSTRUCTION: u32 = 64;

/// Creates what is missing and records the model; refuses a table built with another model.
/// Concurrent shard writers all run this: an advisory lock makes them take turns, since
/// concurrent `CREATE TABLE IF NOT EXISTS` can still collide in the catalog.
pub(crate) async fn ensure(
    client: &mut deadpool_postgres::Object,
    table: &Table,
    model: &str,
    dims: usize,
) -> Result<Result<Layout, PgError>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(&format!("SELECT pg_advisory_xact_lock(hashtext('snapembed:{}'))", table.name())).await?;
    if pgvector_version(&*tx).await?.is_none() {
        if let Err(e) = tx.batch_execute("CREATE EXTENSION IF NOT EXISTS vector").await {
            let detail = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned());
            return Ok(Err(PgError::NoExtension { detail }));
        }
    }
    let version = pgvector_version(&*tx).await?.unwrap_or((0, 0, 0));
    let (vtype, ops) = if version >= (0, 7, 0) { ("halfvec", "halfvec_cosine_ops") } else { ("vector", "vector_cosine_ops") };
    let (t, d, c, m) = (table.name(), table.documents(), table.chunks(), table.meta());
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {m} (key text PRIMARY KEY, value text NOT NULL);
         INSERT INTO {m} (key, value) VALUES ('model', '{model}'), ('dimensions', '{dims}'), ('format', '1')
             ON CONFLICT (key) DO NOTHING;
         CREATE TABLE IF NOT EXISTS {d} (
             id text PRIMARY KEY,
             content_hash text NOT NULL,
             metadata jsonb NOT NULL DEFAULT '{{}}',
             chunks integer NOT NULL,
             updated_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS {c} (
             doc_id text NOT NULL REFERENCES {d} (id) ON DELETE CASCADE,
             chunk integer NOT NULL,
             span_start integer NOT NULL,
             span_end integer NOT NULL,
             snippet text NOT NULL,
             metadata jsonb NOT NULL DEFAULT '{{}}',
             embedding {vtype}({dims}) NOT NULL,
             PRIMARY KEY (doc_id, chunk));
         CREATE INDEX IF NOT EXISTS \"{t}_chunks_hnsw\" ON {c} USING hnsw (embedding {ops})
             WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION});
         CREATE INDEX IF NOT EXISTS \"{t}_chunks_metadata\" ON {c} USING gin (metadata jsonb_path_ops);"
    ))
    .await?;
    let layout = read_layout(&*tx, table).await?;
    tx.commit().await?;
    Ok(layout.check(table, model, dims).map(|()| layout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_cannot_inject_sql() {
        assert!(Table::new("snapembed").is_ok());
        assert!(Table::new("kb_2").is_ok());
        for bad in ["", "Kb", "2kb", "kb\"; DROP TABLE x; --", "a-b", &"x".repeat(41)] {
            assert!(Table::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pgvector_versions_compare() {
        assert_eq!(parse_version("0.8.6"), (0, 8, 6));
        assert!(parse_version("0.8.0") >= (0, 8, 0));
        assert!(parse_version("0.7.4") < (0, 8, 0));
    }
}
