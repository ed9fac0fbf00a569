//! The Tally webhook seen from outside: realistic deliveries (every field type Tally sends)
//! through the router, signed and unsigned, replayed, malformed; forwarding to real HTTP servers
//! started on 127.0.0.1 here (one that accepts, one that fails, one too slow); the same over the
//! Lambda adapter with Function URL events; and the built binary configured by environment.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{json, Value};
use snapembed::service::config::Limits;
use snapembed::service::memory::MemoryGuard;
use snapembed::service::{app, AppState};
use snapembed::tally::signature::sign;
use snapembed::tally::{ForwardSettings, QueryFields, Settings, Webhook};
use snapembed::Embedder;
use tower::ServiceExt;

use crate::common::{data_path, http_request_with_headers, snapshot_path};

const SECRET: &str = "whsec-ledgerly-support-7Qx";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(data_path(&format!("tally/{name}.json"))).unwrap()
}

/// A fixture with another eventId, so tests sharing nothing do not share idempotency either.
fn with_event_id(body: &str, id: &str) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap();
    v["eventId"] = json!(id);
    serde_json::to_string(&v).unwrap()
}

fn state(settings: Settings) -> AppState {
    let model = Embedder::from_snapshot(&snapshot_path()).map_err(|e| e.to_string());
    AppState::new(model, Limits::default(), 1, MemoryGuard::new(None)).with_tally(Webhook::new(settings).unwrap())
}

/// With the sample knowledge base's committed index.
fn state_with_corpus(settings: Settings) -> AppState {
    let index = snapembed::search::MappedIndex::open(&snapshot_path().with_file_name("corpus.idx")).unwrap();
    state(settings).with_corpus(Arc::new(index))
}

fn signed() -> Settings {
    Settings { secret: Some(SECRET.as_bytes().to_vec()), ..Settings::default() }
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    raw: Bytes,
    json: Value,
}

