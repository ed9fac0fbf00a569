//! The Tally webhook as a feature: a delivery's raw body in, the bytes to answer with out. Knows
//! nothing of HTTP frameworks; the service's handler passes the body, the signature header and a
//! search function, and maps the [`Reply`] to a status.
//!
//! - [`signature`]: `Tally-Signature` (HMAC-SHA256 of the raw body), checked before parsing
//! - [`payload`]: Tally's `FORM_RESPONSE` types; errors name the JSON path of what is wrong
//! - [`answers`]: fields → `{label: value}` with option ids resolved, and the query text
//! - [`forward`]: POST of the enriched result with `Idempotency-Key`, timeout, bounded retries
//! - [`record`]: eventId → a receipt, so a redelivery gets the same answer and no second forward
//!
//! One delivery: verify → parse (another event type is acknowledged and ignored) → normalize →
//! search → forward → remember a receipt. A redelivery of a completed eventId is normalized and
//! searched again and answered with the receipt's forward outcome and time: the same bytes, for
//! a corpus that has not changed, and no second forward. The same eventId with another payload
//! is refused.
//!
//! A failed search (no corpus loaded, overload) does not fail the delivery: the answers are still
//! forwarded and the response carries `search_error`. Answering 5xx would make Tally redeliver
//! for a day (5 min, 30 min, 1 h, 6 h, 1 day) over something a redelivery rarely fixes, and the
//! receiver can run the search itself later from the answers it got.
//!
//! A failed forward, by default, does fail the delivery: the response is a 502 that still carries
//! everything (`forwarded: false`, `forward_error`, the answers and matches), it is logged with
//! the eventId, and Tally redelivers on its schedule until the receiver takes it. That is what a
//! team that must never lose a submission wants; the cost is a duplicate at the receiver when a
//! forward did arrive but its answer did not reach us in time, which the `Idempotency-Key` lets
//! the receiver drop. `SNAPEMBED_FORWARD_FAILURE_ACK=true` answers 200 instead, for receivers
//! that cannot dedupe and prefer a logged loss to a duplicate.

pub mod answers;
pub mod forward;
pub mod payload;
pub mod record;
pub mod signature;

use std::future::Future;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use answers::{Answers, QueryFields};
pub use forward::{ForwardConfigError, ForwardError, ForwardSettings, Forwarder};
pub use payload::{Event, PayloadError};
pub use record::Recorded;
pub use signature::SignatureError;

/// How the webhook is set up (from `serve`'s flags; see `service::config::TallyArgs`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TALLY_SIGNING_SECRET`; `None` accepts unsigned deliveries.
    pub secret: Option<Vec<u8>>,
    pub fields: QueryFields,
    /// Matches asked of the search.
    pub top_k: usize,
    /// Most characters of query text (the rest of a very long submission is not searched).
    pub max_query_chars: usize,
    pub forward: Option<ForwardSettings>,
    /// Answer 200 when the forward failed (default: 502, so that Tally redelivers).
    pub ack_failed_forward: bool,
    /// From the request's arrival to the answer, forwarding included: Tally gives up at 10 s,
    /// and the answer must still cross the network.
    pub budget: Duration,
    /// Events remembered for idempotency.
    pub remember: NonZeroUsize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            secret: None,
            fields: QueryFields::TextLike,
            top_k: 5,
            max_query_chars: 50_000,
            forward: None,
            ack_failed_forward: false,
            budget: Duration::from_secs(8),
            remember: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// Why a delivery was refused before any processing.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A completed event's id came back with another payload: not a redelivery.
    #[error("event {event_id} was delivered before with a different payload; a redelivery must repeat it unchanged")]
    Reused { event_id: String },
}

