//! Typed settings shared by `hookline-api` and `hookline-worker`.
//!
//! Both processes read the same keys (an operator writes one ConfigMap for both), so the
//! structs live in one small crate rather than in either binary. Loading is layered (README
//! "Configuration"): built-in defaults (the `Default` impls below), then an optional file
//! (`--config PATH` or `HOOKLINE_CONFIG`), then environment variables
//! `HOOKLINE__SECTION__KEY`. [`Settings::validate`] runs right after loading and names the key
//! that is wrong.
//!
//! Secrets (`database.url` may carry a password, `amqp.url` too, `auth.hs256_secret`,
//! `secrets.keys`) are wrapped in [`SecretString`] so that `{:?}` never prints them.
//!
//! Layout:
//! - `lib.rs`: the structs, their defaults, loading and validation.
//! - `hookline.example.toml` (crate root): every key with its default, commented; a unit test
//!   keeps it in step with the structs.

use std::{net::SocketAddr, path::Path, time::Duration};

pub use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The shortest HS256 secret `env = "production"` accepts, in bytes (the key size of HS256).
pub const MIN_PRODUCTION_SECRET: usize = 32;

/// Whether a secret is one of the placeholders the manifests and docs ship with.
fn is_placeholder(secret: &str) -> bool {
    let s = secret.to_ascii_lowercase();
    s.contains("change_me") || s.contains("changeme") || s.contains("change-me")
}

/// Whether `bind` (an `ip:port`) listens on a loopback address only.
pub fn is_loopback_bind(bind: &str) -> bool {
    bind.parse::<SocketAddr>()
        .is_ok_and(|addr| addr.ip().is_loopback())
}

/// The dev-only HS256 key. `env = "production"` refuses to start while it is in use.
pub const DEV_HS256_SECRET: &str = "hookline-dev-only-secret-do-not-use-in-production";

/// Every setting of both processes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `dev` or `production`; `production` refuses dev default secrets.
    pub env: String,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub http: HttpSettings,
    pub admin: AdminSettings,
    pub auth: AuthSettings,
    pub secrets: SecretsSettings,
    pub rate_limit: RateLimitSettings,
    pub delivery: DeliverySettings,
    pub worker: WorkerSettings,
    pub health: HealthSettings,
    pub limits: LimitSettings,
    pub retention: RetentionSettings,
    pub recovery: RecoverySettings,
    pub portal: PortalSettings,
    pub log: LogSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            env: "dev".into(),
            database: DatabaseSettings::default(),
            amqp: AmqpSettings::default(),
            http: HttpSettings::default(),
            admin: AdminSettings::default(),
            auth: AuthSettings::default(),
            secrets: SecretsSettings::default(),
            rate_limit: RateLimitSettings::default(),
            delivery: DeliverySettings::default(),
            worker: WorkerSettings::default(),
            health: HealthSettings::default(),
            limits: LimitSettings::default(),
            retention: RetentionSettings::default(),
            recovery: RecoverySettings::default(),
            portal: PortalSettings::default(),
            log: LogSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    /// Connections in the pool of each process.
    pub pool_size: usize,
    /// How long a request waits for a pooled connection before it is answered 503.
    #[serde(with = "humantime_serde")]
    pub pool_wait_timeout: Duration,
    /// How long opening a new connection may take; bounds recovery probes during an outage.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `statement_timeout` set on every connection, so no query holds a connection forever.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Apply pending migrations when the API starts (under an advisory lock).
    pub migrate_on_start: bool,
    /// Create the database when it is missing and the role may (the two-command quickstart).
    pub create_if_missing: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/hookline".into(),
            pool_size: 16,
            pool_wait_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
            migrate_on_start: true,
            create_if_missing: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    pub url: SecretString,
    /// Prefix of every exchange and queue name, so several installations (or tests) can share
    /// one broker.
    pub prefix: String,
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            prefix: "hookline".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// API listen address; port 0 picks a free port (tests).
    pub bind: String,
    /// Largest JSON body accepted on webhook-management routes.
    pub max_json_bytes: usize,
    /// Largest event body accepted by the ingest route (413 beyond it).
    pub max_event_bytes: usize,
    /// Largest body of the batch ingest route (up to 500 events).
    pub max_batch_bytes: usize,
    /// Base of the `Location` header; when empty it is derived from the request.
    pub public_url: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            max_json_bytes: 64 * 1024,
            max_event_bytes: 256 * 1024,
            max_batch_bytes: 8 * 1024 * 1024,
            public_url: String::new(),
        }
    }
}

