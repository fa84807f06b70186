//! Bulk recovery: `POST /v1/{brandId}/webhooks/{id}/recover` and `POST /v1/{brandId}/recover`
//! create a job that requeues the deliveries a filter matches (or, with `dryRun`, count them);
//! `GET /v1/{brandId}/recoveries[/{id}]` follow jobs and `DELETE …/{id}` cancels one.
//!
//! The job snapshots what it matches when it is created (`matched` is exact) and the workers
//! requeue it at `recovery.rate` per second through the normal flow: signature, attempts,
//! a restarted retry schedule, the per-brand and per-host caps, endpoint health.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use hookline_domain::{normalize, EventType, Subscription};
use hookline_store::{
    recoveries::{self, Cancelled, Filter, NewRecovery, Recovery, Refused},
    webhooks,
};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    absolute_url, admit, find_webhook,
    validated::{FromBody, Valid},
    views::timestamp,
};
use crate::{
    auth::{Manager, Principal},
    error::ApiError,
    state::AppState,
};

type Reply = Result<HttpResponse, ApiError>;

/// Delivery statuses a recovery may match: what ended without being delivered, and what was
/// delivered (a brand that lost what it received may ask for it again). PENDING and PARKED
/// deliveries are still owed and need no recovery.
const RECOVERABLE: [&str; 3] = ["FAILURE", "SKIPPED", "SUCCESS"];
const DEFAULT_STATUSES: [&str; 2] = ["FAILURE", "SKIPPED"];

/// Job list page sizes.
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

/// A recovery request, checked: every problem is reported at once.
#[derive(Debug)]
pub(crate) struct Request {
    filter: Filter,
    requested_types: Option<Vec<String>>,
    dry_run: bool,
    webhook_ids: Option<Vec<Uuid>>,
}

/// The body of `POST …/webhooks/{id}/recover`, validated.
#[derive(Debug)]
pub struct WebhookRecovery(Request);

impl FromBody for WebhookRecovery {
    fn from_body(body: Value, state: &AppState) -> Result<Self, ApiError> {
        parse_request(&body, false, state, Utc::now()).map(WebhookRecovery)
    }
}

/// The body of `POST /v1/{brandId}/recover` (which may name `webhookIds`), validated.
#[derive(Debug)]
pub struct BrandRecovery(Request);

impl FromBody for BrandRecovery {
    fn from_body(body: Value, state: &AppState) -> Result<Self, ApiError> {
        parse_request(&body, true, state, Utc::now()).map(BrandRecovery)
    }
}

