//! The AWS Lambda adapter: the same router behind `lambda_http`, which turns API Gateway
//! (REST v1 and HTTP v2), Function URL and ALB events into HTTP requests and back.
//!
//! lambda_http keeps a REST API's stage in the path (`/prod/embed`); routes are stage-free, so
//! the adapter strips it here instead of requiring `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`.

use axum::http::Uri;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tower::ServiceBuilder;

use crate::service::{app, AppState};

/// The service lambda_http runs: stage stripping, then the router.
pub fn service(
    state: AppState,
) -> impl tower::Service<Request, Response = axum::response::Response, Error = std::convert::Infallible, Future: Send> + Clone
{
    ServiceBuilder::new().map_request(strip_stage).service(app(state))
}

pub async fn run(state: AppState) -> Result<(), lambda_http::Error> {
    lambda_http::run(service(state)).await
}

fn strip_stage(mut req: Request) -> Request {
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.clone(),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| s != "$default" && !s.is_empty()) else {
        return req;
    };
    let prefix = format!("/{stage}");
    let path = req.uri().path();
    let rest = match path.strip_prefix(&prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => return req,
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(p) = pq.parse() {
        parts.path_and_query = Some(p);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}
