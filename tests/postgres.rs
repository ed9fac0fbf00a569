//! Search on PostgreSQL + pgvector against a real server: `tests/postgres.sh` (run by
//! tests/run.sh) starts one and exports SNAPEMBED_TEST_POSTGRES_URL. Without it these tests
//! print why and pass, unless SNAPEMBED_REQUIRE_POSTGRES=1 (CI) makes a missing server a failure.
//! Each test writes its own table, so they run in parallel against one server.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use snapembed::search::postgres::write::{content_hash, ChunkRow};
use snapembed::search::postgres::{model_id, DocRows, PgError, PgOptions, PgQuery, PgSearch, Shard};

use crate::common;

/// The test server's URL, or `None` (with the reason printed) when none is given.
pub fn pg_url(test: &str) -> Option<String> {
    match std::env::var("SNAPEMBED_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SNAPEMBED_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "SNAPEMBED_REQUIRE_POSTGRES=1 but SNAPEMBED_TEST_POSTGRES_URL is unset: run tests/run.sh"
            );
            eprintln!("skipping {test}: no PostgreSQL (set SNAPEMBED_TEST_POSTGRES_URL, or run tests/run.sh)");
            None
        }
    }
}

/// Drops `table`'s tables so a test starts clean, whatever an earlier run left.
pub async fn drop_table(url: &str, table: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS \"{table}_chunks\", \"{table}_documents\", \"{table}_meta\" CASCADE"
        ))
        .await
        .unwrap();
}

pub fn options(table: &str) -> PgOptions {
    PgOptions { table: table.into(), ef_search: 40, ..PgOptions::default() }
}

pub struct Doc {
    pub id: String,
    pub title: Option<String>,
    pub text: String,
    pub metadata: Value,
}

pub fn sample_corpus() -> Vec<Doc> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/sample-corpus.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Doc {
                id: v["id"].as_str().unwrap().into(),
                title: v["title"].as_str().map(str::to_owned),
                text: v["text"].as_str().unwrap().into(),
                metadata: v["metadata"].clone(),
            }
        })
        .collect()
}

