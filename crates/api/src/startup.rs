//! Building and running the server: `Application::build(settings)` then
//! `run_until_stopped()`, so tests start exactly what `main` starts, on port 0.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{dev::Server, web, App, HttpServer};
use hookline_config::{ExposeSecret, Settings};
use hookline_queue::{Names, Publisher};
use hookline_store::{migrate, pool, Pool};
use tokio_util::sync::CancellationToken;

use crate::{
    auth::Authenticator,
    dispatch::Dispatcher,
    routes::{
        self,
        json::{json_config, payload_config, query_config},
    },
    state::AppState,
};

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub struct Application {
    port: u16,
    admin_port: u16,
    server: Server,
    /// `admin.bind`: `/metrics` and the probes, apart from the public port; serving from the
    /// moment `build` returns.
    admin: actix_web::dev::ServerHandle,
    admin_task: tokio::task::JoinHandle<std::io::Result<()>>,
    state: web::Data<AppState>,
    dispatch_stop: CancellationToken,
    dispatch_task: tokio::task::JoinHandle<()>,
}

/// Creates the database if asked and allowed, then applies migrations under the store's
/// advisory lock. Used by `serve` (when `database.migrate_on_start`) and by `migrate`.
pub async fn prepare_database(settings: &Settings, create: bool) -> anyhow::Result<()> {
    let url = settings.database.url.expose_secret();
    if create {
        match migrate::ensure_database(url).await {
            Ok(true) => tracing::info!("created the database"),
            Ok(false) => {}
            // Not fatal: the role may lack CREATEDB while the database exists under another
            // name in the URL's server; migration below reports the real problem if any.
            Err(e) => tracing::warn!(error = %e, "could not check or create the database"),
        }
    }
    let applied = migrate::run_migrations(url).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied migrations");
    }
    Ok(())
}

pub fn build_pool(settings: &Settings) -> anyhow::Result<Pool> {
    let db = &settings.database;
    let opts = pool::PoolOptions {
        max_size: db.pool_size,
        wait_timeout: db.pool_wait_timeout,
        connect_timeout: db.connect_timeout,
        statement_timeout: db.statement_timeout,
        // A 202 promises the event is stored: its commit must be on disk.
        synchronous_commit: true,
        index_scans_only: false,
    };
    Ok(pool::build_pool(db.url.expose_secret(), &opts)?)
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("admin_port", &self.admin_port)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if settings.uses_dev_secret() {
            // The dev secret is in the README: with it, anyone can mint a `brands: "*"` token.
            // Only a server nobody else can reach may run with it (the quickstart).
            anyhow::ensure!(
                hookline_config::is_loopback_bind(&settings.http.bind),
                "auth.hs256_secret is the built-in dev secret, which anyone can read in the \
                 README, and http.bind ({}) is not a loopback address: set \
                 HOOKLINE__AUTH__HS256_SECRET (or bind to 127.0.0.1)",
                settings.http.bind
            );
            tracing::warn!(
                "auth.hs256_secret is the dev default: anyone can mint tokens; set \
                 HOOKLINE__AUTH__HS256_SECRET before exposing this server"
            );
        }
        let keyring = settings.keyring_for("http.bind", &settings.http.bind)?;
        if keyring.active_is_dev() {
            tracing::warn!(
                "secrets.keys is the built-in dev key: webhook secrets in the database are as \
                 good as plain text; set HOOKLINE__SECRETS__KEYS before exposing this server"
            );
        }
        if settings.database.migrate_on_start {
            prepare_database(&settings, settings.database.create_if_missing).await?;
        }
        // Install the recorder before the first request is counted.
        let _ = hookline_telemetry::metrics();
        let pool = build_pool(&settings)?;
        if settings.database.migrate_on_start {
            // Part of migrating, but not fatal: plain-text rows still sign, and
            // `secrets rotate-key` names the row that cannot be sealed.
            if let Err(e) = crate::secrets::seal_plaintext(&pool, &keyring).await {
                tracing::error!(error = %e, "could not encrypt plain-text webhook secrets");
            }
        }
        let auth = Authenticator::from_settings(&settings.auth)?;
        let settings = Arc::new(settings);
        let publisher = Arc::new(Publisher::new(
            settings.amqp.url.expose_secret().to_owned(),
            Names::from_prefix(&settings.amqp.prefix),
        ));
        // Declare the topology now if the broker is up; if not, ingest still works (deliveries
        // stay due in Postgres) and the publisher connects on first use.
        if let Err(e) = publisher.ensure_connected().await {
            tracing::warn!(error = %e, "RabbitMQ unavailable at start; will publish when it returns");
        }
        let dispatch_stop = CancellationToken::new();
        let (dispatcher, dispatch_task) =
            Dispatcher::start(publisher, pool.clone(), dispatch_stop.clone());
        let state = web::Data::new(AppState::new(
            settings.clone(),
            pool,
            auth,
            keyring,
            dispatcher,
        ));
        let listener = TcpListener::bind(&settings.http.bind)?;
        let port = listener.local_addr()?.port();
        let json_limit = settings.http.max_json_bytes;
        let event_limit = settings.http.max_event_bytes;
        let batch_limit = settings.http.max_batch_bytes;
        let portal = settings.portal.enabled;
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(routes::metrics::record))
                .app_data(app_state.clone())
                .app_data(json_config(json_limit))
                .app_data(payload_config(json_limit))
                .app_data(query_config())
                .configure(|cfg| routes::configure(cfg, event_limit, batch_limit))
                .configure(|cfg| {
                    if portal {
                        crate::portal::configure(cfg);
                    }
                })
                .default_service(web::to(routes::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .run();
        let admin_listener = TcpListener::bind(&settings.admin.bind).map_err(|e| {
            anyhow::anyhow!("admin.bind ({}): cannot listen: {e}", settings.admin.bind)
        })?;
        let admin_port = admin_listener.local_addr()?.port();
        let admin_state = state.clone();
        let admin = HttpServer::new(move || {
            App::new()
                .app_data(admin_state.clone())
                .configure(routes::configure_admin)
                .default_service(web::to(routes::not_found))
        })
        // Scrapes and probes are tiny: one thread is plenty, and it keeps a scrape flood on
        // its own core's share instead of the request workers'.
        .workers(1)
        .listen(admin_listener)?
        // Stopped with the public server (see `run_until_stopped`), not by signals itself.
        .disable_signals()
        .shutdown_timeout(1)
        .run();
        let admin_handle = admin.handle();
        let admin_task = tokio::spawn(admin);
        tokio::spawn(routes::metrics::refresh_gauges(
            state.pool.clone(),
            settings.admin.gauge_refresh,
            dispatch_stop.clone(),
        ));
        tracing::info!(port, admin_port, "hookline-api listening");
        Ok(Self {
            port,
            admin_port,
            server,
            admin: admin_handle,
            admin_task,
            state,
            dispatch_stop,
            dispatch_task,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin listener's port (`admin.bind`).
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Serves until SIGTERM/SIGINT (actix stops accepting, lets in-flight requests finish
    /// within the grace period, then returns) or until the server handle stops it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        let pruner = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                state.prune_rate_limits();
            }
        });
        let result = self.server.await;
        pruner.abort();
        // Probes and scrapes answer until the public server is done, then stop too.
        self.admin.stop(true).await;
        let _ = self.admin_task.await;
        // In-flight requests are done: publish what they queued, then stop.
        self.dispatch_stop.cancel();
        let _ = self.dispatch_task.await;
        result
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}
