//! Endpoint health in Postgres: applying the domain's health machine to webhook rows, parking
//! and releasing a webhook's deliveries, probing a degraded endpoint, and the operational
//! events (`WEBHOOK_EVENTS.*`) that tell the brand.
//!
//! Every change of state is a compare-and-set on the webhook's `health` (only one worker, or
//! the API, wins a transition) made in one transaction with what it moves: the parked
//! deliveries and the operational event, so a brand is told exactly once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Int4, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use hookline_domain::{
    lifecycle::reason, DeliveryMessage, EventType, Health, HealthReason, HealthState, Transition,
};
use serde_json::json;
use uuid::Uuid;

use crate::{
    deliveries::PENDING,
    events,
    models::{NewEvent, Webhook},
    prepared,
    schema::{deliveries, webhooks},
    StoreError,
};

/// The operational event a transition publishes, if any.
pub fn event_type_of(transition: Transition) -> Option<EventType> {
    let name = match transition {
        Transition::Degraded => "WEBHOOK_EVENTS.DEGRADED",
        Transition::Disabled(_) => "WEBHOOK_EVENTS.DISABLED",
        Transition::Recovered | Transition::Enabled => "WEBHOOK_EVENTS.RECOVERED",
    };
    EventType::parse(name).ok()
}

/// Whether an operational event about a webhook may be delivered to that same webhook: not
/// when it says the webhook is down (it would not arrive, and would only add to its backlog).
fn reaches_itself(transition: Transition) -> bool {
    matches!(transition, Transition::Recovered | Transition::Enabled)
}

/// Writes `to` over the webhook's health if it is still in `from`'s state, and carries out
/// `transition`: parking its owed deliveries when it degrades or is disabled, releasing them
/// (at the scheduler's bounded rate) when it recovers or is enabled, and publishing the
/// operational event. Returns the row after, or `None` when another writer changed the state
/// first (nothing was done).
pub async fn apply(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    from: HealthState,
    to: &Health,
    transition: Option<Transition>,
) -> Result<Option<Webhook>, StoreError> {
    let to = to.clone();
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let changed = from != to.state;
        let resets = matches!(
            transition,
            Some(Transition::Recovered | Transition::Enabled)
        );
        let now = Utc::now();
        let row: Option<Webhook> = diesel::update(
            webhooks::table
                .filter(webhooks::id.eq(webhook_id))
                .filter(webhooks::health.eq(from.as_str())),
        )
        .set((
            webhooks::health.eq(to.state.as_str()),
            webhooks::health_reason.eq(to.reason.map(HealthReason::as_str)),
            webhooks::enabled.eq(to.state != HealthState::Disabled),
            webhooks::probe_interval_ms.eq(to
                .probe_interval
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
            webhooks::next_probe_at.eq(to.next_probe_at),
        ))
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        let Some(mut row) = row else {
            return Ok(None);
        };
        if changed {
            row = diesel::update(webhooks::table.filter(webhooks::id.eq(webhook_id)))
                .set((
                    webhooks::health_changed.eq(Some(now)),
                    webhooks::updated.eq(now),
                    webhooks::probe_event_id.eq(None::<Uuid>),
                    // Releasing parked deliveries starts now when the endpoint is back, and
                    // stops when it leaves the healthy state.
                    webhooks::release_at.eq(resets.then_some(now)),
                ))
                .returning(Webhook::as_returning())
                .get_result(conn)
                .await?;
        }
        if resets {
            row = diesel::update(webhooks::table.filter(webhooks::id.eq(webhook_id)))
                .set((
                    webhooks::consecutive_failures.eq(0),
                    webhooks::failing_since.eq(None::<DateTime<Utc>>),
                ))
                .returning(Webhook::as_returning())
                .get_result(conn)
                .await?;
        }
        match to.state {
            HealthState::Degraded if changed => {
                park_owed(conn, webhook_id, reason::ENDPOINT_DEGRADED).await?;
            }
            HealthState::Disabled if changed => {
                park_owed(conn, webhook_id, reason::WEBHOOK_DISABLED).await?;
            }
            _ => {}
        }
        if let Some(t) = transition {
            publish(conn, &row, t).await?;
        }
        Ok(Some(row))
    })
    .await
}