/// Parses `{"since", "until"?, "statuses"?, "eventTypes"?, "dryRun"?}` (and `webhookIds` when
/// `brand_level`). Unknown fields are refused, so a misspelt filter never widens a recovery.
pub(crate) fn parse_request(
    body: &Value,
    brand_level: bool,
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<Request, ApiError> {
    let Value::Object(map) = body else {
        return Err(problem("body", "the body must be a JSON object"));
    };
    let mut problems = BTreeMap::new();
    let mut known = vec!["since", "until", "statuses", "eventTypes", "dryRun"];
    if brand_level {
        known.push("webhookIds");
    }
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            problems.insert(
                key.clone(),
                format!("unknown field; a recovery takes {}", known.join(", ")),
            );
        }
    }
    let mut time = |name: &str, required: bool| match map.get(name) {
        None | Some(Value::Null) if required => {
            problems.insert(
                name.to_owned(),
                format!("{name} is required (an RFC 3339 date-time)"),
            );
            None
        }
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                problems.insert(
                    name.to_owned(),
                    format!("{name} must be an RFC 3339 date-time"),
                );
                None
            }
        },
        Some(_) => {
            problems.insert(
                name.to_owned(),
                format!("{name} must be an RFC 3339 date-time string"),
            );
            None
        }
    };
    let since = time("since", true);
    let until = time("until", false).unwrap_or(now);
    let max_window = state.settings.recovery.window(&state.settings.retention);
    if let Some(since) = since {
        if since >= until {
            problems.insert("until".to_owned(), "until must be after since".to_owned());
        } else if (until - since).to_std().is_ok_and(|w| w > max_window) {
            problems.insert(
                "since".to_owned(),
                format!(
                    "the window from since to until may be at most {} (recovery.max_window)",
                    humantime::format_duration(max_window)
                ),
            );
        }
    }
    let statuses = match map.get("statuses") {
        None | Some(Value::Null) => DEFAULT_STATUSES.map(str::to_owned).to_vec(),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut statuses = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if RECOVERABLE.contains(&s) => {
                        statuses.insert(s.to_owned());
                    }
                    _ => {
                        problems.insert(
                            format!("statuses[{i}]"),
                            format!("must be one of {}", RECOVERABLE.join(", ")),
                        );
                    }
                }
            }
            statuses.into_iter().collect()
        }
        Some(_) => {
            problems.insert(
                "statuses".to_owned(),
                format!(
                    "statuses must be a non-empty array of {}",
                    RECOVERABLE.join(", ")
                ),
            );
            Vec::new()
        }
    };
    let (event_types, requested_types) = match map.get("eventTypes") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut subs = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(Subscription::parse) {
                    Some(Ok(s)) => subs.push(s),
                    Some(Err(e)) => {
                        problems.insert(format!("eventTypes[{i}]"), e.to_string());
                    }
                    None => {
                        problems.insert(
                            format!("eventTypes[{i}]"),
                            "must be an event type or group name".to_owned(),
                        );
                    }
                }
            }
            let subs = normalize(subs);
            let leaves: Vec<String> = EventType::all()
                .filter(|t| subs.iter().any(|s| s.matches(t)))
                .map(|t| t.as_str().to_owned())
                .collect();
            let requested = subs.iter().map(|s| s.as_str().to_owned()).collect();
            (Some(leaves), Some(requested))
        }
        Some(_) => {
            problems.insert(
                "eventTypes".to_owned(),
                "eventTypes must be a non-empty array of event types or groups".to_owned(),
            );
            (None, None)
        }
    };
    let dry_run = match map.get("dryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.insert("dryRun".to_owned(), "dryRun must be a boolean".to_owned());
            false
        }
    };
    let webhook_ids = match map.get("webhookIds") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut ids = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(Uuid::parse_str) {
                    Some(Ok(id)) => {
                        ids.insert(id);
                    }
                    _ => {
                        problems.insert(format!("webhookIds[{i}]"), "must be a UUID".to_owned());
                    }
                }
            }
            Some(ids.into_iter().collect())
        }
        Some(_) => {
            problems.insert(
                "webhookIds".to_owned(),
                "webhookIds must be a non-empty array of webhook ids".to_owned(),
            );
            None
        }
    };
    match since {
        Some(since) if problems.is_empty() => Ok(Request {
            filter: Filter {
                since,
                until,
                statuses,
                event_types,
            },
            requested_types,
            dry_run,
            webhook_ids,
        }),
        _ => Err(ApiError::validation(problems)),
    }
}

fn problem(field: &str, message: &str) -> ApiError {
    ApiError::validation(BTreeMap::from([(field.to_owned(), message.to_owned())]))
}

/// A job as the API shows it (`Recovery` in the OpenAPI document).
pub fn view(job: &Recovery) -> Value {
    json!({
        "id": job.id,
        "brandId": job.brand_id,
        "webhookId": job.webhook_id,
        "webhookIds": job.webhook_ids.iter().flatten().collect::<Vec<_>>(),
        "filter": {
            "since": timestamp(job.since),
            "until": timestamp(job.until),
            "statuses": job.statuses.iter().flatten().collect::<Vec<_>>(),
            "eventTypes": job.event_types.as_ref()
                .map(|t| t.iter().flatten().collect::<Vec<_>>()),
        },
        "state": job.state,
        "matched": job.matched,
        "requeued": job.requeued,
        "skipped": job.skipped,
        "error": job.error,
        "created": timestamp(job.created),
        "updated": timestamp(job.updated),
        "finished": job.finished.map(timestamp),
    })
}

