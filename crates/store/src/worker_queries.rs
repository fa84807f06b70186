//! Queries only the delivery worker runs, beside the shared ones in [`crate::deliveries`]:
//! waiting for the schema at start, and taking deliveries before sending them.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hookline_domain::DeliveryMessage;
use uuid::Uuid;

use crate::{
    deliveries::Job,
    models::{Delivery, Event, Webhook},
    schema::{events, webhooks},
    StoreError,
};

/// Ok once the `deliveries` table exists. The worker polls this at start instead of migrating:
/// migrations belong to the API (under its advisory lock) or to the explicit `migrate` command.
pub async fn schema_ready(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    diesel::sql_query("SELECT 1 FROM deliveries LIMIT 0")
        .execute(conn)
        .await?;
    Ok(())
}

/// What [`take_for_attempts`] made of a set of delivery messages.
#[derive(Debug, Default)]
pub struct Taken {
    /// Taken for one attempt: each is the worker's until its attempt lease ends.
    pub jobs: Vec<Job>,
    /// Stale or repeated messages: the delivery is final, not leased, or being attempted.
    pub stale: Vec<DeliveryMessage>,
    /// The delivery no longer exists (its webhook or event was deleted).
    pub gone: Vec<DeliveryMessage>,
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = SqlUuid)]
    webhook_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
}

/// Takes the deliveries of `messages` for one attempt each, in one statement whatever their
/// number, and loads what sending them needs (two more queries, one per table).
///
/// Only a PENDING delivery that is leased and not already being attempted is taken; its lease
/// is extended to `lease` from now and it is marked `attempting`. Every path that publishes a
/// message leases the row first (ingest, `claim_due`, a manual retry) and every path that ends,
/// reschedules or releases an attempt clears the lease and the mark. So a row without a lease
/// has no live message, and a row being attempted has its message in a worker: a message for
/// either is stale (a broker redelivery, a copy the scheduler published when a lease ran out
/// behind a backlog) and must not send. The longer lease keeps the scheduler from re-publishing
/// a delivery while its request is in flight; if the worker dies, the lease runs out and the
/// scheduler clears the mark as it re-publishes.
pub async fn take_for_attempts(
    conn: &mut AsyncPgConnection,
    messages: &[DeliveryMessage],
    lease: Duration,
) -> Result<Taken, StoreError> {
    if messages.is_empty() {
        return Ok(Taken::default());
    }
    let webhook_ids: Vec<Uuid> = messages.iter().map(|m| m.webhook_id).collect();
    let event_ids: Vec<Uuid> = messages.iter().map(|m| m.event_id).collect();
    let taken: Vec<Delivery> = diesel::sql_query(
        "UPDATE deliveries d SET leased_until = now() + $3 * interval '1 millisecond', \
             attempting = true \
         FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::uuid[])) AS m(webhook_id, event_id) \
         WHERE d.webhook_id = m.webhook_id AND d.event_id = m.event_id \
           AND d.status = 'PENDING' AND d.leased_until IS NOT NULL AND NOT d.attempting \
         RETURNING d.*",
    )
    .bind::<Array<SqlUuid>, _>(&webhook_ids)
    .bind::<Array<SqlUuid>, _>(&event_ids)
    .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .load(conn)
    .await?;

    let mut out = Taken::default();
    let taken_keys: HashSet<(Uuid, Uuid)> =
        taken.iter().map(|d| (d.webhook_id, d.event_id)).collect();
    let missed: Vec<DeliveryMessage> = messages
        .iter()
        .filter(|m| !taken_keys.contains(&(m.webhook_id, m.event_id)))
        .copied()
        .collect();
    if !missed.is_empty() {
        // Rare (stale and repeated messages): tell the two kinds apart for the metrics.
        let existing: Vec<Key> = diesel::sql_query(
            "SELECT d.webhook_id, d.event_id FROM deliveries d \
             JOIN unnest($1::uuid[], $2::uuid[]) AS m(webhook_id, event_id) \
               ON d.webhook_id = m.webhook_id AND d.event_id = m.event_id",
        )
        .bind::<Array<SqlUuid>, _>(missed.iter().map(|m| m.webhook_id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(missed.iter().map(|m| m.event_id).collect::<Vec<_>>())
        .load(conn)
        .await?;
        let existing: HashSet<(Uuid, Uuid)> = existing
            .into_iter()
            .map(|k| (k.webhook_id, k.event_id))
            .collect();
        for m in missed {
            if existing.contains(&(m.webhook_id, m.event_id)) {
                out.stale.push(m);
            } else {
                out.gone.push(m);
            }
        }
    }
    if taken.is_empty() {
        return Ok(out);
    }

    let mut wanted_events: Vec<Uuid> = taken.iter().map(|d| d.event_id).collect();
    wanted_events.sort_unstable();
    wanted_events.dedup();
    let mut wanted_webhooks: Vec<Uuid> = taken.iter().map(|d| d.webhook_id).collect();
    wanted_webhooks.sort_unstable();
    wanted_webhooks.dedup();
    let events: HashMap<Uuid, Event> = events::table
        .filter(events::id.eq_any(&wanted_events))
        .select(Event::as_select())
        .load::<Event>(conn)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let webhooks: HashMap<Uuid, Webhook> = webhooks::table
        .filter(webhooks::id.eq_any(&wanted_webhooks))
        .select(Webhook::as_select())
        .load::<Webhook>(conn)
        .await?
        .into_iter()
        .map(|w| (w.id, w))
        .collect();
    for delivery in taken {
        match (
            events.get(&delivery.event_id),
            webhooks.get(&delivery.webhook_id),
        ) {
            (Some(event), Some(webhook)) => out.jobs.push(Job {
                event: event.clone(),
                webhook: webhook.clone(),
                delivery,
            }),
            // Deleted between the two statements; the cascade removed the row too.
            _ => out.gone.push(DeliveryMessage {
                webhook_id: delivery.webhook_id,
                event_id: delivery.event_id,
            }),
        }
    }
    Ok(out)
}