/// The answer to a delivery.
#[derive(Debug)]
pub enum Reply {
    /// Another event type: acknowledged, nothing done.
    Ignored(Ignored),
    /// A form response: the JSON to answer with.
    Processed { body: Vec<u8>, outcome: Outcome },
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ignored {
    pub ignored: bool,
    pub event_id: String,
    pub event_type: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Processed now (and forwarded, when a target is set).
    Delivered,
    /// The same response as the first delivery of this eventId; nothing was run or forwarded.
    Replayed,
    /// Processed, but the forward failed: not remembered, so a redelivery forwards again.
    ForwardFailed { acknowledge: bool },
}

/// What is forwarded: the submission, its answers and what the search found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Enriched {
    pub event_id: String,
    pub event_type: String,
    pub submission_id: String,
    pub response_id: Option<String>,
    pub respondent_id: Option<String>,
    pub form_id: Option<String>,
    pub form_name: Option<String>,
    pub created_at: Option<String>,
    /// The text searched with (empty when no answer had any).
    pub query: String,
    /// The query was cut to `max_query_chars`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub query_truncated: bool,
    /// `{label: value}` in form order.
    #[schema(value_type = Object)]
    pub answers: Answers,
    /// Search hits.
    #[schema(value_type = Vec<crate::search::SearchHit>)]
    pub matches: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_error: Option<String>,
}

/// What Tally gets back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TallyResult)]
pub struct Response<'a> {
    #[serde(flatten)]
    enriched: &'a Enriched,
    forwarded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    forward_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forward_attempts: Option<u32>,
    took_ms: f64,
}

pub struct Webhook {
    settings: Settings,
    forwarder: Option<Forwarder>,
    record: record::Record<Receipt>,
}

impl Default for Webhook {
    /// Unsigned deliveries accepted, nothing forwarded.
    fn default() -> Webhook {
        Webhook::without_forwarding(Settings::default())
    }
}

impl Webhook {
    pub fn new(settings: Settings) -> Result<Webhook, ForwardConfigError> {
        let forwarder = settings.forward.clone().map(Forwarder::new).transpose()?;
        Ok(Webhook { record: record::Record::new(settings.remember), forwarder, settings })
    }

    fn without_forwarding(settings: Settings) -> Webhook {
        let settings = Settings { forward: None, ..settings };
        Webhook { record: record::Record::new(settings.remember), forwarder: None, settings }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Events remembered, and the most that are (past it, the least recent are forgotten).
    pub fn remembered(&self) -> (usize, usize) {
        self.record.usage()
    }

    /// Handles one delivery that arrived at `started`. `search` gets the query text and returns
    /// the matches (any serializable hit), or why there are none; a redelivery searches again
    /// (the same matches, from a mapped corpus) but never forwards again.
    pub async fn handle<S, Fut>(
        &self,
        signature: Option<&[u8]>,
        body: &[u8],
        started: Instant,
        search: S,
    ) -> Result<Reply, WebhookError>
    where
        S: Fn(String) -> Fut,
        Fut: Future<Output = Result<Vec<Value>, String>>,
    {
        if let Some(secret) = &self.settings.secret {
            signature::verify(secret, signature, body)?;
        }
        let (envelope, data) = match payload::parse(body)? {
            Event::FormResponse { envelope, data } => (envelope, data),
            Event::Other(envelope) => {
                tracing::info!(event_id = %envelope.event_id, event_type = %envelope.event_type, "tally event ignored");
                return Ok(Reply::Ignored(Ignored {
                    ignored: true,
                    reason: format!("only {} events are processed", payload::FORM_RESPONSE),
                    event_id: envelope.event_id,
                    event_type: envelope.event_type,
                }));
            }
        };
        let digest: [u8; 32] = Sha256::digest(body).into();
        let recorded = self
            .record
            .run(&envelope.event_id, || async {
                let enriched = self.enrich(&envelope, &data, started, &search).await;
                self.deliver(&enriched, digest, started).await
            })
            .await;
        Ok(match recorded {
            Recorded::Fresh(body) => Reply::Processed { body, outcome: Outcome::Delivered },
            Recorded::Replayed(receipt) => {
                if receipt.digest != digest {
                    tracing::warn!(event_id = %envelope.event_id, "tally event redelivered with another payload: refused");
                    return Err(WebhookError::Reused { event_id: envelope.event_id });
                }
                tracing::info!(event_id = %envelope.event_id, "tally event already delivered: answered again, not forwarded");
                let enriched = self.enrich(&envelope, &data, started, &search).await;
                let body = render(&enriched, &receipt.forwarding, receipt.took_ms);
                Reply::Processed { body, outcome: Outcome::Replayed }
            }
            Recorded::Failed(body) => Reply::Processed {
                body,
                outcome: Outcome::ForwardFailed { acknowledge: self.settings.ack_failed_forward },
            },
        })
    }

    /// Normalizes the answers and searches with them. A failed search (no corpus, overload, out
    /// of time) leaves `search_error` and no matches.
    async fn enrich<S, Fut>(&self, envelope: &payload::Envelope, data: &payload::FormResponse, started: Instant, search: &S) -> Enriched
    where
        S: Fn(String) -> Fut,
        Fut: Future<Output = Result<Vec<Value>, String>>,
    {
        let answers = answers::normalize(&data.fields);
        let mut query = answers::query_text(&answers, &self.settings.fields);
        let query_truncated = answers::truncate_chars(&mut query, self.settings.max_query_chars);
        // The search may queue behind other requests for the compute threads; it gets the
        // budget less what one forward attempt needs, so Tally is answered in time regardless.
        let reserve = self.forwarder.as_ref().map_or(Duration::ZERO, |f| f.settings().timeout.min(self.settings.budget / 2));
        let search_deadline = started + self.settings.budget.saturating_sub(reserve);
        let (matches, search_error) = if query.is_empty() {
            (Vec::new(), Some("no answer has text to search with".to_owned()))
        } else {
            let searched = tokio::time::timeout_at(search_deadline.into(), search(query.clone())).await;
            let failed = match searched {
                Ok(Ok(m)) => Ok(m),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!(
                    "the search did not finish within the webhook's budget ({} ms)",
                    search_deadline.saturating_duration_since(started).as_millis()
                )),
            };
            match failed {
                Ok(m) => (m, None),
                Err(e) => {
                    tracing::warn!(event_id = %envelope.event_id, error = %e, "tally webhook: search failed; answering without matches");
                    (Vec::new(), Some(e))
                }
            }
        };
        let submission_id = data.submission_id.clone().or_else(|| data.response_id.clone()).unwrap_or_default();
        Enriched {
            event_id: envelope.event_id.clone(),
            event_type: envelope.event_type.clone(),
            submission_id,
            response_id: data.response_id.clone(),
            respondent_id: data.respondent_id.clone(),
            form_id: data.form_id.clone(),
            form_name: data.form_name.clone(),
            created_at: data.created_at.clone().or_else(|| envelope.created_at.clone()),
            query,
            query_truncated,
            answers,
            matches,
            search_error,
        }
    }

