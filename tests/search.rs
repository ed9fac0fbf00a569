//! Corpus search as a user meets it: `snapembed index` on JSON Lines and CSV files (bad records,
//! --strict, determinism, atomic output), damaged and foreign indexes refused at start, and
//! `POST /search` through the router and over a real socket.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use snapembed::search::corpus::{self, Format};
use snapembed::search::format::ModelRef;
use snapembed::search::{builder, IndexError, MappedIndex, Search, SearchError, SearchParams};
use snapembed::service::config::Limits;
use snapembed::service::memory::MemoryGuard;
use snapembed::service::{app, AppState};
use snapembed::engine::kernels::Isa;
use snapembed::Embedder;
use tower::ServiceExt;

use crate::common::{data_path, embedder, http_request, snapshot_path};

fn snapembed() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snapembed"));
    c.env("SNAPEMBED_SNAPSHOT", snapshot_path()).env_remove("SNAPEMBED_CORPUS");
    c
}

/// The fixture's index, built once in process.
fn fixture_index() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fixture.idx");
        build(&data_path("search_fixture.jsonl"), &path, 2);
        (dir, path)
    });
    path
}

fn build(corpus_path: &Path, out: &Path, threads: usize) {
    let loaded = corpus::load(corpus_path, &Format::JsonLines, true).unwrap();
    let model = embedder();
    let embedded = builder::embed_documents(model, &loaded.documents, threads, &mut |_, _| {}).unwrap();
    let bytes = builder::index_bytes(builder::model_ref(model), &loaded.documents, &embedded).unwrap();
    builder::write_atomically(out, &bytes).unwrap();
}

fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(out.status.success(), "{stderr}");
    (stdout, stderr)
}

fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8(out.stderr).unwrap()
}

fn search(index: &MappedIndex, query: &str, params: Value) -> Vec<snapembed::search::SearchHit> {
    let params: SearchParams = serde_json::from_value(params).unwrap();
    snapembed::search::run(embedder(), index, query, &params, 1).unwrap().results
}

#[test]
fn index_and_search_a_jsonl_corpus_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kb.idx");
    let corpus = data_path("search_fixture.jsonl");
    let (_, stderr) = run_ok(snapembed().arg("index").arg(&corpus).arg("-o").arg(&out));
    assert!(stderr.contains("indexed 11 documents") && stderr.contains("MB in"), "{stderr}");
    assert!(stderr.contains("embedding chunks:"), "plain progress lines when stderr is not a terminal: {stderr}");
    let (stdout, _) = run_ok(snapembed().args(["search", "--json", "--top-k", "3", "--index"]).arg(&out).arg("how do I get my money back"));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["results"][0]["id"], "refund", "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    let (stdout, _) = run_ok(
        snapembed()
            .args(["search", "--filter", "category=data", "--filter", "category=forms", "--index"])
            .arg(&out)
            .arg("how big can uploaded files be"),
    );
    assert!(stdout.lines().next().unwrap().contains("file-upload"), "{stdout}");
    assert!(!stdout.contains("refund"), "the filter keeps other categories out: {stdout}");
}

