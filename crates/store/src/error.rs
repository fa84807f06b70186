//! One error type for every store operation, sorted by what the caller should do about it.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is not answering in time: retry later (HTTP 503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; carries the constraint's name.
    #[error("conflict on {0}")]
    Conflict(String),
    /// Anything else: a bug or a schema mismatch (HTTP 500, logged, never shown).
    #[error("database error: {0}")]
    Query(DieselError),
    #[error("migration failed: {0}")]
    Migration(String),
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Messages of server errors that mean "the database is going away or overloaded", which
/// diesel-async reports as `DatabaseErrorKind::Unknown` (it keeps the message, not the SQLSTATE).
const UNAVAILABLE_MESSAGES: &[&str] = &[
    "canceling statement due to statement timeout",
    "canceling statement due to lock timeout",
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "too many clients already",
    "remaining connection slots are reserved",
];

impl From<DieselError> for StoreError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
                StoreError::Conflict(info.constraint_name().unwrap_or_default().to_owned())
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                ref info,
            ) => StoreError::Unavailable(info.message().to_owned()),
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if UNAVAILABLE_MESSAGES
                    .iter()
                    .any(|m| info.message().contains(m)) =>
            {
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Query(other),
        }
    }
}

impl From<diesel::ConnectionError> for StoreError {
    fn from(err: diesel::ConnectionError) -> Self {
        StoreError::Unavailable(err.to_string())
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for StoreError {
    fn from(err: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        // Every pool failure (timeout waiting, cannot connect) means: no database right now.
        StoreError::Unavailable(err.to_string())
    }
}
