//! `snapembed check URL`: the smoke check after `sam deploy` or a Render deploy. Calls each
//! endpoint with a timeout, times it, and checks the answer: `/embed` against the vector this
//! binary computes from its own snapshot (a wrong model or a broken build fails), the OpenAI
//! and similarity endpoints, `/search` when the deployment reports a corpus, `/score` when the
//! route exists, and `/webhook/tally` (signed with `--tally-secret`, and an unsigned delivery
//! then refused). One ✓/✗ line per step and a summary, or `--json`; exits non-zero on any
//! failure. `--cold` times the first request separately and shows what the platform exposes.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use base64::Engine as _;
use clap::Args;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde_json::{json, Value};
use snapembed::engine::kernels::Isa;
use snapembed::Embedder;

use super::SnapshotArgs;

/// The text embedded on both sides.
const SAMPLE: &str = "How do I send a reminder for an overdue invoice?";
const SOURCE: &str = "How do I remind a customer about an unpaid invoice?";
const OTHER: &str = "The bakery opens at seven every morning.";

#[derive(Args)]
pub struct CheckArgs {
    /// Base URL of the deployment (a Function URL, API Gateway stage URL or Render URL).
    pub url: String,
    /// One JSON report instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Limit for each request (connect included), e.g. 10s, 500ms.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Tally's signing secret, if the deployment requires signed deliveries.
    #[arg(long, env = "SNAPEMBED_TALLY_SECRET", hide_env_values = true)]
    pub tally_secret: Option<String>,
    /// Time the first request on its own (run it after the instance has idled, or right after
    /// publishing a new Lambda version), with what the platform exposes about its start.
    #[arg(long)]
    pub cold: bool,
    /// Least cosine between the deployment's /embed vector and this binary's.
    #[arg(long, default_value_t = 0.9999)]
    pub min_cosine: f64,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Serialize)]
struct Step {
    step: String,
    outcome: Outcome,
    ms: f64,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Report {
    url: String,
    ok: bool,
    passed: usize,
    failed: usize,
    skipped: usize,
    total_ms: f64,
    steps: Vec<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cold: Option<Value>,
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
    text: String,
    ms: f64,
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<String>, headers: &[(&str, String)]) -> Result<Reply, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let t = Instant::now();
        let resp = req.send().await.map_err(describe)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(describe)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply { status, headers, body, text, ms })
    }

    async fn get(&self, path: &str) -> Result<Reply, String> {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Reply, String> {
        self.send(reqwest::Method::POST, path, Some(body.to_string()), &[]).await
    }
}

/// The cause chain of a request error, which says "connection refused" or "timed out".
fn describe(e: reqwest::Error) -> String {
    let mut msg = if e.is_timeout() { "timed out".to_owned() } else { e.to_string() };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// A step's verdict from its reply: `Ok(detail)` passes, `Err(detail)` fails.
type Verdict = Result<String, String>;

struct Run {
    steps: Vec<Step>,
}

impl Run {
    fn record(&mut self, step: &str, ms: f64, verdict: Verdict) {
        let (outcome, detail) = match verdict {
            Ok(d) => (Outcome::Pass, d),
            Err(d) => (Outcome::Fail, d),
        };
        self.steps.push(Step { step: step.to_owned(), outcome, ms, detail });
    }

    fn skip(&mut self, step: &str, why: &str) {
        self.steps.push(Step { step: step.to_owned(), outcome: Outcome::Skip, ms: 0.0, detail: why.to_owned() });
    }

    /// Records a request's outcome: transport errors fail the step, else `judge` decides.
    fn judge(&mut self, step: &str, reply: Result<Reply, String>, judge: impl FnOnce(&Reply) -> Verdict) -> Option<Reply> {
        match reply {
            Err(e) => {
                self.record(step, 0.0, Err(e));
                None
            }
            Ok(r) => {
                let v = judge(&r);
                self.record(step, r.ms, v);
                Some(r)
            }
        }
    }
}

fn expect_status(r: &Reply, want: u16) -> Result<(), String> {
    if r.status == want {
        Ok(())
    } else {
        let mut body = r.text.clone();
        body.truncate(300);
        Err(format!("HTTP {} (expected {want}): {body}", r.status))
    }
}

fn vector(v: &Value) -> Option<Vec<f32>> {
    v.as_array()?.iter().map(|x| x.as_f64().map(|f| f as f32)).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b)).max(f64::MIN_POSITIVE)
}