/// The API's operator listener: `GET /metrics`, `/healthz` and `/readyz`, apart from the
/// public port, like the worker's `worker.http_bind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Listen address; loopback by default, so metrics are not public unless an operator
    /// binds them elsewhere. Port 0 picks a free port (tests).
    pub bind: String,
    /// How often one task refreshes the gauges read from Postgres (the delivery backlog); a
    /// scrape only renders the cached values.
    #[serde(with = "humantime_serde")]
    pub gauge_refresh: Duration,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:9091".into(),
            gauge_refresh: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 key for bearer tokens; empty disables HS256.
    pub hs256_secret: SecretString,
    /// RS256 public keys (PEM text). A token verifies if any of them verifies it.
    pub rs256_public_keys: Vec<String>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Longest lifetime a token may have (`exp` − `iat`, or what is left of it when it has no
    /// `iat`); a longer one is refused, however it was signed.
    #[serde(with = "humantime_serde")]
    pub max_token_lifetime: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            hs256_secret: DEV_HS256_SECRET.into(),
            rs256_public_keys: Vec::new(),
            issuer: None,
            audience: None,
            max_token_lifetime: Duration::from_secs(24 * 3600),
        }
    }
}

/// The keys that seal webhook secrets in Postgres (`hookline_domain::sealed`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsSettings {
    /// `id:base64key` entries separated by commas, each key 32 random bytes in standard
    /// base64. One string rather than a list so that `HOOKLINE__SECRETS__KEYS` can carry it.
    /// Every key opens; keep an old key here until `hookline-api secrets rotate-key` has moved
    /// every row off it.
    pub keys: SecretString,
    /// The id of the key that seals new and re-sealed secrets.
    pub active_key: String,
}

impl Default for SecretsSettings {
    fn default() -> Self {
        Self {
            keys: format!(
                "{}:{}",
                hookline_domain::sealed::DEV_KEY_ID,
                hookline_domain::sealed::DEV_KEY_BASE64
            )
            .into(),
            active_key: hookline_domain::sealed::DEV_KEY_ID.into(),
        }
    }
}

