//! Bulk recovery jobs: requeue a webhook's (or a brand's) failed or skipped deliveries by
//! filter, at a bounded rate, surviving the replica that runs them.
//!
//! Creating a job snapshots the deliveries its filter matches into `recovery_items` in the same
//! transaction that inserts the job, so `matched` is exact and a later change of a delivery
//! (delivered meanwhile, retried by hand) shows as `skipped` rather than as a second requeue.
//! A replica owns a running job through a lease ([`claim`]); each [`step`] requeues the next
//! items in one statement that also deletes them and counts them on the job, so a step either
//! happened or did not, whoever dies when.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use hookline_domain::DeliveryMessage;
use uuid::Uuid;

use crate::{prepared, schema::recoveries, StoreError};

pub const RUNNING: &str = "RUNNING";
pub const DONE: &str = "DONE";
pub const CANCELLED: &str = "CANCELLED";
pub const FAILED: &str = "FAILED";

/// Which deliveries a recovery matches: those of its webhooks whose event was created in
/// `[since, until)`, whose status is one of `statuses`, whose event is one of `event_types`
/// (leaves; `None`: any) and whose payload was not erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub statuses: Vec<String>,
    pub event_types: Option<Vec<String>>,
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewRecovery {
    pub id: Uuid,
    pub brand_id: String,
    /// The webhook of a webhook-level job; `None` for a brand-level one.
    pub webhook_id: Option<Uuid>,
    /// Every webhook the job covers.
    pub webhook_ids: Vec<Uuid>,
    pub filter: Filter,
    /// The filter's event types as the brand gave them (leaves or groups), shown on the job.
    pub requested_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = recoveries, check_for_backend(diesel::pg::Pg))]
pub struct Recovery {
    pub id: Uuid,
    pub brand_id: String,
    pub webhook_id: Option<Uuid>,
    pub webhook_ids: Vec<Option<Uuid>>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub statuses: Vec<Option<String>>,
    pub event_types: Option<Vec<Option<String>>>,
    pub state: String,
    pub matched: i64,
    pub requeued: i64,
    pub skipped: i64,
    pub error: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
}

/// Why a job was not created.
#[derive(Debug)]
pub enum Refused {
    /// A running job already covers one of the webhooks.
    Busy { running: Uuid, webhook_id: Uuid },
    /// The filter matches more than the bound.
    TooMany { max: u64 },
}

enum CreateFail {
    Store(StoreError),
    Refused(Refused),
}

impl From<diesel::result::Error> for CreateFail {
    fn from(e: diesel::result::Error) -> Self {
        CreateFail::Store(e.into())
    }
}

impl From<StoreError> for CreateFail {
    fn from(e: StoreError) -> Self {
        CreateFail::Store(e)
    }
}