async fn post(state: &AppState, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::post("/webhook/tally").header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app(state.clone()).oneshot(req.body(axum::body::Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Reply { status, headers, raw, json }
}

async fn post_signed(state: &AppState, body: &str) -> Reply {
    let sig = sign(SECRET.as_bytes(), body.as_bytes());
    post(state, body, &[("tally-signature", &sig)]).await
}

// ---- payloads ------------------------------------------------------------------------------

#[tokio::test]
async fn every_field_type_is_normalized_with_option_ids_resolved() {
    let r = post(&state(Settings::default()), &fixture("support_request"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let a = &r.json["answers"];
    assert_eq!(r.json["event_id"], "7f3c9a52-1d4e-4b8a-9e61-2c5d8f0a4b17");
    assert_eq!(r.json["submission_id"], "Zk4Lq7");
    assert_eq!(r.json["form_name"], "Ledgerly support request");
    assert_eq!(a["account_id"], "acct_48213", "HIDDEN_FIELDS");
    assert_eq!(a["Your name"], "Priya Natarajan", "INPUT_TEXT");
    assert_eq!(a["Work email"], "priya@harbourlane-bakery.example", "INPUT_EMAIL");
    assert_eq!(a["Phone (if you want a call back)"], "+44 20 7946 0321", "INPUT_PHONE_NUMBER");
    assert_eq!(a["Link to the invoice or page"], "https://app.ledgerly.example/invoices/INV-2291", "INPUT_LINK");
    assert_eq!(a["How many people use Ledgerly in your team?"], 4, "INPUT_NUMBER");
    assert_eq!(a["When did it start?"], "2026-11-27", "INPUT_DATE");
    assert_eq!(a["Best time to reach you"], "14:30", "INPUT_TIME");
    assert_eq!(a["Which plan are you on?"], json!(["Growth"]), "DROPDOWN");
    assert_eq!(a["What is this about?"], json!(["Invoices and payments"]), "MULTIPLE_CHOICE");
    assert_eq!(a["Where do you see the problem?"], json!(["Web app", "Emails to customers"]), "CHECKBOXES");
    assert_eq!(a["Where do you see the problem? (Web app)"], true, "a checkbox option's own field");
    assert_eq!(a["Where do you see the problem? (iPhone app)"], false);
    assert_eq!(a["Which payment methods do your customers use?"], json!(["Card", "Bank transfer"]), "MULTI_SELECT");
    assert_eq!(
        a["What should we fix first?"],
        json!(["Online card payments", "Payment reminders", "Invoice templates"]),
        "RANKING keeps the respondent's order"
    );
    assert_eq!(a["How urgent is it? (1 = can wait, 10 = blocking)"], 8, "LINEAR_SCALE");
    assert_eq!(a["How happy are you with Ledgerly overall?"], 3, "RATING");
    assert!(a["Describe what happened"].as_str().unwrap().starts_with("Since Friday our customers"), "TEXTAREA");
    assert_eq!(a["Screenshots"][0]["name"], "pay-now-error.png", "FILE_UPLOAD");
    assert_eq!(a["Signature"][0]["mimeType"], "image/png", "SIGNATURE");
    assert_eq!(a["Rate these parts of Ledgerly"], json!({"Invoicing": ["Great"], "Support": ["Poor"]}), "MATRIX");
    assert_eq!(a["Book a priority call with a specialist (optional)"]["price"], 49, "PAYMENT");
    assert_eq!(a["priority_score"], 11, "CALCULATED_FIELDS");
    assert_eq!(a.as_object().unwrap().len(), 24, "one answer per field, none dropped");
    // Answers keep the form's order (seen in the raw bytes: a parsed map sorts its keys).
    let raw = std::str::from_utf8(&r.raw).unwrap();
    let answers_at = raw.find("\"answers\":").unwrap();
    let at = |l: &str| raw[answers_at..].find(&format!("\"{l}\":")).unwrap();
    assert!(at("account_id") < at("Your name") && at("Your name") < at("Screenshots") && at("Screenshots") < at("priority_score"));

    assert_eq!(
        r.json["query"],
        "Your name: Priya Natarajan\n\
         Which plan are you on?: Growth\n\
         What is this about?: Invoices and payments\n\
         Where do you see the problem?: Web app, Emails to customers\n\
         Which payment methods do your customers use?: Card, Bank transfer\n\
         What should we fix first?: Online card payments, Payment reminders, Invoice templates\n\
         Describe what happened: Since Friday our customers can't pay invoices by card. They open the payment link from \
         the invoice email and the Pay now button spins and then says the payment could not be processed. Bank transfers \
         still come in fine. We use Stripe and nothing changed on our side.",
        "text-like answers with their labels; no email, phone, numbers, files or payment"
    );
    assert!(r.json["matches"].is_array());
    assert_eq!(r.json["forwarded"], false);
    assert!(r.json.get("forward_error").is_none());
    assert!(r.json["took_ms"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn unanswered_fields_are_null_and_unknown_types_pass_through() {
    let r = post(&state(Settings::default()), &fixture("sparse_answers"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let a = &r.json["answers"];
    for label in ["account_id", "Phone (if you want a call back)", "Where do you see the problem?", "Screenshots", "Signature",
        "Rate these parts of Ledgerly", "Book a priority call with a specialist (optional)", "What should we fix first?"]
    {
        assert!(a[label].is_null(), "{label}: {}", a[label]);
    }
    assert_eq!(a["What is this about?"], json!(["Two-factor codes"]), "an \"Other\" answer is the typed text");
    assert_eq!(a["Where are you based?"], json!({"city": "Porto", "country": "Portugal"}), "a type this code does not know");
    assert_eq!(a["priority_score"], 0);
    assert_eq!(
        r.json["query"],
        "Your name: Tomás Ferreira\nWhat is this about?: Two-factor codes\nDescribe what happened: I got a new phone and \
         the authenticator app is gone, so I can't log in. The six digit code is always wrong."
    );
}

#[tokio::test]
async fn the_query_can_be_limited_to_named_fields() {
    let fields = QueryFields::from_names(["describe what happened", "question_Hs9rTy"]);
    let r = post(&state(Settings { fields, ..Settings::default() }), &fixture("support_request"), &[]).await;
    assert_eq!(r.status, 200);
    let q = r.json["query"].as_str().unwrap();
    assert!(q.starts_with("Since Friday our customers can't pay invoices by card."), "{q}");
    assert!(q.ends_with("nothing changed on our side.\nInvoices and payments"), "{q}");
}

// ---- search ---------------------------------------------------------------------------------

fn categories(r: &Reply) -> Vec<String> {
    r.json["matches"].as_array().unwrap().iter().map(|m| m["metadata"]["category"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn submissions_are_matched_against_the_knowledge_base() {
    let s = state_with_corpus(Settings::default());
    let r = post(&s, &fixture("support_request"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.json.get("search_error").is_none(), "{}", r.json);
    let m = r.json["matches"].as_array().unwrap();
    assert_eq!(m.len(), 5, "top_k 5 by default");
    for hit in m {
        assert!(hit["id"].as_str().unwrap().starts_with("kb-") && hit["score"].is_number() && hit["snippet"].is_string());
        assert_eq!(hit["span"].as_array().unwrap().len(), 2);
    }
    let scores: Vec<f64> = m.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");
    let ids: Vec<&str> = m.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert!(ids[..2].contains(&"kb-0278"), "\"My customer can't pay the invoice online\" answers it: {ids:?}");

    let r = post(&s, &fixture("sparse_answers"), &[]).await;
    assert_eq!(categories(&r)[0], "account-login", "a lost authenticator: {}", r.json["matches"]);

    let top_k = Settings { top_k: 2, ..Settings::default() };
    let r = post(&state_with_corpus(top_k), &fixture("sparse_answers"), &[]).await;
    assert_eq!(r.json["matches"].as_array().unwrap().len(), 2, "SNAPEMBED_TALLY_TOP_K");
}

#[tokio::test]
async fn a_long_submission_is_searched_end_to_end_and_its_matches_merged() {
    // The problem comes after ~700 word pieces of other text: a search of the first 256-piece
    // window (what truncation would do) could not see it.
    let filler = "We have been customers for years and mostly everything works as we expect it to. ".repeat(40);
    let text = format!(
        "I got a new phone and the authenticator app is gone, so the two-factor code is always wrong and I cannot log in. {filler} \
         Separately, payroll for our two new employees did not run this month and their payslips are missing."
    );
    let mut v: Value = serde_json::from_str(&fixture("sparse_answers")).unwrap();
    for f in v["data"]["fields"].as_array_mut().unwrap() {
        if f["label"] == "Describe what happened" {
            f["value"] = json!(text);
        }
    }
    // A generous budget: this is about chunking, and a loaded test machine (the whole suite on
    // 2 shared cores) can take the default 8 s over a long query, which then answers without
    // matches by design.
    let roomy = Settings { budget: Duration::from_secs(30), ..Settings::default() };
    let r = post(&state_with_corpus(roomy), &v.to_string(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.json.get("search_error").is_none(), "{}", r.json);
    assert!(r.json["query"].as_str().unwrap().len() > 3000);
    let cats = categories(&r);
    assert_eq!(cats[0], "payroll", "{cats:?}");
}

#[tokio::test]
async fn without_a_corpus_the_webhook_still_answers_200_with_a_search_error() {
    // Tally redelivers any non-2xx for a day; a missing corpus is not something a redelivery
    // fixes, and the answers are what must not be lost.
    let r = post(&state(Settings::default()), &fixture("support_request"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["matches"], json!([]));
    assert!(r.json["search_error"].as_str().unwrap().contains("corpus"), "{}", r.json);
}

#[tokio::test]
async fn malformed_payloads_are_400_naming_what_is_wrong() {
    let s = state(Settings::default());
    let cases = [
        ("{\"eventId\": ", "not valid JSON"),
        (r#"{"eventType":"FORM_RESPONSE","data":{"fields":[]}}"#, "eventId"),
        (r#"{"eventId":"e","eventType":"FORM_RESPONSE","data":{"submissionId":"s"}}"#, "data: missing field `fields`"),
        (r#"{"eventId":"e","eventType":"FORM_RESPONSE","data":{"submissionId":"s","fields":{}}}"#, "data.fields"),
        (r#"{"eventId":"e","eventType":"FORM_RESPONSE","data":{"submissionId":"s","fields":[{"key":"k","label":"L","value":1}]}}"#, "data.fields[0]"),
        (r#"{"eventId":"e","eventType":"FORM_RESPONSE","data":{"submissionId":"s","fields":[{"key":"k","type":"DROPDOWN","options":[{"text":"A"}]}]}}"#, "data.fields[0].options[0]"),
        (r#"{"eventId":"e","eventType":"FORM_RESPONSE"}"#, "data"),
        (r#"["FORM_RESPONSE"]"#, "body"),
    ];
    for (body, names) in cases {
        let r = post(&s, body, &[]).await;
        assert_eq!(r.status, 400, "{body} → {}", r.json);
        assert_eq!(r.json["error_type"], "invalid_payload", "{body}");
        let msg = r.json["error"].as_str().unwrap();
        assert!(msg.contains(names), "{body}: {msg:?} should name {names:?}");
    }
    let r = post(&s, &fixture("support_request"), &[]).await;
    assert_eq!(r.status, 200, "still serving after bad input");
}

#[tokio::test]
async fn another_event_type_is_acknowledged_and_ignored() {
    let body = r#"{"eventId":"e-other","eventType":"FORM_UPDATED","createdAt":"2026-11-30T10:00:00Z","data":{"formId":"wLd9Xa"}}"#;
    let r = post(&state(Settings::default()), body, &[]).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["ignored"], true);
    assert_eq!(r.json["event_type"], "FORM_UPDATED");
    assert!(r.json.get("answers").is_none());
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_in_our_error_shape() {
    let model = Embedder::from_snapshot(&snapshot_path()).map_err(|e| e.to_string());
    let limits = Limits { max_body_bytes: 1024, ..Limits::default() };
    let s = AppState::new(model, limits, 1, MemoryGuard::new(None));
    let r = post(&s, &fixture("support_request"), &[]).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json["error_type"], "payload_too_large");
}

// ---- signatures ----------------------------------------------------------------------------

#[tokio::test]
async fn with_a_secret_only_correctly_signed_deliveries_pass() {
    let s = state(signed());
    let body = with_event_id(&fixture("support_request"), "sig-1");
    let good = post_signed(&s, &body).await;
    assert_eq!(good.status, 200, "{}", good.json);

    let missing = post(&s, &body, &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json["error_type"], "unauthorized");
    assert!(missing.json["error"].as_str().unwrap().contains("missing Tally-Signature"));

    let wrong_secret = sign(b"someone else's secret", body.as_bytes());
    let r = post(&s, &body, &[("tally-signature", &wrong_secret)]).await;
    assert_eq!(r.status, 401);
    assert!(r.json["error"].as_str().unwrap().contains("does not match"));

    // Signed bytes, then altered: one answer changed after signing.
    let sig = sign(SECRET.as_bytes(), body.as_bytes());
    let tampered = body.replace("Priya Natarajan", "Mallory Natarajan");
    let r = post(&s, &tampered, &[("tally-signature", &sig)]).await;
    assert_eq!(r.status, 401, "the signature covers the raw body");

    // Same JSON, different bytes (re-serialized): the signature is over bytes, not meaning.
    let reformatted = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    let r = post(&s, &reformatted, &[("tally-signature", &sig)]).await;
    assert_eq!(r.status, 401);

    let r = post(&s, &body, &[("tally-signature", "%%% not base64 %%%")]).await;
    assert_eq!(r.status, 401);
    assert!(r.json["error"].as_str().unwrap().contains("not base64"));

    // Unsigned garbage is refused for its signature, before anything parses it.
    let r = post(&s, "{not json", &[]).await;
    assert_eq!(r.status, 401, "{}", r.json);
}

#[tokio::test]
async fn without_a_secret_signed_and_unsigned_deliveries_are_accepted() {
    let s = state(Settings::default());
    let r = post(&s, &with_event_id(&fixture("support_request"), "nosecret-1"), &[]).await;
    assert_eq!(r.status, 200);
    let body = with_event_id(&fixture("support_request"), "nosecret-2");
    let r = post_signed(&s, &body).await;
    assert_eq!(r.status, 200, "a signature is not required, and not held against the delivery");
    let r = post(&s, &with_event_id(&body, "nosecret-3"), &[("tally-signature", "bogus")]).await;
    assert_eq!(r.status, 200, "no secret configured: nothing to check against");
}

// ---- forwarding ----------------------------------------------------------------------------

/// A forwarding target on 127.0.0.1: records every request, answers as `respond` says for the
/// n-th (0-based) one.
struct Target {
    url: String,
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Target {
    async fn start(respond: fn(usize) -> (StatusCode, Duration)) -> Target {
        let seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
        let log = seen.clone();
        let handler = move |headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push((headers, body));
                    log.len() - 1
                };
                let (status, delay) = respond(n);
                tokio::time::sleep(delay).await;
                (status, "{}")
            }
        };
        let router = axum::Router::new().route("/hooks/support", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Target { url: format!("http://{addr}/hooks/support"), seen }
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn forwarding(url: &str, timeout_ms: u64, retries: u32) -> Settings {
    Settings {
        forward: Some(ForwardSettings {
            url: ForwardSettings::parse_url(url).unwrap(),
            timeout: Duration::from_millis(timeout_ms),
            retries,
            backoff: Duration::from_millis(20),
        }),
        ..signed()
    }
}

#[tokio::test]
async fn an_accepted_forward_carries_the_idempotency_key_and_the_result() {
    let target = Target::start(|_| (StatusCode::OK, Duration::ZERO)).await;
    let s = state(forwarding(&target.url, 2000, 2));
    let body = with_event_id(&fixture("support_request"), "fwd-ok-1");
    let r = post_signed(&s, &body).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["forwarded"], true);
    assert_eq!(r.json["forward_attempts"], 1);
    assert!(r.json.get("forward_error").is_none());

    let seen = target.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (headers, sent) = &seen[0];
    assert_eq!(headers["idempotency-key"], "fwd-ok-1");
    assert_eq!(headers["content-type"], "application/json");
    let sent: Value = serde_json::from_slice(sent).unwrap();
    assert_eq!(sent["event_id"], "fwd-ok-1");
    assert_eq!(sent["submission_id"], "Zk4Lq7");
    assert_eq!(sent["answers"], r.json["answers"], "the receiver gets the normalized answers");
    assert_eq!(sent["query"], r.json["query"]);
    assert_eq!(sent["matches"], r.json["matches"]);
    assert!(sent.get("forwarded").is_none() && sent.get("took_ms").is_none(), "only the enriched submission is sent");
}

#[tokio::test]
async fn a_replayed_event_gets_the_same_response_and_is_not_forwarded_again() {
    let target = Target::start(|_| (StatusCode::NO_CONTENT, Duration::ZERO)).await;
    let s = state_with_corpus(forwarding(&target.url, 2000, 2));
    let body = with_event_id(&fixture("support_request"), "replay-1");
    let first = post_signed(&s, &body).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert!(!first.json["matches"].as_array().unwrap().is_empty(), "{}", first.json);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let second = post_signed(&s, &body).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.raw, first.raw, "byte for byte the same response (searched again), took_ms included");
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(target.hits(), 1, "forwarded once");

    // The same eventId with other answers is not a redelivery: refused, not forwarded.
    let changed = body.replace("\"eventType\"", "\"extra\":1,\"eventType\"");
    assert_ne!(changed, body);
    let r = post_signed(&s, &changed).await;
    assert_eq!(r.status, 422, "{}", r.json);
    assert_eq!(r.json["error_type"], "idempotency_conflict");
    assert!(r.json["error"].as_str().unwrap().contains("replay-1"), "{}", r.json);
    assert_eq!(target.hits(), 1);

    // A replay must still be signed: memory of an event is no substitute for authentication.
    let r = post(&s, &body, &[]).await;
    assert_eq!(r.status, 401);

    // Two deliveries of a new event at once: one forward.
    let body = with_event_id(&body, "replay-2");
    let (a, b) = tokio::join!(post_signed(&s, &body), post_signed(&s, &body));
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.raw, b.raw);
    assert_eq!(target.hits(), 2);
}

#[tokio::test]
async fn a_failing_target_is_retried_a_bounded_number_of_times_and_reported() {
    let target = Target::start(|_| (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO)).await;
    let s = state(forwarding(&target.url, 2000, 2));
    let body = with_event_id(&fixture("support_request"), "fwd-fail-1");
    let r = post_signed(&s, &body).await;
    assert_eq!(r.status, 502, "Tally must redeliver: {}", r.json);
    assert_eq!(target.hits(), 3, "the first attempt and two retries, no more");
    assert_eq!(r.json["forwarded"], false);
    assert_eq!(r.json["forward_attempts"], 3);
    let err = r.json["forward_error"].as_str().unwrap();
    assert!(err.contains("500") && err.contains("3 attempt"), "{err}");
    assert!(r.json["answers"]["Describe what happened"].is_string(), "the response still carries the result");
    let keys: Vec<_> = target.seen.lock().unwrap().iter().map(|(h, _)| h["idempotency-key"].clone()).collect();
    assert!(keys.iter().all(|k| k == "fwd-fail-1"), "every retry carries the same key");

    // Tally's redelivery is not answered from memory: it is forwarded again.
    let again = post_signed(&s, &body).await;
    assert_eq!(again.status, 502);
    assert_eq!(target.hits(), 6);
    assert!(again.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_rejecting_target_is_not_retried_and_ack_mode_answers_200() {
    let target = Target::start(|_| (StatusCode::UNPROCESSABLE_ENTITY, Duration::ZERO)).await;
    let s = state(Settings { ack_failed_forward: true, ..forwarding(&target.url, 2000, 3) });
    let r = post_signed(&s, &with_event_id(&fixture("support_request"), "fwd-4xx")).await;
    assert_eq!(r.status, 200, "SNAPEMBED_FORWARD_FAILURE_ACK: the failure is reported, not redelivered");
    assert_eq!(r.json["forwarded"], false);
    assert!(r.json["forward_error"].as_str().unwrap().contains("422"));
    assert_eq!(target.hits(), 1, "a 4xx says the request is wrong: retrying cannot help");
}

#[tokio::test]
async fn a_target_that_recovers_within_the_retries_is_a_success() {
    let target = Target::start(|n| if n < 2 { (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO) } else { (StatusCode::OK, Duration::ZERO) }).await;
    let s = state(forwarding(&target.url, 2000, 2));
    let r = post_signed(&s, &with_event_id(&fixture("support_request"), "fwd-recover")).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["forwarded"], true);
    assert_eq!(r.json["forward_attempts"], 3);
}

#[tokio::test]
async fn a_target_slower_than_the_timeout_still_gets_an_answer_to_tally_in_time() {
    let target = Target::start(|_| (StatusCode::OK, Duration::from_secs(30))).await;
    let s = state(forwarding(&target.url, 300, 1));
    let t = Instant::now();
    let r = post_signed(&s, &with_event_id(&fixture("support_request"), "fwd-slow")).await;
    let took = t.elapsed();
    assert_eq!(r.status, 502, "{}", r.json);
    assert!(r.json["forward_error"].as_str().unwrap().contains("did not answer within 300 ms"), "{}", r.json);
    assert_eq!(target.hits(), 2);
    assert!(took < Duration::from_millis(1500), "two 300 ms attempts and a backoff, answered in {took:?}");
}

#[tokio::test]
async fn with_the_default_limits_a_target_that_never_answers_is_given_up_on_within_tallys_10_s() {
    let target = Target::start(|_| (StatusCode::OK, Duration::from_secs(60))).await;
    let defaults = Settings::default();
    let settings = Settings {
        forward: Some(ForwardSettings {
            url: ForwardSettings::parse_url(&target.url).unwrap(),
            timeout: Duration::from_millis(3000),
            retries: 2,
            backoff: Duration::from_millis(200),
        }),
        ..defaults
    };
    let s = state(settings);
    let t = Instant::now();
    let r = post(&s, &with_event_id(&fixture("support_request"), "fwd-never"), &[]).await;
    let took = t.elapsed();
    assert_eq!(r.status, 502, "{}", r.json);
    assert!(took < Duration::from_millis(8500), "the 8 s budget holds: {took:?}");
    assert!(took > Duration::from_millis(6000), "and the retries used it: {took:?}");
}

#[tokio::test]
async fn an_unreachable_target_is_reported() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = state(forwarding(&format!("http://127.0.0.1:{port}/hooks"), 500, 1));
    let r = post_signed(&s, &with_event_id(&fixture("support_request"), "fwd-refused")).await;
    assert_eq!(r.status, 502);
    let err = r.json["forward_error"].as_str().unwrap();
    assert!(err.contains("could not reach") && err.contains("2 attempt"), "{err}");
    assert!(!err.contains("/hooks"), "the target URL (which may carry a token) stays out of the response: {err}");
}

// ---- Lambda --------------------------------------------------------------------------------

/// A Lambda Function URL event (payload 2.0) for `POST /webhook/tally`, as AWS builds it.
fn function_url_webhook(body: &str, base64: bool, headers: &[(&str, &str)]) -> String {
    use base64::Engine;
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(data_path("lambda/function_url.json")).unwrap()).unwrap();
    ev["rawPath"] = json!("/webhook/tally");
    ev["requestContext"]["http"]["path"] = json!("/webhook/tally");
    ev["requestContext"]["http"]["userAgent"] = json!("Tally Webhooks");
    ev["headers"]["user-agent"] = json!("Tally Webhooks");
    for (k, v) in headers {
        ev["headers"][*k] = json!(v);
    }
    ev["body"] = json!(if base64 { base64::engine::general_purpose::STANDARD.encode(body) } else { body.to_owned() });
    ev["isBase64Encoded"] = json!(base64);
    ev.to_string()
}

async fn through_lambda(state: &AppState, event: &str) -> (u16, Value) {
    let req = lambda_http::request::from_str(event).unwrap();
    let resp = snapembed::service::lambda::service(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn lambda_function_url_with_a_base64_body_is_verified_on_the_decoded_bytes() {
    let target = Target::start(|_| (StatusCode::OK, Duration::ZERO)).await;
    let s = state(forwarding(&target.url, 2000, 1));
    let body = with_event_id(&fixture("support_request"), "lambda-b64");
    let sig = sign(SECRET.as_bytes(), body.as_bytes());

    let (status, first) = through_lambda(&s, &function_url_webhook(&body, true, &[("tally-signature", &sig)])).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["event_id"], "lambda-b64");
    assert_eq!(first["answers"]["Which plan are you on?"], json!(["Growth"]));
    assert_eq!(first["forwarded"], true);
    assert_eq!(target.seen.lock().unwrap()[0].0["idempotency-key"], "lambda-b64");

    // The signature of the base64 text is not the signature of the body.
    let over_base64 = {
        use base64::Engine;
        sign(SECRET.as_bytes(), base64::engine::general_purpose::STANDARD.encode(&body).as_bytes())
    };
    let other = with_event_id(&body, "lambda-b64-2");
    let (status, v) = through_lambda(&s, &function_url_webhook(&other, true, &[("tally-signature", &over_base64)])).await;
    assert_eq!(status, 401, "{v}");

    let (status, v) = through_lambda(&s, &function_url_webhook(&other, true, &[])).await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["error_type"], "unauthorized");

    // A redelivery through Lambda: same answer, no second forward.
    let (status, again) = through_lambda(&s, &function_url_webhook(&body, true, &[("tally-signature", &sig)])).await;
    assert_eq!(status, 200);
    assert_eq!(again, first);
    assert_eq!(target.hits(), 1);
}

#[tokio::test]
async fn lambda_function_url_plain_body_malformed_and_ignored() {
    let s = state(signed());
    let body = with_event_id(&fixture("sparse_answers"), "lambda-plain");
    let sig = sign(SECRET.as_bytes(), body.as_bytes());
    let (status, v) = through_lambda(&s, &function_url_webhook(&body, false, &[("tally-signature", &sig)])).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["submission_id"], "mP3xW9");

    let bad = r#"{"eventId":"lambda-bad","eventType":"FORM_RESPONSE","data":{"submissionId":"s","fields":"none"}}"#;
    let sig = sign(SECRET.as_bytes(), bad.as_bytes());
    let (status, v) = through_lambda(&s, &function_url_webhook(bad, true, &[("tally-signature", &sig)])).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("data.fields"));

    let other = r#"{"eventId":"lambda-other","eventType":"FORM_DELETED","data":null}"#;
    let sig = sign(SECRET.as_bytes(), other.as_bytes());
    let (status, v) = through_lambda(&s, &function_url_webhook(other, true, &[("tally-signature", &sig)])).await;
    assert_eq!(status, 200);
    assert_eq!(v["ignored"], true);
}

// ---- the built binary ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reads_the_webhook_settings_from_its_environment() {
    let target = Target::start(|_| (StatusCode::OK, Duration::ZERO)).await;
    let secret = format!("{SECRET}\n"); // as pasted into a dashboard
    let server = tokio::task::block_in_place(|| {
        crate::server::Server::start(&[
            ("TALLY_SIGNING_SECRET", &secret),
            ("SNAPEMBED_FORWARD_URL", &target.url),
            ("SNAPEMBED_TALLY_FIELDS", "Describe what happened"),
        ])
    });
    assert!(
        !server.log_before_ready.iter().any(|l| l.contains("TALLY_SIGNING_SECRET is not set")),
        "no warning with a secret"
    );
    let body = with_event_id(&fixture("support_request"), "binary-1");
    let sig = sign(SECRET.as_bytes(), body.as_bytes());
    let addr = server.addr.clone();
    let (status, text) = tokio::task::spawn_blocking(move || {
        http_request_with_headers(&addr, "POST", "/webhook/tally", &[("Tally-Signature", &sig)], Some(&body))
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["forwarded"], true);
    assert!(v["query"].as_str().unwrap().starts_with("Since Friday"), "SNAPEMBED_TALLY_FIELDS applies: {}", v["query"]);
    let addr = server.addr.clone();
    let (status, _) = tokio::task::spawn_blocking(move || {
        http_request_with_headers(&addr, "POST", "/webhook/tally", &[], Some("{}"))
    })
    .await
    .unwrap();
    assert_eq!(status, 401, "the secret from the environment is enforced");
    assert_eq!(target.hits(), 1);

    let unsigned = tokio::task::block_in_place(|| crate::server::Server::start(&[]));
    assert!(
        unsigned.log_before_ready.iter().any(|l| l.contains("TALLY_SIGNING_SECRET is not set")),
        "without a secret, start-up warns: {:?}",
        unsigned.log_before_ready
    );
}

#[test]
fn a_bad_forward_url_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snapembed"))
        .args(["serve"])
        .env("SNAPEMBED_FORWARD_URL", "ftp://example.invalid/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SNAPEMBED_FORWARD_URL"), "{}", String::from_utf8_lossy(&out.stderr));
}
