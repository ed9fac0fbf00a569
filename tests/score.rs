//! The resume scorer as users see it: `/score` and `/rank` over the router (no socket), one
//! round trip over a real port, and the `score`/`rank` subcommands on real files.

use std::process::Command;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use snapembed::service::config::{Limits, ScoreConfig};
use snapembed::service::memory::MemoryGuard;
use snapembed::service::{app, AppState};
use snapembed::Embedder;

use crate::common::{data_path, snapshot_path};
use crate::http::send;

const JOB: &str = "# Senior Backend Engineer\n\n## What you'll do\n\n- Build and run payment services.\n\n\
## Requirements\n\n- 5+ years of professional backend development in Go.\n- Strong PostgreSQL: schema design and query tuning.\n\
- Running services on Kubernetes in production.\n- Designing REST or gRPC APIs used by other teams.\n\n\
## Nice to have\n\n- Kafka or NATS for event-driven systems.\n- Terraform or another infrastructure-as-code tool.\n\n\
## What we offer\n\n- 30 days of holiday.\n";

const STRONG: &str = "Jane Doe\njane.doe@example.com | +1 415 555 0100\n\nEXPERIENCE\nSenior Engineer, Paystream — 2017–2025\n\
- Built payment services in golang with gRPC APIs used by six teams.\n- Tuned PG schemas and slow queries with EXPLAIN ANALYZE.\n\
- Ran all services on k8s (EKS) with Helm; zero-downtime rollouts.\n- Event pipeline on Kafka.\n\nEDUCATION\nB.Sc. Computer Science, 2016\n";

const MEDIUM: &str = "Sam Lee\nsam@example.com\n\nEXPERIENCE\nBackend Developer, Shopco — 2021–2025\n\
- Wrote Python services with Django and MySQL.\n- Deployed to Heroku.\n\nSKILLS\nPython, Django, MySQL, Docker\n";

const UNRELATED: &str = "Chris Park\nchris@example.com\n\nEXPERIENCE\nHead Chef, Bistro Nord — 2015–2025\n\
- Ran a kitchen of twelve cooks and designed a seasonal menu.\n- Cut food waste by 30% with better stock rotation.\n";

fn router_with(limits: Limits, scoring: ScoreConfig) -> Router {
    let model = Embedder::from_snapshot(&snapshot_path()).map_err(|e| e.to_string());
    app(AppState::new(model, limits, 2, MemoryGuard::new(None)).with_scoring(scoring))
}

fn router() -> Router {
    router_with(Limits::default(), ScoreConfig::default())
}

async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    post_raw(app, path, "application/json", body.to_string().into_bytes()).await
}

async fn post_raw(app: &Router, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let req = Request::post(path).header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap();
    let (status, _, body) = send(app, req).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, error_type: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error_type"], error_type, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

fn requirement<'a>(report: &'a Value, contains: &str) -> &'a Value {
    report["requirements"].as_array().unwrap().iter().find(|r| r["text"].as_str().unwrap().contains(contains)).unwrap_or_else(|| panic!("no requirement with {contains:?} in {report}"))
}

