//! The Hookline API as the benchmark uses it: a token minted with the configured HS256 secret,
//! webhooks created and deleted, events published one per request or in batches.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, PoisonError,
    },
    time::Duration,
};

use anyhow::{bail, Context as _};
use hdrhistogram::Histogram;
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::{header, Client, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{stats, unix_nanos};

/// Manages webhooks (the flexEngage spec's scope).
pub const SCOPE_WEBHOOKS: &str = "flexengage.gateway/order.events.create";
/// Publishes events.
pub const SCOPE_PUBLISH: &str = "flexengage.gateway/events.publish";
/// The type of every published event: a leaf under `ORDER_EVENTS.OMS`.
pub const EVENT_TYPE: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    iat: u64,
    scope: String,
    brands: [&'a str; 1],
}

/// An HS256 token for `brand` with both scopes, valid for `ttl`.
pub fn mint_token(secret: &str, brand: &str, ttl: Duration) -> anyhow::Result<String> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: "hookline-bench",
        exp: now + ttl.as_secs(),
        iat: now,
        scope: format!("{SCOPE_WEBHOOKS} {SCOPE_PUBLISH}"),
        brands: [brand],
    };
    Ok(encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// The one client of a run: HTTP/1.1 only, keep-alive pool, no proxy, `TCP_NODELAY`.
pub fn client(pool: usize) -> anyhow::Result<Client> {
    Ok(Client::builder()
        .http1_only()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(pool.max(1))
        .pool_idle_timeout(Duration::from_secs(90))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// The subscriptions of webhook `k`: cycling leaf, its group, the root group, so that K
/// webhooks overlap and every one of them matches [`EVENT_TYPE`] exactly once.
pub fn subscriptions(k: usize) -> Vec<&'static str> {
    match k % 3 {
        0 => vec![EVENT_TYPE],
        1 => vec!["ORDER_EVENTS.OMS"],
        _ => vec!["ORDER_EVENTS"],
    }
}

#[derive(Debug, Clone)]
pub struct Api {
    pub client: Client,
    pub base: String,
    pub brand: String,
    pub token: String,
}

/// A webhook the run created.
#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    pub id: String,
    pub secret: String,
}

impl Api {
    fn url(&self, rest: &str) -> String {
        format!(
            "{}/v1/{}{rest}",
            self.base.trim_end_matches('/'),
            self.brand
        )
    }

    /// `POST /v1/{brand}/webhooks` → 201 with the id and signing secret.
    pub async fn create_webhook(&self, endpoint: &str, events: &[&str]) -> anyhow::Result<Created> {
        let res = self
            .client
            .post(self.url("/webhooks"))
            .bearer_auth(&self.token)
            .json(&json!({"endpoint": endpoint, "events": events}))
            .send()
            .await
            .with_context(|| format!("POST {}", self.url("/webhooks")))?;
        let status = res.status();
        let text = res.text().await?;
        if status != StatusCode::CREATED {
            bail!("creating a webhook for {endpoint}: {status} {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("webhook creation answer {text}"))
    }

    /// `DELETE /v1/{brand}/webhooks/{id}` → 204.
    pub async fn delete_webhook(&self, id: &str) -> anyhow::Result<()> {
        let res = self
            .client
            .delete(self.url(&format!("/webhooks/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = res.status();
        if status != StatusCode::NO_CONTENT {
            bail!("deleting webhook {id}: {status} {}", res.text().await?);
        }
        Ok(())
    }
}

/// `data` of event `seq`: its send time (unix ns) and sequence number, plus an order id.
pub fn event_data(seq: u64, sent_ns: u64) -> Value {
    json!({"seq": seq, "sentNs": sent_ns, "orderId": format!("bench-{seq}")})
}

/// What publishing did.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub requests: u64,
    pub events_accepted: u64,
    /// Sum of the `deliveries` the API answered.
    pub api_deliveries: u64,
    /// Events whose `deliveries` was not the number of webhooks.
    pub fanout_mismatches: u64,
    /// 429 or 503 answers (retried after `Retry-After`).
    pub throttled: u64,
    /// Requests that failed (not retried): their events are not expected.
    pub errors: u64,
    pub problems: Vec<String>,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    /// Latency of the accepted requests, as the client saw it.
    pub api_latency: stats::Summary,
}

/// Publishes events `0..events`, `batch` per request (0: one per request, `POST …/events`).
#[derive(Debug)]
pub struct Publisher {
    api: Api,
    events: u64,
    batch: u64,
    webhooks: u64,
    deadline: tokio::time::Instant,
    pub accepted: AtomicU64,
    requests: AtomicU64,
    api_deliveries: AtomicU64,
    fanout_mismatches: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    first_send_ns: AtomicU64,
    last_done_ns: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    problems: Mutex<Vec<String>>,
}

const MAX_PROBLEMS: usize = 10;

impl Publisher {
    pub fn new(
        api: Api,
        events: u64,
        batch: u64,
        webhooks: u64,
        deadline: tokio::time::Instant,
    ) -> Self {
        Self {
            api,
            events,
            batch,
            webhooks,
            deadline,
            accepted: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            api_deliveries: AtomicU64::new(0),
            fanout_mismatches: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_send_ns: AtomicU64::new(u64::MAX),
            last_done_ns: AtomicU64::new(0),
            latency: Mutex::new(stats::histogram()),
            problems: Mutex::new(Vec::new()),
        }
    }

    /// How many requests publish every event.
    pub fn units(&self) -> u64 {
        match self.batch {
            0 => self.events,
            b => self.events.div_ceil(b),
        }
    }

    /// Unix ns of the first request sent (`None` before any).
    pub fn first_send_ns(&self) -> Option<u64> {
        Some(self.first_send_ns.load(Ordering::Relaxed)).filter(|&t| t != u64::MAX)
    }

    fn problem(&self, text: String) {
        let mut problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        if problems.len() < MAX_PROBLEMS {
            problems.push(text);
        }
    }

    /// Sends request `unit` (one event, or one batch), retrying 429 and 503 until the deadline.
    pub async fn send(&self, unit: u64) {
        let (first, count, path) = match self.batch {
            0 => (unit, 1, "/events"),
            b => (unit * b, b.min(self.events - unit * b), "/events/batch"),
        };
        loop {
            let sent_ns = unix_nanos();
            let body = if self.batch == 0 {
                json!({"type": EVENT_TYPE, "data": event_data(first, sent_ns)})
            } else {
                let events: Vec<Value> = (first..first + count)
                    .map(|seq| json!({"type": EVENT_TYPE, "data": event_data(seq, sent_ns)}))
                    .collect();
                json!({ "events": events })
            };
            self.first_send_ns.fetch_min(sent_ns, Ordering::Relaxed);
            self.requests.fetch_add(1, Ordering::Relaxed);
            let result = self
                .api
                .client
                .post(self.api.url(path))
                .bearer_auth(&self.api.token)
                .json(&body)
                .send()
                .await;
            let res = match result {
                Ok(res) => res,
                Err(e) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    self.problem(format!("POST {path}: {e}"));
                    return;
                }
            };
            let status = res.status();
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                let wait = res
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, 5);
                if tokio::time::Instant::now() + Duration::from_secs(wait) > self.deadline {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    self.problem(format!("POST {path}: still {status} at the deadline"));
                    return;
                }
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let text = res.text().await.unwrap_or_default();
            let done_ns = unix_nanos();
            if status != StatusCode::ACCEPTED {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.problem(format!("POST {path}: {status} {text}"));
                return;
            }
            let deliveries = match parse_deliveries(&text, self.batch > 0) {
                Some(d) if d.len() as u64 == count => d,
                _ => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    self.problem(format!("POST {path}: unexpected answer {text}"));
                    return;
                }
            };
            stats::record_nanos(
                &mut self.latency.lock().unwrap_or_else(PoisonError::into_inner),
                done_ns.saturating_sub(sent_ns),
            );
            self.last_done_ns.fetch_max(done_ns, Ordering::Relaxed);
            let mismatches = deliveries.iter().filter(|&&d| d != self.webhooks).count() as u64;
            self.fanout_mismatches
                .fetch_add(mismatches, Ordering::Relaxed);
            self.api_deliveries
                .fetch_add(deliveries.iter().sum(), Ordering::Relaxed);
            self.accepted.fetch_add(count, Ordering::Relaxed);
            return;
        }
    }

    pub fn report(&self) -> IngestReport {
        let accepted = self.accepted.load(Ordering::Relaxed);
        let elapsed_s = match self.first_send_ns() {
            Some(first) => {
                self.last_done_ns
                    .load(Ordering::Relaxed)
                    .saturating_sub(first) as f64
                    / 1e9
            }
            None => 0.0,
        };
        IngestReport {
            requests: self.requests.load(Ordering::Relaxed),
            events_accepted: accepted,
            api_deliveries: self.api_deliveries.load(Ordering::Relaxed),
            fanout_mismatches: self.fanout_mismatches.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            problems: self
                .problems
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            elapsed_s,
            events_per_s: stats::per_second(accepted, elapsed_s),
            api_latency: stats::Summary::of(
                &self.latency.lock().unwrap_or_else(PoisonError::into_inner),
            ),
        }
    }
}

/// The `deliveries` of each event of a 202: `{"deliveries": n}`, or for a batch
/// `{"events": [{"id", "deliveries"}, …]}`.
pub fn parse_deliveries(text: &str, batch: bool) -> Option<Vec<u64>> {
    let value: Value = serde_json::from_str(text).ok()?;
    if batch {
        value
            .get("events")?
            .as_array()?
            .iter()
            .map(|e| e.get("deliveries")?.as_u64())
            .collect()
    } else {
        Some(vec![value.get("deliveries")?.as_u64()?])
    }
}
