//! `--raw`: the HTTP ceiling of this machine. Posts delivery-shaped, signed bodies straight to
//! the benchmark's own receiver with the same client settings and pace as the pipeline run,
//! so nothing but the client, the receiver and the loopback stack is measured.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex, PoisonError,
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use hdrhistogram::Histogram;
use reqwest::{header, Client, StatusCode};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::{api, sign, stats, unix_nanos};

/// The secret that signs raw requests (a `whsec_` one, like the API generates).
pub fn raw_secret() -> String {
    format!("whsec_{}", STANDARD.encode([42u8; 24]))
}

#[derive(Debug, Clone, Serialize)]
pub struct RawReport {
    pub requests: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub requests_per_s: f64,
    /// Round trip as the client saw it.
    pub latency: stats::Summary,
}

#[derive(Debug)]
pub struct RawSender {
    client: Client,
    url: String,
    secret: String,
    pub done: AtomicU64,
    errors: AtomicU64,
    first_send_ns: AtomicU64,
    last_done_ns: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

impl RawSender {
    pub fn new(client: Client, url: String) -> Self {
        Self {
            client,
            url,
            secret: raw_secret(),
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_send_ns: AtomicU64::new(u64::MAX),
            last_done_ns: AtomicU64::new(0),
            latency: Mutex::new(stats::histogram()),
        }
    }

    /// One delivery-shaped request, signed as Hookline signs.
    pub async fn send(&self, seq: u64) {
        let sent_ns = unix_nanos();
        let id = Uuid::now_v7().to_string();
        let timestamp = (sent_ns / 1_000_000_000).to_string();
        let body = json!({
            "id": id,
            "type": api::EVENT_TYPE,
            "brandId": "raw",
            "created": timestamp,
            "data": api::event_data(seq, sent_ns),
        })
        .to_string()
        .into_bytes();
        let (fdx, standard) = match sign::sign(&self.secret, &id, &timestamp, &body) {
            Ok(signatures) => signatures,
            Err(_) => unreachable!("raw_secret is valid base64"),
        };
        self.first_send_ns.fetch_min(sent_ns, Ordering::Relaxed);
        let result = self
            .client
            .post(&self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", &timestamp)
            .header("webhook-signature", standard)
            .header("x-fdx-sc-signature", fdx)
            .body(body)
            .send()
            .await;
        let ok = match result {
            Ok(res) => res.status() == StatusCode::NO_CONTENT && res.bytes().await.is_ok(),
            Err(_) => false,
        };
        let done_ns = unix_nanos();
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        stats::record_nanos(
            &mut self.latency.lock().unwrap_or_else(PoisonError::into_inner),
            done_ns.saturating_sub(sent_ns),
        );
        self.last_done_ns.fetch_max(done_ns, Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn report(&self) -> RawReport {
        let done = self.done.load(Ordering::Relaxed);
        let first = self.first_send_ns.load(Ordering::Relaxed);
        let elapsed_s = if first == u64::MAX {
            0.0
        } else {
            self.last_done_ns
                .load(Ordering::Relaxed)
                .saturating_sub(first) as f64
                / 1e9
        };
        RawReport {
            requests: done,
            errors: self.errors.load(Ordering::Relaxed),
            elapsed_s,
            requests_per_s: stats::per_second(done, elapsed_s),
            latency: stats::Summary::of(
                &self.latency.lock().unwrap_or_else(PoisonError::into_inner),
            ),
        }
    }
}
