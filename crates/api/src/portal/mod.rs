//! The brand portal: server-rendered pages under `/portal/` where a brand manages its
//! webhooks, reads every delivery and its attempts, retries, recovers and sends test events.
//!
//! - `session.rs`: one-time sign-in links, the session cookie, CSRF.
//! - `pages.rs`: the handlers; they call the same `manage`, route and `store` functions as
//!   the API, with the brand of the session.
//! - `views.rs`: the askama templates (`crates/api/templates/portal/`) and their values.
//! - `error.rs`: failures as HTML pages.
//! - Static assets (`crates/api/static/`) are compiled into the binary.
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style, no
//! third-party origin, no framing), `Referrer-Policy: no-referrer` (a sign-in link never leaks
//! through a `Referer`), `Cache-Control: no-store` on pages and `Server-Timing: app;dur=<ms>`
//! (the server's time for the request, which `hookline-portal-bench` reads).

pub mod error;
pub mod pages;
pub mod session;
pub mod views;

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{
        header::{self, HeaderValue},
        Method,
    },
    middleware::Next,
    web, HttpResponse,
};

pub use session::{create_link, Link};

/// The Content-Security-Policy of every portal response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

const CSS: &str = include_str!("../../static/portal.css");
const JS: &str = include_str!("../../static/portal.js");
const ICON: &str = include_str!("../../static/favicon.svg");

/// Mounts the portal under `/portal` (when `portal.enabled`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    use pages as p;
    cfg.service(
        web::scope(session::BASE)
            .wrap(actix_web::middleware::from_fn(headers))
            .route("", web::get().to(p::index))
            .route("/", web::get().to(p::index))
            .route("/login", web::get().to(p::login))
            .route("/logout", web::post().to(p::logout))
            .route("/signed-out", web::get().to(p::signed_out))
            .route("/webhooks", web::get().to(p::list))
            .route("/webhooks", web::post().to(p::create))
            .route("/webhooks/{id}", web::get().to(p::webhook))
            .route("/webhooks/{id}/delete", web::get().to(p::delete_confirm))
            .route("/webhooks/{id}/delete", web::post().to(p::delete))
            .route("/webhooks/{id}/enabled", web::post().to(p::set_enabled))
            .route("/webhooks/{id}/rotate", web::post().to(p::rotate))
            .route("/webhooks/{id}/test", web::post().to(p::send_test))
            .route("/webhooks/{id}/events/{eventId}", web::get().to(p::event))
            .route(
                "/webhooks/{id}/events/{eventId}/retry",
                web::post().to(p::retry),
            )
            .route("/recover", web::get().to(p::recover))
            .route("/recover", web::post().to(p::recover_post))
            .route("/recoveries/{id}/cancel", web::post().to(p::cancel))
            .route("/static/portal.css", web::get().to(css))
            .route("/static/portal.js", web::get().to(js))
            .route("/static/favicon.svg", web::get().to(icon))
            .default_service(web::to(not_found)),
    );
}

async fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // Assets change only with the binary; a day is short enough for an upgrade.
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body)
}

async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS).await
}

async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS).await
}

async fn icon() -> HttpResponse {
    asset("image/svg+xml", ICON).await
}

async fn not_found() -> Result<HttpResponse, error::PortalError> {
    Err(error::PortalError::NotFound)
}

/// The security headers of every portal response, and its server time.
async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let is_asset = req.path().starts_with("/portal/static/");
    let is_head_or_get = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_asset || !is_head_or_get {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        h.insert(header::HeaderName::from_static("server-timing"), v);
    }
    Ok(res)
}
