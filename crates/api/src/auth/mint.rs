//! Minting tokens with the configured HS256 secret, for `hookline-api token` and tests.

use std::time::Duration;

use jsonwebtoken::{encode, EncodingKey, Header};

use super::{Brands, Claims};

pub fn mint_hs256(
    secret: &str,
    brands: Brands,
    scopes: &[String],
    ttl: Duration,
    subject: Option<String>,
) -> anyhow::Result<String> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: subject,
        exp: now + ttl.as_secs(),
        iat: Some(now),
        scope: scopes.join(" "),
        brands,
    };
    Ok(encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}
