//! The portal's handlers. Each one reads the signed-in brand from [`PortalSession`] (never
//! from the address), calls the same `manage`, route and `store` functions the API routes
//! call, and renders a template; every form post checks the session's CSRF token first and
//! answers with a redirect (post/redirect/get), so reloading a page never repeats an action.

use std::collections::BTreeMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse, ResponseError as _};
use chrono::{Duration as Span, Utc};
use hookline_domain::{DeliveryStatus, EventType, Subscription};
use hookline_store::{deliveries, recoveries, stats, webhooks};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    error::PortalError,
    session::{self, PortalSession},
    views::{self, render, Choice, Chrome},
};
use crate::{manage, routes, state::AppState};

type Page = Result<HttpResponse, PortalError>;

/// A urlencoded form body, repeated keys kept (checkbox groups).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A checked form of the session: the CSRF token is right.
fn form_of(session: &PortalSession, body: &[u8]) -> Result<Form, PortalError> {
    let form = Form::parse(body);
    session.check_csrf(form.get("csrf"))?;
    Ok(form)
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

/// The notice shown after an action (`?done=`): fixed texts, never the query's own.
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Webhook created. Its signing secret is below.",
        "enabled" => "Webhook enabled: deliveries resume.",
        "disabled" => "Webhook disabled: new events are recorded as skipped, nothing is sent.",
        "rotated" => "Secret rotated. The previous one still signs until the time shown.",
        "retried" => "One more attempt is on its way.",
        "sent" => "Test event sent.",
        "deleted" => "Webhook deleted.",
        "started" => "Recovery started.",
        "cancelled" => "Recovery cancelled.",
        _ => return None,
    })
}

fn chrome(session: &PortalSession, nav: &'static str, done: Option<&str>) -> Chrome {
    Chrome {
        signed_in: true,
        brand: session.brand.clone(),
        csrf: session.csrf().to_owned(),
        nav,
        notice: notice(done),
    }
}

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    token: Option<String>,
}

/// `GET /portal/login?token=…`: redeems the link and sets the session cookie. The answer is
/// a page that moves on by itself (not a redirect), so the cookie — SameSite=Strict — is sent
/// with the next page even when the link was opened from another site (a mail, a chat).
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> Page {
    let token = query.token.as_deref().unwrap_or_default();
    if token.is_empty() || token.len() > 100 {
        return Err(PortalError::BadLink);
    }
    let Some(opened) = session::redeem(&state, token).await? else {
        tracing::info!("portal link refused: unknown, used or expired");
        return Err(PortalError::BadLink);
    };
    tracing::info!(brand = %opened.brand, "portal session opened");
    let page = views::SignedInPage {
        chrome: Chrome::default(),
        brand: opened.brand,
    };
    let mut res = render(StatusCode::OK, &page);
    res.add_cookie(&session::session_cookie(&state, &req, opened.cookie_value))
        .map_err(|e| PortalError::Api(crate::error::ApiError::internal(e)))?;
    Ok(res)
}

/// `POST /portal/logout`: ends the session (the form's CSRF token is checked when there is
/// one to check against) and clears the cookie.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Option<PortalSession>,
    body: web::Bytes,
) -> Page {
    if let Some(session) = &session {
        form_of(session, &body)?;
        session::end(&state, &req).await?;
    }
    let mut res = see_other("/portal/signed-out");
    res.add_cookie(&session::removal_cookie(&state, &req))
        .map_err(|e| PortalError::Api(crate::error::ApiError::internal(e)))?;
    Ok(res)
}

pub async fn signed_out() -> HttpResponse {
    let page = views::MessagePage::new(
        "Signed out",
        "You are signed out. Open a new sign-in link to come back.",
    );
    render(StatusCode::OK, &page)
}

pub async fn index() -> HttpResponse {
    see_other("/portal/webhooks")
}

/// An id from the address; one that is not a UUID names nothing (the same 404).
fn id_of(raw: &str) -> Result<Uuid, PortalError> {
    Uuid::parse_str(raw).map_err(|_| PortalError::NotFound)
}