impl SecretsSettings {
    /// The keyring these settings describe; the error names the key to fix.
    pub fn keyring(&self) -> Result<hookline_domain::Keyring, SettingsError> {
        use hookline_domain::KeyringError;
        hookline_domain::Keyring::parse(&self.active_key, self.keys.expose_secret()).map_err(|e| {
            SettingsError::Invalid {
                key: match e {
                    KeyringError::NoActive(_) => "secrets.active_key",
                    _ => "secrets.keys",
                },
                reason: e.to_string(),
            }
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Sustained cost per second per brand: each published event costs one (a batch of 500
    /// costs 500), each other request one.
    pub per_second: u32,
    /// Bucket size: the most a brand may spend at once. At least 500, the largest batch.
    pub burst: u32,
    /// Requests from one client IP that may fail authentication per minute, sustained; over
    /// it (and `failed_auth_burst`) the IP gets 429 before its tokens are even checked.
    pub failed_auth_per_minute: u32,
    pub failed_auth_burst: u32,
    /// A header your load balancer sets to the client's address (for example
    /// `X-Forwarded-For`; its last entry is used, the one the balancer added). Unset: the
    /// TCP peer address. Never set it without such a balancer: clients could pick any IP.
    pub client_ip_header: Option<String>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            per_second: 1000,
            burst: 2000,
            failed_auth_per_minute: 60,
            failed_auth_burst: 20,
            client_ip_header: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Allow `http://` endpoints (off: brands must use HTTPS).
    pub allow_http: bool,
    /// Allow endpoints on loopback, private, link-local … addresses (SSRF guard off).
    pub allow_private_targets: bool,
    /// Delays between attempts, comma separated; one more attempt than delays.
    pub retry_schedule: String,
    /// Jitter applied to each delay, as a fraction (0.2 = ±20 %).
    pub retry_jitter: f64,
    /// Upper bound on a `Retry-After` an endpoint may ask for.
    #[serde(with = "humantime_serde")]
    pub retry_after_max: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    pub user_agent: String,
    /// How long the old secret keeps signing beside the new one after a rotation.
    #[serde(with = "humantime_serde")]
    pub secret_rotation_grace: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private_targets: false,
            retry_schedule: "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h".into(),
            retry_jitter: 0.2,
            retry_after_max: Duration::from_secs(6 * 3600),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            user_agent: "Hookline-Webhooks/0.1".into(),
            secret_rotation_grace: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// AMQP prefetch (unacknowledged messages held by one worker).
    pub prefetch: u16,
    /// Deliveries one worker takes on at once before their requests start: the queue's
    /// backpressure. A delivery stops counting when its request starts (requests are bounded by
    /// the per-host and per-brand caps instead), so hanging requests never fill it.
    pub concurrency: usize,
    /// Requests one worker has in flight for one brand to one destination host (`host:port`);
    /// work beyond it is deferred. Each brand has its own share of a host. Also read as
    /// `max_in_flight_per_endpoint` (its former name).
    #[serde(alias = "max_in_flight_per_endpoint")]
    pub max_in_flight_per_host: usize,
    /// Requests one worker has in flight for one brand, whatever the hosts; work beyond it is
    /// deferred.
    pub max_in_flight_per_brand: usize,
    /// Bytes of event bodies one worker holds for deliveries in flight; beyond it, work is
    /// deferred. Each event's body is held once, however many deliveries share it.
    pub max_bytes_in_flight: usize,
    /// How long deferred work waits (at least) before it is offered again.
    #[serde(with = "humantime_serde")]
    pub defer_delay: Duration,
    /// Workers a delivery may lose in a row (killed or out of memory while attempting it)
    /// before it is parked as `worker_lost` instead of being sent to another one.
    pub lost_limit: u32,
    /// How long a delivery handed to the queue is owned before the scheduler re-publishes it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often the scheduler looks for due deliveries.
    #[serde(with = "humantime_serde")]
    pub scheduler_interval: Duration,
    /// Worker health and metrics listen address.
    pub http_bind: String,
    /// How long deliveries in flight may finish after SIGTERM before they are handed back
    /// (due again at once, for another worker). Keep it below the orchestrator's kill timeout.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            prefetch: 256,
            concurrency: 256,
            max_in_flight_per_host: 64,
            max_in_flight_per_brand: 128,
            max_bytes_in_flight: 64 * 1024 * 1024,
            defer_delay: Duration::from_millis(250),
            lost_limit: 3,
            lease: Duration::from_secs(60),
            scheduler_interval: Duration::from_secs(1),
            http_bind: "127.0.0.1:9090".into(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Endpoint health: when a failing endpoint is degraded, probed and disabled.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSettings {
    /// Consecutive failures (no answer, 5xx, 410) that degrade a healthy endpoint.
    pub failure_threshold: u32,
    /// The first probe interval of a degraded endpoint; each failed probe doubles it.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// The longest probe interval.
    #[serde(with = "humantime_serde")]
    pub probe_interval_max: Duration,
    /// Failing continuously this long disables the webhook (Svix's five days).
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// Disable the webhook at once when its endpoint answers `410 Gone`.
    pub disable_on_gone: bool,
    /// Parked deliveries released per second per webhook once it is healthy again.
    pub release_per_second: u32,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            probe_interval: Duration::from_secs(30),
            probe_interval_max: Duration::from_secs(600),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            disable_on_gone: true,
            release_per_second: 200,
        }
    }
}

/// Per-brand bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Webhooks one brand may have (422 beyond it): bounds the fan-out of one event.
    pub max_webhooks_per_brand: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_webhooks_per_brand: 100,
        }
    }
}

/// How long the delivery log is kept, and how much of an endpoint's answer it keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Events older than this are deleted with their deliveries and attempts, unless one of
    /// their deliveries is still owed (PENDING or PARKED).
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// How often each worker looks for expired events.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Events deleted per statement: each batch is a short transaction.
    pub batch: u32,
    /// Least pause between two batches of one purge; the purge also rests nine times as long
    /// as its last batch took, so a large purge yields to ingest and delivery.
    #[serde(with = "humantime_serde")]
    pub pause: Duration,
    /// Bytes of an endpoint's response body kept on an attempt.
    pub attempt_response_bytes: usize,
    /// Bytes of an endpoint's response headers (names and values) kept on an attempt.
    pub attempt_header_bytes: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            period: Duration::from_secs(30 * 24 * 3600),
            interval: Duration::from_secs(60),
            batch: 500,
            pause: Duration::from_millis(20),
            attempt_response_bytes: 4096,
            attempt_header_bytes: 4096,
        }
    }
}

