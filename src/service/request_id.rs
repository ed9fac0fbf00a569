//! `X-Request-Id`: taken from the request when it is a sensible id (1–128 visible ASCII
//! characters), else generated; returned on every response and carried as the `request_id`
//! field of a span around the request, so every log line of the request names it.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// A caller's id longer than this is replaced (it would be repeated on every log line).
const MAX_LEN: usize = 128;

pub async fn request_id(mut req: Request, next: Next) -> Response {
    let given = req.headers().get(HEADER).filter(|v| acceptable(v.as_bytes())).cloned();
    let id = given.unwrap_or_else(generate);
    req.headers_mut().insert(HEADER, id.clone());
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default());
    let mut resp = next.run(req).instrument(span).await;
    resp.headers_mut().insert(HEADER, id);
    resp
}

fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

/// 64 random bits drawn once per process, then a counter: unique across instances and cheap.
fn generate() -> HeaderValue {
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(std::process::id()));
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{process:016x}{n:08x}")).unwrap_or(HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_and_generated_unique() {
        assert!(acceptable(b"3f2a-req-17"));
        assert!(!acceptable(b""));
        assert!(!acceptable(b"has space"));
        assert!(!acceptable(&[b'a'; MAX_LEN + 1]));
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
    }
}
