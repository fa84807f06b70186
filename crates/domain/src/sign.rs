//! Delivery signatures (docs/architecture.md, "Delivery contract"), both HMAC-SHA256 over the exact body bytes
//! sent:
//!
//! - `X-FDX-SC-Signature`: lower-case hex, keyed with the secret as given (FDX spec);
//! - `webhook-signature`: `v1,` + standard base64 over `{msg_id}.{timestamp}.{body}`, keyed per
//!   the Standard Webhooks spec, space-separated when several secrets are active (rotation).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::WebhookSecret;

/// HMAC-SHA256 of the concatenated `parts`; hashing in parts avoids copying the body.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .expect("HMAC accepts keys of any length (RFC 2104 hashes long keys, pads short ones)");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The `X-FDX-SC-Signature` value: lower-case hex HMAC-SHA256 of `body`, keyed with
/// [`WebhookSecret::fdx_key`].
pub fn fdx_signature(secret: &WebhookSecret, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.fdx_key(), &[body]))
}

/// One Standard Webhooks signature: `v1,` + standard base64 of HMAC-SHA256 over
/// `{msg_id}.{timestamp}.{body}`, keyed with [`WebhookSecret::standard_webhooks_key`].
/// `msg_id` is the `webhook-id` header (the event id) and `timestamp` the `webhook-timestamp`
/// header (unix seconds); the receiver recomputes it from those headers.
pub fn standard_webhooks_signature(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let timestamp = timestamp.to_string();
    let mac = hmac_sha256(
        &secret.standard_webhooks_key(),
        &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    format!("v1,{}", STANDARD.encode(mac))
}

/// The `webhook-signature` header: one signature per secret, space-separated, as the Standard
/// Webhooks spec defines for key rotation. Pass the new secret first, then the old, so a receiver
/// that only checks the first signature moves to the new key as soon as it has it.
pub fn standard_webhooks_header(
    secrets: &[&WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| standard_webhooks_signature(secret, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> WebhookSecret {
        WebhookSecret::parse(s).expect("valid secret")
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(
                b"Jefe",
                &[b"what do ya ", b"want for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn fdx_signature_is_lowercase_hex_hmac_of_the_body_with_the_secret_as_given() {
        // python3: hmac.new(b"top_secret", body, hashlib.sha256).hexdigest()
        let body = br#"{"id":"1","type":"ORDER_EVENTS.OMS.ORDER_SHIPPED"}"#;
        assert_eq!(
            fdx_signature(&secret("top_secret"), body),
            "aac18f8ba679404c09c26d33733d278c308d4cce34d642addd51085643ecc890"
        );
    }

    #[test]
    fn standard_webhooks_official_test_vector() {
        let secret = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            standard_webhooks_signature(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn standard_webhooks_signature_of_a_non_whsec_secret_uses_its_bytes() {
        // python3: base64.b64encode(hmac.new(b"top_secret", b"msg_1.1700000000.{}", sha256).digest())
        assert_eq!(
            standard_webhooks_signature(&secret("top_secret"), "msg_1", 1_700_000_000, b"{}"),
            "v1,PYThz8P0hLQBfmhGKQ8iy1DNH5DRT95OtGNnz2mkS3Q="
        );
    }

    #[test]
    fn header_lists_one_signature_per_secret_in_the_order_given() {
        let new = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let old = secret("top_secret");
        assert_eq!(
            standard_webhooks_header(&[&new, &old], "msg_1", 1_700_000_000, b"{}"),
            format!(
                "{} {}",
                standard_webhooks_signature(&new, "msg_1", 1_700_000_000, b"{}"),
                "v1,PYThz8P0hLQBfmhGKQ8iy1DNH5DRT95OtGNnz2mkS3Q="
            )
        );
        assert_eq!(
            standard_webhooks_header(&[&old], "msg_1", 1_700_000_000, b"{}"),
            "v1,PYThz8P0hLQBfmhGKQ8iy1DNH5DRT95OtGNnz2mkS3Q="
        );
        assert_eq!(standard_webhooks_header(&[], "msg_1", 0, b"{}"), "");
    }
}
