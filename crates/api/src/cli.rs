//! The `hookline-api` command line: `serve` (default), `migrate`, `token`, `secrets`,
//! `portal-link`.

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
        /// Scope to add to the default one (managing webhooks); repeat for several. `publish`
        /// is short for the events-publish scope, which belongs to producers; `manage` for the
        /// default; any other value is taken as a scope string.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime, e.g. `1h`, `30m`, `7d`.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// `sub` claim.
        #[arg(long)]
        subject: Option<String>,
    },
    /// Print a one-time sign-in link to the brand portal (`/portal/`) for one brand.
    PortalLink {
        /// The brand the link signs in as.
        #[arg(long)]
        brand: String,
        /// How long the link stays usable (once), e.g. `15m`; `portal.link_ttl` by default.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
    },
    /// Webhook secrets at rest (`[secrets]`).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every webhook secret not under `secrets.active_key`, in batches, and print
    /// how many webhooks each key still holds. Run it once every process has the new active
    /// key; remove an old key from `secrets.keys` only when it holds none.
    RotateKey {
        /// Webhooks re-encrypted per transaction.
        #[arg(long, default_value_t = crate::secrets::BATCH)]
        batch: u32,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // Dropped last, on every way out: exports the spans still buffered.
            let _telemetry = telemetry::init(&settings.log, telemetry::SERVICE);
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
            tracing::info!("hookline-api stopped");
        }
        Command::Migrate => {
            let _telemetry = telemetry::init(&settings.log, telemetry::SERVICE);
            startup::prepare_database(&settings, settings.database.create_if_missing).await?;
            let keyring = settings.secrets.keyring()?;
            crate::secrets::seal_plaintext(&startup::build_pool(&settings)?, &keyring).await?;
            tracing::info!("migrations applied");
        }
        Command::Secrets {
            command: SecretsCommand::RotateKey { batch },
        } => {
            let _telemetry = telemetry::init(&settings.log, telemetry::SERVICE);
            crate::secrets::rotate_key(&settings, batch).await?;
        }
        Command::PortalLink { brand, ttl } => {
            anyhow::ensure!(
                settings.portal.enabled,
                "portal.enabled is false: this server does not serve the portal"
            );
            let pool = startup::build_pool(&settings)?;
            let mut conn = pool.get().await?;
            let link = crate::portal::session::store_link(&mut conn, &settings.portal, &brand, ttl)
                .await
                .map_err(|e| anyhow::anyhow!("{}", portal_link_error(&e)))?;
            println!("{}{}", portal_base(&settings), link.path);
            eprintln!(
                "valid once, until {} (UTC)",
                link.expires.format("%Y-%m-%d %H:%M:%S")
            );
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
            anyhow::ensure!(
                ttl <= settings.auth.max_token_lifetime,
                "--ttl {} is longer than auth.max_token_lifetime ({}): the API would refuse the \
                 token",
                humantime::format_duration(ttl),
                humantime::format_duration(settings.auth.max_token_lifetime)
            );
            let scopes = token_scopes(&scopes);
            println!(
                "{}",
                auth::mint_hs256(secret, brands, &scopes, ttl, subject)?
            );
        }
    }
    Ok(())
}

/// Where the printed link points: `http.public_url`, else the bind address over http.
fn portal_base(settings: &Settings) -> String {
    let public = settings.http.public_url.trim_end_matches('/');
    if !public.is_empty() {
        return public.to_owned();
    }
    let bind = settings.http.bind.replace("0.0.0.0", "127.0.0.1");
    format!("http://{bind}")
}

fn portal_link_error(e: &crate::error::ApiError) -> String {
    match e.validations().iter().next() {
        Some((field, message)) => format!("{field}: {message}"),
        None => e.to_string(),
    }
}

/// The scopes of a minted token: managing webhooks, plus each `--scope` (`publish` and `manage`
/// are short for Hookline's two scopes).
fn token_scopes(extra: &[String]) -> Vec<String> {
    let mut scopes = vec![auth::SCOPE_WEBHOOKS.to_owned()];
    for s in extra {
        let scope = match s.as_str() {
            "publish" => auth::SCOPE_PUBLISH,
            "manage" => auth::SCOPE_WEBHOOKS,
            other => other,
        };
        if !scopes.iter().any(|have| have == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_manage_by_default_and_publish_only_when_asked() {
        assert_eq!(token_scopes(&[]), [auth::SCOPE_WEBHOOKS]);
        assert_eq!(
            token_scopes(&["publish".into(), "manage".into()]),
            [auth::SCOPE_WEBHOOKS, auth::SCOPE_PUBLISH]
        );
        assert_eq!(
            token_scopes(&[auth::SCOPE_PUBLISH.into()]),
            [auth::SCOPE_WEBHOOKS, auth::SCOPE_PUBLISH]
        );
    }
}
