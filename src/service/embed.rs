//! The model endpoints: TEI `/embed` and `/similarity`, OpenAI `/v1/embeddings`. All three
//! validate, then share `run_embedding`, which runs on `run_compute`: admission (429), one
//! compute permit and any others free (all of them, in small chunks, at the aggressive memory
//! level; the memory gate in service/mod.rs refuses new work in an emergency), the embedder
//! (through its cache) on a blocking thread with a thread per permit. Other features' model
//! work (the scorer, search) takes its permits the same way.

use axum::extract::State;
use axum::Json;
use base64::Engine;

use super::error::{ApiError, ApiJson, ErrorBody, JsonBodyErrors};
use super::types::*;
use super::AppState;
use tokio::sync::SemaphorePermit;
use crate::service::memory::Level;
use crate::engine::pooling::cosine;
use crate::engine::embedder::Embedded;
use crate::{EmbedError, EmbedOptions, Embedder};

/// Tokens per forward pass at the aggressive memory level (a quarter of the usual activations).
const SMALL_CHUNK_TOKENS: usize = 256;

/// TEI's embed: one vector per input, in order.
#[utoipa::path(post, path = "/embed", tag = "embeddings", request_body = EmbedRequest, responses(
        (status = 200, description = "One vector per input.", body = Vec<Vec<f32>>),
        JsonBodyErrors,
        (status = 503, description = "Memory pressure (`overloaded`, Retry-After) or no model loaded (`unavailable`).", body = ErrorBody),
))]
pub async fn embed(State(state): State<AppState>, ApiJson(req): ApiJson<EmbedRequest>) -> Result<Json<Vec<Vec<f32>>>, ApiError> {
    let texts = req.inputs.into_vec();
    let (vectors, _) = run_embedding(&state, texts, req.normalize, req.truncate).await?;
    Ok(Json(vectors))
}

/// OpenAI's embeddings API, as its clients call it.
#[utoipa::path(post, path = "/v1/embeddings", tag = "embeddings", request_body = OpenAiRequest, responses(
        (status = 200, description = "One embedding per input, floats or base64.", body = OpenAiResponse),
        JsonBodyErrors,
        (status = 503, description = "Memory pressure (`overloaded`, Retry-After) or no model loaded (`unavailable`).", body = ErrorBody),
))]
pub async fn openai(State(state): State<AppState>, ApiJson(req): ApiJson<OpenAiRequest>) -> Result<Json<OpenAiResponse>, ApiError> {
    let texts = match req.input {
        OpenAiInput::One(s) => vec![s],
        OpenAiInput::Many(v) => v,
        OpenAiInput::Tokens(_) | OpenAiInput::TokenBatches(_) => {
            return Err(ApiError::Validation(
                "token arrays are not accepted: send text (this model has its own tokenizer; with LangChain set check_embedding_ctx_length=False)".into(),
            ))
        }
    };
    let model = state.model.as_ref().map_err(|e| ApiError::ModelUnavailable(e.clone()))?;
    let dims = model.dimensions();
    if let Some(d) = req.dimensions.filter(|&d| d != dims) {
        return Err(ApiError::Validation(format!("dimensions {d} is not supported: this model gives {dims}")));
    }
    let served = model.header().model.name.clone();
    let format = req.encoding_format.unwrap_or_default();
    let (vectors, tokens) = run_embedding(&state, texts, true, true).await?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| OpenAiEmbedding {
            object: "embedding",
            index,
            embedding: match format {
                EncodingFormat::Float => EmbeddingValue::Float(v),
                EncodingFormat::Base64 => {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    EmbeddingValue::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            },
        })
        .collect();
    Ok(Json(OpenAiResponse {
        object: "list",
        data,
        model: served,
        usage: OpenAiUsage { prompt_tokens: tokens, total_tokens: tokens },
    }))
}

/// TEI's similarity: the cosine of `source_sentence` with each of `sentences`.
#[utoipa::path(post, path = "/similarity", tag = "embeddings", request_body = SimilarityRequest, responses(
        (status = 200, description = "One cosine per sentence, in order.", body = Vec<f32>),
        JsonBodyErrors,
        (status = 503, description = "Memory pressure (`overloaded`, Retry-After) or no model loaded (`unavailable`).", body = ErrorBody),
))]
pub async fn similarity(State(state): State<AppState>, ApiJson(req): ApiJson<SimilarityRequest>) -> Result<Json<Vec<f32>>, ApiError> {
    let SimilarityInputs { source_sentence, sentences } = req.inputs;
    if sentences.is_empty() {
        return Err(ApiError::Validation("inputs.sentences must not be empty".into()));
    }
    let mut texts = Vec::with_capacity(sentences.len() + 1);
    texts.push(source_sentence);
    texts.extend(sentences);
    let (vectors, _) = run_embedding(&state, texts, true, true).await?;
    let (source, rest) = vectors.split_first().ok_or_else(|| ApiError::Internal("no source vector".into()))?;
    Ok(Json(rest.iter().map(|v| cosine(source, v)).collect()))
}