/// `Location` of a new job: absolute, like a created webhook's, with the brand segment as the
/// request had it (still percent-encoded).
fn location(req: &HttpRequest, state: &AppState, id: Uuid) -> String {
    let brand = req.path().split('/').nth(2).unwrap_or_default();
    absolute_url(state, req, &format!("/v1/{brand}/recoveries/{id}"))
}

/// What a recovery request started: the dry run's count, or a new job.
#[derive(Debug)]
pub(crate) enum Begun {
    DryRun { matched: i64, max: u64 },
    Job(Box<Recovery>),
}

/// Runs a parsed request for `webhook_ids` (the API and the portal): the dry run's count, or
/// a new job.
pub(crate) async fn begin(
    state: &AppState,
    brand: &str,
    webhook_id: Option<Uuid>,
    webhook_ids: Vec<Uuid>,
    request: Request,
) -> Result<Begun, ApiError> {
    let mut conn = state.conn().await?;
    let max = state.settings.recovery.max_matched;
    if request.dry_run {
        let matched =
            recoveries::count_matching(&mut conn, brand, &webhook_ids, &request.filter).await?;
        return Ok(Begun::DryRun { matched, max });
    }
    let new = NewRecovery {
        id: Uuid::now_v7(),
        brand_id: brand.to_owned(),
        webhook_id,
        webhook_ids,
        filter: request.filter,
        requested_types: request.requested_types,
    };
    match recoveries::create(&mut conn, &new, max).await? {
        Ok(job) => Ok(Begun::Job(Box::new(job))),
        Err(Refused::Busy {
            running,
            webhook_id,
        }) => Err(problem(
            if new.webhook_id.is_some() {
                "webhookId"
            } else {
                "webhookIds"
            },
            &format!(
                "recovery {running} is still running for webhook {webhook_id}; one recovery \
                 runs per webhook at a time (wait for it, or cancel it with DELETE \
                 /v1/{brand}/recoveries/{running})"
            ),
        )),
        Err(Refused::TooMany { max }) => Err(problem(
            "since",
            &format!(
                "the filter matches more than {max} deliveries (recovery.max_matched); \
                 narrow the window, the statuses or the event types (a dryRun counts them)"
            ),
        )),
    }
}

/// Runs a parsed request for `webhook_ids`: the dry run's count, or a new job.
async fn start(
    state: &AppState,
    req: &HttpRequest,
    brand: &str,
    webhook_id: Option<Uuid>,
    webhook_ids: Vec<Uuid>,
    request: Request,
) -> Reply {
    match begin(state, brand, webhook_id, webhook_ids, request).await? {
        Begun::DryRun { matched, max } => Ok(HttpResponse::Ok().json(json!({
            "matched": matched,
            "maxMatched": max,
            "dryRun": true,
        }))),
        Begun::Job(job) => Ok(HttpResponse::Accepted()
            .insert_header(("Location", location(req, state, job.id)))
            .json(view(&job))),
    }
}

/// `POST /v1/{brandId}/webhooks/{id}/recover` → 202 with the job and its `Location`, or 200
/// `{"matched"}` for a dry run.
#[tracing::instrument(skip_all, fields(brand = %manager.brand, webhook_id = %path.1))]
pub async fn recover_webhook(
    manager: Manager,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: Valid<WebhookRecovery>,
) -> Reply {
    let brand = manager.brand;
    let (_, raw_id) = path.into_inner();
    let webhook = find_webhook(&state, &brand, &raw_id).await?;
    let WebhookRecovery(request) = body.into_inner();
    start(
        &state,
        &req,
        &brand,
        Some(webhook.id),
        vec![webhook.id],
        request,
    )
    .await
}

