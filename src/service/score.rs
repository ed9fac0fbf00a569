//! The resume scorer's endpoints: `POST /score` (one resume, as text or PDF, in JSON or a
//! multipart form: [`ResumeInput`]) and `POST /rank` (up to `--max-resumes`, the job description
//! embedded once). They check sizes and emptiness, then
//! run `scorer::Job` on `run_compute` (the same admission, memory-pressure and compute-permit
//! path as `/embed`) and map its errors.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::embed::run_compute;
use super::error::{ApiError, ApiJson, ErrorBody, JsonBodyErrors};
use super::resume_input::{ResumeForm, ResumeInput, ResumeJsonSchema};
use super::AppState;
use crate::scorer::{Job, Report, ScoreError, ScoreOptions, Weights};

/// `POST /rank`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RankRequest {
    #[schema(min_length = 1, max_length = 50_000)]
    pub job_description: String,
    /// At most `--max-resumes` (100 by default).
    #[schema(min_items = 1, max_items = 100)]
    pub resumes: Vec<RankResume>,
    #[serde(default)]
    pub weights: Option<Weights>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RankResume {
    pub id: String,
    #[schema(min_length = 1, max_length = 50_000)]
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RankResponse {
    /// Best first.
    pub results: Vec<Ranked>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ranked {
    pub id: String,
    #[serde(flatten)]
    pub report: Report,
}

/// `POST /score`: the body is read (a PDF's text extracted) by [`ResumeInput`].
#[utoipa::path(post, path = "/score", tag = "scorer",
    request_body(description = "A resume (text or PDF) and a job description, as JSON or as a form.", content(
        (ResumeJsonSchema = "application/json"),
        (ResumeForm = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "The score and its reasons.", body = Report),
        (status = 400, description = "Malformed JSON (`invalid_json`) or multipart body (`invalid_multipart`).", body = ErrorBody),
        (status = 413, description = "Body, texts or inputs over the limits (`payload_too_large`).", body = ErrorBody),
        (status = 415, description = "Not `application/json` or `multipart/form-data` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "Well-formed but breaks a rule: a missing field, a wrong type, an empty text, a PDF without text (`validation`, `pdf_*`).", body = ErrorBody),
        (status = 429, description = "Too many requests in flight (`overloaded`); see Retry-After.", body = ErrorBody),
        (status = 500, description = "A fault of the server (`internal`), logged in full.", body = ErrorBody),
        (status = 503, description = "Memory pressure or PDF readers busy (`overloaded`, Retry-After), or no model loaded (`unavailable`).", body = ErrorBody),
))]
pub async fn score(State(state): State<AppState>, input: ResumeInput) -> Result<Json<Report>, ApiError> {
    score_texts(&state, input.resume, input.job_description, input.weights).await.map(Json)
}

/// Scores a resume already read as text; [`ResumeInput`] checked both texts' sizes.
async fn score_texts(state: &AppState, resume: String, job: String, weights: Option<Weights>) -> Result<Report, ApiError> {
    let weights = weights_for(state, weights)?;
    let options = ScoreOptions { batch: state.scoring.score_batch, ..ScoreOptions::default() };
    let (report, texts, tokens) = run_compute(state, move |model, embed| {
        let options = ScoreOptions { embed, ..options };
        let job = Job::new(model, &job, options)?;
        let (report, (texts, tokens)) = job.score(model, &resume, &weights, options)?;
        Ok::<_, ScoreError>((report, texts + job.embedded.0, tokens + job.embedded.1))
    })
    .await?
    .map_err(map_error)?;
    state.metrics.record_embedded(texts, tokens);
    Ok(report)
}

/// Several resumes against one job description, best first.
#[utoipa::path(post, path = "/rank", tag = "scorer", request_body = RankRequest, responses(
        (status = 200, description = "Each resume's score and reasons, best first.", body = RankResponse),
        JsonBodyErrors,
        (status = 503, description = "Memory pressure (`overloaded`, Retry-After) or no model loaded (`unavailable`).", body = ErrorBody),
))]
pub async fn rank(State(state): State<AppState>, ApiJson(req): ApiJson<RankRequest>) -> Result<Json<RankResponse>, ApiError> {
    let most = state.scoring.max_resumes;
    if req.resumes.len() > most {
        return Err(ApiError::TooLarge(format!("{} resumes given, at most {most} per request", req.resumes.len())));
    }
    if req.resumes.is_empty() {
        return Err(ApiError::Validation("resumes must not be empty".into()));
    }
    check_size(&state, "job_description", &req.job_description)?;
    for r in &req.resumes {
        check_size(&state, &format!("resume {:?}", r.id), &r.text)?;
        crate::scorer::check_text("resume", &r.text).map_err(|e| ApiError::Validation(format!("resume {:?}: {e}", r.id)))?;
    }
    let weights = weights_for(&state, req.weights)?;
    let options = ScoreOptions { batch: state.scoring.score_batch, ..ScoreOptions::default() };
    let job_text = req.job_description;
    let resumes = req.resumes;
    let (mut results, texts, tokens) = run_compute(&state, move |model, embed| {
        let options = ScoreOptions { embed, ..options };
        let job = Job::new(model, &job_text, options)?;
        let (mut texts, mut tokens) = job.embedded;
        let mut results = Vec::with_capacity(resumes.len());
        // One resume at a time: memory holds one resume's vectors, whatever the request.
        for r in resumes {
            let (report, (t, k)) = job.score(model, &r.text, &weights, options)?;
            texts += t;
            tokens += k;
            results.push(Ranked { id: r.id, report });
        }
        Ok::<_, ScoreError>((results, texts, tokens))
    })
    .await?
    .map_err(map_error)?;
    results.sort_by(|a, b| b.report.score.total_cmp(&a.report.score).then_with(|| a.id.cmp(&b.id)));
    state.metrics.record_embedded(texts, tokens);
    Ok(Json(RankResponse { results }))
}

fn check_size(state: &AppState, what: &str, text: &str) -> Result<(), ApiError> {
    super::resume_input::check_text(what, text, state.limits.max_text_chars)
}

fn weights_for(state: &AppState, asked: Option<Weights>) -> Result<Weights, ApiError> {
    let w = asked.or(state.scoring.score_weights).unwrap_or_default();
    w.validate().map_err(|e| ApiError::Validation(format!("weights: {e}")))?;
    Ok(w)
}

fn map_error(e: ScoreError) -> ApiError {
    match e {
        ScoreError::Empty { .. } | ScoreError::NotText { .. } | ScoreError::Weights(_) => ApiError::Validation(e.to_string()),
        ScoreError::Embed(e) => ApiError::Internal(e.to_string()),
    }
}
