//! Queries only the delivery worker runs, beside the shared ones in [`crate::deliveries`]:
//! waiting for the schema at start, and taking deliveries before sending them.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hookline_domain::DeliveryMessage;

use crate::{
    deliveries::{key_arrays, EventMeta, Job, Key},
    models::{Delivery, Webhook},
    prepared,
    secrets::StoredSecret,
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
    /// The payloads (JSON text) of taken events that are small enough to come with the take;
    /// the others are loaded with [`load_payloads`].
    pub payloads: HashMap<uuid::Uuid, String>,
}

/// A row of [`TAKE`]: the delivery (its own column names) with its event's metadata (`e_`)
/// and its webhook (`w_`).
#[derive(QueryableByName)]
struct TakenRow {
    #[diesel(embed)]
    delivery: Delivery,
    #[diesel(sql_type = Text)]
    e_brand_id: String,
    #[diesel(sql_type = Text)]
    e_event_type: String,
    #[diesel(sql_type = Timestamptz)]
    e_created: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    e_traceparent: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    e_tracestate: Option<String>,
    #[diesel(embed)]
    webhook: TakenWebhook,
    #[diesel(sql_type = Nullable<Text>)]
    e_payload: Option<String>,
}

/// The webhook columns of [`TAKE`], named `w_…`.
#[derive(QueryableByName)]
struct TakenWebhook {
    #[diesel(sql_type = Text)]
    w_brand_id: String,
    #[diesel(sql_type = Text)]
    w_endpoint: String,
    #[diesel(sql_type = Array<Text>)]
    w_event_types: Vec<String>,
    #[diesel(sql_type = Bool)]
    w_enabled: bool,
    #[diesel(sql_type = Text)]
    w_secret: StoredSecret,
    #[diesel(sql_type = Nullable<Text>)]
    w_previous_secret: Option<StoredSecret>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    w_previous_secret_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    w_created: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    w_updated: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    w_health: String,
    #[diesel(sql_type = Nullable<Text>)]
    w_health_reason: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    w_probe_event_id: Option<uuid::Uuid>,
}

impl From<TakenRow> for Job {
    fn from(row: TakenRow) -> Job {
        let w = row.webhook;
        Job {
            event: EventMeta {
                id: row.delivery.event_id,
                brand_id: row.e_brand_id,
                event_type: row.e_event_type,
                created: row.e_created,
                traceparent: row.e_traceparent,
                tracestate: row.e_tracestate,
            },
            webhook: Webhook {
                id: row.delivery.webhook_id,
                brand_id: w.w_brand_id,
                endpoint: w.w_endpoint,
                event_types: w.w_event_types,
                enabled: w.w_enabled,
                secret: w.w_secret,
                previous_secret: w.w_previous_secret,
                previous_secret_expires_at: w.w_previous_secret_expires_at,
                created: w.w_created,
                updated: w.w_updated,
                health: w.w_health,
                health_reason: w.w_health_reason,
                probe_event_id: w.w_probe_event_id,
                // Counters and schedules are the health machine's, not the sender's.
                health_changed: None,
                consecutive_failures: 0,
                failing_since: None,
                last_success_at: None,
                last_failure_at: None,
                probe_interval_ms: None,
                next_probe_at: None,
                release_at: None,
            },
            delivery: row.delivery,
        }
    }
}

