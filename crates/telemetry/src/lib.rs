//! Observability set-up shared by `hookline-api` and `hookline-worker` (and both at once, when
//! they run in one process):
//!
//! - [`init_logs`]: `tracing` to stdout, text or JSON (`log.format`), filtered by `RUST_LOG` or
//!   `log.level`;
//! - [`metrics()`]: the process-wide Prometheus recorder behind the `metrics` macros, rendered at
//!   each process's `GET /metrics`. Metric names are listed in [`names`].

use std::sync::OnceLock;

use hookline_config::LogSettings;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, EnvFilter};

pub fn init_logs(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = fmt().with_env_filter(filter).with_target(false);
    // `try_init`: a second call (tests starting several apps, API + worker in one process) keeps
    // the first subscriber.
    let _ = if settings.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Every metric Hookline records.
pub mod names {
    /// Counter: API requests, by `route` (the route pattern) and `status`.
    pub const HTTP_REQUESTS: &str = "hookline_http_requests_total";
    /// Histogram (seconds): API request duration, by `route`.
    pub const HTTP_DURATION: &str = "hookline_http_request_duration_seconds";
    /// Counter: events accepted by ingest.
    pub const EVENTS_INGESTED: &str = "hookline_events_ingested_total";
    /// Counter: deliveries created by ingest.
    pub const DELIVERIES_CREATED: &str = "hookline_deliveries_created_total";
    /// Counter: attempts and final states, by `outcome` (success, retry, failure, dropped…).
    pub const DELIVERY_OUTCOMES: &str = "hookline_delivery_outcomes_total";
    /// Histogram (seconds): one attempt's HTTP request, from send to response.
    pub const ATTEMPT_DURATION: &str = "hookline_attempt_duration_seconds";
    /// Histogram (seconds): event created to its first attempt's start.
    pub const FIRST_ATTEMPT_LAG: &str = "hookline_publish_to_first_attempt_seconds";
    /// Gauge: deliveries due now but not yet handed out.
    pub const DELIVERIES_DUE: &str = "hookline_deliveries_due";
    /// Gauge: requests in flight, by `endpoint` (host).
    pub const IN_FLIGHT: &str = "hookline_in_flight_requests";
}

/// Latency buckets (seconds) from 1 ms to 1 min.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process-wide recorder, installed on first call; later calls share it.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; metrics then go there and this
        // handle renders an empty page rather than taking the process down.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