/// The deliveries a filter matches (`$1` webhooks, `$2` statuses, `$3`/`$4` window, `$5`
/// leaf types or NULL, `$6` brand). The webhook id comes first in both indexes a status
/// filter can use (the failure and skipped partial indexes, the primary key).
macro_rules! matching {
    () => {
        "FROM deliveries d JOIN events e ON e.id = d.event_id \
         WHERE d.webhook_id = ANY($1) AND d.status = ANY($2) \
             AND e.created >= $3 AND e.created < $4 AND e.erased IS NULL \
             AND ($5::text[] IS NULL OR e.event_type = ANY($5)) AND e.brand_id = $6"
    };
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many deliveries `filter` matches for `webhook_ids` of `brand` now (a dry run).
pub async fn count_matching(
    conn: &mut AsyncPgConnection,
    brand: &str,
    webhook_ids: &[Uuid],
    filter: &Filter,
) -> Result<i64, StoreError> {
    let rows: Vec<Count> = prepared::statement(concat!("SELECT count(*) AS n ", matching!()))
        .bind::<Array<SqlUuid>, _>(webhook_ids)
        .bind::<Array<Text>, _>(&filter.statuses)
        .bind::<Timestamptz, _>(filter.since)
        .bind::<Timestamptz, _>(filter.until)
        .bind::<Nullable<Array<Text>>, _>(filter.event_types.as_deref())
        .bind::<Text, _>(brand)
        .load(conn)
        .await?;
    Ok(rows.iter().map(|c| c.n).sum())
}

/// The first key of the two-key advisory lock that serialises creating recoveries per brand
/// ("hklr"); the second is the brand's `hashtext`.
const RECOVERY_LOCK: i32 = 0x686b_6c72;

/// Creates a running job and snapshots what it matches, unless a running job of the brand
/// already covers one of its webhooks or it matches more than `max_matched`. A job that
/// matches nothing is DONE at once. Creating is serialised per brand (advisory lock), so two
/// identical requests at once make one job and one refusal.
pub async fn create(
    conn: &mut AsyncPgConnection,
    new: &NewRecovery,
    max_matched: u64,
) -> Result<Result<Recovery, Refused>, StoreError> {
    let new = new.clone();
    let result = conn
        .transaction::<_, CreateFail, _>(async move |conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind::<Int4, _>(RECOVERY_LOCK)
                .bind::<Text, _>(&new.brand_id)
                .execute(conn)
                .await?;
            let busy: Option<(Uuid, Vec<Option<Uuid>>)> = recoveries::table
                .filter(recoveries::brand_id.eq(&new.brand_id))
                .filter(recoveries::state.eq(RUNNING))
                .filter(
                    recoveries::webhook_ids.overlaps_with(
                        new.webhook_ids
                            .iter()
                            .map(|id| Some(*id))
                            .collect::<Vec<_>>(),
                    ),
                )
                .select((recoveries::id, recoveries::webhook_ids))
                .first(conn)
                .await
                .optional()?;
            if let Some((running, ids)) = busy {
                let webhook_id = ids
                    .into_iter()
                    .flatten()
                    .find(|id| new.webhook_ids.contains(id))
                    .unwrap_or_default();
                return Err(CreateFail::Refused(Refused::Busy {
                    running,
                    webhook_id,
                }));
            }
            diesel::insert_into(recoveries::table)
                .values((
                    recoveries::id.eq(new.id),
                    recoveries::brand_id.eq(&new.brand_id),
                    recoveries::webhook_id.eq(new.webhook_id),
                    recoveries::webhook_ids.eq(new
                        .webhook_ids
                        .iter()
                        .map(|id| Some(*id))
                        .collect::<Vec<_>>()),
                    recoveries::since.eq(new.filter.since),
                    recoveries::until.eq(new.filter.until),
                    recoveries::statuses.eq(new
                        .filter
                        .statuses
                        .iter()
                        .map(|s| Some(s.clone()))
                        .collect::<Vec<_>>()),
                    recoveries::event_types.eq(new
                        .requested_types
                        .as_ref()
                        .map(|t| t.iter().map(|s| Some(s.clone())).collect::<Vec<_>>())),
                    recoveries::state.eq(RUNNING),
                    recoveries::matched.eq(0_i64),
                ))
                .execute(conn)
                .await?;
            let limit = i64::try_from(max_matched.saturating_add(1)).unwrap_or(i64::MAX);
            let rows: Vec<Count> = prepared::statement(concat!(
                "WITH m AS (INSERT INTO recovery_items (recovery_id, webhook_id, event_id) \
                 SELECT $7, d.webhook_id, d.event_id ",
                matching!(),
                " LIMIT $8 RETURNING 1) SELECT count(*) AS n FROM m"
            ))
            .bind::<Array<SqlUuid>, _>(&new.webhook_ids)
            .bind::<Array<Text>, _>(&new.filter.statuses)
            .bind::<Timestamptz, _>(new.filter.since)
            .bind::<Timestamptz, _>(new.filter.until)
            .bind::<Nullable<Array<Text>>, _>(new.filter.event_types.as_deref())
            .bind::<Text, _>(&new.brand_id)
            .bind::<SqlUuid, _>(new.id)
            .bind::<BigInt, _>(limit)
            .load(conn)
            .await?;
            let matched: i64 = rows.iter().map(|c| c.n).sum();
            if u64::try_from(matched).unwrap_or(u64::MAX) > max_matched {
                return Err(CreateFail::Refused(Refused::TooMany { max: max_matched }));
            }
            let done = matched == 0;
            let now = Utc::now();
            Ok(
                diesel::update(recoveries::table.filter(recoveries::id.eq(new.id)))
                    .set((
                        recoveries::matched.eq(matched),
                        recoveries::state.eq(if done { DONE } else { RUNNING }),
                        recoveries::finished.eq(done.then_some(now)),
                    ))
                    .returning(Recovery::as_returning())
                    .get_result(conn)
                    .await?,
            )
        })
        .await;
    match result {
        Ok(job) => Ok(Ok(job)),
        Err(CreateFail::Refused(r)) => Ok(Err(r)),
        Err(CreateFail::Store(e)) => Err(e),
    }
}