    /// Forwards (when a target is set) and makes the response. `Ok` carries the receipt to
    /// remember and the response; `Err` the response of a delivery whose forward failed (so it
    /// is not remembered).
    async fn deliver(&self, enriched: &Enriched, digest: [u8; 32], started: Instant) -> Result<(Receipt, Vec<u8>), Vec<u8>> {
        let forwarding = match &self.forwarder {
            None => Forwarding::default(),
            Some(f) => {
                let sent = match serde_json::to_vec(enriched) {
                    Ok(body) => f.send(&enriched.event_id, body, started + self.settings.budget).await,
                    Err(e) => Err(ForwardError::Transport { message: format!("could not serialize the result: {e}"), attempts: 0 }),
                };
                match sent {
                    Ok(attempts) => {
                        tracing::info!(event_id = %enriched.event_id, attempts, "tally submission forwarded");
                        Forwarding { forwarded: true, error: None, attempts: Some(attempts) }
                    }
                    Err(e) => {
                        tracing::error!(event_id = %enriched.event_id, submission_id = %enriched.submission_id, error = %e, "tally webhook: forward failed");
                        Forwarding { forwarded: false, attempts: Some(e.attempts()), error: Some(e.to_string()) }
                    }
                }
            }
        };
        let took_ms = started.elapsed().as_secs_f64() * 1e3;
        let body = render(enriched, &forwarding, took_ms);
        if forwarding.error.is_some() {
            return Err(body);
        }
        Ok((Receipt { digest, forwarding, took_ms }, body))
    }
}

/// What a completed delivery leaves in the record: enough to answer its redelivery with the
/// same bytes (the rest is rebuilt from the payload), and to tell a redelivery from another
/// payload sent under the same eventId.
#[derive(Debug, Clone)]
struct Receipt {
    /// SHA-256 of the delivery's body.
    digest: [u8; 32],
    forwarding: Forwarding,
    took_ms: f64,
}

/// How the forward went, as the response reports it.
#[derive(Debug, Clone, Default)]
struct Forwarding {
    forwarded: bool,
    error: Option<String>,
    /// `None` when nothing is forwarded.
    attempts: Option<u32>,
}

