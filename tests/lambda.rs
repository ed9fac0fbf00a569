//! AWS Lambda: real event JSON through lambda_http's request conversion into the router, and
//! the built binary against a fake Runtime API on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use snapembed::service::config::Limits;
use snapembed::service::AppState;
use snapembed::service::memory::MemoryGuard;
use snapembed::Embedder;
use tower::ServiceExt;

use crate::common::{cosine, data_path, embedder, snapshot_path};

fn event(name: &str) -> String {
    std::fs::read_to_string(data_path(&format!("lambda/{name}.json"))).unwrap()
}

async fn through_adapter(name: &str) -> (u16, Value) {
    let req = lambda_http::request::from_str(&event(name)).unwrap();
    let model = Embedder::from_snapshot(&snapshot_path()).map_err(|e| e.to_string());
    let svc = snapembed::service::lambda::service(AppState::new(model, Limits::default(), 1, MemoryGuard::new(None)));
    let resp = svc.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn api_gateway_v2_event() {
    let (status, body) = through_adapter("apigw_v2").await;
    assert_eq!(status, 200, "{body}");
    let v: Vec<Vec<f32>> = serde_json::from_value(body).unwrap();
    assert!(cosine(&v[0], &embedder().embed(&["hello world"]).unwrap()[0]) > 0.999_999);
}

#[tokio::test]
async fn function_url_event_with_a_base64_body() {
    let (status, body) = through_adapter("function_url").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn alb_event() {
    let (status, body) = through_adapter("alb").await;
    assert_eq!(status, 200, "{body}");
    let scores: Vec<f32> = serde_json::from_value(body).unwrap();
    assert!(scores[0] > scores[1]);
}

#[tokio::test]
async fn api_gateway_v1_event_with_a_stage_in_the_path() {
    let req = lambda_http::request::from_str(&event("apigw_v1_stage")).unwrap();
    assert_eq!(req.uri().path(), "/prod/embed", "lambda_http keeps the stage; the adapter must strip it");
    let (status, body) = through_adapter("apigw_v1_stage").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2);
}

/// A fake Lambda Runtime API: hands out `events` one per `next` call, collects what the
/// function posts back, and leaves the last `next` hanging (as Lambda freezes the function).
type Events = Arc<Mutex<std::iter::Enumerate<std::vec::IntoIter<String>>>>;

fn fake_runtime(events: Vec<String>) -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    let events: Events = Arc::new(Mutex::new(events.into_iter().enumerate()));
    std::thread::spawn(move || {
        // The runtime's client may open several connections: serve each on its own thread.
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (events, tx) = (events.clone(), tx.clone());
            std::thread::spawn(move || serve_connection(stream, &events, &tx));
        }
    });
    (addr, rx)
}

fn serve_connection(stream: TcpStream, events: &Events, tx: &mpsc::Sender<(String, String)>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return; // the client closed this connection
        }
        let mut content_length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body).unwrap();
        let path = request_line.split_whitespace().nth(1).unwrap_or("").to_owned();
        if path.ends_with("/invocation/next") {
            let next = events.lock().unwrap().next();
            let Some((i, ev)) = next else {
                std::thread::sleep(Duration::from_secs(3600));
                return;
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-{i}\r\n\
                 Lambda-Runtime-Deadline-Ms: 9999999999999\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:snapembed\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-6741b5a0-0123456789abcdef01234567\r\nContent-Length: {}\r\n\r\n",
                ev.len()
            );
            out.write_all(head.as_bytes()).unwrap();
            out.write_all(ev.as_bytes()).unwrap();
        } else {
            let _ = tx.send((path, String::from_utf8_lossy(&body).into_owned()));
            out.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n").unwrap();
        }
    }
}

/// Lambda's own environment for a function, pointed at the fake Runtime API at `addr`.
fn lambda_env(cmd: &mut std::process::Command, addr: &str) {
    cmd.env("AWS_LAMBDA_RUNTIME_API", addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "snapembed")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/23/[$LATEST]test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/snapembed")
        .env("AWS_REGION", "us-east-1")
        .env("LAMBDA_TASK_ROOT", "/var/task")
        .env("_HANDLER", "bootstrap");
}

