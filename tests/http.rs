//! The router in process (no socket): every endpoint and every error the API promises.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use snapembed::service::config::Limits;
use snapembed::service::{app, AppState};
use snapembed::service::memory::MemoryGuard;
use snapembed::Embedder;
use tower::ServiceExt;

use crate::common::{cosine, embedder, snapshot_path};

fn router_with(limits: Limits, threads: usize, memory: MemoryGuard) -> Router {
    let model = Embedder::from_snapshot(&snapshot_path()).map_err(|e| e.to_string());
    app(AppState::new(model, limits, threads, memory))
}

fn router() -> Router {
    router_with(Limits::default(), 2, MemoryGuard::new(None))
}

pub async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec();
    (status, headers, body)
}

async fn post_raw(app: &Router, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let req = Request::post(path).header(header::CONTENT_TYPE, "application/json").body(body.into()).unwrap();
    let (status, _, body) = send(app, req).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    post_raw(app, path, body.to_string()).await
}

async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(app, Request::get(path).body(Body::empty()).unwrap()).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn vectors(v: &Value) -> Vec<Vec<f32>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, error_type: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error_type"], error_type, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

#[tokio::test]
async fn embed_one_text_or_many_in_order() {
    let app = router();
    let (s, body) = post(&app, "/embed", json!({"inputs": "A man is playing a guitar."})).await;
    assert_eq!(s, StatusCode::OK);
    let one = vectors(&body);
    assert_eq!((one.len(), one[0].len()), (1, 384));
    let texts = ["A man is playing a guitar.", "", "東京"];
    let (s, body) = post(&app, "/embed", json!({"inputs": texts})).await;
    assert_eq!(s, StatusCode::OK);
    let many = vectors(&body);
    let want = embedder().embed(&texts).unwrap();
    assert_eq!(many.len(), 3);
    for (g, w) in many.iter().zip(&want) {
        assert!(cosine(g, w) > 0.999_999);
    }
    assert!(cosine(&one[0], &many[0]) > 0.999_999);
}

#[tokio::test]
async fn embed_without_normalization() {
    let (s, body) = post(&router(), "/embed", json!({"inputs": ["hello"], "normalize": false})).await;
    assert_eq!(s, StatusCode::OK);
    let norm: f32 = vectors(&body)[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 0.01, "norm {norm}");
}

#[tokio::test]
async fn too_long_without_truncation_is_413_naming_input_and_length() {
    let long = "word ".repeat(300);
    let (s, body) = post(&router(), "/embed", json!({"inputs": ["ok", long], "truncate": false})).await;
    assert_error(s, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("input 1") && msg.contains("302 tokens"), "{msg}");
    let (s, _) = post(&router(), "/embed", json!({"inputs": ["ok", "word ".repeat(300)]})).await;
    assert_eq!(s, StatusCode::OK, "truncation is the default, as in sentence-transformers");
}

#[tokio::test]
async fn openai_embeddings_float_and_base64() {
    let app = router();
    let (s, body) = post(&app, "/v1/embeddings", json!({"input": ["hello world", "bye"], "model": "text-embedding-3-small"})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "all-MiniLM-L6-v2");
    assert_eq!(body["data"][1]["object"], "embedding");
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["usage"]["prompt_tokens"], 7, "[CLS] hello world [SEP] + [CLS] bye [SEP]");
    assert_eq!(body["usage"]["total_tokens"], 7);
    let floats: Vec<f32> = serde_json::from_value(body["data"][0]["embedding"].clone()).unwrap();
    let (s, body) = post(&app, "/v1/embeddings", json!({"input": "hello world", "encoding_format": "base64"})).await;
    assert_eq!(s, StatusCode::OK);
    let bytes = base64::engine::general_purpose::STANDARD.decode(body["data"][0]["embedding"].as_str().unwrap()).unwrap();
    let decoded: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert_eq!(decoded, floats);
}

