//! `POST /webhook/tally`: hands the raw body and the `Tally-Signature` header to
//! [`crate::tally::Webhook`] (which verifies before parsing), gives it semantic search as its
//! search function, and maps its reply to HTTP: 200 with the result (or `ignored: true` for
//! another event type), 401 for a missing or wrong signature, 400 for a malformed payload, 422
//! for an eventId reused with another payload, and 502 (still with the full result) when
//! forwarding failed, so Tally redelivers — see the feature module for why.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::search::search_text;
use super::AppState;
use crate::search::SearchParams;
use crate::tally::{Outcome, Reply, WebhookError};

/// The request body: a form response, which is read and searched, or any other event, which is
/// acknowledged unread. Written out as `anyOf` so that generated deliveries reach the parser.
struct TallyDelivery;

impl utoipa::PartialSchema for TallyDelivery {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Type};
        use utoipa::ToSchema;
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let event_id = || text().min_length(Some(1));
        let has = |field: &str| ObjectBuilder::new().property(field, text()).required(field);
        // The parser needs `submissionId` or `responseId` (a string) to key idempotency.
        let data = AllOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name(crate::tally::payload::FormResponse::name()))
            .item(AnyOfBuilder::new().item(has("submissionId")).item(has("responseId")));
        let form_response = ObjectBuilder::new()
            .property("eventId", event_id())
            .property("eventType", text().enum_values(Some([crate::tally::payload::FORM_RESPONSE])))
            .property("createdAt", text())
            .property("data", data)
            .required("eventId")
            .required("eventType")
            .required("data")
            .description(Some("A form submission: its text-like answers are searched."));
        let other = ObjectBuilder::new()
            .property("eventId", event_id())
            .property("eventType", text())
            .property("createdAt", text())
            .property("data", utoipa::openapi::schema::Object::new())
            .required("eventId")
            .required("eventType")
            .description(Some("Any other event: acknowledged with `ignored: true`."));
        AnyOfBuilder::new().item(form_response).item(other).into()
    }
}
impl utoipa::ToSchema for TallyDelivery {}

/// What a 200 carries.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: the handler answers with the bytes `Webhook` made
#[serde(untagged)]
enum TallyReply<'a> {
    Processed(crate::tally::Response<'a>),
    Ignored(crate::tally::Ignored),
}

/// Tally's form webhook: the answers searched, the matches returned (and forwarded).
#[utoipa::path(post, path = "/webhook/tally", tag = "tally",
    request_body(content = TallyDelivery, description = "A Tally event; with a signing secret set, `Tally-Signature` must be the base64 HMAC-SHA256 of the body."),
    params(("Tally-Signature" = Option<String>, Header, description = "base64 HMAC-SHA256 of the raw body with the signing secret")),
    responses(
        (status = 200, description = "A form response searched (`TallyResult`; a replay carries `Idempotent-Replayed: true`), or another event acknowledged (`Ignored`).",
            body = inline(TallyReply)),
        (status = 400, description = "Not a Tally webhook payload (`invalid_payload`).", body = ErrorBody),
        (status = 401, description = "Missing or wrong signature (`unauthorized`).", body = ErrorBody),
        (status = 413, description = "Body over the limit (`payload_too_large`).", body = ErrorBody),
        (status = 422, description = "An eventId delivered before, with another payload (`idempotency_conflict`).", body = ErrorBody),
        (status = 502, description = "Searched, but forwarding failed: Tally redelivers.", body = crate::tally::Response),
        (status = 503, description = "Memory pressure (`overloaded`); see Retry-After.", body = ErrorBody),
))]
pub async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::TooLarge("request body is larger than the server's limit".into()).into_response()
        }
        Err(e) => return ApiError::BadJson(e.body_text()).into_response(),
    };
    let signature = headers.get("tally-signature").map(HeaderValue::as_bytes);
    let top_k = state.tally.settings().top_k;
    let search = |text: String| {
        let state = state.clone();
        async move {
            let params = SearchParams { top_k: Some(top_k), filter: None, min_score: None };
            match search_text(&state, text, params).await {
                Ok(found) => found.results.into_iter().map(|hit| serde_json::to_value(hit).map_err(|e| e.to_string())).collect(),
                Err(e) => {
                    // A 5xx's message is generic by design; its detail belongs in the log.
                    if let ApiError::Internal(detail) = &e {
                        tracing::error!(%detail, "tally webhook: search failed");
                    }
                    Err(e.to_string())
                }
            }
        }
    };
    match state.tally.handle(signature, &body, started, search).await {
        Ok(Reply::Ignored(ignored)) => Json(ignored).into_response(),
        Ok(Reply::Processed { body, outcome }) => {
            let status = match outcome {
                Outcome::Delivered | Outcome::Replayed | Outcome::ForwardFailed { acknowledge: true } => StatusCode::OK,
                Outcome::ForwardFailed { acknowledge: false } => StatusCode::BAD_GATEWAY,
            };
            let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], Body::from(body)).into_response();
            if outcome == Outcome::Replayed {
                resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            resp
        }
        Err(WebhookError::Signature(e)) => {
            tracing::warn!(error = %e, "tally webhook refused: bad signature");
            ApiError::Unauthorized(e.to_string()).into_response()
        }
        Err(WebhookError::Payload(e)) => ApiError::InvalidPayload(format!("not a Tally webhook payload: {e}")).into_response(),
        Err(e @ WebhookError::Reused { .. }) => ApiError::IdempotencyConflict(e.to_string()).into_response(),
    }
}
