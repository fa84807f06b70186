//! Events: ingest (`POST /v1/{brandId}/events`) and each webhook's event log
//! (`GET …/webhooks/{id}/events`, `GET …/events/{eventId}`, `POST …/events/{eventId}/retry`),
//! and erasure (`DELETE /v1/{brandId}/events/{eventId}/payload`).
//!
//! Ingest writes the event and its deliveries in one transaction, then publishes one message
//! per delivery. A publish that fails (broker down) does not fail the request: the deliveries
//! are released to the worker's scheduler, which publishes them when the broker returns.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use hookline_domain::{
    DeliveryMessage, DeliveryStatus, ErrorCode, EventType, Subscription, OPERATIONAL_GROUP,
};
use hookline_store::{
    deliveries,
    events::{self, Ingested},
    models::{Attempt, Delivery, Event, NewEvent},
    retention,
};
use hookline_telemetry::trace::{continue_trace, TraceContext};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument as _;
use uuid::Uuid;

use super::{
    validated::{FromBody, Valid},
    views::timestamp,
    webhook_of,
};
use crate::{
    auth::{Principal, Publisher, SCOPE_PUBLISH, SCOPE_WEBHOOKS},
    error::ApiError,
    ingest::PendingEvent,
    manage::RetryRefused,
    state::AppState,
};

type Reply = Result<HttpResponse, ApiError>;

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Event log page sizes.
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY => Ok(Some(key.to_owned())),
        _ => Err(ApiError::validation(BTreeMap::from([(
            "Idempotency-Key".to_owned(),
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )]))),
    }
}

/// Whether a stored event is the one a request with the same idempotency key describes: the
/// same type and data (after erasure only the type is left to compare).
fn same_event(stored: &Event, event_type: &str, data: &Value) -> bool {
    stored.event_type == event_type && (stored.erased.is_some() || stored.payload == *data)
}

/// The 422 for an idempotency key reused with a different body; `field` names where the key
/// was given.
fn key_reused(field: &str, stored: &Event) -> ApiError {
    ApiError::validation(BTreeMap::from([(
        field.to_owned(),
        format!(
            "this idempotency key was already used for another event ({} {} at {}) with a \
             different type or data; a retry must send the same body, and a new event needs \
             a new key",
            stored.event_type,
            stored.id,
            timestamp(stored.created)
        ),
    )]))
}

/// `{"type": "<leaf event type>", "data": {…}}`, every problem reported at once.
/// A published event's body `{type, data}`, validated (see `parse_event`).
#[derive(Debug)]
pub struct PublishedEvent {
    pub event_type: EventType,
    pub data: Value,
}

impl FromBody for PublishedEvent {
    fn from_body(mut body: Value, _: &AppState) -> Result<Self, ApiError> {
        let (event_type, _) = parse_event(&body)?;
        // Checked above: moved out of the body, not copied (the hot path of single ingest).
        let data = body.get_mut("data").map(Value::take).unwrap_or_default();
        Ok(PublishedEvent { event_type, data })
    }
}

fn parse_event(body: &Value) -> Result<(EventType, &Value), ApiError> {
    let mut problems = BTreeMap::new();
    let event_type = match body.get("type") {
        None | Some(Value::Null) => {
            problems.insert("type".to_owned(), "type is required".to_owned());
            None
        }
        Some(Value::String(s)) => match EventType::parse(s) {
            Ok(t) if t.is_operational() => {
                // Only Hookline publishes these: a producer's DISABLED or RECOVERED would be
                // indistinguishable from the real ones a brand's automation acts on.
                let message = format!(
                    "{s} is one of Hookline's own operational events ({OPERATIONAL_GROUP}.*), \
                     which only Hookline publishes; webhooks may subscribe to them, but they \
                     cannot be published"
                );
                let err = ApiError::new(ErrorCode::Whk0002, message.clone());
                return Err(err.with_validation("type", message));
            }
            Ok(t) => Some(t),
            Err(e) => {
                // An unknown type or a group is the catalogue's "invalid event name".
                let mut err = ApiError::new(ErrorCode::Whk0002, format!("{e}"));
                err = err.with_validation("type", e.to_string());
                return Err(err);
            }
        },
        Some(_) => {
            problems.insert("type".to_owned(), "type must be a string".to_owned());
            None
        }
    };
    let data = match body.get("data") {
        Some(v @ Value::Object(_)) if has_nul(v) => {
            problems.insert(
                "data".to_owned(),
                "data must not contain the NUL character (\\u0000)".to_owned(),
            );
            None
        }
        Some(v @ Value::Object(_)) => Some(v),
        None | Some(Value::Null) => {
            problems.insert("data".to_owned(), "data is required".to_owned());
            None
        }
        Some(_) => {
            problems.insert("data".to_owned(), "data must be a JSON object".to_owned());
            None
        }
    };
    match (event_type, data) {
        (Some(t), Some(d)) if problems.is_empty() => Ok((t, d)),
        _ => Err(ApiError::validation(problems)),
    }
}