/// A page showing a form's refusals answers 422, like the API; otherwise 200.
fn form_status(errors: &[(String, String)]) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// The webhook `raw` of the session's brand; another brand's is the same 404 as none.
async fn webhook_of(
    state: &AppState,
    session: &PortalSession,
    raw: &str,
) -> Result<hookline_store::models::Webhook, PortalError> {
    let id = id_of(raw)?;
    manage::get(state, &session.brand, id)
        .await?
        .ok_or(PortalError::NotFound)
}

async fn webhooks_page(
    state: &AppState,
    session: &PortalSession,
    done: Option<&str>,
    endpoint: String,
    checked: &[String],
    errors: Vec<(String, String)>,
) -> Page {
    let mut conn = state.conn().await?;
    let rows = webhooks::list(&mut conn, &session.brand).await?;
    let summaries =
        stats::summaries(&mut conn, &session.brand, Utc::now() - Span::hours(24)).await?;
    drop(conn);
    let status = form_status(&errors);
    let page = views::WebhooksPage {
        chrome: chrome(session, "webhooks", done),
        rows: rows
            .iter()
            .map(|w| {
                let s = summaries.iter().find(|s| s.webhook_id == w.id);
                views::WebhookRow::new(w, s)
            })
            .collect(),
        tree: views::type_tree(checked),
        endpoint,
        errors,
    };
    Ok(render(status, &page))
}

/// `GET /portal/webhooks`: the brand's webhooks with their last 24 hours, and the create form.
pub async fn list(
    state: web::Data<AppState>,
    session: PortalSession,
    query: web::Query<Done>,
) -> Page {
    webhooks_page(
        &state,
        &session,
        query.done.as_deref(),
        String::new(),
        &[],
        Vec::new(),
    )
    .await
}

