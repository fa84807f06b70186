//! Delivery rows: what the worker claims, sends and records, and what the event log shows.
//!
//! A delivery is PENDING until an attempt succeeds (SUCCESS) or the schedule is exhausted
//! (FAILURE). `next_attempt_at` says when it is due; `leased_until` says until when a message
//! for it is in the queue or in a worker. The scheduler publishes rows that are due and not
//! leased ([`claim_due`]), so neither a broker outage nor a killed worker loses one.
//!
//! Every statement that leases a row also moves its `next_attempt_at` to the lease's end: a
//! leased row is due again exactly when its lease runs out. So the scheduler's index on
//! `next_attempt_at` holds, below `now()`, only what is really due, and a round costs what is
//! due, never the backlog of rows sitting in the queue (before, every leased row had a past
//! due time and each round walked past all of them).

use std::{borrow::Borrow, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
pub use hookline_domain::NextState;
use hookline_domain::{AttemptResult, DeliveryMessage, DeliveryStatus};
use uuid::Uuid;

use crate::{
    models::{Attempt, Delivery, Event, NewAttempt, Webhook},
    prepared,
    schema::{attempts, deliveries, events, webhooks},
    StoreError,
};

pub const PENDING: &str = DeliveryStatus::Pending.as_str();
pub const PARKED: &str = DeliveryStatus::Parked.as_str();
pub const SUCCESS: &str = DeliveryStatus::Success.as_str();
pub const FAILURE: &str = DeliveryStatus::Failure.as_str();
pub const SKIPPED: &str = DeliveryStatus::Skipped.as_str();

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(60))
}

/// Everything the worker needs to send one delivery but the payload, which it loads once per
/// event however many deliveries share it ([`crate::worker_queries::load_payloads`]).
#[derive(Debug, Clone)]
pub struct Job {
    pub delivery: Delivery,
    pub event: EventMeta,
    pub webhook: Webhook,
}

/// An event without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    pub id: Uuid,
    pub brand_id: String,
    pub event_type: String,
    pub created: DateTime<Utc>,
    /// The W3C trace context stored with the event, which its attempts continue
    /// ([`crate::events::TraceContext`]).
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl From<Event> for EventMeta {
    /// Without a trace context: [`Event`] does not load it.
    fn from(e: Event) -> EventMeta {
        EventMeta {
            id: e.id,
            brand_id: e.brand_id,
            event_type: e.event_type,
            created: e.created,
            traceparent: None,
            tracestate: None,
        }
    }
}

/// `None` when the delivery no longer exists (its webhook or event was deleted).
pub async fn load_job(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_id: Uuid,
) -> Result<Option<Job>, StoreError> {
    let row = deliveries::table
        .inner_join(events::table)
        .inner_join(webhooks::table)
        .filter(deliveries::webhook_id.eq(webhook_id))
        .filter(deliveries::event_id.eq(event_id))
        .select((
            Delivery::as_select(),
            Event::as_select(),
            Webhook::as_select(),
            (events::traceparent, events::tracestate),
        ))
        .first::<(Delivery, Event, Webhook, (Option<String>, Option<String>))>(conn)
        .await
        .optional()?;
    Ok(row.map(
        |(delivery, event, webhook, (traceparent, tracestate))| Job {
            delivery,
            event: EventMeta {
                traceparent,
                tracestate,
                ..event.into()
            },
            webhook,
        },
    ))
}

/// An attempt to record and the state it leaves its delivery in.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub attempt: NewAttempt,
    pub next: NextState,
    /// How the attempt ended, for the endpoint's health counters.
    pub result: AttemptResult,
    /// Whether this attempt was the probe of a degraded endpoint.
    pub probe: bool,
}

/// A webhook whose health counters a recorded group moved and that the health machine must
/// look at: it is not healthy, reached the failure threshold, or answered `410 Gone`.
#[derive(Debug, Clone, QueryableByName)]
pub struct HealthChanged {
    #[diesel(sql_type = SqlUuid)]
    pub webhook_id: Uuid,
    #[diesel(sql_type = Text)]
    pub health: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub health_reason: Option<String>,
    #[diesel(sql_type = Int4)]
    pub consecutive_failures: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub failing_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub probe_interval_ms: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_probe_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub delivered: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub gone: bool,
}

