//! Retention and erasure: deleting what is older than the retention period, and replacing one
//! event's payload on a data-protection request.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{models::Event, prepared, schema::events, StoreError};

/// Rows one [`purge_batch`] deleted, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Purged {
    #[diesel(sql_type = BigInt)]
    pub events: i64,
    #[diesel(sql_type = BigInt)]
    pub deliveries: i64,
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
}

/// Deletes up to `limit` events created before `cutoff` with their deliveries and attempts, in
/// one short statement. An event with a delivery still owed (PENDING or PARKED) is kept whole,
/// however old. Events are taken with `SKIP LOCKED`, so every replica may purge at once, each
/// deleting different events. Finished recovery jobs older than `cutoff` go too.
pub async fn purge_batch(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<Purged, StoreError> {
    let rows: Vec<Purged> = prepared::statement(
        "WITH old AS ( \
             SELECT e.id FROM events e \
             WHERE e.created < $1 AND NOT EXISTS ( \
                 SELECT 1 FROM deliveries d \
                 WHERE d.event_id = e.id AND d.status IN ('PENDING', 'PARKED')) \
             LIMIT $2 FOR UPDATE SKIP LOCKED \
         ), gone_attempts AS ( \
             DELETE FROM attempts a USING deliveries d, old \
             WHERE d.event_id = old.id AND a.webhook_id = d.webhook_id \
                 AND a.event_id = d.event_id \
             RETURNING 1 \
         ), gone_deliveries AS ( \
             DELETE FROM deliveries d USING old WHERE d.event_id = old.id RETURNING 1 \
         ), gone_events AS ( \
             DELETE FROM events e USING old WHERE e.id = old.id RETURNING 1 \
         ), gone_jobs AS ( \
             DELETE FROM recoveries WHERE id IN ( \
                 SELECT id FROM recoveries WHERE state <> 'RUNNING' AND created < $1 \
                 LIMIT $2 FOR UPDATE SKIP LOCKED) \
         ) \
         SELECT (SELECT count(*) FROM gone_events) AS events, \
             (SELECT count(*) FROM gone_deliveries) AS deliveries, \
             (SELECT count(*) FROM gone_attempts) AS attempts",
    )
    .bind::<Timestamptz, _>(cutoff)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

#[derive(QueryableByName)]
struct Oldest {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created: Option<DateTime<Utc>>,
}

/// When the oldest retained event was created (ids are UUIDv7, so the lowest id is about the
/// oldest event: one index probe instead of a scan).
pub async fn oldest_event(
    conn: &mut AsyncPgConnection,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let rows: Vec<Oldest> = prepared::statement("SELECT created FROM events ORDER BY id LIMIT 1")
        .load(conn)
        .await?;
    Ok(rows.into_iter().next().and_then(|r| r.created))
}

/// When `brand`'s event `id` was erased: `None` when there is no such event, `Some(None)`
/// when it was not.
pub async fn erased_at(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
) -> Result<Option<Option<DateTime<Utc>>>, StoreError> {
    Ok(events::table
        .filter(events::brand_id.eq(brand))
        .filter(events::id.eq(id))
        .select(events::erased)
        .first(conn)
        .await
        .optional()?)
}

/// The status reason of a delivery whose event was erased before it was delivered.
pub const PAYLOAD_ERASED: &str = "payload_erased";

/// Replaces the payload of `brand`'s event with `{}` and marks it erased; its deliveries that
/// were still owed end as FAILURE (`payload_erased`), since there is nothing left to send.
/// Erasing twice keeps the first time. `None` when the brand has no such event.
pub async fn erase(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
) -> Result<Option<Event>, StoreError> {
    let brand = brand.to_owned();
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let event: Option<Event> = diesel::update(
            events::table
                .filter(events::brand_id.eq(&brand))
                .filter(events::id.eq(id)),
        )
        .set((
            events::payload.eq(serde_json::json!({})),
            events::erased.eq(diesel::dsl::sql::<Nullable<Timestamptz>>(
                "coalesce(erased, now())",
            )),
        ))
        .returning(Event::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        if event.is_some() {
            prepared::statement(
                "UPDATE deliveries SET status = 'FAILURE', status_reason = $2, \
                     next_attempt_at = NULL, leased_until = NULL, manual_retry = false, \
                     updated = now() \
                 WHERE event_id = $1 AND status IN ('PENDING', 'PARKED')",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(PAYLOAD_ERASED)
            .execute(conn)
            .await?;
        }
        Ok(event)
    })
    .await
}