/// The response's bytes.
fn render(enriched: &Enriched, forwarding: &Forwarding, took_ms: f64) -> Vec<u8> {
    let response = Response {
        enriched,
        forwarded: forwarding.forwarded,
        forward_error: forwarding.error.clone(),
        forward_attempts: forwarding.attempts,
        took_ms,
    };
    serde_json::to_vec(&response)
        .unwrap_or_else(|e| format!(r#"{{"event_id":{:?},"error":"response not serializable: {e}"}}"#, enriched.event_id).into_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BODY: &str = r#"{"eventId":"ev-1","eventType":"FORM_RESPONSE","createdAt":"2026-11-30T10:00:00.000Z",
        "data":{"responseId":"r1","submissionId":"s1","formId":"f1","formName":"Support","createdAt":"2026-11-30T10:00:00.000Z",
        "fields":[{"key":"q1","label":"Problem","type":"TEXTAREA","value":"Cannot reset my password"}]}}"#;

    async fn handle(w: &Webhook, sig: Option<&[u8]>, body: &str) -> Result<Reply, WebhookError> {
        w.handle(sig, body.as_bytes(), Instant::now(), |q| async move { Ok(vec![Value::String(q)]) }).await
    }

    #[tokio::test]
    async fn signed_webhook_checks_before_parsing() {
        let w = Webhook::new(Settings { secret: Some(b"k".to_vec()), ..Settings::default() }).unwrap();
        // Not even JSON, but the signature is what is reported: nothing is parsed unsigned.
        assert!(matches!(handle(&w, None, "{").await, Err(WebhookError::Signature(SignatureError::Missing))));
        let sig = signature::sign(b"k", BODY.as_bytes());
        let Ok(Reply::Processed { body, outcome }) = handle(&w, Some(sig.as_bytes()), BODY).await else { panic!() };
        assert_eq!(outcome, Outcome::Delivered);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["matches"][0], "Problem: Cannot reset my password", "the default query");
        assert_eq!(v["submission_id"], "s1");
        assert_eq!(v["forwarded"], false);
        assert!(v.get("forward_error").is_none());
    }

    #[tokio::test]
    async fn a_replay_gets_the_same_bytes_and_another_payload_under_its_id_is_refused() {
        let w = Webhook::default();
        let Ok(Reply::Processed { body: first, .. }) = handle(&w, None, BODY).await else { panic!() };
        tokio::time::sleep(Duration::from_millis(2)).await;
        let Ok(Reply::Processed { body, outcome }) = handle(&w, None, BODY).await else { panic!() };
        assert_eq!(outcome, Outcome::Replayed);
        assert_eq!(body, first, "searched again, answered with the first delivery's time: the same bytes");
        assert_eq!(w.remembered(), (1, 4096));

        let other = BODY.replace("Cannot reset my password", "Something else");
        let Err(WebhookError::Reused { event_id }) = handle(&w, None, &other).await else { panic!("another payload is not a redelivery") };
        assert_eq!(event_id, "ev-1");
    }

    #[tokio::test]
    async fn a_search_slower_than_the_budget_is_abandoned_in_time() {
        let w = Webhook::new(Settings { budget: Duration::from_millis(200), ..Settings::default() }).unwrap();
        let t = Instant::now();
        let slow = |_| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(Vec::new())
        };
        let Ok(Reply::Processed { body, outcome }) = w.handle(None, BODY.as_bytes(), t, slow).await else { panic!() };
        assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
        assert_eq!(outcome, Outcome::Delivered);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v["search_error"].as_str().unwrap().contains("within the webhook's budget (200 ms)"), "{v}");
    }

    #[tokio::test]
    async fn a_search_failure_still_answers_with_the_answers() {
        let w = Webhook::default();
        let r = w.handle(None, BODY.as_bytes(), Instant::now(), |_| async { Err("no corpus is loaded".to_owned()) }).await;
        let Ok(Reply::Processed { body, outcome }) = r else { panic!() };
        assert_eq!(outcome, Outcome::Delivered);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["search_error"], "no corpus is loaded");
        assert_eq!(v["matches"], serde_json::json!([]));
        assert_eq!(v["answers"]["Problem"], "Cannot reset my password");
    }
}