/// Bulk recovery jobs (`POST …/recover`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoverySettings {
    /// Deliveries one job requeues per second (the job's release rate).
    pub rate: u32,
    /// Most deliveries one job may match (422 beyond).
    pub max_matched: u64,
    /// Longest `since`..`until` window; unset: `retention.period`.
    #[serde(default, with = "humantime_serde::option")]
    pub max_window: Option<Duration>,
    /// How long a replica owns a running job without renewing it; after that another replica
    /// continues it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        Self {
            rate: 100,
            max_matched: 100_000,
            max_window: None,
            lease: Duration::from_secs(10),
        }
    }
}

impl RecoverySettings {
    /// The longest window a recovery may cover under `retention`.
    pub fn window(&self, retention: &RetentionSettings) -> Duration {
        self.max_window.unwrap_or(retention.period)
    }
}

/// The brand portal (`/portal/`): its sign-in links and sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalSettings {
    /// Whether `hookline-api` serves the portal at all.
    pub enabled: bool,
    /// How long a sign-in link stays usable when none is asked for (it works once).
    #[serde(with = "humantime_serde")]
    pub link_ttl: Duration,
    /// The longest lifetime a link may be given (`--ttl`, `"ttl"`).
    #[serde(with = "humantime_serde")]
    pub max_link_ttl: Duration,
    /// How long a session lasts after sign-in, whatever it does meanwhile.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// A session unused for this long ends early.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            link_ttl: Duration::from_secs(15 * 60),
            max_link_ttl: Duration::from_secs(24 * 3600),
            session_ttl: Duration::from_secs(12 * 3600),
            idle_timeout: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter (`RUST_LOG` overrides it).
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// Why settings could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl HealthSettings {
    /// The domain's health policy from these settings.
    pub fn policy(&self) -> hookline_domain::HealthPolicy {
        hookline_domain::HealthPolicy {
            failure_threshold: self.failure_threshold,
            probe_interval: self.probe_interval,
            probe_interval_max: self.probe_interval_max,
            disable_after: self.disable_after,
            disable_on_gone: self.disable_on_gone,
        }
    }
}

impl Settings {
    /// Loads defaults, then `file` (or `HOOKLINE_CONFIG` when `file` is `None`), then the
    /// process environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let env_file = std::env::var_os("HOOKLINE_CONFIG");
        let file = file.or(env_file.as_deref().map(Path::new));
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix("HOOKLINE")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Whether the dev-only HS256 key is in use (warned about at start, refused in production).
    pub fn uses_dev_secret(&self) -> bool {
        self.auth.hs256_secret.expose_secret() == DEV_HS256_SECRET
    }

