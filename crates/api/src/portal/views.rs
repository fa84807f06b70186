//! The pages' templates (`crates/api/templates/portal/`, compiled in by askama, which escapes
//! every value for HTML) and the values they show, shaped here so templates hold no logic.

use actix_web::{http::StatusCode, HttpResponse};
use askama::Template;
use chrono::{DateTime, SecondsFormat, Utc};
use hookline_store::{models::Webhook, stats};

/// What every page's frame shows: who is signed in, the CSRF token of its forms, the
/// current section and a notice after an action.
#[derive(Debug, Default)]
pub struct Chrome {
    pub signed_in: bool,
    pub brand: String,
    pub csrf: String,
    pub nav: &'static str,
    pub notice: Option<&'static str>,
}

/// An HTML response.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// Renders a page; a template that fails to render is a bug, shown as a 500.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "portal template failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.".into(),
            )
        }
    }
}

pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn time_short(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "never".to_owned(), time)
}

#[derive(Debug, Template)]
#[template(path = "portal/message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub title: String,
    pub text: String,
}

impl MessagePage {
    pub fn new(title: &str, text: &str) -> Self {
        MessagePage {
            chrome: Chrome::default(),
            title: title.to_owned(),
            text: text.to_owned(),
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "portal/signed_in.html")]
pub struct SignedInPage {
    pub chrome: Chrome,
    pub brand: String,
}

/// A webhook's state as one badge: off, degraded or on.
fn badge(w: &Webhook) -> (&'static str, &'static str, String) {
    let health = w.health();
    let reason = health.reason.map(|r| r.as_str()).unwrap_or("");
    match (w.enabled, health.state.as_str()) {
        (false, _) | (_, "disabled") => (
            "disabled",
            "bad",
            format!("Disabled: nothing is sent ({reason})"),
        ),
        (true, "degraded") => (
            "degraded",
            "warn",
            format!(
                "Degraded after {} failures in a row: one probe at a time, the rest parked",
                health.consecutive_failures
            ),
        ),
        _ => ("healthy", "good", "Enabled and answering".to_owned()),
    }
}

fn rate(succeeded: i64, failed: i64) -> String {
    let finished = succeeded + failed;
    if finished == 0 {
        "—".to_owned()
    } else {
        #[allow(clippy::cast_precision_loss)]
        let pct = succeeded as f64 * 100.0 / finished as f64;
        format!("{pct:.1} %")
    }
}

#[derive(Debug)]
pub struct WebhookRow {
    pub id: String,
    pub enabled: bool,
    pub endpoint: String,
    pub types: Vec<String>,
    pub badge: &'static str,
    pub badge_class: &'static str,
    pub badge_title: String,
    pub success_rate: String,
    pub deliveries: i64,
}

impl WebhookRow {
    pub fn new(w: &Webhook, s: Option<&stats::WebhookSummary>) -> Self {
        let (badge, badge_class, badge_title) = badge(w);
        let s = s.cloned().unwrap_or_default();
        WebhookRow {
            id: w.id.to_string(),
            enabled: w.enabled,
            endpoint: w.endpoint.clone(),
            types: w.event_types.clone(),
            badge,
            badge_class,
            badge_title,
            success_rate: rate(s.succeeded, s.failed),
            deliveries: s.deliveries,
        }
    }
}

/// One node of the event-type tree in the create form.
#[derive(Debug)]
pub struct TypeNode {
    pub name: String,
    pub label: String,
    pub depth: usize,
    pub leaf: bool,
    pub checked: bool,
}

/// Every node of the event-type tree, groups before their children, each checked when in
/// `checked`.
pub fn type_tree(checked: &[String]) -> Vec<TypeNode> {
    let mut names: Vec<(String, bool)> = hookline_domain::Subscription::all()
        .map(|s| (s.as_str().to_owned(), !s.is_group()))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|(name, leaf)| {
            let depth = name.matches('.').count();
            let label = name.rsplit('.').next().unwrap_or(&name).to_owned();
            let checked = checked.contains(&name);
            TypeNode {
                name,
                label,
                depth,
                leaf,
                checked,
            }
        })
        .collect()
}