/// The kernels the deployment runs if this CPU has them; else ones doing the same arithmetic
/// (int8 or f32 activations), so the comparison measures the model, not the CPU.
fn matching_kernels(model_status: &Value) -> Option<Isa> {
    if let Some(isa) = model_status["kernels"].as_str().and_then(Isa::by_name) {
        return Some(isa);
    }
    let int8 = model_status["activations"].as_str().map(|a| a.starts_with("int8"))?;
    let mut same = Isa::available().into_iter().filter(|i| i.quantizes_activations() == int8);
    same.next_back()
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(check(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if report.ok {
        Ok(())
    } else {
        anyhow::bail!("{} of {} checks failed against {}", report.failed, report.steps.len(), report.url)
    }
}

async fn check(args: &CheckArgs) -> anyhow::Result<Report> {
    let url = args.url.trim_end_matches('/').to_owned();
    anyhow::ensure!(url.starts_with("http://") || url.starts_with("https://"), "the URL must start with http:// or https://: {url}");
    let http = reqwest::Client::builder()
        .timeout(args.timeout)
        .connect_timeout(args.timeout)
        .user_agent(concat!("snapembed-check/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let client = Client { http, base: url.clone() };
    let mut run = Run { steps: Vec::new() };
    let started = Instant::now();

    let cold = if args.cold { Some(cold_start(&client, &mut run).await) } else { None };

    run.judge("GET /health", client.get("/health").await, |r| {
        expect_status(r, 200)?;
        match r.body["status"].as_str() {
            Some("healthy") => Ok("healthy".into()),
            Some("degraded") => Ok(format!("degraded (memory level {})", r.body["memory_level"].as_str().unwrap_or("?"))),
            other => Err(format!("status {other:?}")),
        }
    });
    let model_status = run
        .judge("GET /model-status", client.get("/model-status").await, |r| {
            expect_status(r, 200)?;
            if r.body["loaded"] != true {
                return Err(format!("model not loaded: {}", r.body["error"]));
            }
            Ok(format!(
                "{}, {} dims, kernels {}",
                r.body["snapshot"]["name"].as_str().unwrap_or("?"),
                r.body["dimensions"],
                r.body["kernels"].as_str().unwrap_or("?")
            ))
        })
        .map(|r| r.body)
        .unwrap_or(Value::Null);
    run.judge("GET /memory-status", client.get("/memory-status").await, |r| {
        expect_status(r, 200)?;
        let level = r.body["level"].as_str().ok_or("no memory level in the report")?;
        let mb = |k: &str| r.body[k].as_f64().unwrap_or(0.0) / 1048576.0;
        Ok(format!("{level}, RSS {:.0} MB of {:.0} MB", mb("process_rss_bytes"), mb("limit_bytes")))
    });

    // The reference vector, from this binary's snapshot on matching kernels.
    let t = Instant::now();
    let local = local_vector(&args.snapshot, &model_status);
    let local_ms = t.elapsed().as_secs_f64() * 1e3;
    let served = run.judge("POST /embed", client.post("/embed", &json!({"inputs": [SAMPLE]})).await, |r| {
        expect_status(r, 200)?;
        let got = vector(&r.body[0]).ok_or("the answer is not [[numbers]]")?;
        let want = local.as_ref().map_err(|e| format!("no local vector to compare with: {e}"))?;
        if got.len() != want.len() {
            return Err(format!("{} dimensions, this snapshot gives {}", got.len(), want.len()));
        }
        let c = cosine(&got, want);
        if c >= args.min_cosine {
            Ok(format!("cosine {c:.6} to the local vector ({local_ms:.0} ms locally)"))
        } else {
            Err(format!("cosine {c:.6} to the local vector, below {}: a different model or a broken build", args.min_cosine))
        }
    });
    let served = served.and_then(|r| vector(&r.body[0]));

    run.judge("POST /v1/embeddings", client.post("/v1/embeddings", &json!({"input": [SAMPLE], "model": "all-MiniLM-L6-v2"})).await, |r| {
        expect_status(r, 200)?;
        let got = vector(&r.body["data"][0]["embedding"]).ok_or("no data[0].embedding")?;
        let tokens = r.body["usage"]["total_tokens"].as_u64().unwrap_or(0);
        match &served {
            Some(e) if cosine(&got, e) < 0.999_999 => Err("differs from /embed's vector for the same text".into()),
            _ => Ok(format!("{} dims, {tokens} tokens", got.len())),
        }
    });
    let sim = json!({"inputs": {"source_sentence": SOURCE, "sentences": [SAMPLE, OTHER]}});
    run.judge("POST /similarity", client.post("/similarity", &sim).await, |r| {
        expect_status(r, 200)?;
        let s = vector(&r.body).filter(|s| s.len() == 2).ok_or("not two scores")?;
        if s[0] > s[1] {
            Ok(format!("related {:.3} > unrelated {:.3}", s[0], s[1]))
        } else {
            Err(format!("the related sentence scored {:.3}, the unrelated {:.3}", s[0], s[1]))
        }
    });

    let corpus = &model_status["corpus"];
    if corpus.is_object() {
        run.judge("POST /search", client.post("/search", &json!({"query": SAMPLE, "top_k": 3})).await, |r| {
            expect_status(r, 200)?;
            let hits = r.body["results"].as_array().ok_or("no results array")?;
            let top = hits.first().ok_or("no results from a loaded corpus")?;
            Ok(format!("{} hits from {} documents, top {} ({:.3})", hits.len(), corpus["documents"], top["id"], top["score"].as_f64().unwrap_or(0.0)))
        });
    } else {
        run.skip("POST /search", "the deployment reports no corpus");
    }

    let score = json!({"resume": "Five years of Rust and PostgreSQL; built payment services.", "job_description": "Backend engineer: Rust, PostgreSQL, payments."});
    match client.post("/score", &score).await {
        Ok(r) if r.status == 404 => run.skip("POST /score", "no /score route on this deployment"),
        reply => {
            run.judge("POST /score", reply, |r| {
                expect_status(r, 200)?;
                Ok(format!("score {}", r.body["score"]))
            });
        }
    }

    tally(&client, &mut run, args.tally_secret.as_deref()).await;

    let count = |o| run.steps.iter().filter(|s| s.outcome == o).count();
    let (passed, failed, skipped) = (count(Outcome::Pass), count(Outcome::Fail), count(Outcome::Skip));
    Ok(Report {
        url,
        ok: failed == 0,
        passed,
        failed,
        skipped,
        total_ms: started.elapsed().as_secs_f64() * 1e3,
        steps: run.steps,
        cold,
    })
}

fn local_vector(snapshot: &SnapshotArgs, model_status: &Value) -> Result<Vec<f32>, String> {
    let mut embedder: Embedder = snapshot.open().map_err(|e| e.to_string())?;
    if let Some(isa) = matching_kernels(model_status) {
        embedder = embedder.with_isa(isa);
    }
    let mut v = embedder.embed(&[SAMPLE]).map_err(|e| e.to_string())?;
    v.pop().ok_or_else(|| "no vector".to_owned())
}

/// The first request on its own, then a second for comparison, with the platform's headers.
async fn cold_start(client: &Client, run: &mut Run) -> Value {
    let first = client.get("/health").await;
    let second = client.get("/health").await;
    let Some(first) = run.judge("cold: first GET /health", first, |r| {
        expect_status(r, 200)?;
        Ok("first request after idle".into())
    }) else {
        return Value::Null;
    };
    let warm_ms = second.as_ref().map(|r| r.ms).ok();
    // Lambda puts `X-Amzn-RequestId`/`X-Amzn-Trace-Id` on responses; its Init Duration goes to
    // the REPORT log line, not to the client, unless something in between exposes it.
    let exposed: serde_json::Map<String, Value> = first
        .headers
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k.starts_with("x-amzn") || k.starts_with("x-amz-") || k.contains("init") || k == "server-timing" || k == "rndr-id"
        })
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or("?"))))
        .collect();
    let init = exposed.iter().find(|(k, _)| k.contains("init")).map(|(_, v)| v.clone());
    json!({
        "first_ms": first.ms,
        "second_ms": warm_ms,
        "platform_headers": exposed,
        "init_duration": init,
        "note": if init.is_none() { "the response exposes no Init Duration: Lambda reports it in the function's REPORT log line (CloudWatch)" } else { "" },
    })
}

