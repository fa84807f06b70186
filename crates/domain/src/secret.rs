//! Webhook secrets: the shared keys that sign every delivery.
//!
//! Two conventions meet here (docs/architecture.md, "Delivery contract"):
//!
//! - the FDX spec lets the brand choose any `secret` (its sample is `top_secret`) and keys
//!   `X-FDX-SC-Signature` with it as given, like GitHub does;
//! - the Standard Webhooks spec generates `whsec_` + base64 of random bytes and keys its
//!   signature with the decoded bytes.
//!
//! Hookline generates `whsec_` secrets when the brand gives none, accepts the brand's own
//! otherwise, and derives each header's key from the same secret ([`WebhookSecret::fdx_key`],
//! [`WebhookSecret::standard_webhooks_key`]).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Deserializer};

/// Prefix of a Standard Webhooks secret.
const WHSEC_PREFIX: &str = "whsec_";

/// Length of a secret, in characters. 8 admits the FDX spec's sample `top_secret` while refusing
/// trivially guessable keys; 256 bounds what is stored and hashed.
const MIN_LEN: usize = 8;
const MAX_LEN: usize = 256;

/// Key length of a `whsec_` secret in bytes, as the Standard Webhooks spec requires (24 to 64).
const MIN_WHSEC_KEY: usize = 24;
const MAX_WHSEC_KEY: usize = 64;

/// Random bytes in a generated secret: 256 bits, SHA-256's output length (RFC 2104 §3 discourages
/// shorter HMAC keys) and what the Standard Webhooks reference implementations generate.
const GENERATED_KEY_BYTES: usize = 32;

/// Why a secret was refused. Messages never contain the secret itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret must be at least {MIN_LEN} characters")]
    TooShort,
    #[error("secret must be at most {MAX_LEN} characters")]
    TooLong,
    #[error("secret must contain only printable ASCII characters without spaces")]
    InvalidCharacter,
    #[error("a secret starting with `whsec_` must continue with standard base64")]
    WhsecNotBase64,
    #[error("a `whsec_` secret must decode to {MIN_WHSEC_KEY} to {MAX_WHSEC_KEY} bytes, not {0}")]
    WhsecKeyLength(usize),
}

impl SecretError {
    /// The catalogue code: a bad secret is "Input data validation failed".
    pub fn error_code(&self) -> crate::ErrorCode {
        match self {
            Self::TooShort
            | Self::TooLong
            | Self::InvalidCharacter
            | Self::WhsecNotBase64
            | Self::WhsecKeyLength(_) => crate::ErrorCode::Cmr0001,
        }
    }
}