#[tokio::test]
async fn openai_rejects_token_arrays_and_other_dimensions() {
    let app = router();
    let (s, body) = post(&app, "/v1/embeddings", json!({"input": [1, 2, 3]})).await;
    assert_error(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(body["error"].as_str().unwrap().contains("token arrays"));
    let (s, body) = post(&app, "/v1/embeddings", json!({"input": "x", "dimensions": 256})).await;
    assert_error(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let (s, _) = post(&app, "/v1/embeddings", json!({"input": "x", "dimensions": 384})).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn similarity_scores_in_order() {
    let body = json!({"inputs": {"source_sentence": "How do I reset my password?",
        "sentences": ["Best pizza in Naples", "I forgot my password", "How do I reset my password?"]}});
    let (s, body) = post(&router(), "/similarity", body).await;
    assert_eq!(s, StatusCode::OK);
    let scores: Vec<f32> = serde_json::from_value(body).unwrap();
    assert_eq!(scores.len(), 3);
    assert!(scores[0] < scores[1] && scores[1] < scores[2]);
    assert!((scores[2] - 1.0).abs() < 1e-5);
    let (s, body) = post(&router(), "/similarity", json!({"inputs": {"source_sentence": "x", "sentences": []}})).await;
    assert_error(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation");
}

#[tokio::test]
async fn health_model_status_memory_status_info() {
    let app = router();
    let (s, h) = get(&app, "/health").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["model_loaded"], true);
    assert!(h["model_error"].is_null());
    assert!(h["timestamp"].as_str().unwrap().starts_with("20"));

    let (s, m) = get(&app, "/model-status").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(m["loaded"], true);
    assert_eq!(m["dimensions"], 384);
    assert_eq!(m["max_tokens"], 256);
    assert_eq!(m["snapshot"]["name"], "all-MiniLM-L6-v2");
    assert!(m["snapshot"]["checksum"].as_str().unwrap().starts_with("crc32:"));
    assert!(m["quantization"].as_str().unwrap().contains("int8"));
    assert_eq!(m["threads"]["count"], 2, "router() gives two workers");
    assert_eq!(m["threads"]["source"], "--threads");
    for phase in ["open", "tokenizer", "model", "total"] {
        assert!(m["load_ms"][phase].as_f64().unwrap() >= 0.0);
    }

    let (s, mem) = get(&app, "/memory-status").await;
    assert_eq!(s, StatusCode::OK);
    assert!(mem["process_rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(mem["limit_bytes"].as_u64().unwrap() > 0);
    assert!(mem["limit_source"].is_string());
    assert_eq!(mem["snapshot_mapped_bytes"].as_u64().unwrap(), std::fs::metadata(snapshot_path()).unwrap().len());

    let (s, info) = get(&app, "/info").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(info["name"], "snapembed");
    assert_eq!(info["model"], "all-MiniLM-L6-v2");
    assert_eq!(info["limits"]["max_inputs"], 64);
    assert_eq!(info["limits"]["max_text_chars"], 50_000);
}

#[tokio::test]
async fn metrics_count_requests_and_tokens() {
    let app = router();
    post(&app, "/embed", json!({"inputs": ["hello world"]})).await;
    get(&app, "/nope").await;
    let (s, headers, body) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("snapembed_http_requests_total{route=\"/embed\",method=\"POST\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("status=\"404\"} 1"));
    assert!(text.contains("snapembed_http_request_duration_seconds_bucket{route=\"/embed\",le=\"+Inf\"} 1"));
    assert!(text.contains("snapembed_embedded_texts_total 1"));
    assert!(text.contains("snapembed_embedded_tokens_total 4"));
    assert!(text.contains("snapembed_startup_open_seconds"));
    assert!(text.contains("snapembed_process_resident_memory_bytes"));
}

#[tokio::test]
async fn a_model_that_failed_to_load_makes_the_service_unhealthy_not_dead() {
    let model = Embedder::from_snapshot(std::path::Path::new("/nonexistent.snap")).map_err(|e| e.to_string());
    let app = app(AppState::new(model, Limits::default(), 1, MemoryGuard::new(None)));
    let (s, h) = get(&app, "/health").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h["status"], "unhealthy");
    assert_eq!(h["model_loaded"], false);
    assert!(h["model_error"].as_str().unwrap().contains("/nonexistent.snap"));
    let (s, body) = post(&app, "/embed", json!({"inputs": "x"})).await;
    assert_error(s, &body, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let (s, _) = get(&app, "/info").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn memory_pressure_degrades_instead_of_dying() {
    // A 1 MB budget: the process is far over it, so pressure is critical.
    let app = router_with(Limits::default(), 2, MemoryGuard::new(Some(1)));
    let (s, h) = get(&app, "/health").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["status"], "degraded");
    let req = Request::post("/embed").header(header::CONTENT_TYPE, "application/json").body(Body::from(r#"{"inputs":"x"}"#)).unwrap();
    let (s, headers, body) = send(&app, req).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_error(s, &body, StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    let (s, m) = get(&app, "/memory-status").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(m["level"], "emergency");
    assert_eq!(m["limit_source"], "--memory-limit-mb");
}

#[tokio::test]
async fn memory_levels_seen_through_the_api() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    const MB: u64 = 1 << 20;
    let rss = Arc::new(AtomicU64::new(10 * MB));
    let r = rss.clone();
    let guard = MemoryGuard::new(Some(100)).with_rss_reader(move || r.load(Ordering::SeqCst));
    let app = router_with(Limits::default(), 2, guard);
    let embed = json!({"inputs": ["memory levels"]});
    for (at, level, embed_status, health) in [
        (10, "normal", StatusCode::OK, "healthy"),
        (72, "standard", StatusCode::OK, "healthy"),
        (85, "aggressive", StatusCode::OK, "healthy"),
        (95, "emergency", StatusCode::SERVICE_UNAVAILABLE, "degraded"),
        (40, "normal", StatusCode::OK, "healthy"),
    ] {
        rss.store(at * MB, Ordering::SeqCst);
        let (s, body) = post(&app, "/embed", embed.clone()).await;
        assert_eq!(s, embed_status, "at {at} MB of 100: {body}");
        if s == StatusCode::OK {
            assert_eq!(body[0].as_array().unwrap().len(), 384, "at {at} MB the vector is whole");
        } else {
            assert_eq!(body["error_type"], "overloaded");
        }
        let (s, h) = get(&app, "/health").await;
        assert_eq!((s, h["status"].as_str().unwrap(), h["memory_level"].as_str().unwrap()), (StatusCode::OK, health, level));
    }
    let (_, m) = get(&app, "/memory-status").await;
    let steps: Vec<(&str, &str)> =
        m["last_cleanups"].as_array().unwrap().iter().map(|t| (t["from"].as_str().unwrap(), t["to"].as_str().unwrap())).collect();
    assert_eq!(steps, [("normal", "standard"), ("standard", "aggressive"), ("aggressive", "emergency"), ("emergency", "normal")]);
    assert_eq!(m["last_cleanups"][0]["rss_before_bytes"], 72 * MB);
    assert!(m["last_cleanups"][0]["freed"]["scratch_bytes"].as_u64().unwrap() > 0, "the first embed's buffers were kept, then freed");
    assert!(m["last_cleanups"][1]["freed"]["malloc_trim_ran"].as_bool().unwrap());
    assert!(m["last_cleanups"][3]["freed"].is_null(), "going down frees nothing");
    assert_eq!(m["thresholds"], json!({"standard": 0.7, "aggressive": 0.8, "emergency": 0.9}));
}

#[tokio::test]
async fn bad_input_gets_clear_json_errors() {
    let app = router();
    let (s, b) = post_raw(&app, "/embed", r#"{"inputs": ["a""#).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, b) = post(&app, "/embed", json!({"inputs": 5})).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let (s, b) = post(&app, "/embed", json!({"text": "x"})).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let (s, b) = post(&app, "/embed", json!({"inputs": []})).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let (s, b) = post(&app, "/embed", json!({"inputs": vec!["x"; 65]})).await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(b["error"].as_str().unwrap().contains("65 inputs"));
    let (s, b) = post(&app, "/embed", json!({"inputs": ["ok", "é".repeat(50_001)]})).await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(b["error"].as_str().unwrap().contains("input 1 has 50001 characters"), "{b}");
    let (s, _) = post(&app, "/embed", json!({"inputs": ["é".repeat(50_000)]})).await;
    assert_eq!(s, StatusCode::OK, "exactly at the limit is fine (characters, not bytes)");

    let (s, b) = get(&app, "/nope").await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = get(&app, "/embed").await;
    assert_error(s, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let req = Request::post("/embed").body(Body::from(r#"{"inputs":"x"}"#)).unwrap();
    let (s, _, b) = send(&app, req).await;
    assert_error(s, &serde_json::from_slice(&b).unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    // Invalid UTF-8 inside a JSON string.
    let (s, b) = post_raw(&app, "/embed", b"{\"inputs\": \"\xff\xfe\"}".to_vec()).await;
    assert!(s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY, "{s}");
    assert!(b["error_type"].is_string());
    // Deeply nested JSON: serde_json's recursion limit, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (s, b) = post_raw(&app, "/embed", format!(r#"{{"inputs": {deep}}}"#)).await;
    assert!(s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY, "{s}");
    assert!(b["error_type"].is_string());
    // A 10 MB body is refused at the 2 MB limit.
    let big = format!(r#"{{"inputs": ["{}"]}}"#, "a".repeat(10 << 20));
    let (s, b) = post_raw(&app, "/embed", big).await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // After all that, the service still serves.
    let (s, _) = post(&app, "/embed", json!({"inputs": "still here"})).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn overload_is_a_429_not_an_unbounded_queue() {
    let limits = Limits { max_inflight: 1, ..Limits::default() };
    let app = router_with(limits, 1, MemoryGuard::new(None));
    let long = "many words make a long text for the encoder ".repeat(40);
    let slow = json!({"inputs": vec![long; 64]});
    let first = {
        let app = app.clone();
        tokio::spawn(async move { post(&app, "/embed", slow).await.0 })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (s, b) = post(&app, "/embed", json!({"inputs": "x"})).await;
    assert_error(s, &b, StatusCode::TOO_MANY_REQUESTS, "overloaded");
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    let (s, _) = post(&app, "/embed", json!({"inputs": "x"})).await;
    assert_eq!(s, StatusCode::OK, "admitted again once the first finished");
}

#[test]
fn the_router_builds_and_help_documents_every_flag() {
    let _ = router();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snapembed")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for env in ["SNAPEMBED_SNAPSHOT", "PORT", "SNAPEMBED_HOST", "SNAPEMBED_THREADS", "SNAPEMBED_MAX_INPUTS",
        "SNAPEMBED_MAX_TEXT_CHARS", "SNAPEMBED_MAX_BODY_BYTES", "SNAPEMBED_MAX_INFLIGHT", "SNAPEMBED_MEMORY_LIMIT_MB", "SNAPEMBED_LOG_FORMAT"] {
        assert!(help.contains(env), "--help names {env}");
    }
}