#[test]
fn csv_columns_bad_rows_with_line_numbers_and_strict() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("faq.csv");
    std::fs::write(
        &csv,
        "question_id,body,category,owner\n\
         q1,\"Reset a password from Settings, Security.\",account,ana\n\
         q2,,billing,bo\n\
         q1,Duplicate of the first,account,ana\n\
         q3,Too many fields,data,x,extra\n\
         q4,\"Refunds within 30 days\nof purchase.\",billing,\n",
    )
    .unwrap();
    let out = dir.path().join("faq.idx");
    let (_, stderr) =
        run_ok(snapembed().arg("index").arg(&csv).args(["--text-column", "body", "--id-column", "question_id", "-o"]).arg(&out));
    assert!(stderr.contains("line 3: the text is empty"), "{stderr}");
    assert!(stderr.contains("line 4: duplicate id \"q1\" (first on line 2)"), "{stderr}");
    assert!(stderr.contains("line 5: malformed record: 5 fields, the header has 4"), "{stderr}");
    assert!(stderr.contains("indexed 2 documents") && stderr.contains("3 records skipped"), "{stderr}");
    let index = MappedIndex::open(&out).unwrap();
    assert_eq!(index.id(1), "q4");
    assert_eq!(index.text(1), "Refunds within 30 days\nof purchase.");
    assert_eq!(index.metadata(1), json!({"category": "billing"}), "empty cells are absent, not empty strings");
    assert_eq!(index.metadata(0), json!({"category": "account", "owner": "ana"}));

    let strict_out = dir.path().join("strict.idx");
    let err = run_err(snapembed().arg("index").arg(&csv).args(["--text-column", "body", "--id-column", "question_id", "--strict", "-o"]).arg(&strict_out));
    assert!(err.contains("line 3: the text is empty (--strict)"), "{err}");
    assert!(!strict_out.exists());

    let err = run_err(snapembed().arg("index").arg(&csv).arg("-o").arg(dir.path().join("x.idx")));
    assert!(err.contains("no column \"text\"") && err.contains("question_id, body, category, owner"), "{err}");
}

#[test]
fn a_failed_build_leaves_no_index_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    // The output is a directory: the final rename fails after the whole index was written.
    let target = dir.path().join("out.idx");
    std::fs::create_dir(&target).unwrap();
    let err = run_err(snapembed().arg("index").arg(data_path("search_fixture.jsonl")).arg("-o").arg(&target));
    assert!(err.contains("cannot write the index"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("out.idx")], "no temporary file is left behind");
    // A strict failure does not touch an existing index.
    let old = dir.path().join("old.idx");
    std::fs::write(&old, b"previous index").unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": \"a\", \"text\": \"fine\"}\nnot json\n").unwrap();
    run_err(snapembed().arg("index").arg(&bad).arg("--strict").arg("-o").arg(&old));
    assert_eq!(std::fs::read(&old).unwrap(), b"previous index");
}

#[test]
fn the_same_corpus_gives_the_same_bytes_whatever_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a.idx"), dir.path().join("b.idx"), dir.path().join("c.idx"));
    build(&data_path("search_fixture.jsonl"), &a, 1);
    build(&data_path("search_fixture.jsonl"), &b, 1);
    build(&data_path("search_fixture.jsonl"), &c, 2);
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap(), "build twice, same bytes");
    assert_eq!(bytes, std::fs::read(&c).unwrap(), "1 thread or 2, same bytes");
    assert_eq!(bytes, std::fs::read(fixture_index()).unwrap());
}

#[test]
fn hits_point_at_the_best_chunk_of_a_long_document() {
    let index = MappedIndex::open(fixture_index()).unwrap();
    let doc = (0..index.documents()).find(|&d| index.id(d) == "security-guide").unwrap();
    let text = index.text(doc);
    let hits = search(&index, "register a hardware security key like a YubiKey for two-factor sign-in", json!({"top_k": 1}));
    let hit = &hits[0];
    assert_eq!(hit.id, "security-guide");
    let chars: Vec<char> = text.chars().collect();
    let at_span: String = chars[hit.span[0]..hit.span[1]].iter().collect();
    assert!(at_span.trim().starts_with(hit.snippet.trim_end_matches('…')), "the span holds the snippet");
    if index.doc_chunks(doc).len() > 1 {
        assert!(at_span.contains("YubiKey"), "the best chunk is the one about keys: {at_span}");
        assert!(hit.span[0] > 0, "a later chunk, not the start of the text");
        assert!(hit.span[1] - hit.span[0] < chars.len());
    }
}

