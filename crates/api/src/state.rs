//! What every handler shares: the pool, the authenticator, the rate limiter, settings.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use governor::{clock::Clock as _, DefaultKeyedRateLimiter, Quota, RateLimiter};
use hookline_config::Settings;
use hookline_domain::{Keyring, UrlPolicy};
use hookline_store::Pool;

use crate::{auth::Authenticator, dispatch::Dispatcher, error::ApiError, ingest::IngestQueue};

pub struct AppState {
    pub pool: Pool,
    pub auth: Authenticator,
    pub settings: Arc<Settings>,
    pub url_policy: UrlPolicy,
    /// Seals webhook secrets before they are written and opens them to show them to their
    /// owner (`secrets`).
    pub keyring: Arc<Keyring>,
    /// Publishes delivery messages after each ingest commit.
    pub dispatcher: Dispatcher,
    /// Stores single events in group commits.
    pub ingest: IngestQueue,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    failed_auth: Option<FailedAuthLimiter>,
}

/// Requests that fail authentication, counted per client IP. An IP whose bucket runs dry is
/// refused (429) until it refills, before its next token is even verified: a credential
/// stuffing or garbage flood costs a map lookup, not a signature check per request.
struct FailedAuthLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// IPs refused until the instant given.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Whether `blocked` may hold anything: every authenticated request asks, and while no IP
    /// is blocked (nearly always) the answer costs an atomic load, not a lock.
    any_blocked: AtomicBool,
}

impl FailedAuthLimiter {
    fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        if !self.any_blocked.load(Ordering::Relaxed) {
            return None;
        }
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let until = blocked.get(&ip)?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failure; the wait when the IP is now over its limit.
    fn failed(&self, ip: IpAddr) -> Option<Duration> {
        let not_until = self.limiter.check_key(&ip).err()?;
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked.insert(ip, Instant::now() + wait);
        self.any_blocked.store(true, Ordering::Relaxed);
        Some(wait)
    }

    fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked.retain(|_, until| *until > now);
        self.any_blocked
            .store(!blocked.is_empty(), Ordering::Relaxed);
    }
}

/// Whole seconds to wait, at least one (a `Retry-After: 0` invites an immediate retry).
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(
        settings: Arc<Settings>,
        pool: Pool,
        auth: Authenticator,
        keyring: Keyring,
        dispatcher: Dispatcher,
    ) -> Self {
        let ingest = IngestQueue::start(pool.clone(), settings.worker.lease);
        let rl = &settings.rate_limit;
        let limiter = rl.enabled.then(|| {
            let per_second = NonZeroU32::new(rl.per_second).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(rl.burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
        });
        let failed_auth = rl.enabled.then(|| {
            let per_minute = NonZeroU32::new(rl.failed_auth_per_minute).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(rl.failed_auth_burst).unwrap_or(NonZeroU32::MIN);
            FailedAuthLimiter {
                limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
                blocked: Mutex::new(HashMap::new()),
                any_blocked: AtomicBool::new(false),
            }
        });
        let url_policy = UrlPolicy {
            allow_http: settings.delivery.allow_http,
            allow_private: settings.delivery.allow_private_targets,
        };
        Self {
            pool,
            auth,
            settings,
            url_policy,
            keyring: Arc::new(keyring),
            dispatcher,
            ingest,
            limiter,
            failed_auth,
        }
    }

    /// Takes one token from the brand's bucket (a token bucket per brand, GCRA in governor),
    /// or answers 429 with the wait in `Retry-After`.
    pub fn rate_limit(&self, brand: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&brand.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            ApiError::rate_limited(retry_after_secs(wait))
        })
    }

    /// Charges a batch of `events` whose request already paid for one (see
    /// [`crate::auth::Publisher`]): the other `events - 1` tokens at once. A batch larger than
    /// the whole bucket could never pass: that is a 422 that says so, not a 429 that would be
    /// retried forever.
    pub fn rate_limit_batch(&self, brand: &str, events: usize) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let burst = self.settings.rate_limit.burst;
        if u32::try_from(events).map_or(true, |n| n > burst) {
            return Err(ApiError::validation(std::collections::BTreeMap::from([(
                "events".to_owned(),
                format!(
                    "{events} events cost more than this API's rate-limit burst of {burst}; \
                     send smaller batches"
                ),
            )])));
        }
        let Some(rest) = u32::try_from(events - 1).ok().and_then(NonZeroU32::new) else {
            return Ok(());
        };
        match limiter.check_key_n(&brand.to_owned(), rest) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                Err(ApiError::rate_limited(retry_after_secs(wait)))
            }
            // Cannot happen below the burst checked above; refused the same way if it does.
            Err(_) => Err(ApiError::rate_limited(1)),
        }
    }

    /// 429 while `ip` is over its failed-authentication limit.
    pub fn check_auth_blocked(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        match (&self.failed_auth, ip) {
            (Some(limiter), Some(ip)) => match limiter.blocked_for(ip) {
                Some(wait) => Err(ApiError::rate_limited(retry_after_secs(wait))),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Counts a failed authentication from `ip`: `refusal` itself, or a 429 once the IP is
    /// over its limit.
    pub fn auth_failed(&self, ip: Option<IpAddr>, refusal: ApiError) -> ApiError {
        match (&self.failed_auth, ip) {
            (Some(limiter), Some(ip)) => match limiter.failed(ip) {
                Some(wait) => {
                    tracing::info!(%ip, "failed-authentication limit reached");
                    ApiError::rate_limited(retry_after_secs(wait))
                }
                None => refusal,
            },
            _ => refusal,
        }
    }

    /// Drops idle brands' buckets so the limiter's memory follows active brands only.
    pub fn prune_rate_limits(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(failed) = &self.failed_auth {
            failed.prune();
        }
    }

    /// The client's address for per-IP limits: the last entry of `rate_limit.client_ip_header`
    /// when configured (what the operator's load balancer appended), else the TCP peer.
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<IpAddr> {
        if let Some(name) = &self.settings.rate_limit.client_ip_header {
            return req
                .headers()
                .get_all(name.as_str())
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last()
                .and_then(|ip| ip.trim().parse().ok());
        }
        req.peer_addr().map(|addr| addr.ip())
    }

    pub async fn conn(&self) -> Result<hookline_store::PooledConn, ApiError> {
        self.pool
            .get()
            .await
            .map_err(|e| ApiError::from(hookline_store::StoreError::from(e)))
    }
}
