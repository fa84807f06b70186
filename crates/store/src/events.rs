//! Event ingest: the event row and one delivery row per matching webhook, in one transaction.

use std::time::Duration;

use chrono::Utc;
use diesel::{
    prelude::*,
    sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    models::{Event, NewEvent},
    schema::{deliveries, events},
    StoreError,
};

/// What an ingest did: the event (the first one, when the idempotency key was seen before), the
/// webhooks it is owed to, and whether this call created it.
#[derive(Debug)]
pub struct Ingested {
    pub event: Event,
    pub webhook_ids: Vec<Uuid>,
    pub created: bool,
}

#[derive(QueryableByName)]
struct WebhookIdRow {
    #[diesel(sql_type = SqlUuid)]
    webhook_id: Uuid,
}

/// Stores `new` and a PENDING delivery, due now, for every enabled webhook of its brand that
/// subscribes to one of `match_types` (the event type and its ancestors). The deliveries are
/// leased for `lease`: the caller publishes them right after the commit, and the scheduler only
/// re-publishes them if that lease runs out first.
pub async fn ingest(
    conn: &mut AsyncPgConnection,
    new: &NewEvent<'_>,
    match_types: &[String],
    lease: Duration,
) -> Result<Ingested, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let inserted: Option<Event> = if new.idempotency_key.is_some() {
            diesel::insert_into(events::table)
                .values(new)
                .on_conflict_do_nothing()
                .returning(Event::as_returning())
                .get_result(conn)
                .await
                .optional()?
        } else {
            Some(
                diesel::insert_into(events::table)
                    .values(new)
                    .returning(Event::as_returning())
                    .get_result(conn)
                    .await?,
            )
        };
        let Some(event) = inserted else {
            // The key was used before: answer with that event and create nothing.
            let event: Event = events::table
                .filter(events::brand_id.eq(new.brand_id))
                .filter(events::idempotency_key.eq(new.idempotency_key))
                .select(Event::as_select())
                .first(conn)
                .await?;
            let webhook_ids = deliveries::table
                .filter(deliveries::event_id.eq(event.id))
                .select(deliveries::webhook_id)
                .order(deliveries::webhook_id)
                .load(conn)
                .await?;
            return Ok(Ingested {
                event,
                webhook_ids,
                created: false,
            });
        };
        let now = Utc::now();
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
        let rows: Vec<WebhookIdRow> = diesel::sql_query(
            "INSERT INTO deliveries (webhook_id, event_id, next_attempt_at, leased_until) \
             SELECT id, $1, $2, $3 FROM webhooks \
             WHERE brand_id = $4 AND enabled AND event_types && $5 \
             RETURNING webhook_id",
        )
        .bind::<SqlUuid, _>(event.id)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(now + lease)
        .bind::<Text, _>(new.brand_id)
        .bind::<Array<Text>, _>(match_types)
        .load(conn)
        .await?;
        let webhook_ids = rows.into_iter().map(|r| r.webhook_id).collect();
        Ok(Ingested {
            event,
            webhook_ids,
            created: true,
        })
    })
    .await
}
