//! Handling one queue message, from its bytes to the recorded attempts of the deliveries it
//! points to. Plain async functions returning an [`Outcome`] per delivery, so they are tested
//! without a broker; the consumer around them only acknowledges.
//!
//! Each delivery is settled on its own: parked when its endpoint cannot take it (disabled, or
//! degraded and not the probe), deferred when its brand's or host's budget or the worker's
//! byte budget is full, or attempted. The capacity a delivery holds is released when that
//! delivery is done with it, never when the slowest delivery of its message ends.

use hookline_telemetry::{
    names,
    trace::{continue_trace, TraceContext},
};
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::{sync::OwnedSemaphorePermit, time::Instant};

use chrono::Utc;
use futures::future::join_all;
use hookline_domain::{
    lifecycle::{next_state, reason, AttemptResult},
    DeliveryMessage, HealthState, Keyring, NextState, RetrySchedule,
};
use hookline_store::{
    deliveries::{self, Job, Recorded, FAILURE, SUCCESS},
    models::NewAttempt,
    worker_queries, Pool, StoreError,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn, Instrument as _};
use uuid::Uuid;

use crate::{backoff::Backoff, endpoints::Endpoints};

use super::{
    body::{Bodies, EventBody, Loaded},
    budget::{host_of, Budgets, Busy, Slot},
    record::Recorder,
    request::SignedRequest,
    send::{Attempted, Sender, TransportError},
    take::Taker,
};

/// Margin on top of the request timeout while a delivery is being attempted: time to wait for
/// a slot, and to record the attempt after the request ended.
const RECORD_MARGIN: Duration = Duration::from_secs(5);

/// Payloads up to this stored size come with the take of their deliveries (one round trip
/// less per message); larger ones are loaded once the worker has room for them. A take holds
/// at most 1,024 pointers, so it carries at most 64 MiB of them in the worst case of all
/// distinct events, and typically far less.
const INLINE_PAYLOAD_BYTES: usize = 64 * 1024;

/// How long a delivery waits when this worker saw its endpoint go down after taking it: long
/// enough that its next take sees the stored health (and parks it).
const KNOWN_DOWN_DEFER: Duration = Duration::from_secs(5);

/// Webhooks remembered as stalled, at most (a bound on memory under a flood of them; past
/// it, new ones are simply taken and deferred).
const TURNED_AWAY_MAX: usize = 100_000;

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
    /// Its endpoint cannot take it now (the webhook is disabled, or degraded and this is not
    /// its probe): parked in Postgres, no attempt consumed. The reason is the stored one.
    Parked(&'static str),
    /// Its brand's or host's budget, or the worker's byte budget, was full: handed back to
    /// Postgres, due again after a short delay, no attempt consumed.
    Deferred,
    /// Not taken: its endpoint's budget is stalled or its endpoint keeps failing here. Left
    /// as Postgres has it, leased; published again when the lease runs out.
    LeftLeased,
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
            Outcome::Parked(_) => "parked",
            Outcome::Deferred => "deferred",
            Outcome::LeftLeased => "left_leased",
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
    /// Opens the webhook secrets that sign each request (`secrets.keys`).
    keyring: Arc<Keyring>,
    schedule: RetrySchedule,
    budgets: Budgets,
    bodies: Bodies,
    endpoints: Endpoints,
    /// The lease taken while attempting: at least the configured lease, and long enough to
    /// cover the request and its recording, so the scheduler does not re-publish a delivery
    /// that is in flight.
    attempt_lease: Duration,
    /// How long deliveries whose bytes do not fit wait before they are offered again.
    defer_delay: Duration,
    /// Takes the deliveries of concurrent messages together.
    taker: Taker,
    /// Webhooks whose budget was found stalled, until when: their pointers are not taken.
    turned_away: Arc<std::sync::Mutex<HashMap<Uuid, Instant>>>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("schedule", &self.schedule)
            .field("attempt_lease", &self.attempt_lease)
            .finish_non_exhaustive()
    }
}

/// How a delivery to send gets its slot.
enum Admission {
    Now(Slot),
    Wait(Duration),
}

