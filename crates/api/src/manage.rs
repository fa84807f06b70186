//! Webhook management shared by the flexEngage and FDX surfaces: both write the same rows.

use chrono::Utc;
use hookline_domain::{ErrorCode, WebhookSecret};
use hookline_store::{
    models::{NewWebhook, StoredSecret, Webhook},
    webhooks, StoreError,
};
use uuid::Uuid;

use crate::{error::ApiError, routes::views::WebhookInput, state::AppState};

/// A created webhook and the secret it signs with (generated when the brand gave none).
#[derive(Debug)]
pub struct Created {
    pub webhook: Webhook,
    pub secret: WebhookSecret,
}

#[tracing::instrument(skip_all, fields(brand = brand))]
pub async fn create(
    state: &AppState,
    brand: &str,
    input: WebhookInput,
) -> Result<Created, ApiError> {
    let secret = input.secret.unwrap_or_else(WebhookSecret::generate);
    let event_types: Vec<String> = input
        .subscriptions
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    // UUIDv7: ids sort by creation time, like event ids.
    let id = Uuid::now_v7();
    let new = NewWebhook {
        id,
        brand_id: brand,
        endpoint: input.endpoint.as_str(),
        event_types: &event_types,
        enabled: input.enabled,
        secret: StoredSecret::seal(&state.keyring, id, &secret),
    };
    let max = state.settings.limits.max_webhooks_per_brand;
    let mut conn = state.conn().await?;
    match webhooks::create_capped(&mut conn, &new, max).await {
        Ok(Some(webhook)) => {
            tracing::info!(webhook_id = %webhook.id, "webhook created");
            Ok(Created { webhook, secret })
        }
        Ok(None) => {
            tracing::info!(max, "webhook refused: the brand is at its webhook limit");
            Err(at_webhook_limit(brand, max))
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::new(
            ErrorCode::Whk0009,
            format!(
                "A webhook for endpoint: {} and eventTypes: {} already exists",
                input.endpoint.as_str(),
                serde_json::to_string(&event_types).unwrap_or_default()
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The brand already has `max` webhooks. A request error (the brand can fix it by deleting one),
/// not a conflict with one webhook: `ERR-CMR-0001`, so 422 on flexEngage and 400 on FDX, with
/// `validations.webhooks` naming the limit. The limit exists to bound the fan-out of one event.
pub fn at_webhook_limit(brand: &str, max: usize) -> ApiError {
    let message = format!(
        "brand {brand} already has {max} webhooks, the most one brand may have \
         (limits.max_webhooks_per_brand); delete one before creating another"
    );
    ApiError::new(
        ErrorCode::Cmr0001,
        format!("Webhook limit reached: {message}"),
    )
    .with_validation("webhooks", message)
}

/// The webhook's parked deliveries (shown on a single webhook's GET, both surfaces).
pub async fn parked_deliveries(state: &AppState, id: Uuid) -> Result<i64, ApiError> {
    let mut conn = state.conn().await?;
    Ok(hookline_store::health::parked_count(&mut conn, id).await?)
}

pub async fn get(state: &AppState, brand: &str, id: Uuid) -> Result<Option<Webhook>, ApiError> {
    let mut conn = state.conn().await?;
    Ok(webhooks::get(&mut conn, brand, id).await?)
}

/// Rotates a webhook's secret: the old one keeps signing beside the new one for the configured
/// grace period, so receivers can switch without dropping deliveries.
pub async fn rotate(
    state: &AppState,
    brand: &str,
    id: Uuid,
    secret: Option<WebhookSecret>,
) -> Result<Option<(Webhook, WebhookSecret)>, ApiError> {
    let secret = secret.unwrap_or_else(WebhookSecret::generate);
    let grace = chrono::Duration::from_std(state.settings.delivery.secret_rotation_grace)
        .unwrap_or_else(|_| chrono::Duration::hours(24));
    let mut conn = state.conn().await?;
    let sealed = StoredSecret::seal(&state.keyring, id, &secret);
    let rotated =
        webhooks::rotate_secret(&mut conn, brand, id, &sealed, Utc::now() + grace).await?;
    Ok(rotated.map(|w| (w, secret)))
}

/// The type of test events (`WEBHOOK_EVENTS.PING`).
pub const PING: &str = "WEBHOOK_EVENTS.PING";

/// A test event that was sent.
#[derive(Debug)]
pub struct TestSent {
    pub event_id: Uuid,
    /// PENDING (on its way), PARKED (the endpoint is degraded) or SKIPPED (disabled).
    pub status: hookline_domain::DeliveryStatus,
}

/// Sends a test event (`WEBHOOK_EVENTS.PING`) to webhook `id` of `brand` only, whatever it
/// subscribes to: stored and delivered like any event (the API's `POST …/test` and the
/// portal). `None` when the brand has no such webhook.
pub async fn send_test(
    state: &AppState,
    brand: &str,
    id: Uuid,
    message: &str,
) -> Result<Option<TestSent>, ApiError> {
    let event_id = Uuid::now_v7();
    let payload = serde_json::json!({ "webhookId": id, "message": message });
    let lease = state.settings.worker.lease;
    let mut conn = state.conn().await?;
    let Some(status) =
        hookline_store::events::ping(&mut conn, brand, id, event_id, PING, &payload, lease).await?
    else {
        return Ok(None);
    };
    drop(conn);
    if status == hookline_domain::DeliveryStatus::Pending {
        state.dispatcher.send([hookline_domain::DeliveryMessage {
            webhook_id: id,
            event_id,
        }]);
    }
    tracing::info!(webhook_id = %id, %event_id, status = status.as_str(), "test event sent");
    Ok(Some(TestSent { event_id, status }))
}

/// Why one more attempt of a delivery could not be asked for.
#[derive(Debug)]
pub enum RetryRefused {
    /// The webhook is disabled: nothing is sent to it.
    Disabled,
    /// The event's payload was erased.
    Erased(chrono::DateTime<Utc>),
    NotFound,
    /// An attempt is being made right now.
    InFlight,
}

/// Asks for one more attempt of event `event_id` to `webhook` now, even after FAILURE (the
/// API's `POST …/retry` and the portal's "Retry").
pub async fn retry(
    state: &AppState,
    webhook: &Webhook,
    event_id: Uuid,
) -> Result<Result<(), RetryRefused>, ApiError> {
    use hookline_store::deliveries::{self, RetryRequested};
    if !webhook.enabled {
        return Ok(Err(RetryRefused::Disabled));
    }
    let lease = state.settings.worker.lease;
    let mut conn = state.conn().await?;
    if let Some(Some(erased)) =
        hookline_store::retention::erased_at(&mut conn, &webhook.brand_id, event_id).await?
    {
        return Ok(Err(RetryRefused::Erased(erased)));
    }
    match deliveries::request_retry(&mut conn, webhook.id, event_id, lease).await? {
        RetryRequested::Queued(_) => {}
        RetryRequested::NotFound => return Ok(Err(RetryRefused::NotFound)),
        RetryRequested::InFlight => return Ok(Err(RetryRefused::InFlight)),
    }
    drop(conn);
    state.dispatcher.send([hookline_domain::DeliveryMessage {
        webhook_id: webhook.id,
        event_id,
    }]);
    Ok(Ok(()))
}
