//! Search on PostgreSQL + pgvector: the same documents, chunks, metadata and hits as the mapped
//! index, stored in tables any hosted Postgres (RDS, Aurora, Cloud SQL, Supabase, Neon) serves.
//!
//! - `connect`: the URL, TLS (rustls) and the small lazy pool.
//! - `schema`: tables, indexes (HNSW on cosine, GIN on metadata) and what a table was built with.
//! - `write`: batched, transactional upserts by id; `--delete-missing`; shard assignment.
//! - `query`: one search as one SQL statement with its filters, in a transaction whose
//!   `SET LOCAL`s survive transaction-mode poolers.
//!
//! Embedding stays with the caller ([`crate::Embedder`]): this module takes vectors.

pub mod backend;
pub mod connect;
mod query;
pub mod schema;
pub mod write;

use std::time::Duration;

use deadpool_postgres::{Pool, PoolError};
use tokio::sync::OnceCell;
use tokio_postgres::error::SqlState;

pub use backend::PgBackend;
pub use connect::{PgUrl, UrlError};
pub use query::{PgHit, PgQuery};
pub use schema::{Layout, Table};
pub use write::{DocRows, PgWriter, Shard};

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("{table:?} is not a valid table name: use 1-40 lowercase letters, digits and _, starting with a letter")]
    TableName { table: String },
    #[error("the search database {url} is unreachable: {detail}")]
    Unavailable { url: String, detail: String },
    #[error("the search database {url} rejected the login of user {user:?}: {detail}")]
    Auth { url: String, user: String, detail: String },
    #[error("the search database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("table {table}_chunks does not exist in {url}: build it with `snapembed index CORPUS --to URL --table {table}`")]
    NoTable { url: String, table: String },
    #[error("the pgvector extension is missing and could not be created: {detail}")]
    NoExtension { detail: String },
    #[error("table {table} was built with model {built_with}, but this server embeds with {serving}: rebuild it")]
    ModelMismatch { table: String, built_with: String, serving: String },
    #[error("table {table} holds {found}-dimensional vectors, the model makes {expected}")]
    Dimensions { table: String, found: usize, expected: usize },
    #[error("search database error: {0}")]
    Query(#[source] tokio_postgres::Error),
}

impl PgError {
    /// A state that may pass by itself (server down or restarting, overloaded, slow): the
    /// caller should retry, and health says "degraded".
    pub fn is_transient(&self) -> bool {
        matches!(self, PgError::Unavailable { .. } | PgError::Timeout(_))
    }
}

/// Settings a server or a build needs beyond the URL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub table: String,
    /// Connections at most (Lambda: one instance serves one request at a time, so 1-2 suffice).
    pub pool_size: usize,
    /// Each statement's budget (`SET LOCAL statement_timeout`), and the wait for a connection.
    pub timeout: Duration,
    /// HNSW candidate list (`hnsw.ef_search`); raised to the rows a query asks for.
    pub ef_search: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions { table: "snapembed".into(), pool_size: 4, timeout: Duration::from_secs(2), ef_search: 100 }
    }
}

/// One table in one database, reached through a lazy pool.
pub struct PgSearch {
    pub url: PgUrl,
    pub table: Table,
    pub options: PgOptions,
    pool: Pool,
    /// What the table holds (vector type, dimensions, model, pgvector version), read once.
    layout: OnceCell<Layout>,
}

impl PgSearch {
    /// Parses and validates; connects to nothing.
    pub fn new(url: &str, options: PgOptions) -> Result<PgSearch, PgError> {
        let url = PgUrl::parse(url)?;
        let table = Table::new(&options.table)?;
        let pool = url.pool(options.pool_size, options.timeout)?;
        Ok(PgSearch { url, table, options, pool, layout: OnceCell::new() })
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        self.pool.get().await.map_err(|e| self.pool_error(e))
    }

    /// The table's layout, checked against the model that embeds queries (its checksum and
    /// dimensions); read on first use, then cached.
    pub async fn layout(&self, model: &str, dims: usize) -> Result<&Layout, PgError> {
        let layout = self
            .layout
            .get_or_try_init(|| async {
                let client = self.client().await?;
                schema::read_layout(&**client, &self.table).await.map_err(|e| self.error(e))
            })
            .await?;
        layout.check(&self.table, model, dims)?;
        Ok(layout)
    }

