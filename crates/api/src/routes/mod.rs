//! HTTP routes, one file per resource.
//!
//! - `health.rs`: `/healthz`, `/readyz` (no auth).
//! - `metrics.rs`: `/metrics`, on the admin listener only, and the request counters.
//! - `webhooks.rs`: the flexEngage webhook routes `/v1/{brandId}/webhooks…`.
//! - `fdx.rs`: the FDX routes `/v1/services/webhook…`.
//! - `json.rs`: body and query extraction errors in the API's error shapes.
//! - `events.rs`: ingest, each webhook's event log, retry and erasure.
//! - `recoveries.rs`: bulk recovery jobs `/v1/{brandId}/…/recover`, `/v1/{brandId}/recoveries…`.
//! - `portal_links.rs`: sign-in links to the brand portal `/v1/{brandId}/portal-links`.
//! - `views.rs`: response bodies shared by both surfaces.

pub mod events;
pub mod fdx;
pub mod health;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod portal_links;
pub mod recoveries;
pub mod validated;
pub mod views;
pub mod webhooks;

use std::sync::Arc;

use actix_web::{
    http::Method, web, FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder,
};
use uuid::Uuid;

use crate::error::{ApiError, Surface};

/// The admin listener's routes (`admin.bind`): metrics and the probes, for operators only.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    use Method as M;
    cfg.service(resource("/metrics").on(M::GET, metrics::metrics).done())
        .service(resource("/healthz").on(M::GET, health::healthz).done())
        .service(resource("/readyz").on(M::GET, health::readyz).done());
}

/// Every route the public server has. `startup` mounts this; the OpenAPI contract test walks it.
/// `max_event_bytes` and `max_batch_bytes` bound ingest bodies (other JSON bodies use the
/// app-wide bound).
pub fn configure(cfg: &mut web::ServiceConfig, max_event_bytes: usize, max_batch_bytes: usize) {
    use Method as M;
    cfg.service(resource("/healthz").on(M::GET, health::healthz).done())
        .service(resource("/readyz").on(M::GET, health::readyz).done())
        .service(
            resource("/openapi.yaml")
                .on(M::GET, openapi::openapi)
                .done(),
        )
        // FDX routes first: `/v1/services/…` would otherwise match `/v1/{brandId}/…`.
        .service(
            resource("/v1/services/webhook")
                .on(M::POST, fdx::create)
                .on(M::GET, fdx::list)
                .done(),
        )
        .service(
            resource("/v1/services/webhook/{webhookId}")
                .on(M::GET, fdx::get)
                .on(M::DELETE, fdx::delete)
                .done(),
        )
        .service(
            resource("/v1/services/webhook/{webhookId}/status")
                .on(M::PUT, fdx::set_status)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/webhooks")
                .on(M::POST, webhooks::create)
                .on(M::GET, webhooks::list)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/webhooks/{id}")
                .on(M::GET, webhooks::get)
                .on(M::PATCH, webhooks::patch)
                .on(M::DELETE, webhooks::delete)
                .done(),
        )
        .service(
            Methods::of(
                web::resource("/v1/{brandId}/events").app_data(json::json_config(max_event_bytes)),
            )
            .on(M::POST, events::ingest)
            .done(),
        )
        .service(
            Methods::of(
                web::resource("/v1/{brandId}/events/batch")
                    .app_data(json::json_config(max_batch_bytes)),
            )
            .on(M::POST, events::ingest_batch)
            .done(),
        )
        .service(
            resource("/v1/{brandId}/webhooks/{id}/events")
                .on(M::GET, events::list)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/webhooks/{id}/events/{eventId}")
                .on(M::GET, events::get)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/webhooks/{id}/events/{eventId}/retry")
                .on(M::POST, events::retry)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/events/{eventId}/payload")
                .on(M::DELETE, events::erase)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/webhooks/{id}/recover")
                .on(M::POST, recoveries::recover_webhook)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/recover")
                .on(M::POST, recoveries::recover_brand)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/recoveries")
                .on(M::GET, recoveries::list)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/recoveries/{recoveryId}")
                .on(M::GET, recoveries::get)
                .on(M::DELETE, recoveries::cancel)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/webhooks/{id}/secret")
                .on(M::GET, webhooks::get_secret)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/webhooks/{id}/secret/rotate")
                .on(M::POST, webhooks::rotate_secret)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/webhooks/{id}/test")
                .on(M::POST, webhooks::send_test)
                .done(),
        )
        .service(
            resource("/v1/{brandId}/portal-links")
                .on(M::POST, portal_links::create)
                .done(),
        );
}

