//! Webhook rows. Every query is scoped by brand: a brand never reads or changes another's.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    models::{NewWebhook, Webhook},
    schema::webhooks::dsl as w,
    StoreError,
};

pub async fn create(
    conn: &mut AsyncPgConnection,
    new: &NewWebhook<'_>,
) -> Result<Webhook, StoreError> {
    Ok(diesel::insert_into(w::webhooks)
        .values(new)
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await?)
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

/// Sets `enabled`; returns what it was before and the row after, or `None` when the brand has
/// no such webhook. The row is locked for the read-compare-write, so two concurrent calls see
/// each other's result (FDX reports "already active" from `was`).
pub async fn set_enabled(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
    enabled: bool,
) -> Result<Option<(bool, Webhook)>, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let Some(was) = w::webhooks
            .filter(w::brand_id.eq(brand).and(w::id.eq(id)))
            .select(w::enabled)
            .for_update()
            .first::<bool>(conn)
            .await
            .optional()?
        else {
            return Ok(None);
        };
        let row = diesel::update(w::webhooks.filter(w::id.eq(id)))
            .set((w::enabled.eq(enabled), w::updated.eq(diesel::dsl::now)))
            .returning(Webhook::as_returning())
            .get_result(conn)
            .await?;
        Ok(Some((was, row)))
    })
    .await
}

/// Deletes the webhook (and, by cascade, its deliveries and attempts); false when absent.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
) -> Result<bool, StoreError> {
    let n = diesel::delete(w::webhooks.filter(w::brand_id.eq(brand).and(w::id.eq(id))))
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// Makes `new_secret` the signing secret; the current one keeps signing beside it until
/// `grace_until`.
pub async fn rotate_secret(
    conn: &mut AsyncPgConnection,
    brand: &str,
    id: Uuid,
    new_secret: &str,
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