/// A minimal Tally FORM_RESPONSE with a fresh event id, so a replay guard does not answer it
/// from memory.
fn tally_sample() -> String {
    let now = SystemTime::now();
    let nanos = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let at = humantime::format_rfc3339_millis(now).to_string();
    json!({
        "eventId": format!("snapembed-check-{nanos}"),
        "eventType": "FORM_RESPONSE",
        "createdAt": at,
        "data": {
            "responseId": "snapembed-check",
            "submissionId": "snapembed-check",
            "respondentId": "snapembed-check",
            "formId": "snapembed-check",
            "formName": "snapembed check",
            "createdAt": at,
            "fields": [{"key": "question_check", "label": "Describe what happened", "type": "TEXTAREA", "value": SAMPLE}]
        }
    })
    .to_string()
}

/// `Tally-Signature`: base64(HMAC-SHA256(secret, raw body)).
fn tally_signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn tally(client: &Client, run: &mut Run, secret: Option<&str>) {
    let body = tally_sample();
    let headers: Vec<(&str, String)> = match secret {
        Some(s) => vec![("tally-signature", tally_signature(s.as_bytes(), body.as_bytes()))],
        None => Vec::new(),
    };
    let reply = client.send(reqwest::Method::POST, "/webhook/tally", Some(body), &headers).await;
    if matches!(&reply, Ok(r) if r.status == 404) {
        run.skip("POST /webhook/tally", "no /webhook/tally route on this deployment");
        return;
    }
    let step = if secret.is_some() { "POST /webhook/tally (signed)" } else { "POST /webhook/tally" };
    run.judge(step, reply, |r| {
        if r.status == 401 && secret.is_none() {
            return Err("HTTP 401: the deployment requires signed deliveries (pass --tally-secret)".into());
        }
        expect_status(r, 200)?;
        Ok(format!("accepted{}", r.body["event_id"].as_str().map(|id| format!(" ({id})")).unwrap_or_default()))
    });
    if secret.is_some() {
        let reply = client.send(reqwest::Method::POST, "/webhook/tally", Some(tally_sample()), &[]).await;
        run.judge("POST /webhook/tally (unsigned, refused)", reply, |r| {
            expect_status(r, 401).map_err(|e| format!("an unsigned delivery was not refused: {e}"))?;
            Ok("401 as expected".into())
        });
    }
}

fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "snapembed check {}", r.url);
    if let Some(c) = &r.cold {
        let _ = writeln!(
            out,
            "  cold start: first request {:.1} ms, second {} ms; platform headers: {}; {}",
            c["first_ms"].as_f64().unwrap_or(0.0),
            c["second_ms"].as_f64().map_or("?".into(), |m| format!("{m:.1}")),
            c["platform_headers"],
            c["init_duration"].as_str().map_or(c["note"].as_str().unwrap_or("").to_owned(), |d| format!("Init Duration {d}"))
        );
    }
    for s in &r.steps {
        let mark = match s.outcome {
            Outcome::Pass => "✓",
            Outcome::Fail => "✗",
            Outcome::Skip => "-",
        };
        let _ = writeln!(out, "{mark} {:<40} {:>8.1} ms  {}", s.step, s.ms, s.detail);
    }
    let _ = writeln!(
        out,
        "{}: {} passed, {} failed, {} skipped in {:.0} ms",
        if r.ok { "OK" } else { "FAILED" },
        r.passed,
        r.failed,
        r.skipped,
        r.total_ms
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_base64_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe".
        let sig = tally_signature(b"Jefe", b"what do ya want for nothing?");
        let raw = base64::engine::general_purpose::STANDARD.decode(sig).unwrap();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn kernels_follow_the_deployment() {
        let portable = json!({"kernels": "portable"});
        assert_eq!(matching_kernels(&portable), Some(Isa::Portable));
        let unknown_f32 = json!({"kernels": "neon", "activations": "f32"});
        assert!(!matching_kernels(&unknown_f32).unwrap().quantizes_activations());
        assert_eq!(matching_kernels(&json!({})), None, "nothing said: this CPU's default");
    }
}