/// One job of `brand`.
pub async fn get(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
) -> Result<Option<Recovery>, StoreError> {
    Ok(recoveries::table
        .filter(recoveries::brand_id.eq(brand))
        .filter(recoveries::id.eq(id))
        .select(Recovery::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A page of the brand's jobs, newest first: ids below `before` (ids are UUIDv7, so by time).
pub async fn list(
    conn: &mut AsyncPgConnection,
    brand: &str,
    size: i64,
    before: Option<Uuid>,
) -> Result<Vec<Recovery>, StoreError> {
    let mut query = recoveries::table
        .filter(recoveries::brand_id.eq(brand))
        .select(Recovery::as_select())
        .order(recoveries::id.desc())
        .limit(size)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(recoveries::id.lt(before));
    }
    Ok(query.load(conn).await?)
}

/// What [`cancel`] found.
#[derive(Debug)]
pub enum Cancelled {
    /// The job was running and is now CANCELLED.
    Cancelled(Recovery),
    /// The job had already ended (DONE, CANCELLED or FAILED).
    NotRunning(Recovery),
    NotFound,
}

/// Cancels a running job of `brand`. What it requeued stays requeued; the rest of its snapshot
/// is dropped. Waits for a step in progress (the step holds the job's row), so nothing is
/// requeued after this returns.
pub async fn cancel(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
) -> Result<Cancelled, StoreError> {
    let brand = brand.to_owned();
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let now = Utc::now();
        let cancelled: Option<Recovery> = diesel::update(
            recoveries::table
                .filter(recoveries::brand_id.eq(&brand))
                .filter(recoveries::id.eq(id))
                .filter(recoveries::state.eq(RUNNING)),
        )
        .set((
            recoveries::state.eq(CANCELLED),
            recoveries::finished.eq(Some(now)),
            recoveries::updated.eq(now),
            recoveries::leased_until.eq(None::<DateTime<Utc>>),
        ))
        .returning(Recovery::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        if let Some(job) = cancelled {
            drop_items(conn, id).await?;
            return Ok(Cancelled::Cancelled(job));
        }
        Ok(match get(conn, &brand, id).await? {
            Some(job) => Cancelled::NotRunning(job),
            None => Cancelled::NotFound,
        })
    })
    .await
}

async fn drop_items(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), StoreError> {
    prepared::statement("DELETE FROM recovery_items WHERE recovery_id = $1")
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends the running jobs of a webhook that is being deleted: FAILED, with the reason.
pub async fn fail_for_webhook(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
) -> Result<(), StoreError> {
    prepared::statement(
        "WITH failed AS ( \
             UPDATE recoveries SET state = 'FAILED', error = 'the webhook was deleted', \
                 finished = now(), updated = now(), leased_until = NULL \
             WHERE webhook_id = $1 AND state = 'RUNNING' RETURNING id \
         ) \
         DELETE FROM recovery_items i USING failed WHERE i.recovery_id = failed.id",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Leases up to `limit` running jobs to `owner` for `lease`: the ones it already holds, and
/// those nobody holds or whose holder's lease ran out (it died). Oldest first.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    owner: &str,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Uuid>, StoreError> {
    let rows: Vec<Id> = prepared::statement(
        "UPDATE recoveries SET owner = $1, leased_until = now() + $2 * interval '1 millisecond' \
         WHERE id IN ( \
             SELECT id FROM recoveries WHERE state = 'RUNNING' \
                 AND (owner = $1 OR leased_until IS NULL OR leased_until < now()) \
             ORDER BY created LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id",
    )
    .bind::<Text, _>(owner)
    .bind::<BigInt, _>(millis(lease))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// What one [`step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stepped {
    /// The job's state after the step (DONE once its snapshot is used up).
    pub state: String,
    /// Deliveries this step requeued.
    pub requeued: i64,
    /// Matched deliveries this step passed over (no longer in a matched status).
    pub skipped: i64,
    /// Of the requeued, those due now (behind a healthy endpoint), leased for the caller to
    /// publish; the others were parked behind their endpoint's health.
    pub due: Vec<DeliveryMessage>,
}

#[derive(QueryableByName)]
struct StepRow {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = BigInt)]
    requeued: i64,
    #[diesel(sql_type = BigInt)]
    skipped: i64,
    #[diesel(sql_type = Nullable<Array<SqlUuid>>)]
    due_webhooks: Option<Vec<Uuid>>,
    #[diesel(sql_type = Nullable<Array<SqlUuid>>)]
    due_events: Option<Vec<Uuid>>,
}

/// Requeues up to `batch` more deliveries of a job `owner` holds, in one statement: takes them
/// from the job's snapshot, makes each that is still in one of the job's statuses owed again
/// with its retry schedule restarted (due now behind a healthy endpoint, and leased for
/// `delivery_lease` so the caller publishes it at once; parked behind a degraded or disabled
/// one, as the lifecycle's `owed_status` says, so the health machine and the worker's caps
/// apply as to any delivery), counts requeued and skipped on the job, renews the job's lease
/// (`lease`), and marks the job DONE when its snapshot is used up. `None` when the job is not
/// running or not held by `owner` (cancelled, finished, or taken over).
pub async fn step(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    owner: &str,
    batch: u32,
    lease: Duration,
    delivery_lease: Duration,
) -> Result<Option<Stepped>, StoreError> {
    let rows: Vec<StepRow> = prepared::statement(
        "WITH job AS ( \
             SELECT id, statuses FROM recoveries \
             WHERE id = $1 AND state = 'RUNNING' AND owner = $2 FOR UPDATE \
         ), pick AS ( \
             SELECT i.webhook_id, i.event_id FROM recovery_items i JOIN job ON job.id = i.recovery_id \
             ORDER BY i.webhook_id, i.event_id LIMIT $3 \
         ), batch AS ( \
             DELETE FROM recovery_items i USING pick \
             WHERE i.recovery_id = $1 AND i.webhook_id = pick.webhook_id \
                 AND i.event_id = pick.event_id \
             RETURNING i.webhook_id, i.event_id \
         ), requeued AS ( \
             UPDATE deliveries d SET \
                 status = CASE WHEN w.health = 'healthy' THEN 'PENDING' ELSE 'PARKED' END, \
                 status_reason = CASE w.health WHEN 'healthy' THEN NULL \
                     WHEN 'degraded' THEN 'endpoint_degraded' ELSE 'webhook_disabled' END, \
                 attempt_count = 0, \
                 next_attempt_at = CASE WHEN w.health = 'healthy' \
                     THEN now() + $5 * interval '1 millisecond' END, \
                 leased_until = CASE WHEN w.health = 'healthy' \
                     THEN now() + $5 * interval '1 millisecond' END, \
                 attempting = false, manual_retry = false, lost_count = 0, updated = now() \
             FROM batch JOIN webhooks w ON w.id = batch.webhook_id \
                 JOIN events e ON e.id = batch.event_id, job \
             WHERE d.webhook_id = batch.webhook_id AND d.event_id = batch.event_id \
                 AND d.status = ANY(job.statuses) AND e.erased IS NULL \
             RETURNING d.webhook_id, d.event_id, d.status \
         ), counts AS ( \
             SELECT (SELECT count(*) FROM batch) AS handled, \
                 (SELECT count(*) FROM requeued) AS requeued \
         ), moved AS ( \
             UPDATE recoveries r SET requeued = r.requeued + counts.requeued, \
                 skipped = r.skipped + counts.handled - counts.requeued, \
                 state = CASE WHEN counts.handled < $3 THEN 'DONE' ELSE r.state END, \
                 finished = CASE WHEN counts.handled < $3 THEN now() END, \
                 leased_until = CASE WHEN counts.handled < $3 THEN NULL \
                     ELSE now() + $4 * interval '1 millisecond' END, \
                 updated = now() \
             FROM counts, job WHERE r.id = job.id \
             RETURNING r.state, counts.requeued, counts.handled - counts.requeued AS skipped \
         ) \
         SELECT moved.state, moved.requeued, moved.skipped, \
             (SELECT array_agg(webhook_id ORDER BY webhook_id, event_id) FROM requeued \
                 WHERE status = 'PENDING') AS due_webhooks, \
             (SELECT array_agg(event_id ORDER BY webhook_id, event_id) FROM requeued \
                 WHERE status = 'PENDING') AS due_events \
         FROM moved",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(owner)
    .bind::<BigInt, _>(i64::from(batch.max(1)))
    .bind::<BigInt, _>(millis(lease))
    .bind::<BigInt, _>(millis(delivery_lease))
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().map(|r| Stepped {
        state: r.state,
        requeued: r.requeued,
        skipped: r.skipped,
        due: r
            .due_webhooks
            .unwrap_or_default()
            .into_iter()
            .zip(r.due_events.unwrap_or_default())
            .map(|(webhook_id, event_id)| DeliveryMessage {
                webhook_id,
                event_id,
            })
            .collect(),
    }))
}

/// Jobs per state, for the metrics.
#[derive(Debug, Clone, QueryableByName)]
pub struct StateCount {
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

pub async fn counts(conn: &mut AsyncPgConnection) -> Result<Vec<StateCount>, StoreError> {
    Ok(
        diesel::sql_query("SELECT state, count(*) AS n FROM recoveries GROUP BY state")
            .load(conn)
            .await?,
    )
}
