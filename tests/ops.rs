//! Operations tools seen from outside: `snapembed memory`, `snapembed check` against a real
//! server, oversized bodies over a real socket, and `X-Request-Id`.

use std::process::Command;

fn snapembed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snapembed"))
}

#[test]
fn memory_once_prints_the_memory_status_report() {
    let out = snapembed().args(["memory", "--once", "--memory-limit-mb", "100000"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("level:      normal"), "{text}");
    assert!(text.contains("of 100000.0 MB") && text.contains("budget from --memory-limit-mb"), "{text}");
    assert!(text.contains("standard 70%, aggressive 80%, emergency 90%"), "{text}");

    // A 1 MB budget: this process is over every threshold.
    let out = snapembed().args(["memory", "--json", "--memory-limit-mb", "1"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["level"], "emergency");
    assert_eq!(v["limit_bytes"], 1 << 20);
    assert!(v["process_rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert_eq!(v["last_cleanups"][0]["to"], "emergency");
}

#[test]
fn memory_watch_keeps_printing() {
    use std::io::{BufRead, BufReader};
    let mut child = snapembed()
        .args(["memory", "--watch", "--json", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let a: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((a["checks"].as_u64(), b["checks"].as_u64()), (Some(1), Some(2)), "a second report, a second check");
}

#[test]
fn thresholds_out_of_order_are_refused() {
    let out = snapembed().args(["memory", "--memory-standard", "0.9", "--memory-aggressive", "0.8"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must rise strictly"));
    let out = snapembed().args(["serve", "--port", "0"]).env("SNAPEMBED_MEMORY_EMERGENCY", "1.5").output().unwrap();
    assert!(!out.status.success(), "a server must not start with thresholds it cannot meet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("must rise strictly"));
}

// ---- snapembed check ------------------------------------------------------------------------

fn check(url: &str, extra: &[&str]) -> (bool, serde_json::Value, String) {
    let out = snapembed()
        .args(["check", url, "--json"])
        .args(extra)
        .env("SNAPEMBED_SNAPSHOT", crate::common::snapshot_path())
        .env_remove("SNAPEMBED_TALLY_SECRET")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), report, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no step {name}: {report}"))
}

#[test]
fn check_passes_against_a_real_server() {
    let server = crate::server::Server::start(&[]);
    let url = format!("http://{}", server.addr);
    let (ok, report, stderr) = check(&url, &["--cold"]);
    assert!(ok, "{report:#}\n{stderr}");
    assert_eq!(report["failed"], 0);
    for name in ["GET /health", "GET /model-status", "GET /memory-status", "POST /embed", "POST /v1/embeddings", "POST /similarity"] {
        let s = step(&report, name);
        assert_eq!(s["outcome"], "pass", "{s}");
        assert!(s["ms"].as_f64().unwrap() > 0.0, "{name} is timed");
    }
    assert!(step(&report, "POST /embed")["detail"].as_str().unwrap().starts_with("cosine 1.0"), "{report:#}");
    // The binary carries the sample corpus (default feature `embedded-corpus`), so search runs.
    let search = step(&report, "POST /search");
    assert_eq!(search["outcome"], "pass", "{search}");
    assert!(search["detail"].as_str().unwrap().contains("from 300 documents"), "{search}");
    assert!(report["cold"]["first_ms"].as_f64().unwrap() > 0.0);
    assert!(report["cold"]["note"].as_str().unwrap().contains("REPORT log line"));

    // The human form: one line per step and a summary.
    let out = snapembed().args(["check", &url]).env("SNAPEMBED_SNAPSHOT", crate::common::snapshot_path()).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("✓ POST /embed") && text.contains("OK: "), "{text}");
}

/// The committed snapshot with the embedding LayerNorm's gamma reversed and both checksums
/// redone: a valid snapshot of a different model.
fn wrong_model_snapshot(dir: &std::path::Path) -> std::path::PathBuf {
    use snapembed::engine::snapshot::{Snapshot, ALIGNMENT, PREAMBLE_LEN};
    let path = crate::common::snapshot_path();
    let mut bytes = std::fs::read(&path).unwrap();
    let mut header = Snapshot::open(&path).unwrap().header().clone();
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let data_start = (PREAMBLE_LEN + header_len).div_ceil(ALIGNMENT) * ALIGNMENT;
    let t = header.tensors.iter().find(|t| t.name == "embeddings.norm.gamma").unwrap();
    let span = data_start + t.offset as usize..data_start + (t.offset + t.nbytes) as usize;
    let mut gamma: Vec<[u8; 4]> = bytes[span.clone()].chunks(4).map(|c| c.try_into().unwrap()).collect();
    gamma.reverse();
    bytes[span].copy_from_slice(&gamma.concat());
    header.data_crc32 = crc32fast::hash(&bytes[data_start..]);
    let encoded = bincode::serde::encode_to_vec(&header, bincode::config::standard()).unwrap();
    assert_eq!(encoded.len(), header_len, "a CRC of the same encoded length");
    bytes[PREAMBLE_LEN..PREAMBLE_LEN + header_len].copy_from_slice(&encoded);
    bytes[16..20].copy_from_slice(&crc32fast::hash(&encoded).to_le_bytes());
    let out = dir.join("wrong.snap");
    std::fs::write(&out, bytes).unwrap();
    out
}

#[test]
fn check_fails_when_the_deployment_runs_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = wrong_model_snapshot(dir.path());
    let server = crate::server::Server::start(&[("SNAPEMBED_SNAPSHOT", wrong.to_str().unwrap())]);
    let (ok, report, stderr) = check(&format!("http://{}", server.addr), &[]);
    assert!(!ok, "a wrong model must fail the check: {report:#}");
    assert!(stderr.contains("checks failed"), "{stderr}");
    let embed = step(&report, "POST /embed");
    assert_eq!(embed["outcome"], "fail");
    assert!(embed["detail"].as_str().unwrap().contains("a different model or a broken build"), "{embed}");
    assert_eq!(step(&report, "GET /health")["outcome"], "pass", "the rest still runs");
}

#[test]
fn check_against_nothing_fails_fast_and_says_why() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = std::time::Instant::now();
    let (ok, report, _) = check(&format!("http://127.0.0.1:{port}"), &["--timeout", "2s"]);
    assert!(!ok);
    let health = step(&report, "GET /health");
    assert_eq!(health["outcome"], "fail");
    assert!(health["detail"].as_str().unwrap().to_lowercase().contains("connect"), "{health}");

    // A server that accepts and never answers: every request ends at the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let (ok, report, _) = check(&format!("http://{addr}"), &["--timeout", "300ms"]);
    assert!(!ok);
    assert!(step(&report, "GET /health")["detail"].as_str().unwrap().contains("timed out"), "{report:#}");
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "no hang: {:?}", t.elapsed());
    drop(silent);
}

// ---- oversized bodies over a real socket ------------------------------------------------------

/// Writes `head` and `body` on one connection and reads the whole answer.
fn raw_exchange(addr: &str, head: &str, body: &[u8]) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

fn big_body() -> Vec<u8> {
    let mut b = br#"{"inputs":[""#.to_vec();
    b.extend(std::iter::repeat_n(b'a', 10_000_000));
    b.extend_from_slice(br#""]}"#);
    b
}

#[test]
fn ten_megabytes_get_the_413_json_not_a_broken_pipe() {
    let server = crate::server::Server::start(&[]);
    let body = big_body();
    let head = format!("POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    for _ in 0..3 {
        let answer = raw_exchange(&server.addr, &head, &body).expect("the whole body is accepted, then the answer read");
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains(r#""error_type":"payload_too_large""#) && answer.contains("10000015 bytes"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    }
    let (status, _) = crate::common::http_request(&server.addr, "GET", "/health", None);
    assert_eq!(status, 200, "still serving");
}

#[test]
fn expect_100_continue_is_refused_before_the_body_is_sent() {
    use std::io::{Read, Write};
    let server = crate::server::Server::start(&[]);
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let head = "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000015\r\nExpect: 100-continue\r\n\r\n";
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("an answer without the body, not a wait");
    let answer = String::from_utf8_lossy(&raw);
    assert!(answer.starts_with("HTTP/1.1 413"), "no 100 Continue for a body that is refused: {answer}");

    // A body within the limit still gets its 100 Continue and is served.
    let body = r#"{"inputs":["hello"]}"#;
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let head = format!("POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    let mut first = [0u8; 25];
    s.read_exact(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("HTTP/1.1 100 Continue"));
    s.write_all(body.as_bytes()).unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("HTTP/1.1 200"), "{rest}");
}

#[test]
fn python_http_client_reads_the_413() {
    let script = r#"
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
body = b'{"inputs":["' + b'a' * 10_000_000 + b'"]}'
c.request("POST", "/embed", body=body, headers={"Content-Type": "application/json"})
r = c.getresponse()
print(r.status, r.read().decode())
"#;
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(std::env::var_os("SNAPEMBED_REQUIRE_PYTHON").is_none(), "python3 is required");
        eprintln!("skipped: no python3");
        return;
    }
    let server = crate::server::Server::start(&[]);
    let port = server.addr.rsplit(':').next().unwrap();
    let out = Command::new("python3").args(["-c", script, port]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("413 ") && stdout.contains("payload_too_large"), "{stdout}");
}

// ---- X-Request-Id ------------------------------------------------------------------------------

#[test]
fn request_ids_are_returned_and_on_the_requests_log_lines() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = snapembed()
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .env("SNAPEMBED_SNAPSHOT", crate::common::snapshot_path())
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(at) = line.find("listening addr=") {
            break line[at + "listening addr=".len()..].trim().to_owned();
        }
    };
    let exchange = |extra: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET /health HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw.to_ascii_lowercase()
    };
    let given = exchange("X-Request-Id: ops-test-42\r\n");
    assert!(given.contains("x-request-id: ops-test-42\r\n"), "{given}");
    let generated = exchange("");
    let id = generated.split("x-request-id: ").nth(1).unwrap().split("\r\n").next().unwrap().to_owned();
    assert_eq!(id.len(), 24, "{generated}");
    let replaced = exchange(&format!("X-Request-Id: {}\r\n", "x".repeat(300)));
    assert!(!replaced.contains(&"x".repeat(300)), "an oversized id is not echoed");
    // tower_http's request and response lines sit inside the request's span. The log is read
    // on a thread so that a missing line fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut tagged = 0;
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
        tagged += line.contains(r#"request_id="ops-test-42""#) as usize;
        if line.contains(&format!(r#"request_id="{id}""#)) && line.contains("finished processing request") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(tagged >= 2, "the given id is on the request's log lines (started and finished)");
}