#[derive(Debug, Template)]
#[template(path = "portal/webhooks.html")]
pub struct WebhooksPage {
    pub chrome: Chrome,
    pub rows: Vec<WebhookRow>,
    pub tree: Vec<TypeNode>,
    pub endpoint: String,
    pub errors: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct WebhookInfo {
    pub id: String,
    pub endpoint: String,
    pub types: Vec<String>,
    pub enabled: bool,
    pub state: &'static str,
    pub reason: Option<&'static str>,
    pub badge: &'static str,
    pub badge_class: &'static str,
    pub badge_title: String,
    pub consecutive_failures: u32,
    pub last_success: String,
    pub last_failure: String,
    pub created: String,
    pub parked: i64,
}

impl WebhookInfo {
    pub fn new(w: &Webhook, parked: i64) -> Self {
        let health = w.health();
        let (badge, badge_class, badge_title) = badge(w);
        WebhookInfo {
            id: w.id.to_string(),
            endpoint: w.endpoint.clone(),
            types: w.event_types.clone(),
            enabled: w.enabled,
            state: health.state.as_str(),
            reason: health.reason.map(|r| r.as_str()),
            badge,
            badge_class,
            badge_title,
            consecutive_failures: health.consecutive_failures,
            last_success: opt_time(w.last_success_at),
            last_failure: opt_time(w.last_failure_at),
            created: time(w.created),
            parked,
        }
    }
}

#[derive(Debug)]
pub struct SummaryView {
    pub deliveries: i64,
    pub rate: String,
}

impl From<&stats::WebhookSummary> for SummaryView {
    fn from(s: &stats::WebhookSummary) -> Self {
        SummaryView {
            deliveries: s.deliveries,
            rate: rate(s.succeeded, s.failed),
        }
    }
}

#[derive(Debug)]
pub struct LatencyView {
    pub p50: String,
    pub p99: String,
}

impl From<&stats::Latency> for LatencyView {
    fn from(l: &stats::Latency) -> Self {
        let ms = |v: Option<i32>| v.map_or_else(|| "—".to_owned(), |v| format!("{v} ms"));
        LatencyView {
            p50: ms(l.p50_ms),
            p99: ms(l.p99_ms),
        }
    }
}

#[derive(Debug)]
pub struct Bar {
    pub x: u32,
    pub ok: i64,
    pub fail: i64,
    pub y_ok: u32,
    pub h_ok: u32,
    pub y_fail: u32,
    pub h_fail: u32,
    pub label: String,
}

#[derive(Debug)]
pub struct Dot {
    pub class: &'static str,
    pub x: u32,
    pub y: i64,
    pub label: String,
}

/// The two charts of the webhook page as coordinates (numbers only reach the SVG).
#[derive(Debug)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    /// The y of the x axis.
    pub base: u32,
    pub bar_width: u32,
    pub bars: Vec<Bar>,
    pub max: i64,
    pub total_ok: i64,
    pub total_fail: i64,
    pub p50_points: String,
    pub p99_points: String,
    /// A marker on every latency point (one hour alone draws no line).
    pub dots: Vec<Dot>,
    pub latency_max: i32,
    pub first_label: String,
}