    /// Whether the built-in development key seals webhook secrets (warned about at start,
    /// refused in production and beyond loopback). False when the keys do not parse
    /// ([`Settings::validate`] refuses those).
    pub fn uses_dev_secrets_key(&self) -> bool {
        self.secrets
            .keyring()
            .is_ok_and(|ring| ring.active_is_dev())
    }

    /// The keyring that seals webhook secrets, for a process listening on `bind` (the value of
    /// the key `bind_key`). The built-in dev key is in the README, so it protects nothing: like
    /// the dev HS256 secret, it is refused unless the process listens on loopback only (the
    /// quickstart), whatever `env` says.
    pub fn keyring_for(
        &self,
        bind_key: &'static str,
        bind: &str,
    ) -> Result<hookline_domain::Keyring, SettingsError> {
        let keyring = self.secrets.keyring()?;
        if keyring.active_is_dev() && !is_loopback_bind(bind) {
            return Err(SettingsError::Invalid {
                key: "secrets.keys",
                reason: format!(
                    "the active key is the built-in dev key, which anyone can read in the \
                     README, and {bind_key} ({bind}) is not a loopback address: set \
                     HOOKLINE__SECRETS__KEYS and HOOKLINE__SECRETS__ACTIVE_KEY (or bind to \
                     127.0.0.1)"
                ),
            });
        }
        Ok(keyring)
    }

