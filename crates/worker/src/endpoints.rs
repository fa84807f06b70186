//! Endpoint health, orchestrated: the domain's health machine
//! ([`hookline_domain::lifecycle::transition`]) decides, the store writes
//! ([`hookline_store::health`]), and this module connects them to what the worker sees —
//! recorded attempts, due probes, webhooks whose parked deliveries are being released, and
//! deliveries that ran out of attempts.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::Utc;
use hookline_domain::{
    lifecycle::{transition, AttemptResult, HealthInput, HealthPolicy, Transition},
    DeliveryMessage, EventType, HealthState,
};
use hookline_store::{
    deliveries::{HealthChanged, Job, Recorded},
    health, Pool, StoreError,
};
use hookline_telemetry::names;
use serde_json::json;
use tracing::{info, warn};

/// Degraded webhooks looked at per scheduler round.
const PROBES_PER_ROUND: i64 = 100;

/// How long this worker remembers that a webhook left `healthy` (another worker may bring it
/// back meanwhile; past this, only the database says).
const DOWN_MEMORY: Duration = Duration::from_secs(60);

/// How long this worker holds back a webhook whose last `failure_threshold` attempts here all
/// failed, before it lets one more through (its own short circuit breaker, until the stored
/// health catches up; never longer, so a count the database missed cannot hold it forever).
const LOCAL_BREAK: Duration = Duration::from_secs(10);

/// Webhooks whose recent failures this worker counts, at most (a bound on memory; the count
/// only saves attempts, and the stored health is the one that decides).
const LOCAL_MAX: usize = 100_000;

/// The health policy and what carrying it out needs. Cheap to clone.
#[derive(Clone)]
pub struct Endpoints {
    pool: Pool,
    policy: Arc<HealthPolicy>,
    release_per_second: u32,
    /// Webhooks this worker moved out of `healthy`, and when. Deliveries to them that were
    /// taken before (waiting for a slot, or taken in the same burst) are deferred rather than
    /// sent: a fast-failing endpoint then costs its threshold of attempts, not a worker's whole
    /// backlog of them, before its deliveries are parked.
    down: Arc<Mutex<HashMap<uuid::Uuid, Instant>>>,
    /// Consecutive endpoint failures this worker saw per webhook, and the last one's time:
    /// reaches the threshold within the burst of attempts that the recorded counts and the
    /// health machine only see a commit later.
    failing: Arc<Mutex<HashMap<uuid::Uuid, (u32, Instant)>>>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("policy", &self.policy)
            .field("release_per_second", &self.release_per_second)
            .finish_non_exhaustive()
    }
}

impl Endpoints {
    pub fn new(pool: Pool, policy: HealthPolicy, release_per_second: u32) -> Endpoints {
        Endpoints {
            pool,
            policy: Arc::new(policy),
            release_per_second,
            down: Arc::default(),
            failing: Arc::default(),
        }
    }