impl HealthChanged {
    /// The health as the domain's machine reads it (counters already include the group).
    pub fn health(&self) -> hookline_domain::Health {
        crate::models::health_of(
            &self.health,
            self.health_reason.as_deref(),
            self.consecutive_failures,
            self.failing_since,
            self.probe_interval_ms,
            self.next_probe_at,
        )
    }
}

/// The health kind of an attempt as [`RECORD`] counts it.
fn health_kind(result: AttemptResult) -> &'static str {
    match result {
        AttemptResult::Delivered => "delivered",
        AttemptResult::Gone => "gone",
        r if r.is_endpoint_failure() => "failed",
        _ => "neutral",
    }
}

/// The first CTE of [`RECORD`] and [`RECORD_DELIVERED`]: the attempt rows, one array per
/// column (`$1`–`$12`, bound by `bind_attempts!`). A macro so both statements stay constants.
macro_rules! insert_attempts {
    () => {
        "WITH recorded AS ( \
    INSERT INTO attempts (id, webhook_id, event_id, created, status, request_endpoint, \
        request_headers, response_status_code, response_headers, response_body, \
        response_time_ms, error) \
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], \
        $5::text[], $6::text[], $7::jsonb[], $8::int4[], $9::jsonb[], $10::text[], \
        $11::int4[], $12::text[]) \
), "
    };
}

/// Records a group of attempts, moves each delivery to its next state and counts each
/// endpoint's health, in one statement (see [`record_attempts`]). A manual retry is one
/// attempt: whatever it gave, the flag is spent. A delivery that is still owed goes back to
/// PENDING only while its endpoint is healthy; behind a degraded or disabled endpoint it is
/// parked (the lifecycle's `owed_status`), its clock paused. The webhooks' rows are locked in
/// id order before they are updated, so groups recorded at once by several workers never
/// deadlock. A healthy webhook with nothing but successes in the group is left alone when its
/// last success is less than a second old: a busy endpoint's row is then written about once a
/// second instead of by every group (each write locked the row against the next group and
/// left a dead row version behind). The webhooks' health is joined to the attempts behind
/// `OFFSET 0`, a fence: joined directly, the planner may look deliveries up by the webhook id
/// alone (all of a busy webhook's deliveries, for every attempt) instead of by both keys.
/// Public so tests can examine its plan.
pub const RECORD: &str = concat!(
    insert_attempts!(),
    "moved AS ( \
    UPDATE deliveries d SET \
        status = CASE WHEN m.status = 'PENDING' AND m.health <> 'healthy' THEN 'PARKED' \
            ELSE m.status END, \
        status_reason = CASE WHEN m.status <> 'PENDING' OR m.health = 'healthy' THEN NULL \
            WHEN m.health = 'degraded' THEN 'endpoint_degraded' ELSE 'webhook_disabled' END, \
        attempt_count = d.attempt_count + 1, \
        next_attempt_at = CASE WHEN m.health = 'healthy' THEN m.next_at END, \
        leased_until = NULL, attempting = false, manual_retry = false, lost_count = 0, \
        updated = now() \
    FROM (SELECT m.*, w.health \
          FROM unnest($2::uuid[], $3::uuid[], $13::text[], $14::timestamptz[]) \
              AS m(webhook_id, event_id, status, next_at) \
          JOIN webhooks w ON w.id = m.webhook_id OFFSET 0) AS m \
    WHERE d.webhook_id = m.webhook_id AND d.event_id = m.event_id \
        AND d.status = 'PENDING' \
), agg AS ( \
    SELECT webhook_id, bool_or(kind = 'delivered') AS delivered, \
        count(*) FILTER (WHERE kind IN ('failed', 'gone'))::int AS failed, \
        bool_or(kind = 'gone') AS gone \
    FROM unnest($2::uuid[], $15::text[]) AS h(webhook_id, kind) \
    GROUP BY webhook_id \
), locked AS ( \
    SELECT w.id FROM webhooks w JOIN agg ON agg.webhook_id = w.id \
    WHERE agg.failed > 0 OR (agg.delivered AND (w.health <> 'healthy' \
        OR w.consecutive_failures > 0 OR w.failing_since IS NOT NULL \
        OR w.last_success_at IS NULL OR w.last_success_at < now() - interval '1 second')) \
    ORDER BY w.id FOR NO KEY UPDATE OF w \
), counted AS ( \
    UPDATE webhooks w SET \
        consecutive_failures = CASE WHEN agg.delivered THEN 0 \
            ELSE w.consecutive_failures + agg.failed END, \
        failing_since = CASE WHEN agg.delivered THEN NULL \
            ELSE coalesce(w.failing_since, now()) END, \
        last_success_at = CASE WHEN agg.delivered THEN now() ELSE w.last_success_at END, \
        last_failure_at = CASE WHEN agg.failed > 0 THEN now() ELSE w.last_failure_at END \
    FROM agg JOIN locked ON locked.id = agg.webhook_id \
    WHERE w.id = agg.webhook_id \
    RETURNING w.id AS webhook_id, w.health, w.health_reason, w.consecutive_failures, \
        w.failing_since, w.probe_interval_ms, w.next_probe_at, agg.delivered, agg.gone \
) \
SELECT * FROM counted \
WHERE health <> 'healthy' OR consecutive_failures >= $16 OR gone"
);

