//! What a brand's endpoint receives (docs/architecture.md, "Delivery contract"): the envelope bytes and the
//! headers that sign them. Pure: no I/O, so the contract is tested without a network.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hookline_domain::{
    sign::{fdx_signature, standard_webhooks_header},
    Keyring, OpenError,
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
    /// The stored secret does not open: its key is not in `secrets.keys` (removed before
    /// `secrets rotate-key` moved the row off it), or the row was altered. Never expected to be
    /// invalid otherwise: the API parses a secret before storing it.
    #[error("the webhook's stored secret: {0}")]
    Secret(#[from] OpenError),
}

impl SignedRequest {
    /// Builds the request for `job` at `now` (the `webhook-timestamp`), with `body`, the
    /// event's envelope (built once per event: it is the same for every webhook). The
    /// webhook's secrets are opened with `keyring` here, just before signing, and dropped with
    /// the request's preparation.
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
        keyring: &Keyring,
        body: Bytes,
        now: DateTime<Utc>,
        user_agent: &str,
        trace: &TraceContext,
    ) -> Result<SignedRequest, PrepareError> {
        let event = &job.event;
        let webhook = &job.webhook;
        let current = webhook.secret.open(keyring, webhook.id)?;
        let previous = match (&webhook.previous_secret, webhook.previous_secret_expires_at) {
            (Some(secret), Some(until)) if until > now => Some(secret.open(keyring, webhook.id)?),
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
    use hookline_domain::{sign, WebhookSecret};
    use hookline_store::{
        deliveries::{EventMeta, PENDING},
        models::{Delivery, StoredSecret, Webhook},
    };
    use serde_json::value::RawValue;
    use uuid::Uuid;

    use super::*;

    fn job(previous: Option<(&str, DateTime<Utc>)>) -> Job {
        job_sealed_by(&Keyring::dev(), previous)
    }

    fn seal(keyring: &Keyring, id: Uuid, secret: &str) -> StoredSecret {
        StoredSecret::seal(keyring, id, &WebhookSecret::parse(secret).expect("valid"))
    }

    fn job_sealed_by(keyring: &Keyring, previous: Option<(&str, DateTime<Utc>)>) -> Job {
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
                secret: seal(keyring, webhook_id, "top_secret_new"),
                previous_secret: previous.map(|(s, _)| seal(keyring, webhook_id, s)),
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
        let r = SignedRequest::prepare(
            &job,
            &Keyring::dev(),
            body(&job),
            now,
            "Hookline-Test",
            &trace(None),
        )
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
        let r = SignedRequest::prepare(
            &job,
            &Keyring::dev(),
            body(&job),
            Utc::now(),
            "ua",
            &trace(Some("v=1")),
        )
        .expect("prepare");
        assert_eq!(header(&r, "tracestate"), "v=1");
    }

    #[test]
    fn the_previous_secret_signs_only_during_its_grace_period() {
        let now = Utc::now();
        let during = job(Some(("top_secret_old", now + Duration::hours(1))));
        let r = SignedRequest::prepare(
            &during,
            &Keyring::dev(),
            body(&during),
            now,
            "ua",
            &trace(None),
        )
        .expect("prepare");
        assert_eq!(header(&r, "webhook-signature").split(' ').count(), 2);

        let after = job(Some(("top_secret_old", now - Duration::seconds(1))));
        let r = SignedRequest::prepare(
            &after,
            &Keyring::dev(),
            body(&after),
            now,
            "ua",
            &trace(None),
        )
        .expect("prepare");
        assert_eq!(header(&r, "webhook-signature").split(' ').count(), 1);
    }

    fn ring(active: &str, keys: &[(&str, u8)]) -> Keyring {
        use base64::Engine as _;
        let keys: Vec<String> = keys
            .iter()
            .map(|(id, b)| {
                format!(
                    "{id}:{}",
                    base64::engine::general_purpose::STANDARD.encode([*b; 32])
                )
            })
            .collect();
        Keyring::parse(active, &keys.join(",")).expect("ring")
    }

    #[test]
    fn sealed_secrets_sign_exactly_as_the_plain_secret_would() {
        let now = Utc::now();
        let old_key = ring("k1", &[("k1", 1)]);
        let job = job_sealed_by(&old_key, Some(("top_secret_old", now + Duration::hours(1))));
        // After a key rotation the old key still opens what it sealed.
        let rotated = ring("k2", &[("k2", 2), ("k1", 1)]);
        for keyring in [&old_key, &rotated] {
            let r = SignedRequest::prepare(&job, keyring, body(&job), now, "ua", &trace(None))
                .expect("prepare");
            let current = WebhookSecret::parse("top_secret_new").expect("valid");
            let previous = WebhookSecret::parse("top_secret_old").expect("valid");
            assert_eq!(
                header(&r, "x-fdx-sc-signature"),
                sign::fdx_signature(&current, &r.body)
            );
            assert_eq!(
                header(&r, "webhook-signature"),
                sign::standard_webhooks_header(
                    &[&current, &previous],
                    &job.event.id.to_string(),
                    now.timestamp(),
                    &r.body
                )
            );
        }
    }

    #[test]
    fn a_secret_under_a_missing_key_is_a_clear_error() {
        let now = Utc::now();
        let job = job_sealed_by(&ring("k1", &[("k1", 1)]), None);
        let err = SignedRequest::prepare(
            &job,
            &ring("k2", &[("k2", 2)]),
            body(&job),
            now,
            "ua",
            &trace(None),
        )
        .expect_err("k1 is missing");
        assert!(matches!(&err, PrepareError::Secret(OpenError::UnknownKey(k)) if k == "k1"));
        assert!(err.to_string().contains("`k1`"), "{err}");
    }
}
