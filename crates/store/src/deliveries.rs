//! Delivery rows: what the worker claims, sends and records, and what the event log shows.
//!
//! A delivery is PENDING until an attempt succeeds (SUCCESS) or the schedule is exhausted
//! (FAILURE). `next_attempt_at` says when it is due; `leased_until` says until when a message
//! for it is in the queue or in a worker. The scheduler publishes rows that are due and not
//! leased ([`claim_due`]), so neither a broker outage nor a killed worker loses one.

use std::{borrow::Borrow, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hookline_domain::DeliveryMessage;
use uuid::Uuid;

use crate::{
    models::{Attempt, Delivery, Event, NewAttempt, Webhook},
    prepared,
    schema::{attempts, deliveries, events, webhooks},
    StoreError,
};

pub const PENDING: &str = "PENDING";
pub const SUCCESS: &str = "SUCCESS";
pub const FAILURE: &str = "FAILURE";

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(60))
}

/// Everything the worker needs to send one delivery.
#[derive(Debug, Clone)]
pub struct Job {
    pub delivery: Delivery,
    pub event: Event,
    pub webhook: Webhook,
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
        ))
        .first::<(Delivery, Event, Webhook)>(conn)
        .await
        .optional()?;
    Ok(row.map(|(delivery, event, webhook)| Job {
        delivery,
        event,
        webhook,
    }))
}

/// What a delivery becomes after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextState {
    Success,
    /// Failed; try again at this time.
    Retry {
        at: DateTime<Utc>,
    },
    /// Failed for good (schedule exhausted, or the one extra attempt of a manual retry).
    Failure,
}

/// An attempt to record and the state it leaves its delivery in.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub attempt: NewAttempt,
    pub next: NextState,
}

/// Records a group of attempts and moves each delivery to its next state, in one statement (see
/// [`record_attempts`]). A manual retry is one attempt: whatever it gave, the flag is spent.
/// Public so tests can examine its plan.
pub const RECORD: &str = "\
WITH recorded AS ( \
    INSERT INTO attempts (id, webhook_id, event_id, created, status, request_endpoint, \
        request_headers, response_status_code, response_headers, response_body, \
        response_time_ms, error) \
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], \
        $5::text[], $6::text[], $7::jsonb[], $8::int4[], $9::jsonb[], $10::text[], \
        $11::int4[], $12::text[]) \
) \
UPDATE deliveries d SET status = m.status, status_reason = NULL, \
    attempt_count = d.attempt_count + 1, next_attempt_at = m.next_at, \
    leased_until = NULL, attempting = false, manual_retry = false, updated = now() \
FROM unnest($2::uuid[], $3::uuid[], $13::text[], $14::timestamptz[]) \
    AS m(webhook_id, event_id, status, next_at) \
WHERE d.webhook_id = m.webhook_id AND d.event_id = m.event_id \
    AND d.status = 'PENDING'";

/// One field of every attempt, as the array bound for that column.
fn column<'a, T>(attempts: &[&'a NewAttempt], field: impl Fn(&'a NewAttempt) -> T) -> Vec<T> {
    attempts.iter().map(|a| field(a)).collect()
}

