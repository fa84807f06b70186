//! `POST /v1/{brandId}/portal-links`: a one-time sign-in link to the brand portal, for a
//! platform that sends its users there from its own dashboard (`hookline-api portal-link`
//! makes the same link from the command line).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{absolute_url, json, views::timestamp};
use crate::{auth::Manager, error::ApiError, portal, state::AppState};

/// → 201 `{"url", "expires"}`; the optional body `{"ttl": "15m"}` sets the link's lifetime
/// (`portal.link_ttl` by default, at most `portal.max_link_ttl`).
#[tracing::instrument(skip_all, fields(brand = %manager.brand))]
pub async fn create(
    manager: Manager,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    if !state.settings.portal.enabled {
        return Err(ApiError::not_found(
            "The portal is turned off on this server (portal.enabled)",
        ));
    }
    let body = body.map_err(|e| json::payload_error(&e))?;
    let ttl = parse_ttl(&body)?;
    let link = portal::create_link(&state, &manager.brand, ttl).await?;
    Ok(HttpResponse::Created().json(json!({
        "url": absolute_url(&state, &req, &link.path),
        "expires": timestamp(link.expires),
    })))
}

/// The optional `ttl` of the body (an empty body means the default).
fn parse_ttl(body: &[u8]) -> Result<Option<std::time::Duration>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let invalid = |message: &str| {
        ApiError::validation(BTreeMap::from([("ttl".to_owned(), message.to_owned())]))
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            hookline_domain::ErrorCode::Cmr0001,
            format!("The request body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::validation(BTreeMap::from([(
            "body".to_owned(),
            "the body must be a JSON object".to_owned(),
        )])));
    };
    if let Some(key) = map.keys().find(|k| k.as_str() != "ttl") {
        return Err(ApiError::validation(BTreeMap::from([(
            key.clone(),
            "unknown field; a portal link takes ttl".to_owned(),
        )])));
    }
    match map.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => humantime::parse_duration(s)
            .map(Some)
            .map_err(|_| invalid("ttl must be a duration such as \"15m\" or \"2h\"")),
        Some(_) => Err(invalid("ttl must be a string such as \"15m\"")),
    }
}
