//! Logging setup: `tracing` to stdout, text or JSON (`log.format`), filtered by `RUST_LOG` or
//! `log.level`.

use hookline_config::LogSettings;
use tracing_subscriber::{fmt, EnvFilter};

pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = fmt().with_env_filter(filter).with_target(false);
    // `try_init`: a second call (tests starting several apps) is harmless.
    let _ = if settings.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
