//! Delivery statistics for the brand portal's pages: per-webhook counts for the webhooks list,
//! and per-webhook attempt outcomes and latency over time for a webhook's charts.
//!
//! Each is one statement with constant text (prepared once per connection, see
//! `crate::prepared`); counting and percentiles happen in Postgres, so a page costs one round
//! trip however many rows the window holds. A webhook's attempts in a window are a range of
//! the attempts' (webhook, event id, created) index bounded by event ids (see [`series`]); its
//! deliveries a range of their primary key (see [`summaries`]). Neither needs an index of its
//! own, which every attempt or delivery written would pay for.

use chrono::{DateTime, Utc};
use diesel::{
    sql_types::{BigInt, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid},
    QueryableByName,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{prepared, StoreError};

/// The deliveries of one webhook in a window, by outcome.
#[derive(Debug, Clone, Default, QueryableByName)]
pub struct WebhookSummary {
    #[diesel(sql_type = SqlUuid)]
    pub webhook_id: Uuid,
    /// Deliveries created in the window, whatever their state.
    #[diesel(sql_type = BigInt)]
    pub deliveries: i64,
    /// Of those, how many are SUCCESS now.
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
    /// Of those, how many are FAILURE now (attempts exhausted).
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
}

/// How far before `since` the event-id bound of [`summaries`] starts: event ids are UUIDv7
/// made by the API's clock, `created` is the database's, and this much skew between them is
/// tolerated.
const CLOCK_SKEW_MS: i64 = 60 * 60 * 1000;

/// How far before `since` the event-id bound of [`series`] and [`latency`] starts: an attempt
/// made in the window may be of an older event (a retry on the default schedule comes up to two
/// days later, a parked delivery up to `health.disable_after` later). Attempts in the window of
/// events older than this are not counted.
const ATTEMPT_LOOKBACK_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The event-id bound of a window's attempts (see [`ATTEMPT_LOOKBACK_MS`]).
fn attempt_bound(since: DateTime<Utc>) -> Uuid {
    first_id_at(since - chrono::Duration::milliseconds(ATTEMPT_LOOKBACK_MS + CLOCK_SKEW_MS))
}

/// The smallest UUIDv7 of the millisecond `at` (version and random bits zero): every event
/// created at or after `at` has an id at least this large (`events.id` is UUIDv7, see
/// `migrations/2026-11-23-000001_initial/up.sql`), and ids compare bytewise in Postgres.
fn first_id_at(at: DateTime<Utc>) -> Uuid {
    let ms = u128::try_from(at.timestamp_millis().max(0)).unwrap_or(0) & ((1 << 48) - 1);
    Uuid::from_u128(ms << 80)
}

/// Per webhook of `brand`: deliveries created since `since`, and how many ended SUCCESS / FAILURE.
///
/// Every webhook of the brand has a row, with zeros when nothing was delivered to it in the
/// window; rows come in the order the webhooks list shows them (oldest webhook first). Each
/// webhook's deliveries are read as a range of the primary key (webhook, event id), bounded
/// below by the event ids of an hour before `since` (the clock skew tolerated), then filtered on
/// `created`: no index on the deliveries' creation time is needed, which every delivery write
/// would pay for.
pub async fn summaries(
    conn: &mut AsyncPgConnection,
    brand: &str,
    since: DateTime<Utc>,
) -> Result<Vec<WebhookSummary>, StoreError> {
    let first_id = first_id_at(since - chrono::Duration::milliseconds(CLOCK_SKEW_MS));
    Ok(prepared::statement(
        "SELECT w.id AS webhook_id, s.deliveries, s.succeeded, s.failed \
         FROM webhooks w CROSS JOIN LATERAL ( \
             SELECT count(*) AS deliveries, \
                 count(*) FILTER (WHERE d.status = 'SUCCESS') AS succeeded, \
                 count(*) FILTER (WHERE d.status = 'FAILURE') AS failed \
             FROM deliveries d \
             WHERE d.webhook_id = w.id AND d.event_id >= $3 AND d.created >= $2 \
         ) s \
         WHERE w.brand_id = $1 \
         ORDER BY w.created, w.id",
    )
    .bind::<Text, _>(brand)
    .bind::<Timestamptz, _>(since)
    .bind::<SqlUuid, _>(first_id)
    .load(conn)
    .await?)
}

/// [`summaries`] for one webhook (a webhook's own page need not count its siblings').
pub async fn summary(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    since: DateTime<Utc>,
) -> Result<WebhookSummary, StoreError> {
    let first_id = first_id_at(since - chrono::Duration::milliseconds(CLOCK_SKEW_MS));
    let rows: Vec<WebhookSummary> = prepared::statement(
        "SELECT $1::uuid AS webhook_id, count(*) AS deliveries, \
             count(*) FILTER (WHERE d.status = 'SUCCESS') AS succeeded, \
             count(*) FILTER (WHERE d.status = 'FAILURE') AS failed \
         FROM deliveries d \
         WHERE d.webhook_id = $1 AND d.event_id >= $3 AND d.created >= $2",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<Timestamptz, _>(since)
    .bind::<SqlUuid, _>(first_id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().unwrap_or(WebhookSummary {
        webhook_id,
        ..WebhookSummary::default()
    }))
}

/// One bucket of [`series`]: the attempts made in `[start, start + width)`.
#[derive(Debug, Clone, QueryableByName)]
pub struct Bucket {
    #[diesel(sql_type = Timestamptz)]
    pub start: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
    /// Median response time of the bucket's attempts; `None` when it has none.
    #[diesel(sql_type = Nullable<Int4>)]
    pub p50_ms: Option<i32>,
    /// 99th percentile (an attempt's actual time, not an interpolation).
    #[diesel(sql_type = Nullable<Int4>)]
    pub p99_ms: Option<i32>,
}

/// Most buckets [`series`] returns: a wider bucket is used when the window holds more.
pub const MAX_BUCKETS: i64 = 10_000;

/// Attempts of `webhook_id` since `since` in buckets of `bucket` width, oldest first, every bucket present (zero-filled) up to now.
///
/// Bucket `i` starts at `since + i × bucket`; the last one holds the database's `now()`.
/// `since` after now gives no buckets. The width is at least a millisecond, and is widened
/// (to a whole number of milliseconds) when the window would need more than [`MAX_BUCKETS`],
/// so a caller's mistake cannot ask Postgres for millions of rows; each bucket carries its
/// `start`, so a chart reads the width from the result.
///
/// The attempts are aggregated per bucket before the buckets are joined, and bucket numbers
/// are computed in `double precision` (`date_part`), not `numeric` (`extract`): on 12 000
/// attempts that took the statement from 30 ms to 7 ms.
pub async fn series(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    since: DateTime<Utc>,
    bucket: chrono::Duration,
) -> Result<Vec<Bucket>, StoreError> {
    let window_ms = (Utc::now() - since).num_milliseconds().max(0);
    let width_ms = bucket
        .num_milliseconds()
        .max(1)
        .max((window_ms + MAX_BUCKETS - 2) / (MAX_BUCKETS - 1));
    Ok(prepared::statement(
        "WITH per AS ( \
             SELECT floor(date_part('epoch', a.created - $2) * 1000 / $3)::bigint AS i, \
                 count(*) FILTER (WHERE a.status = 'SUCCESS') AS succeeded, \
                 count(*) FILTER (WHERE a.status = 'FAILURE') AS failed, \
                 percentile_disc(0.5) WITHIN GROUP (ORDER BY a.response_time_ms) AS p50_ms, \
                 percentile_disc(0.99) WITHIN GROUP (ORDER BY a.response_time_ms) AS p99_ms \
             FROM attempts a \
             WHERE a.webhook_id = $1 AND a.event_id >= $4 AND a.created >= $2 \
             GROUP BY 1 \
         ) \
         SELECT $2 + b.i * $3 * interval '1 millisecond' AS start, \
             coalesce(per.succeeded, 0) AS succeeded, coalesce(per.failed, 0) AS failed, \
             per.p50_ms, per.p99_ms \
         FROM generate_series(0, floor(date_part('epoch', now() - $2) * 1000 / $3)::bigint) \
             AS b(i) \
         LEFT JOIN per ON per.i = b.i \
         ORDER BY b.i",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<Timestamptz, _>(since)
    .bind::<BigInt, _>(width_ms)
    .bind::<SqlUuid, _>(attempt_bound(since))
    .load(conn)
    .await?)
}

/// Attempt latency over a window.
#[derive(Debug, Clone, Default, QueryableByName)]
pub struct Latency {
    /// Attempts made in the window.
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
    /// Median response time; `None` without attempts.
    #[diesel(sql_type = Nullable<Int4>)]
    pub p50_ms: Option<i32>,
    /// 99th percentile (an attempt's actual time); `None` without attempts.
    #[diesel(sql_type = Nullable<Int4>)]
    pub p99_ms: Option<i32>,
}

/// Attempt latency of `webhook_id` since `since` over the whole window.
pub async fn latency(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Latency, StoreError> {
    Ok(prepared::statement(
        "SELECT count(*) AS attempts, \
             percentile_disc(0.5) WITHIN GROUP (ORDER BY response_time_ms) AS p50_ms, \
             percentile_disc(0.99) WITHIN GROUP (ORDER BY response_time_ms) AS p99_ms \
         FROM attempts WHERE webhook_id = $1 AND event_id >= $3 AND created >= $2",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<Timestamptz, _>(since)
    .bind::<SqlUuid, _>(attempt_bound(since))
    .get_result(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v7_at(at: DateTime<Utc>) -> Uuid {
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            u64::try_from(at.timestamp()).expect("after 1970"),
            at.timestamp_subsec_nanos(),
        );
        Uuid::new_v7(ts)
    }

    #[test]
    fn the_first_id_of_a_millisecond_bounds_exactly_the_ids_made_from_it_on() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T10:00:00.123456Z")
            .expect("time")
            .with_timezone(&Utc);
        let first = first_id_at(at);
        for _ in 0..100 {
            assert!(v7_at(at) >= first);
            assert!(v7_at(at + chrono::Duration::days(400)) >= first);
            assert!(v7_at(at - chrono::Duration::milliseconds(1)) < first);
        }
    }
}
