//! `hookline-worker`: loads settings, then runs the worker until SIGTERM or ctrl-c.

use std::path::PathBuf;

use clap::Parser;
use hookline_config::Settings;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(version, about = "Hookline delivery worker")]
struct Cli {
    /// Configuration file (otherwise HOOKLINE_CONFIG, then built-in defaults).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    // Dropped last, on every way out: exports the spans still buffered.
    let _telemetry =
        hookline_worker::telemetry::init(&settings.log, hookline_worker::telemetry::SERVICE);
    let shutdown = CancellationToken::new();
    tokio::spawn(hookline_worker::cancel_on_signal(shutdown.clone()));
    hookline_worker::Worker::build(settings)
        .await?
        .run_until_stopped(shutdown)
        .await;
    Ok(())
}
