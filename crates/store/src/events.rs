//! Event ingest: the event row and one delivery row per matching webhook, in one statement.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hookline_domain::DeliveryStatus;
use uuid::Uuid;

use crate::{
    models::{Event, NewEvent},
    prepared,
    schema::{deliveries, events},
    StoreError,
};

/// What an ingest did: the event (the first one, when the idempotency key was seen before), the
/// webhooks it is owed to, and whether this call created it.
#[derive(Debug)]
pub struct Ingested {
    pub event: Event,
    /// Webhooks the event is owed to: due now, or parked behind a degraded endpoint.
    pub webhook_ids: Vec<Uuid>,
    /// Of those, the ones due now, leased for the caller to publish (empty for a replay).
    pub due_webhook_ids: Vec<Uuid>,
    pub created: bool,
}

/// Stores `new` and its deliveries (see [`ingest_batch`]). One event is a batch of one.
pub async fn ingest(
    conn: &mut AsyncPgConnection,
    new: &NewEvent<'_>,
    match_types: &[String],
    lease: Duration,
) -> Result<Ingested, StoreError> {
    let mut ingested = ingest_batch(
        conn,
        std::slice::from_ref(new),
        &[match_types.to_vec()],
        lease,
    )
    .await?;
    ingested.pop().ok_or(StoreError::NotFound)
}

/// A row of the ingest statement: an event it created (`webhook_id` NULL, `created` set) or a
/// delivery it created (`webhook_id` and `status` set).
#[derive(QueryableByName)]
struct IngestRow {
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    webhook_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
}

/// From this many events, the ingest is planned for its own arrays rather than run on the
/// connection's generic plan: batches of 500 ingested 37,150-37,220 events/s planned alone
/// against 26,500-30,400 on the generic plan, while groups of a few single-event requests gain
/// from skipping the planner (`hookline-bench`, README "Performance").
const PLAN_ALONE_FROM: usize = 64;

/// The columns `status, status_reason, next_attempt_at, leased_until` of a new delivery to
/// webhook `w`, by its endpoint's health: owed now and leased for `$lease` milliseconds (a bind
/// parameter) while healthy, PARKED while degraded, SKIPPED while disabled. Ingest and test
/// events share it, so an event is owed the same way however it arrives.
macro_rules! owed_by_health {
    ($lease:literal) => {
        concat!(
            "CASE w.health WHEN 'healthy' THEN 'PENDING' WHEN 'degraded' THEN 'PARKED' \
                 ELSE 'SKIPPED' END, \
             CASE w.health WHEN 'healthy' THEN NULL WHEN 'degraded' THEN 'endpoint_degraded' \
                 ELSE 'webhook_disabled' END, \
             CASE WHEN w.health = 'healthy' THEN now() + ",
            $lease,
            " * interval '1 millisecond' END, \
             CASE WHEN w.health = 'healthy' THEN now() + ",
            $lease,
            " * interval '1 millisecond' END "
        )
    };
}

/// The whole ingest is one statement, so it commits alone (no BEGIN/COMMIT round trips) and
/// its text is fixed whatever the number of events, so Postgres parses it once per connection
/// and, below [`PLAN_ALONE_FROM`] events, plans it once too. Deliveries are created only for
/// the events this statement inserted, one per matching webhook of the brand, as the
/// lifecycle's `initial_status` says: due now (and leased for the caller to publish) for a
/// healthy endpoint, parked behind a degraded one, skipped for a disabled webhook — recorded
/// either way, never silently dropped. `m.exclude` keeps an operational event about a webhook
/// from being delivered to that webhook.
const INGEST: &str = concat!(
    "\
WITH ev AS ( \
    INSERT INTO events (id, brand_id, event_type, payload, idempotency_key, traceparent, \
        tracestate) \
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[], \
        $11::text[], $12::text[]) \
    ON CONFLICT DO NOTHING \
    RETURNING id, created \
), dl AS ( \
    INSERT INTO deliveries (webhook_id, event_id, status, status_reason, next_attempt_at, \
        leased_until) \
    SELECT DISTINCT w.id, m.event_id, \
    ",
    owed_by_health!("$9"),
    "\
    FROM unnest($6::uuid[], $7::text[], $8::text[], $10::uuid[]) \
        AS m(event_id, match_type, brand_id, exclude) \
    JOIN ev ON ev.id = m.event_id \
    JOIN webhooks w ON w.brand_id = m.brand_id AND m.match_type = ANY(w.event_types) \
    WHERE w.id IS DISTINCT FROM m.exclude \
    RETURNING webhook_id, event_id, status \
) \
SELECT id AS event_id, NULL::uuid AS webhook_id, created, NULL::text AS status FROM ev \
UNION ALL \
SELECT event_id, webhook_id, NULL::timestamptz, status FROM dl",
);

