//! What a brand's endpoint receives (DESIGN "Delivery contract"): the envelope bytes and the
//! headers that sign them. Pure: no I/O, so the contract is tested without a network.

use chrono::{DateTime, Utc};
use hookline_domain::{
    envelope_json,
    sign::{fdx_signature, standard_webhooks_header},
    SecretError, WebhookSecret,
};
use hookline_store::deliveries::Job;
use serde_json::value::RawValue;

/// A request ready to send: the exact bytes that were signed and the headers, in the order
/// they are sent (and recorded on the attempt).
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub endpoint: String,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The stored secret no longer parses (never expected: the API parses it before storing).
    #[error("the webhook's stored secret is invalid: {0}")]
    Secret(#[from] SecretError),
    #[error("the event payload cannot be serialised: {0}")]
    Payload(#[from] serde_json::Error),
}

impl SignedRequest {
    /// Builds the request for `job` at `now` (the `webhook-timestamp`).
    ///
    /// The previous secret signs beside the current one while its grace period lasts
    /// (`previous_secret_expires_at > now`), after it in `webhook-signature`, as the Standard
    /// Webhooks spec defines for rotation; `X-FDX-SC-Signature` has room for one signature
    /// only (FDX spec), so it carries the current secret's.
    pub fn prepare(
        job: &Job,
        now: DateTime<Utc>,
        user_agent: &str,
    ) -> Result<SignedRequest, PrepareError> {
        let event = &job.event;
        let webhook = &job.webhook;
        let data = RawValue::from_string(serde_json::to_string(&event.payload)?)?;
        let body = envelope_json(
            event.id,
            &event.event_type,
            &event.brand_id,
            event.created,
            &data,
        );
        let current = WebhookSecret::parse(&webhook.secret)?;
        let previous = match (&webhook.previous_secret, webhook.previous_secret_expires_at) {
            (Some(secret), Some(until)) if until > now => Some(WebhookSecret::parse(secret)?),
            _ => None,
        };
        let mut secrets = vec![&current];
        secrets.extend(previous.as_ref());
        let msg_id = event.id.to_string();
        let timestamp = now.timestamp();
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            ("user-agent", user_agent.to_owned()),
            ("x-fdx-sc-signature", fdx_signature(&current, &body)),
            (
                "webhook-signature",
                standard_webhooks_header(&secrets, &msg_id, timestamp, &body),
            ),
            ("webhook-id", msg_id),
            ("webhook-timestamp", timestamp.to_string()),
        ];
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
    use hookline_store::{
        deliveries::PENDING,
        models::{Delivery, Event, Webhook},
    };
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
            },
            event: Event {
                id: event_id,
                brand_id: "acme".into(),
                event_type: "RECEIPTS".into(),
                payload: serde_json::json!({"orderId": "42"}),
                created: now,
                idempotency_key: None,
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
            },
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
        let r = SignedRequest::prepare(&job, now, "Hookline-Test").expect("prepare");
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
    }

    #[test]
    fn the_previous_secret_signs_only_during_its_grace_period() {
        let now = Utc::now();
        let during = job(Some(("top_secret_old", now + Duration::hours(1))));
        let r = SignedRequest::prepare(&during, now, "ua").expect("prepare");
        assert_eq!(header(&r, "webhook-signature").split(' ').count(), 2);

        let after = job(Some(("top_secret_old", now - Duration::seconds(1))));
        let r = SignedRequest::prepare(&after, now, "ua").expect("prepare");
        assert_eq!(header(&r, "webhook-signature").split(' ').count(), 1);
    }
}
