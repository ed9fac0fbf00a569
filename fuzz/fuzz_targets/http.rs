//! Every route's handler behind the real router: `app(state)` with the embedded model and the
//! real corpus, driven with `tower::ServiceExt::oneshot` on a current-thread runtime built once.
//! The first byte picks the route, the second the Content-Type (`files::http_request`, which
//! tests/fuzz_regressions.rs shares); the rest is the body. Whatever arrives, the answer is not
//! a 5xx and its body is JSON (the one error shape, or a result).
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use snapembed::service::config::Limits;
use snapembed::service::memory::MemoryGuard;
use snapembed::service::{app, AppState};
use tower::ServiceExt;

fn router() -> &'static Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| {
        let model = match snapembed::Embedder::from_static(snapembed_fuzz::real_snapshot()) {
            Ok(m) => m.with_threads(1),
            Err(e) => panic!("the embedded snapshot must load: {e}"),
        };
        // A budget no fuzzing process reaches: the memory guard's levels are tested elsewhere,
        // and an emergency 503 here would hide real 5xx.
        let state = AppState::new(Ok(model), Limits::default(), 1, MemoryGuard::new(Some(1 << 30)))
            .with_corpus(snapembed_fuzz::corpus());
        app(state)
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((method, path, content_type, body)) = snapembed_fuzz::http_request(input) else { return };
    let mut req = Request::builder().method(Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST)).uri(path);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else { return };
    snapembed_fuzz::runtime().block_on(async {
        let resp = match router().clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => panic!("{path}: the body could not be read: {e}"),
        };
        assert!(!status.is_server_error(), "{path}: {status} {}", String::from_utf8_lossy(&bytes));
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            panic!("{path}: {status} with a body that is not JSON ({e}): {}", String::from_utf8_lossy(&bytes));
        }
    });
});