/// Checks the request against the limits.
fn validate(state: &AppState, texts: &[String]) -> Result<(), ApiError> {
    let l = &state.limits;
    if texts.is_empty() {
        return Err(ApiError::Validation("inputs must not be empty".into()));
    }
    if texts.len() > l.max_inputs {
        return Err(ApiError::TooLarge(format!("{} inputs given, at most {} per request", texts.len(), l.max_inputs)));
    }
    for (i, t) in texts.iter().enumerate() {
        // Byte length bounds the char count from above: count chars only when it could matter.
        if t.len() > l.max_text_chars {
            let chars = t.chars().count();
            if chars > l.max_text_chars {
                return Err(ApiError::TooLarge(format!("input {i} has {chars} characters, at most {} allowed", l.max_text_chars)));
            }
        }
    }
    Ok(())
}

/// Embeds validated texts; returns the vectors and the tokens used (special tokens included).
async fn run_embedding(state: &AppState, texts: Vec<String>, normalize: bool, truncate: bool) -> Result<(Vec<Vec<f32>>, usize), ApiError> {
    validate(state, &texts)?;
    let result = run_compute(state, move |model, options| {
        let options = EmbedOptions { normalize: Some(normalize), truncate, ..options };
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        model.embed_counted(&refs, options)
    })
    .await?;
    let Embedded { vectors, tokens, .. } = match result {
        Ok(v) => v,
        Err(EmbedError::TooLong { index, tokens, max }) => {
            return Err(ApiError::TooLarge(format!(
                "input {index} has {tokens} tokens, more than the model's maximum of {max} (send truncate: true to cut it)"
            )))
        }
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    };
    state.metrics.record_embedded(vectors.len(), tokens);
    Ok((vectors, tokens))
}

/// Runs model work for any feature: admission (429), one compute permit (all of them at the
/// aggressive memory level) plus any free at that moment (`acquire_compute`), then `job` on a
/// blocking thread with a thread per permit and the chunk size the level allows (small chunks
/// when aggressive). The memory gate answered 503 before.
pub(super) async fn run_compute<T, F>(state: &AppState, job: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Embedder, EmbedOptions) -> T + Send + 'static,
{
    let model = state.model.as_ref().map_err(|e| ApiError::ModelUnavailable(e.clone()))?.clone();
    let _admitted = state.inflight.try_acquire().map_err(|_| ApiError::Overloaded(state.limits.max_inflight))?;
    // The memory gate (service/mod.rs) checked before this request and refuses new work in an
    // emergency; at the aggressive level: one job at a time, in small chunks.
    let (permits, chunk_tokens) = match state.memory.level() {
        Level::Normal | Level::Standard => (1, crate::engine::embedder::POOLED_CHUNK_TOKENS),
        Level::Aggressive | Level::Emergency => (state.compute_permits, SMALL_CHUNK_TOKENS),
    };
    let compute = acquire_compute(state, permits).await?;
    let options = EmbedOptions { normalize: None, truncate: true, chunk_tokens, threads: Some(compute.num_permits()), reproducible: false };
    let result = tokio::task::spawn_blocking(move || job(&model, options)).await;
    drop(compute);
    result.map_err(|e| ApiError::Internal(format!("compute task failed: {e}")))
}

/// `min` compute permits, waited for, then every other one free at this moment: a request that
/// finds the server idle runs on all its compute threads (its forward passes split among them,
/// `engine::team`), while concurrent requests get one each, so the server's parallelism comes
/// from them. Vectors are the same bits however many a job gets.
pub(super) async fn acquire_compute(state: &AppState, min: u32) -> Result<SemaphorePermit<'_>, ApiError> {
    let mut permit = state.compute.acquire_many(min).await.map_err(|_| ApiError::Internal("compute semaphore closed".into()))?;
    let free = (state.compute.available_permits() as u32).min(state.compute_permits.saturating_sub(min));
    if free > 0 {
        if let Ok(more) = state.compute.try_acquire_many(free) {
            permit.merge(more);
        }
    }
    Ok(permit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::config::Limits;
    use crate::service::memory::MemoryGuard;

    #[tokio::test]
    async fn an_idle_server_gives_a_job_every_compute_permit_a_busy_one_what_is_free() {
        let state = AppState::new(Err("no model".into()), Limits::default(), 3usize, MemoryGuard::new(None));
        let alone = acquire_compute(&state, 1).await.unwrap();
        assert_eq!(alone.num_permits(), 3, "idle: the job splits its passes over every thread");
        drop(alone);

        // Two permits held by a job still running, one free: the next job gets the one.
        let running = state.compute.try_acquire_many(2).unwrap();
        assert_eq!(acquire_compute(&state, 1).await.unwrap().num_permits(), 1);
        drop(running);

        // At the aggressive memory level a job asks for all of them, and waits for them.
        let held = state.compute.try_acquire_many(1).unwrap();
        let all = tokio::spawn({
            let state = state.clone();
            async move { acquire_compute(&state, 3).await.map(|p| p.num_permits()) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!all.is_finished(), "waits while a permit is held");
        drop(held);
        assert_eq!(all.await.unwrap().unwrap(), 3);
    }
}
