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
    hookline_telemetry::init_logs(&settings.log);
    hookline::run(settings).await
}
