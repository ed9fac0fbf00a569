//! The resume scorer's request bodies: a resume and a job description, sent either as
//! `multipart/form-data` (a file part `resume`, PDF or plain text, a text part
//! `job_description`, and optionally a `weights` part holding the weights' JSON) or as JSON
//! (`resume` text or `resume_pdf_base64`, `job_description`, optional `weights`).
//! [`ResumeInput`] is an extractor that turns either into text, reading a PDF through
//! [`crate::scorer::pdf`] on a blocking thread; every way a body can be wrong becomes an
//! [`ApiError`] (a scanned PDF → 422 "no text was found", too large → 413, another content
//! type → 415). Scoring the text is the scorer's business.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use base64::Engine;
use serde::Deserialize;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::scorer::pdf::{self, PdfLimits};
use crate::scorer::Weights;

/// What the scorer gets: both texts, the resume's already extracted if it came as a PDF.
#[derive(Debug, Clone)]
pub struct ResumeInput {
    pub resume: String,
    pub job_description: String,
    /// The resume came as a PDF.
    pub from_pdf: bool,
    /// The request's score weights, if it gave any.
    pub weights: Option<Weights>,
}

/// The JSON form; `#[serde(flatten)]` it into a request that has more fields.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ResumeJson {
    /// The resume's text.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 50_000)]
    pub resume: Option<String>,
    /// A PDF, standard base64.
    #[serde(default)]
    pub resume_pdf_base64: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 50_000)]
    pub job_description: Option<String>,
    #[serde(default)]
    pub weights: Option<Weights>,
}

/// The JSON body's schema: [`ResumeJson`] with `job_description` and exactly one of `resume`
/// and `resume_pdf_base64` (what `from_json` and `parse` require).
pub struct ResumeJsonSchema;

impl utoipa::PartialSchema for ResumeJsonSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder};
        use utoipa::ToSchema;
        let requires = |field: &str| ObjectBuilder::new().required(field);
        AllOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name(ResumeJson::name()))
            .item(requires("job_description"))
            .item(OneOfBuilder::new().item(requires("resume")).item(requires("resume_pdf_base64")))
            .into()
    }
}
impl utoipa::ToSchema for ResumeJsonSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "ScoreRequest".into()
    }
}

/// The multipart body's schema (read part by part in `read_multipart`, never as this type).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct ResumeForm {
    /// The resume: a PDF (`application/pdf`, or any part starting `%PDF-`) or UTF-8 text.
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    resume: Vec<u8>,
    #[schema(min_length = 1, max_length = 50_000)]
    job_description: String,
    /// The weights as JSON text, e.g. `{"requirements": 0.6}`.
    #[schema(max_length = 1024)]
    weights: Option<String>,
}

/// `{"requirements": …, "skills": …, "similarity": …}` is far below this.
const MAX_WEIGHTS_BYTES: usize = 1024;

/// Bounds on one resume request.
#[derive(Debug, Clone, Copy)]
pub struct ResumeLimits {
    pub pdf: PdfLimits,
    /// Most characters in the resume's text (extracted or sent) and in the job description.
    pub max_text_chars: usize,
}

impl ResumeLimits {
    /// The service's text limit; PDFs within its body limit and the PDF defaults.
    pub fn from_state(state: &AppState) -> ResumeLimits {
        let defaults = PdfLimits::default();
        ResumeLimits {
            pdf: PdfLimits { max_bytes: defaults.max_bytes.min(state.limits.max_body_bytes), ..defaults },
            max_text_chars: state.limits.max_text_chars,
        }
    }
}

/// The resume as it arrived.
enum Resume {
    Text(String),
    Pdf(Vec<u8>),
}

impl FromRequest<AppState> for ResumeInput {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limits = ResumeLimits::from_state(state);
        parse(req, state, &limits).await
    }
}

/// Reads either form of body and extracts a PDF's text; see the module doc.
pub async fn parse(req: Request, state: &AppState, limits: &ResumeLimits) -> Result<ResumeInput, ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mime = content_type.split(';').next().unwrap_or("").trim().to_owned();
    let Parts { resume, job_description, weights } = match mime.as_str() {
        "multipart/form-data" => read_multipart(req, state, limits).await?,
        "application/json" => {
            let ApiJson(body) = ApiJson::<ResumeJson>::from_request(req, state).await?;
            from_json(body, limits)?
        }
        _ => return Err(wrong_type(if mime.is_empty() { "none" } else { &mime })),
    };
    let job_description = checked_text("job_description", job_description, limits)?;
    let (resume, from_pdf) = match resume {
        Resume::Text(t) => (t, false),
        Resume::Pdf(bytes) => (extract_pdf(bytes, limits.pdf).await?, true),
    };
    let resume = checked_text("resume", Some(resume), limits)?;
    Ok(ResumeInput { resume, job_description, from_pdf, weights })
}

/// The body's fields before the resume is read as text.
struct Parts {
    resume: Resume,
    job_description: Option<String>,
    weights: Option<Weights>,
}

fn wrong_type(got: &str) -> ApiError {
    ApiError::WrongContentType {
        got: got.chars().take(100).collect(),
        expected: "application/json, or multipart/form-data with a `resume` file (PDF or text) and a `job_description` field",
    }
}

/// The PDF's text, from a blocking thread (extraction takes up to its timeout).
async fn extract_pdf(bytes: Vec<u8>, limits: PdfLimits) -> Result<String, ApiError> {
    match tokio::task::spawn_blocking(move || pdf::extract_text(&bytes, &limits)).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError::Internal(format!("PDF task failed: {e}"))),
    }
}

