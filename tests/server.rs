//! The built binary as a real server on an ephemeral port: HTTP over sockets, 50 concurrent
//! clients, graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::{cosine, embedder, http_request, snapshot_path};

pub struct Server {
    child: Child,
    pub addr: String,
    /// What the server logged before it listened (start-up warnings).
    pub log_before_ready: Vec<String>,
}

impl Server {
    pub fn start(extra_env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_snapembed"));
        cmd.args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .env("SNAPEMBED_SNAPSHOT", snapshot_path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut log_before_ready = Vec::new();
        let addr = loop {
            let line = lines.next().expect("the server logs before exiting").unwrap();
            if let Some(at) = line.find("listening addr=") {
                break line[at + "listening addr=".len()..].trim().to_owned();
            }
            log_before_ready.push(line);
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr, log_before_ready }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serves_http_on_a_real_port_and_stops_gracefully() {
    let server = Server::start(&[]);
    let (status, body) = http_request(&server.addr, "GET", "/health", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"healthy\""));
    let (status, body) = http_request(&server.addr, "POST", "/embed", Some(r#"{"inputs": ["hello world"]}"#));
    assert_eq!(status, 200);
    let v: Vec<Vec<f32>> = serde_json::from_str(&body).unwrap();
    assert!(cosine(&v[0], &embedder().embed(&["hello world"]).unwrap()[0]) > 0.999_999);
    let (status, body) = http_request(&server.addr, "POST", "/embed", Some("{not json"));
    assert_eq!(status, 400);
    assert!(body.contains("\"error_type\""));
    let (status, _) = http_request(&server.addr, "GET", "/health", None);
    assert_eq!(status, 200, "still serving after bad input");
    assert!(server.terminate().success(), "SIGTERM is a clean exit");
}

#[test]
fn fifty_concurrent_clients_all_get_their_own_vectors() {
    let server = Server::start(&[]);
    let texts: Vec<String> = (0..50).map(|i| format!("client number {i} asks about topic {}", i * 7 % 13)).collect();
    let handles: Vec<_> = texts
        .iter()
        .cloned()
        .map(|t| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                let body = serde_json::json!({"inputs": [t]}).to_string();
                http_request(&addr, "POST", "/embed", Some(&body))
            })
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let want = embedder().embed(&refs).unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        let (status, body) = h.join().unwrap();
        assert_eq!(status, 200, "client {i}: {body}");
        let got: Vec<Vec<f32>> = serde_json::from_str(&body).unwrap();
        assert!(cosine(&got[0], &want[i]) > 0.999_999, "client {i} got someone else's vector");
    }
    let (_, metrics) = http_request(&server.addr, "GET", "/metrics", None);
    assert!(metrics.contains("snapembed_http_requests_total{route=\"/embed\",method=\"POST\",status=\"200\"} 50"), "{metrics}");
}

#[test]
fn a_bad_configuration_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_snapembed")).args(["serve", "--threads", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads must be at least 1"));
}

#[test]
fn unknown_kernels_are_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_snapembed")).args(["serve"]).env("SNAPEMBED_KERNELS", "neon").output().unwrap();
    assert!(!out.status.success(), "a server must not start on kernels it cannot run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kernels \"neon\" are not available") && err.contains("exact"), "{err}");
}

/// What `serve` sets up for a long-running server, seen through `/memory-status`: glibc's mmap
/// threshold and arena count, and forward passes small enough that their buffers stay under the
/// pooled limit and are kept (the library keeps every one, whatever its size). Also what the
/// stores hold: the embedding cache's entries and the Tally record's events.
#[test]
fn serve_keeps_only_small_buffers_sets_the_allocator_and_reports_what_its_stores_hold() {
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/artifacts/corpus.idx");
    let server = Server::start(&[("SNAPEMBED_THREADS", "1"), ("SNAPEMBED_CORPUS", corpus)]);
    let held = |what: &str| {
        let (s, body) = http_request(&server.addr, "GET", "/memory-status", None);
        assert_eq!(s, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["allocator"]["mmap_threshold_bytes"], 1 << 20, "{what}: {v}");
        assert_eq!(v["allocator"]["arena_max"], snapembed::engine::embedder::available_cpus(), "an arena per CPU: {v}");
        v["held"].clone()
    };

    let (s, _) = http_request(&server.addr, "POST", "/embed", Some(r#"{"inputs": "a short sentence"}"#));
    assert_eq!(s, 200);
    let h = held("after a short text");
    let limit = snapembed::engine::embedder::MAX_POOLED_SCRATCH_BYTES as u64;
    assert_eq!(h["pooled_scratch_limit_bytes"], limit, "{h}");
    let kept = h["pooled_scratch_bytes"].as_u64().unwrap();
    assert!(kept > 0 && kept <= limit, "a short text's buffers are kept: {h}");
    assert_eq!((h["embed_cache_entries"].as_u64(), h["embed_cache_capacity"].as_u64()), (Some(1), Some(2000)), "{h}");

    // Eight texts of 256 word pieces: a server runs them as 512-token passes, whose buffers are
    // kept for the next request instead of ~16 MB mapped and freed per 1,024-token pass.
    let long = "the invoice for the annual plan was charged twice this month ".repeat(30);
    let body = serde_json::json!({ "inputs": vec![long; 8] }).to_string();
    let (s, _) = http_request(&server.addr, "POST", "/embed", Some(&body));
    assert_eq!(s, 200);
    let h = held("after a long request");
    let kept = h["pooled_scratch_bytes"].as_u64().unwrap();
    assert!(kept > 512 * 1536 * 4 && kept <= limit, "a 512-token pass's buffers are kept, within the limit: {h}");

    let delivery = std::fs::read_to_string(crate::common::data_path("tally/support_request.json")).unwrap();
    let (s, response) = http_request(&server.addr, "POST", "/webhook/tally", Some(&delivery));
    assert_eq!(s, 200, "{response}");
    let h = held("after a delivery");
    assert_eq!(h["tally_events"], 1, "{h}");
    assert_eq!(h["tally_capacity"], 4096, "{h}");
}