    /// Checks what serde cannot: ranges, enumerations, and the production rules.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, reason: &str| {
            Err(SettingsError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if !matches!(self.env.as_str(), "dev" | "production") {
            return invalid("env", "must be `dev` or `production`");
        }
        if self.rate_limit.enabled && self.rate_limit.burst < 500 {
            return invalid(
                "rate_limit.burst",
                "must be at least 500: a batch of 500 events costs 500",
            );
        }
        if self.admin.gauge_refresh.is_zero() {
            return invalid("admin.gauge_refresh", "must be more than 0");
        }
        let portal = &self.portal;
        if portal.link_ttl.is_zero() || portal.link_ttl > portal.max_link_ttl {
            return invalid(
                "portal.link_ttl",
                "must be more than 0 and at most portal.max_link_ttl",
            );
        }
        if portal.idle_timeout.is_zero() || portal.idle_timeout > portal.session_ttl {
            return invalid(
                "portal.idle_timeout",
                "must be more than 0 and at most portal.session_ttl",
            );
        }
        if self.env == "production" && self.uses_dev_secret() {
            return invalid(
                "auth.hs256_secret",
                "the dev default is refused in production",
            );
        }
        let keyring = self.secrets.keyring()?;
        if self.env == "production" && keyring.active_is_dev() {
            return invalid(
                "secrets.keys",
                "the built-in dev key is refused in production: set HOOKLINE__SECRETS__KEYS \
                 (`id:base64key`, 32 random bytes) and HOOKLINE__SECRETS__ACTIVE_KEY",
            );
        }
        let secret = self.auth.hs256_secret.expose_secret();
        if self.env == "production" && !secret.is_empty() && secret.len() < MIN_PRODUCTION_SECRET {
            return invalid(
                "auth.hs256_secret",
                "must be at least 32 bytes in production (or empty, with RS256 keys)",
            );
        }
        if self.env == "production" && is_placeholder(secret) {
            return invalid(
                "auth.hs256_secret",
                "is a placeholder from the manifests or the docs: set a long random value",
            );
        }
        if self.env == "production" && self.delivery.allow_private_targets {
            return invalid(
                "delivery.allow_private_targets",
                "must be false in production: endpoints could reach internal addresses",
            );
        }
        if self.env == "production" && self.auth.issuer.as_deref().unwrap_or("").is_empty() {
            return invalid(
                "auth.issuer",
                "production requires the `iss` every token must carry",
            );
        }
        if self.env == "production" && self.auth.audience.as_deref().unwrap_or("").is_empty() {
            return invalid(
                "auth.audience",
                "production requires the `aud` every token must carry",
            );
        }
        if self.auth.max_token_lifetime.is_zero() {
            return invalid("auth.max_token_lifetime", "must be longer than zero");
        }
        if self.auth.hs256_secret.expose_secret().is_empty()
            && self.auth.rs256_public_keys.is_empty()
        {
            return invalid(
                "auth.hs256_secret",
                "no HS256 secret and no RS256 key: nobody can log in",
            );
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1");
        }
        if self.http.bind.parse::<SocketAddr>().is_err() {
            return invalid("http.bind", "must be an address like 127.0.0.1:8080");
        }
        if self.worker.http_bind.parse::<SocketAddr>().is_err() {
            return invalid("worker.http_bind", "must be an address like 127.0.0.1:9090");
        }
        if self.amqp.prefix.is_empty() || self.amqp.prefix.len() > 100 {
            return invalid("amqp.prefix", "must be 1 to 100 characters");
        }
        if !(0.0..1.0).contains(&self.delivery.retry_jitter) {
            return invalid("delivery.retry_jitter", "must be in [0, 1)");
        }
        if self
            .delivery
            .retry_schedule
            .split(',')
            .any(|d| humantime::parse_duration(d.trim()).is_err())
        {
            return invalid(
                "delivery.retry_schedule",
                "must be durations like `5s,30s,2m`",
            );
        }
        if self.rate_limit.enabled
            && (self.rate_limit.per_second == 0 || self.rate_limit.burst == 0)
        {
            return invalid(
                "rate_limit.per_second",
                "per_second and burst must be at least 1",
            );
        }
        if self.worker.concurrency == 0 {
            return invalid("worker.concurrency", "must be at least 1");
        }
        if self.worker.max_in_flight_per_host == 0 {
            return invalid("worker.max_in_flight_per_host", "must be at least 1");
        }
        if self.worker.max_in_flight_per_brand == 0 {
            return invalid("worker.max_in_flight_per_brand", "must be at least 1");
        }
        if self.worker.max_bytes_in_flight < self.http.max_event_bytes {
            return invalid(
                "worker.max_bytes_in_flight",
                "must be at least http.max_event_bytes (one event must fit)",
            );
        }
        if self.worker.lost_limit == 0 {
            return invalid("worker.lost_limit", "must be at least 1");
        }
        if self.health.failure_threshold == 0 {
            return invalid("health.failure_threshold", "must be at least 1");
        }
        if self.health.probe_interval.is_zero()
            || self.health.probe_interval_max < self.health.probe_interval
        {
            return invalid(
                "health.probe_interval",
                "must be above zero and at most health.probe_interval_max",
            );
        }
        if self.health.release_per_second == 0 {
            return invalid("health.release_per_second", "must be at least 1");
        }
        if self.limits.max_webhooks_per_brand == 0 {
            return invalid("limits.max_webhooks_per_brand", "must be at least 1");
        }
        if self.retention.period.is_zero() {
            return invalid("retention.period", "must be longer than zero");
        }
        if self.retention.interval.is_zero() {
            return invalid("retention.interval", "must be longer than zero");
        }
        if self.retention.batch == 0 {
            return invalid("retention.batch", "must be at least 1");
        }
        if self.recovery.rate == 0 {
            return invalid("recovery.rate", "must be at least 1");
        }
        if self.recovery.max_matched == 0 {
            return invalid("recovery.max_matched", "must be at least 1");
        }
        if self.recovery.lease < Duration::from_secs(1) {
            return invalid("recovery.lease", "must be at least 1s");
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return invalid("log.format", "must be `text` or `json`");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().expect("defaults validate");
    }

    #[test]
    fn production_refuses_the_dev_secret() {
        let settings = Settings {
            env: "production".into(),
            ..Settings::default()
        };
        let err = settings.validate().expect_err("dev secret in production");
        assert!(err.to_string().contains("auth.hs256_secret"), "{err}");
    }

    /// A production key ring: `k1`, 32 bytes of 7.
    fn production_keys(settings: &mut Settings) {
        settings.secrets.keys = "k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".into();
        settings.secrets.active_key = "k1".into();
    }

    #[test]
    fn production_refuses_the_dev_secrets_key_naming_what_to_set() {
        let mut settings = Settings {
            env: "production".into(),
            ..Settings::default()
        };
        settings.auth.hs256_secret = "a-production-secret-of-enough-length-0123456789".into();
        assert!(settings.uses_dev_secrets_key());
        let err = settings.validate().expect_err("dev key in production");
        assert!(err.to_string().contains("secrets.keys"), "{err}");
        assert!(err.to_string().contains("HOOKLINE__SECRETS__KEYS"), "{err}");
        // The dev key under another id is still the dev key.
        settings.secrets.keys = format!("mine:{}", hookline_domain::sealed::DEV_KEY_BASE64).into();
        settings.secrets.active_key = "mine".into();
        let err = settings.validate().expect_err("renamed dev key");
        assert!(err.to_string().contains("secrets.keys"), "{err}");
        // Kept beside a real active key, so rows can be moved off it, it is accepted.
        settings.secrets.keys = format!(
            "k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=,dev:{}",
            hookline_domain::sealed::DEV_KEY_BASE64
        )
        .into();
        settings.secrets.active_key = "k1".into();
        assert!(!settings.uses_dev_secrets_key());
        let err = settings.validate().expect_err("no issuer");
        assert!(err.to_string().contains("auth.issuer"), "{err}");
    }

    #[test]
    fn bad_key_lists_are_refused_in_any_environment() {
        let mut settings = Settings::default();
        settings.secrets.keys = "".into();
        let err = settings.validate().expect_err("no key");
        assert!(err.to_string().contains("secrets.keys"), "{err}");
        settings.secrets.keys = "k1:not-base64".into();
        settings.secrets.active_key = "k1".into();
        let err = settings.validate().expect_err("bad key");
        assert!(err.to_string().contains("secrets.keys"), "{err}");
        production_keys(&mut settings);
        settings.secrets.active_key = "k2".into();
        let err = settings.validate().expect_err("unknown active key");
        assert!(err.to_string().contains("secrets.active_key"), "{err}");
        settings.secrets.active_key = "k1".into();
        settings.validate().expect("valid");
    }

    #[test]
    fn production_requires_issuer_and_audience() {
        let mut settings = Settings {
            env: "production".into(),
            ..Settings::default()
        };
        production_keys(&mut settings);
        settings.auth.hs256_secret = "a-production-secret-of-enough-length-0123456789".into();
        let err = settings.validate().expect_err("no issuer");
        assert!(err.to_string().contains("auth.issuer"), "{err}");
        settings.auth.issuer = Some("https://auth.example.com/".into());
        let err = settings.validate().expect_err("no audience");
        assert!(err.to_string().contains("auth.audience"), "{err}");
        settings.auth.audience = Some("hookline".into());
        settings.validate().expect("both set");
        settings.auth.max_token_lifetime = Duration::ZERO;
        let err = settings.validate().expect_err("zero lifetime");
        assert!(err.to_string().contains("auth.max_token_lifetime"), "{err}");
    }

    #[test]
    fn production_refuses_short_placeholder_secrets_and_private_targets() {
        let mut settings = Settings {
            env: "production".into(),
            ..Settings::default()
        };
        settings.auth.issuer = Some("https://auth.example.com/".into());
        settings.auth.audience = Some("hookline".into());
        production_keys(&mut settings);
        settings.auth.hs256_secret = "short".into();
        let err = settings.validate().expect_err("short secret");
        assert!(err.to_string().contains("auth.hs256_secret"), "{err}");
        settings.auth.hs256_secret = "CHANGE_ME_TO_A_LONG_RANDOM_VALUE_0123456789".into();
        let err = settings.validate().expect_err("placeholder");
        assert!(err.to_string().contains("placeholder"), "{err}");
        settings.auth.hs256_secret = "k9Vq2xLr8ZpT4wYb6NcH1sJd3FgA7eMu".into();
        settings.validate().expect("a 32-byte random secret");
        settings.delivery.allow_private_targets = true;
        let err = settings.validate().expect_err("private targets");
        assert!(
            err.to_string().contains("delivery.allow_private_targets"),
            "{err}"
        );
    }

    #[test]
    fn the_dev_secrets_key_is_refused_beyond_loopback() {
        let mut settings = Settings::default();
        let ring = settings
            .keyring_for("http.bind", "127.0.0.1:8080")
            .expect("loopback");
        assert!(ring.active_is_dev());
        let err = settings
            .keyring_for("worker.http_bind", "0.0.0.0:9090")
            .expect_err("dev key beyond loopback");
        let text = err.to_string();
        assert!(
            text.contains("secrets.keys")
                && text.contains("worker.http_bind (0.0.0.0:9090)")
                && text.contains("HOOKLINE__SECRETS__KEYS"),
            "{text}"
        );
        production_keys(&mut settings);
        let ring = settings
            .keyring_for("http.bind", "0.0.0.0:8080")
            .expect("a real key");
        assert_eq!(ring.active_id(), "k1");
    }

    #[test]
    fn loopback_binds_are_told_apart() {
        assert!(is_loopback_bind("127.0.0.1:8080"));
        assert!(is_loopback_bind("[::1]:8080"));
        assert!(!is_loopback_bind("0.0.0.0:8080"));
        assert!(!is_loopback_bind("10.0.0.5:8080"));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let text = format!("{:?}", Settings::default());
        assert!(!text.contains(DEV_HS256_SECRET));
        assert!(!text.contains(hookline_domain::sealed::DEV_KEY_BASE64));
        assert!(!text.contains("guest:guest"));
    }

    #[test]
    fn example_file_parses_and_matches_the_defaults() {
        let text = include_str!("../hookline.example.toml");
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = ") || r.starts_with('['))
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let from_file: Settings = toml::from_str(&uncommented).expect("example parses");
        let defaults = Settings::default();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
        assert_eq!(
            from_file.auth.hs256_secret.expose_secret(),
            defaults.auth.hs256_secret.expose_secret()
        );
        assert_eq!(
            from_file.database.url.expose_secret(),
            defaults.database.url.expose_secret()
        );
        assert_eq!(
            from_file.amqp.url.expose_secret(),
            defaults.amqp.url.expose_secret()
        );
        assert_eq!(
            from_file.secrets.keys.expose_secret(),
            defaults.secrets.keys.expose_secret()
        );
    }

    /// `section.key` of every setting, read off the struct's `{:#?}` (fields at depth 1 are
    /// sections or top-level keys, at depth 2 keys of a section).
    fn keys_of_the_struct() -> std::collections::BTreeSet<String> {
        let text = format!("{:#?}", Settings::default());
        let mut keys = std::collections::BTreeSet::new();
        let mut section = String::new();
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            let Some((name, rest)) = line.trim_start().split_once(": ") else {
                continue;
            };
            match indent {
                4 if rest.ends_with('{') => section = name.to_owned(),
                4 => {
                    section.clear();
                    keys.insert(name.to_owned());
                }
                8 => {
                    keys.insert(format!("{section}.{name}"));
                }
                _ => {}
            }
        }
        keys
    }

    fn keys_of_the_example() -> std::collections::BTreeSet<String> {
        let mut keys = std::collections::BTreeSet::new();
        let mut section = String::new();
        for line in include_str!("../hookline.example.toml").lines() {
            // `#-` marks an optional key, unset by default.
            let Some(entry) = line.strip_prefix("# ").or_else(|| line.strip_prefix("#- ")) else {
                continue;
            };
            if let Some(name) = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((key, _)) = entry.split_once(" = ") {
                keys.insert(if section.is_empty() {
                    key.to_owned()
                } else {
                    format!("{section}.{key}")
                });
            }
        }
        keys
    }

    #[test]
    fn the_example_file_lists_every_key_and_the_readme_shows_it() {
        assert_eq!(keys_of_the_example(), keys_of_the_struct());
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(include_str!("../hookline.example.toml")),
            "README.md must contain crates/config/hookline.example.toml verbatim (Configuration)"
        );
    }
}
