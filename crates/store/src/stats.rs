//! Delivery statistics for the brand portal's pages: per-webhook counts for the webhooks list,
//! and per-webhook attempt outcomes and latency over time for a webhook's charts.
//!
//! Each is one statement with constant text (prepared once per connection, see
//! `crate::prepared`); counting and percentiles happen in Postgres, so a page costs one round
//! trip however many rows the window holds. Attempts are found through
//! `attempts_delivery_idx` (`webhook_id` first, see `migrations/`); deliveries through their
//! primary key (`webhook_id` first).

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

/// Per webhook of `brand`: deliveries created since `since`, and how many ended SUCCESS / FAILURE.
///
/// Every webhook of the brand has a row, with zeros when nothing was delivered to it in the
/// window; rows come in the order the webhooks list shows them (oldest webhook first).
pub async fn summaries(
    conn: &mut AsyncPgConnection,
    brand: &str,
    since: DateTime<Utc>,
) -> Result<Vec<WebhookSummary>, StoreError> {
    Ok(prepared::statement(
        "SELECT w.id AS webhook_id, \
             count(d.event_id) AS deliveries, \
             count(d.event_id) FILTER (WHERE d.status = 'SUCCESS') AS succeeded, \
             count(d.event_id) FILTER (WHERE d.status = 'FAILURE') AS failed \
         FROM webhooks w \
         LEFT JOIN deliveries d ON d.webhook_id = w.id AND d.created >= $2 \
         WHERE w.brand_id = $1 \
         GROUP BY w.id, w.created \
         ORDER BY w.created, w.id",
    )
    .bind::<Text, _>(brand)
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?)
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
        "WITH buckets AS ( \
             SELECT generate_series(0, \
                 floor(extract(epoch FROM now() - $2) * 1000 / $3)::bigint) AS i \
         ), timed AS ( \
             SELECT floor(extract(epoch FROM a.created - $2) * 1000 / $3)::bigint AS i, \
                 a.status, a.response_time_ms \
             FROM attempts a \
             WHERE a.webhook_id = $1 AND a.created >= $2 \
         ) \
         SELECT $2 + b.i * $3 * interval '1 millisecond' AS start, \
             count(t.i) FILTER (WHERE t.status = 'SUCCESS') AS succeeded, \
             count(t.i) FILTER (WHERE t.status = 'FAILURE') AS failed, \
             percentile_disc(0.5) WITHIN GROUP (ORDER BY t.response_time_ms) AS p50_ms, \
             percentile_disc(0.99) WITHIN GROUP (ORDER BY t.response_time_ms) AS p99_ms \
         FROM buckets b LEFT JOIN timed t ON t.i = b.i \
         GROUP BY b.i \
         ORDER BY b.i",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<Timestamptz, _>(since)
    .bind::<BigInt, _>(width_ms)
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
         FROM attempts WHERE webhook_id = $1 AND created >= $2",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<Timestamptz, _>(since)
    .get_result(conn)
    .await?)
}