#[test]
fn every_chunk_span_lies_on_the_text_and_covers_it() {
    let index = MappedIndex::open(fixture_index()).unwrap();
    for d in 0..index.documents() {
        let text = index.text(d);
        let chunks = index.doc_chunks(d);
        let spans: Vec<_> = chunks.map(|c| index.span(c)).collect();
        assert_eq!(spans.first().unwrap().start, text.len() - text.trim_start().len(), "starts at the first word");
        assert_eq!(spans.last().unwrap().end, text.trim_end().len(), "ends at the last word: {}", index.id(d));
        for s in &spans {
            assert!(text.get(s.clone()).is_some(), "span on char boundaries");
        }
        for w in spans.windows(2) {
            assert!(w[1].start <= w[0].end, "consecutive chunks overlap or touch");
        }
    }
}

#[test]
fn filters_lists_min_score_and_top_k() {
    let index = MappedIndex::open(fixture_index()).unwrap();
    let all = search(&index, "billing question", json!({"top_k": 100}));
    assert_eq!(all.len(), 11, "one hit per document");
    assert!(all.windows(2).all(|w| w[0].score >= w[1].score), "best first");
    let billing = search(&index, "billing question", json!({"top_k": 100, "filter": {"category": "billing"}}));
    let ids: Vec<&str> = billing.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"refund") && ids.contains(&"invoice"));
    let two = search(&index, "billing question", json!({"top_k": 100, "filter": {"category": ["billing", "data"]}}));
    assert_eq!(two.len(), 4);
    let and = search(&index, "billing question", json!({"top_k": 100, "filter": {"category": ["billing", "data"], "plan": "pro"}}));
    assert_eq!(and.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["invoice"]);
    let tag = search(&index, "privacy", json!({"filter": {"tags": "legal"}}));
    assert_eq!(tag.len(), 1, "a list in metadata matches any of its items");
    assert_eq!(tag[0].id, "gdpr");
    assert!(search(&index, "billing question", json!({"filter": {"category": "nope"}})).is_empty());
    let cut = all[3].score;
    let above = search(&index, "billing question", json!({"top_k": 100, "min_score": cut}));
    assert_eq!(above.len(), 4);
    assert!(above.iter().all(|h| h.score >= cut));
    assert_eq!(search(&index, "billing question", json!({"top_k": 2})).len(), 2);
    let err = snapembed::search::run(embedder(), &index, "x", &SearchParams { top_k: Some(101), ..Default::default() }, 1).unwrap_err();
    assert!(matches!(err, SearchError::InvalidParam { ref field, .. } if field == "top_k"), "{err}");
}

#[test]
fn the_fast_scan_finds_what_exact_search_finds() {
    let index = MappedIndex::open(fixture_index()).unwrap();
    let model = embedder();
    for query in ["reset password", "money back", "upload size", "two factor key", "EU data storage", "add a colleague"] {
        let q = model.embed(&[query]).unwrap();
        let params = SearchParams { top_k: Some(5), ..Default::default() };
        let fast = index.search(&q, &params).unwrap();
        let exact = index.search_exhaustive(&q, &params);
        let ids = |h: &[snapembed::search::SearchHit]| h.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&fast), ids(&exact), "{query}");
    }
}

