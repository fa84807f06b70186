//! FDX routes (the FDX Create Webhook specification): `POST /v1/services/webhook` as the spec
//! describes it, and what a user of that API expects beside it — list, get, delete and
//! `PUT …/{webhookId}/status` — over the same store as the flexEngage routes.
//!
//! The brand is not in the path: it comes from the token
//! ([`crate::auth::Principal::fdx_brand`]).
//! `eventName` takes the FDX names (`Order_Shipped`, `Order_PartiallyShipped`) and, as an
//! extension, any event type or group of the flexEngage tree. Responses carry the spec's
//! `requestIdentifier / transactionDate / status / webhooks[]`; errors list every problem.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{SecondsFormat, Utc};
use hookline_domain::{EndpointUrl, ErrorCode, EventType, Subscription};
use hookline_store::{models::Webhook, webhooks};
use serde_json::{json, Value};
use uuid::Uuid;

use super::validated::{FromBody, Valid};
use crate::{
    auth::FdxManager,
    error::{ApiError, FdxError},
    manage,
    routes::views::{parse_optional_secret, HealthView, WebhookInput},
    state::AppState,
};

type Reply = Result<HttpResponse, FdxError>;

/// The FDX create body `{eventName, url, secret?}`, validated (see `parse_create`).
#[derive(Debug)]
pub struct FdxCreate(WebhookInput);

impl FromBody for FdxCreate {
    fn from_body(body: Value, state: &AppState) -> Result<Self, ApiError> {
        parse_create(&body, state).map(FdxCreate)
    }
}

/// The FDX status body `{"status": "ACTIVE"|"INACTIVE", "replaySkipped"?}`, validated.
#[derive(Debug)]
pub struct FdxStatus {
    enabled: bool,
    replay_skipped: bool,
}

impl FromBody for FdxStatus {
    fn from_body(body: Value, _: &AppState) -> Result<Self, ApiError> {
        let (enabled, replay_skipped) = parse_status(&body)?;
        Ok(FdxStatus {
            enabled,
            replay_skipped,
        })
    }
}

/// The FDX success envelope around `webhooks`.
fn success(webhooks: Vec<Value>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "requestIdentifier": Uuid::new_v4().simple().to_string(),
        // The spec's sample: "2018-09-20T15:12:54-05:00" — seconds and a numeric offset.
        "transactionDate": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, false),
        "status": "success",
        "webhooks": webhooks,
    }))
}

/// A webhook as FDX shows it. `status` stays the FDX spec's ACTIVE / INACTIVE (enabled or
/// not); `health` is the same object as on the flexEngage surface, which says why.
fn describe(w: &Webhook) -> Value {
    describe_with(w, HealthView::from(w))
}

fn describe_with(w: &Webhook, health: HealthView) -> Value {
    let event_name = match w.event_types.as_slice() {
        [only] => EventType::parse(only)
            .ok()
            .and_then(|t| t.fdx_name())
            .map_or_else(|| only.clone(), str::to_owned),
        _ => w.event_types.join(","),
    };
    json!({
        "webhookId": w.id,
        "eventName": event_name,
        "url": w.endpoint,
        "status": if w.enabled { "ACTIVE" } else { "INACTIVE" },
        "health": health,
    })
}

fn webhook_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::code(ErrorCode::Whk0004))
}

/// Every problem as one FDX error (the spec's `errors` list), the first one leading; an empty
/// list is the catalogue's generic "invalid request".
fn all_problems(problems: Vec<(ErrorCode, String)>) -> ApiError {
    let mut iter = problems.into_iter();
    let (code, description) = iter
        .next()
        .unwrap_or((ErrorCode::Cmr0003, ErrorCode::Cmr0003.description().into()));
    iter.fold(ApiError::new(code, description), |err, (c, d)| {
        err.and(c, d)
    })
}

fn input_failed(field: &str, reason: impl std::fmt::Display) -> String {
    format!("{} {field}: {reason}", ErrorCode::Cmr0001.description())
}

/// Validates `{eventName, url, secret?}`, naming every problem with its catalogue code.
fn parse_create(body: &Value, state: &AppState) -> Result<WebhookInput, ApiError> {
    let mut problems: Vec<(ErrorCode, String)> = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(ApiError::new(
            ErrorCode::Cmr0001,
            input_failed("body", "must be a JSON object"),
        ));
    };
    let subscription = match obj.get("eventName") {
        None | Some(Value::Null) => {
            problems.push((ErrorCode::Whk0001, ErrorCode::Whk0001.description().into()));
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            problems.push((ErrorCode::Whk0001, ErrorCode::Whk0001.description().into()));
            None
        }
        Some(Value::String(s)) => match Subscription::parse(s) {
            Ok(sub) => Some(sub),
            Err(_) => {
                problems.push((
                    ErrorCode::Whk0002,
                    format!("{}: {s}", ErrorCode::Whk0002.description()),
                ));
                None
            }
        },
        Some(_) => {
            problems.push((ErrorCode::Whk0002, ErrorCode::Whk0002.description().into()));
            None
        }
    };
    let endpoint = match obj.get("url") {
        None | Some(Value::Null) => {
            problems.push((ErrorCode::Whk0003, ErrorCode::Whk0003.description().into()));
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            problems.push((ErrorCode::Whk0003, ErrorCode::Whk0003.description().into()));
            None
        }
        Some(Value::String(s)) => match EndpointUrl::parse(s, &state.url_policy) {
            Ok(url) => Some(url),
            Err(e) => {
                problems.push((ErrorCode::Cmr0001, input_failed("url", e)));
                None
            }
        },
        Some(_) => {
            problems.push((ErrorCode::Cmr0001, input_failed("url", "must be a string")));
            None
        }
    };
    let mut secret_problems = BTreeMap::new();
    let secret = parse_optional_secret(obj.get("secret"), "secret", &mut secret_problems);
    for (field, reason) in secret_problems {
        problems.push((ErrorCode::Cmr0001, input_failed(&field, reason)));
    }
    match (subscription, endpoint) {
        (Some(sub), Some(endpoint)) if problems.is_empty() => Ok(WebhookInput {
            endpoint,
            subscriptions: vec![sub],
            enabled: true,
            secret,
        }),
        _ => Err(all_problems(problems)),
    }
}