/// [`RECORD`] for a group whose every attempt delivered, the common case under load: each
/// delivery becomes SUCCESS whatever its endpoint's health (no join to the webhooks for it),
/// and only webhooks whose health row needs the success are touched (not healthy, failures
/// counted, or a last success older than a second). Public so tests can examine its plan.
pub const RECORD_DELIVERED: &str = concat!(
    insert_attempts!(),
    "moved AS ( \
    UPDATE deliveries d SET status = 'SUCCESS', status_reason = NULL, \
        attempt_count = d.attempt_count + 1, next_attempt_at = NULL, leased_until = NULL, \
        attempting = false, manual_retry = false, lost_count = 0, updated = now() \
    FROM unnest($2::uuid[], $3::uuid[]) AS m(webhook_id, event_id) \
    WHERE d.webhook_id = m.webhook_id AND d.event_id = m.event_id \
        AND d.status = 'PENDING' \
), locked AS ( \
    SELECT w.id FROM webhooks w \
    WHERE w.id = ANY($2::uuid[]) AND (w.health <> 'healthy' \
        OR w.consecutive_failures > 0 OR w.failing_since IS NOT NULL \
        OR w.last_success_at IS NULL OR w.last_success_at < now() - interval '1 second') \
    ORDER BY w.id FOR NO KEY UPDATE OF w \
), counted AS ( \
    UPDATE webhooks w SET consecutive_failures = 0, failing_since = NULL, \
        last_success_at = now() \
    FROM locked WHERE w.id = locked.id \
    RETURNING w.id AS webhook_id, w.health, w.health_reason, w.consecutive_failures, \
        w.failing_since, w.probe_interval_ms, w.next_probe_at, true AS delivered, \
        false AS gone \
) \
SELECT * FROM counted WHERE health <> 'healthy'"
);

/// Binds `$1`–`$12` of [`RECORD`] and [`RECORD_DELIVERED`], the attempt rows as one array per
/// column (a macro: each `bind` changes the statement's type).
macro_rules! bind_attempts {
    ($statement:expr, $attempts:expr) => {
        $statement
            .bind::<Array<SqlUuid>, _>(column(&$attempts, |a| a.id))
            .bind::<Array<SqlUuid>, _>(column(&$attempts, |a| a.webhook_id))
            .bind::<Array<SqlUuid>, _>(column(&$attempts, |a| a.event_id))
            .bind::<Array<Timestamptz>, _>(column(&$attempts, |a| a.created))
            .bind::<Array<Text>, _>(column(&$attempts, |a| a.status.as_str()))
            .bind::<Array<Text>, _>(column(&$attempts, |a| a.request_endpoint.as_str()))
            .bind::<Array<Jsonb>, _>(column(&$attempts, |a| &a.request_headers))
            .bind::<Array<Nullable<Int4>>, _>(column(&$attempts, |a| a.response_status_code))
            .bind::<Array<Nullable<Jsonb>>, _>(column(&$attempts, |a| a.response_headers.as_ref()))
            .bind::<Array<Nullable<Text>>, _>(column(&$attempts, |a| a.response_body.as_deref()))
            .bind::<Array<Int4>, _>(column(&$attempts, |a| a.response_time_ms))
            .bind::<Array<Nullable<Text>>, _>(column(&$attempts, |a| a.error.as_deref()))
    };
}