/// `POST /portal/webhooks`: the same validation and creation as `POST /v1/{brandId}/webhooks`.
pub async fn create(state: web::Data<AppState>, session: PortalSession, body: web::Bytes) -> Page {
    let form = form_of(&session, &body)?;
    let endpoint = form.get("endpoint").unwrap_or_default().trim().to_owned();
    let types = form.all("types");
    let request = json!({ "endpoint": endpoint, "events": types, "enabled": true });
    let input = match routes::views::parse_webhook_request(&request, &state.url_policy) {
        Ok(input) => input,
        Err(problems) => {
            let errors = problems
                .into_iter()
                .map(|(field, message)| {
                    let field = if field.starts_with("events") {
                        "event types".to_owned()
                    } else {
                        field
                    };
                    (field, message)
                })
                .collect();
            return webhooks_page(&state, &session, None, endpoint, &types, errors).await;
        }
    };
    match manage::create(&state, &session.brand, input).await {
        Ok(created) => Ok(see_other(&format!(
            "/portal/webhooks/{}?done=created",
            created.webhook.id
        ))),
        Err(e) if e.status_code().is_client_error() => {
            let errors = vec![("webhook".to_owned(), e.description().to_owned())];
            webhooks_page(&state, &session, None, endpoint, &types, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

const RANGES: &[(&str, &str)] = &[
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("all", "all time"),
];

fn range_start(range: &str) -> Option<chrono::DateTime<Utc>> {
    let span = match range {
        "1h" => Span::hours(1),
        "24h" => Span::hours(24),
        "7d" => Span::days(7),
        "30d" => Span::days(30),
        _ => return None,
    };
    Some(Utc::now() - span)
}

const STATUSES: &[(&str, &str)] = &[
    ("", "any status"),
    ("PENDING", "pending"),
    ("SUCCESS", "succeeded"),
    ("FAILURE", "failed"),
    ("PARKED", "parked"),
    ("SKIPPED", "skipped"),
];

/// Page size of the portal's event log.
const LOG_PAGE: i64 = 25;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    done: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    range: Option<String>,
    before: Option<String>,
}

/// `GET /portal/webhooks/{id}`: settings, secret, the last 24 hours and the event log.
pub async fn webhook(
    state: web::Data<AppState>,
    session: PortalSession,
    path: web::Path<String>,
    query: web::Query<LogQuery>,
) -> Page {
    let w = webhook_of(&state, &session, &path).await?;
    let status = query
        .status
        .as_deref()
        .filter(|s| s.parse::<DeliveryStatus>().is_ok())
        .unwrap_or("");
    let node = query
        .event_type
        .as_deref()
        .filter(|t| Subscription::parse(t).is_ok())
        .unwrap_or("");
    let range = query
        .range
        .as_deref()
        .filter(|r| RANGES.iter().any(|(v, _)| v == r))
        .unwrap_or("all");
    let before = query
        .before
        .as_deref()
        .and_then(|b| Uuid::parse_str(b).ok());
    let day_ago = Utc::now() - Span::hours(24);
    let secret = w
        .secret
        .open(&state.keyring, w.id)
        .map_err(crate::error::ApiError::internal)?;

    let mut conn = state.conn().await?;
    let parked = hookline_store::health::parked_count(&mut conn, w.id).await?;
    let summary = stats::summary(&mut conn, w.id, day_ago).await?;
    let buckets = stats::series(&mut conn, w.id, day_ago, Span::hours(1)).await?;
    let latency = stats::latency(&mut conn, w.id, day_ago).await?;
    let statuses: Vec<DeliveryStatus> = status.parse().into_iter().collect();
    let leaves: Vec<String> = Subscription::parse(node)
        .map(|sub| {
            EventType::leaves_under(&sub)
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut rows = deliveries::list_for_webhook(
        &mut conn,
        w.id,
        &deliveries::LogFilter {
            start: range_start(range),
            end: None,
            before,
            statuses: &statuses,
            event_types: &leaves,
        },
        LOG_PAGE + 1,
    )
    .await?;
    drop(conn);
    let more = rows.len() as i64 > LOG_PAGE;
    rows.truncate(usize::try_from(LOG_PAGE).unwrap_or(0));
    let filter_query = |before: Option<Uuid>| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if !status.is_empty() {
            q.append_pair("status", status);
        }
        if !node.is_empty() {
            q.append_pair("type", node);
        }
        q.append_pair("range", range);
        if let Some(b) = before {
            q.append_pair("before", &b.to_string());
        }
        format!("/portal/webhooks/{}?{}#log", w.id, q.finish())
    };
    let next_page = if more {
        rows.last().map(|(_, e)| filter_query(Some(e.id)))
    } else {
        None
    };
    let first_page = before.map(|_| filter_query(None));

    let mut type_options = vec![Choice {
        value: String::new(),
        label: "any type".to_owned(),
        selected: node.is_empty(),
    }];
    type_options.extend(views::type_tree(&[]).into_iter().map(|n| Choice {
        selected: n.name == node,
        label: n.name.clone(),
        value: n.name,
    }));
    let grace = humantime::format_duration(state.settings.delivery.secret_rotation_grace);
    let page = views::WebhookPage {
        chrome: chrome(&session, "webhooks", query.done.as_deref()),
        w: views::WebhookInfo::new(&w, parked),
        secret: secret.expose().to_owned(),
        previous_expires: w
            .previous_secret_expires_at
            .filter(|t| *t > Utc::now())
            .map(views::time),
        grace: grace.to_string(),
        summary: (&summary).into(),
        latency: (&latency).into(),
        chart: views::Chart::new(&buckets),
        status_options: Choice::list(STATUSES, status),
        type_options,
        range_options: Choice::list(RANGES, range),
        events: rows
            .iter()
            .map(|(d, e)| views::EventRow::new(d, e))
            .collect(),
        filtered: !status.is_empty() || !node.is_empty() || range != "all" || before.is_some(),
        first_page,
        next_page,
    };
    Ok(render(StatusCode::OK, &page))
}

/// `GET /portal/webhooks/{id}/delete`: the confirmation.
pub async fn delete_confirm(
    state: web::Data<AppState>,
    session: PortalSession,
    path: web::Path<String>,
) -> Page {
    let w = webhook_of(&state, &session, &path).await?;
    let page = views::DeletePage {
        chrome: chrome(&session, "webhooks", None),
        id: w.id.to_string(),
        endpoint: w.endpoint,
    };
    Ok(render(StatusCode::OK, &page))
}

/// `POST /portal/webhooks/{id}/delete`.
pub async fn delete(
    state: web::Data<AppState>,
    session: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Page {
    form_of(&session, &body)?;
    let id = id_of(&path)?;
    let mut conn = state.conn().await?;
    if !webhooks::delete(&mut conn, &session.brand, id).await? {
        return Err(PortalError::NotFound);
    }
    tracing::info!(brand = %session.brand, webhook_id = %id, "webhook deleted (portal)");
    Ok(see_other("/portal/webhooks?done=deleted"))
}

/// `POST /portal/webhooks/{id}/enabled` with `enabled=true|false` and, when enabling,
/// `replay_skipped=true`: the API's PATCH.
pub async fn set_enabled(
    state: web::Data<AppState>,
    session: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Page {
    let form = form_of(&session, &body)?;
    let id = id_of(&path)?;
    let enabled = form.get("enabled") == Some("true");
    let replay = enabled && form.get("replay_skipped") == Some("true");
    let mut conn = state.conn().await?;
    if webhooks::set_enabled(&mut conn, &session.brand, id, enabled, replay)
        .await?
        .is_none()
    {
        return Err(PortalError::NotFound);
    }
    tracing::info!(brand = %session.brand, webhook_id = %id, enabled, replay, "webhook toggled (portal)");
    let done = if enabled { "enabled" } else { "disabled" };
    if form.get("return") == Some("list") {
        return Ok(see_other(&format!("/portal/webhooks?done={done}")));
    }
    Ok(see_other(&format!("/portal/webhooks/{id}?done={done}")))
}

/// `POST /portal/webhooks/{id}/rotate`: a new secret; the old one signs on for the grace.
pub async fn rotate(
    state: web::Data<AppState>,
    session: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Page {
    form_of(&session, &body)?;
    let id = id_of(&path)?;
    if manage::rotate(&state, &session.brand, id, None)
        .await?
        .is_none()
    {
        return Err(PortalError::NotFound);
    }
    Ok(see_other(&format!(
        "/portal/webhooks/{id}?done=rotated#signing"
    )))
}

/// `POST /portal/webhooks/{id}/test`: a `WEBHOOK_EVENTS.PING` to this webhook, then its page.
pub async fn send_test(
    state: web::Data<AppState>,
    session: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Page {
    form_of(&session, &body)?;
    let id = id_of(&path)?;
    let sent = manage::send_test(
        &state,
        &session.brand,
        id,
        "A test event sent from the Hookline portal",
    )
    .await?
    .ok_or(PortalError::NotFound)?;
    Ok(see_other(&format!(
        "/portal/webhooks/{id}/events/{}?done=sent",
        sent.event_id
    )))
}

/// `GET /portal/webhooks/{id}/events/{eventId}`: payload and every attempt.
pub async fn event(
    state: web::Data<AppState>,
    session: PortalSession,
    path: web::Path<(String, String)>,
    query: web::Query<Done>,
) -> Page {
    let (raw_id, raw_event) = path.into_inner();
    let w = webhook_of(&state, &session, &raw_id).await?;
    let event_id = id_of(&raw_event)?;
    let mut conn = state.conn().await?;
    let (d, e, attempts) = deliveries::get_for_webhook(&mut conn, w.id, event_id)
        .await?
        .ok_or(PortalError::NotFound)?;
    drop(conn);
    let payload = serde_json::to_string_pretty(&e.payload).unwrap_or_default();
    let (can_retry, no_retry_reason) = if e.erased.is_some() {
        (false, "Its payload was erased: it can no longer be sent.")
    } else if !w.enabled {
        (false, "The webhook is disabled: enable it to retry.")
    } else if d.status == DeliveryStatus::Pending.as_str() && !d.manual_retry {
        (false, "Attempts are still scheduled.")
    } else {
        (true, "")
    };
    let page = views::EventPage {
        chrome: chrome(&session, "webhooks", query.done.as_deref()),
        webhook_id: w.id.to_string(),
        endpoint: w.endpoint.clone(),
        e: views::EventInfo {
            id: e.id.to_string(),
            event_type: e.event_type.clone(),
            created: views::time(e.created),
            status: d.status.clone(),
            status_class: views::status_class(&d.status),
            reason: d.status_reason.clone(),
            attempts: d.attempt_count,
        },
        next_attempt: d.next_attempt_at.map(views::time),
        erased: e.erased.map(views::time),
        payload,
        attempts: attempts.iter().map(views::AttemptView::new).collect(),
        can_retry,
        no_retry_reason: no_retry_reason.to_owned(),
    };
    Ok(render(StatusCode::OK, &page))
}

/// `POST /portal/webhooks/{id}/events/{eventId}/retry`: one more attempt now.
pub async fn retry(
    state: web::Data<AppState>,
    session: PortalSession,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Page {
    form_of(&session, &body)?;
    let (raw_id, raw_event) = path.into_inner();
    let w = webhook_of(&state, &session, &raw_id).await?;
    let event_id = id_of(&raw_event)?;
    let message = match manage::retry(&state, &w, event_id).await? {
        Ok(()) => {
            return Ok(see_other(&format!(
                "/portal/webhooks/{}/events/{event_id}?done=retried",
                w.id
            )))
        }
        Err(manage::RetryRefused::NotFound) => return Err(PortalError::NotFound),
        Err(manage::RetryRefused::Disabled) => "The webhook is disabled: enable it to retry.",
        Err(manage::RetryRefused::Erased(_)) => "The payload was erased: it cannot be sent.",
        Err(manage::RetryRefused::InFlight) => {
            "An attempt is being made right now; retry once it is recorded."
        }
    };
    Err(PortalError::Api(crate::error::ApiError::new(
        hookline_domain::ErrorCode::Conflict,
        message,
    )))
}

const RECOVER_RANGES: &[(&str, &str)] = &[
    ("1h", "hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("30d", "30 days"),
];

const RECOVER_STATUSES: &[(&str, &str)] = &[
    ("FAILURE", "failed"),
    ("SKIPPED", "skipped while disabled"),
    ("SUCCESS", "succeeded (send again)"),
];

async fn recover_page(
    state: &AppState,
    session: &PortalSession,
    done: Option<&str>,
    form: Option<&Form>,
    dry_run: Option<views::DryRunView>,
    errors: Vec<(String, String)>,
) -> Page {
    let mut conn = state.conn().await?;
    let hooks = webhooks::list(&mut conn, &session.brand).await?;
    let jobs = recoveries::list(&mut conn, &session.brand, 20, None).await?;
    drop(conn);
    let endpoints: Vec<(String, String)> = hooks
        .iter()
        .map(|w| (w.id.to_string(), w.endpoint.clone()))
        .collect();
    let range = form.and_then(|f| f.get("range")).unwrap_or("24h");
    let statuses = form.map_or_else(|| vec!["FAILURE".to_owned()], |f| f.all("statuses"));
    let status_options = RECOVER_STATUSES
        .iter()
        .map(|(v, l)| Choice {
            value: (*v).to_owned(),
            label: (*l).to_owned(),
            selected: statuses.iter().any(|s| s == v),
        })
        .collect();
    let status = form_status(&errors);
    let page = views::RecoverPage {
        chrome: chrome(session, "recover", done),
        errors,
        selected_webhook: form
            .and_then(|f| f.get("webhook"))
            .unwrap_or_default()
            .to_owned(),
        jobs: jobs
            .iter()
            .map(|j| views::JobRow::new(j, &endpoints))
            .collect(),
        webhooks: endpoints,
        range_options: Choice::list(RECOVER_RANGES, range),
        status_options,
        dry_run,
    };
    Ok(render(status, &page))
}

/// `GET /portal/recover`: the form and the brand's jobs.
pub async fn recover(
    state: web::Data<AppState>,
    session: PortalSession,
    query: web::Query<Done>,
) -> Page {
    recover_page(
        &state,
        &session,
        query.done.as_deref(),
        None,
        None,
        Vec::new(),
    )
    .await
}

/// `POST /portal/recover`: `action=dry-run` counts, `action=run` starts the job; both through
/// the API's own request parsing and job creation.
pub async fn recover_post(
    state: web::Data<AppState>,
    session: PortalSession,
    body: web::Bytes,
) -> Page {
    let form = form_of(&session, &body)?;
    let dry_run = form.get("action") != Some("run");
    let range = form.get("range").unwrap_or("24h");
    let since = range_start(range).unwrap_or_else(|| Utc::now() - Span::hours(24));
    let statuses = form.all("statuses");
    let webhook = form.get("webhook").unwrap_or_default();
    let request = json!({
        "since": since.to_rfc3339(),
        "statuses": statuses,
        "dryRun": dry_run,
    });
    let mut errors = BTreeMap::new();
    if statuses.is_empty() {
        errors.insert("statuses".to_owned(), "pick at least one status".to_owned());
    }
    let (webhook_id, webhook_ids) = if webhook.is_empty() {
        let mut conn = state.conn().await?;
        (
            None,
            webhooks::ids_of_brand(&mut conn, &session.brand).await?,
        )
    } else {
        let w = webhook_of(&state, &session, webhook).await?;
        (Some(w.id), vec![w.id])
    };
    let parsed = if errors.is_empty() {
        routes::recoveries::parse_request(&request, false, &state, Utc::now())
            .map_err(|e| errors.extend(e.validations().clone()))
            .ok()
    } else {
        None
    };
    let Some(parsed) = parsed else {
        let errors = errors.into_iter().collect();
        return recover_page(&state, &session, None, Some(&form), None, errors).await;
    };
    match routes::recoveries::begin(&state, &session.brand, webhook_id, webhook_ids, parsed).await {
        Ok(routes::recoveries::Begun::DryRun { matched, max }) => {
            let mut fields = vec![("range".to_owned(), range.to_owned())];
            fields.push(("webhook".to_owned(), webhook.to_owned()));
            fields.extend(statuses.iter().map(|s| ("statuses".to_owned(), s.clone())));
            let view = views::DryRunView {
                matched,
                max,
                too_many: u64::try_from(matched).unwrap_or(0) > max,
                fields,
            };
            recover_page(&state, &session, None, Some(&form), Some(view), Vec::new()).await
        }
        Ok(routes::recoveries::Begun::Job(job)) => {
            tracing::info!(brand = %session.brand, recovery_id = %job.id, "recovery started (portal)");
            Ok(see_other("/portal/recover?done=started"))
        }
        Err(e) if e.status_code().is_client_error() => {
            let mut errors: Vec<(String, String)> = e.validations().clone().into_iter().collect();
            if errors.is_empty() {
                errors.push(("recovery".to_owned(), e.description().to_owned()));
            }
            recover_page(&state, &session, None, Some(&form), None, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /portal/recoveries/{id}/cancel`.
pub async fn cancel(
    state: web::Data<AppState>,
    session: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Page {
    form_of(&session, &body)?;
    let id = id_of(&path)?;
    let mut conn = state.conn().await?;
    match recoveries::cancel(&mut conn, &session.brand, id).await? {
        recoveries::Cancelled::NotFound => Err(PortalError::NotFound),
        _ => Ok(see_other("/portal/recover?done=cancelled")),
    }
}
