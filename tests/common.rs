//! Shared fixtures: the committed snapshot, one `Embedder` for all tests, the golden files.

use std::path::PathBuf;
use std::sync::OnceLock;

use snapembed::Embedder;

pub fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts/all-MiniLM-L6-v2.snap")
}

pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn embedder() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| Embedder::from_snapshot(&snapshot_path()).expect("the committed snapshot loads"))
}

pub struct Golden {
    pub text: String,
    pub embedding: Vec<f32>,
}

/// Reads `items[].text` / `items[].embedding` from a golden JSON file.
pub fn goldens(name: &str) -> Vec<Golden> {
    let raw = std::fs::read_to_string(data_path(name)).expect("golden file");
    let v: serde_json::Value = serde_json::from_str(&raw).expect("golden JSON");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|it| Golden {
            text: it["text"].as_str().expect("text").to_owned(),
            embedding: it["embedding"].as_array().expect("embedding").iter().map(|x| x.as_f64().expect("f") as f32).collect(),
        })
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// A minimal HTTP/1.1 client over a real socket (one request per connection).
pub fn http_request(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    http_request_with_headers(addr, method, path, &[], body)
}

/// [`http_request`] with extra request headers.
pub fn http_request_with_headers(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or("");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { dechunk(rest) } else { rest.to_owned() })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}