/// Takes, and loads with its event's metadata and its webhook, every delivery of the given
/// pointers that is PENDING, leased and not being attempted (see [`take_for_attempts`]). An
/// event's payload comes back as JSON text on one of its rows only (not 64 copies for a
/// fan-out of 64), and only when it is small (stored size at most `$4` bytes): a large one is
/// loaded apart ([`load_payloads`]) once the worker knows it has room for it. Public so tests
/// can examine its plan.
pub const TAKE: &str = "\
WITH taken AS ( \
    UPDATE deliveries d SET leased_until = now() + $3 * interval '1 millisecond', \
        next_attempt_at = now() + $3 * interval '1 millisecond', attempting = true \
    FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::uuid[])) AS m(webhook_id, event_id) \
    WHERE d.webhook_id = m.webhook_id AND d.event_id = m.event_id \
      AND d.status = 'PENDING' AND d.leased_until IS NOT NULL AND NOT d.attempting \
    RETURNING d.* \
) \
SELECT t.webhook_id, t.event_id, t.status, t.status_reason, t.attempt_count, \
    t.next_attempt_at, t.leased_until, t.manual_retry, t.created, t.updated, t.attempting, \
    t.lost_count, \
    e.brand_id AS e_brand_id, e.event_type AS e_event_type, e.created AS e_created, \
    e.traceparent AS e_traceparent, e.tracestate AS e_tracestate, \
    w.brand_id AS w_brand_id, w.endpoint AS w_endpoint, w.event_types AS w_event_types, \
    w.enabled AS w_enabled, w.secret AS w_secret, w.previous_secret AS w_previous_secret, \
    w.previous_secret_expires_at AS w_previous_secret_expires_at, w.created AS w_created, \
    w.updated AS w_updated, w.health AS w_health, w.health_reason AS w_health_reason, \
    w.probe_event_id AS w_probe_event_id, \
    CASE WHEN row_number() OVER (PARTITION BY t.event_id) = 1 \
        AND pg_column_size(e.payload) <= $4 THEN e.payload::text END AS e_payload \
FROM taken t JOIN events e ON e.id = t.event_id JOIN webhooks w ON w.id = t.webhook_id";

/// An event's payload as JSON text, exactly as Postgres prints it.
#[derive(Debug, QueryableByName)]
pub struct PayloadText {
    #[diesel(sql_type = SqlUuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub payload: String,
}

/// The payloads of `event_ids` as JSON text: the worker embeds the text in the envelope as is
/// (it is only ever re-sent), so it is never parsed into a tree of values.
pub async fn load_payloads(
    conn: &mut AsyncPgConnection,
    event_ids: &[uuid::Uuid],
) -> Result<Vec<PayloadText>, StoreError> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(prepared::statement(
        "SELECT id, payload::text AS payload FROM events WHERE id = ANY($1::uuid[])",
    )
    .bind::<Array<SqlUuid>, _>(event_ids)
    .load(conn)
    .await?)
}

/// Takes the deliveries of `messages` for one attempt each and loads what sending them needs,
/// in one statement whatever their number.
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
    inline_payload_bytes: usize,
) -> Result<Taken, StoreError> {
    if messages.is_empty() {
        return Ok(Taken::default());
    }
    let (webhook_ids, event_ids) = key_arrays(messages);
    let mut out = Taken::default();
    let jobs: Vec<Job> = prepared::statement(TAKE)
        .bind::<Array<SqlUuid>, _>(&webhook_ids)
        .bind::<Array<SqlUuid>, _>(&event_ids)
        .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
        .bind::<BigInt, _>(i64::try_from(inline_payload_bytes).unwrap_or(i64::MAX))
        .load::<TakenRow>(conn)
        .await?
        .into_iter()
        .map(|mut row| {
            if let Some(payload) = row.e_payload.take() {
                out.payloads.insert(row.delivery.event_id, payload);
            }
            Job::from(row)
        })
        .collect();

    let taken: HashSet<DeliveryMessage> = jobs
        .iter()
        .map(|j| DeliveryMessage {
            webhook_id: j.delivery.webhook_id,
            event_id: j.delivery.event_id,
        })
        .collect();
    let missed: Vec<DeliveryMessage> = messages
        .iter()
        .filter(|m| !taken.contains(m))
        .copied()
        .collect();
    if !missed.is_empty() {
        // Rare (stale and repeated messages): tell the two kinds apart for the metrics.
        let (webhook_ids, event_ids) = key_arrays(&missed);
        let existing: HashSet<DeliveryMessage> = prepared::statement(
            "SELECT d.webhook_id, d.event_id FROM deliveries d \
             JOIN unnest($1::uuid[], $2::uuid[]) AS m(webhook_id, event_id) \
               ON d.webhook_id = m.webhook_id AND d.event_id = m.event_id",
        )
        .bind::<Array<SqlUuid>, _>(&webhook_ids)
        .bind::<Array<SqlUuid>, _>(&event_ids)
        .load::<Key>(conn)
        .await?
        .into_iter()
        .map(DeliveryMessage::from)
        .collect();
        for m in missed {
            if existing.contains(&m) {
                out.stale.push(m);
            } else {
                out.gone.push(m);
            }
        }
    }
    out.jobs = jobs;
    Ok(out)
}
