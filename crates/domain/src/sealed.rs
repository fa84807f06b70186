//! Webhook secrets at rest: sealed with an AEAD under a key from configuration, so a copy of
//! the database (a backup, a replica, a leaked dump) does not give away the keys that sign
//! deliveries.
//!
//! A sealed secret is stored as text, `enc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`:
//!
//! - the cipher is XChaCha20-Poly1305. Its 192-bit nonce is drawn at random for every seal, so
//!   no counter has to be kept across processes and the chance of a repeat stays negligible
//!   however many secrets are written;
//! - the associated data binds the webhook id: a sealed value copied onto another webhook's
//!   row does not open there, so nobody with write access to the table can make one webhook
//!   sign with another's secret;
//! - the key id names the key of the [`Keyring`] that sealed it, so keys can be rotated: the
//!   active key seals, every key of the ring opens, and re-sealing under the active key moves
//!   rows off an old key before it is removed.
//!
//! A stored value without the `enc:` prefix is a secret written before secrets were sealed
//! (plain text). [`Keyring::open`] still reads it, so a rolling upgrade keeps delivering, until
//! the start-up pass or a key rotation seals it.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use uuid::Uuid;

use crate::secret::{SecretError, WebhookSecret};

/// Prefix of every sealed value; what follows is the format version.
const SEALED_PREFIX: &str = "enc:v1:";
/// Prefix shared by every format version: a value with it is never read as plain text.
const ANY_SEALED_PREFIX: &str = "enc:";
/// Key length of XChaCha20-Poly1305.
const KEY_BYTES: usize = 32;
/// Nonce length of XChaCha20-Poly1305.
const NONCE_BYTES: usize = 24;
/// Longest key id: short enough to repeat on every row.
const MAX_KEY_ID: usize = 32;
/// Domain separation of the associated data, before the webhook id.
const AAD_CONTEXT: &[u8] = b"hookline webhook secret v1\0";

/// The id of the built-in development key.
pub const DEV_KEY_ID: &str = "dev";
/// The built-in development key, standard base64 of 32 bytes. It is printed in the README, so
/// it protects nothing: `env = "production"` refuses it as the active key, and a process that
/// listens beyond loopback refuses it in any environment.
pub const DEV_KEY_BASE64: &str = "aG9va2xpbmUtZGV2LW9ubHkta2V5LW5vdC1zZWNyZXQ=";

/// Why a key list from configuration was refused. Messages name key ids, never key bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("no key given: write one or more `id:base64key` entries separated by commas")]
    Empty,
    #[error("entry {0} is not of the form `id:base64key`")]
    Entry(usize),
    #[error("key id `{0}` must be 1 to {MAX_KEY_ID} letters, digits, `-` or `_`")]
    Id(String),
    #[error("key `{0}` must be standard base64 of exactly {KEY_BYTES} bytes")]
    Key(String),
    #[error("key id `{0}` appears twice")]
    Duplicate(String),
    #[error("the active key `{0}` is not among the keys")]
    NoActive(String),
}

/// Why a stored secret could not be opened. Messages never contain the secret or a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Sealed under a key this process was not given (removed too early, or not yet added).
    #[error(
        "the secret is sealed under key id `{0}`, which is not among the configured keys \
         (secrets.keys)"
    )]
    UnknownKey(String),
    #[error("the stored secret starts with `enc:` but is not a sealed value this version reads")]
    Malformed,
    /// The key is known but the value does not authenticate: altered, or copied from another
    /// webhook's row.
    #[error(
        "the secret sealed under key id `{0}` does not open: it was altered or belongs to \
         another webhook"
    )]
    Rejected(String),
    #[error("the stored secret is invalid: {0}")]
    Invalid(#[from] SecretError),
}

/// One key of the ring.
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
    /// Whether this is the built-in development key (whatever id it was given).
    dev: bool,
}

