//! Response bodies and the request validation both surfaces share.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_domain::{
    normalize, EndpointUrl, HealthReason, Subscription, UrlPolicy, WebhookSecret,
};
use hookline_store::models::Webhook;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;

/// RFC 3339 with milliseconds and `Z`, the `date-time` format of both specs.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A webhook's endpoint health (`WebhookHealth` in the OpenAPI document), the same object on
/// both surfaces, so a brand can see why deliveries stopped without reading the event log.
/// Every field is always present (null when unknown) so clients need no presence checks.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    /// `healthy`, `degraded` or `disabled`.
    pub state: &'static str,
    /// `consecutive_failures`, `endpoint_gone` or `manual`; null while healthy.
    pub reason: Option<&'static str>,
    pub consecutive_failures: u32,
    pub last_success: Option<String>,
    pub last_failure: Option<String>,
    pub failing_since: Option<String>,
    /// When the state last changed; null if it never has.
    pub since: Option<String>,
    /// Deliveries held back until the endpoint can take them. Only on a single webhook's GET:
    /// it costs a count query, which a list of every webhook should not pay per row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked_deliveries: Option<i64>,
}

impl From<&Webhook> for HealthView {
    fn from(w: &Webhook) -> Self {
        let health = w.health();
        Self {
            state: health.state.as_str(),
            reason: health.reason.map(HealthReason::as_str),
            consecutive_failures: health.consecutive_failures,
            last_success: w.last_success_at.map(timestamp),
            last_failure: w.last_failure_at.map(timestamp),
            failing_since: health.failing_since.map(timestamp),
            since: w.health_changed.map(timestamp),
            parked_deliveries: None,
        }
    }
}

/// flexEngage `WebhookResponse`; `secret` only on creation.
#[derive(Debug, Serialize)]
pub struct WebhookView {
    pub id: Uuid,
    pub created: String,
    pub updated: String,
    pub endpoint: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub health: HealthView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id,
            created: timestamp(w.created),
            updated: timestamp(w.updated),
            endpoint: w.endpoint.clone(),
            events: w.event_types.clone(),
            enabled: w.enabled,
            health: HealthView::from(w),
            secret: None,
        }
    }
}

/// A webhook as a brand asked for it, every field valid.
#[derive(Debug)]
pub struct WebhookInput {
    pub endpoint: EndpointUrl,
    pub subscriptions: Vec<Subscription>,
    pub enabled: bool,
    pub secret: Option<WebhookSecret>,
}

/// At most this many subscriptions on one webhook: every leaf of the tree fits many times over.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// Validates a flexEngage `WebhookRequest`, collecting every invalid field at once
/// (`validations`: field → message) rather than stopping at the first.
impl super::validated::FromBody for WebhookInput {
    /// The flexEngage create body (`parse_webhook_request`), every problem under its field.
    fn from_body(body: Value, state: &crate::state::AppState) -> Result<Self, ApiError> {
        parse_webhook_request(&body, &state.url_policy).map_err(ApiError::validation)
    }
}

pub fn parse_webhook_request(
    body: &Value,
    policy: &UrlPolicy,
) -> Result<WebhookInput, BTreeMap<String, String>> {
    let mut problems = BTreeMap::new();
    let Some(obj) = body.as_object() else {
        problems.insert("body".into(), "the body must be a JSON object".into());
        return Err(problems);
    };
    let endpoint = match obj.get("endpoint") {
        None | Some(Value::Null) => {
            problems.insert("endpoint".into(), "endpoint is required".into());
            None
        }
        Some(Value::String(s)) => match EndpointUrl::parse(s, policy) {
            Ok(url) => Some(url),
            Err(e) => {
                problems.insert("endpoint".into(), e.to_string());
                None
            }
        },
        Some(_) => {
            problems.insert("endpoint".into(), "endpoint must be a string".into());
            None
        }
    };
    let subscriptions = match obj.get("events") {
        None | Some(Value::Null) => {
            problems.insert("events".into(), "events is required".into());
            None
        }
        Some(Value::Array(items)) if items.is_empty() => {
            problems.insert(
                "events".into(),
                "events must name at least one event type".into(),
            );
            None
        }
        Some(Value::Array(items)) if items.len() > MAX_SUBSCRIPTIONS => {
            problems.insert(
                "events".into(),
                format!("events may name at most {MAX_SUBSCRIPTIONS} event types"),
            );
            None
        }
        Some(Value::Array(items)) => {
            let mut subs = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(Subscription::parse) {
                    Some(Ok(sub)) => subs.push(sub),
                    Some(Err(e)) => {
                        problems.insert(format!("events[{i}]"), e.to_string());
                    }
                    None => {
                        problems.insert(format!("events[{i}]"), "must be a string".into());
                    }
                }
            }
            Some(normalize(subs))
        }
        Some(_) => {
            problems.insert(
                "events".into(),
                "events must be an array of event types".into(),
            );
            None
        }
    };
    let enabled = match obj.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.insert("enabled".into(), "enabled must be a boolean".into());
            true
        }
    };
    let secret = parse_optional_secret(obj.get("secret"), "secret", &mut problems);
    match (endpoint, subscriptions) {
        (Some(endpoint), Some(subscriptions)) if problems.is_empty() => Ok(WebhookInput {
            endpoint,
            subscriptions,
            enabled,
            secret,
        }),
        _ => Err(problems),
    }
}

pub fn parse_optional_secret(
    value: Option<&Value>,
    field: &str,
    problems: &mut BTreeMap<String, String>,
) -> Option<WebhookSecret> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match WebhookSecret::parse(s) {
            Ok(secret) => Some(secret),
            Err(e) => {
                problems.insert(field.into(), e.to_string());
                None
            }
        },
        Some(_) => {
            problems.insert(field.into(), format!("{field} must be a string"));
            None
        }
    }
}