/// `POST /v1/{brandId}/recover`: the same over every webhook of the brand, or `webhookIds`.
#[tracing::instrument(skip_all, fields(brand = %manager.brand))]
pub async fn recover_brand(
    manager: Manager,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Valid<BrandRecovery>,
) -> Reply {
    let brand = manager.brand;
    let BrandRecovery(request) = body.into_inner();
    let mut conn = state.conn().await?;
    let owned: Vec<Uuid> = webhooks::ids_of_brand(&mut conn, &brand).await?;
    drop(conn);
    let webhook_ids = match &request.webhook_ids {
        None => owned,
        Some(asked) => {
            let problems: BTreeMap<String, String> = asked
                .iter()
                .enumerate()
                .filter(|(_, id)| !owned.contains(id))
                .map(|(i, id)| {
                    (
                        format!("webhookIds[{i}]"),
                        format!("no webhook of brand {brand} has the id {id}"),
                    )
                })
                .collect();
            if !problems.is_empty() {
                return Err(ApiError::validation(problems));
            }
            asked.clone()
        }
    };
    start(&state, &req, &brand, None, webhook_ids, request).await
}

fn recovery_not_found(brand: &str, raw: &str) -> ApiError {
    ApiError::not_found(format!(
        "No recovery with ID: {raw} was found for brandId: {brand}"
    ))
}

/// The job `raw_id` of `brand`, after the scope, brand and rate checks.
async fn job_of(
    state: &AppState,
    principal: &Principal,
    brand: &str,
    raw_id: &str,
) -> Result<(Uuid, hookline_store::PooledConn), ApiError> {
    admit(state, principal, brand)?;
    let id = Uuid::parse_str(raw_id).map_err(|_| recovery_not_found(brand, raw_id))?;
    Ok((id, state.conn().await?))
}

/// `GET /v1/{brandId}/recoveries/{id}` → the job with its progress.
#[tracing::instrument(skip_all, fields(brand = %path.0, recovery_id = %path.1))]
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Reply {
    let (brand, raw_id) = path.into_inner();
    let (id, mut conn) = job_of(&state, &principal, &brand, &raw_id).await?;
    match recoveries::get(&mut conn, &brand, id).await? {
        Some(job) => Ok(HttpResponse::Ok().json(view(&job))),
        None => Err(recovery_not_found(&brand, &raw_id)),
    }
}

/// `DELETE /v1/{brandId}/recoveries/{id}` → 200 with the job, now CANCELLED; 409 when it had
/// already ended. What it requeued stays requeued.
#[tracing::instrument(skip_all, fields(brand = %path.0, recovery_id = %path.1))]
pub async fn cancel(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Reply {
    let (brand, raw_id) = path.into_inner();
    let (id, mut conn) = job_of(&state, &principal, &brand, &raw_id).await?;
    match recoveries::cancel(&mut conn, &brand, id).await? {
        Cancelled::Cancelled(job) => Ok(HttpResponse::Ok().json(view(&job))),
        Cancelled::NotRunning(job) => Err(ApiError::new(
            hookline_domain::ErrorCode::Conflict,
            format!(
                "Recovery {id} is {}: only a RUNNING recovery can be cancelled",
                job.state
            ),
        )),
        Cancelled::NotFound => Err(recovery_not_found(&brand, &raw_id)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    size: Option<String>,
    start_id: Option<String>,
}

/// `GET /v1/{brandId}/recoveries` → `{"recoveries": [...], "page": {size, startId, lastId}}`,
/// newest first; `lastId` is the next page's `startId`.
#[tracing::instrument(skip_all, fields(brand = %path))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Reply {
    let brand = path.into_inner();
    admit(&state, &principal, &brand)?;
    let mut problems = BTreeMap::new();
    let size = match query.size.as_deref().map(str::parse::<i64>) {
        None => DEFAULT_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            problems.insert(
                "size".to_owned(),
                format!("size must be an integer from 1 to {MAX_PAGE}"),
            );
            DEFAULT_PAGE
        }
    };
    let start_id = match query.start_id.as_deref().map(Uuid::parse_str) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            problems.insert("startId".to_owned(), "startId must be a UUID".to_owned());
            None
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let mut conn = state.conn().await?;
    let mut jobs = recoveries::list(&mut conn, &brand, size + 1, start_id).await?;
    let more = jobs.len() as i64 > size;
    jobs.truncate(usize::try_from(size).unwrap_or(0));
    let last_id = if more {
        jobs.last().map(|j| j.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(json!({
        "recoveries": jobs.iter().map(view).collect::<Vec<_>>(),
        "page": { "size": size, "startId": start_id, "lastId": last_id },
    })))
}
