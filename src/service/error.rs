//! API errors: one type, mapped once to `{"error", "error_type"}` JSON with the right status.
//! 4xx messages tell the caller what to fix; 5xx are generic to the caller and logged in full.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::scorer::pdf::PdfError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadJson(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    InvalidPayload(String),
    /// An idempotency key (a Tally eventId) reused with another payload.
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("expected a JSON body with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("unsupported content type {got}: expected {expected}")]
    WrongContentType { got: String, expected: &'static str },
    #[error("{0}")]
    BadMultipart(String),
    /// A resume PDF that could not be read; 413, 422 or 503 by what was wrong.
    #[error(transparent)]
    Pdf(#[from] PdfError),
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the server is at its limit of {0} requests in flight; retry shortly")]
    Overloaded(usize),
    #[error("memory pressure: {0}; retry shortly")]
    MemoryPressure(String),
    #[error("the model is not loaded: {0}")]
    ModelUnavailable(String),
    #[error(
        "no corpus is loaded: build one with `snapembed index CORPUS -o FILE`, then start the server with \
         --corpus FILE (or SNAPEMBED_CORPUS=FILE)"
    )]
    NoCorpus,
    #[error("search is unavailable: {0}; retry shortly")]
    SearchUnavailable(String),
    #[error("internal error")]
    Internal(String),
}

/// The body of every error: what to fix (4xx) or that the server failed (5xx), and a stable
/// machine-readable kind.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: String,
    /// `invalid_json`, `validation`, `payload_too_large`, `unsupported_media_type`,
    /// `invalid_multipart`, `pdf_no_text`, `pdf_encrypted`, `pdf_unreadable`, `unauthorized`,
    /// `invalid_payload`, `not_found`, `method_not_allowed`, `overloaded`, `unavailable`,
    /// `no_corpus` or `internal`.
    pub error_type: &'static str,
}

/// The errors every route with a JSON body can answer with, for the OpenAPI document
/// (`responses(…, JsonBodyErrors)`); each route adds its own 200 and 503.
/// Documentation only: never built, [`ApiError`] makes the responses.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum JsonBodyErrors {
    #[response(status = 400, description = "Malformed JSON (`invalid_json`).")]
    BadJson(ErrorBody),
    #[response(status = 413, description = "Body, texts or inputs over the limits (`payload_too_large`).")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "Not `application/json` (`unsupported_media_type`).")]
    WrongType(ErrorBody),
    #[response(status = 422, description = "Well-formed JSON that breaks a rule: a missing field, a wrong type, an empty text (`validation`).")]
    Invalid(ErrorBody),
    #[response(status = 429, description = "Too many requests in flight (`overloaded`); see Retry-After.")]
    Overloaded(ErrorBody),
    #[response(status = 500, description = "A fault of the server (`internal`), logged in full.")]
    Internal(ErrorBody),
}

impl ApiError {
    fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType | ApiError::WrongContentType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::BadMultipart(_) => (StatusCode::BAD_REQUEST, "invalid_multipart"),
            ApiError::Pdf(e) => match e {
                PdfError::TooLarge { .. } | PdfError::InflatesTooLarge { .. } | PdfError::TooManyPages { .. } | PdfError::TextTooLong { .. } => {
                    (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
                }
                PdfError::NoText => (StatusCode::UNPROCESSABLE_ENTITY, "pdf_no_text"),
                PdfError::Encrypted => (StatusCode::UNPROCESSABLE_ENTITY, "pdf_encrypted"),
                PdfError::NotPdf | PdfError::Corrupt(_) | PdfError::NestedForms | PdfError::Unreadable(_) | PdfError::Crashed { .. } | PdfError::TimedOut(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "pdf_unreadable")
                }
                PdfError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
                PdfError::Spawn(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::InvalidPayload(_) => (StatusCode::BAD_REQUEST, "invalid_payload"),
            ApiError::IdempotencyConflict(_) => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_conflict"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Overloaded(_) => (StatusCode::TOO_MANY_REQUESTS, "overloaded"),
            ApiError::MemoryPressure(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::ModelUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::NoCorpus => (StatusCode::SERVICE_UNAVAILABLE, "no_corpus"),
            ApiError::SearchUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "search_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_type) = self.status_and_type();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let error = match &self {
            ApiError::Pdf(e @ PdfError::Spawn(_)) => {
                tracing::error!(error = %e, "internal error");
                "internal error".to_owned()
            }
            _ => self.to_string(),
        };
        let body = ErrorBody { error, error_type };
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(self, ApiError::Overloaded(_) | ApiError::MemoryPressure(_) | ApiError::Pdf(PdfError::Busy { .. })) {
            resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        // A database restart or failover takes seconds, not one.
        if matches!(self, ApiError::SearchUnavailable(_)) {
            resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        resp
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => ApiError::Validation(format!("invalid request: {}", e.body_text())),
            JsonRejection::JsonSyntaxError(e) => ApiError::BadJson(format!("malformed JSON: {}", e.body_text())),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge("request body is larger than the server's limit".into())
            }
            other => ApiError::BadJson(other.body_text()),
        }
    }
}

/// `Json<T>` whose rejections use our error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}
