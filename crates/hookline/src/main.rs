//! `hookline`: the API and a worker in one process (see the crate docs).

use std::path::PathBuf;

use clap::Parser;
use hookline_config::Settings;

#[derive(Debug, Parser)]
#[command(version, about = "Hookline API and delivery worker in one process")]
struct Cli {
    /// Configuration file (TOML); also `HOOKLINE_CONFIG`. `HOOKLINE__SECTION__KEY` overrides it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    // Dropped last, on every way out: exports the spans still buffered.
    let _telemetry = hookline_telemetry::init(&settings.log, "hookline");
    hookline::run(settings).await
}
