//! Queries only the delivery worker runs, beside the shared ones in [`crate::deliveries`]:
//! waiting for the schema at start, and taking a delivery before sending it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Timestamptz, Uuid as SqlUuid};
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

/// Takes a PENDING delivery for one attempt: extends its lease to `lease` from now, but only if
/// the lease is still the one the worker saw when it loaded the row (`seen`).
///
/// Every path that publishes a message leases the row first (ingest, `claim_due`, a manual
/// retry), and every path that ends or reschedules an attempt clears the lease without
/// publishing. So a row without a lease has no live message: a message for it is stale (for
/// instance one the broker redelivered after its attempt was recorded and the next one
/// scheduled) and must not send early. False also when another handler took the row in
/// between (a duplicate message) or it is no longer PENDING. The longer lease keeps the
/// scheduler from re-publishing the delivery while its request is in flight. Only equality of
/// timestamps is compared, never clocks, so clock skew between hosts does not matter.
pub async fn take_for_attempt(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_id: Uuid,
    seen: Option<DateTime<Utc>>,
    lease: Duration,
) -> Result<bool, StoreError> {
    let Some(seen) = seen else {
        return Ok(false);
    };
    let n = diesel::sql_query(
        "UPDATE deliveries SET leased_until = now() + $4 * interval '1 millisecond' \
         WHERE webhook_id = $1 AND event_id = $2 AND status = 'PENDING' \
           AND leased_until = $3",
    )
    .bind::<SqlUuid, _>(webhook_id)
    .bind::<SqlUuid, _>(event_id)
    .bind::<Timestamptz, _>(seen)
    .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(n == 1)
}
