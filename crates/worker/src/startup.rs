//! [`Worker`]: builds everything from [`Settings`] and runs the consumer, the scheduler and the
//! health listener until shutdown. Tests start it in-process, as `main.rs` does.

use std::{net::SocketAddr, sync::Arc};

use hookline_config::{ExposeSecret as _, Settings};
use hookline_domain::{RetrySchedule, ScheduleError};
use hookline_queue::{Names, Publisher};
use hookline_store::{
    pool::{build_pool, PoolOptions},
    worker_queries, Pool,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    backoff::Backoff,
    consumer::{self, ConsumerConfig},
    dead_letter,
    delivery::{body::Bodies, budget::Budgets, handle::Handler, send::Sender},
    endpoints::Endpoints,
    health, housekeeping,
    scheduler::{self, SchedulerConfig},
};

/// Why a worker could not be built. Once built, it does not fail: it waits for what is missing.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("delivery.retry_schedule: {0}")]
    Schedule(#[from] ScheduleError),
    #[error("database pool: {0}")]
    Pool(String),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("worker.http_bind: {0}")]
    Bind(#[from] std::io::Error),
    #[error(transparent)]
    Settings(#[from] hookline_config::SettingsError),
}

pub struct Worker {
    settings: Settings,
    pool: Pool,
    /// Recovery jobs and the retention purge: a small pool of their own with the default
    /// planner (the purge finds old events through a BRIN index, which only bitmap scans use).
    housekeeping: Pool,
    endpoints: Endpoints,
    handler: Arc<Handler>,
    health: TcpListener,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Builds the pool, the HTTP client and the handler, and binds the health listener (port 0
    /// picks a free one). Touches neither Postgres nor RabbitMQ yet.
    pub async fn build(settings: Settings) -> Result<Worker, BuildError> {
        // Install the metrics recorder before the first delivery is counted.
        let _ = hookline_telemetry::metrics();
        let delivery = &settings.delivery;
        let schedule = RetrySchedule::parse(
            &delivery.retry_schedule,
            delivery.retry_jitter,
            delivery.retry_after_max,
        )?;
        // The same rule as the API's: the dev key only where nobody else can reach the process.
        let keyring = settings.keyring_for("worker.http_bind", &settings.worker.http_bind)?;
        if keyring.active_is_dev() {
            warn!(
                "secrets.keys is the built-in dev key: set HOOKLINE__SECRETS__KEYS in production"
            );
        }
        let db = &settings.database;
        let pool = build_pool(
            db.url.expose_secret(),
            &PoolOptions {
                max_size: db.pool_size,
                wait_timeout: db.pool_wait_timeout,
                connect_timeout: db.connect_timeout,
                statement_timeout: db.statement_timeout,
                // The worker's writes (leases, attempts, states) need not wait for the disk:
                // if Postgres itself crashes and loses the last moments of them, the delivery
                // is back to an earlier PENDING state and the scheduler sends it again. That
                // is a duplicate, never a loss — and it saves an fsync per delivery.
                synchronous_commit: false,
                // Every worker statement looks deliveries up by key (take, record, release)
                // or by due time (the scheduler): see `PoolOptions::index_scans_only`.
                index_scans_only: true,
            },
        )
        .map_err(|e| BuildError::Pool(e.to_string()))?;
        let housekeeping = build_pool(
            db.url.expose_secret(),
            &PoolOptions {
                max_size: 2,
                wait_timeout: db.pool_wait_timeout,
                connect_timeout: db.connect_timeout,
                statement_timeout: db.statement_timeout,
                synchronous_commit: true,
                index_scans_only: false,
            },
        )
        .map_err(|e| BuildError::Pool(e.to_string()))?;
        let w = &settings.worker;
        let endpoints = Endpoints::new(
            pool.clone(),
            settings.health.policy(),
            settings.health.release_per_second,
        );
        let handler = Handler::new(
            pool.clone(),
            Sender::new(delivery, &settings.retention)?,
            Arc::new(keyring),
            schedule,
            // A stalled budget's deferrals grow up to about the request timeout: by then a
            // hanging request has freed its slot.
            Budgets::new(
                w.max_in_flight_per_host,
                w.max_in_flight_per_brand,
                w.defer_delay,
                delivery.request_timeout,
            ),
            Bodies::new(w.max_bytes_in_flight),
            endpoints.clone(),
            w.lease,
            delivery.request_timeout,
            w.defer_delay,
        );
        let health = TcpListener::bind(&settings.worker.http_bind).await?;
        Ok(Worker {
            settings,
            pool,
            housekeeping,
            endpoints,
            handler: Arc::new(handler),
            health,
        })
    }

    /// The health listener's address (tests bind port 0).
    pub fn health_addr(&self) -> std::io::Result<SocketAddr> {
        self.health.local_addr()
    }

    /// Runs until `shutdown` is cancelled, then stops consuming, lets deliveries in flight
    /// finish (within `worker.shutdown_grace`), hands back the rest and returns. Waits for the
    /// schema and for the broker instead of failing when they are not there yet.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let Worker {
            settings,
            pool,
            housekeeping,
            endpoints,
            handler,
            health,
        } = self;
        let readiness = health::Readiness {
            pool: pool.clone(),
            consuming: Arc::default(),
        };
        let consuming = readiness.consuming.clone();
        let health = health::serve(health, readiness, shutdown.clone());
        let work = async {
            if !wait_for_schema(&pool, &shutdown).await {
                return;
            }
            let names = Names::from_prefix(&settings.amqp.prefix);
            let amqp_url = settings.amqp.url.expose_secret().to_owned();
            let publisher = Publisher::new(amqp_url.clone(), names.clone());
            let scheduler = scheduler::run(
                pool.clone(),
                publisher,
                endpoints,
                SchedulerConfig {
                    interval: settings.worker.scheduler_interval,
                    lease: settings.worker.lease,
                    lost_limit: settings.worker.lost_limit,
                },
                shutdown.clone(),
            );
            let dead_letter = dead_letter::run(
                pool.clone(),
                amqp_url.clone(),
                names.clone(),
                shutdown.clone(),
            );
            let housekeeping = housekeeping::run(
                housekeeping,
                settings.recovery.clone(),
                housekeeping::Requeue {
                    publisher: Publisher::new(amqp_url.clone(), names.clone()),
                    delivery_lease: settings.worker.lease,
                },
                settings.retention.clone(),
                shutdown.clone(),
            );
            let consumer = consumer::run(
                handler,
                ConsumerConfig {
                    amqp_url,
                    names,
                    prefetch: settings.worker.prefetch,
                    concurrency: settings.worker.concurrency,
                    shutdown_grace: settings.worker.shutdown_grace,
                    consuming,
                },
                shutdown.clone(),
            );
            tokio::join!(scheduler, consumer, dead_letter, housekeeping);
        };
        // Polled here rather than spawned, so dropping this future stops everything.
        tokio::join!(health, work);
        info!("worker stopped");
    }
}

/// Polls until the `deliveries` table exists (the API or `migrate` creates it); false when
/// shutdown came first.
async fn wait_for_schema(pool: &Pool, shutdown: &CancellationToken) -> bool {
    let mut backoff = Backoff::default();
    let mut warned = false;
    loop {
        let ready = match pool.get().await {
            Ok(mut conn) => worker_queries::schema_ready(&mut conn).await,
            Err(e) => Err(e.into()),
        };
        match ready {
            Ok(()) => return true,
            Err(e) if !warned => {
                warn!(error = %e, "waiting for the database schema");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// Cancels `shutdown` on SIGTERM (what orchestrators send) or ctrl-c.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    info!("shutdown requested; finishing deliveries in flight");
    shutdown.cancel();
}