/// Parks the webhook's PENDING deliveries that no worker is attempting (those in flight are
/// parked when their attempt is recorded).
async fn park_owed(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    why: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(deliveries::status.eq(PENDING))
            .filter(deliveries::attempting.eq(false)),
    )
    .set((
        deliveries::status.eq(hookline_domain::DeliveryStatus::Parked.as_str()),
        deliveries::status_reason.eq(why),
        deliveries::next_attempt_at.eq(None::<DateTime<Utc>>),
        deliveries::leased_until.eq(None::<DateTime<Utc>>),
        deliveries::updated.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?)
}

/// Parked deliveries of a webhook (shown on the webhook, carried by operational events).
pub async fn parked_count(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
) -> Result<i64, StoreError> {
    Ok(deliveries::table
        .filter(deliveries::webhook_id.eq(webhook_id))
        .filter(deliveries::status.eq(hookline_domain::DeliveryStatus::Parked.as_str()))
        .count()
        .get_result(conn)
        .await?)
}

/// Publishes the operational event of `transition` about `webhook` to the brand's webhooks
/// that subscribe to it. Its deliveries are due now and unleased, so the scheduler publishes
/// them on its next round (within `worker.scheduler_interval`).
async fn publish(
    conn: &mut AsyncPgConnection,
    webhook: &Webhook,
    transition: Transition,
) -> Result<(), StoreError> {
    let Some(event_type) = event_type_of(transition) else {
        return Ok(());
    };
    let parked = parked_count(conn, webhook.id).await?;
    let payload = json!({
        "webhookId": webhook.id,
        "endpoint": webhook.endpoint,
        "state": webhook.health,
        "reason": webhook.health_reason,
        "consecutiveFailures": webhook.consecutive_failures,
        "failingSince": webhook.failing_since,
        "lastSuccess": webhook.last_success_at,
        "lastFailure": webhook.last_failure_at,
        "parkedDeliveries": parked,
    });
    let exclude = (!reaches_itself(transition)).then_some(webhook.id);
    publish_event(conn, &webhook.brand_id, &event_type, &payload, exclude).await
}

/// Stores an operational event of `brand` (due now, for the scheduler to publish), not
/// delivered to `exclude`.
pub async fn publish_event(
    conn: &mut AsyncPgConnection,
    brand: &str,
    event_type: &EventType,
    payload: &serde_json::Value,
    exclude: Option<Uuid>,
) -> Result<(), StoreError> {
    let new = NewEvent {
        id: Uuid::now_v7(),
        brand_id: brand,
        event_type: event_type.as_str(),
        payload,
        idempotency_key: None,
    };
    events::ingest_excluding(
        conn,
        std::slice::from_ref(&new),
        &[event_type.ancestors_and_self()],
        &[exclude],
        Duration::ZERO,
    )
    .await?;
    Ok(())
}

