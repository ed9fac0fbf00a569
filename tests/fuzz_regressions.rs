//! What the fuzzers (fuzz/, run by bench/fuzz.sh) found, kept as regression tests on stable:
//! every file under tests/data/fuzz/<target>/ is a fuzzer input that once crashed, hung or
//! broke an invariant. Each goes through the same function and the same checks as its fuzz
//! target (fuzz/fuzz_targets/<target>.rs) and must now come back cleanly: a result, or an error
//! with a message. The snapshot and index inputs are turned into files here exactly as
//! fuzz/src/lib.rs does (the first byte picks raw or fixed-up), so a finding stays a few bytes
//! (a snapshot finding's file is its header in front of the real snapshot's tensor data).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request};
use snapembed::scorer::pdf::{extract_text, PdfLimits};
use snapembed::search::format as idx;
use snapembed::search::{MappedIndex, Search, SearchParams};
use snapembed::service::config::Limits;
use snapembed::service::memory::MemoryGuard;
use snapembed::service::{app, AppState};
use snapembed::Embedder;
use tower::ServiceExt;

use crate::common::{embedder, snapshot_path};

/// The inputs kept for `target`, with their names.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())).collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

// The inputs become files exactly as the fuzz targets make them: the same functions.
#[path = "../fuzz/src/files.rs"]
mod files;
use files::{assemble, index_file};

