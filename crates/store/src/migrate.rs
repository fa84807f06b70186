//! Creating the database and applying the embedded migrations, safely from many replicas.

use diesel::RunQueryDsl as _;
use diesel_async::{async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness as _};
use url::Url;

use crate::StoreError;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The advisory lock every Hookline process takes around migrations ("hookline" in ASCII), so
/// replicas starting together apply them once, one after the other.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69_6e65;

type SyncPg = AsyncConnectionWrapper<AsyncPgConnection>;

/// Runs `f` on a thread of its own with a sync diesel connection to `url` (the migration
/// harness is synchronous; its own thread keeps it off any async runtime).
async fn with_sync_connection<T, F>(url: &str, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut SyncPg) -> Result<T, StoreError> + Send + 'static,
{
    let url = url.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hookline-migrate".into())
        .spawn(move || {
            let _ = tx.send(on_sync_connection(&url, f));
        })
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    rx.await
        .map_err(|_| StoreError::Migration("migration thread panicked".into()))?
}

/// Opens the connection through [`crate::connect::establish`] (so `sslmode` is honoured, which
/// the wrapper's own `establish` would not do) on a one-worker runtime of this thread's own,
/// and wraps it: the wrapper blocks on that runtime for each call, while the connection's
/// driver task runs on its worker.
fn on_sync_connection<T>(
    url: &str,
    f: impl FnOnce(&mut SyncPg) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| StoreError::Migration(format!("starting the migration runtime: {e}")))?;
    // The wrapper takes the runtime it finds entered; dropped after the connection.
    let _entered = runtime.enter();
    let conn = runtime.block_on(crate::connect::establish(url))?;
    let mut conn = SyncPg::from(conn);
    f(&mut conn)
}

/// Applies every pending migration under a Postgres advisory lock (`MIGRATION_LOCK`); returns
/// the versions applied.
pub async fn run_migrations(url: &str) -> Result<Vec<String>, StoreError> {
    with_sync_connection(url, |conn| {
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(conn)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| StoreError::Migration(e.to_string()));
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(conn)?;
        applied
    })
    .await
}

/// Splits a database URL into the URL of the server's `postgres` database and the name of the
/// database the URL points at.
pub fn admin_url(url: &str) -> Result<(String, String), StoreError> {
    let mut parsed = Url::parse(url).map_err(|e| StoreError::Migration(format!("bad URL: {e}")))?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    if name.is_empty() {
        return Err(StoreError::Migration(
            "the database URL names no database".into(),
        ));
    }
    parsed.set_path("/postgres");
    Ok((parsed.into(), name))
}

/// Quotes an identifier for SQL (`"` doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

/// Creates the database `url` names when it does not exist; returns whether it created it.
pub async fn ensure_database(url: &str) -> Result<bool, StoreError> {
    let (admin, name) = admin_url(url)?;
    with_sync_connection(&admin, move |conn| {
        let found: Exists = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists",
        )
        .bind::<diesel::sql_types::Text, _>(&name)
        .get_result(conn)?;
        if found.exists {
            return Ok(false);
        }
        match diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(&name))).execute(conn) {
            Ok(_) => Ok(true),
            // Another replica created it between our check and our CREATE.
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("already exists") =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}