/// Runs `cmd` as a function against a fake Runtime API serving `events`; returns what it posted
/// back for each, in order: (path, body).
fn invoke(mut cmd: std::process::Command, events: Vec<String>) -> Vec<(String, String)> {
    let n = events.len();
    let (addr, responses) = fake_runtime(events);
    lambda_env(&mut cmd, &addr);
    let mut child = cmd.stdout(std::process::Stdio::null()).spawn().unwrap();
    let mut got = Vec::new();
    for _ in 0..n {
        match responses.recv_timeout(Duration::from_secs(60)) {
            Ok(r) => got.push(r),
            Err(e) => {
                let _ = child.kill();
                panic!("no response from the function: {e}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    got
}

/// A Function URL event for `method path` with a JSON body (base64-encoded when asked).
pub fn function_url_event(method: &str, path: &str, body: Option<&str>, base64: bool) -> String {
    use base64::Engine;
    let mut ev: Value = serde_json::from_str(&event("function_url")).unwrap();
    ev["rawPath"] = path.into();
    ev["requestContext"]["http"]["path"] = path.into();
    ev["requestContext"]["http"]["method"] = method.into();
    match body {
        Some(b) if base64 => {
            ev["body"] = base64::engine::general_purpose::STANDARD.encode(b).into();
            ev["isBase64Encoded"] = true.into();
        }
        Some(b) => {
            ev["body"] = b.into();
            ev["isBase64Encoded"] = false.into();
        }
        None => {
            ev.as_object_mut().unwrap().remove("body");
            ev["isBase64Encoded"] = false.into();
        }
    }
    ev.to_string()
}

/// The status and the parsed JSON body of one posted-back Function URL / API Gateway response.
fn payload(response: &str) -> (u64, Value) {
    let resp: Value = serde_json::from_str(response).unwrap();
    let body = resp["body"].as_str().unwrap_or("null");
    (resp["statusCode"].as_u64().unwrap(), serde_json::from_str(body).unwrap())
}

#[test]
fn the_built_binary_answers_a_fake_runtime_api_for_every_event_kind() {
    let names = ["apigw_v2", "function_url", "alb", "apigw_v1_stage"];
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snapembed"));
    cmd.env("SNAPEMBED_SNAPSHOT", snapshot_path());
    let got = invoke(cmd, names.iter().map(|n| event(n)).collect());
    for (i, (path, body)) in got.iter().enumerate() {
        assert_eq!(path, &format!("/2018-06-01/runtime/invocation/req-{i}/response"), "{body}");
        let (status, payload) = payload(body);
        assert_eq!(status, 200, "{} → {body}", names[i]);
        match names[i] {
            "apigw_v2" => assert_eq!(payload[0].as_array().unwrap().len(), 384),
            "function_url" => assert_eq!(payload["usage"]["prompt_tokens"], 7),
            "alb" => assert_eq!(payload.as_array().unwrap().len(), 2),
            _ => assert_eq!(payload.as_array().unwrap().len(), 2),
        }
    }
    assert!(got[2].1.contains("statusDescription"), "ALB responses carry a status description");
}

/// What `snapembed embed` prints for `text`, parsed.
fn cli_vector(text: &str) -> Vec<f32> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snapembed"))
        .args(["embed", "--text", text])
        .env("SNAPEMBED_SNAPSHOT", snapshot_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The deployment artifact itself: `bootstrap` as `sam build --beta-features` made it
/// (`SNAPEMBED_SAM_BOOTSTRAP`, set by tests/run.sh), copied alone into an empty directory as
/// Lambda unpacks it, started with no arguments and Lambda's environment only.
#[test]
fn the_sam_built_bootstrap_serves_alone_in_an_empty_directory() {
    let Some(bootstrap) = std::env::var_os("SNAPEMBED_SAM_BOOTSTRAP") else {
        assert!(
            std::env::var_os("SNAPEMBED_REQUIRE_SAM").is_none(),
            "SNAPEMBED_REQUIRE_SAM is set but SNAPEMBED_SAM_BOOTSTRAP is not"
        );
        eprintln!("skipped: SNAPEMBED_SAM_BOOTSTRAP is not set (tests/run.sh runs sam build and sets it)");
        return;
    };
    let task_root = tempfile::tempdir().unwrap();
    let copied = task_root.path().join("bootstrap");
    std::fs::copy(&bootstrap, &copied).unwrap();
    let text = "Lambda ships only bootstrap";
    let events = vec![
        function_url_event("GET", "/health", None, false),
        function_url_event("POST", "/embed", Some(&serde_json::json!({ "inputs": text }).to_string()), true),
        function_url_event("GET", "/model-status", None, false),
        function_url_event("POST", "/search", Some(r#"{"query": "refund for an annual plan", "top_k": 3}"#), false),
        function_url_event("POST", "/webhook/tally", Some(&std::fs::read_to_string(data_path("tally/support_request.json")).unwrap()), true),
    ];
    let mut cmd = std::process::Command::new(&copied);
    cmd.current_dir(task_root.path()).env_clear().env("PATH", "/usr/bin:/bin");
    let got = invoke(cmd, events);

    let (status, health) = payload(&got[0].1);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy", "{health}");
    let (status, vectors) = payload(&got[1].1);
    assert_eq!(status, 200, "{vectors}");
    let v: Vec<Vec<f32>> = serde_json::from_value(vectors).unwrap();
    assert_eq!(v[0], cli_vector(text), "the deployed binary must give `snapembed embed`'s vector");
    let (status, model) = payload(&got[2].1);
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["snapshot"]["source"], "embedded", "{model}");
    // The sample corpus index is compiled in too: search and the webhook answer from it.
    let (status, search) = payload(&got[3].1);
    assert_eq!(status, 200, "{search}");
    assert!(!search["results"].as_array().unwrap().is_empty(), "{search}");
    let (status, webhook) = payload(&got[4].1);
    assert_eq!(status, 200, "{webhook}");
    assert!(!webhook["matches"].as_array().unwrap().is_empty(), "{webhook}");
}

#[test]
fn on_lambda_the_worker_count_follows_the_functions_memory() {
    // `invoke` gives the function 512 MB: 0.29 of a vCPU, so one worker though it sees 2 vCPUs.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snapembed"));
    cmd.env("SNAPEMBED_SNAPSHOT", snapshot_path()).env_remove("SNAPEMBED_THREADS");
    let got = invoke(cmd, vec![function_url_event("GET", "/model-status", None, false)]);
    let (status, model) = payload(&got[0].1);
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["threads"]["count"], 1, "{model}");
    let source = model["threads"]["source"].as_str().unwrap();
    assert!(source.starts_with("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512"), "{source}");
}
