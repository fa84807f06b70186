//! flexEngage webhook routes (flexEngage Webhooks API 0.0.1, as `openapi/hookline.yaml`
//! describes it: `/v1/{brandId}/webhooks`).

use std::collections::BTreeMap;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use hookline_domain::ErrorCode;
use hookline_store::webhooks;
use serde_json::{json, Value};

use super::{
    absolute_url, admit, json, parse_webhook_id,
    validated::{FromBody, Valid},
    views::{self, WebhookInput},
    webhook_not_found, webhook_of,
};
use crate::{
    auth::{Manager, Principal},
    error::ApiError,
    manage,
    state::AppState,
};

type Reply = Result<HttpResponse, ApiError>;

#[tracing::instrument(skip_all, fields(brand = %manager.brand))]
pub async fn create(
    manager: Manager,
    state: web::Data<AppState>,
    req: HttpRequest,
    input: Valid<WebhookInput>,
) -> Reply {
    let created = manage::create(&state, &manager.brand, input.into_inner()).await?;
    let mut view = views::WebhookView::from(&created.webhook);
    view.secret = Some(created.secret.expose().to_owned());
    let location = location(&state, &req, &created.webhook.id.to_string());
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(view))
}

/// `Location` of a created webhook: absolute, from `http.public_url` or the request's own
/// scheme and host (RFC 9110 §10.2.2 allows either; absolute is friendlier to clients).
/// The path is the request's own, still percent-encoded: a brand id with characters a header
/// cannot carry (found by the schemathesis fuzzer) stays encoded instead of failing with a 500.
fn location(state: &AppState, req: &HttpRequest, id: &str) -> String {
    let path = format!("{}/{id}", req.path().trim_end_matches('/'));
    absolute_url(state, req, &path)
}

#[tracing::instrument(skip_all, fields(brand = %path))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Reply {
    let brand = path.into_inner();
    admit(&state, &principal, &brand)?;
    let mut conn = state.conn().await?;
    let rows = webhooks::list(&mut conn, &brand).await?;
    let views: Vec<views::WebhookView> = rows.iter().map(views::WebhookView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

#[tracing::instrument(skip_all, fields(brand = %path.0, webhook_id = %path.1))]
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Reply {
    let (brand, raw_id) = path.into_inner();
    let w = webhook_of(&state, &principal, &brand, &raw_id).await?;
    let mut view = views::WebhookView::from(&w);
    view.health.parked_deliveries = Some(manage::parked_deliveries(&state, w.id).await?);
    Ok(HttpResponse::Ok().json(view))
}

/// The flexEngage PATCH body: `enabled`, and `replaySkipped` (only with `enabled: true`).
#[derive(Debug)]
pub struct EnabledPatch {
    pub enabled: bool,
    pub replay_skipped: bool,
}

impl FromBody for EnabledPatch {
    fn from_body(body: Value, _: &AppState) -> Result<Self, ApiError> {
        let (enabled, replay_skipped) = parse_patch(&body)?;
        Ok(EnabledPatch {
            enabled,
            replay_skipped,
        })
    }
}

fn parse_patch(body: &Value) -> Result<(bool, bool), ApiError> {
    let mut problems = BTreeMap::new();
    let enabled = match body.get("enabled") {
        Some(Value::Bool(b)) => Some(*b),
        other => {
            let message = if other.is_none_or(Value::is_null) {
                "enabled is required"
            } else {
                "enabled must be a boolean"
            };
            problems.insert("enabled".to_owned(), message.to_owned());
            None
        }
    };
    let replay_skipped = match body.get("replaySkipped") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.insert(
                "replaySkipped".to_owned(),
                "replaySkipped must be a boolean".to_owned(),
            );
            false
        }
    };
    if enabled == Some(false) && replay_skipped {
        problems.insert("replaySkipped".to_owned(), REPLAY_NEEDS_ENABLE.to_owned());
    }
    match enabled {
        Some(enabled) if problems.is_empty() => Ok((enabled, replay_skipped)),
        _ => Err(ApiError::validation(problems)),
    }
}

/// Why `replaySkipped` is refused with `enabled: false`: the replay would only be parked again
/// (and silently so), since a disabled webhook is sent nothing.
const REPLAY_NEEDS_ENABLE: &str = "replaySkipped is only allowed with enabled: true: \
     skipped deliveries are replayed when a webhook is enabled, and a disabled webhook is sent \
     nothing";