/// One field of every attempt, as the array bound for that column.
fn column<'a, T>(attempts: &[&'a NewAttempt], field: impl Fn(&'a NewAttempt) -> T) -> Vec<T> {
    attempts.iter().map(|a| field(a)).collect()
}

/// Records attempts and moves their deliveries on, in one statement whatever their number (so
/// it commits alone, with no BEGIN/COMMIT round trips, and its text is fixed, so it is planned
/// once per connection): one INSERT for all attempt rows, one UPDATE for all deliveries and
/// one for the health counters of their webhooks. Only PENDING deliveries are moved, so a
/// repeated message cannot turn a final delivery back. The worker gathers the attempts of many
/// concurrent deliveries into one call. Returns the webhooks the health machine must look at
/// (`failure_threshold` is the count that makes a healthy endpoint worth a look).
pub async fn record_attempts<R: Borrow<Recorded>>(
    conn: &mut AsyncPgConnection,
    recorded: &[R],
    failure_threshold: u32,
) -> Result<Vec<HealthChanged>, StoreError> {
    if recorded.is_empty() {
        return Ok(Vec::new());
    }
    let recorded: Vec<&Recorded> = recorded.iter().map(Borrow::borrow).collect();
    let attempts: Vec<&NewAttempt> = recorded.iter().map(|r| &r.attempt).collect();
    let statuses: Vec<&str> = recorded.iter().map(|r| r.next.status().as_str()).collect();
    let next_ats: Vec<Option<DateTime<Utc>>> = recorded
        .iter()
        .map(|r| match r.next {
            NextState::Retry { at } => Some(at),
            _ => None,
        })
        .collect();
    let kinds: Vec<&str> = recorded.iter().map(|r| health_kind(r.result)).collect();
    let all_delivered = recorded
        .iter()
        .all(|r| r.result == AttemptResult::Delivered && r.next == NextState::Success);
    if all_delivered {
        return Ok(
            bind_attempts!(prepared::statement(RECORD_DELIVERED), attempts)
                .load(conn)
                .await?,
        );
    }
    Ok(bind_attempts!(prepared::statement(RECORD), attempts)
        .bind::<Array<Text>, _>(&statuses)
        .bind::<Array<Nullable<Timestamptz>>, _>(&next_ats)
        .bind::<Array<Text>, _>(&kinds)
        .bind::<Int4, _>(i32::try_from(failure_threshold.max(1)).unwrap_or(i32::MAX))
        .load(conn)
        .await?)
}