impl Chart {
    pub fn new(buckets: &[stats::Bucket]) -> Chart {
        const WIDTH: u32 = 480;
        const HEIGHT: u32 = 140;
        const BASE: u32 = 124;
        const TOP: u32 = 14;
        let plot = BASE - TOP;
        let n = u32::try_from(buckets.len().max(1)).unwrap_or(1);
        let slot = WIDTH / n;
        let bar_width = slot.saturating_sub(2).max(1);
        let max = buckets
            .iter()
            .map(|b| b.succeeded + b.failed)
            .max()
            .unwrap_or(0)
            .max(1);
        let scale = |v: i64| -> u32 {
            let h = v.saturating_mul(i64::from(plot)) / max;
            u32::try_from(h).unwrap_or(plot).min(plot)
        };
        let mut bars = Vec::with_capacity(buckets.len());
        for (i, b) in buckets.iter().enumerate() {
            let x = u32::try_from(i).unwrap_or(0) * slot + 1;
            let h_ok = scale(b.succeeded);
            let h_fail = scale(b.failed);
            bars.push(Bar {
                x,
                ok: b.succeeded,
                fail: b.failed,
                y_ok: BASE - h_ok,
                h_ok,
                y_fail: BASE - h_ok - h_fail,
                h_fail,
                label: b.start.format("%H:%M").to_string(),
            });
        }
        let latency_max = buckets
            .iter()
            .filter_map(|b| b.p99_ms.or(b.p50_ms))
            .max()
            .unwrap_or(0)
            .max(1);
        let mut dots = Vec::new();
        let mut points = |class: &'static str, pick: fn(&stats::Bucket) -> Option<i32>| {
            let mut line = Vec::new();
            for (i, b) in buckets.iter().enumerate() {
                let Some(v) = pick(b) else { continue };
                let x = u32::try_from(i).unwrap_or(0) * slot + slot / 2;
                let h = i64::from(v) * i64::from(plot) / i64::from(latency_max);
                let y = i64::from(BASE) - h.min(i64::from(plot));
                line.push(format!("{x},{y}"));
                dots.push(Dot {
                    class,
                    x,
                    y,
                    label: format!("{} {class}: {v} ms", b.start.format("%H:%M")),
                });
            }
            line.join(" ")
        };
        let p50_points = points("p50", |b| b.p50_ms);
        let p99_points = points("p99", |b| b.p99_ms);
        Chart {
            width: WIDTH,
            height: HEIGHT,
            base: BASE,
            bar_width,
            max,
            total_ok: buckets.iter().map(|b| b.succeeded).sum(),
            total_fail: buckets.iter().map(|b| b.failed).sum(),
            p50_points,
            p99_points,
            dots,
            latency_max,
            first_label: buckets
                .first()
                .map(|b| b.start.format("%H:%M").to_string())
                .unwrap_or_default(),
            bars,
        }
    }
}

/// An `<option>` of a filter.
#[derive(Debug)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    pub fn list(values: &[(&str, &str)], selected: &str) -> Vec<Choice> {
        values
            .iter()
            .map(|(value, label)| Choice {
                value: (*value).to_owned(),
                label: (*label).to_owned(),
                selected: *value == selected,
            })
            .collect()
    }
}

#[derive(Debug)]
pub struct EventRow {
    pub id: String,
    pub short_id: String,
    pub event_type: String,
    pub status: String,
    pub status_class: &'static str,
    pub reason: Option<String>,
    pub attempts: i32,
    pub created: String,
    pub created_short: String,
}

pub fn status_class(status: &str) -> &'static str {
    match status {
        "SUCCESS" => "good",
        "FAILURE" => "bad",
        "PARKED" | "SKIPPED" => "warn",
        _ => "info",
    }
}

impl EventRow {
    pub fn new(d: &hookline_store::models::Delivery, e: &hookline_store::models::Event) -> Self {
        let id = e.id.to_string();
        EventRow {
            short_id: id
                .chars()
                .rev()
                .take(12)
                .collect::<String>()
                .chars()
                .rev()
                .collect(),
            id,
            event_type: e.event_type.clone(),
            status: d.status.clone(),
            status_class: status_class(&d.status),
            reason: d.status_reason.clone(),
            attempts: d.attempt_count,
            created: time(e.created),
            created_short: time_short(e.created),
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "portal/webhook.html")]
pub struct WebhookPage {
    pub chrome: Chrome,
    pub w: WebhookInfo,
    pub secret: String,
    pub previous_expires: Option<String>,
    pub grace: String,
    pub summary: SummaryView,
    pub latency: LatencyView,
    pub chart: Chart,
    pub status_options: Vec<Choice>,
    pub type_options: Vec<Choice>,
    pub range_options: Vec<Choice>,
    pub events: Vec<EventRow>,
    pub filtered: bool,
    pub first_page: Option<String>,
    pub next_page: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "portal/delete.html")]
