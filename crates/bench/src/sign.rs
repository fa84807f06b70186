//! The delivery signatures of the README's "What an endpoint receives", written from the specs
//! with hmac, sha2 and base64 (not the domain crate's code, so the check is independent):
//! `X-FDX-SC-Signature` is the hex HMAC-SHA256 of the body keyed with the secret's bytes;
//! `webhook-signature` is `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the
//! base64-decoded part after `whsec_` (or the secret's bytes without that prefix).

use base64::{engine::general_purpose::STANDARD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn standard_key(secret: &str) -> Result<Vec<u8>, String> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD
            .decode(encoded)
            .map_err(|e| format!("secret after whsec_ is not base64: {e}")),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// The two signature header values for `body`: (`X-FDX-SC-Signature`, `webhook-signature`).
pub fn sign(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<(String, String), String> {
    let fdx = hex::encode(mac(secret.as_bytes(), &[body]));
    let key = standard_key(secret)?;
    let standard = mac(
        &key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    Ok((fdx, format!("v1,{}", STANDARD.encode(standard))))
}

/// The headers a delivery carries, as far as the check needs them.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub fdx: Option<&'a str>,
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks both signatures of a delivery against `secret`; `Err` says what is wrong.
/// `webhook-signature` may hold several space-separated signatures (a rotation): one must match.
pub fn verify(secret: &str, headers: Signed<'_>, body: &[u8]) -> Result<(), String> {
    let (Some(fdx), Some(id), Some(timestamp), Some(signature)) = (
        headers.fdx,
        headers.id,
        headers.timestamp,
        headers.signature,
    ) else {
        return Err(format!("signature headers missing: {headers:?}"));
    };
    let (want_fdx, want_standard) = sign(secret, id, timestamp, body)?;
    if !fdx.eq_ignore_ascii_case(&want_fdx) {
        return Err("X-FDX-SC-Signature does not match".to_owned());
    }
    if !signature.split(' ').any(|s| s == want_standard) {
        return Err("webhook-signature does not match".to_owned());
    }
    Ok(())
}
