//! Sign-in links, sessions and CSRF.
//!
//! - A link carries a random 256-bit token; only its SHA-256 is stored, with the brand and an
//!   expiry, and opening the link marks it used in the same statement that opens the session
//!   (`hookline_store::portal`). A link works once.
//! - The session id is another random 256-bit value in the `hookline_portal` cookie (HttpOnly,
//!   SameSite=Strict, Path=/portal, Secure when the portal is reached over https); only its
//!   SHA-256 is stored. A session ends at `portal.session_ttl` after sign-in, after
//!   `portal.idle_timeout` unused, or at sign-out.
//! - Every state-changing form carries the session's synchroniser token (`csrf`), compared
//!   through digests so the comparison takes the same time wherever the values differ.

use std::{future::Future, pin::Pin, time::Duration};

use actix_web::{
    cookie::{time::Duration as CookieDuration, Cookie, SameSite},
    dev::Payload,
    web, FromRequest, HttpRequest,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use super::error::PortalError;
use crate::{error::ApiError, state::AppState};

/// The session cookie.
pub const COOKIE: &str = "hookline_portal";
/// Where the portal lives; the cookie is sent nowhere else.
pub const BASE: &str = "/portal";

/// 256 random bits, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(value: &str) -> Vec<u8> {
    Sha256::digest(value.as_bytes()).to_vec()
}

/// A sign-in link that was stored.
#[derive(Debug)]
pub struct Link {
    /// The path and query to open (`/portal/login?token=…`); prefix the public base URL.
    pub path: String,
    pub expires: DateTime<Utc>,
}

/// Stores a one-time sign-in link for `brand`, usable for `ttl` (`portal.link_ttl` when
/// `None`); a `ttl` over `portal.max_link_ttl` is refused (the message names the bound).
pub async fn create_link(
    state: &AppState,
    brand: &str,
    ttl: Option<Duration>,
) -> Result<Link, ApiError> {
    let mut conn = state.conn().await?;
    store_link(&mut conn, &state.settings.portal, brand, ttl).await
}

/// [`create_link`] on a connection (the `portal-link` command has no server state).
pub async fn store_link(
    conn: &mut hookline_store::PooledConn,
    portal: &hookline_config::PortalSettings,
    brand: &str,
    ttl: Option<Duration>,
) -> Result<Link, ApiError> {
    let ttl = ttl.unwrap_or(portal.link_ttl);
    if ttl.is_zero() || ttl > portal.max_link_ttl {
        return Err(ApiError::validation(std::collections::BTreeMap::from([(
            "ttl".to_owned(),
            format!(
                "ttl must be more than 0 and at most {} (portal.max_link_ttl)",
                humantime::format_duration(portal.max_link_ttl)
            ),
        )])));
    }
    hookline_domain::BrandId::parse(brand).map_err(|e| {
        ApiError::validation(std::collections::BTreeMap::from([(
            "brandId".to_owned(),
            e.to_string(),
        )]))
    })?;
    let token = random_token();
    let expires = Utc::now()
        + chrono::Duration::from_std(ttl).map_err(|_| ApiError::internal("ttl out of range"))?;
    hookline_store::portal::create_link(conn, &digest(&token), brand, expires).await?;
    tracing::info!(brand, %expires, "portal link created");
    Ok(Link {
        path: format!("{BASE}/login?token={token}"),
        expires,
    })
}

/// A new session, opened from a link: its cookie value and CSRF token.
#[derive(Debug)]
pub struct Opened {
    pub brand: String,
    pub cookie_value: String,
}

/// Redeems the link `token` and opens a session. `None` when the link is unknown, used or
/// expired.
pub async fn redeem(state: &AppState, token: &str) -> Result<Option<Opened>, ApiError> {
    let session_id = random_token();
    let csrf = random_token();
    let mut conn = state.conn().await?;
    let session = hookline_store::portal::redeem_link(
        &mut conn,
        &digest(token),
        &digest(&session_id),
        &csrf,
        state.settings.portal.session_ttl,
    )
    .await?;
    Ok(session.map(|s| Opened {
        brand: s.brand_id,
        cookie_value: session_id,
    }))
}

/// Whether the portal is reached over https: the request's scheme (with the proxy headers
/// actix reads) or `http.public_url`.
fn is_https(state: &AppState, req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
        || state.settings.http.public_url.starts_with("https://")
}

/// The session cookie for `value`.
pub fn session_cookie(state: &AppState, req: &HttpRequest, value: String) -> Cookie<'static> {
    let max_age = CookieDuration::seconds(
        i64::try_from(state.settings.portal.session_ttl.as_secs()).unwrap_or(i64::MAX),
    );
    Cookie::build(COOKIE, value)
        .path(BASE)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(state, req))
        .max_age(max_age)
        .finish()
}

/// The cookie that removes the session cookie.
pub fn removal_cookie(state: &AppState, req: &HttpRequest) -> Cookie<'static> {
    let mut cookie = session_cookie(state, req, String::new());
    cookie.make_removal();
    cookie
}

/// Ends the request's session, if it has one.
pub async fn end(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    if let Some(cookie) = req.cookie(COOKIE) {
        let mut conn = state.conn().await?;
        hookline_store::portal::end_session(&mut conn, &digest(cookie.value())).await?;
    }
    Ok(())
}

/// The signed-in brand of a portal request. Extracting it fails with the sign-in page when
/// the request has no live session.
#[derive(Debug, Clone)]
pub struct PortalSession {
    pub brand: String,
    csrf: String,
}

impl PortalSession {
    /// The token the session's forms carry.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Refuses a form whose `csrf` is not this session's.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), PortalError> {
        match given {
            Some(given) if digest(given) == digest(&self.csrf) => Ok(()),
            _ => Err(PortalError::Csrf),
        }
    }
}

impl FromRequest for PortalSession {
    type Error = PortalError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(cookie) = req.cookie(COOKIE) else {
                return Err(PortalError::SignIn);
            };
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| PortalError::from(ApiError::internal("no app state")))?;
            let mut conn = state.conn().await?;
            let session = hookline_store::portal::touch_session(
                &mut conn,
                &digest(cookie.value()),
                state.settings.portal.idle_timeout,
            )
            .await
            .map_err(ApiError::from)?;
            let Some(session) = session else {
                return Err(PortalError::SignIn);
            };
            // The brand's own rate limit covers what it does here as well as through the API.
            state.rate_limit(&session.brand_id)?;
            Ok(PortalSession {
                brand: session.brand_id,
                csrf: session.csrf,
            })
        })
    }
}