/// A webhook's signing secret. `Debug` never shows it and there is deliberately no `Display` or
/// `Serialize`: reading the value takes an explicit [`expose`](Self::expose).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// A new random secret in Standard Webhooks form: `whsec_` + standard base64 of 32 bytes
    /// from the thread-local CSPRNG (`rand::rng()`, ChaCha-based and OS-seeded).
    pub fn generate() -> WebhookSecret {
        let mut key = [0u8; GENERATED_KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        WebhookSecret(format!("{WHSEC_PREFIX}{}", STANDARD.encode(key)))
    }

    /// Checks a secret a brand supplied (FDX `secret`) or that the store holds.
    ///
    /// Printable ASCII without whitespace, so the value survives JSON, headers, config files and
    /// copy-paste unchanged; a `whsec_` value must also be a valid Standard Webhooks secret, since
    /// its key is the decoded bytes.
    pub fn parse(s: &str) -> Result<WebhookSecret, SecretError> {
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretError::InvalidCharacter);
        }
        // All ASCII from here on, so bytes are characters.
        if s.len() < MIN_LEN {
            return Err(SecretError::TooShort);
        }
        if s.len() > MAX_LEN {
            return Err(SecretError::TooLong);
        }
        if let Some(encoded) = s.strip_prefix(WHSEC_PREFIX) {
            let key = STANDARD
                .decode(encoded)
                .map_err(|_| SecretError::WhsecNotBase64)?;
            if !(MIN_WHSEC_KEY..=MAX_WHSEC_KEY).contains(&key.len()) {
                return Err(SecretError::WhsecKeyLength(key.len()));
            }
        }
        Ok(WebhookSecret(s.to_owned()))
    }

    /// The secret as text, to store it or show it once to its owner. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key for the Standard Webhooks `webhook-signature`: the base64-decoded bytes after
    /// `whsec_` for a `whsec_` secret (what the official libraries expect), otherwise the
    /// secret's UTF-8 bytes.
    pub fn standard_webhooks_key(&self) -> Vec<u8> {
        match self.0.strip_prefix(WHSEC_PREFIX) {
            Some(encoded) => STANDARD
                .decode(encoded)
                .expect("WebhookSecret::parse and ::generate only admit base64 after `whsec_`"),
            None => self.0.as_bytes().to_vec(),
        }
    }

    /// The HMAC key for `X-FDX-SC-Signature`: the secret's UTF-8 bytes as given, as the FDX spec
    /// ("the secret will be used as the key") and GitHub do, `whsec_` prefix included.
    pub fn fdx_key(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_whsec_with_32_random_bytes_and_parse_back() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(a.expose().len(), 6 + 44);
        assert_eq!(a.standard_webhooks_key().len(), 32);
        assert_eq!(WebhookSecret::parse(a.expose()), Ok(a));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret = WebhookSecret::parse("top_secret").expect("valid");
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(WebhookSecret(***))");
    }

    #[test]
    fn the_fdx_sample_secret_is_accepted_and_keys_both_signatures_with_its_bytes() {
        let secret = WebhookSecret::parse("top_secret").expect("FDX sample");
        assert_eq!(secret.fdx_key(), b"top_secret");
        assert_eq!(secret.standard_webhooks_key(), b"top_secret");
    }

    #[test]
    fn whsec_secrets_key_standard_webhooks_with_the_decoded_bytes() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        assert_eq!(
            secret.standard_webhooks_key(),
            STANDARD
                .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .expect("base64")
        );
        assert_eq!(secret.fdx_key(), b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }

    #[test]
    fn length_bounds() {
        assert_eq!(WebhookSecret::parse(""), Err(SecretError::TooShort));
        assert_eq!(WebhookSecret::parse("1234567"), Err(SecretError::TooShort));
        assert!(WebhookSecret::parse("12345678").is_ok());
        assert!(WebhookSecret::parse(&"x".repeat(256)).is_ok());
        assert_eq!(
            WebhookSecret::parse(&"x".repeat(257)),
            Err(SecretError::TooLong)
        );
    }

    #[test]
    fn whitespace_control_and_non_ascii_are_refused() {
        for s in [
            "top secret",
            " top_secret",
            "top_secret\n",
            "top\tsecret",
            "top_sécret",
            "top_secret\u{7f}",
        ] {
            assert_eq!(
                WebhookSecret::parse(s),
                Err(SecretError::InvalidCharacter),
                "{s:?}"
            );
        }
    }

    #[test]
    fn bad_whsec_secrets_are_refused() {
        assert_eq!(
            WebhookSecret::parse("whsec_not*base64!"),
            Err(SecretError::WhsecNotBase64)
        );
        // URL-safe alphabet is not the standard one.
        assert_eq!(
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_"),
            Err(SecretError::WhsecNotBase64)
        );
        // 16 bytes: valid base64, too short a key.
        assert_eq!(
            WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 16]))),
            Err(SecretError::WhsecKeyLength(16))
        );
        assert_eq!(
            WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 65]))),
            Err(SecretError::WhsecKeyLength(65))
        );
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 64]))).is_ok());
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 24]))).is_ok());
    }

    #[test]
    fn errors_never_echo_the_secret() {
        for s in ["whsec_not*base64!", "top secret", "short"] {
            let err = WebhookSecret::parse(s).expect_err("invalid");
            assert!(!err.to_string().contains(s), "{err}");
            assert_eq!(err.error_code(), crate::ErrorCode::Cmr0001);
        }
    }

    #[test]
    fn deserializes_through_parse() {
        let secret: WebhookSecret = serde_json::from_str("\"top_secret\"").expect("valid");
        assert_eq!(secret.expose(), "top_secret");
        assert!(serde_json::from_str::<WebhookSecret>("\"short\"").is_err());
    }
}
