//! Oversized request bodies, answered so that ordinary clients read the answer.
//!
//! Refusing a body by reading up to the limit and then closing makes the kernel reset the
//! connection while the client is still sending: Python's `http.client` posting 10 MB to
//! `/embed` got `BrokenPipeError` instead of the 413 JSON. So, when `Content-Length` is over
//! the limit, the 413 is answered before any of the body is read, and then:
//! - with `Expect: 100-continue` nothing is read (hyper sends no `100 Continue` for a body
//!   nobody polls) and the client never sends it;
//! - otherwise the body is read and discarded in the background, up to [`DRAIN_BYTES`] or
//!   [`DRAIN_TIME`] (nginx's lingering close does the same), so the client's send completes
//!   and it reads the 413; past either bound the connection is closed anyway.
//!
//! A chunked body without `Content-Length` is still cut at the limit by `DefaultBodyLimit`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, EXPECT};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::{ApiError, AppState};

/// Most bytes discarded after a 413: a 10 MB upload drains in ~10 ms on loopback; past 64 MB
/// the client is sending far more than any request we could serve.
pub const DRAIN_BYTES: u64 = 64 << 20;
/// Longest time spent discarding one body (nginx's `lingering_time` is 30 s; a slow client
/// sending more than this is cut off).
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

pub async fn refuse_oversized(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.limits.max_body_bytes as u64;
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let Some(len) = declared.filter(|&n| n > limit) else {
        return next.run(req).await;
    };
    let expects_continue = req.headers().get(EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects_continue {
        tokio::spawn(drain(req.into_body(), len.min(DRAIN_BYTES)));
    }
    let mut resp =
        ApiError::TooLarge(format!("request body of {len} bytes is larger than the server's limit of {limit} bytes")).into_response();
    resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Reads and drops up to `budget` bytes of `body` within [`DRAIN_TIME`].
async fn drain(body: Body, budget: u64) {
    let mut body = body;
    let discard = async {
        let mut seen = 0u64;
        while seen < budget {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len() as u64),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}
