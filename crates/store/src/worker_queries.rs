//! Queries only the delivery worker runs, beside the shared ones in [`crate::deliveries`]:
//! waiting for the schema at start, and taking a delivery before sending it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::StoreError;

/// Ok once the `deliveries` table exists. The worker polls this at start instead of migrating:
/// migrations belong to the API (under its advisory lock) or to the explicit `migrate` command.
pub async fn schema_ready(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    diesel::sql_query("SELECT 1 FROM deliveries LIMIT 0")
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes a PENDING, due delivery for one attempt: extends its lease to `lease` from now, but
/// only if the lease is still the one the worker saw when it loaded the row (`seen`).
///
/// False means another handler took it in between (a duplicate message), the delivery is no
/// longer PENDING, or it is not due: a stale message (for instance one the broker redelivered
/// after its attempt was recorded and the next one scheduled) must not send early. The longer
/// lease keeps the scheduler from re-publishing the delivery while its request is in flight.
pub async fn take_for_attempt(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_id: Uuid,
    seen: Option<DateTime<Utc>>,
    lease: Duration,
) -> Result<bool, StoreError> {
    let n = diesel::sql_query(
        "UPDATE deliveries SET leased_until = now() + $4 * interval '1 millisecond' \
         WHERE webhook_id = $1 AND event_id = $2 AND status = 'PENDING' \
           AND next_attempt_at <= now() AND leased_until IS NOT DISTINCT FROM $3",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<SqlUuid, _>(event_id)
    .bind::<Nullable<Timestamptz>, _>(seen)
    .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(n == 1)
}
