//! Bearer-token authentication and authorisation.
//!
//! Tokens are JWTs (RFC 7519) verified with keys from configuration: an HS256 secret and/or
//! RS256 public keys. The algorithm a token names selects the key family, and each family only
//! ever verifies with its own keys, so a token signed with HS256 using an RSA public key as the
//! secret (algorithm confusion) fails, and `alg: none` is never accepted. `exp` is required;
//! `iss` and `aud` are checked when configured.
//!
//! What a token may do comes from two claims:
//! - `scope`: the standard space-separated list (RFC 8693 §4.2). Managing webhooks needs
//!   [`SCOPE_WEBHOOKS`] (the flexEngage spec's scope); publishing events needs
//!   [`SCOPE_PUBLISH`].
//! - `brands`: an array of brand ids, or `"*"` for every brand.
//!
//! Layout: `mod.rs` (claims, verification), `extract.rs` (the [`Principal`] extractor), `mint.rs`
//! (tokens for `hookline-api token`).

mod extract;
mod mint;

pub use extract::{Admitted, FdxManager, Manager, Principal, Publisher};
pub use mint::mint_hs256;

use hookline_config::{AuthSettings, ExposeSecret};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// flexEngage spec: `security: bearerAuth: [flexengage.gateway/order.events.create]`.
pub const SCOPE_WEBHOOKS: &str = "flexengage.gateway/order.events.create";
/// Hookline's scope for event ingest (producers, not brands, hold it).
pub const SCOPE_PUBLISH: &str = "flexengage.gateway/events.publish";

/// Which brands a token may act for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Brands {
    /// `"*"`: every brand (operators, the platform's producer).
    All(AllBrands),
    List(Vec<String>),
}

/// The literal `"*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllBrands {
    #[serde(rename = "*")]
    All,
}

impl Brands {
    pub fn allows(&self, brand: &str) -> bool {
        match self {
            Brands::All(_) => true,
            Brands::List(list) => list.iter().any(|b| b == brand),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default)]
    pub scope: String,
    #[serde(default = "no_brands")]
    pub brands: Brands,
}

fn no_brands() -> Brands {
    Brands::List(Vec::new())
}

/// Why a token was refused; always answered 401 without detail beyond this text.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token algorithm not accepted")]
    Algorithm,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    #[error("token lifetime longer than auth.max_token_lifetime")]
    TooLong,
    #[error("token not valid: {0}")]
    Invalid(String),
}

/// Verifies tokens against the configured keys. Built once at start.
pub struct Authenticator {
    hs256: Option<DecodingKey>,
    rs256: Vec<DecodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
    max_lifetime: std::time::Duration,
}

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY: u64 = 30;

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("hs256", &self.hs256.is_some())
            .field("rs256_keys", &self.rs256.len())
            .finish()
    }
}

impl Authenticator {
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        let secret = settings.hs256_secret.expose_secret();
        let hs256 = (!secret.is_empty()).then(|| DecodingKey::from_secret(secret.as_bytes()));
        let rs256 = settings
            .rs256_public_keys
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
                    anyhow::anyhow!("configuration key `auth.rs256_public_keys[{i}]`: {e}")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            hs256,
            rs256,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            max_lifetime: settings.max_token_lifetime,
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = LEEWAY;
        // A token that is not valid yet is refused like an expired one, with the same leeway.
        validation.validate_nbf = true;
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        validation
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        let keys: Vec<&DecodingKey> = match header.alg {
            Algorithm::HS256 => self.hs256.iter().collect(),
            Algorithm::RS256 => self.rs256.iter().collect(),
            _ => Vec::new(),
        };
        if keys.is_empty() {
            return Err(AuthError::Algorithm);
        }
        let validation = self.validation(header.alg);
        let mut last = AuthError::Invalid("no key verified the token".into());
        for key in keys {
            match decode::<Claims>(token, key, &validation) {
                Ok(data) => return self.within_lifetime(data.claims),
                Err(e) => {
                    last = match e.kind() {
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                        jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                            AuthError::NotYetValid
                        }
                        kind => AuthError::Invalid(format!("{kind:?}")),
                    }
                }
            }
        }
        Err(last)
    }
}

impl Authenticator {
    /// Refuses a token meant to live longer than `auth.max_token_lifetime`: `exp` − `iat`, or,
    /// without `iat`, what is left of it (a stolen long-lived token is the risk either way).
    fn within_lifetime(&self, claims: Claims) -> Result<Claims, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        let from = claims
            .iat
            .map_or(now, |iat| iat.min(now.saturating_add(LEEWAY)));
        let lifetime = claims.exp.saturating_sub(from);
        if lifetime > self.max_lifetime.as_secs().saturating_add(LEEWAY) {
            return Err(AuthError::TooLong);
        }
        Ok(claims)
    }
}

impl Claims {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split_ascii_whitespace().any(|s| s == scope)
    }
}
