//! Handling one queue message, from its bytes to the recorded attempts of the deliveries it
//! points to. A plain async function returning an [`Outcome`] per delivery, so it is tested
//! without a broker; the consumer around it only acknowledges.

use hookline_telemetry::names;
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use hookline_domain::{DeliveryMessage, RetrySchedule};
use hookline_store::{
    deliveries::{self, Job, NextState, Recorded, FAILURE, SUCCESS},
    models::{Delivery, NewAttempt},
    worker_queries, Pool, StoreError,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::backoff::Backoff;

use super::{
    limiter::EndpointLimiter,
    record::Recorder,
    request::SignedRequest,
    send::{Attempted, Sender, TransportError},
};

/// How long work for an endpoint at its in-flight cap waits before the scheduler offers it
/// again: short, because the cap frees as soon as one request to that endpoint ends.
pub const DEFER_DELAY: Duration = Duration::from_millis(250);

/// Margin on top of the request timeout while a delivery is being attempted: time to record the
/// attempt after the request ended.
const RECORD_MARGIN: Duration = Duration::from_secs(5);

/// What became of one delivery pointer. Every variant is acknowledged: the database now says what is
/// owed, whatever the message said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a delivery message; dropped with a warning.
    Malformed,
    /// The delivery no longer exists (its webhook or event was deleted).
    Gone,
    /// A stale or repeated message: the delivery is final, not due, or another handler has it.
    Stale,
    /// The webhook is disabled: the delivery ended FAILURE (`webhook_disabled`) unsent.
    Disabled,
    /// The endpoint stayed at its in-flight cap for [`DEFER_DELAY`]: handed back, due in
    /// [`DEFER_DELAY`].
    Deferred,
    /// An attempt was made and recorded; the delivery moved on to this state.
    Attempted(NextState),
    /// Shutdown cut the request short: nothing recorded, the delivery is due again now.
    HandedBack,
}

impl Outcome {
    /// The `outcome` label of the outcome counter.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Malformed => "malformed",
            Outcome::Gone => "gone",
            Outcome::Stale => "stale",
            Outcome::Disabled => "disabled",
            Outcome::Deferred => "deferred",
            Outcome::Attempted(NextState::Success) => "success",
            Outcome::Attempted(NextState::Retry { .. }) => "retry",
            Outcome::Attempted(NextState::Failure) => "failure",
            Outcome::HandedBack => "handed_back",
        }
    }
}

/// Everything one delivery needs, shared by every message a worker handles.
#[derive(Clone)]
pub struct Handler {
    pool: Pool,
    /// Writes attempts of concurrent deliveries together.
    recorder: Recorder,
    sender: Sender,
    schedule: RetrySchedule,
    limiter: EndpointLimiter,
    /// The lease taken while attempting: at least the configured lease, and long enough to
    /// cover the request and its recording, so the scheduler does not re-publish a delivery
    /// that is in flight.
    attempt_lease: Duration,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("schedule", &self.schedule)
            .field("attempt_lease", &self.attempt_lease)
            .finish_non_exhaustive()
    }
}

impl Handler {
    pub fn new(
        pool: Pool,
        sender: Sender,
        schedule: RetrySchedule,
        limiter: EndpointLimiter,
        lease: Duration,
        request_timeout: Duration,
    ) -> Handler {
        Handler {
            recorder: Recorder::start(pool.clone()),
            pool,
            sender,
            schedule,
            limiter,
            attempt_lease: lease.max(request_timeout + RECORD_MARGIN),
        }
    }

    /// Handles the bytes of one queue message: one [`Outcome`] per delivery pointer in it.
    /// `stop` cuts in-flight requests short (shutdown after its grace period); their
    /// deliveries are then handed back, not recorded.
    ///
    /// An error means the database could not be reached: the caller must let the message be
    /// delivered again (what was recorded meanwhile is then stale and dropped).
    pub async fn handle(
        &self,
        payload: &[u8],
        stop: &CancellationToken,
    ) -> Result<Vec<Outcome>, StoreError> {
        match Handler::decode(payload) {
            Some(messages) => self.handle_batch(&messages, stop).await,
            None => Ok(vec![Outcome::Malformed]),
        }
    }

    /// The delivery pointers of a queue message; `None` (logged and counted as malformed)
    /// when it is not a delivery message, which the caller acknowledges and drops.
    pub fn decode(payload: &[u8]) -> Option<Vec<DeliveryMessage>> {
        match DeliveryMessage::batch_from_bytes(payload) {
            Ok(messages) => Some(messages),
            Err(e) => {
                warn!(error = %e, bytes = payload.len(), "dropping a message that is not a delivery message");
                count(&Outcome::Malformed);
                None
            }
        }
    }