#[tokio::test]
async fn score_reports_requirements_skills_formula_and_explanation() {
    let (s, r) = post(&router(), "/score", json!({"resume": STRONG, "job_description": JOB})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let score = r["score"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&score));
    let reqs = r["requirements"].as_array().unwrap();
    assert_eq!(reqs.len(), 6, "the four requirements and two nice-to-haves, not duties or benefits: {r}");
    assert_eq!(requirement(&r, "PostgreSQL")["kind"], "must");
    assert_eq!(requirement(&r, "Kafka or NATS")["kind"], "nice");
    // Alias-only evidence: the resume says k8s, PG and golang.
    for (req, evidence) in [("Kubernetes", "k8s"), ("PostgreSQL", "PG"), ("Kafka", "Kafka")] {
        let q = requirement(&r, req);
        assert_eq!(q["met"], true, "{q}");
        assert!(q["best_match"].as_str().unwrap().contains(evidence), "{q}");
        let [a, b] = [q["span"][0].as_u64().unwrap() as usize, q["span"][1].as_u64().unwrap() as usize];
        let excerpt: String = STRONG.chars().skip(a).take(b - a).collect();
        assert!(excerpt.contains(evidence), "span {a}..{b} is {excerpt:?}");
    }
    let matched: Vec<&str> = r["skills"]["matched"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for k in ["Kubernetes", "PostgreSQL", "Go", "Kafka"] {
        assert!(matched.iter().any(|m| m.contains(k)), "{k} not in {matched:?}");
    }
    assert!(r["skills"]["missing"].as_array().unwrap().iter().any(|v| v == "Terraform"), "{r}");
    assert!(r["explanation"].as_str().unwrap().contains("must-have"), "{r}");
    assert_eq!(r["formula"]["weights"]["requirements"], json!(0.6));
    assert!(r["formula"]["parts"]["requirements"].as_f64().is_some());
    let sim = r["semantic_similarity"].as_f64().unwrap();
    assert!(sim > 0.0 && sim <= 1.0);
}

#[tokio::test]
async fn weights_per_request_change_the_score_and_are_echoed() {
    let app = router();
    let (_, a) = post(&app, "/score", json!({"resume": MEDIUM, "job_description": JOB})).await;
    let (s, b) = post(&app, "/score", json!({"resume": MEDIUM, "job_description": JOB, "weights": {"requirements": 0, "skills": 1, "similarity": 0}})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["formula"]["weights"]["skills"], json!(1.0));
    let skills_only = b["formula"]["parts"]["skills"].as_f64().unwrap();
    assert!((b["score"].as_f64().unwrap() - 100.0 * skills_only).abs() < 0.11, "{b}");
    assert_ne!(a["score"], b["score"]);
    let (s, e) = post(&app, "/score", json!({"resume": MEDIUM, "job_description": JOB, "weights": {"skils": 1}})).await;
    assert_error(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let (s, e) = post(&app, "/score", json!({"resume": MEDIUM, "job_description": JOB, "weights": {"requirements": -1}})).await;
    assert_error(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation");
}

#[tokio::test]
async fn skill_variants_and_word_boundaries() {
    let app = router();
    let jd = "Requirements:\n- Kubernetes and PostgreSQL in production.\n- JavaScript and TypeScript on the frontend.\n- Google Cloud (GCP) experience.\n- Go for backend services.\n- C and C++ for embedded work.\n";
    let resume = "Engineer\n- Ran k8s clusters and Postgres databases for five years.\n- Wrote JS and TS apps, deployed on Google Cloud Platform.\n- I am going to learn new things; wrote C# tools.\n";
    let (s, r) = post(&app, "/score", json!({"resume": resume, "job_description": jd})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let names = |k: &str| -> Vec<String> { r["skills"][k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect() };
    let (matched, missing) = (names("matched"), names("missing"));
    for k in ["Kubernetes", "PostgreSQL", "JavaScript", "TypeScript", "Google Cloud"] {
        assert!(matched.iter().any(|m| m == k), "{k} not matched: {matched:?}");
    }
    for k in ["Go", "C", "C++"] {
        assert!(missing.iter().any(|m| m == k), "{k} should be missing ('going' is not Go, C# is not C or C++): {r}");
    }
    assert!(names("extra").iter().any(|m| m == "C#"), "{r}");
}

#[tokio::test]
async fn a_40000_character_resume_is_covered_to_its_end() {
    let filler = "Maintained internal reporting spreadsheets and attended weekly planning meetings with the team. ";
    let mut resume = String::from("Alex Morgan\n\nEXPERIENCE\n");
    while resume.len() < 39_600 {
        resume.push_str("- ");
        resume.push_str(filler);
        resume.push('\n');
    }
    let tail = "- Built and operated Elixir services on the BEAM with Phoenix LiveView for real-time dashboards.\n";
    resume.push_str(tail);
    assert!((39_000..=50_000).contains(&resume.chars().count()));
    let jd = "Requirements:\n- Experience building Elixir services with Phoenix.\n";
    let (s, r) = post(&router(), "/score", json!({"resume": resume, "job_description": jd})).await;
    assert_eq!(s, StatusCode::OK, "{}", r["error"]);
    let q = &r["requirements"][0];
    assert_eq!(q["met"], true, "{q}");
    assert!(q["best_match"].as_str().unwrap().contains("Elixir"), "{q}");
    let start = q["span"][0].as_u64().unwrap() as usize;
    assert!(start > 39_000, "the match is the last bullet, at {start}");
}

/// Text without sentence ends or line breaks (a PDF's columns run together) is one unit far
/// over the model's 256 pieces: it is cut into the engine's overlapping windows, not truncated.
#[tokio::test]
async fn a_long_unpunctuated_run_is_windowed_not_truncated() {
    let mut resume = "worked on internal reporting and weekly planning with the operations team ".repeat(60);
    resume.push_str("and later built Elixir services with Phoenix LiveView for real time dashboards");
    let jd = "Requirements:\n- Experience building Elixir services with Phoenix.\n";
    let (s, r) = post(&router(), "/score", json!({"resume": resume, "job_description": jd})).await;
    assert_eq!(s, StatusCode::OK, "{}", r["error"]);
    let q = &r["requirements"][0];
    assert!(q["best_match"].as_str().unwrap().contains("Elixir"), "{q}");
    let [a, b] = [q["span"][0].as_u64().unwrap() as usize, q["span"][1].as_u64().unwrap() as usize];
    assert!(b - a < resume.len() / 2, "a window, not the whole run: {a}..{b}");
    assert_eq!(b, resume.chars().count(), "the last window reaches the end");
}

/// Swapping who the person is (name, e-mail, phone, links, photo alt text, graduation year)
/// leaves every number in the report unchanged.
#[tokio::test]
async fn identity_does_not_move_the_score() {
    let app = router();
    let dir = data_path("scorer_eval/resumes/backend-go");
    let base = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|t| t.contains("Amara Okafor"))
        .expect("Amara Okafor's resume in the eval set");
    let jd = std::fs::read_to_string(data_path("scorer_eval/jobs/backend-go.md")).unwrap();
    let with_photo = |r: &str, alt: &str| format!("![{alt}](photo.jpg)\n{r}");
    let swapped = base
        .replace("Amara Okafor", "Johann Schmidt")
        .replace("amara.okafor@protonmail.com", "j.schmidt@gmail.com")
        .replace("+234 803 555 0147", "+49 30 5550 1234")
        .replace("github.com/aokafor", "github.com/jschmidt")
        .replace("University of Lagos, 2016", "University of Lagos, 1994");
    assert_ne!(base, swapped);
    let (_, a) = post(&app, "/score", json!({"resume": with_photo(&base, "Photo of Amara, a Black woman"), "job_description": jd})).await;
    let (_, b) = post(&app, "/score", json!({"resume": with_photo(&swapped, "Photo of Johann, an older white man"), "job_description": jd})).await;
    assert!(a["score"].as_f64().is_some(), "{a}");
    assert_eq!(a["score"], b["score"]);
    assert_eq!(a["semantic_similarity"], b["semantic_similarity"]);
    assert_eq!(a["skills"], b["skills"]);
    let scores = |r: &Value| r["requirements"].as_array().unwrap().iter().map(|q| (q["score"].clone(), q["best_match"].clone())).collect::<Vec<_>>();
    assert_eq!(scores(&a), scores(&b));
    let text = a.to_string();
    for leaked in ["Amara", "protonmail", "0147", "aokafor"] {
        assert!(!text.contains(leaked), "{leaked} appears in the report");
    }
}

#[tokio::test]
async fn rank_orders_best_first_and_embeds_the_job_once() {
    let app = router();
    let resumes = json!([{"id": "chef", "text": UNRELATED}, {"id": "python", "text": MEDIUM}, {"id": "go", "text": STRONG}]);
    let (s, r) = post(&app, "/rank", json!({"job_description": JOB, "resumes": resumes})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let results = r["results"].as_array().unwrap();
    let ids: Vec<&str> = results.iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["go", "python", "chef"]);
    let scores: Vec<f64> = results.iter().map(|x| x["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    assert!(results[0]["requirements"].as_array().is_some_and(|a| !a.is_empty()));
    // The same breakdown as /score.
    let (_, one) = post(&app, "/score", json!({"resume": STRONG, "job_description": JOB})).await;
    assert_eq!(one["score"], results[0]["score"]);
}

#[tokio::test]
async fn every_error_has_its_status() {
    let app = router();
    let long = "x ".repeat(25_001);
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (json!({"resume": long, "job_description": JOB}), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "at most 50000"),
        (json!({"resume": STRONG, "job_description": long}), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "job_description"),
        (json!({"resume": "  \n ", "job_description": JOB}), StatusCode::UNPROCESSABLE_ENTITY, "validation", "resume is empty"),
        (json!({"resume": STRONG, "job_description": ""}), StatusCode::UNPROCESSABLE_ENTITY, "validation", "job_description is empty"),
        (json!({"job_description": JOB}), StatusCode::UNPROCESSABLE_ENTITY, "validation", "resume (text) or resume_pdf_base64 is required"),
        (json!({"resume": "\u{0}\u{1}\u{2}\u{3}\u{fffd}\u{fffd}ab\u{7}\u{8}", "job_description": JOB}), StatusCode::UNPROCESSABLE_ENTITY, "validation", "does not look like text"),
    ];
    for (body, status, error_type, says) in cases {
        let (s, e) = post(&app, "/score", body).await;
        assert_error(s, &e, status, error_type);
        assert!(e["error"].as_str().unwrap().contains(says), "{e} should say {says:?}");
    }
    let (s, e) = post_raw(&app, "/score", "text/plain", b"resume text".to_vec()).await;
    assert_error(s, &e, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let junk: Vec<u8> = (0..2048u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let (s, e) = post_raw(&app, "/score", "application/json", junk).await;
    assert_error(s, &e, StatusCode::BAD_REQUEST, "invalid_json");
    // The service keeps serving after all of that.
    let (s, _) = post(&app, "/score", json!({"resume": MEDIUM, "job_description": JOB})).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn rank_limits_count_and_sizes() {
    let app = router();
    let many: Vec<Value> = (0..101).map(|i| json!({"id": format!("r{i}"), "text": "Go developer"})).collect();
    let (s, e) = post(&app, "/rank", json!({"job_description": JOB, "resumes": many})).await;
    assert_error(s, &e, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(e["error"].as_str().unwrap().contains("at most 100"), "{e}");
    let (s, e) = post(&app, "/rank", json!({"job_description": JOB, "resumes": []})).await;
    assert_error(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let (s, e) = post(&app, "/rank", json!({"job_description": JOB, "resumes": [{"id": "a", "text": ""}]})).await;
    assert_error(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(e["error"].as_str().unwrap().contains("\"a\""), "{e}");
    // Limits are configurable.
    let small = router_with(Limits { max_text_chars: 1000, ..Limits::default() }, ScoreConfig { max_resumes: 2, ..ScoreConfig::default() });
    let three: Vec<Value> = (0..3).map(|i| json!({"id": format!("r{i}"), "text": "Go developer"})).collect();
    let (s, _) = post(&small, "/rank", json!({"job_description": JOB, "resumes": three})).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, e) = post(&small, "/score", json!({"resume": "y".repeat(1001), "job_description": JOB})).await;
    assert_error(s, &e, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(e["error"].as_str().unwrap().contains("at most 1000"), "{e}");
    let hundred: Vec<Value> = (0..100).map(|i| json!({"id": format!("r{i:03}"), "text": if i == 42 { STRONG } else { UNRELATED }})).collect();
    let (s, r) = post(&app, "/rank", json!({"job_description": JOB, "resumes": hundred})).await;
    assert_eq!(s, StatusCode::OK, "{}", r["error"]);
    assert_eq!(r["results"].as_array().unwrap().len(), 100);
    assert_eq!(r["results"][0]["id"], "r042");
}

fn snapembed() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snapembed"));
    c.env("SNAPEMBED_SNAPSHOT", snapshot_path());
    c
}

#[test]
fn cli_score_prints_a_report_or_json_and_rank_orders_files() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.md");
    std::fs::write(&job, JOB).unwrap();
    let resumes = dir.path().join("resumes");
    std::fs::create_dir(&resumes).unwrap();
    for (name, text) in [("chef.txt", UNRELATED), ("go.txt", STRONG), ("python.txt", MEDIUM)] {
        std::fs::write(resumes.join(name), text).unwrap();
    }
    let out = snapembed().args(["score", "--resume"]).arg(resumes.join("go.txt")).arg("--job").arg(&job).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Score:") && text.contains("Requirements:") && text.contains("Skills missing:"), "{text}");
    let out = snapembed().args(["score", "--json", "--resume"]).arg(resumes.join("go.txt")).arg("--job").arg(&job).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["score"].as_f64().is_some() && v["requirements"].as_array().is_some(), "{v}");
    let out = snapembed().args(["rank", "--json", "--job"]).arg(&job).arg(&resumes).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<String> = v["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()).collect();
    assert_eq!(ids, ["go.txt", "python.txt", "chef.txt"]);
    let out = snapembed().args(["score", "--resume"]).arg(dir.path().join("missing.txt")).arg("--job").arg(&job).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.txt"));
}

/// A PDF resume reaches /score as a multipart file or as base64 JSON, with weights either way,
/// and scores exactly as its extracted text does; the CLI reads the same PDF to the same score.
#[tokio::test]
async fn a_pdf_resume_scores_as_its_text_does_over_http_and_the_cli() {
    use base64::Engine;
    use snapembed::scorer::pdf::{extract_text, PdfLimits};
    let Some(pdf) = crate::pdf::fixture("resume_2page.pdf") else { return };
    let text = extract_text(&pdf, &PdfLimits::default()).unwrap();
    let app = router();
    let (status, as_text) = post(&app, "/score", json!({"resume": text, "job_description": JOB})).await;
    assert_eq!(status, StatusCode::OK, "{as_text}");
    assert!(as_text["score"].as_f64().unwrap() > 0.0, "{as_text}");

    let b64 = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let (status, from_json) = post(&app, "/score", json!({"resume_pdf_base64": b64, "job_description": JOB})).await;
    assert_eq!(status, StatusCode::OK, "{from_json}");
    assert_eq!(from_json, as_text);

    let form_type = format!("multipart/form-data; boundary={}", crate::pdf::BOUNDARY);
    let form = crate::pdf::multipart(&[("resume", Some("cv.pdf"), Some("application/pdf"), &pdf), ("job_description", None, None, JOB.as_bytes())]);
    let (status, from_form) = post_raw(&app, "/score", &form_type, form).await;
    assert_eq!(status, StatusCode::OK, "{from_form}");
    assert_eq!(from_form, as_text);

    // Weights travel with a PDF too: as a JSON field, or as a form part holding JSON.
    let weights = json!({"requirements": 0.0, "skills": 0.0, "similarity": 1.0});
    let (_, text_weighted) = post(&app, "/score", json!({"resume": text, "job_description": JOB, "weights": weights})).await;
    assert_eq!(text_weighted["formula"]["weights"]["similarity"], 1.0, "{text_weighted}");
    assert_ne!(text_weighted["score"], as_text["score"]);
    let (status, json_weighted) = post(&app, "/score", json!({"resume_pdf_base64": b64, "job_description": JOB, "weights": weights})).await;
    assert_eq!((status, &json_weighted), (StatusCode::OK, &text_weighted));
    let weights_part = weights.to_string();
    let form = crate::pdf::multipart(&[
        ("resume", Some("cv.pdf"), Some("application/pdf"), &pdf),
        ("job_description", None, None, JOB.as_bytes()),
        ("weights", None, Some("application/json"), weights_part.as_bytes()),
    ]);
    let (status, form_weighted) = post_raw(&app, "/score", &form_type, form).await;
    assert_eq!((status, &form_weighted), (StatusCode::OK, &text_weighted));
    let form = crate::pdf::multipart(&[("resume", None, None, b"I write Go."), ("job_description", None, None, JOB.as_bytes()), ("weights", None, None, b"{\"speed\": 1}")]);
    let (status, body) = post_raw(&app, "/score", &form_type, form).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(body["error"].as_str().unwrap().contains("weights"), "{body}");

    // A scanned PDF says no text was found, through /score as through the extractor.
    if let Some(scan) = crate::pdf::fixture("scanned.pdf") {
        let form = crate::pdf::multipart(&[("resume", Some("scan.pdf"), Some("application/pdf"), &scan), ("job_description", None, None, JOB.as_bytes())]);
        let (status, body) = post_raw(&app, "/score", &form_type, form).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "pdf_no_text");
    }

    let dir = tempfile::tempdir().unwrap();
    let (resume, job) = (dir.path().join("cv.pdf"), dir.path().join("job.md"));
    std::fs::write(&resume, &pdf).unwrap();
    std::fs::write(&job, JOB).unwrap();
    let out = snapembed().args(["score", "--json", "--resume"]).arg(&resume).arg("--job").arg(&job).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, as_text);
    let out = snapembed().args(["rank", "--job"]).arg(&job).arg(&resume).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cv.pdf"));
}

#[test]
fn a_real_server_scores_over_a_socket() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = snapembed()
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string(), "--threads", "1", "--max-resumes", "5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(t.elapsed().as_secs() < 30, "server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let body = json!({"resume": STRONG, "job_description": JOB}).to_string();
    let (status, resp) = crate::common::http_request(&addr, "POST", "/score", Some(&body));
    let many: Vec<Value> = (0..6).map(|i| json!({"id": i.to_string(), "text": "Go"})).collect();
    let (status_rank, _) = crate::common::http_request(&addr, "POST", "/rank", Some(&json!({"job_description": JOB, "resumes": many}).to_string()));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200, "{resp}");
    let v: Value = serde_json::from_str(&resp).unwrap();
    assert!(v["score"].as_f64().unwrap() > 0.0);
    assert_eq!(status_rank, 413, "--max-resumes 5 applies");
}