impl Handler {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: Pool,
        sender: Sender,
        keyring: Arc<Keyring>,
        schedule: RetrySchedule,
        budgets: Budgets,
        bodies: Bodies,
        endpoints: Endpoints,
        lease: Duration,
        request_timeout: Duration,
        defer_delay: Duration,
    ) -> Handler {
        let attempt_lease = lease.max(request_timeout + RECORD_MARGIN);
        Handler {
            recorder: Recorder::start(pool.clone(), endpoints.clone()),
            taker: Taker::start(pool.clone(), attempt_lease, INLINE_PAYLOAD_BYTES),
            pool,
            sender,
            keyring,
            schedule,
            budgets,
            bodies,
            endpoints,
            attempt_lease,
            defer_delay,
            turned_away: Arc::default(),
        }
    }

    /// The worker's budgets (tests look at what is in flight).
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Handles the bytes of one queue message: one [`Outcome`] per delivery pointer in it.
    /// `stop` cuts in-flight requests short (shutdown after its grace period); their
    /// deliveries are then handed back, not recorded.
    ///
    /// An error means the database could not be reached before the deliveries were taken: the
    /// caller must let the message be delivered again.
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

    /// [`Handler::handle_message`] without queue permits or acknowledgement, and without
    /// waiting for an unreachable database.
    pub async fn handle_batch(
        &self,
        messages: &[DeliveryMessage],
        stop: &CancellationToken,
    ) -> Result<Vec<Outcome>, StoreError> {
        self.handle_message(messages, None, false, || {}, stop)
            .await
    }

    /// Takes the deliveries of `messages`. With `wait`, an unreachable database is waited for
    /// (with backoff, until `stop`): the message stays unacknowledged meanwhile instead of going
    /// back to the queue, where every return counts toward the queue's delivery limit and an
    /// outage would dead-letter healthy messages.
    async fn take(
        &self,
        messages: &[DeliveryMessage],
        wait: bool,
        stop: &CancellationToken,
    ) -> Result<worker_queries::Taken, StoreError> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match self.taker.take(messages).await {
                Err(e) if wait && e.is_unavailable() && !stop.is_cancelled() => {
                    warn!(error = %e, "database unavailable; holding the message until it returns");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                        () = stop.cancelled() => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    /// Handles the deliveries of one queue message: takes them all in one statement (then
    /// calls `taken`: the consumer acknowledges the message there, since Postgres now owns
    /// what happens to them), parks or defers what cannot be sent now, and attempts the rest
    /// concurrently, each recorded through the group recorder. `permits` are the queue's
    /// backpressure, one per pointer: each delivery gives its own back when its request starts
    /// or it is otherwise settled. Returns once every delivery is settled.
    ///
    /// An error before `taken` means the database could not be reached and nothing was taken
    /// (with `wait_for_database`, only once `stop` fired); after it, what failed is logged and
    /// left to the leases (the scheduler re-publishes).
    pub async fn handle_message(
        &self,
        messages: &[DeliveryMessage],
        mut permits: Option<OwnedSemaphorePermit>,
        wait_for_database: bool,
        taken: impl FnOnce(),
        stop: &CancellationToken,
    ) -> Result<Vec<Outcome>, StoreError> {
        // Pointers to endpoints known to be stalled or failing are not taken at all (see
        // [`Handler::keeps`]).
        let kept: Vec<DeliveryMessage> =
            messages.iter().filter(|m| self.keeps(m)).copied().collect();
        let mut outcomes = Vec::with_capacity(messages.len());
        outcomes.extend((kept.len()..messages.len()).map(|_| Outcome::LeftLeased));
        if kept.is_empty() {
            taken();
            for o in &outcomes {
                count(o);
            }
            return Ok(outcomes);
        }
        // A connection is held only around queries, never across requests: the pool is much
        // smaller than the number of requests in flight. The take goes through the group
        // taker; the rest (parking, large payloads, deferrals) is rare and asks for its own.
        let mut batch = self.take(&kept, wait_for_database, stop).await?;
        let taken_at = Instant::now();
        taken();
        outcomes.extend(batch.gone.iter().map(|_| Outcome::Gone));
        outcomes.extend(batch.stale.iter().map(|_| Outcome::Stale));
        let mut inline = std::mem::take(&mut batch.payloads);

        // Endpoints that cannot take them now: parked, no attempt consumed; those this worker
        // saw go down since the take read their health: deferred (their next take parks them).
        let mut to_send = Vec::with_capacity(batch.jobs.len());
        let mut parked: HashMap<&'static str, Vec<DeliveryMessage>> = HashMap::new();
        let mut deferred: Vec<(DeliveryMessage, Duration)> = Vec::new();
        for job in batch.jobs {
            match parking_reason(&job) {
                Some(why) => parked.entry(why).or_default().push(key(&job)),
                None if self.went_down(&job) => deferred.push((key(&job), known_down_delay())),
                None => to_send.push(job),
            }
        }
        for (why, keys) in &parked {
            let parked = async {
                let mut conn = self.pool.get().await?;
                deliveries::park(&mut conn, keys, why).await
            };
            if let Err(e) = parked.await {
                warn!(error = %e, "could not park deliveries; their lease brings them back");
            }
            outcomes.extend(keys.iter().map(|_| Outcome::Parked(why)));
        }

        // A slot per delivery or a deferral; then each admitted event's body, once.
        let now = Utc::now();
        let mut admitted = Vec::with_capacity(to_send.len());
        for job in to_send {
            let host = host_of(&job.webhook.endpoint);
            match self.budgets.try_acquire(&job.webhook.brand_id, &host) {
                Ok(slot) => admitted.push((job, host, Admission::Now(slot))),
                Err(Busy::Wait(wait)) => admitted.push((job, host, Admission::Wait(wait))),
                Err(Busy::Defer(delay)) => {
                    if self.budgets.is_stalled(&job.webhook.brand_id, &host) {
                        self.turn_away(job.webhook.id, delay);
                    }
                    deferred.push((key(&job), delay));
                }
            }
        }
        let metas: Vec<_> = admitted.iter().map(|(j, _, _)| &j.event).collect();
        let bodies = match self.bodies.load(&self.pool, &metas, &mut inline).await {
            Ok(bodies) => bodies,
            Err(e) => {
                warn!(error = %e, "could not load payloads; their lease brings them back");
                for o in &outcomes {
                    count(o);
                }
                return Ok(outcomes);
            }
        };
        // What came with the take for deliveries that were deferred.
        drop(inline);
        let mut sends = Vec::with_capacity(admitted.len());
        for (job, host, admission) in admitted {
            let body = match bodies.get(&job.event.id) {
                Some(Loaded::Body(body)) => Ok(body.clone()),
                Some(Loaded::Invalid(e)) => Err(e.clone()),
                Some(Loaded::NoRoom) | None => {
                    deferred.push((key(&job), self.defer_delay));
                    continue;
                }
            };
            let permit = permits.as_mut().and_then(|p| p.split(1));
            sends.push((job, body, host, admission, permit));
        }
        drop(permits);
        if !deferred.is_empty() {
            self.defer(&deferred, now).await;
            outcomes.extend(deferred.iter().map(|_| Outcome::Deferred));
        }

        let lease_ends = taken_at + self.attempt_lease;
        let attempted = join_all(
            sends
                .into_iter()
                .map(|(job, body, host, admission, permit)| {
                    // The attempt continues the trace stored with its event; its span gets
                    // that parent before it is first entered, hence not `#[instrument]`.
                    let span = tracing::info_span!(
                        "attempt",
                        brand = %job.webhook.brand_id,
                        webhook_id = %job.delivery.webhook_id,
                        event_id = %job.delivery.event_id,
                        attempt = job.delivery.attempt_count + 1,
                        http.response.status_code = tracing::field::Empty,
                        otel.status_code = tracing::field::Empty,
                    );
                    let trace = continue_trace(
                        &span,
                        job.event.traceparent.as_deref(),
                        job.event.tracestate.as_deref(),
                    );
                    self.attempt(job, body, host, admission, permit, lease_ends, stop, trace)
                        .instrument(span)
                }),
        )
        .await;
        for outcome in attempted {
            match outcome {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    warn!(error = %e, "could not settle a delivery; its lease brings it back")
                }
            }
        }
        for outcome in &outcomes {
            debug!(?outcome, "delivery handled");
            count(outcome);
        }
        Ok(outcomes)
    }

    /// Whether a pointer is worth taking. One whose webhook's budget was just found stalled
    /// (its requests hang), or whose endpoint failed its last `failure_threshold` attempts in
    /// this worker, is left alone: not taken, nothing written. Postgres still holds it, leased
    /// by whoever published it (`worker.lease`), and the scheduler publishes it again when that
    /// lease runs out — the lease is its deferral. Taking and deferring each of a hostile
    /// brand's thousands of queued deliveries cost the database two writes apiece, ahead of
    /// every other brand's messages in the queue.
    fn keeps(&self, pointer: &DeliveryMessage) -> bool {
        if self.endpoints.is_tripped(&pointer.webhook_id) {
            return false;
        }
        let mut away = self
            .turned_away
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match away.get(&pointer.webhook_id) {
            Some(until) if *until > Instant::now() => false,
            Some(_) => {
                away.remove(&pointer.webhook_id);
                true
            }
            None => true,
        }
    }

    /// Turns the webhook's pointers away for `delay` (its budget is stalled).
    fn turn_away(&self, webhook_id: Uuid, delay: Duration) {
        let mut away = self
            .turned_away
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if away.len() >= TURNED_AWAY_MAX {
            away.retain(|_, until| *until > now);
        }
        if away.len() < TURNED_AWAY_MAX {
            away.insert(webhook_id, now + delay);
        }
    }

    /// Whether this worker saw the delivery's endpoint leave `healthy` after the take read
    /// it as healthy (a probe is sent regardless: it is what brings the endpoint back).
    fn went_down(&self, job: &Job) -> bool {
        !is_probe(job) && self.endpoints.is_known_down(&job.webhook.id)
    }

    /// Hands deferred deliveries back to Postgres, due after the longest of their delays (they
    /// are deferred for the same full budgets).
    async fn defer(&self, deferred: &[(DeliveryMessage, Duration)], now: chrono::DateTime<Utc>) {
        let delay = deferred
            .iter()
            .map(|(_, d)| *d)
            .max()
            .unwrap_or(self.defer_delay);
        let keys: Vec<DeliveryMessage> = deferred.iter().map(|(k, _)| *k).collect();
        let at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
        metrics::counter!(names::DEFERRED).increment(keys.len() as u64);
        let released = async {
            let mut conn = self.pool.get().await?;
            deliveries::release(&mut conn, &keys, at).await
        };
        if let Err(e) = released.await {
            warn!(error = %e, "could not defer deliveries; their lease brings them back");
        }
    }

    /// One attempt of a delivery this worker has taken: its slot, the signed request (carrying
    /// `trace`, the attempt span's context), and the recorded outcome.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        job: Job,
        body: Result<Arc<EventBody>, String>,
        host: String,
        admission: Admission,
        permit: Option<OwnedSemaphorePermit>,
        lease_ends: Instant,
        stop: &CancellationToken,
        trace: TraceContext,
    ) -> Result<Outcome, StoreError> {
        let message = key(&job);
        let slot = match admission {
            Admission::Now(slot) => slot,
            Admission::Wait(wait) => {
                match self
                    .budgets
                    .acquire(&job.webhook.brand_id, &host, wait)
                    .await
                {
                    Ok(slot) => slot,
                    Err(delay) => {
                        drop(permit);
                        let mut conn = self.pool.get().await?;
                        let at = Utc::now()
                            + chrono::Duration::from_std(delay)
                                .unwrap_or(chrono::Duration::seconds(1));
                        metrics::counter!(names::DEFERRED).increment(1);
                        deliveries::release(&mut conn, &[message], at).await?;
                        return Ok(Outcome::Deferred);
                    }
                }
            }
        };
        if self.went_down(&job) {
            // Its endpoint went down while this delivery waited for a slot.
            drop(slot);
            drop(permit);
            let mut conn = self.pool.get().await?;
            let at =
                Utc::now() + chrono::Duration::from_std(known_down_delay()).unwrap_or_default();
            metrics::counter!(names::DEFERRED).increment(1);
            deliveries::release(&mut conn, &[message], at).await?;
            return Ok(Outcome::Deferred);
        }
        // The request starts: from here on only the slot of its brand and host is held.
        drop(permit);
        let started = Utc::now();
        let prepared = body.and_then(|body| {
            SignedRequest::prepare(
                &job,
                &self.keyring,
                body.bytes.clone(),
                started,
                self.sender.user_agent(),
                &trace,
            )
            .map_err(|e| {
                // Not the endpoint's fault: the operator's keys (removed too early?) or the row.
                tracing::error!(webhook_id = %job.webhook.id, error = %e, "cannot sign the delivery");
                e.to_string()
            })
        });
        let attempted = match prepared {
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
                result: Err(TransportError::Other(e)),
                elapsed: Duration::ZERO,
            },
        };
        drop(slot);
        let span = tracing::Span::current();
        if let Ok(response) = &attempted.result {
            span.record("http.response.status_code", response.status);
        }
        if !attempted.is_success() {
            span.record("otel.status_code", "ERROR");
        }
        metrics::histogram!(names::ATTEMPT_DURATION).record(attempted.elapsed.as_secs_f64());
        if job.delivery.attempt_count == 0 {
            let lag = (started - job.event.created).to_std().unwrap_or_default();
            metrics::histogram!(names::FIRST_ATTEMPT_LAG).record(lag.as_secs_f64());
        }
        let (result, retry_after) = classify(&attempted);
        self.endpoints.note(job.webhook.id, result);
        let next = next_state(
            job.delivery.attempt_count,
            job.delivery.manual_retry,
            result,
            retry_after,
            &self.schedule,
            Utc::now(),
        );
        if let Err(e) = &attempted.result {
            debug!(error = %e, "attempt failed");
        }
        let recorded = Arc::new(Recorded {
            attempt: attempt_row(&job, &attempted, started),
            next: next.clone(),
            result,
            probe: is_probe(&job),
        });
        self.record(recorded, lease_ends, stop).await?;
        if next.is_exhausted() && !job.delivery.manual_retry {
            self.endpoints.exhausted(&job).await;
        }
        Ok(Outcome::Attempted(next))
    }

    /// Records an attempt that was made. While the database is unreachable it keeps trying,
    /// with backoff, as long as the attempt lease holds (the scheduler leaves the delivery
    /// alone until then) and the worker is not stopping: once the database returns, the
    /// attempt is on record and nothing is sent twice. Past that it gives up; the delivery is
    /// sent again when its lease runs out.
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