fn written(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn snapshot_findings_are_clean_errors() {
    let real = std::fs::read(snapshot_path()).unwrap();
    let data = files::split(&real).unwrap().1;
    for (name, input) in inputs("snapshot") {
        let Some(file) = files::snapshot_file(&input, data) else { continue };
        let (_dir, path) = written(&file);
        match Embedder::from_snapshot(&path) {
            Err(e) => assert!(!e.to_string().is_empty(), "{name}"),
            Ok(model) => {
                let v = model.embed(&["hello world"]).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(v[0].len(), model.dimensions(), "{name}");
            }
        }
    }
}

#[test]
fn index_findings_are_clean_errors() {
    for (name, input) in inputs("index") {
        let Some(file) = index_file(&input) else { continue };
        let (_dir, path) = written(&file);
        match MappedIndex::open(&path) {
            Err(e) => assert!(!e.to_string().is_empty(), "{name}"),
            Ok(index) => {
                let dims = index.header().model.dimensions as usize;
                let q = vec![0.5f32; dims];
                let params = SearchParams { top_k: Some(3), ..SearchParams::default() };
                if let Ok(hits) = index.search(std::slice::from_ref(&q), &params) {
                    assert!(hits.len() <= 3, "{name}");
                }
                assert!(index.search_exhaustive(std::slice::from_ref(&q), &params).len() <= 3, "{name}");
            }
        }
    }
}

#[test]
fn tokenizer_findings_encode_within_bounds() {
    let model = embedder();
    for (name, input) in inputs("tokenizer") {
        let text = String::from_utf8_lossy(&input);
        let enc = model.tokenize(&text);
        assert!(enc.ids.len() >= 2 && enc.ids.len() <= model.max_tokens(), "{name}");
        for span in model.chunk(&text) {
            assert!(text.get(span.start..span.end).is_some(), "{name}: chunk {}..{}", span.start, span.end);
            assert!(span.pieces <= model.max_tokens() - 2, "{name}");
        }
    }
}

#[test]
fn json_findings_deserialize_or_reject() {
    use snapembed::service::types::{EmbedRequest, OpenAiRequest, SimilarityRequest};
    for (_name, input) in inputs("json") {
        let _ = axum::Json::<EmbedRequest>::from_bytes(&input);
        let _ = axum::Json::<OpenAiRequest>::from_bytes(&input);
        let _ = axum::Json::<SimilarityRequest>::from_bytes(&input);
        let _ = axum::Json::<snapembed::search::SearchRequest>::from_bytes(&input);
        let _ = axum::Json::<snapembed::service::resume_input::ResumeJson>::from_bytes(&input);
        let _ = axum::Json::<snapembed::service::RankRequest>::from_bytes(&input);
    }
}

/// The router the `http` target drives: the real model and corpus.
fn router() -> &'static axum::Router {
    static APP: OnceLock<axum::Router> = OnceLock::new();
    APP.get_or_init(|| {
        let corpus = MappedIndex::open(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts/corpus.idx")).unwrap();
        let model = Embedder::from_snapshot(&snapshot_path()).map_err(|e| e.to_string());
        app(AppState::new(model, Limits::default(), 1, MemoryGuard::new(Some(1 << 30))).with_corpus(Arc::new(corpus)))
    })
}

#[tokio::test]
async fn http_findings_answer_4xx_json() {
    for (name, input) in inputs("http") {
        let Some((method, path, content_type, body)) = files::http_request(&input) else { continue };
        let mut req = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let resp = router().clone().oneshot(req.body(Body::from(body.to_vec())).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        assert!(!status.is_server_error(), "{name}: {path} {status} {}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_else(|e| panic!("{name}: {status} not JSON: {e}"));
    }
}

#[tokio::test]
async fn tally_findings_are_refused_or_answered() {
    use snapembed::tally::{Settings, Webhook, WebhookError};
    let hook = Webhook::new(Settings { secret: Some(b"fuzz-signing-secret".to_vec()), max_query_chars: 2000, ..Settings::default() }).unwrap();
    for (name, input) in inputs("tally") {
        let Some((&mode, rest)) = input.split_first() else { continue };
        let (sig, body) = if mode % 2 == 0 {
            (snapembed::tally::signature::sign(b"fuzz-signing-secret", rest).into_bytes(), rest)
        } else {
            let Some((&n, rest)) = rest.split_first() else { continue };
            let n = (n as usize).min(rest.len());
            (rest[..n].to_vec(), &rest[n..])
        };
        let search = |_q: String| async { Ok::<_, String>(vec![serde_json::json!({"id": "doc-1"})]) };
        match hook.handle(Some(&sig), body, Instant::now(), search).await {
            Err(WebhookError::Signature(e)) => assert!(mode % 2 == 1, "{name}: a signed body was refused: {e}"),
            Err(e) => assert!(!e.to_string().is_empty(), "{name}"),
            Ok(_) => {}
        }
    }
}

#[test]
fn pdf_findings_come_back_within_their_limits() {
    let limits = PdfLimits { max_bytes: 1 << 20, timeout: Duration::from_secs(2), max_inflated_bytes: 64 << 20, max_text_bytes: 1 << 20, ..PdfLimits::default() };
    for (name, input) in inputs("pdf") {
        let t = Instant::now();
        let result = extract_text(&input, &limits);
        assert!(t.elapsed() < Duration::from_secs(3), "{name}: {:?}", t.elapsed());
        if let Ok(text) = result {
            assert!(text.len() <= limits.max_text_bytes, "{name}");
        }
    }
}

/// Every fuzz target has its regression test above, and none was added without one.
#[test]
fn every_fuzz_target_has_a_regression_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut targets: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
    targets.sort();
    assert_eq!(targets, ["http", "index", "json", "pdf", "snapshot", "tally", "tokenizer"]);
}

/// The index findings above were format-1 files (now refused by version); these rebuild them
/// in the current format so the fixes stay covered.
#[test]
fn an_index_header_claiming_a_huge_string_is_a_decode_error_not_an_abort() {
    // bincode varint 253 = a u64 follows: `created_by` claims 2^56 bytes.
    let mut header = vec![253];
    header.extend_from_slice(&(1u64 << 56).to_le_bytes());
    header.extend_from_slice(b"rest");
    let (_dir, path) = written(&assemble(&idx::MAGIC, &header, &[]));
    let e = MappedIndex::open(&path).unwrap_err();
    assert!(matches!(e, snapembed::search::IndexError::HeaderDecode(_)), "{e}");
}

#[test]
fn a_document_whose_vectors_are_nan_has_no_hit_and_no_panic() {
    use snapembed::search::writer::{write, DocEntry};
    let meta = serde_json::Map::new();
    let docs = [
        DocEntry { id: "nan", text: "all NaN", metadata: &meta, spans: vec![(0, 7)] },
        DocEntry { id: "ok", text: "fine", metadata: &meta, spans: vec![(0, 4)] },
    ];
    let vectors = vec![vec![f32::NAN; 8], vec![0.5; 8]];
    let model = idx::ModelRef { name: "t".into(), checksum: 1, dimensions: 8 };
    let (_dir, path) = written(&write(model, &docs, &vectors).unwrap());
    let index = MappedIndex::open(&path).unwrap();
    let params = SearchParams { top_k: Some(5), ..SearchParams::default() };
    let hits = index.search_exhaustive(&[vec![0.3; 8]], &params);
    assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["ok"]);
    let hits = index.search(&[vec![0.3; 8]], &params).unwrap();
    assert!(hits.iter().all(|h| h.id == "ok"), "{hits:?}");
}

/// A forged index whose sign-bit rows set the padding past the dimension count (8 dimensions
/// use 8 bits of each row's 64-bit word). The prefilter caps every distance at the dimension
/// count, so those chunks stay candidates; uncapped, their distances would fall in the bin of
/// chunks a filter left out, and a search over more chunks than the prefilter's floor (20,000)
/// would find nothing.
#[test]
fn sign_bits_set_in_the_padding_do_not_hide_chunks_from_the_prefilter() {
    use snapembed::search::writer::{write, DocEntry};
    let n = 20_500;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let vectors: Vec<Vec<f32>> = (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..8).map(|_| next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / norm).collect()
        })
        .collect();
    let ids: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let meta = serde_json::Map::new();
    let docs: Vec<DocEntry> = ids.iter().map(|id| DocEntry { id, text: "t", metadata: &meta, spans: vec![(0, 1)] }).collect();
    let model = idx::ModelRef { name: "t".into(), checksum: 1, dimensions: 8 };
    let mut file = write(model, &docs, &vectors).unwrap();

    let (header, data) = files::split(&file).unwrap();
    let data_start = file.len() - data.len();
    let (header, _): (idx::IndexHeader, _) = bincode::serde::decode_from_slice(header, files::bincode_config()).unwrap();
    let bits = header.sections.iter().find(|s| s.name == idx::section::VECTORS_BITS).unwrap();
    let at = data_start + bits.offset as usize;
    for word in file[at..at + bits.nbytes as usize].chunks_exact_mut(8) {
        let forged = u64::from_le_bytes(word.try_into().unwrap()) | !0xff;
        word.copy_from_slice(&forged.to_le_bytes());
    }
    // The checksums made right again, as the index fuzz target's fix-up mode does.
    let forged = files::index_file(&[&[1u8][..], &file].concat()).unwrap();
    let (_dir, path) = written(&forged);
    let index = MappedIndex::open(&path).unwrap();

    let params = SearchParams { top_k: Some(3), ..SearchParams::default() };
    for i in [0, 123, n - 1] {
        let q = std::slice::from_ref(&vectors[i]);
        let hits = index.search(q, &params).unwrap();
        let exact = index.search_exhaustive(q, &params);
        assert_eq!(exact.len(), 3);
        assert_eq!(hits.iter().map(|h| &h.id).collect::<Vec<_>>(), exact.iter().map(|h| &h.id).collect::<Vec<_>>(), "query d{i}");
    }
}