/// [`ingest`] for many events (of any brands) in one statement: the API uses it for batch
/// requests and to group concurrent single-event requests into one commit. `match_types[i]`
/// are the types that match `news[i]` (its type and ancestors). An event whose idempotency key
/// was seen before (in an earlier request or earlier in this batch) answers with that event.
pub async fn ingest_batch(
    conn: &mut AsyncPgConnection,
    news: &[NewEvent<'_>],
    match_types: &[Vec<String>],
    lease: Duration,
) -> Result<Vec<Ingested>, StoreError> {
    ingest_excluding(conn, news, match_types, &[], lease).await
}

/// The W3C trace context stored with an event (`events.traceparent`, `events.tracestate`):
/// the context of the span that ingested it, which every attempt continues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceContext<'a> {
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
}

/// [`ingest_batch`] with the trace context of each event: `traces[i]` is stored with
/// `news[i]` (`traces` may be shorter; the rest have none). An idempotent replay keeps the
/// first event's context.
pub async fn ingest_traced(
    conn: &mut AsyncPgConnection,
    news: &[NewEvent<'_>],
    match_types: &[Vec<String>],
    traces: &[TraceContext<'_>],
    lease: Duration,
) -> Result<Vec<Ingested>, StoreError> {
    ingest_rows(conn, news, match_types, &[], traces, lease).await
}

/// [`ingest_batch`] where `exclude[i]`, when given, is a webhook that event `i` must not be
/// delivered to (an operational event about that webhook). `exclude` may be shorter than
/// `news`.
pub async fn ingest_excluding(
    conn: &mut AsyncPgConnection,
    news: &[NewEvent<'_>],
    match_types: &[Vec<String>],
    exclude: &[Option<Uuid>],
    lease: Duration,
) -> Result<Vec<Ingested>, StoreError> {
    ingest_rows(conn, news, match_types, exclude, &[], lease).await
}

async fn ingest_rows(
    conn: &mut AsyncPgConnection,
    news: &[NewEvent<'_>],
    match_types: &[Vec<String>],
    exclude: &[Option<Uuid>],
    traces: &[TraceContext<'_>],
    lease: Duration,
) -> Result<Vec<Ingested>, StoreError> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let traces = &traces[..traces.len().min(news.len())];
    // One row per (new event, type that matches it).
    let mut pair_events = Vec::new();
    let mut pair_types = Vec::new();
    let mut pair_brands = Vec::new();
    let mut pair_excludes: Vec<Option<Uuid>> = Vec::new();
    for (i, (new, types)) in news.iter().zip(match_types).enumerate() {
        for t in types {
            pair_events.push(new.id);
            pair_types.push(t.as_str());
            pair_brands.push(new.brand_id);
            pair_excludes.push(exclude.get(i).copied().flatten());
        }
    }
    let rows: Vec<IngestRow> = prepared::statement(INGEST)
        .bind::<Array<SqlUuid>, _>(news.iter().map(|n| n.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(news.iter().map(|n| n.brand_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(news.iter().map(|n| n.event_type).collect::<Vec<_>>())
        .bind::<Array<Jsonb>, _>(news.iter().map(|n| n.payload).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            news.iter().map(|n| n.idempotency_key).collect::<Vec<_>>(),
        )
        .bind::<Array<SqlUuid>, _>(&pair_events)
        .bind::<Array<Text>, _>(&pair_types)
        .bind::<Array<Text>, _>(&pair_brands)
        .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
        .bind::<Array<Nullable<SqlUuid>>, _>(&pair_excludes)
        // Shorter than `news` (or empty): unnest pads with NULL.
        .bind::<Array<Nullable<Text>>, _>(traces.iter().map(|t| t.traceparent).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(traces.iter().map(|t| t.tracestate).collect::<Vec<_>>())
        .planned_alone(news.len() >= PLAN_ALONE_FROM)
        .load(conn)
        .await?;
    let mut created: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    let mut owed: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    let mut due: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    let pending = DeliveryStatus::Pending.as_str();
    let skipped = DeliveryStatus::Skipped.as_str();
    for row in rows {
        match (row.webhook_id, row.created) {
            (Some(webhook_id), _) => {
                let status = row.status.as_deref().unwrap_or(pending);
                if status == pending {
                    due.entry(row.event_id).or_default().push(webhook_id);
                }
                if status != skipped {
                    owed.entry(row.event_id).or_default().push(webhook_id);
                }
            }
            (None, Some(at)) => {
                created.insert(row.event_id, at);
            }
            (None, None) => {}
        }
    }

    // Events not inserted had an idempotency key already taken: find their first event (it is
    // committed: the insert waited for it) and what it is owed to.
    let replays: Vec<(&str, &str)> = news
        .iter()
        .filter(|n| !created.contains_key(&n.id))
        .filter_map(|n| Some((n.brand_id, n.idempotency_key?)))
        .collect();
    let earlier: Vec<Event> = if replays.is_empty() {
        Vec::new()
    } else {
        let brands: Vec<&str> = replays.iter().map(|(b, _)| *b).collect();
        let keys: Vec<&str> = replays.iter().map(|(_, k)| *k).collect();
        events::table
            .filter(events::brand_id.eq_any(&brands))
            .filter(events::idempotency_key.eq_any(&keys))
            .select(Event::as_select())
            .load(conn)
            .await?
    };
    let by_key: HashMap<(&str, &str), &Event> = earlier
        .iter()
        .filter_map(|e| Some(((e.brand_id.as_str(), e.idempotency_key.as_deref()?), e)))
        .collect();
    // Deliveries of events from earlier requests, for their answer (an event created earlier
    // in this batch already has its deliveries in `owed`).
    let replayed_ids: Vec<Uuid> = earlier
        .iter()
        .map(|e| e.id)
        .filter(|id| !created.contains_key(id))
        .collect();
    if !replayed_ids.is_empty() {
        let rows: Vec<(Uuid, Uuid)> = deliveries::table
            .filter(deliveries::event_id.eq_any(&replayed_ids))
            .filter(deliveries::status.ne(skipped))
            .select((deliveries::webhook_id, deliveries::event_id))
            .load(conn)
            .await?;
        for (webhook_id, event_id) in rows {
            owed.entry(event_id).or_default().push(webhook_id);
        }
    }

    let mut out = Vec::with_capacity(news.len());
    for new in news {
        let (event, was_created) = match created.get(&new.id) {
            Some(&at) => (
                Event {
                    id: new.id,
                    brand_id: new.brand_id.to_owned(),
                    event_type: new.event_type.to_owned(),
                    payload: new.payload.clone(),
                    created: at,
                    idempotency_key: new.idempotency_key.map(str::to_owned),
                    erased: None,
                },
                true,
            ),
            None => {
                let key = (new.brand_id, new.idempotency_key.unwrap_or_default());
                let Some(e) = by_key.get(&key) else {
                    return Err(StoreError::Conflict(
                        "events_brand_id_idempotency_key_idx".into(),
                    ));
                };
                ((*e).clone(), false)
            }
        };
        let mut webhook_ids = owed.get(&event.id).cloned().unwrap_or_default();
        webhook_ids.sort();
        let mut due_webhook_ids = if was_created {
            due.remove(&event.id).unwrap_or_default()
        } else {
            Vec::new()
        };
        due_webhook_ids.sort();
        out.push(Ingested {
            event,
            webhook_ids,
            due_webhook_ids,
            created: was_created,
        });
    }
    Ok(out)
}

/// The events of `brand` already stored under any of `keys` (idempotency keys).
pub async fn by_idempotency_keys(
    conn: &mut AsyncPgConnection,
    brand: &str,
    keys: &[&str],
) -> Result<Vec<Event>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    Ok(events::table
        .filter(events::brand_id.eq(brand))
        .filter(events::idempotency_key.eq_any(keys))
        .select(Event::as_select())
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct PingRow {
    #[diesel(sql_type = Text)]
    status: String,
}

/// Stores a test event (`WEBHOOK_EVENTS.PING`) of `brand` owed to webhook `webhook_id` alone,
/// whatever it subscribes to: the delivery is what any event's would be (due now and leased for
/// `lease` for the caller to publish while the endpoint is healthy, parked while it is
/// degraded, skipped while the webhook is disabled). `None` when the brand has no such webhook.
pub async fn ping(
    conn: &mut AsyncPgConnection,
    brand: &str,
    webhook_id: Uuid,
    event_id: Uuid,
    event_type: &str,
    payload: &serde_json::Value,
    lease: Duration,
) -> Result<Option<DeliveryStatus>, StoreError> {
    let rows: Vec<PingRow> = prepared::statement(concat!(
        "WITH w AS ( \
             SELECT id, health FROM webhooks WHERE id = $1 AND brand_id = $2 \
         ), ev AS ( \
             INSERT INTO events (id, brand_id, event_type, payload) \
             SELECT $3, $2, $4, $5 FROM w \
             RETURNING id \
         ) \
         INSERT INTO deliveries (webhook_id, event_id, status, status_reason, next_attempt_at, \
             leased_until) \
         SELECT w.id, ev.id, ",
        owed_by_health!("$6"),
        "FROM w, ev \
         RETURNING status"
    ))
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<Text, _>(brand.to_owned())
    .bind::<SqlUuid, _>(event_id)
    .bind::<Text, _>(event_type.to_owned())
    .bind::<Jsonb, _>(payload.clone())
    .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .next()
        .map(|r| r.status.parse().unwrap_or(DeliveryStatus::Pending)))
}