/// Parks PENDING deliveries that are not being attempted elsewhere: no due time, no lease,
/// attempt count kept (the lifecycle's PARKED). `reason` says why (see
/// `hookline_domain::lifecycle::reason`). A worker parks what it took for a webhook that is
/// disabled or degraded (the probe aside).
pub async fn park(
    conn: &mut AsyncPgConnection,
    messages: &[DeliveryMessage],
    reason: &str,
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let (webhook_ids, event_ids) = key_arrays(messages);
    prepared::statement(
        "UPDATE deliveries d SET status = 'PARKED', status_reason = $3, next_attempt_at = NULL, \
             leased_until = NULL, attempting = false, updated = now() \
         FROM unnest($1::uuid[], $2::uuid[]) AS m(webhook_id, event_id) \
         WHERE d.webhook_id = m.webhook_id AND d.event_id = m.event_id AND d.status = 'PENDING'",
    )
    .bind::<Array<SqlUuid>, _>(&webhook_ids)
    .bind::<Array<SqlUuid>, _>(&event_ids)
    .bind::<Text, _>(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Hands deliveries back to the scheduler: due at `at`, no lease. Used when a publish failed
/// (`at` = now) and when a worker defers work for an endpoint at its in-flight cap or shuts
/// down with work unsent.
pub async fn release(
    conn: &mut AsyncPgConnection,
    messages: &[DeliveryMessage],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let (webhook_ids, event_ids) = key_arrays(messages);
    prepared::statement(
        "UPDATE deliveries d SET next_attempt_at = $3, leased_until = NULL, attempting = false, \
             updated = now() \
         FROM unnest($1::uuid[], $2::uuid[]) AS m(webhook_id, event_id) \
         WHERE d.webhook_id = m.webhook_id AND d.event_id = m.event_id AND d.status = 'PENDING'",
    )
    .bind::<Array<SqlUuid>, _>(&webhook_ids)
    .bind::<Array<SqlUuid>, _>(&event_ids)
    .bind::<Timestamptz, _>(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery's key as a query returns it.
#[derive(QueryableByName)]
pub(crate) struct Key {
    #[diesel(sql_type = SqlUuid)]
    webhook_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
}

impl From<Key> for DeliveryMessage {
    fn from(k: Key) -> DeliveryMessage {
        DeliveryMessage {
            webhook_id: k.webhook_id,
            event_id: k.event_id,
        }
    }
}

/// The keys of `messages` as the two arrays an `unnest($1::uuid[], $2::uuid[])` takes.
pub(crate) fn key_arrays(messages: &[DeliveryMessage]) -> (Vec<Uuid>, Vec<Uuid>) {
    messages.iter().map(|m| (m.webhook_id, m.event_id)).unzip()
}

/// A row [`claim_due`] leased, or parked for losing too many workers.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    webhook_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Text)]
    status: String,
}

/// Leases up to `limit` deliveries that are due and not leased (retries whose time has come,
/// publishes that failed, leases that ran out) for `lease`, and returns them for publishing.
/// `SKIP LOCKED` lets every worker's scheduler run this at once without handing out a row twice.
///
/// A lease that ran out while the delivery was being attempted means its worker was lost
/// (killed, or out of memory): that is counted, and a delivery that has lost `lost_limit`
/// workers in a row is parked (`worker_lost`) instead of being handed to yet another one —
/// visible in the event log and replayable, and no longer able to take the fleet down.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Duration,
    lost_limit: u32,
) -> Result<Vec<DeliveryMessage>, StoreError> {
    let rows: Vec<Claimed> = prepared::statement(
        "UPDATE deliveries d SET \
             lost_count = d.lost_count + d.attempting::int, \
             status = CASE WHEN d.attempting AND d.lost_count + 1 >= $3 THEN 'PARKED' \
                 ELSE d.status END, \
             status_reason = CASE WHEN d.attempting AND d.lost_count + 1 >= $3 \
                 THEN 'worker_lost' ELSE d.status_reason END, \
             next_attempt_at = CASE WHEN d.attempting AND d.lost_count + 1 >= $3 THEN NULL \
                 ELSE now() + $2 * interval '1 millisecond' END, \
             leased_until = CASE WHEN d.attempting AND d.lost_count + 1 >= $3 THEN NULL \
                 ELSE now() + $2 * interval '1 millisecond' END, \
             attempting = false \
         FROM (SELECT webhook_id, event_id FROM deliveries \
               WHERE status = 'PENDING' AND next_attempt_at <= now() \
                 AND (leased_until IS NULL OR leased_until <= now()) \
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due \
         WHERE d.webhook_id = due.webhook_id AND d.event_id = due.event_id \
         RETURNING d.webhook_id, d.event_id, d.status",
    )
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .bind::<Int4, _>(i32::try_from(lost_limit.max(1)).unwrap_or(i32::MAX))
    .load(conn)
    .await?;
    let (claimed, parked): (Vec<Claimed>, Vec<Claimed>) =
        rows.into_iter().partition(|r| r.status == PENDING);
    for p in &parked {
        tracing::warn!(webhook_id = %p.webhook_id, event_id = %p.event_id,
            "a delivery lost its worker too many times; parked as worker_lost");
    }
    Ok(claimed
        .into_iter()
        .map(|c| DeliveryMessage {
            webhook_id: c.webhook_id,
            event_id: c.event_id,
        })
        .collect())
}

/// Deliveries due now but not yet handed out (a metric: the backlog).
pub async fn count_due(conn: &mut AsyncPgConnection) -> Result<i64, StoreError> {
    Ok(deliveries::table
        .filter(deliveries::status.eq(PENDING))
        .filter(deliveries::next_attempt_at.le(diesel::dsl::now))
        .count()
        .get_result(conn)
        .await?)
}

/// What a page of a webhook's event log holds: events created in `[start, end)`, with
/// `id < before` (the cursor), whose delivery has one of `statuses` and whose type is one of
/// `event_types` (leaves; the caller expands a group), each filter only when given.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogFilter<'a> {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub before: Option<Uuid>,
    pub statuses: &'a [DeliveryStatus],
    pub event_types: &'a [String],
}

/// One page of a webhook's event log, newest first, at most `size` rows.
pub async fn list_for_webhook(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    filter: &LogFilter<'_>,
    size: i64,
) -> Result<Vec<(Delivery, Event)>, StoreError> {
    let mut query = deliveries::table
        .inner_join(events::table)
        .filter(deliveries::webhook_id.eq(webhook_id))
        .select((Delivery::as_select(), Event::as_select()))
        .order(deliveries::event_id.desc())
        .limit(size)
        .into_boxed();
    if let Some(start) = filter.start {
        query = query.filter(events::created.ge(start));
    }
    if let Some(end) = filter.end {
        query = query.filter(events::created.lt(end));
    }
    if let Some(before) = filter.before {
        query = query.filter(deliveries::event_id.lt(before));
    }
    if !filter.statuses.is_empty() {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        query = query.filter(deliveries::status.eq_any(statuses));
    }
    if !filter.event_types.is_empty() {
        query = query.filter(events::event_type.eq_any(filter.event_types));
    }
    Ok(query.load(conn).await?)
}

/// A delivery with its event and every attempt, oldest first.
pub async fn get_for_webhook(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_id: Uuid,
) -> Result<Option<(Delivery, Event, Vec<Attempt>)>, StoreError> {
    let Some((delivery, event)) = deliveries::table
        .inner_join(events::table)
        .filter(deliveries::webhook_id.eq(webhook_id))
        .filter(deliveries::event_id.eq(event_id))
        .select((Delivery::as_select(), Event::as_select()))
        .first::<(Delivery, Event)>(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let attempts = attempts::table
        .filter(attempts::webhook_id.eq(webhook_id))
        .filter(attempts::event_id.eq(event_id))
        .order((attempts::created.asc(), attempts::id.asc()))
        .select(Attempt::as_select())
        .load(conn)
        .await?;
    Ok(Some((delivery, event, attempts)))
}

/// What [`request_retry`] did.
#[derive(Debug)]
pub enum RetryRequested {
    /// One more attempt is owed now; the delivery is leased for the caller to publish.
    Queued(Delivery),
    /// A worker is sending the delivery right now: another attempt would go out beside it.
    InFlight,
    /// No such delivery.
    NotFound,
}

/// Queues one more attempt now and leases the delivery for the caller to publish. A final
/// delivery becomes PENDING for exactly one attempt (`manual_retry`); a pending or parked one
/// is simply made due now (behind a degraded endpoint the worker parks it again unless it is
/// the probe). A delivery a worker is attempting is left alone ([`RetryRequested::InFlight`]):
/// its attempt's outcome decides what comes next, and a second request beside it would reach
/// the endpoint twice at once.
pub async fn request_retry(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_id: Uuid,
    lease: Duration,
) -> Result<RetryRequested, StoreError> {
    let now = Utc::now();
    let queued = diesel::update(
        deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(deliveries::event_id.eq(event_id))
            .filter(deliveries::attempting.eq(false)),
    )
    .set((
        // A final delivery gets exactly one more attempt; a parked one is simply owed again.
        deliveries::manual_retry.eq(deliveries::status
            .eq_any([SUCCESS, FAILURE, SKIPPED])
            .or(deliveries::manual_retry)),
        deliveries::status.eq(PENDING),
        deliveries::status_reason.eq(None::<String>),
        // Leased: due again (re-published) only if its lease runs out.
        deliveries::next_attempt_at.eq(Some(now + chrono_duration(lease))),
        deliveries::leased_until.eq(Some(now + chrono_duration(lease))),
        deliveries::updated.eq(diesel::dsl::now),
    ))
    .returning(Delivery::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    if let Some(d) = queued {
        return Ok(RetryRequested::Queued(d));
    }
    let exists = deliveries::table
        .filter(deliveries::webhook_id.eq(webhook_id))
        .filter(deliveries::event_id.eq(event_id))
        .select(deliveries::attempting)
        .first::<bool>(conn)
        .await
        .optional()?;
    Ok(match exists {
        Some(true) => RetryRequested::InFlight,
        _ => RetryRequested::NotFound,
    })
}
