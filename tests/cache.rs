//! The embedding cache seen from outside: the same bits with and without it, through the
//! `Embedder` and through the API, and its counters in `/metrics` and `/model-status`.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use snapembed::service::config::Limits;
use snapembed::service::memory::MemoryGuard;
use snapembed::service::{app, AppState};
use snapembed::{EmbedOptions, Embedder};

use crate::common::{embedder, snapshot_path};
use crate::http::send;

fn cached_embedder(entries: usize) -> Embedder {
    Embedder::from_snapshot(&snapshot_path()).unwrap().with_cache(entries)
}

fn bits(vectors: &[Vec<f32>]) -> Vec<Vec<u32>> {
    vectors.iter().map(|v| v.iter().map(|x| x.to_bits()).collect()).collect()
}

#[test]
fn cached_vectors_are_the_same_bits() {
    let cached = cached_embedder(100);
    let plain = embedder();
    let long = "a long text that the model must truncate ".repeat(100);
    let texts = ["Rust and PostgreSQL", "k8s", "Kubernetes", long.as_str(), "k8s"];
    for normalize in [Some(true), Some(false)] {
        let options = EmbedOptions { normalize, ..Default::default() };
        let want = bits(&plain.embed_with(&texts, options).unwrap());
        let first = cached.embed_counted(&texts, options).unwrap();
        assert_eq!(bits(&first.vectors), want);
        // Hits and misses mixed in one batch, in a different order: still the same bits.
        let mixed = ["new text", texts[2], "another new one", texts[0]];
        let got = cached.embed_counted(&mixed, options).unwrap();
        assert_eq!(got.cache_hits, 2);
        assert_eq!(bits(&got.vectors), bits(&plain.embed_with(&mixed, options).unwrap()));
        let again = cached.embed_counted(&texts, options).unwrap();
        assert_eq!(again.cache_hits, texts.len());
        assert_eq!(bits(&again.vectors), want);
        assert_eq!(again.tokens, first.tokens, "usage counts cached texts' tokens too");
    }
    // normalize is part of the key: the two passes above did not answer each other.
    let s = cached.cache_stats();
    assert_eq!((s.hits, s.misses), (2 * (2 + 5), 2 * (5 + 2)), "{s:?}");
}

#[test]
fn truncate_false_still_refuses_what_a_truncating_call_cached() {
    let cached = cached_embedder(10);
    let long = "word ".repeat(600);
    cached.embed_with(&[&long], EmbedOptions::default()).unwrap();
    let strict = EmbedOptions { truncate: false, ..Default::default() };
    let err = cached.embed_with(&["short", &long], strict).unwrap_err();
    assert!(matches!(err, snapembed::EmbedError::TooLong { index: 1, .. }), "{err:?}");
}

