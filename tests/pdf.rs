//! PDF resumes: real PDFs made by fpdf2 and reportlab in the test setup
//! (tests/run.sh runs tests/tools/make_pdf_fixtures.py → target/pdf-fixtures), hand-written hostile PDFs that must give
//! errors and leave the process serving, and the resume request bodies over HTTP.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use snapembed::scorer::pdf::{extract_text, PdfError, PdfLimits};
use snapembed::service::config::Limits;
use snapembed::service::memory::MemoryGuard;
use snapembed::service::resume_input::ResumeInput;
use snapembed::service::AppState;

use crate::http::send;

/// A fixture from target/pdf-fixtures, or `None` (with the reason printed) when the setup has
/// not made them, unless SNAPEMBED_REQUIRE_PDF_FIXTURES=1.
pub(crate) fn fixture(name: &str) -> Option<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pdf-fixtures").join(name);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if std::env::var("SNAPEMBED_REQUIRE_PDF_FIXTURES").as_deref() == Ok("1") => {
            panic!("{}: {e} (tests/run.sh makes it)", path.display())
        }
        Err(_) => {
            eprintln!("SKIP: {} is absent; tests/run.sh makes the PDF fixtures (fpdf2 + reportlab)", path.display());
            None
        }
    }
}

fn text_of(name: &str) -> Option<String> {
    let bytes = fixture(name)?;
    Some(extract_text(&bytes, &PdfLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn error_of(bytes: &[u8]) -> PdfError {
    match extract_text(bytes, &PdfLimits::default()) {
        Ok(text) => panic!("expected an error, got text {text:?}"),
        Err(e) => e,
    }
}

#[test]
fn two_page_resume_reads_as_sentences() {
    let Some(text) = text_of("resume_2page.pdf") else { return };
    // The contact line starts in lower case, so it reads as the name line's continuation.
    assert!(text.starts_with("Jane Example jane@example.com | +1 555 0100 | Springfield\nSummary\n"), "{text}");
    // A paragraph that fpdf2 wrapped over two lines comes back as one.
    assert!(text.contains("\nBackend engineer with eight years of experience building reliable distributed systems, data pipelines and developer tooling for teams of every size.\n"), "{text}");
    // A word hyphenated across a line end is joined.
    assert!(text.contains("Closing note: an experienced mentor of new engineers."), "{text}");
    // Every bullet starts its own line, both pages' worth.
    let bullets: Vec<&str> = text.lines().filter(|l| l.starts_with("- Led the migration")).collect();
    assert_eq!(bullets.len(), 30, "{text}");
    assert!(text.contains("- Led the migration of service 54 to Python, cutting p99 latency by 38 percent"), "{text}");
    assert!(text.contains("BSc in Computer Science, State University."), "the second page: {text}");
    assert!(!text.contains("  ") && !text.contains("\n\n"), "{text}");
}

#[test]
fn two_columns_drawn_column_by_column_read_in_order() {
    let Some(text) = text_of("two_column.pdf") else { return };
    let order = [
        "Left column starts here.",
        "Alpha worked on Rust services.",
        "Gamma ran Kubernetes clusters.",
        "Left column ends here.",
        "Right column starts here.",
        "Delta built React dashboards.",
        "Right column ends here.",
    ];
    let at: Vec<usize> = order.iter().map(|s| text.find(s).unwrap_or_else(|| panic!("{s:?} missing from {text:?}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
}

/// pdf-extract writes text in content-stream order, not by layout: columns drawn row by row come
/// out as rows, each left half followed by its right half on one line.
#[test]
fn two_columns_drawn_row_by_row_come_out_as_rows() {
    let Some(text) = text_of("two_column_rows.pdf") else { return };
    assert!(text.contains("Left column starts here. Right column starts here.\n"), "{text}");
    assert!(text.contains("Gamma ran Kubernetes clusters. Zeta streamed events with Kafka."), "{text}");
}

#[test]
fn embedded_font_reads_through_its_tounicode_map() {
    let Some(text) = text_of("with_tounicode.pdf") else { return };
    assert_eq!(text, "Kubernetes and PostgreSQL engineer");
}

/// reportlab's TrueType subset without its ToUnicode map: its codes are ASCII for ASCII text, and
/// pdf-extract falls back to the standard encoding, so the text still reads.
#[test]
fn simple_font_without_tounicode_reads_through_its_encoding() {
    let Some(text) = text_of("no_tounicode.pdf") else { return };
    assert_eq!(text, "Kubernetes and PostgreSQL engineer");
}

/// fpdf2's Type0 font (Identity-H, codes are glyph ids) without its ToUnicode map: nothing says
/// which letters the glyphs are. What pdf-extract makes of it is pinned here.
#[test]
fn identity_h_font_without_tounicode() {
    let Some(bytes) = fixture("identity_h_no_tounicode.pdf") else { return };
    let got = extract_text(&bytes, &PdfLimits::default());
    eprintln!("Identity-H without ToUnicode: {got:?}");
    assert!(matches!(got, Err(PdfError::NoText)), "{got:?}");
}

#[test]
fn scanned_pdf_has_no_text() {
    let Some(bytes) = fixture("scanned.pdf") else { return };
    assert!(matches!(error_of(&bytes), PdfError::NoText));
}

#[test]
fn encrypted_pdf_is_refused_but_owner_only_protection_reads() {
    let Some(bytes) = fixture("encrypted.pdf") else { return };
    assert!(matches!(error_of(&bytes), PdfError::Encrypted), "{:?}", error_of(&bytes));
    let Some(text) = text_of("owner_only.pdf") else { return };
    assert_eq!(text, "Confidential resume of an encrypted engineer.");
}

#[test]
fn truncated_pdf_is_corrupt() {
    let Some(bytes) = fixture("truncated.pdf") else { return };
    let e = error_of(&bytes);
    assert!(matches!(e, PdfError::Corrupt(_) | PdfError::Unreadable(_) | PdfError::NoText), "{e:?}");
}

#[test]
fn page_limit() {
    let Some(bytes) = fixture("many_pages.pdf") else { return };
    assert!(matches!(error_of(&bytes), PdfError::TooManyPages { pages: 60, max: 50 }));
    let limits = PdfLimits { max_pages: 60, ..Default::default() };
    let text = extract_text(&bytes, &limits).unwrap();
    assert!(text.contains("Page 60 of a long portfolio."), "{text}");
}

// --- Hand-written hostile PDFs: each must be an error, never a panic or an abort. ---

/// A PDF from object bodies (numbered from 1, object 1 the catalog) with a correct xref table.
fn pdf(objects: &[&str]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes());
    out
}

fn stream(content: &str) -> String {
    format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len())
}

const CATALOG: &str = "<< /Type /Catalog /Pages 2 0 R >>";
const PAGES: &str = "<< /Type /Pages /Kids [3 0 R] /Count 1 >>";
const HELVETICA: &str = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";

#[test]
fn hand_written_pdf_reads() {
    // The control for the hostile ones below: the same skeleton, well formed.
    let ok = pdf(&[
        CATALOG,
        PAGES,
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        &stream("BT /F1 12 Tf 72 700 Td (Plain hand written text) Tj ET"),
        HELVETICA,
    ]);
    assert_eq!(extract_text(&ok, &PdfLimits::default()).unwrap(), "Plain hand written text");
}

#[test]
fn page_without_mediabox_is_an_error_not_a_panic() {
    // pdf-extract: `.expect("MediaBox")`.
    let bytes = pdf(&[
        CATALOG,
        PAGES,
        "<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        &stream("BT /F1 12 Tf 72 700 Td (x) Tj ET"),
        HELVETICA,
    ]);
    assert!(matches!(error_of(&bytes), PdfError::Crashed { .. }), "{:?}", error_of(&bytes));
}

#[test]
fn bad_operands_and_fonts_are_errors_not_panics() {
    let page = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>";
    for (content, font) in [
        ("BT /F1 12 Tf 72 700 Td 5 Tj ET", HELVETICA),                                             // Tj of a number
        ("BT /F9 12 Tf 72 700 Td (x) Tj ET", HELVETICA),                                           // a font not in the resources
        ("BT /F1 12 Tf 72 700 Td (x) Tj ET", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /Bogus >>"),
        ("BT /F1 12 Tf 72 700 Td (x) Tj ET", "<< /Type /Font /Subtype /Type0 /BaseFont /X /Encoding /Identity-H /DescendantFonts 9 0 R >>"),
        ("BT /F1 12 Tf 72 700 Td (x) Tj ET", "(not a font)"),
        ("q q q Q BT ] ] >> ET (", HELVETICA),
    ] {
        let bytes = pdf(&[CATALOG, PAGES, page, &stream(content), font]);
        let got = extract_text(&bytes, &PdfLimits::default());
        assert!(got.is_err(), "{content} / {font}: {got:?}");
    }
}

#[test]
fn a_form_that_draws_itself_is_refused_before_it_overflows_the_stack() {
    // pdf-extract recurses into `Do` without a depth limit; unchecked, this aborts the process.
    let bytes = pdf(&[
        CATALOG,
        PAGES,
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /X1 4 0 R >> >> /Length 6 >>\nstream\n/X1 Do\nendstream",
        &stream("/X1 Do"),
    ]);
    assert!(matches!(error_of(&bytes), PdfError::NestedForms), "{:?}", error_of(&bytes));
}

#[test]
fn forms_that_fan_out_are_refused() {
    // Six forms, each drawing the next under ten names: 10^5 expansions, no cycle, depth 6.
    let mut objects = vec![
        CATALOG.to_owned(),
        PAGES.to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X 4 0 R >> >> /Contents 10 0 R >>".to_owned(),
    ];
    let names = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"];
    for i in 0..6 {
        let next: String = if i < 5 { names.iter().map(|n| format!("/{n} {} 0 R ", 5 + i)).collect() } else { String::new() };
        let content: String = names.iter().map(|n| format!("/{n} Do ")).collect();
        objects.push(format!(
            "<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Resources << /XObject << {next}>> >> /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    objects.push(stream("/X Do"));
    let refs: Vec<&str> = objects.iter().map(String::as_str).collect();
    let e = error_of(&pdf(&refs));
    assert!(matches!(e, PdfError::NestedForms), "{e:?}");
}

#[test]
fn garbage_after_the_header_is_corrupt() {
    for bytes in [&b"%PDF-1.7\n%%EOF\n"[..], b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R", b"%PDF-\xff\xfe\x00\x01 trailer << /Root 99 0 R >>"] {
        let e = error_of(bytes);
        assert!(matches!(e, PdfError::Corrupt(_) | PdfError::NoText), "{e:?}");
    }
}

#[test]
fn a_deflate_bomb_is_refused_before_it_is_inflated() {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        z.write_all(&zeros).unwrap();
    }
    let bomb = z.finish().unwrap(); // 256 MiB of zeros in ~250 KB
    let mut bytes = pdf(&[CATALOG, PAGES, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>"]);
    bytes.extend(format!("4 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n", bomb.len()).as_bytes());
    bytes.extend(&bomb);
    bytes.extend(b"\nendstream\nendobj\n");
    let t = Instant::now();
    assert!(matches!(error_of(&bytes), PdfError::InflatesTooLarge { .. }), "{:?}", error_of(&bytes));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn text_output_is_bounded() {
    let body = "BT /F1 12 Tf 72 700 Td (0123456789) Tj ET ".repeat(2000);
    let bytes = pdf(&[
        CATALOG,
        PAGES,
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        &stream(&body),
        HELVETICA,
    ]);
    let limits = PdfLimits { max_text_bytes: 1000, ..Default::default() };
    assert!(matches!(extract_text(&bytes, &limits), Err(PdfError::TextTooLong { max: 1000 })));
}

// --- Request bodies over HTTP: a route that echoes what the extractor produced. ---

fn probe() -> Router {
    let state = AppState::new(Err("not needed".into()), Limits::default(), 1, MemoryGuard::new(None));
    let route = |input: ResumeInput| async move {
        Json(json!({"resume": input.resume, "job_description": input.job_description, "from_pdf": input.from_pdf}))
    };
    Router::new().route("/probe", post(route)).with_state(state)
}

pub(crate) const BOUNDARY: &str = "snapembed-test-boundary";

/// One part of a form: (name, filename, content type, bytes).
pub(crate) type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

pub(crate) fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, filename, ctype, bytes) in parts {
        out.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
        if let Some(f) = filename {
            out.extend(format!("; filename=\"{f}\"").as_bytes());
        }
        out.extend(b"\r\n");
        if let Some(c) = ctype {
            out.extend(format!("Content-Type: {c}\r\n").as_bytes());
        }
        out.extend(b"\r\n");
        out.extend(*bytes);
        out.extend(b"\r\n");
    }
    out.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

async fn post_to(app: &Router, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let req = Request::post("/probe").header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap();
    let (status, _, body) = send(app, req).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn post_form(app: &Router, parts: &[Part<'_>]) -> (StatusCode, Value) {
    post_to(app, &format!("multipart/form-data; boundary={BOUNDARY}"), multipart(parts)).await
}

fn assert_error(got: &(StatusCode, Value), status: StatusCode, error_type: &str, says: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error_type"], error_type, "{}", got.1);
    assert!(got.1["error"].as_str().is_some_and(|e| e.contains(says)), "{}", got.1);
}

#[tokio::test]
async fn multipart_text_and_pdf_resumes() {
    let app = probe();
    let jd: &[u8] = b"Backend engineer: Rust, PostgreSQL.";
    let (status, body) = post_form(&app, &[("resume", Some("cv.txt"), Some("text/plain"), b"I write Rust."), ("job_description", None, None, jd)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"resume": "I write Rust.", "job_description": "Backend engineer: Rust, PostgreSQL.", "from_pdf": false}));

    let Some(pdf_bytes) = fixture("resume_2page.pdf") else { return };
    // Declared as a PDF, and sniffed as one when sent as application/octet-stream.
    for ctype in ["application/pdf", "application/octet-stream"] {
        let (status, body) = post_form(&app, &[("job_description", None, None, jd), ("resume", Some("cv.pdf"), Some(ctype), &pdf_bytes)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["from_pdf"], true);
        assert!(body["resume"].as_str().unwrap().contains("BSc in Computer Science"), "{body}");
    }
}

#[tokio::test]
async fn json_text_and_base64_pdf_resumes() {
    let app = probe();
    let (status, body) = post_to(&app, "application/json", json!({"resume": "Go and k8s", "job_description": "SRE"}).to_string().into_bytes()).await;
    assert_eq!((status, body["resume"].as_str()), (StatusCode::OK, Some("Go and k8s")));
    let Some(pdf_bytes) = fixture("two_column.pdf") else { return };
    let b64 = base64::engine::general_purpose::STANDARD.encode(&pdf_bytes);
    let (status, body) = post_to(&app, "application/json", json!({"resume_pdf_base64": b64, "job_description": "SRE"}).to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["resume"].as_str().unwrap().contains("Zeta streamed events with Kafka."), "{body}");
}

#[tokio::test]
async fn unreadable_pdfs_get_422s_that_say_why() {
    let app = probe();
    let jd: &[u8] = b"Data engineer";
    if let Some(scan) = fixture("scanned.pdf") {
        let got = post_form(&app, &[("resume", Some("scan.pdf"), Some("application/pdf"), &scan), ("job_description", None, None, jd)]).await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "pdf_no_text", "no text was found");
    }
    if let Some(locked) = fixture("encrypted.pdf") {
        let got = post_form(&app, &[("resume", Some("cv.pdf"), Some("application/pdf"), &locked), ("job_description", None, None, jd)]).await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "pdf_encrypted", "encrypted");
    }
    let junk = b"%PDF-1.4\n this is not really a pdf at all";
    let got = post_form(&app, &[("resume", Some("cv.pdf"), Some("application/pdf"), junk), ("job_description", None, None, jd)]).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "pdf_unreadable", "corrupt");
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"not a pdf");
    let got = post_to(&app, "application/json", json!({"resume_pdf_base64": b64, "job_description": "x"}).to_string().into_bytes()).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "pdf_unreadable", "not a PDF");
    let got = post_to(&app, "application/json", json!({"resume_pdf_base64": "%%%", "job_description": "x"}).to_string().into_bytes()).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "validation", "base64");
}

#[tokio::test]
async fn wrong_types_sizes_and_missing_parts() {
    let app = probe();
    let jd: &[u8] = b"Frontend engineer";
    let got = post_to(&app, "text/html", b"<p>resume</p>".to_vec()).await;
    assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "multipart/form-data");
    let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    let got = post_form(&app, &[("resume", Some("cv.docx"), Some(docx), b"PK\x03\x04"), ("job_description", None, None, jd)]).await;
    assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "application/pdf or text/plain");
    let got = post_form(&app, &[("resume", None, None, b"\x00\x01\xfe binary"), ("job_description", None, None, jd)]).await;
    assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "binary");
    let got = post_form(&app, &[("resume", None, None, b"I write Rust.")]).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "validation", "job_description is required");
    let got = post_form(&app, &[("resume", None, None, b"  \n "), ("job_description", None, None, jd)]).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "validation", "resume is empty");
    let got = post_form(&app, &[("resume", None, None, b"x"), ("cover_letter", None, None, b"y"), ("job_description", None, None, jd)]).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "validation", "cover_letter");
    let long = "word ".repeat(10_001);
    let got = post_to(&app, "application/json", json!({"resume": long, "job_description": "x"}).to_string().into_bytes()).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "at most 50000");
    let got = post_to(&app, "multipart/form-data", b"no boundary".to_vec()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_multipart", "multipart");
    // Over the body limit (2 MiB by default): 413, whichever part carries it.
    let big = vec![b'a'; 3 << 20];
    let got = post_form(&app, &[("resume", None, Some("text/plain"), &big), ("job_description", None, None, jd)]).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "larger than");
}

