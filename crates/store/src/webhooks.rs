//! Webhook rows. Every query is scoped by brand: a brand never reads or changes another's.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Int4, Text},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use hookline_domain::{
    lifecycle::{transition, HealthInput, HealthPolicy},
    HealthReason, HealthState,
};

use crate::{
    health,
    models::{NewWebhook, StoredSecret, Webhook},
    schema::webhooks::dsl as w,
    StoreError,
};

/// Creates a webhook. One created disabled starts in the health machine's `disabled` state
/// with reason `manual`, exactly as if the brand had disabled it afterwards: ingest records its
/// matching events as SKIPPED, and enabling it later is a real transition (a row left `healthy`
/// with `enabled = false` could never be enabled, since enabling a healthy webhook changes
/// nothing).
pub async fn create(
    conn: &mut AsyncPgConnection,
    new: &NewWebhook<'_>,
) -> Result<Webhook, StoreError> {
    let (health, reason, changed) = if new.enabled {
        (HealthState::Healthy, None, None)
    } else {
        (
            HealthState::Disabled,
            Some(HealthReason::Manual.as_str()),
            Some(Utc::now()),
        )
    };
    Ok(diesel::insert_into(w::webhooks)
        .values((
            new,
            w::health.eq(health.as_str()),
            w::health_reason.eq(reason),
            w::health_changed.eq(changed),
        ))
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await?)
}

/// The first key of the two-key advisory lock that serialises creating webhooks per brand
/// ("hklc"); the second is the brand's `hashtext`. Two-key locks never collide with the
/// one-key lock of migrations.
const WEBHOOK_CAP_LOCK: i32 = 0x686b_6c63;

/// Creates the webhook unless the brand already has `max` webhooks
/// (`limits.max_webhooks_per_brand`), answering `None` at the cap. Counting and inserting happen
/// in one transaction under a per-brand advisory lock, so concurrent creates cannot both see
/// `max - 1` and both insert.
pub async fn create_capped(
    conn: &mut AsyncPgConnection,
    new: &NewWebhook<'_>,
    max: usize,
) -> Result<Option<Webhook>, StoreError> {
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    conn.transaction::<_, StoreError, _>(async |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind::<Int4, _>(WEBHOOK_CAP_LOCK)
            .bind::<Text, _>(new.brand_id)
            .execute(conn)
            .await?;
        if count(conn, new.brand_id).await? >= max {
            return Ok(None);
        }
        Ok(Some(create(conn, new).await?))
    })
    .await
}

/// The brand's webhooks, oldest first.
pub async fn list(conn: &mut AsyncPgConnection, brand: &str) -> Result<Vec<Webhook>, StoreError> {
    Ok(w::webhooks
        .filter(w::brand_id.eq(brand))
        .order((w::created.asc(), w::id.asc()))
        .select(Webhook::as_select())
        .load(conn)
        .await?)
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
) -> Result<Option<Webhook>, StoreError> {
    Ok(w::webhooks
        .filter(w::brand_id.eq(brand).and(w::id.eq(id)))
        .select(Webhook::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The brand enables or disables a webhook; returns whether it was enabled before and the
/// row after, or `None` when the brand has no such webhook. The row is locked for the
/// read-compare-write, so two concurrent calls see each other's result (FDX reports "already
/// active" from `was`).
///
/// Disabling is the health machine's `disabled` state with reason `manual`: owed deliveries are
/// parked, not failed, and events that match it from now on are recorded as SKIPPED. Enabling
/// makes it healthy and releases the parked deliveries at the scheduler's bounded rate; with
/// `replay_skipped`, the skipped ones too. Both publish an operational event.
pub async fn set_enabled(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
    enabled: bool,
    replay_skipped: bool,
) -> Result<Option<(bool, Webhook)>, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let Some(row) = w::webhooks
            .filter(w::brand_id.eq(brand).and(w::id.eq(id)))
            .select(Webhook::as_select())
            .for_update()
            .first::<Webhook>(conn)
            .await
            .optional()?
        else {
            return Ok(None);
        };
        let was = row.enabled;
        let input = if enabled {
            HealthInput::Enable
        } else {
            HealthInput::Disable
        };
        let before = row.health();
        let (after, transition) = transition(&before, input, &HealthPolicy::default(), Utc::now());
        let mut row = match transition {
            Some(_) => health::apply(conn, id, before.state, &after, transition)
                .await?
                .unwrap_or(row),
            None => row,
        };
        if enabled && replay_skipped && health::replay_skipped(conn, id).await? > 0 {
            // Released with the parked ones, at the same bounded rate.
            row = diesel::update(w::webhooks.filter(w::id.eq(id)))
                .set(w::release_at.eq(Some(Utc::now())))
                .returning(Webhook::as_returning())
                .get_result(conn)
                .await?;
        }
        Ok(Some((was, row)))
    })
    .await
}

/// How many webhooks the brand has (the per-brand cap).
pub async fn count(conn: &mut AsyncPgConnection, brand: &str) -> Result<i64, StoreError> {
    Ok(w::webhooks
        .filter(w::brand_id.eq(brand))
        .count()
        .get_result(conn)
        .await?)
}

/// Deletes the webhook (and, by cascade, its deliveries and attempts); false when absent.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
) -> Result<bool, StoreError> {
    // Its running recovery jobs cannot go on; they say why instead of vanishing.
    crate::recoveries::fail_for_webhook(conn, id).await?;
    let n = diesel::delete(w::webhooks.filter(w::brand_id.eq(brand).and(w::id.eq(id))))
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// The ids of every webhook of `brand`.
pub async fn ids_of_brand(
    conn: &mut AsyncPgConnection,
    brand: &str,
) -> Result<Vec<Uuid>, StoreError> {
    Ok(w::webhooks
        .filter(w::brand_id.eq(brand))
        .select(w::id)
        .load(conn)
        .await?)
}

/// Makes `new_secret` (sealed for this webhook) the signing secret; the current one keeps
/// signing beside it until `grace_until`.
pub async fn rotate_secret(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
    new_secret: &StoredSecret,
    grace_until: DateTime<Utc>,
) -> Result<Option<Webhook>, StoreError> {
    Ok(
        diesel::update(w::webhooks.filter(w::brand_id.eq(brand).and(w::id.eq(id))))
            .set((
                w::previous_secret.eq(w::secret.nullable()),
                w::previous_secret_expires_at.eq(Some(grace_until)),
                w::secret.eq(new_secret),
                w::updated.eq(diesel::dsl::now),
            ))
            .returning(Webhook::as_returning())
            .get_result(conn)
            .await
            .optional()?,
    )
}
