//! What a brand's endpoint receives (docs/architecture.md, "Delivery contract"): the envelope bytes and the
//! headers that sign them. Pure: no I/O, so the contract is tested without a network.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hookline_domain::{
    sign::{fdx_signature, standard_webhooks_header},
    SecretError, WebhookSecret,
};
use hookline_store::deliveries::Job;
use hookline_telemetry::trace::TraceContext;

/// A request ready to send: the exact bytes that were signed and the headers, in the order
/// they are sent (and recorded on the attempt).
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub endpoint: String,
    /// The event's envelope, shared with its other deliveries (never copied per request).
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The stored secret no longer parses (never expected: the API parses it before storing).
    #[error("the webhook's stored secret is invalid: {0}")]
    Secret(#[from] SecretError),
}

impl SignedRequest {
    /// Builds the request for `job` at `now` (the `webhook-timestamp`), with `body`, the
    /// event's envelope (built once per event: it is the same for every webhook).
    ///
    /// The previous secret signs beside the current one while its grace period lasts
    /// (`previous_secret_expires_at > now`), after it in `webhook-signature`, as the Standard
    /// Webhooks spec defines for rotation; `X-FDX-SC-Signature` has room for one signature
    /// only (FDX spec), so it carries the current secret's.
    ///
    /// `trace` is the attempt span's W3C context: `traceparent` (the publisher's trace id, the
    /// attempt as parent) and `tracestate` when there is one.
    pub fn prepare(
        job: &Job,
        body: Bytes,
        now: DateTime<Utc>,
        user_agent: &str,
        trace: &TraceContext,
    ) -> Result<SignedRequest, PrepareError> {
        let event = &job.event;
        let webhook = &job.webhook;
        let current = WebhookSecret::parse(&webhook.secret)?;
        let previous = match (&webhook.previous_secret, webhook.previous_secret_expires_at) {
            (Some(secret), Some(until)) if until > now => Some(WebhookSecret::parse(secret)?),
            _ => None,
        };
        let mut secrets = vec![&current];
        secrets.extend(previous.as_ref());
        let msg_id = event.id.to_string();
        let timestamp = now.timestamp();
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            ("user-agent", user_agent.to_owned()),
            ("x-fdx-sc-signature", fdx_signature(&current, &body)),
            (
                "webhook-signature",
                standard_webhooks_header(&secrets, &msg_id, timestamp, &body),
            ),
            ("webhook-id", msg_id),
            ("webhook-timestamp", timestamp.to_string()),
            ("traceparent", trace.traceparent.clone()),
        ];
        if let Some(state) = &trace.tracestate {
            headers.push(("tracestate", state.clone()));
        }
        Ok(SignedRequest {
            endpoint: webhook.endpoint.clone(),
            body,
            headers,
        })
    }

    /// The headers as a JSON object, for the attempt record. Signatures are not secrets (they
    /// are what the receiver sees); the secrets themselves never appear here.
    pub fn headers_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use hookline_domain::envelope_json;
    use hookline_store::{
        deliveries::{EventMeta, PENDING},
        models::{Delivery, Webhook},
    };
    use serde_json::value::RawValue;
    use uuid::Uuid;

    use super::*;

    fn job(previous: Option<(&str, DateTime<Utc>)>) -> Job {
        let now = Utc::now();
        let (webhook_id, event_id) = (Uuid::now_v7(), Uuid::now_v7());
        Job {
            delivery: Delivery {
                webhook_id,
                event_id,
                status: PENDING.into(),
                status_reason: None,
                attempt_count: 0,
                next_attempt_at: Some(now),
                leased_until: None,
                manual_retry: false,
                created: now,
                updated: now,
                attempting: true,
                lost_count: 0,
            },
            event: EventMeta {
                id: event_id,
                brand_id: "acme".into(),
                event_type: "RECEIPTS".into(),
                created: now,
                traceparent: None,
                tracestate: None,
            },
            webhook: Webhook {
                id: webhook_id,
                brand_id: "acme".into(),
                endpoint: "https://example.com/hook".into(),
                event_types: vec!["RECEIPTS".into()],
                enabled: true,
                secret: "top_secret_new".into(),
                previous_secret: previous.map(|(s, _)| s.to_owned()),
                previous_secret_expires_at: previous.map(|(_, t)| t),
                created: now,
                updated: now,
                health: "healthy".into(),
                health_reason: None,
                health_changed: None,
                consecutive_failures: 0,
                failing_since: None,
                last_success_at: None,
                last_failure_at: None,
                probe_interval_ms: None,
                next_probe_at: None,
                probe_event_id: None,
                release_at: None,
            },
        }
    }

    fn body(job: &Job) -> Bytes {
        let data = RawValue::from_string(r#"{"orderId":"42"}"#.into()).expect("raw");
        let e = &job.event;
        Bytes::from(envelope_json(
            e.id,
            &e.event_type,
            &e.brand_id,
            e.created,
            &data,
        ))
    }

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn trace(state: Option<&str>) -> TraceContext {
        TraceContext {
            traceparent: TRACEPARENT.into(),
            tracestate: state.map(str::to_owned),
        }
    }

    fn header<'a>(r: &'a SignedRequest, name: &str) -> &'a str {
        r.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    #[test]
    fn carries_the_contract_headers_and_body() {
        let now = Utc::now();
        let job = job(None);
        let r = SignedRequest::prepare(&job, body(&job), now, "Hookline-Test", &trace(None))
            .expect("prepare");
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(body["data"]["orderId"], "42");
        assert_eq!(body["brandId"], "acme");
        assert_eq!(header(&r, "content-type"), "application/json");
        assert_eq!(header(&r, "user-agent"), "Hookline-Test");
        assert_eq!(header(&r, "webhook-id"), job.event.id.to_string());
        assert_eq!(header(&r, "webhook-timestamp"), now.timestamp().to_string());
        assert_eq!(header(&r, "x-fdx-sc-signature").len(), 64);
        assert_eq!(header(&r, "webhook-signature").split(' ').count(), 1);
        assert!(!r.headers_json().to_string().contains("top_secret"));
        assert_eq!(header(&r, "traceparent"), TRACEPARENT);
        assert!(r.headers.iter().all(|(k, _)| *k != "tracestate"));
        assert_eq!(r.headers_json()["traceparent"], TRACEPARENT);
    }

    #[test]
    fn a_tracestate_is_passed_on() {
        let job = job(None);
        let r = SignedRequest::prepare(&job, body(&job), Utc::now(), "ua", &trace(Some("v=1")))
            .expect("prepare");
        assert_eq!(header(&r, "tracestate"), "v=1");
    }

    #[test]
    fn the_previous_secret_signs_only_during_its_grace_period() {
        let now = Utc::now();
        let during = job(Some(("top_secret_old", now + Duration::hours(1))));
        let r = SignedRequest::prepare(&during, body(&during), now, "ua", &trace(None))
            .expect("prepare");
        assert_eq!(header(&r, "webhook-signature").split(' ').count(), 2);

        let after = job(Some(("top_secret_old", now - Duration::seconds(1))));
        let r =
            SignedRequest::prepare(&after, body(&after), now, "ua", &trace(None)).expect("prepare");
        assert_eq!(header(&r, "webhook-signature").split(' ').count(), 1);
    }
}