    /// Counts an attempt's result toward this worker's own view of the endpoint.
    pub fn note(&self, webhook_id: uuid::Uuid, result: AttemptResult) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        if result == AttemptResult::Delivered {
            failing.remove(&webhook_id);
        } else if result.is_endpoint_failure() || result == AttemptResult::Gone {
            if failing.len() >= LOCAL_MAX && !failing.contains_key(&webhook_id) {
                failing.clear();
            }
            let entry = failing.entry(webhook_id).or_insert((0, Instant::now()));
            entry.0 = entry.0.saturating_add(1);
            entry.1 = Instant::now();
        }
    }

    /// Whether this worker moved the webhook out of `healthy` within the last minute (and
    /// not back), or saw its last `failure_threshold` attempts fail within the last ten
    /// seconds.
    pub fn is_known_down(&self, webhook_id: &uuid::Uuid) -> bool {
        if self.is_tripped(webhook_id) {
            return true;
        }
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        match down.get(webhook_id) {
            Some(at) if at.elapsed() < DOWN_MEMORY => true,
            Some(_) => {
                down.remove(webhook_id);
                false
            }
            None => false,
        }
    }

    /// Whether the webhook's last `failure_threshold` attempts in this worker failed, the last
    /// within ten seconds, and the stored health has not taken over yet.
    pub fn is_tripped(&self, webhook_id: &uuid::Uuid) -> bool {
        let failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing.get(webhook_id).is_some_and(|(n, at)| {
            *n >= self.policy.failure_threshold && at.elapsed() < LOCAL_BREAK
        })
    }

    fn remember(&self, webhook_id: uuid::Uuid, state: HealthState) {
        // The stored health decides from here on (its probe must get through).
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&webhook_id);
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if state == HealthState::Healthy {
            down.remove(&webhook_id);
        } else {
            down.retain(|_, at| at.elapsed() < DOWN_MEMORY);
            down.insert(webhook_id, Instant::now());
        }
    }

    pub fn failure_threshold(&self) -> u32 {
        self.policy.failure_threshold
    }

    /// Runs the health machine on webhooks whose counters a recorded group moved. `rows` is
    /// that group: it says which attempt was a probe and how it ended. Errors are logged: the
    /// counters are stored, so the next recorded attempt or due probe looks again.
    pub async fn evaluate(&self, changed: &[HealthChanged], rows: &[Arc<Recorded>]) {
        for c in changed {
            let probe = rows
                .iter()
                .filter(|r| r.probe && r.attempt.webhook_id == c.webhook_id)
                .map(|r| r.result == AttemptResult::Delivered)
                .reduce(|a, b| a || b);
            let input = HealthInput::Attempts {
                any_delivered: c.delivered,
                gone: c.gone,
                probe,
            };
            let before = c.health();
            if let Err(e) = self.step(c.webhook_id, &before, input).await {
                warn!(error = %e, webhook_id = %c.webhook_id, "could not update endpoint health");
            }
        }
    }

    /// One step of the machine for one webhook: writes the new health when it differs.
    async fn step(
        &self,
        webhook_id: uuid::Uuid,
        before: &hookline_domain::Health,
        input: HealthInput,
    ) -> Result<(), StoreError> {
        let (after, change) = transition(before, input, &self.policy, Utc::now());
        if &after == before {
            return Ok(());
        }
        let mut conn = self.pool.get().await?;
        let applied = health::apply(&mut conn, webhook_id, before.state, &after, change).await?;
        if applied.is_some() {
            self.remember(webhook_id, after.state);
        }
        if let (Some(row), Some(t)) = (applied, change) {
            metrics::counter!(names::ENDPOINT_TRANSITIONS, "to" => after.state.as_str())
                .increment(1);
            info!(webhook_id = %webhook_id, brand = %row.brand_id, transition = ?t,
                state = %after.state, "endpoint health changed");
        }
        Ok(())
    }

    /// One scheduler round of health work: disables degraded endpoints that have failed for
    /// the whole period, claims the due probes (returned, leased, for the caller to publish),
    /// and releases parked deliveries of recovered webhooks at the bounded rate (they become
    /// due now, so the caller's claim of due deliveries publishes them).
    pub async fn round(&self, lease: Duration) -> Result<Vec<DeliveryMessage>, StoreError> {
        let mut conn = self.pool.get().await?;
        let due = health::due_probes(&mut conn, PROBES_PER_ROUND).await?;
        let mut probes = Vec::new();
        for webhook in due {
            let before = webhook.health();
            let (after, change) =
                transition(&before, HealthInput::ProbeDue, &self.policy, Utc::now());
            if matches!(change, Some(Transition::Disabled(_))) {
                drop(conn);
                self.step(webhook.id, &before, HealthInput::ProbeDue)
                    .await?;
                conn = self.pool.get().await?;
                continue;
            }
            debug_assert_eq!(after.state, HealthState::Degraded);
            if let Some(probe) = health::claim_probe(&mut conn, webhook.id, lease).await? {
                probes.push(probe);
            }
        }
        let released = health::release_parked(&mut conn, self.release_per_second).await?;
        if released > 0 {
            metrics::counter!(names::PARKED_RELEASED).increment(released.unsigned_abs());
        }
        Ok(probes)
    }

    /// The gauges: webhooks per health state and parked deliveries.
    pub async fn report(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let c = health::counts(&mut conn).await?;
        for (state, n) in [
            (HealthState::Healthy, c.healthy),
            (HealthState::Degraded, c.degraded),
            (HealthState::Disabled, c.disabled),
        ] {
            metrics::gauge!(names::ENDPOINTS, "state" => state.as_str()).set(n as f64);
        }
        metrics::gauge!(names::PARKED_DELIVERIES).set(c.parked_deliveries as f64);
        Ok(())
    }

    /// Tells the brand that a delivery ran out of attempts (`WEBHOOK_EVENTS.DELIVERY_EXHAUSTED`),
    /// except for operational events themselves (no event about an event about an event), and
    /// never to the webhook that failed. Best effort: logged when it cannot be stored.
    pub async fn exhausted(&self, job: &Job) {
        let operational = EventType::parse(&job.event.event_type).is_ok_and(|t| t.is_operational());
        let Ok(event_type) = EventType::parse("WEBHOOK_EVENTS.DELIVERY_EXHAUSTED") else {
            return;
        };
        if operational {
            return;
        }
        let payload = json!({
            "webhookId": job.webhook.id,
            "endpoint": job.webhook.endpoint,
            "eventId": job.event.id,
            "eventType": job.event.event_type,
            "attempts": job.delivery.attempt_count + 1,
        });
        let stored = async {
            let mut conn = self.pool.get().await?;
            health::publish_event(
                &mut conn,
                &job.webhook.brand_id,
                &event_type,
                &payload,
                Some(job.webhook.id),
            )
            .await
        };
        if let Err(e) = stored.await {
            warn!(error = %e, webhook_id = %job.webhook.id, event_id = %job.event.id,
                "could not publish DELIVERY_EXHAUSTED");
        }
    }
}