/// A resource and the methods it answers. Every `GET` also answers `HEAD` (RFC 9110 §9.3.2;
/// actix sends GET's status and headers without the body), and [`Methods::done`] answers any
/// other method with 405 and an `Allow` made from the routes given, so the two cannot disagree.
struct Methods {
    resource: Resource,
    allow: Vec<Method>,
}

fn resource(path: &str) -> Methods {
    Methods::of(web::resource(path))
}

impl Methods {
    fn of(resource: Resource) -> Methods {
        Methods {
            resource,
            allow: Vec::new(),
        }
    }

    fn on<F, Args>(mut self, method: Method, handler: F) -> Methods
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let head = (method == Method::GET).then(|| handler.clone());
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.allow.push(method);
        if let Some(handler) = head {
            self.resource = self.resource.route(web::head().to(handler));
            self.allow.push(Method::HEAD);
        }
        self
    }

    fn done(self) -> Resource {
        let allow: Arc<str> = self
            .allow
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
            .into();
        self.resource
            .default_service(web::to(move |req: HttpRequest| {
                let allow = allow.clone();
                async move {
                    Err::<HttpResponse, _>(
                        ApiError::method_not_allowed(req.method().as_str(), req.path(), &allow)
                            .on(Surface::of(&req)),
                    )
                }
            }))
    }
}

/// Unknown paths answer in the API's error shape rather than actix's empty 404.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(
        ApiError::not_found(format!("No route for {} {}", req.method(), req.path()))
            .on(Surface::of(&req)),
    )
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

/// Authenticated, authorised to manage the brand's webhooks and within its rate limit: the
/// common start of every management route.
pub(crate) fn admit(
    state: &crate::state::AppState,
    principal: &crate::auth::Principal,
    brand: &str,
) -> Result<(), ApiError> {
    let brand = principal.authorize(crate::auth::SCOPE_WEBHOOKS, brand)?;
    state.rate_limit(&brand)
}

/// An absolute URL for `path` (already percent-encoded), for a `Location` header: from
/// `http.public_url`, or the request's own scheme and host (RFC 9110 §10.2.2 allows either;
/// absolute is friendlier to clients).
pub(crate) fn absolute_url(
    state: &crate::state::AppState,
    req: &HttpRequest,
    path: &str,
) -> String {
    let base = state.settings.http.public_url.trim_end_matches('/');
    if base.is_empty() {
        let info = req.connection_info();
        format!("{}://{}{path}", info.scheme(), info.host())
    } else {
        format!("{base}{path}")
    }
}

/// Resolves `{brandId}/webhooks/{id}` for a flexEngage route: the caller may manage the brand's
/// webhooks, is within its rate limit, and the webhook exists and belongs to the brand.
pub async fn webhook_of(
    state: &crate::state::AppState,
    principal: &crate::auth::Principal,
    brand: &str,
    raw_id: &str,
) -> Result<hookline_store::models::Webhook, ApiError> {
    admit(state, principal, brand)?;
    find_webhook(state, brand, raw_id).await
}

/// The webhook `raw_id` of an admitted brand (see [`crate::auth::Manager`]), or its 404.
pub async fn find_webhook(
    state: &crate::state::AppState,
    brand: &str,
    raw_id: &str,
) -> Result<hookline_store::models::Webhook, ApiError> {
    let id = parse_webhook_id(brand, raw_id)?;
    crate::manage::get(state, brand, id)
        .await?
        .ok_or_else(|| webhook_not_found(brand, raw_id))
}
