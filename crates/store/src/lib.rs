//! Hookline's Postgres store: the schema (diesel migrations under `migrations/`, embedded), a
//! pooled async connection (diesel-async + deadpool, no libpq), and every query the API and
//! the worker run. No other crate writes SQL.

pub mod connect;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod health;
pub mod migrate;
pub mod models;
pub mod pool;
pub mod portal;
mod prepared;
pub mod recoveries;
pub mod retention;
pub mod schema;
pub mod secrets;
pub mod stats;
pub mod webhooks;
pub mod worker_queries;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::StoreError;
pub use pool::{Pool, PooledConn};

use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A round trip to the database (`/readyz`).
pub async fn ping(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    diesel::sql_query("SELECT 1").execute(conn).await?;
    Ok(())
}