    /// Connects (or reuses a connection) and reads the table's layout: the start-up probe and
    /// `/health`'s reachability check.
    pub async fn probe(&self, model: &str, dims: usize) -> Result<(), PgError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(|e| self.error(e))?;
        drop(client);
        self.layout(model, dims).await.map(|_| ())
    }

    /// Documents and chunks in the table (planner estimates past 100k rows: exact counts of
    /// millions of rows would cost seconds on every probe).
    pub async fn counts(&self) -> Result<(u64, u64), PgError> {
        let client = self.client().await?;
        let (d, c) = (self.table.documents(), self.table.chunks());
        let sql = format!(
            "SELECT CASE WHEN e > 100000 THEN e ELSE (SELECT count(*) FROM {d}) END FROM
                 (SELECT reltuples::bigint AS e FROM pg_class WHERE oid = '{d}'::regclass) x;
             SELECT CASE WHEN e > 100000 THEN e ELSE (SELECT count(*) FROM {c}) END FROM
                 (SELECT reltuples::bigint AS e FROM pg_class WHERE oid = '{c}'::regclass) x"
        );
        let rows = client.simple_query(&sql).await.map_err(|e| self.error(e))?;
        let mut n = rows.iter().filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.try_get(0).ok().flatten().and_then(|v: &str| v.parse().ok()),
            _ => None,
        });
        Ok((n.next().unwrap_or(0), n.next().unwrap_or(0)))
    }

    /// Pool statistics for status pages: (connections open, idle).
    pub fn pool_status(&self) -> (usize, usize) {
        let s = self.pool.status();
        (s.size, s.available)
    }

    pub(crate) fn pool_error(&self, e: PoolError) -> PgError {
        match e {
            PoolError::Timeout(_) => PgError::Unavailable {
                url: self.url.redacted.clone(),
                detail: format!("no connection within {:?}", self.options.timeout),
            },
            PoolError::Backend(e) => self.error(e),
            other => PgError::Unavailable { url: self.url.redacted.clone(), detail: other.to_string() },
        }
    }

    /// Sorts a driver error into what the caller can act on.
    pub(crate) fn error(&self, e: tokio_postgres::Error) -> PgError {
        let url = self.url.redacted.clone();
        let Some(code) = e.code() else {
            // No SQLSTATE: the socket (refused, reset, closed) or TLS.
            return PgError::Unavailable { url, detail: error_chain(&e) };
        };
        let detail = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned());
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INVALID_CATALOG_NAME
        {
            PgError::Auth { url, user: self.url.user().to_owned(), detail }
        } else if *code == SqlState::QUERY_CANCELED {
            PgError::Timeout(self.options.timeout)
        } else if *code == SqlState::UNDEFINED_TABLE {
            PgError::NoTable { url, table: self.table.name().to_owned() }
        } else if code.code().starts_with("08")
            || code.code().starts_with("57P")
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            // Connection exceptions, admin shutdown, crash recovery, "the database system is
            // starting up", too many connections: all pass by themselves.
            PgError::Unavailable { url, detail }
        } else {
            PgError::Query(e)
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// How a table names the model that embedded it: the snapshot's data checksum, as
/// `/model-status` prints it.
pub fn model_id(embedder: &crate::Embedder) -> String {
    format!("crc32:{:08x}", embedder.header().data_crc32)
}

/// The flags that point search at PostgreSQL, shared by `serve`, `index` and `search`.
#[derive(Debug, Clone, clap::Args)]
pub struct PgArgs {
    /// Serve search from PostgreSQL + pgvector at this URL (postgres://user:pass@host/db, with
    /// libpq's sslmode/sslrootcert; pgbouncer=true behind a transaction pooler) instead of a
    /// mapped index [default: $DATABASE_URL when set].
    #[arg(long, env = "SNAPEMBED_SEARCH_URL")]
    pub search_url: Option<String>,
    /// The table name (tables NAME_documents, NAME_chunks, NAME_meta).
    #[arg(long, env = "SNAPEMBED_SEARCH_TABLE", default_value = "snapembed")]
    pub search_table: String,
    /// Connections at most.
    #[arg(long, env = "SNAPEMBED_SEARCH_POOL_SIZE", default_value_t = 4)]
    pub search_pool_size: usize,
    /// Each statement's budget, and the wait for a connection, in milliseconds.
    #[arg(long, env = "SNAPEMBED_SEARCH_TIMEOUT_MS", default_value_t = 2000)]
    pub search_timeout_ms: u64,
    /// HNSW candidates per search (hnsw.ef_search; raised to 4 x top_k when that is more).
    #[arg(long, env = "SNAPEMBED_SEARCH_EF_SEARCH", default_value_t = 100)]
    pub search_ef_search: usize,
}

impl PgArgs {
    /// The URL from the flag, SNAPEMBED_SEARCH_URL, or DATABASE_URL (the usual name on Render
    /// and Heroku-style hosts).
    pub fn url(&self) -> Option<String> {
        self.search_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok())
            .filter(|u| !u.trim().is_empty())
    }

    pub fn options(&self) -> PgOptions {
        PgOptions {
            table: self.search_table.clone(),
            pool_size: self.search_pool_size,
            timeout: Duration::from_millis(self.search_timeout_ms.max(1)),
            ef_search: self.search_ef_search.clamp(1, 1000),
        }
    }

    /// Parses and validates without connecting: a bad URL stops the start with its reason.
    pub fn open(&self) -> Result<Option<PgSearch>, PgError> {
        self.url().map(|u| PgSearch::new(&u, self.options())).transpose()
    }
}