fn modified_index(edit: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.idx");
    let mut bytes = std::fs::read(fixture_index()).unwrap();
    edit(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn damaged_indexes_are_refused_each_with_its_reason() {
    let open = |edit: fn(&mut Vec<u8>)| MappedIndex::open(&modified_index(edit).1).unwrap_err();
    assert!(matches!(open(|b| b.truncate(b.len() - 100)), IndexError::Truncated { .. }));
    assert!(matches!(open(|b| b.truncate(10)), IndexError::Truncated { .. }));
    // Each section has its checksum, and the error names the damaged one.
    assert!(matches!(open(|b| *b.last_mut().unwrap() ^= 1), IndexError::SectionChecksum { name, .. } if name == "filter.postings"));
    assert!(matches!(open(|b| b[30] ^= 0xff), IndexError::HeaderChecksum));
    assert!(matches!(open(|b| b[8] = 9), IndexError::UnsupportedVersion { found: 9, supported: 2 }));
    // Version 1 (one checksum, no sign bits) is refused with the way out.
    let err = open(|b| b[8] = 1).to_string();
    assert!(err.contains("version 1 is not supported") && err.contains("rebuild it with `snapembed index`"), "{err}");
    assert!(matches!(open(|b| b[0] = b'X'), IndexError::BadMagic));
    assert!(matches!(open(|b| b.extend_from_slice(&[0; 3])), IndexError::TrailingBytes { extra: 3 }));
    let err = MappedIndex::open(Path::new("/nonexistent.idx")).unwrap_err().to_string();
    assert!(err.contains("cannot open index /nonexistent.idx"), "{err}");
}

#[test]
fn the_server_refuses_a_damaged_or_foreign_index_at_start() {
    let (_d1, truncated) = modified_index(|b| b.truncate(b.len() / 2));
    let err = run_err(snapembed().args(["serve", "--host", "127.0.0.1", "--port", "0", "--corpus"]).arg(&truncated));
    assert!(err.contains("corpus: index is truncated"), "{err}");
    let (_d2, newer) = modified_index(|b| b[8] = 3);
    let err = run_err(snapembed().args(["serve", "--host", "127.0.0.1", "--port", "0"]).env("SNAPEMBED_CORPUS", &newer));
    assert!(err.contains("index format version 3 is not supported"), "{err}");

    // Another model: same dimensions, another snapshot checksum.
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.idx");
    let loaded = corpus::load(&data_path("search_fixture.jsonl"), &Format::JsonLines, true).unwrap();
    let embedded = builder::embed_documents(embedder(), &loaded.documents[..2], 1, &mut |_, _| {}).unwrap();
    let other = ModelRef { name: "all-MiniLM-L6-v2".into(), checksum: 0xdead_beef, dimensions: 384 };
    std::fs::write(&foreign, builder::index_bytes(other, &loaded.documents[..2], &embedded).unwrap()).unwrap();
    let index = MappedIndex::open(&foreign).unwrap();
    assert!(matches!(index.check_model(embedder()), Err(SearchError::Index(IndexError::ModelMismatch { index_checksum: 0xdead_beef, .. }))));
    let err = run_err(snapembed().args(["serve", "--host", "127.0.0.1", "--port", "0", "--corpus"]).arg(&foreign));
    assert!(err.contains("was built with model all-MiniLM-L6-v2 (snapshot checksum 0xdeadbeef)"), "{err}");
    let err = run_err(snapembed().args(["search", "--index"]).arg(&foreign).arg("anything"));
    assert!(err.contains("rebuild it with `snapembed index`"), "{err}");
}

#[test]
fn an_index_is_the_same_bytes_whichever_int8_kernels_build_it() {
    // Plain AVX2 queries with 7-bit activations, but stored vectors use the 8-bit spec that
    // the VNNI servers compute too.
    let loaded = corpus::load(&data_path("search_fixture.jsonl"), &Format::JsonLines, true).unwrap();
    let build = |isa| {
        let model = Embedder::from_snapshot(&snapshot_path()).unwrap().with_isa(isa);
        let embedded = builder::embed_documents(&model, &loaded.documents, 2, &mut |_, _| {}).unwrap();
        builder::index_bytes(builder::model_ref(&model), &loaded.documents, &embedded).unwrap()
    };
    let int8: Vec<Isa> = Isa::available().into_iter().filter(|i| i.quantizes_activations()).collect();
    let Some((&first, rest)) = int8.split_first() else {
        eprintln!("skipped: this CPU has no int8 kernels");
        return;
    };
    assert!(int8.iter().any(|i| i.reproducible() != *i), "one of {int8:?} is not its own reproducible kernel");
    let want = build(first);
    for &isa in rest {
        assert!(build(isa) == want, "{} builds another index than {}", isa.name(), first.name());
    }
}

fn router(with_corpus: bool) -> Router {
    let model = Embedder::from_snapshot(&snapshot_path()).map_err(|e| e.to_string());
    let mut state = AppState::new(model, Limits::default(), 2, MemoryGuard::new(None));
    if with_corpus {
        state = state.with_corpus(Arc::new(MappedIndex::open(fixture_index()).unwrap()));
    }
    app(state)
}

async fn call(app: &Router, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, "application/json");
    let req = req.body(body.map_or(Body::empty(), |b| Body::from(b.to_string()))).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn search_endpoint_round_trips_and_names_bad_fields() {
    let app = router(true);
    let (s, v) = call(&app, "POST", "/search", Some(json!({"query": "I forgot my password", "top_k": 2}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["id"], "pw-reset");
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    let hit = &v["results"][0];
    assert!(hit["score"].as_f64().unwrap() > 0.5 && hit["snippet"].as_str().unwrap().contains("Forgot password"));
    assert_eq!(hit["span"][0], 0);
    assert_eq!(hit["metadata"]["category"], "account");
    assert!(v["took_ms"].as_f64().unwrap() > 0.0);

    let (s, v) = call(&app, "POST", "/search", Some(json!({"query": "storage", "filter": {"category": ["data"]}, "min_score": -1}))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["results"].as_array().unwrap().iter().all(|h| h["metadata"]["category"] == "data"));
    assert_eq!(v["results"].as_array().unwrap().len(), 2);

    for (body, field) in [
        (json!({"query": "x", "top_k": 0}), "top_k"),
        (json!({"query": "x", "top_k": 101}), "top_k"),
        (json!({"query": "x", "top_k": -3}), "top_k"),
        (json!({"query": "x", "min_score": 2}), "min_score"),
        (json!({"query": "x", "filter": {"category": {"a": 1}}}), "filter.category"),
        (json!({"query": "  "}), "query"),
        (json!({"top_k": 3}), "query"),
    ] {
        let (s, v) = call(&app, "POST", "/search", Some(body.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{body} → {v}");
    }

    let (s, v) = call(&app, "GET", "/health", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["corpus"]["documents"], 11);
    assert!(v["corpus"]["chunks"].as_u64().unwrap() >= 11);
    assert!(v["corpus"]["checksum"].as_str().unwrap().starts_with("crc32:"));
    let (_, v) = call(&app, "GET", "/model-status", None).await;
    assert!(v["corpus"]["load_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["corpus"]["source"], fixture_index().display().to_string());
    let metrics = {
        let resp = app.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        String::from_utf8(axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
    };
    assert!(metrics.contains("snapembed_searches_total 2"), "{metrics}");
}

#[tokio::test]
async fn without_a_corpus_search_is_a_503_that_says_how_to_give_one() {
    let (s, v) = call(&router(false), "POST", "/search", Some(json!({"query": "hello"}))).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error_type"], "no_corpus");
    assert!(v["error"].as_str().unwrap().contains("--corpus FILE"), "{v}");
    let (_, v) = call(&router(false), "GET", "/health", None).await;
    assert_eq!(v["corpus"], Value::Null);
}

#[test]
fn search_over_a_real_socket() {
    let path = fixture_index().display().to_string();
    let server = crate::server::Server::start(&[("SNAPEMBED_CORPUS", &path)]);
    let (s, body) = http_request(&server.addr, "POST", "/search", Some(r#"{"query": "export my responses as a spreadsheet", "top_k": 1}"#));
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["results"][0]["id"], "export");
    let (s, body) = http_request(&server.addr, "POST", "/search", Some(r#"{"query": "x", "top_k": 1000}"#));
    assert_eq!(s, 422);
    assert!(body.contains("top_k"));
}

/// Flips one byte in the middle of `section` of the fixture index.
fn damage_section(bytes: &mut [u8], section: &str) {
    let header = MappedIndex::open(fixture_index()).unwrap().header().clone();
    let info = header.sections.iter().find(|s| s.name == section).unwrap();
    let data_start = bytes.len() - header.data_len as usize;
    bytes[data_start + (info.offset + info.nbytes / 2) as usize] ^= 0x40;
}

/// The server checks the big sections after it starts (so the first answer does not wait for
/// hundreds of megabytes of checksums): a damaged vector section then takes /search out of
/// service with a 503 naming it, while /embed keeps answering. `MappedIndex::open` (the CLI)
/// refuses the same file at once.
#[test]
fn damage_in_a_big_section_found_after_start_takes_search_out_of_service() {
    let (_dir, path) = modified_index(|b| damage_section(b, "vectors.f16"));
    let e = MappedIndex::open(&path).unwrap_err();
    assert!(matches!(&e, IndexError::SectionChecksum { name, .. } if name == "vectors.f16"), "{e}");
    let deferred = MappedIndex::open_with(&path, snapembed::search::index::Verify::Deferred).unwrap();
    assert!(!deferred.verified());
    assert!(deferred.verify_deferred().is_err());
    let good = MappedIndex::open_with(fixture_index(), snapembed::search::index::Verify::Deferred).unwrap();
    assert!(!good.verified());
    good.verify_deferred().unwrap();
    assert!(good.verified());

    let path = path.display().to_string();
    let server = crate::server::Server::start(&[("SNAPEMBED_CORPUS", &path)]);
    let t = std::time::Instant::now();
    let (status, body) = loop {
        let (s, body) = http_request(&server.addr, "POST", "/search", Some(r#"{"query": "export my responses", "top_k": 1}"#));
        if s != 200 || t.elapsed().as_secs() > 10 {
            break (s, body);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error_type"], "search_unavailable", "{v}");
    assert!(v["error"].as_str().unwrap().contains("vectors.f16"), "{v}");
    let (s, _) = http_request(&server.addr, "POST", "/embed", Some(r#"{"inputs": "still embedding"}"#));
    assert_eq!(s, 200);
    let (s, body) = http_request(&server.addr, "GET", "/health", None);
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "degraded", "{v}");
    assert!(v["search"]["error"].as_str().unwrap().contains("vectors.f16"), "{v}");
}

/// Does `metadata` pass `filter` (the index's semantics, written out plainly)?
fn passes(metadata: &serde_json::Map<String, Value>, filter: &Value) -> bool {
    filter.as_object().into_iter().flatten().all(|(key, want)| {
        let wanted: Vec<&Value> = match want {
            Value::Array(v) => v.iter().collect(),
            v => vec![v],
        };
        match metadata.get(key) {
            Some(Value::Array(have)) => have.iter().any(|h| wanted.contains(&h)),
            Some(have) => wanted.contains(&have),
            None => false,
        }
    })
}

/// The sample corpus's labelled queries: MRR@10 and recall@10 of the fast scan and of exact f32
/// search over the same chunks, and recall@10 of the fast scan against exact (≥ 0.99). Also
/// proves the committed artifacts/corpus.idx is what `snapembed index` builds from the sample.
#[test]
fn search_quality_on_the_labelled_queries() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus_path = root.join("artifacts/sample-corpus.jsonl");
    let queries_path = data_path("search_queries.jsonl");
    if !corpus_path.exists() || !queries_path.exists() {
        eprintln!("skipped: artifacts/sample-corpus.jsonl or tests/data/search_queries.jsonl is absent");
        return;
    }
    let model = embedder();
    let loaded = corpus::load(&corpus_path, &Format::JsonLines, true).unwrap();
    let embedded = builder::embed_documents(model, &loaded.documents, 2, &mut |_, _| {}).unwrap();
    let bytes = builder::index_bytes(builder::model_ref(model), &loaded.documents, &embedded).unwrap();
    let committed = std::fs::read(root.join("artifacts/corpus.idx")).unwrap_or_default();
    assert!(
        committed == bytes,
        "artifacts/corpus.idx is not what the sample corpus builds: run `cargo run --release -- index artifacts/sample-corpus.jsonl -o artifacts/corpus.idx`"
    );
    let index = MappedIndex::open(&root.join("artifacts/corpus.idx")).unwrap();

    let mut doc_of_chunk = Vec::new();
    for (d, spans) in embedded.spans.iter().enumerate() {
        doc_of_chunk.extend(std::iter::repeat_n(d, spans.len()));
    }
    let (mut mrr, mut recall, mut mrr_exact, mut recall_exact, mut agree, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0, 0usize);
    for line in std::fs::read_to_string(&queries_path).unwrap().lines().filter(|l| !l.trim().is_empty()) {
        let q: Value = serde_json::from_str(line).unwrap();
        let text = q["query"].as_str().unwrap();
        let relevant: Vec<&str> = q["relevant"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let filter = q.get("filter").cloned().unwrap_or(Value::Null);
        let pieces: Vec<&str> = snapembed::search::chunk_spans(model, text).into_iter().map(|r| &text[r]).collect();
        let qv = model.embed(&pieces).unwrap();
        let params: SearchParams = serde_json::from_value(json!({"top_k": 10, "filter": filter})).unwrap();
        let fast: Vec<String> = index.search(&qv, &params).unwrap().into_iter().map(|h| h.id).collect();
        // Exact: f32 cosine of every chunk, best chunk per document.
        let mut best = vec![f32::NEG_INFINITY; loaded.documents.len()];
        for (c, v) in embedded.vectors.iter().enumerate() {
            let d = doc_of_chunk[c];
            if filter.is_null() || passes(&loaded.documents[d].metadata, &filter) {
                for q in &qv {
                    best[d] = best[d].max(q.iter().zip(v).map(|(a, b)| a * b).sum());
                }
            }
        }
        let mut order: Vec<usize> = (0..best.len()).filter(|&d| best[d] > f32::NEG_INFINITY).collect();
        order.sort_by(|&a, &b| best[b].total_cmp(&best[a]).then(a.cmp(&b)));
        let exact: Vec<String> = order.iter().take(10).map(|&d| loaded.documents[d].id.clone()).collect();
        let score = |ranked: &[String]| {
            let rr = ranked.iter().position(|id| relevant.contains(&id.as_str())).map_or(0.0, |p| 1.0 / (p + 1) as f64);
            let found = relevant.iter().filter(|r| ranked.iter().any(|id| id == *r)).count();
            (rr, found as f64 / relevant.len() as f64)
        };
        let (rr, rc) = score(&fast);
        let (rre, rce) = score(&exact);
        mrr += rr;
        recall += rc;
        mrr_exact += rre;
        recall_exact += rce;
        agree += fast.iter().filter(|id| exact.contains(id)).count() as f64 / exact.len().max(1) as f64;
        n += 1;
    }
    let n = n as f64;
    let (mrr, recall, mrr_exact, recall_exact, agree) = (mrr / n, recall / n, mrr_exact / n, recall_exact / n, agree / n);
    eprintln!(
        "search quality on {n} labelled queries, {} documents, {} chunks: fast scan MRR@10 {mrr:.4} recall@10 {recall:.4}; \
         exact f32 MRR@10 {mrr_exact:.4} recall@10 {recall_exact:.4}; recall@10 of fast vs exact {agree:.4}",
        loaded.documents.len(),
        embedded.vectors.len()
    );
    assert!(agree >= 0.99, "recall@10 of the fast scan against exact f32 search: {agree}");
    assert!(mrr > 0.6 && recall > 0.7, "the sample corpus answers its queries: MRR@10 {mrr}, recall@10 {recall}");
}