pub struct DeletePage {
    pub chrome: Chrome,
    pub id: String,
    pub endpoint: String,
}

#[derive(Debug)]
pub struct EventInfo {
    pub id: String,
    pub event_type: String,
    pub created: String,
    pub status: String,
    pub status_class: &'static str,
    pub reason: Option<String>,
    pub attempts: i32,
}

#[derive(Debug)]
pub struct AttemptView {
    pub id: String,
    pub created: String,
    pub status: String,
    pub status_class: &'static str,
    pub code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub endpoint: String,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub body: String,
}

/// Header pairs from a stored JSON object (values as text, whatever their JSON type).
pub fn header_pairs(v: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let Some(serde_json::Value::Object(map)) = v else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

impl AttemptView {
    pub fn new(a: &hookline_store::models::Attempt) -> Self {
        AttemptView {
            id: a.id.to_string(),
            created: time(a.created),
            status: a.status.clone(),
            status_class: status_class(&a.status),
            code: a.response_status_code,
            duration_ms: a.response_time_ms,
            error: a.error.clone(),
            endpoint: a.request_endpoint.clone(),
            request_headers: header_pairs(Some(&a.request_headers)),
            response_headers: header_pairs(a.response_headers.as_ref()),
            body: a.response_body.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "portal/event.html")]
pub struct EventPage {
    pub chrome: Chrome,
    pub webhook_id: String,
    pub endpoint: String,
    pub e: EventInfo,
    pub next_attempt: Option<String>,
    pub erased: Option<String>,
    pub payload: String,
    pub attempts: Vec<AttemptView>,
    pub can_retry: bool,
    pub no_retry_reason: String,
}

#[derive(Debug)]
pub struct DryRunView {
    pub matched: i64,
    pub max: u64,
    pub too_many: bool,
    /// The request again, as hidden fields of the confirming form.
    pub fields: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct JobRow {
    pub id: String,
    pub created: String,
    pub created_short: String,
    pub scope: String,
    pub state: String,
    pub state_class: &'static str,
    pub matched: i64,
    pub done: i64,
    pub running: bool,
}

impl JobRow {
    pub fn new(j: &hookline_store::recoveries::Recovery, endpoints: &[(String, String)]) -> Self {
        let scope = match j.webhook_id {
            Some(id) => endpoints
                .iter()
                .find(|(wid, _)| *wid == id.to_string())
                .map_or_else(|| id.to_string(), |(_, e)| e.clone()),
            None => format!("{} webhooks", j.webhook_ids.len()),
        };
        let running = j.state == hookline_store::recoveries::RUNNING;
        JobRow {
            id: j.id.to_string(),
            created: time(j.created),
            created_short: time_short(j.created),
            scope,
            state: j.state.clone(),
            state_class: match j.state.as_str() {
                "DONE" => "good",
                "FAILED" => "bad",
                "CANCELLED" => "warn",
                _ => "info",
            },
            matched: j.matched,
            done: j.requeued + j.skipped,
            running,
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "portal/recover.html")]
pub struct RecoverPage {
    pub chrome: Chrome,
    pub errors: Vec<(String, String)>,
    pub webhooks: Vec<(String, String)>,
    pub selected_webhook: String,
    pub range_options: Vec<Choice>,
    pub status_options: Vec<Choice>,
    pub dry_run: Option<DryRunView>,
    pub jobs: Vec<JobRow>,
}
