//! What every handler shares: the pool, the authenticator, the rate limiter, settings.

use std::{num::NonZeroU32, sync::Arc};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
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
        }
    }

    /// Takes one token from the brand's bucket (a token bucket per brand, GCRA in governor),
    /// or answers 429 with the wait in `Retry-After`.
    pub fn rate_limit(&self, brand: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        match limiter.check_key(&brand.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                Err(ApiError::rate_limited(wait.as_secs_f64().ceil() as u64))
            }
        }
    }

    /// Drops idle brands' buckets so the limiter's memory follows active brands only.
    pub fn prune_rate_limits(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    pub async fn conn(&self) -> Result<hookline_store::PooledConn, ApiError> {
        self.pool
            .get()
            .await
            .map_err(|e| ApiError::from(hookline_store::StoreError::from(e)))
    }
}