#[test]
fn an_overrun_is_abandoned_and_its_thread_stops_at_its_next_character() {
    let body = "BT /F1 12 Tf 72 700 Td (0123456789) Tj ET ".repeat(100_000);
    let bytes = pdf(&[
        CATALOG,
        PAGES,
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        &stream(&body),
        HELVETICA,
    ]);
    let limits = PdfLimits { timeout: Duration::from_millis(50), max_text_bytes: usize::MAX, ..Default::default() };
    let t = Instant::now();
    let got = extract_text(&bytes, &limits);
    assert!(matches!(got, Err(PdfError::TimedOut(_))), "{got:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "the caller waited {:?}", t.elapsed());
    // The writer refuses output past the deadline, so the abandoned thread ends soon after.
    while snapembed::scorer::pdf::extractors().1 > 0 {
        assert!(t.elapsed() < Duration::from_secs(20), "an abandoned extractor is still running");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Extraction time of the 2-page resume; `cargo test --test tests pdf::cost -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn cost() {
    let Some(bytes) = fixture("resume_2page.pdf") else { return };
    let mut ms: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            extract_text(&bytes, &PdfLimits::default()).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!("resume_2page.pdf ({} bytes): median {:.2} ms, min {:.2} ms", bytes.len(), ms[10], ms[0]);
}