/// flexEngage `PATCH`: `{"enabled": bool, "replaySkipped"?: bool}` → 204, no body.
/// `replaySkipped` also re-queues the deliveries recorded as SKIPPED while the webhook was
/// disabled (at the same bounded rate as parked ones); it works on an already enabled webhook
/// too, for a brand that enabled it first and asks for what it missed afterwards.
#[tracing::instrument(skip_all, fields(brand = %manager.brand, webhook_id = %path.1))]
pub async fn patch(
    manager: Manager,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Valid<EnabledPatch>,
) -> Reply {
    let brand = manager.brand;
    let (_, raw_id) = path.into_inner();
    let id = parse_webhook_id(&brand, &raw_id)?;
    let EnabledPatch {
        enabled,
        replay_skipped,
    } = body.into_inner();
    let mut conn = state.conn().await?;
    match webhooks::set_enabled(&mut conn, &brand, id, enabled, replay_skipped).await? {
        Some(_) => {
            tracing::info!(enabled, replay_skipped, "webhook toggled");
            Ok(HttpResponse::NoContent().finish())
        }
        None => Err(webhook_not_found(&brand, &raw_id)),
    }
}

#[tracing::instrument(skip_all, fields(brand = %path.0, webhook_id = %path.1))]
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Reply {
    let (brand, raw_id) = path.into_inner();
    admit(&state, &principal, &brand)?;
    let id = parse_webhook_id(&brand, &raw_id)?;
    let mut conn = state.conn().await?;
    if webhooks::delete(&mut conn, &brand, id).await? {
        tracing::info!("webhook deleted");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(webhook_not_found(&brand, &raw_id))
    }
}

/// `GET …/{id}/secret`: the signing secret, for a brand that lost the creation response.
#[tracing::instrument(skip_all, fields(brand = %path.0, webhook_id = %path.1))]
pub async fn get_secret(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Reply {
    let (brand, raw_id) = path.into_inner();
    let w = webhook_of(&state, &principal, &brand, &raw_id).await?;
    // A secret that does not open (its key was removed from `secrets.keys` too early) is the
    // operator's to fix: a 500, logged with the reason, never a guess.
    let secret = w
        .secret
        .open(&state.keyring, w.id)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(json!({
        "secret": secret.expose(),
        "previousSecretExpires": w.previous_secret_expires_at.map(views::timestamp),
    })))
}

/// `POST …/{id}/secret/rotate` with an optional `{"secret": "…"}`: a new secret now, the old
/// one still signing beside it for `delivery.secret_rotation_grace`.
#[tracing::instrument(skip_all, fields(brand = %path.0, webhook_id = %path.1))]
pub async fn rotate_secret(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Reply {
    let (brand, raw_id) = path.into_inner();
    admit(&state, &principal, &brand)?;
    let id = parse_webhook_id(&brand, &raw_id)?;
    let body = body.map_err(|e| json::payload_error(&e))?;
    // The body is optional here, so it is read as bytes: an empty body means "generate one".
    let body: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                ErrorCode::Cmr0001,
                format!("The request body is not valid JSON: {e}"),
            )
        })?)
    };
    let mut problems = BTreeMap::new();
    let given = body
        .as_ref()
        .and_then(|b| views::parse_optional_secret(b.get("secret"), "secret", &mut problems));
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    match manage::rotate(&state, &brand, id, given).await? {
        Some((w, secret)) => Ok(HttpResponse::Ok().json(json!({
            "secret": secret.expose(),
            "previousSecretExpires": w.previous_secret_expires_at.map(views::timestamp),
        }))),
        None => Err(webhook_not_found(&brand, &raw_id)),
    }
}

/// `POST …/{id}/test` → 202 `{id, type, webhookId, status}`: a `WEBHOOK_EVENTS.PING` event
/// delivered to this webhook only, whatever it subscribes to, like any other event (its
/// attempts show in the webhook's event log). `status` is PENDING (on its way), PARKED
/// (the endpoint is degraded; it goes with the parked ones) or SKIPPED (disabled).
#[tracing::instrument(skip_all, fields(brand = %manager.brand, webhook_id = %path.1))]
pub async fn send_test(
    manager: Manager,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Reply {
    let brand = manager.brand;
    let (_, raw_id) = path.into_inner();
    let id = parse_webhook_id(&brand, &raw_id)?;
    let Some(sent) = manage::send_test(&state, &brand, id, "A test event from Hookline").await?
    else {
        return Err(webhook_not_found(&brand, &raw_id));
    };
    Ok(HttpResponse::Accepted().json(json!({
        "id": sent.event_id,
        "type": manage::PING,
        "webhookId": id,
        "status": sent.status.as_str(),
    })))
}
