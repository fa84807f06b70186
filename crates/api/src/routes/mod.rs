//! HTTP routes, one file per resource.
//!
//! - `health.rs`: `/healthz`, `/readyz` (no auth).
//! - `webhooks.rs`: the flexEngage webhook routes `/v1/{brandId}/webhooks…`.
//! - `fdx.rs`: the FDX routes `/v1/services/webhook…`.
//! - `json.rs`: body and query extraction errors in the API's error shapes.
//! - `views.rs`: response bodies shared by both surfaces.

pub mod events;
pub mod fdx;
pub mod health;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod views;
pub mod webhooks;

use actix_web::{web, HttpRequest, HttpResponse};
use uuid::Uuid;

use crate::error::{ApiError, Surface};

/// Every route the server has. `startup` mounts this; the OpenAPI contract test walks it.
/// `max_event_bytes` and `max_batch_bytes` bound ingest bodies (other JSON bodies use the
/// app-wide bound).
pub fn configure(cfg: &mut web::ServiceConfig, max_event_bytes: usize, max_batch_bytes: usize) {
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(health::healthz))
            .route(web::head().to(health::healthz))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(health::readyz))
            .route(web::head().to(health::readyz))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics::metrics))
            .route(web::head().to(metrics::metrics))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/openapi.yaml")
            .route(web::get().to(openapi::openapi))
            .route(web::head().to(openapi::openapi))
            .default_service(not_allowed("GET, HEAD")),
    )
    // FDX routes first: `/v1/services/…` would otherwise match `/v1/{brandId}/…`.
    .service(
        web::resource("/v1/services/webhook")
            .route(web::post().to(fdx::create))
            .route(web::get().to(fdx::list))
            .route(web::head().to(fdx::list))
            .default_service(not_allowed("POST, GET, HEAD")),
    )
    .service(
        web::resource("/v1/services/webhook/{webhookId}")
            .route(web::get().to(fdx::get))
            .route(web::head().to(fdx::get))
            .route(web::delete().to(fdx::delete))
            .default_service(not_allowed("GET, HEAD, DELETE")),
    )
    .service(
        web::resource("/v1/services/webhook/{webhookId}/status")
            .route(web::put().to(fdx::set_status))
            .default_service(not_allowed("PUT")),
    )
    .service(
        web::resource("/v1/{brandId}/webhooks")
            .route(web::post().to(webhooks::create))
            .route(web::get().to(webhooks::list))
            .route(web::head().to(webhooks::list))
            .default_service(not_allowed("POST, GET, HEAD")),
    )
    .service(
        web::resource("/v1/{brandId}/webhooks/{id}")
            .route(web::get().to(webhooks::get))
            .route(web::head().to(webhooks::get))
            .route(web::patch().to(webhooks::patch))
            .route(web::delete().to(webhooks::delete))
            .default_service(not_allowed("GET, HEAD, PATCH, DELETE")),
    )
    .service(
        web::resource("/v1/{brandId}/events")
            .app_data(json::json_config(max_event_bytes))
            .route(web::post().to(events::ingest))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/v1/{brandId}/events/batch")
            .app_data(json::json_config(max_batch_bytes))
            .route(web::post().to(events::ingest_batch))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/v1/{brandId}/webhooks/{id}/events")
            .route(web::get().to(events::list))
            .route(web::head().to(events::list))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/v1/{brandId}/webhooks/{id}/events/{eventId}")
            .route(web::get().to(events::get))
            .route(web::head().to(events::get))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/v1/{brandId}/webhooks/{id}/events/{eventId}/retry")
            .route(web::post().to(events::retry))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/v1/{brandId}/webhooks/{id}/secret")
            .route(web::get().to(webhooks::get_secret))
            .route(web::head().to(webhooks::get_secret))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/v1/{brandId}/webhooks/{id}/secret/rotate")
            .route(web::post().to(webhooks::rotate_secret))
            .default_service(not_allowed("POST")),
    );
}

/// Unknown paths answer in the API's error shape rather than actix's empty 404.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(
        ApiError::not_found(format!("No route for {} {}", req.method(), req.path()))
            .on(Surface::of(&req)),
    )
}

/// A resource's answer to a method it has no route for: 405 with `Allow` listing `allow`.
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move |req: HttpRequest| async move {
        Err::<HttpResponse, _>(
            ApiError::method_not_allowed(req.method().as_str(), req.path(), allow)
                .on(Surface::of(&req)),
        )
    })
}

/// A webhook id from a path. A malformed one cannot name an existing webhook, so it is the
/// same 404 as an unknown one (never a 500, never a 400 that confirms the route).
pub fn parse_webhook_id(brand: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| webhook_not_found(brand, raw))
}

/// flexEngage spec example: "A webhook with ID: 123 for brandId: ABC was not found".
pub fn webhook_not_found(brand: &str, id: &str) -> ApiError {
    ApiError::new(
        hookline_domain::ErrorCode::Whk0004,
        format!("A webhook with ID: {id} for brandId: {brand} was not found"),
    )
}

/// Resolves `{brandId}/webhooks/{id}` for a flexEngage route: the caller may manage the brand's
/// webhooks, is within its rate limit, and the webhook exists and belongs to the brand.
pub async fn webhook_of(
    state: &crate::state::AppState,
    principal: &crate::auth::Principal,
    brand: &str,
    raw_id: &str,
) -> Result<hookline_store::models::Webhook, ApiError> {
    principal.authorize(crate::auth::SCOPE_WEBHOOKS, brand)?;
    state.rate_limit(brand)?;
    let id = parse_webhook_id(brand, raw_id)?;
    crate::manage::get(state, brand, id)
        .await?
        .ok_or_else(|| webhook_not_found(brand, raw_id))
}