/// Degraded webhooks whose next probe is due, oldest first.
pub async fn due_probes(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> Result<Vec<Webhook>, StoreError> {
    Ok(webhooks::table
        .filter(webhooks::health.eq(HealthState::Degraded.as_str()))
        .filter(webhooks::next_probe_at.le(diesel::dsl::now))
        .order(webhooks::next_probe_at.asc())
        .limit(limit)
        .select(Webhook::as_select())
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct Probed {
    #[diesel(sql_type = SqlUuid)]
    webhook_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
}

/// Picks the probe of a degraded webhook whose probe is due: its oldest parked delivery,
/// made PENDING and leased for the caller to publish, and remembered on the webhook so the
/// worker sends it (and parks the others). The next probe is pushed one interval on, so a
/// probe whose result never comes (worker lost) is followed by another. One statement; only
/// one scheduler wins a given probe. `None` when it is not due (any more) or nothing is parked.
pub async fn claim_probe(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    lease: Duration,
) -> Result<Option<DeliveryMessage>, StoreError> {
    let rows: Vec<Probed> = prepared::statement(
        // One UPDATE of the webhook row: two in one statement would leave only one of them.
        "WITH pick AS ( \
             SELECT webhook_id, event_id FROM deliveries \
             WHERE webhook_id = $1 AND status = 'PARKED' \
             ORDER BY event_id LIMIT 1 FOR UPDATE SKIP LOCKED \
         ), w AS ( \
             UPDATE webhooks SET next_probe_at = now() + \
                 coalesce(probe_interval_ms, 30000) * interval '1 millisecond', \
                 probe_event_id = (SELECT event_id FROM pick) \
             WHERE id = $1 AND health = 'degraded' AND next_probe_at <= now() \
             RETURNING id, probe_event_id \
         ) \
         UPDATE deliveries d SET status = 'PENDING', status_reason = NULL, \
             next_attempt_at = now() + $2 * interval '1 millisecond', \
             leased_until = now() + $2 * interval '1 millisecond', \
             attempting = false, updated = now() \
         FROM w WHERE d.webhook_id = w.id AND d.event_id = w.probe_event_id \
             AND d.status = 'PARKED' \
         RETURNING d.webhook_id, d.event_id",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().map(|p| DeliveryMessage {
        webhook_id: p.webhook_id,
        event_id: p.event_id,
    }))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Releases parked deliveries of webhooks that are healthy again, at most `per_webhook` per
/// webhook per second, oldest first: they become PENDING, due now and unleased, and the
/// scheduler publishes them like any due delivery. A webhook with more parked deliveries than
/// one batch gets its next batch a second later; once its parked deliveries are gone, it
/// stops being looked at. Safe in every scheduler at once (`SKIP LOCKED`). Returns how many
/// were released.
pub async fn release_parked(
    conn: &mut AsyncPgConnection,
    per_webhook: u32,
) -> Result<i64, StoreError> {
    let rows: Vec<Count> = prepared::statement(
        "WITH w AS ( \
             SELECT id FROM webhooks \
             WHERE release_at <= now() AND health = 'healthy' \
             ORDER BY release_at LIMIT 100 FOR UPDATE SKIP LOCKED \
         ), pick AS ( \
             SELECT p.webhook_id, p.event_id FROM w CROSS JOIN LATERAL ( \
                 SELECT webhook_id, event_id FROM deliveries \
                 WHERE webhook_id = w.id AND status = 'PARKED' \
                 ORDER BY event_id LIMIT $1) p \
         ), released AS ( \
             UPDATE deliveries d SET status = 'PENDING', status_reason = NULL, \
                 next_attempt_at = now(), leased_until = NULL, attempting = false, \
                 lost_count = 0, updated = now() \
             FROM pick WHERE d.webhook_id = pick.webhook_id AND d.event_id = pick.event_id \
                 AND d.status = 'PARKED' \
             RETURNING d.webhook_id \
         ), per AS ( \
             SELECT webhook_id, count(*) AS n FROM released GROUP BY webhook_id \
         ), next AS ( \
             UPDATE webhooks SET release_at = CASE WHEN coalesce(per.n, 0) >= $1 \
                 THEN now() + interval '1 second' END \
             FROM w LEFT JOIN per ON per.webhook_id = w.id WHERE webhooks.id = w.id \
         ) \
         SELECT count(*) AS n FROM released",
    )
    .bind::<Int4, _>(i32::try_from(per_webhook.max(1)).unwrap_or(i32::MAX))
    .load(conn)
    .await?;
    Ok(rows.iter().map(|c| c.n).sum())
}

/// Turns the webhook's SKIPPED deliveries into PARKED ones, which are then released at the
/// bounded rate (a brand re-enabling a webhook and asking for what it missed). Returns how
/// many.
pub async fn replay_skipped(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(deliveries::status.eq(hookline_domain::DeliveryStatus::Skipped.as_str())),
    )
    .set((
        deliveries::status.eq(hookline_domain::DeliveryStatus::Parked.as_str()),
        deliveries::status_reason.eq(Some(reason::REPLAY_SKIPPED)),
        deliveries::manual_retry.eq(false),
        deliveries::updated.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?)
}

/// Webhooks per health state and parked deliveries, for the metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HealthCounts {
    pub healthy: i64,
    pub degraded: i64,
    pub disabled: i64,
    pub parked_deliveries: i64,
}

#[derive(QueryableByName)]
struct StateCount {
    #[diesel(sql_type = Text)]
    health: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

pub async fn counts(conn: &mut AsyncPgConnection) -> Result<HealthCounts, StoreError> {
    let rows: Vec<StateCount> = diesel::sql_query(
        "SELECT health, count(*) AS n FROM webhooks GROUP BY health \
         UNION ALL SELECT 'parked', count(*) FROM deliveries WHERE status = 'PARKED'",
    )
    .load(conn)
    .await?;
    let mut out = HealthCounts::default();
    for r in rows {
        match r.health.as_str() {
            "healthy" => out.healthy = r.n,
            "degraded" => out.degraded = r.n,
            "disabled" => out.disabled = r.n,
            "parked" => out.parked_deliveries = r.n,
            _ => {}
        }
    }
    Ok(out)
}