/// Records attempts and moves their deliveries on, in one statement whatever their number (so
/// it commits alone, with no BEGIN/COMMIT round trips, and its text is fixed, so it is planned
/// once per connection): one INSERT for all attempt rows and one UPDATE for all deliveries. Only
/// PENDING deliveries are moved, so a repeated message cannot turn a final delivery back. The
/// worker gathers the attempts of many concurrent deliveries into one call.
pub async fn record_attempts<R: Borrow<Recorded>>(
    conn: &mut AsyncPgConnection,
    recorded: &[R],
) -> Result<(), StoreError> {
    if recorded.is_empty() {
        return Ok(());
    }
    let recorded: Vec<&Recorded> = recorded.iter().map(Borrow::borrow).collect();
    let attempts: Vec<&NewAttempt> = recorded.iter().map(|r| &r.attempt).collect();
    let statuses: Vec<&str> = recorded
        .iter()
        .map(|r| match r.next {
            NextState::Success => SUCCESS,
            NextState::Retry { .. } => PENDING,
            NextState::Failure => FAILURE,
        })
        .collect();
    let next_ats: Vec<Option<DateTime<Utc>>> = recorded
        .iter()
        .map(|r| match r.next {
            NextState::Retry { at } => Some(at),
            _ => None,
        })
        .collect();
    prepared::statement(RECORD)
        .bind::<Array<SqlUuid>, _>(column(&attempts, |a| a.id))
        .bind::<Array<SqlUuid>, _>(column(&attempts, |a| a.webhook_id))
        .bind::<Array<SqlUuid>, _>(column(&attempts, |a| a.event_id))
        .bind::<Array<Timestamptz>, _>(column(&attempts, |a| a.created))
        .bind::<Array<Text>, _>(column(&attempts, |a| a.status.as_str()))
        .bind::<Array<Text>, _>(column(&attempts, |a| a.request_endpoint.as_str()))
        .bind::<Array<Jsonb>, _>(column(&attempts, |a| &a.request_headers))
        .bind::<Array<Nullable<Int4>>, _>(column(&attempts, |a| a.response_status_code))
        .bind::<Array<Nullable<Jsonb>>, _>(column(&attempts, |a| a.response_headers.as_ref()))
        .bind::<Array<Nullable<Text>>, _>(column(&attempts, |a| a.response_body.as_deref()))
        .bind::<Array<Int4>, _>(column(&attempts, |a| a.response_time_ms))
        .bind::<Array<Nullable<Text>>, _>(column(&attempts, |a| a.error.as_deref()))
        .bind::<Array<Text>, _>(&statuses)
        .bind::<Array<Nullable<Timestamptz>>, _>(&next_ats)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a PENDING delivery without sending it (e.g. `webhook_disabled`), saying why.
pub async fn finish_unsent(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_id: Uuid,
    reason: &str,
) -> Result<(), StoreError> {
    diesel::update(
        deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(deliveries::event_id.eq(event_id))
            .filter(deliveries::status.eq(PENDING)),
    )
    .set((
        deliveries::status.eq(FAILURE),
        deliveries::status_reason.eq(reason),
        deliveries::next_attempt_at.eq(None::<DateTime<Utc>>),
        deliveries::leased_until.eq(None::<DateTime<Utc>>),
        deliveries::attempting.eq(false),
        deliveries::manual_retry.eq(false),
        deliveries::updated.eq(diesel::dsl::now),
    ))
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

/// Leases up to `limit` deliveries that are due and not leased (retries whose time has come,
/// publishes that failed, leases that ran out) for `lease`, and returns them for publishing.
/// `SKIP LOCKED` lets every worker's scheduler run this at once without handing out a row twice.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Duration,
) -> Result<Vec<DeliveryMessage>, StoreError> {
    let rows: Vec<Key> = prepared::statement(
        "UPDATE deliveries d SET leased_until = now() + $2 * interval '1 millisecond', \
             attempting = false \
         FROM (SELECT webhook_id, event_id FROM deliveries \
               WHERE status = 'PENDING' AND next_attempt_at <= now() \
                 AND (leased_until IS NULL OR leased_until <= now()) \
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due \
         WHERE d.webhook_id = due.webhook_id AND d.event_id = due.event_id \
         RETURNING d.webhook_id, d.event_id",
    )
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(DeliveryMessage::from).collect())
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

/// One page of a webhook's event log, newest first: events with `id < before` (the cursor),
/// created in `[start, end)` when given.
pub async fn list_for_webhook(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    size: i64,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    before: Option<Uuid>,
) -> Result<Vec<(Delivery, Event)>, StoreError> {
    let mut query = deliveries::table
        .inner_join(events::table)
        .filter(deliveries::webhook_id.eq(webhook_id))
        .select((Delivery::as_select(), Event::as_select()))
        .order(deliveries::event_id.desc())
        .limit(size)
        .into_boxed();
    if let Some(start) = start {
        query = query.filter(events::created.ge(start));
    }
    if let Some(end) = end {
        query = query.filter(events::created.lt(end));
    }
    if let Some(before) = before {
        query = query.filter(deliveries::event_id.lt(before));
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

/// Queues one more attempt now and leases the delivery for the caller to publish. A final
/// delivery becomes PENDING for exactly one attempt (`manual_retry`); a pending one is simply
/// made due now. `None` when there is no such delivery.
pub async fn request_retry(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_id: Uuid,
    lease: Duration,
) -> Result<Option<Delivery>, StoreError> {
    let now = Utc::now();
    Ok(diesel::update(
        deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(deliveries::event_id.eq(event_id)),
    )
    .set((
        deliveries::manual_retry.eq(deliveries::status.ne(PENDING).or(deliveries::manual_retry)),
        deliveries::status.eq(PENDING),
        deliveries::status_reason.eq(None::<String>),
        deliveries::next_attempt_at.eq(Some(now)),
        deliveries::leased_until.eq(Some(now + chrono_duration(lease))),
        deliveries::attempting.eq(false),
        deliveries::updated.eq(diesel::dsl::now),
    ))
    .returning(Delivery::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}