    /// Handles the deliveries of one queue message: takes them all in one statement, then
    /// attempts them concurrently (the caller holds a concurrency permit for each), each
    /// recorded through the group recorder. Returns once every one is settled.
    pub async fn handle_batch(
        &self,
        messages: &[DeliveryMessage],
        stop: &CancellationToken,
    ) -> Result<Vec<Outcome>, StoreError> {
        // A connection is held only around queries, never across requests: the pool is much
        // smaller than the number of requests in flight.
        let taken_at = Instant::now();
        let taken = {
            let mut conn = self.pool.get().await?;
            worker_queries::take_for_attempts(&mut conn, messages, self.attempt_lease).await?
        };
        let mut outcomes = Vec::with_capacity(messages.len());
        outcomes.extend(taken.gone.iter().map(|_| Outcome::Gone));
        outcomes.extend(taken.stale.iter().map(|_| Outcome::Stale));
        let (jobs, disabled): (Vec<Job>, Vec<Job>) =
            taken.jobs.into_iter().partition(|job| job.webhook.enabled);
        if !disabled.is_empty() {
            let mut conn = self.pool.get().await?;
            for job in &disabled {
                let d = &job.delivery;
                deliveries::finish_unsent(&mut conn, d.webhook_id, d.event_id, "webhook_disabled")
                    .await?;
                outcomes.push(Outcome::Disabled);
            }
        }
        // Every attempt runs to its end before an error is returned: none is cut off midway.
        let lease_ends = taken_at + self.attempt_lease;
        let attempted = join_all(
            jobs.into_iter()
                .map(|job| self.attempt(job, lease_ends, stop)),
        )
        .await;
        for outcome in attempted {
            outcomes.push(outcome?);
        }
        for outcome in &outcomes {
            debug!(?outcome, "delivery handled");
            count(outcome);
        }
        Ok(outcomes)
    }