/// The keys that seal and open webhook secrets: one active key that seals, and every key
/// (active included) that opens. `Debug` shows the key ids only.
pub struct Keyring {
    keys: Vec<Key>,
    /// Index of the active key in `keys`.
    active: usize,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active_id())
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A ring from configuration: `keys` is `id:base64key` entries separated by commas (spaces
    /// around them are ignored), each key standard base64 of 32 bytes; `active` names the one
    /// that seals.
    pub fn parse(active: &str, keys: &str) -> Result<Keyring, KeyringError> {
        let mut ring = Vec::new();
        for (n, entry) in keys
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (id, key) = entry.split_once(':').ok_or(KeyringError::Entry(n + 1))?;
            let (id, key) = (id.trim(), key.trim());
            if id.is_empty()
                || id.len() > MAX_KEY_ID
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeyringError::Id(id.to_owned()));
            }
            if ring.iter().any(|k: &Key| k.id == id) {
                return Err(KeyringError::Duplicate(id.to_owned()));
            }
            let bytes = STANDARD
                .decode(key)
                .ok()
                .filter(|b| b.len() == KEY_BYTES)
                .ok_or_else(|| KeyringError::Key(id.to_owned()))?;
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| KeyringError::Key(id.to_owned()))?;
            ring.push(Key {
                id: id.to_owned(),
                cipher,
                dev: key == DEV_KEY_BASE64,
            });
        }
        if ring.is_empty() {
            return Err(KeyringError::Empty);
        }
        let active = active.trim();
        let active = ring
            .iter()
            .position(|k| k.id == active)
            .ok_or_else(|| KeyringError::NoActive(active.to_owned()))?;
        Ok(Keyring { keys: ring, active })
    }

    /// The ring of the built-in development key alone (the configuration's default).
    pub fn dev() -> Keyring {
        Keyring::parse(DEV_KEY_ID, &format!("{DEV_KEY_ID}:{DEV_KEY_BASE64}"))
            .expect("the built-in dev key parses")
    }

    /// The id of the key that seals.
    pub fn active_id(&self) -> &str {
        &self.keys[self.active].id
    }

    /// The ids of every key that opens, in configuration order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// Whether the active key is the built-in development key.
    pub fn active_is_dev(&self) -> bool {
        self.keys[self.active].dev
    }

    /// Whether the built-in development key is anywhere in the ring.
    pub fn has_dev_key(&self) -> bool {
        self.keys.iter().any(|k| k.dev)
    }

    /// Seals `secret` for the webhook `webhook_id` under the active key.
    pub fn seal(&self, webhook_id: Uuid, secret: &WebhookSecret) -> String {
        let key = &self.keys[self.active];
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(webhook_id);
        let sealed = key
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: &aad,
                },
            )
            // Encryption fails only for messages beyond 256 GiB; a secret is at most 256 bytes.
            .expect("XChaCha20-Poly1305 seals any message of a secret's size");
        let mut blob = Vec::with_capacity(NONCE_BYTES + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}:{}", key.id, STANDARD.encode(blob))
    }

    /// Opens what the store holds for the webhook `webhook_id`: a sealed value under any key
    /// of the ring, or a plain-text secret written before secrets were sealed.
    pub fn open(&self, webhook_id: Uuid, stored: &str) -> Result<WebhookSecret, OpenError> {
        let Some(rest) = stored.strip_prefix(ANY_SEALED_PREFIX) else {
            return Ok(WebhookSecret::parse(stored)?);
        };
        let (id, encoded) = rest
            .strip_prefix("v1:")
            .and_then(|r| r.split_once(':'))
            .ok_or(OpenError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let blob = STANDARD.decode(encoded).map_err(|_| OpenError::Malformed)?;
        if blob.len() < NONCE_BYTES {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        let aad = associated_data(webhook_id);
        let plain = key
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Rejected(id.to_owned()))?;
        let text = String::from_utf8(plain).map_err(|_| OpenError::Rejected(id.to_owned()))?;
        Ok(WebhookSecret::parse(&text)?)
    }
}

/// The key id a stored value is sealed under, or `None` for a plain-text (legacy) secret.
/// Only the prefix is read: [`Keyring::open`] checks the rest.
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(SEALED_PREFIX)?;
    Some(rest.split_once(':').map_or(rest, |(id, _)| id))
}

/// Whether a stored value is sealed (in any format version) rather than plain text.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(ANY_SEALED_PREFIX)
}

