//! Rows as Rust types.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use hookline_domain::{DeliveryStatus, Health, HealthState};
use uuid::Uuid;

use crate::schema::{attempts, deliveries, events, webhooks};
pub use crate::secrets::StoredSecret;

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = webhooks, check_for_backend(diesel::pg::Pg))]
pub struct Webhook {
    pub id: Uuid,
    pub brand_id: String,
    pub endpoint: String,
    /// Normalised subscriptions (leaves or groups of the event-type tree).
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Sealed under a key of the ring (see [`StoredSecret`]); `Debug` never shows it.
    pub secret: StoredSecret,
    pub previous_secret: Option<StoredSecret>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// The endpoint's health (`healthy`, `degraded`, `disabled`); see [`Webhook::health`].
    pub health: String,
    pub health_reason: Option<String>,
    pub health_changed: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub probe_interval_ms: Option<i64>,
    pub next_probe_at: Option<DateTime<Utc>>,
    pub probe_event_id: Option<Uuid>,
    pub release_at: Option<DateTime<Utc>>,
}

impl Webhook {
    /// The stored health as the domain's machine reads it. A value the machine does not know
    /// (never written by this version) reads as healthy rather than failing every read.
    pub fn health(&self) -> Health {
        health_of(
            &self.health,
            self.health_reason.as_deref(),
            self.consecutive_failures,
            self.failing_since,
            self.probe_interval_ms,
            self.next_probe_at,
        )
    }

    pub fn health_state(&self) -> HealthState {
        self.health.parse().unwrap_or(HealthState::Healthy)
    }
}

/// A webhook's health columns as the domain's machine reads them. A value the machine does not
/// know (never written by this version) reads as healthy rather than failing every read.
pub(crate) fn health_of(
    state: &str,
    reason: Option<&str>,
    consecutive_failures: i32,
    failing_since: Option<DateTime<Utc>>,
    probe_interval_ms: Option<i64>,
    next_probe_at: Option<DateTime<Utc>>,
) -> Health {
    Health {
        state: state.parse().unwrap_or(HealthState::Healthy),
        reason: reason.and_then(|r| r.parse().ok()),
        consecutive_failures: u32::try_from(consecutive_failures).unwrap_or(0),
        failing_since,
        probe_interval: probe_interval_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(std::time::Duration::from_millis),
        next_probe_at,
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = webhooks)]
pub struct NewWebhook<'a> {
    pub id: Uuid,
    pub brand_id: &'a str,
    pub endpoint: &'a str,
    pub event_types: &'a [String],
    pub enabled: bool,
    /// Sealed for this webhook's `id` ([`StoredSecret::seal`]).
    pub secret: StoredSecret,
}

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    pub id: Uuid,
    pub brand_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub created: DateTime<Utc>,
    pub idempotency_key: Option<String>,
    /// When the payload was erased (a data-protection request); its deliveries are then final.
    pub erased: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub brand_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a serde_json::Value,
    pub idempotency_key: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = deliveries, check_for_backend(diesel::pg::Pg))]
pub struct Delivery {
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub status: String,
    pub status_reason: Option<String>,
    pub attempt_count: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub leased_until: Option<DateTime<Utc>>,
    pub manual_retry: bool,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub attempting: bool,
    pub lost_count: i32,
}

impl Delivery {
    /// The stored status as the lifecycle's enum (the CHECK constraint allows no other).
    pub fn status(&self) -> DeliveryStatus {
        self.status.parse().unwrap_or(DeliveryStatus::Pending)
    }
}

#[derive(Clone, Debug, PartialEq, Queryable, Selectable)]
#[diesel(table_name = attempts, check_for_backend(diesel::pg::Pg))]
pub struct Attempt {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub created: DateTime<Utc>,
    pub status: String,
    pub request_endpoint: String,
    pub request_headers: serde_json::Value,
    pub response_status_code: Option<i32>,
    pub response_headers: Option<serde_json::Value>,
    pub response_body: Option<String>,
    pub response_time_ms: i32,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = attempts)]
pub struct NewAttempt {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub created: DateTime<Utc>,
    pub status: String,
    pub request_endpoint: String,
    pub request_headers: serde_json::Value,
    pub response_status_code: Option<i32>,
    pub response_headers: Option<serde_json::Value>,
    pub response_body: Option<String>,
    pub response_time_ms: i32,
    pub error: Option<String>,
}
