//! Operations endpoints: health, model and memory status, service info, Prometheus metrics.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::AppState;
use crate::engine::kernels::Isa;
use crate::search::CorpusInfo;
use crate::service::memory::{process_rss, Level, MemoryStatus};
use crate::service::metrics;

fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn mapped_bytes(state: &AppState) -> u64 {
    state.model.as_ref().map_or(0, |m| m.snapshot().len() as u64)
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy`, `degraded` (memory emergency: new work gets 503; or search unreachable or
    /// damaged while /embed works) or `unhealthy` (no model).
    pub status: &'static str,
    pub model_loaded: bool,
    /// Why the model failed to load.
    pub model_error: Option<String>,
    pub corpus: Option<CorpusInfo>,
    pub memory_level: Level,
    /// Which backend serves /search (`mapped`, `postgres`, or null without a corpus) and whether
    /// it answers now: `{"backend", "reachable", "error"?}`.
    #[schema(value_type = Object)]
    pub search: Value,
    /// RFC 3339, UTC.
    pub timestamp: String,
}

/// Liveness for load balancers: 200 while the model is loaded (`degraded` under memory emergency).
#[utoipa::path(get, path = "/health", tag = "operations", responses(
    (status = 200, description = "Healthy, or degraded (memory emergency, or search unavailable).", body = Health),
    (status = 503, description = "The model failed to load.", body = Health),
))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    // The memory gate checked just before this handler.
    let level = state.memory.level();
    let search = search_status(&state).await;
    let search_ok = search["reachable"] != json!(false);
    let (status, code) = match (&state.model, level) {
        (Err(_), _) => ("unhealthy", StatusCode::SERVICE_UNAVAILABLE),
        (Ok(_), Level::Emergency) => ("degraded", StatusCode::OK),
        // /embed still works without the search database: degraded, not dead.
        (Ok(_), _) if !search_ok => ("degraded", StatusCode::OK),
        (Ok(_), _) => ("healthy", StatusCode::OK),
    };
    let body = Health {
        status,
        model_loaded: state.model.is_ok(),
        model_error: state.model.as_ref().err().cloned(),
        corpus: state.corpus.as_ref().map(|c| c.info()),
        memory_level: level,
        search,
        timestamp: timestamp(),
    };
    (code, Json(body))
}

/// The loaded snapshot, kernels, load times, corpus and cache (`{"loaded": false, "error"}`
/// when the model failed to load).
#[utoipa::path(get, path = "/model-status", tag = "operations", responses(
    (status = 200, description = "What is loaded and how it runs.", body = Object),
))]
pub async fn model_status(State(state): State<AppState>) -> Json<Value> {
    let m = match &state.model {
        Err(e) => return Json(json!({"loaded": false, "error": e, "corpus": corpus(&state), "search": search_status(&state).await})),
        Ok(m) => m,
    };
    let h = m.header();
    let t = m.load_times();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    Json(json!({
        "loaded": true,
        "load_ms": {"open": ms(t.open), "tokenizer": ms(t.tokenizer), "model": ms(t.model), "total": ms(t.total())},
        "snapshot": {
            "name": h.model.name,
            "source": m.snapshot().source(),
            "bytes": m.snapshot().len(),
            "memory_mapped": m.snapshot().is_mapped(),
            "format_version": crate::engine::snapshot::FORMAT_VERSION,
            "checksum": format!("crc32:{:08x}", h.data_crc32),
            "created_by": h.model.created_by,
            "source_files": h.model.source_files,
        },
        "quantization": quantization(&h.quantization.scheme, m.isa()),
        "activations": activations(m.isa(), h.quantization.group_size),
        "dimensions": m.dimensions(),
        "max_tokens": m.max_tokens(),
        "pooling": h.embedding.pooling,
        "normalize": h.embedding.normalize,
        "kernels": m.isa().name(),
        "corpus": corpus(&state),
        "embed_cache": m.cache_stats(),
        "threads": {"count": state.compute_permits, "source": state.workers.source},
        "search": search_status(&state).await,
    }))
}

/// Which backend serves /search and whether it answers now (a database is asked, within its
/// timeout, on a blocking thread; a mapped index always answers).
async fn search_status(state: &AppState) -> Value {
    let Some(corpus) = state.corpus.clone() else { return json!({"backend": null, "reachable": null}) };
    let backend = corpus.backend();
    match tokio::task::spawn_blocking(move || corpus.reachable()).await {
        Ok(Ok(())) => json!({"backend": backend, "reachable": true}),
        Ok(Err(e)) => json!({"backend": backend, "reachable": false, "error": e.to_string()}),
        Err(e) => json!({"backend": backend, "reachable": false, "error": e.to_string()}),
    }
}

/// The loaded corpus (documents, chunks, checksum, load time, source), or null.
fn corpus(state: &AppState) -> Value {
    json!(state.corpus.as_ref().map(|c| c.info()))
}

/// The snapshot's scheme describes its weights; what happens to activations is the running
/// kernels' choice, so that part of the baked-in text is replaced by what they do.
fn quantization(scheme: &str, isa: Isa) -> String {
    let weights = scheme.split("; ").filter(|part| !part.contains("activations")).collect::<Vec<_>>().join("; ");
    let activations = if isa.quantizes_activations() { format!("{} activations, integer arithmetic", integer(isa)) } else { "f32 activations and arithmetic".into() };
    format!("{weights}; {activations} ({} kernels)", isa.name())
}

fn activations(isa: Isa, group: u32) -> String {
    if isa.quantizes_activations() {
        format!("{}, quantized per row in groups of {group}", integer(isa))
    } else {
        "f32".into()
    }
}

/// "int8", or "7-bit" for the kernels that keep activations to 7 bits (`Isa::activation_levels`).
fn integer(isa: Isa) -> &'static str {
    if isa.activation_levels() < 127.0 {
        "7-bit"
    } else {
        "int8"
    }
}

/// The memory guard: budget, usage, level and the last cleanups.
#[utoipa::path(get, path = "/memory-status", tag = "operations", responses(
    (status = 200, description = "The memory guard's report.", body = MemoryStatus),
))]
pub async fn memory_status(State(state): State<AppState>) -> Json<Value> {
    let status = MemoryStatus { held: Some(state.held()), ..state.memory.status(mapped_bytes(&state), state.reclaim()) };
    Json(json!(status))
}

/// The service, its model and its limits. Also served at `/`.
#[utoipa::path(get, path = "/info", tag = "operations", responses(
    (status = 200, description = "Name, version, model and limits.", body = Object),
))]
pub async fn info(State(state): State<AppState>) -> Json<Value> {
    let l = &state.limits;
    Json(json!({
        "name": "snapembed",
        "version": env!("CARGO_PKG_VERSION"),
        "model": state.model.as_ref().map(|m| m.header().model.name.clone()).ok(),
        "dimensions": state.model.as_ref().map(|m| m.dimensions()).ok(),
        "max_tokens": state.model.as_ref().map(|m| m.max_tokens()).ok(),
        "limits": {
            "max_inputs": l.max_inputs,
            "max_text_chars": l.max_text_chars,
            "max_body_bytes": l.max_body_bytes,
            "max_inflight": l.max_inflight,
            "concurrent_jobs": state.compute_permits,
        },
        "endpoints": super::openapi::endpoints(),
    }))
}

/// `/info` at the root, for a browser or `curl` pointed at the bare URL.
#[utoipa::path(get, path = "/", tag = "operations", responses(
    (status = 200, description = "Name, version, model and limits.", body = Object),
))]
pub async fn root(state: State<AppState>) -> Json<Value> {
    info(state).await
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text exposition.", body = String, content_type = "text/plain"),
))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut gauges = vec![
        ("snapembed_process_resident_memory_bytes", "Resident set size.", process_rss() as f64),
        ("snapembed_memory_limit_bytes", "The memory budget in force.", state.memory.budget().limit_bytes as f64),
        ("snapembed_memory_level", "Memory guard level: 0 normal, 1 standard, 2 aggressive, 3 emergency.", state.memory.level() as u8 as f64),
        ("snapembed_snapshot_mapped_bytes", "Bytes of the mapped snapshot.", mapped_bytes(&state) as f64),
        ("snapembed_model_loaded", "1 when the model is loaded.", state.model.is_ok() as u8 as f64),
    ];
    if let Ok(m) = &state.model {
        let t = m.load_times();
        gauges.push(("snapembed_startup_open_seconds", "Start-up: mapping and checking the snapshot.", t.open.as_secs_f64()));
        gauges.push(("snapembed_startup_tokenizer_seconds", "Start-up: indexing the vocabulary.", t.tokenizer.as_secs_f64()));
        gauges.push(("snapembed_startup_model_seconds", "Start-up: resolving the plan's tensors.", t.model.as_secs_f64()));
    }
    let mut text = state.metrics.render(&gauges);
    if let Ok(m) = &state.model {
        let c = m.cache_stats();
        text.push_str(&metrics::exposition("snapembed_embed_cache_hits_total", "counter", "Texts answered from the embedding cache.", c.hits as f64));
        text.push_str(&metrics::exposition("snapembed_embed_cache_misses_total", "counter", "Texts the embedding cache did not hold.", c.misses as f64));
        text.push_str(&metrics::exposition("snapembed_embed_cache_entries", "gauge", "Embeddings in the cache.", c.entries as f64));
        text.push_str(&metrics::exposition("snapembed_embed_cache_capacity", "gauge", "Most embeddings the cache keeps (0: off).", c.capacity as f64));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantization_says_what_the_kernels_do() {
        // A snapshot of format 2 described its activations; one of format 3 does not.
        let old = "int8 weights, symmetric, one f32 scale per 32 input rows per output column (word embeddings: per row); f32 activations and arithmetic";
        let scheme = "int8 weights, symmetric, one f32 scale per 64 input rows per output column (word embeddings: per row); QKV and feed-forward inputs smoothed per channel (SmoothQuant, α 0.8, powers of two, calibrated on 300 texts)";
        for s in [old, scheme] {
            let q = quantization(s, Isa::Portable);
            assert!(q.starts_with("int8 weights, symmetric") && q.ends_with("; f32 activations and arithmetic (portable kernels)"), "{q}");
            assert_eq!(q.matches("activations").count(), 1, "{q}");
        }
        assert!(quantization(scheme, Isa::Portable).contains("; QKV and feed-forward inputs smoothed per channel"));
        assert_eq!(activations(Isa::Portable, 32), "f32");
        for isa in Isa::available().into_iter().filter(|i| i.quantizes_activations()) {
            let q = quantization(scheme, isa);
            let bits = if isa.name() == "avx2-int7" { "7-bit" } else { "int8" };
            assert!(q.contains(&format!("{bits} activations")) && !q.contains("f32 activations"), "{q}");
            assert_eq!(activations(isa, 32), format!("{bits}, quantized per row in groups of 32"));
        }
    }
}
