//! Search on PostgreSQL + pgvector against a real server: `tests/postgres.sh` (run by
//! tests/run.sh) starts one and exports SNAPEMBED_TEST_POSTGRES_URL. Without it these tests
//! print why and pass, unless SNAPEMBED_REQUIRE_POSTGRES=1 (CI) makes a missing server a failure.
//! Each test writes its own table, so they run in parallel against one server.


use serde_json::{json, Value};
use snapembed::search::postgres::write::ChunkRow;
use snapembed::search::postgres::{DocRows, PgError, PgOptions, PgQuery, PgSearch};


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
    let unit = |rnd: &mut dyn FnMut() -> f32| {
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

pub async fn count(url: &str, sql: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

// ---- The user's view: the CLI, the server, the database going away and coming back. ----

fn snapembed() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_snapembed"));
    c.env("SNAPEMBED_SNAPSHOT", crate::common::snapshot_path())
        .env_remove("SNAPEMBED_CORPUS")
        .env_remove("DATABASE_URL")
        .env_remove("SNAPEMBED_SEARCH_URL");
    c
}

fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn sample_corpus() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/sample-corpus.jsonl")
}

/// A full HTTP exchange over a socket: status, headers (lowercased names) and body.
fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_lowercase(), body.to_owned())
}

#[test]
fn index_to_postgres_then_search_matches_the_mapped_index_and_reruns_are_idempotent() {
    let Some(url) = pg_url("index_to_postgres") else { return };
    let table = "t_cli";
    block(drop_table(&url, table));
    let corpus = sample_corpus();
    let index = |extra: &[&str]| {
        let mut c = snapembed();
        c.arg("index").arg(&corpus).args(["--to", &url, "--table", table]).args(extra);
        run_ok(&mut c)
    };
    let first = index(&[]);
    assert!(first.contains("300 written"), "{first}");
    assert!(!first.contains("snapembed-test"), "the password stays out of the output: {first}");
    // Unchanged documents are not embedded or written again.
    let again = index(&[]);
    assert!(again.contains("0 written") && again.contains("300 unchanged"), "{again}");
    assert_eq!(block(count(&url, "SELECT count(*) FROM t_cli_documents")), 300);
    let chunks = block(count(&url, "SELECT count(*) FROM t_cli_chunks"));

    // The same labelled queries through both backends, by the same `search::run`.
    let model = crate::common::embedder();
    let mapped = snapembed::search::MappedIndex::open(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/artifacts/corpus.idx"))).unwrap();
    assert_eq!(snapembed::search::Search::info(&mapped).chunks as i64, chunks, "the same chunks as the mapped index");
    let pg = PgSearch::new(&url, options(table)).unwrap();
    let pg = snapembed::search::postgres::PgBackend::new(pg, model).unwrap();
    let queries: Vec<Value> = std::fs::read_to_string(crate::common::data_path("search_queries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut same = 0;
    for q in &queries {
        let params: snapembed::search::SearchParams =
            serde_json::from_value(json!({"top_k": 5, "filter": q.get("filter")})).unwrap();
        let text = q["query"].as_str().unwrap();
        let a = snapembed::search::run(model, &mapped, text, &params, 1).unwrap().results;
        let b = snapembed::search::run(model, &pg, text, &params, 1).unwrap().results;
        assert!(!b.is_empty(), "{text}");
        if a[0].id == b[0].id {
            same += 1;
            // Same hit, same shape: the span and snippet of the same best chunk; scores within
            // the two stores' rounding (int8+f16 rescoring vs halfvec).
            assert_eq!((a[0].span, &a[0].snippet, &a[0].metadata), (b[0].span, &b[0].snippet, &b[0].metadata), "{text}");
            assert!((a[0].score - b[0].score).abs() < 5e-3, "{text}: {} vs {}", a[0].score, b[0].score);
        }
    }
    let rate = same as f64 / queries.len() as f64;
    eprintln!("same top-1 as the mapped index: {same}/{} ({rate:.3})", queries.len());
    assert!(rate >= 0.99, "{rate}");

    // --delete-missing: a corpus without its last 10 documents removes them (and their chunks).
    let dir = tempfile::tempdir().unwrap();
    let smaller = dir.path().join("smaller.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&corpus).unwrap().lines().take(290).map(str::to_owned).collect();
    std::fs::write(&smaller, lines.join("\n")).unwrap();
    let mut c = snapembed();
    c.arg("index").arg(&smaller).args(["--to", &url, "--table", table, "--delete-missing"]);
    let out = run_ok(&mut c);
    assert!(out.contains("0 written") && out.contains("10 deleted"), "{out}");
    assert_eq!(block(count(&url, "SELECT count(*) FROM t_cli_documents")), 290);
    assert_eq!(block(count(&url, "SELECT count(*) FROM t_cli_chunks c LEFT JOIN t_cli_documents d ON d.id = c.doc_id WHERE d.id IS NULL")), 0);

    // `snapembed search --search-url` gives what the library gave.
    let mut c = snapembed();
    c.args(["search", "--search-url", &url, "--search-table", table, "--json", "--top-k", "3", "refund annual plan"]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"][0]["id"], "kb-0003", "{v}");
}

#[test]
fn concurrent_shard_writers_fill_the_table_exactly_once() {
    let Some(url) = pg_url("shards") else { return };
    let table = "t_shards";
    block(drop_table(&url, table));
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c.jsonl");
    let docs: Vec<String> = (0..60)
        .map(|i| json!({"id": format!("d{i}"), "text": format!("note {i} about topic {}", i % 7), "metadata": {"k": i % 3}}).to_string())
        .collect();
    std::fs::write(&corpus, docs.join("\n")).unwrap();
    // Four processes at once, each its own shard; the first ones race to create the tables.
    let children: Vec<_> = (1..=4)
        .map(|i| {
            snapembed()
                .arg("index")
                .arg(&corpus)
                .args(["--to", &url, "--table", table, "--shard", &format!("{i}/4"), "--threads", "1"])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut written = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let n: usize = err.split(" written").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n > 0 && n < 60, "each shard takes a share: {err}");
        written += n;
    }
    assert_eq!(written, 60, "the shards partition the corpus");
    assert_eq!(block(count(&url, "SELECT count(*) FROM t_shards_documents")), 60);
    assert_eq!(block(count(&url, "SELECT count(DISTINCT doc_id) FROM t_shards_chunks")), 60);
    // A shard's --delete-missing touches only its own documents.
    let mut c = snapembed();
    let half = dir.path().join("half.jsonl");
    std::fs::write(&half, docs[..30].join("\n")).unwrap();
    c.arg("index").arg(&half).args(["--to", &url, "--table", table, "--shard", "2/4", "--delete-missing"]);
    let out = run_ok(&mut c);
    let deleted: i64 = out.split(" deleted").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(deleted > 0 && deleted < 30, "only shard 2's documents among the 30 removed: {out}");
    assert!(out.contains(" 0 written"), "{out}");
    assert_eq!(block(count(&url, "SELECT count(*) FROM t_shards_documents")), 60 - deleted);
}

#[test]
fn bad_urls_and_wrong_passwords_stop_the_server_at_start_with_the_reason() {
    let Some(url) = pg_url("start_errors") else { return };
    let serve = |search_url: &str| {
        let out = snapembed()
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--search-url", search_url])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = serve("mysql://u@127.0.0.1/db");
    assert!(e.contains("must start with postgres://"), "{e}");
    let e = serve("postgres://u@127.0.0.1/db?sslmode=sometimes");
    assert!(e.contains("sslmode"), "{e}");
    let wrong = url.replacen(":snapembed-test@", ":not-the-password@", 1);
    let e = serve(&wrong);
    assert!(e.contains("rejected the login of user \"snapembed\""), "{e}");
    assert!(!e.contains("not-the-password"), "{e}");
    let e = serve(&format!("{url}?sslmode=disable")); // the default table, which no test builds
    assert!(e.contains("does not exist") && e.contains("snapembed index"), "a missing table says how to build it: {e}");
}

/// Stops and starts a throwaway cluster of its own (tests/postgres.sh's binaries and user), so
/// the shared server stays up for the tests running beside this one.
fn cluster(action: &str) -> Option<String> {
    let ctl = std::env::var("SNAPEMBED_TEST_POSTGRES_CTL").ok()?;
    let out = std::process::Command::new("bash").args([&ctl, action, "outage"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = std::process::Command::new("bash").args([&ctl, "url", "outage"]).output().unwrap();
    Some(String::from_utf8_lossy(&url.stdout).trim().to_owned())
}

#[test]
fn a_database_stopped_mid_test_gives_503_then_search_recovers() {
    let Some(_) = pg_url("outage") else { return };
    let Some(url) = cluster("start") else {
        assert!(std::env::var("SNAPEMBED_REQUIRE_POSTGRES").as_deref() != Ok("1"), "SNAPEMBED_TEST_POSTGRES_CTL is unset");
        eprintln!("skipping outage: SNAPEMBED_TEST_POSTGRES_CTL (tests/postgres.sh) is unset");
        return;
    };
    // The outage cluster outlives a test run: a table left by an earlier model would be refused.
    block(drop_table(&url, "t_outage"));
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c.jsonl");
    std::fs::write(&corpus, "{\"id\": \"a\", \"text\": \"resetting a forgotten password\"}\n{\"id\": \"b\", \"text\": \"exporting invoices to a spreadsheet\"}\n").unwrap();
    let mut c = snapembed();
    c.arg("index").arg(&corpus).args(["--to", &url, "--table", "t_outage"]);
    run_ok(&mut c);

    let server = crate::server::Server::start(&[("SNAPEMBED_SEARCH_URL", &url), ("SNAPEMBED_SEARCH_TABLE", "t_outage"), ("SNAPEMBED_SEARCH_TIMEOUT_MS", "1000")]);
    let query = r#"{"query": "I forgot my password", "top_k": 1}"#;
    let (status, _, body) = http(&server.addr, "POST", "/search", Some(query));
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["results"][0]["id"], "a");
    let (_, _, health) = http(&server.addr, "GET", "/health", None);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!((health["status"].as_str(), &health["search"]), (Some("healthy"), &json!({"backend": "postgres", "reachable": true})));

    cluster("stop");
    let (status, head, body) = http(&server.addr, "POST", "/search", Some(query));
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("retry-after: 5"), "{head}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error_type"], "search_unavailable");
    assert!(!body.contains("snapembed-test"), "{body}");
    // Embedding needs no database.
    let (status, _, _) = http(&server.addr, "POST", "/embed", Some(r#"{"inputs": "still here"}"#));
    assert_eq!(status, 200);
    let (status, _, health) = http(&server.addr, "GET", "/health", None);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!((status, health["status"].as_str(), &health["search"]["reachable"]), (200, Some("degraded"), &json!(false)), "{health}");

    cluster("start");
    // The pool drops the dead connections and connects anew.
    let mut recovered = false;
    for _ in 0..20 {
        let (status, _, _) = http(&server.addr, "POST", "/search", Some(query));
        if status == 200 {
            recovered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(recovered, "search answers again once the database is back");
    let (_, _, health) = http(&server.addr, "GET", "/health", None);
    assert!(health.contains("\"healthy\""), "{health}");
    cluster("stop");
}

#[test]
fn a_search_waiting_on_the_database_leaves_the_compute_permit_to_embed() {
    let Some(url) = pg_url("permit") else { return };
    let table = "t_permit";
    block(drop_table(&url, table));
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c.jsonl");
    std::fs::write(&corpus, "{\"id\": \"a\", \"text\": \"resetting a forgotten password\"}\n").unwrap();
    let mut c = snapembed();
    c.arg("index").arg(&corpus).args(["--to", &url, "--table", table]);
    run_ok(&mut c);
    // One compute permit: while a search held it through its round trip, nothing else could
    // embed until the database answered (15 req/s at 1 and 8 clients in the first benchmark).
    let server = crate::server::Server::start(&[
        ("SNAPEMBED_SEARCH_URL", &url),
        ("SNAPEMBED_SEARCH_TABLE", table),
        ("SNAPEMBED_SEARCH_TIMEOUT_MS", "20000"),
        ("SNAPEMBED_THREADS", "1"),
    ]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    // Another session locks the table: the search's statement waits inside PostgreSQL.
    let (locker, conn) = runtime.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls)).unwrap();
    runtime.spawn(conn);
    runtime.block_on(locker.batch_execute("BEGIN; LOCK TABLE t_permit_chunks IN ACCESS EXCLUSIVE MODE")).unwrap();
    let addr = server.addr.clone();
    let search = std::thread::spawn(move || http(&addr, "POST", "/search", Some(r#"{"query": "forgot my password", "top_k": 1}"#)));
    let waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 't_permit_chunks'::regclass";
    let mut blocked = false;
    for _ in 0..100 {
        if runtime.block_on(locker.query_one(waiting, &[])).unwrap().get::<_, i64>(0) > 0 {
            blocked = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(blocked, "the search reached the database and waits on the lock");
    let t = std::time::Instant::now();
    let (status, _, body) = http(&server.addr, "POST", "/embed", Some(r#"{"inputs": "meanwhile"}"#));
    assert_eq!(status, 200, "{body}");
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "/embed waited {:?} for the search's permit", t.elapsed());
    assert!(!search.is_finished(), "the search still waits on the database");
    runtime.block_on(locker.batch_execute("COMMIT")).unwrap();
    let (status, _, body) = search.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["results"][0]["id"], "a");
}

#[test]
fn search_and_the_tally_webhook_answer_alike_from_postgres_and_from_the_mapped_index() {
    let Some(url) = pg_url("same_response") else { return };
    let table = "t_same";
    block(drop_table(&url, table));
    let mut c = snapembed();
    c.arg("index").arg(sample_corpus()).args(["--to", &url, "--table", table]);
    run_ok(&mut c);
    // The compiled-in sample index, and the same corpus in PostgreSQL.
    let mapped = crate::server::Server::start(&[]);
    let pg = crate::server::Server::start(&[("SNAPEMBED_SEARCH_URL", &url), ("SNAPEMBED_SEARCH_TABLE", table)]);
    let ask = |server: &crate::server::Server, path: &str, body: &str| -> Value {
        let (status, _, text) = http(&server.addr, "POST", path, Some(body));
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    };
    let fields = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let compare = |what: &str, a: &Value, b: &Value| {
        let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
        assert_eq!(a.len(), b.len(), "{what}");
        // The best hit is the same document, chunk and metadata; the rest the same documents
        // but for near-ties the two stores' rounding (int8+f16 rescoring vs halfvec) may swap.
        for key in ["id", "span", "snippet", "metadata"] {
            assert_eq!(a[0][key], b[0][key], "{what}: {key}");
        }
        assert!((a[0]["score"].as_f64().unwrap() - b[0]["score"].as_f64().unwrap()).abs() < 5e-3, "{what}");
        let ids = |v: &[Value]| v.iter().map(|h| h["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        let (ia, ib) = (ids(a), ids(b));
        let shared = ia.iter().filter(|id| ib.contains(id)).count();
        assert!(shared + 1 >= ia.len(), "{what}: {ia:?} vs {ib:?}");
    };
    for body in [
        r#"{"query": "how do I get a refund for my annual plan", "top_k": 5}"#,
        r#"{"query": "two-factor code lost", "top_k": 3, "filter": {"category": "account-login"}}"#,
    ] {
        let (a, b) = (ask(&mapped, "/search", body), ask(&pg, "/search", body));
        assert_eq!(fields(&a), fields(&b), "the same response shape");
        compare(body, &a["results"], &b["results"]);
    }
    for name in ["support_request", "sparse_answers"] {
        let body = std::fs::read_to_string(crate::common::data_path(&format!("tally/{name}.json"))).unwrap();
        let (a, b) = (ask(&mapped, "/webhook/tally", &body), ask(&pg, "/webhook/tally", &body));
        assert!(b.get("search_error").is_none(), "{b}");
        assert_eq!(fields(&a), fields(&b), "{name}: the same webhook response shape");
        assert_eq!(a["query"], b["query"], "{name}");
        compare(name, &a["matches"], &b["matches"]);
    }
}