/// `AAD_CONTEXT ‖ webhook id`: what a sealed value is bound to besides its key.
fn associated_data(webhook_id: Uuid) -> Vec<u8> {
    let mut aad = AAD_CONTEXT.to_vec();
    aad.extend_from_slice(webhook_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; KEY_BYTES])
    }

    fn secret() -> WebhookSecret {
        WebhookSecret::parse("top_secret_value").expect("valid")
    }

    #[test]
    fn sealed_values_open_with_the_same_webhook_and_hide_the_secret() {
        let ring = Keyring::parse("k1", &format!("k1:{}", key(1))).expect("ring");
        let id = Uuid::now_v7();
        let sealed = ring.seal(id, &secret());
        assert!(sealed.starts_with("enc:v1:k1:"), "{sealed}");
        assert!(!sealed.contains("top_secret"));
        assert_eq!(sealed_key_id(&sealed), Some("k1"));
        assert_eq!(ring.open(id, &sealed), Ok(secret()));
        // A fresh nonce each time: the same secret never seals to the same text.
        assert_ne!(ring.seal(id, &secret()), sealed);
    }

    #[test]
    fn a_sealed_value_does_not_open_for_another_webhook() {
        let ring = Keyring::parse("k1", &format!("k1:{}", key(1))).expect("ring");
        let sealed = ring.seal(Uuid::now_v7(), &secret());
        assert_eq!(
            ring.open(Uuid::now_v7(), &sealed),
            Err(OpenError::Rejected("k1".into()))
        );
    }

    #[test]
    fn altered_values_are_rejected_not_misread() {
        let ring = Keyring::parse("k1", &format!("k1:{}", key(1))).expect("ring");
        let id = Uuid::now_v7();
        let sealed = ring.seal(id, &secret());
        let mut blob = STANDARD
            .decode(sealed.rsplit_once(':').expect("sealed").1)
            .expect("base64");
        let last = blob.len() - 1;
        blob[last] ^= 1;
        let altered = format!("enc:v1:k1:{}", STANDARD.encode(blob));
        assert_eq!(
            ring.open(id, &altered),
            Err(OpenError::Rejected("k1".into()))
        );
        assert_eq!(ring.open(id, "enc:v1:k1:***"), Err(OpenError::Malformed));
        assert_eq!(ring.open(id, "enc:v1:k1:AAAA"), Err(OpenError::Malformed));
        assert_eq!(ring.open(id, "enc:v9:k1:AAAA"), Err(OpenError::Malformed));
    }

    #[test]
    fn old_keys_open_and_only_the_active_key_seals() {
        let old = Keyring::parse("k1", &format!("k1:{}", key(1))).expect("ring");
        let id = Uuid::now_v7();
        let under_old = old.seal(id, &secret());
        let new = Keyring::parse("k2", &format!("k2:{}, k1:{}", key(2), key(1))).expect("ring");
        assert_eq!(new.active_id(), "k2");
        assert_eq!(new.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert_eq!(new.open(id, &under_old), Ok(secret()));
        let under_new = new.seal(id, &secret());
        assert_eq!(sealed_key_id(&under_new), Some("k2"));
        // Once k1 is removed, what it sealed names the missing key instead of failing vaguely.
        let only_new = Keyring::parse("k2", &format!("k2:{}", key(2))).expect("ring");
        assert_eq!(
            only_new.open(id, &under_old),
            Err(OpenError::UnknownKey("k1".into()))
        );
        assert!(only_new
            .open(id, &under_old)
            .expect_err("unknown")
            .to_string()
            .contains("secrets.keys"));
        // The same id with other key bytes does not open it either.
        let impostor = Keyring::parse("k1", &format!("k1:{}", key(9))).expect("ring");
        assert_eq!(
            impostor.open(id, &under_old),
            Err(OpenError::Rejected("k1".into()))
        );
    }

    #[test]
    fn plain_text_secrets_from_before_sealing_still_open() {
        let ring = Keyring::dev();
        assert_eq!(ring.open(Uuid::now_v7(), "top_secret_value"), Ok(secret()));
        assert_eq!(sealed_key_id("top_secret_value"), None);
        assert!(!is_sealed("top_secret_value"));
        assert!(matches!(
            ring.open(Uuid::now_v7(), "short"),
            Err(OpenError::Invalid(_))
        ));
    }

    #[test]
    fn key_lists_are_checked() {
        assert_eq!(Keyring::parse("a", "").map(drop), Err(KeyringError::Empty));
        assert_eq!(
            Keyring::parse("a", " , ").map(drop),
            Err(KeyringError::Empty)
        );
        assert_eq!(
            Keyring::parse("a", &key(1)).map(drop),
            Err(KeyringError::Entry(1))
        );
        assert_eq!(
            Keyring::parse("a:b", &format!("a:b:{}", key(1))).map(drop),
            // The id ends at the first colon; the rest is not a key.
            Err(KeyringError::Key("a".into()))
        );
        assert_eq!(
            Keyring::parse("a b", &format!("a b:{}", key(1))).map(drop),
            Err(KeyringError::Id("a b".into()))
        );
        assert_eq!(
            Keyring::parse("a", "a:c2hvcnQ=").map(drop),
            Err(KeyringError::Key("a".into()))
        );
        assert_eq!(
            Keyring::parse("a", &format!("a:{},a:{}", key(1), key(2))).map(drop),
            Err(KeyringError::Duplicate("a".into()))
        );
        assert_eq!(
            Keyring::parse("b", &format!("a:{}", key(1))).map(drop),
            Err(KeyringError::NoActive("b".into()))
        );
        let err = Keyring::parse("a", &format!("a:{}", &key(1)[..20])).expect_err("short");
        assert!(!err.to_string().contains(&key(1)[..20]), "{err}");
    }

    #[test]
    fn the_dev_key_is_recognised_whatever_its_id() {
        let dev = Keyring::dev();
        assert!(dev.active_is_dev());
        let renamed =
            Keyring::parse("mine", &format!("mine:{DEV_KEY_BASE64},k1:{}", key(1))).expect("ring");
        assert!(renamed.active_is_dev());
        let moved_off =
            Keyring::parse("k1", &format!("k1:{},dev:{DEV_KEY_BASE64}", key(1))).expect("ring");
        assert!(!moved_off.active_is_dev());
        assert!(moved_off.has_dev_key());
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let ring = Keyring::parse("k2", &format!("k2:{},k1:{}", key(2), key(1))).expect("ring");
        let text = format!("{ring:?}");
        assert_eq!(text, r#"Keyring { active: "k2", ids: ["k2", "k1"] }"#);
        assert!(!text.contains(&key(2)));
    }
}
