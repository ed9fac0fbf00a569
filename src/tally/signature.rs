//! Tally's request signature: with a signing secret set on the webhook, every delivery carries
//! `Tally-Signature: base64(HMAC-SHA256(secret, raw body))`. It is checked on the bytes as
//! received, before anything parses them (re-serialized JSON would not match), and compared in
//! constant time (`Mac::verify_slice`) so the comparison leaks nothing about the expected value.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Tally-Signature header (this webhook requires Tally's signing secret)")]
    Missing,
    #[error("the Tally-Signature header is not base64")]
    Malformed,
    #[error("the Tally-Signature header does not match the body and the signing secret")]
    Mismatch,
}

/// Checks `header` (the raw header value, if any) against `body`.
pub fn verify(secret: &[u8], header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(header.trim_ascii())
        .map_err(|_| SignatureError::Malformed)?;
    let mac = mac(secret, body).ok_or(SignatureError::Mismatch)?;
    mac.verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

/// The header value Tally would send for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let tag = mac(secret, body).map(|m| m.finalize().into_bytes().to_vec()).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(tag)
}

/// HMAC takes a key of any length (a longer one is hashed first), so this is never `None`;
/// the type allows for it, and a `None` fails verification rather than panicking.
fn mac(secret: &[u8], body: &[u8]) -> Option<HmacSha256> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret).ok()?;
    m.update(body);
    Some(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_answer() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        let hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let raw = base64::engine::general_purpose::STANDARD.decode(&sig).unwrap();
        let got: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, hex);
    }

    #[test]
    fn good_bad_missing_and_malformed() {
        let body = br#"{"eventId":"x"}"#;
        let sig = sign(b"s3cret", body);
        assert_eq!(verify(b"s3cret", Some(sig.as_bytes()), body), Ok(()));
        assert_eq!(verify(b"s3cret", Some(format!(" {sig}\t").as_bytes()), body), Ok(()), "surrounding blanks are not part of it");
        assert_eq!(verify(b"other", Some(sig.as_bytes()), body), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"s3cret", Some(sig.as_bytes()), b"{\"eventId\": \"x\"}"), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"s3cret", None, body), Err(SignatureError::Missing));
        assert_eq!(verify(b"s3cret", Some(b"not base64!"), body), Err(SignatureError::Malformed));
        assert_eq!(verify(b"s3cret", Some(&sig.as_bytes()[..8]), body), Err(SignatureError::Mismatch), "a prefix is not enough");
    }
}
