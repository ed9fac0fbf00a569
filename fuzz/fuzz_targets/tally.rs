//! The Tally webhook handler (`POST /webhook/tally`) with a signing secret: signature check on
//! the raw bytes, then the payload parser, answers → query text, and the reply. The first byte
//! picks the mode: even, the body is signed as Tally would sign it (so the fuzzer reaches the
//! parser), and it must never be refused for its signature; odd, the next byte is the length
//! of a fuzzed `Tally-Signature` header, and a delivery is only accepted when that header
//! really is the body's HMAC. A processed delivery's answer is always a JSON object.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use snapembed::tally::{Reply, Settings, Webhook, WebhookError};

const SECRET: &[u8] = b"fuzz-signing-secret";

fn webhook() -> &'static Webhook {
    static HOOK: OnceLock<Webhook> = OnceLock::new();
    HOOK.get_or_init(|| match Webhook::new(Settings { secret: Some(SECRET.to_vec()), max_query_chars: 2000, ..Settings::default() }) {
        Ok(w) => w,
        Err(e) => panic!("webhook settings: {e}"),
    })
}

fn mac(body: &[u8]) -> Vec<u8> {
    let Ok(mut m) = Hmac::<sha2::Sha256>::new_from_slice(SECRET) else { unreachable!("HMAC takes any key length") };
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let (header, body, signed) = if mode % 2 == 0 {
        (base64::engine::general_purpose::STANDARD.encode(mac(rest)).into_bytes(), rest, true)
    } else {
        let Some((&n, rest)) = rest.split_first() else { return };
        let n = (n as usize).min(rest.len());
        (rest[..n].to_vec(), &rest[n..], false)
    };
    let search = |query: String| async move {
        assert!(!query.is_empty() && query.chars().count() <= 2000, "query of {} chars", query.chars().count());
        Ok::<_, String>(vec![serde_json::json!({"id": "doc-1", "score": 0.5})])
    };
    let result = snapembed_fuzz::runtime().block_on(webhook().handle(Some(&header), body, Instant::now(), search));
    match result {
        Err(WebhookError::Signature(e)) => assert!(!signed, "a correctly signed body was refused: {e}"),
        Err(WebhookError::Payload(_)) => {}
        Ok(reply) => {
            if !signed {
                let given = base64::engine::general_purpose::STANDARD.decode(header.trim_ascii());
                assert_eq!(given.ok(), Some(mac(body)), "accepted a signature that is not the body's HMAC");
            }
            if let Reply::Processed { body, .. } = reply {
                let v: serde_json::Value = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => panic!("the reply is not JSON: {e}"),
                };
                assert!(v.is_object());
            }
        }
    }
});