/// Chunks and embeds documents as the index builder does.
pub fn embed_docs(docs: &[Doc]) -> Vec<DocRows> {
    let e = common::embedder();
    let model = model_id(e);
    docs.iter()
        .map(|d| {
            let spans = e.chunk(&d.text);
            let texts: Vec<&str> = spans.iter().map(|s| &d.text[s.start..s.end]).collect();
            let vectors = e.embed(&texts).unwrap();
            DocRows {
                id: d.id.clone(),
                metadata: d.metadata.clone(),
                content_hash: content_hash(&model, d.title.as_deref(), &d.text, &d.metadata),
                chunks: spans
                    .iter()
                    .zip(vectors)
                    .map(|(s, v)| ChunkRow { span: [s.start, s.end], snippet: d.text[s.start..s.end].into(), vector: v })
                    .collect(),
            }
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Exact search over the same chunk vectors: each document by its best chunk.
fn exact(rows: &[DocRows], q: &[f32], filter: Option<&serde_json::Map<String, Value>>, k: usize) -> Vec<(String, f32)> {
    let mut scored: Vec<(String, f32)> = rows
        .iter()
        .filter(|d| filter.is_none_or(|f| f.iter().all(|(key, v)| &d.metadata[key] == v)))
        .map(|d| (d.id.clone(), d.chunks.iter().map(|c| dot(&c.vector, q)).fold(f32::MIN, f32::max)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

static SAMPLE: std::sync::OnceLock<Vec<DocRows>> = std::sync::OnceLock::new();
fn sample_rows() -> &'static [DocRows] {
    SAMPLE.get_or_init(|| embed_docs(&sample_corpus()))
}

async fn count(url: &str, sql: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_then_search_agrees_with_exact_search_on_the_labelled_queries() {
    let Some(url) = pg_url("index_then_search") else { return };
    let table = "t_roundtrip";
    drop_table(&url, table).await;
    let e = common::embedder();
    let pg = PgSearch::new(&url, options(table)).unwrap();
    let rows = sample_rows();
    let mut w = pg.writer(&model_id(e), e.dimensions()).await.unwrap();
    assert_eq!(w.layout().vector_type, "halfvec", "pgvector 0.8 stores half precision");
    for batch in rows.chunks(64) {
        w.upsert(batch).await.unwrap();
    }
    drop(w);
    assert_eq!(count(&url, "SELECT count(*) FROM t_roundtrip_documents").await, 300);

    let queries: Vec<Value> = std::fs::read_to_string(common::data_path("search_queries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut agree = 0;
    for q in &queries {
        let text = q["query"].as_str().unwrap();
        let v = e.embed(&[text]).unwrap().remove(0);
        let filter = q["filter"].as_object();
        let hits = pg
            .search(&model_id(e), e.dimensions(), &PgQuery { vector: &v, top_k: 5, filter, min_score: None })
            .await
            .unwrap();
        let want = exact(rows, &v, filter, 5);
        assert!(!hits.is_empty(), "{text}");
        // halfvec rounds scores by ~1e-3; ordering within that may differ.
        assert!((hits[0].score - want[0].1).abs() < 5e-3, "{text}: {} vs {}", hits[0].score, want[0].1);
        agree += usize::from(hits[0].id == want[0].0);
        if let Some(f) = filter {
            assert!(hits.iter().all(|h| f.iter().all(|(k, v)| &h.metadata[k] == v)), "{text}");
        }
        // Every hit names its best chunk's text and span.
        let doc = rows.iter().find(|d| d.id == hits[0].id).unwrap();
        assert!(doc.chunks.iter().any(|c| c.span == hits[0].span && c.snippet == hits[0].snippet));
    }
    let rate = agree as f64 / queries.len() as f64;
    eprintln!("postgres top-1 agreement with exact search: {agree}/{} ({rate:.3})", queries.len());
    assert!(rate >= 0.99, "top-1 agreement {rate}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selective_filter_still_returns_top_k_rows_and_lists_mean_any() {
    let Some(url) = pg_url("selective_filter") else { return };
    let table = "t_filter";
    drop_table(&url, table).await;
    // 4,000 random unit vectors, 1 in 200 tagged "rare": an HNSW scan of ef_search = 40
    // candidates would find ~0 of them without iterative scan.
    let dims = 384;
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let mut unit = |rnd: &mut dyn FnMut() -> f32| {
        let v: Vec<f32> = (0..dims).map(|_| rnd()).collect();
        let n = dot(&v, &v).sqrt();
        v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    let rows: Vec<DocRows> = (0..4000)
        .map(|i| {
            let tier = if i % 200 == 0 { "rare" } else if i % 2 == 0 { "even" } else { "odd" };
            DocRows {
                id: format!("r{i:05}"),
                metadata: json!({"tier": tier, "n": i % 3}),
                content_hash: String::new(),
                chunks: vec![ChunkRow { span: [0, 1], snippet: "x".into(), vector: unit(&mut rnd) }],
            }
        })
        .collect();
    let pg = PgSearch::new(&url, options(table)).unwrap();
    let mut w = pg.writer("synthetic", dims).await.unwrap();
    for b in rows.chunks(500) {
        w.upsert(b).await.unwrap();
    }
    drop(w);
    let q = unit(&mut rnd);
    let filter = json!({"tier": "rare"});
    let hits = pg
        .search("synthetic", dims, &PgQuery { vector: &q, top_k: 10, filter: filter.as_object(), min_score: None })
        .await
        .unwrap();
    assert_eq!(hits.len(), 10, "iterative scan fills top_k past filtered-out rows");
    let want = exact(&rows, &q, filter.as_object(), 10);
    let got: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    let want_ids: Vec<&str> = want.iter().map(|(id, _)| id.as_str()).collect();
    let overlap = got.iter().filter(|id| want_ids.contains(id)).count();
    assert!(overlap >= 9, "recall@10 of the filtered scan: {overlap}/10 ({got:?} vs {want_ids:?})");

    // A list is any-of; keys are all-of; a number matches a number.
    let filter = json!({"tier": ["rare", "odd"], "n": 1});
    let hits = pg
        .search("synthetic", dims, &PgQuery { vector: &q, top_k: 20, filter: filter.as_object(), min_score: None })
        .await
        .unwrap();
    assert_eq!(hits.len(), 20);
    for h in &hits {
        assert!(["rare", "odd"].contains(&h.metadata["tier"].as_str().unwrap()) && h.metadata["n"] == 1, "{h:?}");
    }
    // min_score cuts the tail; scores come best first.
    let all = pg
        .search("synthetic", dims, &PgQuery { vector: &q, top_k: 50, filter: None, min_score: None })
        .await
        .unwrap();
    assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
    let cut = all[10].score;
    let some = pg
        .search("synthetic", dims, &PgQuery { vector: &q, top_k: 50, filter: None, min_score: Some(cut) })
        .await
        .unwrap();
    assert!(some.len() >= 11 && some.len() < 50 && some.iter().all(|h| h.score >= cut), "{}", some.len());
    // A filter nothing matches gives no rows, not an error.
    let none = json!({"tier": "missing"});
    let hits = pg
        .search("synthetic", dims, &PgQuery { vector: &q, top_k: 5, filter: none.as_object(), min_score: None })
        .await
        .unwrap();
    assert!(hits.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_built_with_another_model_is_refused() {
    let Some(url) = pg_url("model_mismatch") else { return };
    let table = "t_mismatch";
    drop_table(&url, table).await;
    let pg = PgSearch::new(&url, options(table)).unwrap();
    drop(pg.writer("crc32:00000000", 384).await.unwrap());
    let e = pg.writer("crc32:11111111", 384).await.err().unwrap();
    assert!(matches!(e, PgError::ModelMismatch { .. }), "{e}");
    let e = PgSearch::new(&url, options(table)).unwrap().probe("crc32:00000000", 768).await.unwrap_err();
    assert!(e.to_string().contains("384-dimensional"), "{e}");
    let e = PgSearch::new(&url, options("t_never_built")).unwrap().probe("crc32:0", 384).await.unwrap_err();
    assert!(e.to_string().contains("snapembed index"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_dead_ports_are_told_apart() {
    let Some(url) = pg_url("wrong_password") else { return };
    let bad = url.replacen(":snapembed-test@", ":wrong@", 1);
    assert_ne!(bad, url, "the test URL carries the password tests/postgres.sh sets");
    let e = PgSearch::new(&bad, options("t_any")).unwrap().probe("m", 384).await.unwrap_err();
    assert!(matches!(e, PgError::Auth { .. }) && !e.is_transient(), "{e}");
    assert!(e.to_string().contains("rejected the login of user \"snapembed\""), "{e}");
    assert!(!e.to_string().contains("wrong"), "the password stays out of messages: {e}");
    // A port nobody listens on: transient (the server may come up).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("postgres://snapembed:x@127.0.0.1:{port}/postgres");
    let e = PgSearch::new(&dead, options("t_any")).unwrap().probe("m", 384).await.unwrap_err();
    assert!(e.is_transient() && e.to_string().contains("unreachable"), "{e}");
}