fn from_json(body: ResumeJson, limits: &ResumeLimits) -> Result<Parts, ApiError> {
    let resume = match (body.resume, body.resume_pdf_base64) {
        (Some(_), Some(_)) => return Err(ApiError::Validation("send either resume or resume_pdf_base64, not both".into())),
        (None, None) => return Err(ApiError::Validation("resume (text) or resume_pdf_base64 is required".into())),
        (Some(text), None) => Resume::Text(text),
        (None, Some(b64)) => {
            // Decoded bytes are 3/4 of the text: refuse before decoding what would be too large.
            let decoded_len = b64.len() / 4 * 3;
            if decoded_len > limits.pdf.max_bytes {
                return Err(pdf::PdfError::TooLarge { bytes: decoded_len, max: limits.pdf.max_bytes }.into());
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ApiError::Validation(format!("resume_pdf_base64 is not valid base64: {e}")))?;
            Resume::Pdf(bytes)
        }
    };
    Ok(Parts { resume, job_description: body.job_description, weights: body.weights })
}

async fn read_multipart(req: Request, state: &AppState, limits: &ResumeLimits) -> Result<Parts, ApiError> {
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::BadMultipart(format!("malformed multipart body: {}", e.body_text())))?;
    let (mut resume, mut job_description, mut weights) = (None, None, None);
    // Text parts are bounded by bytes first: UTF-8 takes at most 4 per character.
    let max_text_bytes = limits.max_text_chars.saturating_mul(4);
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "resume" => {
                let declared = field.content_type().map(|c| c.to_ascii_lowercase());
                let max = limits.pdf.max_bytes.max(max_text_bytes);
                let bytes = read_field(&mut field, "resume", max).await?;
                resume = Some(classify_resume(bytes, declared.as_deref(), limits)?);
            }
            "job_description" => {
                let bytes = read_field(&mut field, "job_description", max_text_bytes).await?;
                job_description = Some(utf8("job_description", bytes)?);
            }
            "weights" => {
                let bytes = read_field(&mut field, "weights", MAX_WEIGHTS_BYTES).await?;
                let parsed = serde_json::from_slice(&bytes).map_err(|e| ApiError::Validation(format!("the `weights` part is not weights JSON: {e}")))?;
                weights = Some(parsed);
            }
            other => {
                return Err(ApiError::Validation(format!(
                    "unexpected form field {:?}: send `resume` (a file), `job_description` and optionally `weights`",
                    other.chars().take(64).collect::<String>()
                )))
            }
        }
    }
    let resume = resume.ok_or_else(|| ApiError::Validation("the form has no `resume` file part".into()))?;
    Ok(Parts { resume, job_description, weights })
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge("request body is larger than the server's limit".into())
    } else {
        ApiError::BadMultipart(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// A part's bytes, refused as soon as they pass `max`.
async fn read_field(field: &mut axum::extract::multipart::Field<'_>, name: &str, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if out.len() + chunk.len() > max {
            return Err(ApiError::TooLarge(format!("the `{name}` part is larger than {max} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A PDF by its declared type or its header; text if it says so or is plain UTF-8; else 415.
fn classify_resume(bytes: Vec<u8>, declared: Option<&str>, limits: &ResumeLimits) -> Result<Resume, ApiError> {
    let mime = declared.map(|d| d.split(';').next().unwrap_or("").trim());
    let is_pdf = bytes.starts_with(b"%PDF-");
    match mime {
        Some("application/pdf") | Some("application/x-pdf") => Ok(Resume::Pdf(bytes)),
        _ if is_pdf => Ok(Resume::Pdf(bytes)),
        None | Some("") | Some("text/plain") | Some("text/markdown") | Some("application/octet-stream") => {
            if bytes.len() > limits.max_text_chars.saturating_mul(4) {
                return Err(ApiError::TooLarge(format!("the resume text has more than {} characters", limits.max_text_chars)));
            }
            Ok(Resume::Text(utf8("resume", bytes)?))
        }
        Some(other) => Err(ApiError::WrongContentType {
            got: other.chars().take(100).collect(),
            expected: "a resume as application/pdf or text/plain",
        }),
    }
}

/// Text, or 415 for binary junk (not UTF-8, or with NUL bytes).
fn utf8(name: &str, bytes: Vec<u8>) -> Result<String, ApiError> {
    match String::from_utf8(bytes) {
        Ok(s) if !s.contains('\0') => Ok(s),
        _ => Err(ApiError::WrongContentType { got: "binary data".into(), expected: if name == "resume" { "a resume as PDF or UTF-8 text" } else { "UTF-8 text" } }),
    }
}

/// Present, not blank, within the character limit.
fn checked_text(name: &str, text: Option<String>, limits: &ResumeLimits) -> Result<String, ApiError> {
    let text = text.ok_or_else(|| ApiError::Validation(format!("{name} is required")))?;
    check_text(name, &text, limits.max_text_chars)?;
    Ok(text)
}

/// A text over `max_chars` characters is a 413 naming the limit; an empty one a 422. Shared by
/// `/score` (here) and `/rank`'s JSON texts.
pub(super) fn check_text(name: &str, text: &str, max_chars: usize) -> Result<(), ApiError> {
    // Bytes bound characters from above: count them only when the bytes pass the limit.
    if text.len() > max_chars {
        let chars = text.chars().count();
        if chars > max_chars {
            return Err(ApiError::TooLarge(format!("{name} has {chars} characters, at most {max_chars} allowed")));
        }
    }
    if text.trim().is_empty() {
        return Err(ApiError::Validation(format!("{name} is empty")));
    }
    Ok(())
}
