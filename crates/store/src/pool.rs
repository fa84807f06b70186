//! The connection pool: deadpool over diesel-async's `AsyncPgConnection`.

use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::{
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod},
    AsyncPgConnection, SimpleAsyncConnection,
};
use futures::FutureExt as _;

pub type Pool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;
pub type PooledConn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_size: usize,
    /// How long a caller waits for a free connection before the store answers `Unavailable`.
    pub wait_timeout: Duration,
    /// How long opening a new connection (TCP + startup) may take.
    pub connect_timeout: Duration,
    /// Server-side bound on every statement (`SET statement_timeout`).
    pub statement_timeout: Duration,
    /// Whether a commit waits for its WAL to reach disk (`synchronous_commit`). Keep it on
    /// where an answer promises durability (ingest); see the worker for where it may be off.
    pub synchronous_commit: bool,
    /// Plan without sequential or bitmap scans (`enable_seqscan`, `enable_bitmapscan` off), for
    /// a pool whose statements all fetch rows by key or by due time (the worker's). A
    /// connection keeps a statement's plan for its life; one made while a table was small
    /// reads the whole table for every batch once the table has grown.
    pub index_scans_only: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_size: 16,
            wait_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
            synchronous_commit: true,
            index_scans_only: false,
        }
    }
}

/// The `SET`s every new connection runs, in one round trip.
///
/// JIT compilation is always off: every statement here is short, and compiling one costs
/// ~100 ms. Without sequential scans a query that can only scan (a count over a small table)
/// is costed past `jit_above_cost`, and the worker's health gauges paid that on every round.
fn session_settings(opts: &PoolOptions) -> String {
    let mut sets = vec!["SET jit = off".to_owned()];
    let statement_timeout_ms = opts.statement_timeout.as_millis();
    if statement_timeout_ms > 0 {
        sets.push(format!("SET statement_timeout = {statement_timeout_ms}"));
    }
    if !opts.synchronous_commit {
        sets.push("SET synchronous_commit = off".to_owned());
    }
    if opts.index_scans_only {
        sets.push("SET enable_seqscan = off".to_owned());
        sets.push("SET enable_bitmapscan = off".to_owned());
    }
    sets.join("; ")
}

/// Builds a pool; connections are opened lazily (with TLS as the URL's `sslmode` asks: see
/// [`crate::connect`]), so this succeeds while the database is down
/// and the pool recovers by itself when it returns.
pub fn build_pool(url: &str, opts: &PoolOptions) -> Result<Pool, deadpool::managed::BuildError> {
    let connect_timeout = opts.connect_timeout;
    let session = session_settings(opts);
    let mut config = ManagerConfig::default();
    // Fast: a broken connection is detected by `is_broken` and replaced; a dead server shows as
    // an `Unavailable` error on first use rather than a test query on every checkout.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let session = session.clone();
        async move {
            let mut conn = tokio::time::timeout(connect_timeout, crate::connect::establish(&url))
                .await
                .map_err(|_| {
                    ConnectionError::BadConnection("timed out connecting to Postgres".into())
                })??;
            if !session.is_empty() {
                conn.batch_execute(&session)
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
            }
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(opts.max_size)
        .wait_timeout(Some(opts.wait_timeout))
        .create_timeout(Some(opts.connect_timeout + Duration::from_secs(1)))
        .recycle_timeout(Some(opts.connect_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
}
