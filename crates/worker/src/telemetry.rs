//! Logging set-up lives in `hookline-telemetry`, shared with the API.

pub use hookline_telemetry::init_logs as init;
