//! Observability set-up shared by `hookline-api` and `hookline-worker` (and both at once, when
//! they run in one process):
//!
//! - [`init`]: `tracing` to stdout, text or JSON (`log.format`), filtered by `RUST_LOG` or
//!   `log.level`; and Hookline's spans to OpenTelemetry ([`trace`]), exported over OTLP only
//!   when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set;
//! - [`trace`]: W3C trace context, continued from the publisher's `traceparent` at ingest and
//!   sent on every webhook request;
//! - [`metrics()`]: the process-wide Prometheus recorder behind the `metrics` macros, rendered at
//!   each process's `GET /metrics` (the API's admin listener, the worker's `worker.http_bind`).
//!   Metric names are listed in [`names`].

use std::{sync::OnceLock, time::Duration};

use hookline_config::LogSettings;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tracing_subscriber::{
    fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _, EnvFilter, Layer as _,
};

mod export;
pub mod trace;

/// What [`init`] set up that must be stopped on exit: the span exporter, if there is one.
/// Dropping it (or [`Telemetry::shutdown`]) exports the spans still buffered, waiting up to
/// 5 s; without an exporter it does nothing.
#[derive(Debug)]
#[must_use = "dropping it stops the span export; keep it until the process exits"]
pub struct Telemetry {
    traces: Option<trace::Exporting>,
}

impl Telemetry {
    /// Exports what is still buffered and stops the exporter (also done on drop).
    pub fn shutdown(mut self) {
        if let Some(traces) = self.traces.take() {
            traces.shutdown();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(traces) = self.traces.take() {
            traces.shutdown();
        }
    }
}

/// Installs the process's `tracing` subscriber: logs as `log` says, and Hookline's spans to
/// OpenTelemetry under the service name `OTEL_SERVICE_NAME` or else `service` (see [`trace`]).
/// A second call in the same process (tests starting several apps, API + worker in one
/// process) keeps the first subscriber and returns a `Telemetry` with nothing to stop.
pub fn init(log: &LogSettings, service: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let logs = if log.format == "json" {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_target(false)
            .boxed()
    } else {
        fmt::layer().with_target(false).boxed()
    };
    let (spans, traces) = trace::layer(service);
    let installed = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(spans)
        .try_init()
        .is_ok();
    let traces = match traces {
        Ok(traces) => traces,
        Err(e) => {
            tracing::warn!(error = %e, "spans are not exported");
            None
        }
    };
    match traces {
        Some(traces) if installed => {
            trace::set_exporting();
            tracing::info!(
                service = traces.service(),
                "exporting spans over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT)"
            );
            Telemetry {
                traces: Some(traces),
            }
        }
        Some(traces) => {
            traces.shutdown();
            Telemetry { traces: None }
        }
        None => Telemetry { traces: None },
    }
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
    /// Gauge: requests one worker has in flight, by `host` (`host:port` of the endpoints; never
    /// the URL, whose path or query may hold a token).
    pub const IN_FLIGHT: &str = "hookline_in_flight_requests";
    /// Gauge: webhooks by health `state` (healthy, degraded, disabled).
    pub const ENDPOINTS: &str = "hookline_endpoints";
    /// Counter: endpoint health transitions, by the state entered (`to`).
    pub const ENDPOINT_TRANSITIONS: &str = "hookline_endpoint_transitions_total";
    /// Gauge: deliveries parked (endpoint degraded or disabled, or a poison delivery).
    pub const PARKED_DELIVERIES: &str = "hookline_parked_deliveries";
    /// Counter: parked deliveries released after their endpoint recovered.
    pub const PARKED_RELEASED: &str = "hookline_parked_released_total";
    /// Counter: deliveries deferred by a worker because their brand's or host's budget was
    /// full or their bytes would not fit (handed back to Postgres, no attempt consumed).
    pub const DEFERRED: &str = "hookline_deferred_total";
    /// Counter: rows the retention purge deleted, by `table` (events, deliveries, attempts).
    pub const RETENTION_DELETED: &str = "hookline_retention_deleted_rows_total";
    /// Gauge (seconds): age of the oldest event still stored.
    pub const OLDEST_EVENT_AGE: &str = "hookline_oldest_event_age_seconds";
    /// Gauge: bulk recovery jobs by `state` (RUNNING, DONE, CANCELLED, FAILED).
    pub const RECOVERIES: &str = "hookline_recoveries";
    /// Counter: deliveries requeued by bulk recovery jobs.
    pub const RECOVERY_REQUEUED: &str = "hookline_recovery_requeued_total";
}

/// Latency buckets (seconds) from 1 ms to 1 min.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A gauge series nobody has set for this long is dropped from the page: a host the worker
/// no longer delivers to stops being reported instead of staying forever at 0. Every gauge
/// Hookline refreshes periodically is refreshed far more often than this.
pub const GAUGE_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How often histogram samples are folded into their buckets, scraped or not (the exporter
/// buffers them until then).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process-wide recorder, installed on first call; later calls share it.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE_TIMEOUT))
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let upkeep = handle.clone();
        // A plain thread: this crate runs under no particular async runtime, and the work is
        // a few microseconds every few seconds.
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            });
        // Fails only if another recorder was installed first; metrics then go there and this
        // handle renders an empty page rather than taking the process down.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
