//! The JSON request bodies of every route, deserialized exactly as the handlers' extractor does
//! (`axum::Json::from_bytes`: serde_json with serde_path_to_error, trailing bytes refused):
//! TEI `/embed` and `/similarity`, OpenAI `/v1/embeddings`, `/search` (and its parameter
//! validation), `/rank`, and `/score`'s JSON form (`ResumeJson`). Each must come back as a
//! value or a rejection, never a panic, whatever the bytes (the whole of the handlers'
//! validation runs in the `http` target, through the real router).
#![no_main]

use axum::Json;
use libfuzzer_sys::fuzz_target;
use snapembed::search::SearchRequest;
use snapembed::service::resume_input::ResumeJson;
use snapembed::service::types::{EmbedRequest, OpenAiRequest, SimilarityRequest};
use snapembed::service::RankRequest;

fuzz_target!(|input: &[u8]| {
    if let Ok(Json(r)) = Json::<EmbedRequest>::from_bytes(input) {
        let _ = r.inputs.into_vec();
    }
    let _ = Json::<OpenAiRequest>::from_bytes(input);
    let _ = Json::<SimilarityRequest>::from_bytes(input);
    if let Ok(Json(r)) = Json::<SearchRequest>::from_bytes(input) {
        let (_, params) = r.into_parts();
        if params.validate().is_ok() {
            assert!((1..=snapembed::search::MAX_TOP_K).contains(&params.top_k()));
        }
    }
    let _ = Json::<RankRequest>::from_bytes(input);
    let _ = Json::<ResumeJson>::from_bytes(input);
});