/// [`KNOWN_DOWN_DEFER`], ±50 %, so what was turned away does not come back as one burst.
fn known_down_delay() -> Duration {
    use rand::Rng as _;
    KNOWN_DOWN_DEFER.mul_f64(rand::rng().random_range(0.5..=1.5))
}

fn key(job: &Job) -> DeliveryMessage {
    DeliveryMessage {
        webhook_id: job.delivery.webhook_id,
        event_id: job.delivery.event_id,
    }
}

/// Whether this delivery is the probe its degraded endpoint is waiting for.
fn is_probe(job: &Job) -> bool {
    job.webhook.health_state() == HealthState::Degraded
        && job.webhook.probe_event_id == Some(job.event.id)
}

/// Why a taken delivery must not be sent now, if it must not: its webhook is disabled, or
/// degraded and this delivery is not its probe.
fn parking_reason(job: &Job) -> Option<&'static str> {
    match job.webhook.health_state() {
        HealthState::Disabled => Some(reason::WEBHOOK_DISABLED),
        _ if !job.webhook.enabled => Some(reason::WEBHOOK_DISABLED),
        HealthState::Degraded if !is_probe(job) => Some(reason::ENDPOINT_DEGRADED),
        _ => None,
    }
}

/// How the attempt ended for the lifecycle, and the `Retry-After` it asked for.
fn classify(attempted: &Attempted) -> (AttemptResult, Option<Duration>) {
    match &attempted.result {
        Ok(r) => (AttemptResult::of_status(r.status), r.retry_after),
        Err(_) => (AttemptResult::Unreachable, None),
    }
}

fn count(outcome: &Outcome) {
    metrics::counter!(names::DELIVERY_OUTCOMES, "outcome" => outcome.label()).increment(1);
}

/// The attempt row: the request as sent, and the response or the transport error.
fn attempt_row(job: &Job, attempted: &Attempted, started: chrono::DateTime<Utc>) -> NewAttempt {
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

    #[test]
    fn attempts_are_classified_for_the_lifecycle() {
        assert_eq!(
            classify(&answered(204, None)),
            (AttemptResult::Delivered, None)
        );
        assert_eq!(classify(&answered(410, None)), (AttemptResult::Gone, None));
        let later = Some(Duration::from_secs(9));
        assert_eq!(
            classify(&answered(429, later)),
            (AttemptResult::Refused, later)
        );
        let refused = Attempted {
            request_headers: serde_json::json!({}),
            result: Err(TransportError::Refused("refused".into())),
            elapsed: Duration::ZERO,
        };
        assert_eq!(classify(&refused), (AttemptResult::Unreachable, None));
    }
}
