//! The `hookline-api` command line: `serve` (default), `migrate`, `token`.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
use hookline_config::{ExposeSecret, Settings};

use crate::{
    auth::{self, Brands},
    startup::{self, Application},
    telemetry,
};

#[derive(Debug, Parser)]
#[command(name = "hookline-api", version, about = "Hookline webhook API server")]
pub struct Cli {
    /// Configuration file (TOML); also `HOOKLINE_CONFIG`. Environment variables
    /// `HOOKLINE__SECTION__KEY` override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (the default).
    Serve,
    /// Create the database if missing and apply pending migrations, then exit.
    Migrate,
    /// Print a bearer token signed with the configured HS256 secret (local use).
    Token {
        /// Brand the token may act for; repeat for several, or `*` for all.
        #[arg(long = "brand", required = true)]
        brands: Vec<String>,
        /// Scope to grant; repeat for several. Default: manage webhooks and publish events.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime, e.g. `1h`, `30m`, `7d`.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// `sub` claim.
        #[arg(long)]
        subject: Option<String>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            telemetry::init(&settings.log);
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
            tracing::info!("hookline-api stopped");
        }
        Command::Migrate => {
            telemetry::init(&settings.log);
            startup::prepare_database(&settings, settings.database.create_if_missing).await?;
            tracing::info!("migrations applied");
        }
        Command::Token {
            brands,
            scopes,
            ttl,
            subject,
        } => {
            let secret = settings.auth.hs256_secret.expose_secret();
            anyhow::ensure!(
                !secret.is_empty(),
                "auth.hs256_secret is empty: cannot mint tokens"
            );
            let brands = if brands.iter().any(|b| b == "*") {
                Brands::All(auth::AllBrands::All)
            } else {
                Brands::List(brands)
            };
            let scopes = if scopes.is_empty() {
                vec![
                    auth::SCOPE_WEBHOOKS.to_owned(),
                    auth::SCOPE_PUBLISH.to_owned(),
                ]
            } else {
                scopes
            };
            println!(
                "{}",
                auth::mint_hs256(secret, brands, &scopes, ttl, subject)?
            );
        }
    }
    Ok(())
}
