//! Webhook secrets at rest (`hookline_domain::sealed`): the column type that holds them, and
//! the passes that seal plain-text rows and move rows onto the active key.
//!
//! The store never holds an opened secret: [`StoredSecret`] is what the column holds (sealed,
//! or plain text written before sealing), and only [`StoredSecret::seal`] makes one to write,
//! so every write path seals. Opening it takes the keyring, which the API (to show a secret to
//! its owner) and the worker (to sign) have.

use std::fmt;

use diesel::{
    deserialize::{self, FromSql, FromSqlRow},
    expression::AsExpression,
    pg::{Pg, PgValue},
    serialize::{self, Output, ToSql},
    sql_types::{Array, BigInt, Nullable, Text, Uuid as SqlUuid},
    QueryableByName,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use hookline_domain::{sealed, Keyring, OpenError, WebhookSecret};
use uuid::Uuid;

use crate::StoreError;

/// A webhook secret as the `webhooks.secret` and `previous_secret` columns hold it: sealed
/// under a key of the ring, or plain text from before sealing. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct StoredSecret(String);

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredSecret(***)")
    }
}

impl StoredSecret {
    /// `secret` sealed for the webhook `webhook_id` under the ring's active key: the only way
    /// to make a value to write.
    pub fn seal(keyring: &Keyring, webhook_id: Uuid, secret: &WebhookSecret) -> StoredSecret {
        StoredSecret(keyring.seal(webhook_id, secret))
    }

    /// The secret of the webhook `webhook_id`, opened with any key of the ring.
    pub fn open(&self, keyring: &Keyring, webhook_id: Uuid) -> Result<WebhookSecret, OpenError> {
        keyring.open(webhook_id, &self.0)
    }

    /// The id of the key it is sealed under; `None` for plain text.
    pub fn key_id(&self) -> Option<&str> {
        sealed::sealed_key_id(&self.0)
    }
}

impl FromSql<Text, Pg> for StoredSecret {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <String as FromSql<Text, Pg>>::from_sql(bytes).map(StoredSecret)
    }
}

impl ToSql<Text, Pg> for StoredSecret {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.0.as_str(), out)
    }
}

/// Why a pass could not seal or re-seal a row.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A row the ring cannot open (its key is missing, or it was altered): nothing of its
    /// batch was written.
    #[error("webhook {webhook_id}: {source}")]
    Open {
        webhook_id: Uuid,
        #[source]
        source: OpenError,
    },
}

impl From<diesel::result::Error> for ResealError {
    fn from(e: diesel::result::Error) -> Self {
        ResealError::Store(e.into())
    }
}

/// Which rows a pass works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Rows with a plain-text secret (written before secrets were sealed): sealed at start.
    Plaintext,
    /// Rows with any secret not sealed under the active key (`secrets rotate-key`).
    NotActive,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    secret: StoredSecret,
    #[diesel(sql_type = Nullable<Text>)]
    previous_secret: Option<StoredSecret>,
}

/// Seals or re-seals, under the ring's active key, up to `batch` rows that `pass` selects, in
/// one transaction; returns how many it wrote (0: none left, apart from rows locked by others).
///
/// Rows are locked `FOR UPDATE SKIP LOCKED`: a concurrent rotation of a webhook's secret
/// (which copies `secret` into `previous_secret`) waits for the batch or is skipped by it, so
/// nothing written by the API is lost, and several processes can run passes at once without
/// an advisory lock, each taking other rows. `updated` is left alone: the brand changed nothing.
pub async fn reseal_batch(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    pass: Pass,
    batch: u32,
) -> Result<u64, ResealError> {
    let prefix = format!("enc:v1:{}:", keyring.active_id());
    conn.transaction::<_, ResealError, _>(async |conn| {
        let query = match pass {
            Pass::Plaintext => {
                "SELECT id, secret, previous_secret FROM webhooks \
                 WHERE NOT starts_with(secret, 'enc:') \
                    OR NOT starts_with(previous_secret, 'enc:') \
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
            }
            Pass::NotActive => {
                "SELECT id, secret, previous_secret FROM webhooks \
                 WHERE NOT starts_with(secret, $1) OR NOT starts_with(previous_secret, $1) \
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
            }
        };
        let rows: Vec<Row> = diesel::sql_query(query)
            .bind::<Text, _>(&prefix)
            .bind::<BigInt, _>(i64::from(batch))
            .load(conn)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut secrets = Vec::with_capacity(rows.len());
        let mut previous = Vec::with_capacity(rows.len());
        for row in &rows {
            let reseal = |stored: &StoredSecret| {
                stored
                    .open(keyring, row.id)
                    .map(|s| StoredSecret::seal(keyring, row.id, &s))
                    .map_err(|source| ResealError::Open {
                        webhook_id: row.id,
                        source,
                    })
            };
            ids.push(row.id);
            secrets.push(reseal(&row.secret)?);
            previous.push(row.previous_secret.as_ref().map(reseal).transpose()?);
        }
        diesel::sql_query(
            "UPDATE webhooks w SET secret = u.secret, previous_secret = u.previous \
             FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, secret, previous) \
             WHERE w.id = u.id",
        )
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Text>, _>(&secrets)
        .bind::<Array<Nullable<Text>>, _>(&previous)
        .execute(conn)
        .await?;
        Ok(rows.len() as u64)
    })
    .await
}

/// Runs [`reseal_batch`] until no row is left for `pass`; returns how many rows it wrote.
pub async fn reseal_all(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    pass: Pass,
    batch: u32,
) -> Result<u64, ResealError> {
    let mut total = 0;
    loop {
        let n = reseal_batch(conn, keyring, pass, batch).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

/// How many webhooks hold a secret (current or previous) under each key id; plain text is
/// counted under `None`. What an operator checks before removing a key.
pub async fn keys_in_use(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<(Option<String>, i64)>, StoreError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = Nullable<Text>)]
        key_id: Option<String>,
        #[diesel(sql_type = BigInt)]
        webhooks: i64,
    }
    let counts: Vec<Count> = diesel::sql_query(
        "SELECT CASE WHEN starts_with(s, 'enc:') THEN split_part(s, ':', 3) END AS key_id, \
             count(DISTINCT id) AS webhooks \
         FROM (SELECT id, secret AS s FROM webhooks \
               UNION ALL SELECT id, previous_secret FROM webhooks \
               WHERE previous_secret IS NOT NULL) AS stored \
         GROUP BY 1 ORDER BY 1 NULLS FIRST",
    )
    .load(conn)
    .await?;
    Ok(counts.into_iter().map(|c| (c.key_id, c.webhooks)).collect())
}
