//! An independent check of the delivery signatures, written from the specs (FDX:
//! hex HMAC-SHA256 of the body keyed with the secret; Standard Webhooks: base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}`, keyed with the base64-decoded part after `whsec_`), using hmac,
//! sha2 and base64 directly rather than the domain crate's signing code.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::receiver::Received;

fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn standard_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD.decode(encoded).expect("whsec base64"),
        None => secret.as_bytes().to_vec(),
    }
}

/// Panics unless `X-FDX-SC-Signature` is `current`'s and `webhook-signature` holds exactly one
/// `v1,` signature per secret in `secrets`, in that order.
pub fn assert_signed(request: &Received, secrets: &[&str]) {
    let body = &request.body;
    let fdx = hex::encode(mac(secrets[0].as_bytes(), body));
    assert_eq!(
        request.header("x-fdx-sc-signature"),
        fdx,
        "X-FDX-SC-Signature"
    );

    let id = request.header("webhook-id");
    let timestamp = request.header("webhook-timestamp");
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected: Vec<String> = secrets
        .iter()
        .map(|s| format!("v1,{}", STANDARD.encode(mac(&standard_key(s), &signed))))
        .collect();
    let got: Vec<&str> = request.header("webhook-signature").split(' ').collect();
    assert_eq!(got, expected, "webhook-signature");
}