#[test]
fn capacity_bounds_the_entries_and_zero_disables() {
    let cached = cached_embedder(3);
    let texts: Vec<String> = (0..5).map(|i| format!("text number {i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    cached.embed(&refs).unwrap();
    assert_eq!(cached.cache_stats().entries, 3);
    // The last three stayed; the first two were evicted.
    assert_eq!(cached.embed_counted(&refs[2..], EmbedOptions::default()).unwrap().cache_hits, 3);
    assert_eq!(cached.embed_counted(&refs[..2], EmbedOptions::default()).unwrap().cache_hits, 0);

    let off = cached_embedder(0);
    off.embed(&refs).unwrap();
    assert_eq!(off.embed_counted(&refs, EmbedOptions::default()).unwrap().cache_hits, 0);
    let s = off.cache_stats();
    assert_eq!((s.hits, s.misses, s.entries, s.capacity), (0, 0, 0, 0));
}

fn router(entries: usize) -> Router {
    let model = Ok(cached_embedder(entries));
    app(AppState::new(model, Limits::default(), 2, MemoryGuard::new(None)))
}

async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post(path).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap();
    let (status, _, body) = send(app, req).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn get_text(app: &Router, path: &str) -> String {
    let (_, _, body) = send(app, Request::get(path).body(Body::empty()).unwrap()).await;
    String::from_utf8(body).unwrap()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn every_endpoint_shares_the_cache_and_reports_it() {
    let app = router(2000);
    let (status, first) = post(&app, "/embed", json!({"inputs": ["Rust engineer", "Go engineer"]})).await;
    assert_eq!(status, StatusCode::OK);
    // /v1/embeddings and /similarity embed normalized, truncated text too: the same entries.
    let (status, openai) = post(&app, "/v1/embeddings", json!({"input": "Rust engineer"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(openai["data"][0]["embedding"], first[0]);
    assert_eq!(openai["usage"]["prompt_tokens"], 4, "{openai}");
    let (status, sims) = post(&app, "/similarity", json!({"inputs": {"source_sentence": "Rust engineer", "sentences": ["Go engineer", "Haskell"]}})).await;
    assert_eq!(status, StatusCode::OK, "{sims}");

    let text = get_text(&app, "/metrics").await;
    assert_eq!(metric(&text, "snapembed_embed_cache_hits_total"), 3.0, "{text}");
    assert_eq!(metric(&text, "snapembed_embed_cache_misses_total"), 3.0);
    assert_eq!(metric(&text, "snapembed_embed_cache_entries"), 3.0);
    assert_eq!(metric(&text, "snapembed_embed_cache_capacity"), 2000.0);
    assert!(text.contains("# TYPE snapembed_embed_cache_hits_total counter"), "{text}");

    let status: Value = serde_json::from_str(&get_text(&app, "/model-status").await).unwrap();
    assert_eq!(status["embed_cache"], json!({"hits": 3, "misses": 3, "entries": 3, "capacity": 2000}));
}

#[tokio::test]
async fn a_disabled_cache_reports_zeros() {
    let app = router(0);
    for _ in 0..2 {
        assert_eq!(post(&app, "/embed", json!({"inputs": "same text"})).await.0, StatusCode::OK);
    }
    let text = get_text(&app, "/metrics").await;
    assert_eq!(metric(&text, "snapembed_embed_cache_hits_total"), 0.0);
    assert_eq!(metric(&text, "snapembed_embed_cache_capacity"), 0.0);
}

/// What a hit saves and what contention costs; `cargo test --test tests cache::cost -- --ignored
/// --nocapture` prints medians (numbers in the commit that added it).
#[test]
#[ignore]
fn cost() {
    use std::time::Instant;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let e = cached_embedder(2000);
    let sentence = "Built and ran PostgreSQL and Kafka pipelines on Kubernetes for five years.";
    let chunk = "Led the migration of the billing service to Rust, cutting p99 latency by forty percent. ".repeat(20);
    for (name, text) in [("sentence", sentence), ("256-piece chunk", chunk.as_str())] {
        let off = embedder();
        let miss = median((0..21).map(|_| { let t = Instant::now(); off.embed(&[text]).unwrap(); t.elapsed().as_secs_f64() * 1e6 }).collect());
        e.embed(&[text]).unwrap();
        let hit = median((0..201).map(|_| { let t = Instant::now(); e.embed(&[text]).unwrap(); t.elapsed().as_secs_f64() * 1e6 }).collect());
        println!("{name}: miss {miss:.0} us, hit {hit:.1} us");
    }
    let long = "x".repeat(50_000);
    let key = median((0..101).map(|_| { let t = Instant::now(); std::hint::black_box(e.embed_counted(&[&long], EmbedOptions::default()).unwrap()); t.elapsed().as_secs_f64() * 1e6 }).collect());
    println!("50,000-char text, hit (hashing dominates): {key:.1} us");
    // Contention: threads hitting the same cache in batches of 32 lookups.
    let texts: Vec<String> = (0..2000).map(|i| format!("cached text {i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for batch in refs.chunks(256) {
        e.embed(batch).unwrap();
    }
    for threads in [1, 2, 4] {
        let t = Instant::now();
        std::thread::scope(|s| {
            for w in 0..threads {
                let (e, refs) = (&e, &refs);
                s.spawn(move || {
                    for round in 0..2000 {
                        let start = (w * 97 + round * 32) % (refs.len() - 32);
                        std::hint::black_box(e.embed_counted(&refs[start..start + 32], EmbedOptions::default()).unwrap());
                    }
                });
            }
        });
        let per = t.elapsed().as_secs_f64() * 1e9 / (threads * 2000 * 32) as f64;
        println!("{threads} thread(s): {per:.0} ns per cached text (wall / texts)");
    }
}