#[tracing::instrument(skip_all, fields(brand = %manager.brand))]
pub async fn create(
    manager: FdxManager,
    state: web::Data<AppState>,
    body: Valid<FdxCreate>,
) -> Reply {
    let brand = manager.brand;
    let FdxCreate(input) = body.into_inner();
    let generated = input.secret.is_none();
    let created = manage::create(&state, &brand, input).await.map_err(|e| {
        if e.error_code() == ErrorCode::Whk0009 {
            ApiError::code(ErrorCode::Whk0009)
        } else {
            e
        }
    })?;
    let mut entry = json!({ "webhookId": created.webhook.id });
    if generated {
        // Hookline extension: a generated secret is shown once, here, so the brand can verify
        // `X-FDX-SC-Signature`.
        entry["secret"] = json!(created.secret.expose());
    }
    Ok(success(vec![entry]))
}

#[tracing::instrument(skip_all)]
pub async fn list(manager: FdxManager, state: web::Data<AppState>) -> Reply {
    let brand = manager.brand;
    let mut conn = state.conn().await?;
    let rows = webhooks::list(&mut conn, &brand).await?;
    Ok(success(rows.iter().map(describe).collect()))
}

async fn find(state: &AppState, brand: &str, raw_id: &str) -> Result<Webhook, ApiError> {
    let id = webhook_id(raw_id)?;
    manage::get(state, brand, id)
        .await?
        .ok_or_else(|| ApiError::code(ErrorCode::Whk0004))
}

#[tracing::instrument(skip_all, fields(webhook_id = %path))]
pub async fn get(
    manager: FdxManager,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Reply {
    let brand = manager.brand;
    let webhook = find(&state, &brand, &path).await?;
    let mut health = HealthView::from(&webhook);
    health.parked_deliveries = Some(manage::parked_deliveries(&state, webhook.id).await?);
    Ok(success(vec![describe_with(&webhook, health)]))
}

#[tracing::instrument(skip_all, fields(webhook_id = %path))]
pub async fn delete(
    manager: FdxManager,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Reply {
    let brand = manager.brand;
    let id = webhook_id(&path)?;
    let mut conn = state.conn().await?;
    if webhooks::delete(&mut conn, &brand, id).await? {
        Ok(success(vec![json!({ "webhookId": id })]))
    } else {
        Err(ApiError::code(ErrorCode::Whk0004).into())
    }
}

/// `{"status": "ACTIVE" | "INACTIVE", "replaySkipped"?: bool}`, every problem listed.
fn parse_status(body: &Value) -> Result<(bool, bool), ApiError> {
    let mut problems: Vec<(ErrorCode, String)> = Vec::new();
    let enabled = match body.get("status") {
        None | Some(Value::Null) => {
            problems.push((ErrorCode::Cmr0003, ErrorCode::Cmr0003.description().into()));
            None
        }
        Some(Value::String(s)) if s == "ACTIVE" => Some(true),
        Some(Value::String(s)) if s == "INACTIVE" => Some(false),
        Some(_) => {
            problems.push((ErrorCode::Whk0005, ErrorCode::Whk0005.description().into()));
            None
        }
    };
    let replay_skipped = match body.get("replaySkipped") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push((
                ErrorCode::Cmr0001,
                input_failed("replaySkipped", "must be a boolean"),
            ));
            false
        }
    };
    if enabled == Some(false) && replay_skipped {
        problems.push((
            ErrorCode::Cmr0001,
            input_failed(
                "replaySkipped",
                "only allowed with status ACTIVE: skipped deliveries are replayed when a \
                 webhook is activated, and an inactive webhook is sent nothing",
            ),
        ));
    }
    match enabled {
        Some(enabled) if problems.is_empty() => Ok((enabled, replay_skipped)),
        _ => Err(all_problems(problems)),
    }
}

/// `PUT /v1/services/webhook/{webhookId}/status` with `{"status": "ACTIVE" | "INACTIVE"}` and,
/// with ACTIVE, an optional `"replaySkipped": true` that also re-queues the deliveries recorded
/// as SKIPPED while the webhook was inactive. Setting the status the webhook already has is
/// `ERR-WHK-0006` / `ERR-WHK-0007`, except ACTIVE with `replaySkipped` on an active webhook:
/// that still replays what was skipped, so it is not a no-op and answers 200.
#[tracing::instrument(skip_all, fields(webhook_id = %path))]
pub async fn set_status(
    manager: FdxManager,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Valid<FdxStatus>,
) -> Reply {
    let brand = manager.brand;
    let id = webhook_id(&path)?;
    let FdxStatus {
        enabled,
        replay_skipped,
    } = body.into_inner();
    let mut conn = state.conn().await?;
    let Some((was, webhook)) =
        webhooks::set_enabled(&mut conn, &brand, id, enabled, replay_skipped).await?
    else {
        return Err(ApiError::code(ErrorCode::Whk0004).into());
    };
    if was == enabled && !replay_skipped {
        let code = if enabled {
            ErrorCode::Whk0006
        } else {
            ErrorCode::Whk0007
        };
        return Err(ApiError::new(code, code.describe(Some(&id.to_string()))).into());
    }
    Ok(success(vec![describe(&webhook)]))
}
