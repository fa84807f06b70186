//! Delivery figures for the portal (placeholder until the full module lands).

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{prepared, StoreError};

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct WebhookSummary {
    #[diesel(sql_type = SqlUuid)]
    pub webhook_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub deliveries: i64,
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
}

/// Per webhook of `brand`: deliveries created since `since`, and how many ended SUCCESS /
/// FAILURE.
pub async fn summaries(
    conn: &mut AsyncPgConnection,
    brand: &str,
    since: DateTime<Utc>,
) -> Result<Vec<WebhookSummary>, StoreError> {
    Ok(prepared::statement(
        "SELECT d.webhook_id, count(*) AS deliveries, \
             count(*) FILTER (WHERE d.status = 'SUCCESS') AS succeeded, \
             count(*) FILTER (WHERE d.status = 'FAILURE') AS failed \
         FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE w.brand_id = $1 AND d.created >= $2 GROUP BY d.webhook_id",
    )
    .bind::<Text, _>(brand.to_owned())
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct Bucket {
    #[diesel(sql_type = Timestamptz)]
    pub start: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
    #[diesel(sql_type = Nullable<Int4>)]
    pub p50_ms: Option<i32>,
    #[diesel(sql_type = Nullable<Int4>)]
    pub p99_ms: Option<i32>,
}

/// Attempts of `webhook_id` since `since` in buckets of `bucket` width, oldest first, every
/// bucket present (zero-filled) up to now.
pub async fn series(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    since: DateTime<Utc>,
    bucket: chrono::Duration,
) -> Result<Vec<Bucket>, StoreError> {
    Ok(prepared::statement(
        "WITH b AS ( \
             SELECT generate_series($2::timestamptz, now(), $3 * interval '1 millisecond') AS start \
         ), a AS ( \
             SELECT $2::timestamptz + floor(extract(epoch FROM (created - $2)) * 1000 / $3) \
                 * $3 * interval '1 millisecond' AS start, status, response_time_ms \
             FROM attempts WHERE webhook_id = $1 AND created >= $2 \
         ) \
         SELECT b.start, \
             count(a.status) FILTER (WHERE a.status = 'SUCCESS') AS succeeded, \
             count(a.status) FILTER (WHERE a.status = 'FAILURE') AS failed, \
             (percentile_disc(0.5) WITHIN GROUP (ORDER BY a.response_time_ms))::int AS p50_ms, \
             (percentile_disc(0.99) WITHIN GROUP (ORDER BY a.response_time_ms))::int AS p99_ms \
         FROM b LEFT JOIN a ON a.start = b.start GROUP BY b.start ORDER BY b.start",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<Timestamptz, _>(since)
    .bind::<BigInt, _>(bucket.num_milliseconds().max(1))
    .load(conn)
    .await?)
}

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct Latency {
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
    #[diesel(sql_type = Nullable<Int4>)]
    pub p50_ms: Option<i32>,
    #[diesel(sql_type = Nullable<Int4>)]
    pub p99_ms: Option<i32>,
}

/// Attempt latency of `webhook_id` since `since` over the whole window.
pub async fn latency(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Latency, StoreError> {
    let rows: Vec<Latency> = prepared::statement(
        "SELECT count(*) AS attempts, \
             (percentile_disc(0.5) WITHIN GROUP (ORDER BY response_time_ms))::int AS p50_ms, \
             (percentile_disc(0.99) WITHIN GROUP (ORDER BY response_time_ms))::int AS p99_ms \
         FROM attempts WHERE webhook_id = $1 AND created >= $2",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().unwrap_or_default())
}
