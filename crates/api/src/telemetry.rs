//! Logging and tracing set-up lives in `hookline-telemetry`, shared with the worker.

pub use hookline_telemetry::{init, Telemetry};

/// The service name spans are exported under, unless `OTEL_SERVICE_NAME` says otherwise.
pub const SERVICE: &str = "hookline-api";
