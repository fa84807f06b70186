//! The brand portal's sign-in links and sessions (`portal_links`, `portal_sessions`).
//!
//! Callers pass SHA-256 digests of the secrets (link tokens, session ids), never the secrets:
//! the rows alone cannot sign anybody in. A link is redeemed and its session opened in one
//! statement, so a link opened twice at once still opens one session.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bytea, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{prepared, StoreError};

/// A live session: whose it is, its CSRF token and when it ends at the latest.
#[derive(Debug, Clone, QueryableByName)]
pub struct Session {
    #[diesel(sql_type = Text)]
    pub brand_id: String,
    #[diesel(sql_type = Text)]
    pub csrf: String,
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Stores a sign-in link for `brand`, usable once until `expires_at`. Links and sessions that
/// ended more than a day ago are deleted on the way (a few rows; the portal needs no sweeper).
pub async fn create_link(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    brand: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    prepared::statement("DELETE FROM portal_links WHERE expires_at < now() - interval '1 day'")
        .execute(conn)
        .await?;
    prepared::statement("DELETE FROM portal_sessions WHERE expires_at < now() - interval '1 day'")
        .execute(conn)
        .await?;
    prepared::statement(
        "INSERT INTO portal_links (token_hash, brand_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind::<Bytea, _>(token_hash.to_vec())
    .bind::<Text, _>(brand.to_owned())
    .bind::<Timestamptz, _>(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Redeems the link `token_hash` (unused and unexpired) and opens a session for its brand:
/// `session_hash` with `csrf`, ending after `ttl` at the latest. `None` when the link is
/// unknown, used or expired; then nothing changes.
pub async fn redeem_link(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    session_hash: &[u8],
    csrf: &str,
    ttl: Duration,
) -> Result<Option<Session>, StoreError> {
    let rows: Vec<Session> = prepared::statement(
        "WITH used AS ( \
             UPDATE portal_links SET used_at = now() \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() \
             RETURNING brand_id \
         ) \
         INSERT INTO portal_sessions (id_hash, brand_id, csrf, expires_at) \
         SELECT $2, brand_id, $3, now() + $4 * interval '1 millisecond' FROM used \
         RETURNING brand_id, csrf, expires_at",
    )
    .bind::<Bytea, _>(token_hash.to_vec())
    .bind::<Bytea, _>(session_hash.to_vec())
    .bind::<Text, _>(csrf.to_owned())
    .bind::<BigInt, _>(millis(ttl))
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

/// The live session `session_hash`, marked as seen now. `None` when it is unknown, past its
/// end, or unused for longer than `idle`.
pub async fn touch_session(
    conn: &mut AsyncPgConnection,
    session_hash: &[u8],
    idle: Duration,
) -> Result<Option<Session>, StoreError> {
    let rows: Vec<Session> = prepared::statement(
        "UPDATE portal_sessions SET last_seen = now() \
         WHERE id_hash = $1 AND expires_at > now() \
           AND last_seen > now() - $2 * interval '1 millisecond' \
         RETURNING brand_id, csrf, expires_at",
    )
    .bind::<Bytea, _>(session_hash.to_vec())
    .bind::<BigInt, _>(millis(idle))
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

/// Ends the session `session_hash` (sign-out). Ending an unknown one is not an error.
pub async fn end_session(
    conn: &mut AsyncPgConnection,
    session_hash: &[u8],
) -> Result<(), StoreError> {
    prepared::statement("DELETE FROM portal_sessions WHERE id_hash = $1")
        .bind::<Bytea, _>(session_hash.to_vec())
        .execute(conn)
        .await?;
    Ok(())
}