/// Whether any key or string in `v` holds U+0000, which Postgres `jsonb` cannot store (found by
/// the schemathesis fuzzer: it was a 500 from the insert instead of a 422 here).
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The request's span continues the publisher's trace (`traceparent`, `tracestate`; a missing
/// or invalid one starts a new trace, never a refusal): its context, returned, is stored with
/// the events so every attempt continues it (`crates/telemetry/src/trace.rs`).
fn request_trace(span: &tracing::Span, req: &HttpRequest) -> TraceContext {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    continue_trace(span, header("traceparent"), header("tracestate"))
}

/// `POST /v1/{brandId}/events` → 202 `{id, type, deliveries}`. The same `Idempotency-Key` again
/// answers with the first event (and `Idempotent-Replayed: true`) and creates nothing.
pub async fn ingest(
    // Before the body: authentication, authorisation and the rate limit refuse a request
    // without reading it.
    publisher: Publisher,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Valid<PublishedEvent>,
) -> Reply {
    // The span gets its parent before it is first entered, hence not `#[instrument]`.
    let span = tracing::info_span!(
        "ingest",
        brand = %publisher.brand,
        event_id = tracing::field::Empty
    );
    let trace = request_trace(&span, &req);
    ingest_one(publisher, state, req, body, trace)
        .instrument(span)
        .await
}

async fn ingest_one(
    publisher: Publisher,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Valid<PublishedEvent>,
    trace: TraceContext,
) -> Reply {
    let brand = publisher.brand.into_inner();
    let key = idempotency_key(&req)?;
    let PublishedEvent { event_type, data } = body.into_inner();
    let data = &data;
    // Stored in a group commit with concurrent requests; answered after that commit.
    let ingested = state
        .ingest
        .ingest(PendingEvent {
            id: Uuid::now_v7(),
            brand_id: brand.clone(),
            event_type: event_type.as_str().to_owned(),
            payload: data.clone(),
            idempotency_key: key,
            match_types: event_type.ancestors_and_self(),
            trace: Some(trace),
        })
        .await?;
    tracing::Span::current().record("event_id", tracing::field::display(ingested.event.id));
    // A replay that is not the same event: the key was reused for something else. Nothing was
    // created, so the refusal loses nothing.
    if !ingested.created && !same_event(&ingested.event, event_type.as_str(), data) {
        return Err(key_reused("Idempotency-Key", &ingested.event));
    }
    if ingested.created {
        metrics::counter!(hookline_telemetry::names::EVENTS_INGESTED).increment(1);
        metrics::counter!(hookline_telemetry::names::DELIVERIES_CREATED)
            .increment(ingested.webhook_ids.len() as u64);
        state.dispatcher.send(messages_of(&ingested));
    }
    let mut res = HttpResponse::Accepted();
    if !ingested.created {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(res.json(json!({
        "id": ingested.event.id,
        "type": ingested.event.event_type,
        "created": timestamp(ingested.event.created),
        "deliveries": ingested.webhook_ids.len(),
    })))
}

/// Most events in one batch request.
pub const MAX_BATCH: usize = 500;

/// `POST /v1/{brandId}/events/batch` with `{"events": [{"type", "data", "idempotencyKey"?}…]}`
/// (1 to 500) → 202 `{"events": [{id, type, created, deliveries, replayed}…]}` in request order.
/// The same guarantees per event as single ingest, in one transaction for the whole batch: all
/// are accepted or, if any is invalid, none (422 naming `events[i].field`, or 413 naming
/// `events[i]` for an event larger than a single one may be).
///
/// One trace context for the request: every event of the batch is stored with it.
pub async fn ingest_batch(
    // Before the body, as for single events; the request paid for one event there.
    publisher: Publisher,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Reply {
    let span = tracing::info_span!(
        "ingest_batch",
        brand = %publisher.brand,
        events = tracing::field::Empty
    );
    let trace = request_trace(&span, &req);
    ingest_many(publisher, state, body, trace)
        .instrument(span)
        .await
}

async fn ingest_many(
    publisher: Publisher,
    state: web::Data<AppState>,
    body: web::Json<Value>,
    trace: TraceContext,
) -> Reply {
    let brand = publisher.brand.into_inner();
    let items = match body.get("events") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_BATCH => items,
        _ => {
            return Err(ApiError::validation(BTreeMap::from([(
                "events".to_owned(),
                format!("events must be an array of 1 to {MAX_BATCH} events"),
            )])))
        }
    };
    tracing::Span::current().record("events", items.len());
    // The rate limit counts events: the rest of the batch is paid for before anything is
    // parsed further or stored.
    state.rate_limit_batch(&brand, items.len())?;
    oversized_items(items, state.settings.http.max_event_bytes)?;
    let mut parsed = Vec::with_capacity(items.len());
    let mut first_error: Option<ApiError> = None;
    let mut problems = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let key = match item.get("idempotencyKey") {
            None | Some(Value::Null) => None,
            // The same alphabet as the `Idempotency-Key` header (visible ASCII and space), which
            // also keeps out U+0000, which Postgres text cannot store (found by schemathesis).
            Some(Value::String(k))
                if !k.is_empty()
                    && k.len() <= MAX_IDEMPOTENCY_KEY
                    && k.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
            {
                Some(k.as_str())
            }
            Some(_) => {
                problems.insert(
                    format!("events[{i}].idempotencyKey"),
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
                );
                None
            }
        };
        match parse_event(item) {
            Ok((event_type, data)) => parsed.push((event_type, data, key)),
            Err(e) => {
                for (field, message) in e.validations() {
                    problems.insert(format!("events[{i}].{field}"), message.clone());
                }
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(err) = first_error
        .or_else(|| (!problems.is_empty()).then(|| ApiError::validation(BTreeMap::new())))
    {
        let code = err.error_code();
        let mut out = ApiError::new(code, "There are errors in the request");
        for (field, message) in problems {
            out = out.with_validation(&field, message);
        }
        return Err(out);
    }
    // Keys reused with another body, within the batch or against stored events, are refused
    // before anything is stored: the whole batch or nothing.
    let mut conn = state.conn().await?;
    let keys: Vec<&str> = parsed.iter().filter_map(|(_, _, k)| *k).collect();
    let stored = events::by_idempotency_keys(&mut conn, &brand, &keys).await?;
    let mut problems = BTreeMap::new();
    let mut first_of_key: std::collections::HashMap<&str, usize> = Default::default();
    for (i, (event_type, data, key)) in parsed.iter().enumerate() {
        let Some(key) = key else { continue };
        let field = format!("events[{i}].idempotencyKey");
        if let Some(e) = stored
            .iter()
            .find(|e| e.idempotency_key.as_deref() == Some(*key))
        {
            if !same_event(e, event_type.as_str(), data) {
                problems.extend(key_reused(&field, e).validations().clone());
            }
        } else if let Some(&j) = first_of_key.get(key) {
            let (first_type, first_data, _) = &parsed[j];
            if first_type != event_type || *first_data != *data {
                problems.insert(
                    field,
                    format!(
                        "events[{j}] uses the same idempotency key with a different type or \
                         data; a new event needs a new key"
                    ),
                );
            }
        } else {
            first_of_key.insert(key, i);
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let news: Vec<NewEvent> = parsed
        .iter()
        .map(|(event_type, data, key)| NewEvent {
            id: Uuid::now_v7(),
            brand_id: &brand,
            event_type: event_type.as_str(),
            payload: data,
            idempotency_key: *key,
        })
        .collect();
    let match_types: Vec<Vec<String>> = parsed
        .iter()
        .map(|(t, _, _)| t.ancestors_and_self())
        .collect();
    let lease = state.settings.worker.lease;
    let traces = vec![
        events::TraceContext {
            traceparent: Some(&trace.traceparent),
            tracestate: trace.tracestate.as_deref(),
        };
        news.len()
    ];
    let ingested = events::ingest_traced(&mut conn, &news, &match_types, &traces, lease).await?;
    let messages: Vec<DeliveryMessage> = ingested
        .iter()
        .filter(|i| i.created)
        .flat_map(messages_of)
        .collect();
    let created = ingested.iter().filter(|i| i.created).count();
    metrics::counter!(hookline_telemetry::names::EVENTS_INGESTED).increment(created as u64);
    metrics::counter!(hookline_telemetry::names::DELIVERIES_CREATED)
        .increment(messages.len() as u64);
    state.dispatcher.send(messages);
    let answers: Vec<Value> = ingested
        .iter()
        .map(|i| {
            json!({
                "id": i.event.id,
                "type": i.event.event_type,
                "created": timestamp(i.event.created),
                "deliveries": i.webhook_ids.len(),
                "replayed": !i.created,
            })
        })
        .collect();
    Ok(HttpResponse::Accepted().json(json!({ "events": answers })))
}

/// Refuses a batch with an item larger than one event may be (`http.max_event_bytes`), so a
/// batch cannot carry events that `POST …/events` would refuse: the same 413 and
/// `ERR-HKL-0005`, with `validations` naming each `events[i]` over the bound. An item is
/// measured as its compact JSON, which is what a single event's body is at its smallest, so
/// an event accepted alone is accepted in a batch and the other way round. Checked before
/// anything else about the items, as a single event's size is checked before its fields.
fn oversized_items(items: &[Value], limit: usize) -> Result<(), ApiError> {
    let mut err: Option<ApiError> = None;
    for (i, item) in items.iter().enumerate() {
        let size = json_size(item);
        if size > limit {
            let message = format!(
                "the event is {size} bytes, larger than the {limit} bytes one event may have"
            );
            let e = err.take().unwrap_or_else(|| {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("An event of the batch is larger than {limit} bytes"),
                )
            });
            err = Some(e.with_validation(&format!("events[{i}]"), message));
        }
    }
    err.map_or(Ok(()), Err)
}

/// The length of `v` serialised as compact JSON, counted without building the bytes.
fn json_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

fn messages_of(ingested: &Ingested) -> Vec<DeliveryMessage> {
    let event_id = ingested.event.id;
    ingested
        .due_webhook_ids
        .iter()
        .map(|&webhook_id| DeliveryMessage {
            webhook_id,
            event_id,
        })
        .collect()
}

fn page_entry(d: &Delivery, e: &Event) -> Value {
    json!({
        "id": e.id,
        "type": e.event_type,
        "created": timestamp(e.created),
        "updated": timestamp(d.updated),
        // The spec's SUCCESS / FAILURE, plus PENDING while attempts remain, PARKED while the
        // endpoint cannot take it, SKIPPED when it matched a disabled webhook.
        "status": d.status,
        // Why it is PARKED or SKIPPED, so the log explains itself without a detail request.
        "statusReason": d.status_reason,
        "attempts": d.attempt_count,
        "nextAttempt": d.next_attempt_at.map(timestamp),
        // When the payload was erased (a data-protection request), else null.
        "erased": e.erased.map(timestamp),
    })
}

/// The 409 for retrying or recovering an event whose payload was erased.
fn erased_conflict(id: Uuid, erased: DateTime<Utc>) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!(
            "The payload of event {id} was erased at {}; its deliveries can no longer be \
             retried or recovered",
            timestamp(erased)
        ),
    )
}

/// `DELETE /v1/{brandId}/events/{eventId}/payload` → 200 `{id, type, created, erased}`: the
/// stored payload is replaced by `{}` and the event stays in every webhook's log, marked
/// erased; deliveries still owed end as FAILURE (`payload_erased`), and none can be retried
/// or recovered. Erasing again answers the same (the first erasure's time). Either scope may
/// erase: the producer that published the event, or the brand managing its webhooks.
#[tracing::instrument(skip_all, fields(brand = %path.0, event_id = %path.1))]
pub async fn erase(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Reply {
    let (brand, raw_event) = path.into_inner();
    if principal.authorize(SCOPE_PUBLISH, &brand).is_err() {
        principal.authorize(SCOPE_WEBHOOKS, &brand)?;
    }
    state.rate_limit(&brand)?;
    let not_found = || {
        ApiError::not_found(format!(
            "No event with ID: {raw_event} was found for brandId: {brand}"
        ))
    };
    let id = Uuid::parse_str(&raw_event).map_err(|_| not_found())?;
    let mut conn = state.conn().await?;
    let Some(event) = retention::erase(&mut conn, &brand, id).await? else {
        return Err(not_found());
    };
    Ok(HttpResponse::Ok().json(json!({
        "id": event.id,
        "type": event.event_type,
        "created": timestamp(event.created),
        "erased": event.erased.map(timestamp),
    })))
}

fn attempt_view(a: &Attempt) -> Value {
    let response = a.response_status_code.map(|code| {
        json!({
            "statusCode": code,
            "headers": a.response_headers.clone().unwrap_or_else(|| json!({})),
            "body": a.response_body.clone().unwrap_or_default(),
            "time": a.response_time_ms,
        })
    });
    json!({
        "id": a.id,
        "created": timestamp(a.created),
        "status": a.status,
        "request": { "endpoint": a.request_endpoint, "headers": a.request_headers },
        "response": response,
        "time": a.response_time_ms,
        "error": a.error,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    size: Option<String>,
    start: Option<String>,
    end: Option<String>,
    start_id: Option<String>,
    /// One delivery status or several, comma-separated.
    status: Option<String>,
    /// A leaf or a group of the event-type tree.
    #[serde(rename = "type")]
    event_type: Option<String>,
}

struct Page {
    size: i64,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    start_id: Option<Uuid>,
    statuses: Vec<DeliveryStatus>,
    /// Leaves: a group given as `type` is expanded.
    event_types: Vec<String>,
}

/// `status=FAILURE` or `status=FAILURE,PARKED`: the statuses named, each once.
fn parse_statuses(raw: &str) -> Result<Vec<DeliveryStatus>, String> {
    let mut statuses = Vec::new();
    for name in raw.split(',') {
        match name.parse::<DeliveryStatus>() {
            Ok(s) if !statuses.contains(&s) => statuses.push(s),
            Ok(_) => {}
            Err(_) => {
                let all: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
                return Err(format!(
                    "status must be one of {} or several of them, comma-separated",
                    all.join(", ")
                ));
            }
        }
    }
    Ok(statuses)
}

fn parse_page(q: &PageQuery) -> Result<Page, ApiError> {
    let mut problems = BTreeMap::new();
    let size = match q.size.as_deref().map(str::parse::<i64>) {
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
    let mut time = |name: &str, raw: &Option<String>| {
        raw.as_deref()
            .and_then(|s| match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    problems.insert(
                        name.to_owned(),
                        format!("{name} must be an RFC 3339 date-time"),
                    );
                    None
                }
            })
    };
    let start = time("start", &q.start);
    let end = time("end", &q.end);
    let start_id = q
        .start_id
        .as_deref()
        .and_then(|s| match Uuid::parse_str(s) {
            Ok(id) => Some(id),
            Err(_) => {
                problems.insert("startId".to_owned(), "startId must be a UUID".to_owned());
                None
            }
        });
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            problems.insert("end".to_owned(), "end must not be before start".to_owned());
        }
    }
    let statuses = match q.status.as_deref().map(parse_statuses) {
        None => Vec::new(),
        Some(Ok(statuses)) => statuses,
        Some(Err(message)) => {
            problems.insert("status".to_owned(), message);
            Vec::new()
        }
    };
    // A group stands for its leaves: stored events are always of a leaf type.
    let event_types = match q.event_type.as_deref().map(Subscription::parse) {
        None => Vec::new(),
        Some(Ok(node)) => EventType::leaves_under(&node)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        Some(Err(e)) => {
            problems.insert(
                "type".to_owned(),
                format!("type must be an event type or a group of them: {e}"),
            );
            Vec::new()
        }
    };
    if problems.is_empty() {
        Ok(Page {
            size,
            start,
            end,
            start_id,
            statuses,
            event_types,
        })
    } else {
        Err(ApiError::validation(problems))
    }
}

fn event_not_found(raw: &str) -> ApiError {
    ApiError::not_found(format!(
        "No event with ID: {raw} was found for this webhook"
    ))
}

/// `GET /v1/{brandId}/webhooks/{id}/events` → `WebhookEventsResponsePage`, newest first.
/// `page.lastId` is the `startId` of the next page (exclusive) and null on the last page.
/// `status` (one or several, comma-separated) and `type` (a leaf or a group) narrow the log;
/// the cursor works the same with them.
#[tracing::instrument(skip_all, fields(brand = %path.0, webhook_id = %path.1))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> Reply {
    let (brand, raw_id) = path.into_inner();
    let webhook = webhook_of(&state, &principal, &brand, &raw_id).await?;
    let page = parse_page(&query)?;
    let mut conn = state.conn().await?;
    // One row more than asked tells whether another page follows.
    let mut rows = deliveries::list_for_webhook(
        &mut conn,
        webhook.id,
        &deliveries::LogFilter {
            start: page.start,
            end: page.end,
            before: page.start_id,
            statuses: &page.statuses,
            event_types: &page.event_types,
        },
        page.size + 1,
    )
    .await?;
    let more = rows.len() as i64 > page.size;
    rows.truncate(usize::try_from(page.size).unwrap_or(0));
    let last_id = if more {
        rows.last().map(|(_, e)| e.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(json!({
        "events": rows.iter().map(|(d, e)| page_entry(d, e)).collect::<Vec<_>>(),
        "page": { "size": page.size, "startId": page.start_id, "lastId": last_id },
    })))
}

fn parse_event_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| event_not_found(raw))
}

/// `GET …/events/{eventId}` → `WebhookEventResponse` with every attempt, oldest first.
#[tracing::instrument(skip_all, fields(brand = %path.0, webhook_id = %path.1, event_id = %path.2))]
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Reply {
    let (brand, raw_id, raw_event) = path.into_inner();
    let webhook = webhook_of(&state, &principal, &brand, &raw_id).await?;
    let event_id = parse_event_id(&raw_event)?;
    let mut conn = state.conn().await?;
    let Some((d, e, attempts)) =
        deliveries::get_for_webhook(&mut conn, webhook.id, event_id).await?
    else {
        return Err(event_not_found(&raw_event));
    };
    let mut view = page_entry(&d, &e);
    view["data"] = e.payload.clone();
    view["attempts"] = attempts.iter().map(attempt_view).collect();
    Ok(HttpResponse::Ok().json(view))
}

/// `POST …/events/{eventId}/retry` → 202: one more attempt now, even after FAILURE.
#[tracing::instrument(skip_all, fields(brand = %path.0, webhook_id = %path.1, event_id = %path.2))]
pub async fn retry(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Reply {
    let (brand, raw_id, raw_event) = path.into_inner();
    let webhook = webhook_of(&state, &principal, &brand, &raw_id).await?;
    let event_id = parse_event_id(&raw_event)?;
    match crate::manage::retry(&state, &webhook, event_id).await? {
        Ok(()) => {}
        Err(RetryRefused::Disabled) => {
            return Err(ApiError::new(
                ErrorCode::Whk0008,
                ErrorCode::Whk0008.describe(Some(&webhook.id.to_string())),
            ))
        }
        Err(RetryRefused::Erased(erased)) => return Err(erased_conflict(event_id, erased)),
        Err(RetryRefused::NotFound) => return Err(event_not_found(&raw_event)),
        Err(RetryRefused::InFlight) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "Event {event_id} is being sent to this webhook right now; retry it once \
                     this attempt is recorded (its status and attempts show in the event log)"
                ),
            ))
        }
    }
    Ok(HttpResponse::Accepted().json(json!({ "id": event_id, "status": "PENDING" })))
}