    /// One attempt of a delivery this worker has taken: a slot for its endpoint, the signed
    /// request, and the recorded outcome.
    #[tracing::instrument(skip_all, fields(
        brand = %job.webhook.brand_id,
        webhook_id = %job.delivery.webhook_id,
        event_id = %job.delivery.event_id,
    ))]
    async fn attempt(
        &self,
        job: Job,
        lease_ends: Instant,
        stop: &CancellationToken,
    ) -> Result<Outcome, StoreError> {
        let message = DeliveryMessage {
            webhook_id: job.delivery.webhook_id,
            event_id: job.delivery.event_id,
        };
        // The delivery is ours until the attempt lease ends; deferring or handing it back
        // releases it for the scheduler.
        let Some(slot) = self
            .limiter
            .acquire(&job.webhook.endpoint, DEFER_DELAY)
            .await
        else {
            let mut conn = self.pool.get().await?;
            deliveries::release(&mut conn, &[message], Utc::now() + DEFER_DELAY).await?;
            return Ok(Outcome::Deferred);
        };
        let started = Utc::now();
        let attempted = match SignedRequest::prepare(&job, started, self.sender.user_agent()) {
            Ok(request) => {
                tokio::select! {
                    attempted = self.sender.send(&request, started) => attempted,
                    () = stop.cancelled() => {
                        drop(slot);
                        let mut conn = self.pool.get().await?;
                        deliveries::release(&mut conn, &[message], Utc::now()).await?;
                        return Ok(Outcome::HandedBack);
                    }
                }
            }
            // Recorded as a failed attempt rather than retried silently: an operator sees it in
            // the event log, and the schedule still ends it.
            Err(e) => Attempted {
                request_headers: serde_json::json!({}),
                result: Err(TransportError::Other(e.to_string())),
                elapsed: Duration::ZERO,
            },
        };
        drop(slot);
        metrics::histogram!(names::ATTEMPT_DURATION).record(attempted.elapsed.as_secs_f64());
        if job.delivery.attempt_count == 0 {
            let lag = (started - job.event.created).to_std().unwrap_or_default();
            metrics::histogram!(names::FIRST_ATTEMPT_LAG).record(lag.as_secs_f64());
        }
        let next = next_state(&job.delivery, &attempted, &self.schedule, Utc::now());
        if let Err(e) = &attempted.result {
            debug!(error = %e, "attempt failed");
        }
        let recorded = Arc::new(Recorded {
            attempt: attempt_row(&job, &attempted, started),
            next: next.clone(),
        });
        self.record(recorded, lease_ends, stop).await?;
        Ok(Outcome::Attempted(next))
    }

    /// Records an attempt that was made. While the database is unreachable it keeps trying,
    /// with backoff, as long as the attempt lease holds (the scheduler leaves the delivery
    /// alone until then) and the worker is not stopping: once the database returns, the
    /// attempt is on record and nothing is sent twice. Past that it gives up; the message goes
    /// back to the queue and the delivery is sent again when its lease runs out.
    async fn record(
        &self,
        recorded: Arc<Recorded>,
        lease_ends: Instant,
        stop: &CancellationToken,
    ) -> Result<(), StoreError> {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        loop {
            match self.recorder.record(recorded.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_unavailable() && !stop.is_cancelled() => {
                    let delay = backoff.next_delay();
                    if Instant::now() + delay >= lease_ends {
                        return Err(e);
                    }
                    warn!(error = %e, "could not record an attempt; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.cancelled() => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn count(outcome: &Outcome) {
    metrics::counter!(names::DELIVERY_OUTCOMES, "outcome" => outcome.label()).increment(1);
}

/// What the delivery becomes after `attempted`: SUCCESS on any 2xx; FAILURE after the one extra
/// attempt of a manual retry or the last step of the schedule; otherwise due again after the
/// schedule's delay, or the endpoint's `Retry-After` on a 429/503 (bounded by the schedule).
pub fn next_state(
    delivery: &Delivery,
    attempted: &Attempted,
    schedule: &RetrySchedule,
    now: DateTime<Utc>,
) -> NextState {
    if attempted.is_success() {
        return NextState::Success;
    }
    if delivery.manual_retry {
        return NextState::Failure;
    }
    let attempts_made = u32::try_from(delivery.attempt_count)
        .unwrap_or(0)
        .saturating_add(1);
    let retry_after = attempted.result.as_ref().ok().and_then(|r| r.retry_after);
    match schedule.next_delay(attempts_made, retry_after) {
        Some(delay) => NextState::Retry {
            at: now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
        },
        None => NextState::Failure,
    }
}

/// The attempt row: the request as sent, and the response or the transport error.
fn attempt_row(job: &Job, attempted: &Attempted, started: DateTime<Utc>) -> NewAttempt {
    let (status_code, headers, body, error) = match &attempted.result {
        Ok(r) => (
            Some(i32::from(r.status)),
            Some(r.headers.clone()),
            Some(r.body.clone()),
            None,
        ),
        Err(e) => (None, None, None, Some(e.to_string())),
    };
    NewAttempt {
        id: Uuid::now_v7(),
        webhook_id: job.delivery.webhook_id,
        event_id: job.delivery.event_id,
        created: started,
        status: if attempted.is_success() {
            SUCCESS
        } else {
            FAILURE
        }
        .to_owned(),
        request_endpoint: job.webhook.endpoint.clone(),
        request_headers: attempted.request_headers.clone(),
        response_status_code: status_code,
        response_headers: headers,
        response_body: body,
        response_time_ms: i32::try_from(attempted.elapsed.as_millis()).unwrap_or(i32::MAX),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::send::Response;
    use hookline_store::deliveries::PENDING;

    fn delivery(attempt_count: i32, manual_retry: bool) -> Delivery {
        let now = Utc::now();
        Delivery {
            webhook_id: Uuid::now_v7(),
            event_id: Uuid::now_v7(),
            status: PENDING.into(),
            status_reason: None,
            attempt_count,
            next_attempt_at: Some(now),
            leased_until: None,
            manual_retry,
            created: now,
            updated: now,
        }
    }

    fn answered(status: u16, retry_after: Option<Duration>) -> Attempted {
        Attempted {
            request_headers: serde_json::json!({}),
            result: Ok(Response {
                status,
                headers: serde_json::json!({}),
                body: String::new(),
                retry_after,
            }),
            elapsed: Duration::from_millis(5),
        }
    }

    fn schedule() -> RetrySchedule {
        RetrySchedule::parse("10s,20s", 0.0, Duration::from_secs(60)).expect("schedule")
    }

    #[test]
    fn any_2xx_succeeds_even_on_the_last_attempt() {
        let now = Utc::now();
        for status in [200, 202, 204, 299] {
            assert_eq!(
                next_state(
                    &delivery(2, false),
                    &answered(status, None),
                    &schedule(),
                    now
                ),
                NextState::Success
            );
        }
    }

    #[test]
    fn failures_follow_the_schedule_then_end() {
        let now = Utc::now();
        let at = |secs| NextState::Retry {
            at: now + chrono::Duration::seconds(secs),
        };
        assert_eq!(
            next_state(&delivery(0, false), &answered(500, None), &schedule(), now),
            at(10)
        );
        assert_eq!(
            next_state(&delivery(1, false), &answered(302, None), &schedule(), now),
            at(20)
        );
        assert_eq!(
            next_state(&delivery(2, false), &answered(500, None), &schedule(), now),
            NextState::Failure
        );
        let refused = Attempted {
            request_headers: serde_json::json!({}),
            result: Err(TransportError::Refused("refused".into())),
            elapsed: Duration::ZERO,
        };
        assert_eq!(
            next_state(&delivery(0, false), &refused, &schedule(), now),
            at(10)
        );
    }

    #[test]
    fn retry_after_replaces_the_delay_within_the_bound() {
        let now = Utc::now();
        assert_eq!(
            next_state(
                &delivery(0, false),
                &answered(429, Some(Duration::from_secs(45))),
                &schedule(),
                now
            ),
            NextState::Retry {
                at: now + chrono::Duration::seconds(45)
            }
        );
        assert_eq!(
            next_state(
                &delivery(0, false),
                &answered(503, Some(Duration::from_secs(3600))),
                &schedule(),
                now
            ),
            NextState::Retry {
                at: now + chrono::Duration::seconds(60)
            }
        );
    }

    #[test]
    fn a_manual_retry_is_one_attempt() {
        let now = Utc::now();
        assert_eq!(
            next_state(&delivery(0, true), &answered(500, None), &schedule(), now),
            NextState::Failure
        );
        assert_eq!(
            next_state(&delivery(5, true), &answered(200, None), &schedule(), now),
            NextState::Success
        );
    }
}
