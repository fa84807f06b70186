//! `--recovery N` and `--purge-rows M`: housekeeping measured beside the load.
//!
//! Before the load, a brand of its own (`bench-recover-<uuid>`) gets one webhook pointing at a
//! receiver of its own and N FAILURE deliveries, and another (`bench-purge-<uuid>`) gets M rows
//! past the retention period (M/2 events of 60 days ago, each with one final delivery), both
//! written straight into Postgres (seeding is not what is measured). When the load starts, a
//! recovery job over the N deliveries is created through the API and the worker's retention
//! purge (run it with a short `retention.interval`) finds the old rows. The report gives the
//! recovery's deliveries/s (job created to last receipt) and the purge's rows/s; the load's
//! own figures show what both cost ingest and delivery of the measured brand.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use diesel::{
    sql_types::{BigInt, Text, Uuid as SqlUuid},
    QueryableByName,
};
use diesel_async::RunQueryDsl;
use hookline_store::{
    pool::{build_pool, PoolOptions},
    Pool,
};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    api::{self, Api},
    receiver::{webhook_path, Receiver},
    unix_nanos,
};

/// Rows written per seeding statement.
const SEED_CHUNK: i64 = 50_000;

/// What the background work did.
#[derive(Debug, Clone, Serialize)]
pub struct BackgroundReport {
    /// Deliveries the recovery job was to requeue, and how many arrived.
    pub recovery_deliveries: u64,
    pub recovery_received: u64,
    /// Job created to last receipt.
    pub recovery_s: f64,
    pub recovery_per_s: f64,
    /// Old rows (events and their deliveries) the purge was to delete.
    pub purge_rows: u64,
    /// Load start to the last old event gone.
    pub purge_s: f64,
    pub purge_rows_per_s: f64,
    pub timed_out: bool,
}

/// The seeded brands, ready to start.
#[allow(missing_debug_implementations)] // holds a pool and a receiver, neither of them Debug
pub struct Background {
    pool: Pool,
    recovery: Option<(Api, Arc<Receiver>, String, u64)>,
    purge: Option<(Api, String, u64)>,
    started_ns: u64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Background {
    /// Seeds `recovery` failed deliveries and `purge_rows` old rows on `database_url`.
    pub async fn prepare(
        database_url: &str,
        client: reqwest::Client,
        base: &str,
        secret: &str,
        recovery: u64,
        purge_rows: u64,
        sig_sample: u64,
    ) -> anyhow::Result<Background> {
        let pool = build_pool(
            database_url,
            &PoolOptions {
                max_size: 2,
                statement_timeout: Duration::from_secs(600),
                ..PoolOptions::default()
            },
        )
        .context("database pool")?;
        let api_for = |brand: String| -> anyhow::Result<Api> {
            Ok(Api {
                client: client.clone(),
                base: base.to_owned(),
                token: api::mint_token(secret, &brand, Duration::from_secs(3600))?,
                brand,
            })
        };
        let mut background = Background {
            pool,
            recovery: None,
            purge: None,
            started_ns: 0,
        };
        if recovery > 0 {
            let api = api_for(format!("bench-recover-{}", Uuid::new_v4().simple()))?;
            let receiver = Arc::new(Receiver::start(sig_sample).await?);
            let path = webhook_path(0);
            let webhook = api
                .create_webhook(&receiver.url(&path), &["ORDER_EVENTS"])
                .await?;
            receiver.set_secret(&path, &webhook.secret);
            background
                .seed(&api.brand, &webhook.id, recovery, "FAILURE", "1 hour")
                .await
                .context("seeding the failed deliveries of --recovery")?;
            background.recovery = Some((api, receiver, webhook.id, recovery));
        }
        if purge_rows > 0 {
            let api = api_for(format!("bench-purge-{}", Uuid::new_v4().simple()))?;
            // Never called: its deliveries are final.
            let webhook = api
                .create_webhook("https://example.com/never", &["ORDER_EVENTS"])
                .await?;
            let events = purge_rows.div_ceil(2);
            background
                .seed(&api.brand, &webhook.id, events, "SUCCESS", "60 days")
                .await
                .context("seeding the old rows of --purge-rows")?;
            background.purge = Some((api, webhook.id, events * 2));
        }
        Ok(background)
    }

    /// `n` events of `brand`, created `age` ago, each with one delivery to `webhook` in
    /// `status`, in chunks.
    async fn seed(
        &self,
        brand: &str,
        webhook: &str,
        n: u64,
        status: &str,
        age: &str,
    ) -> anyhow::Result<()> {
        let webhook = Uuid::parse_str(webhook)?;
        let mut conn = self.pool.get().await?;
        let total = i64::try_from(n)?;
        let mut done = 0;
        while done < total {
            let chunk = SEED_CHUNK.min(total - done);
            diesel::sql_query(format!(
                "WITH ev AS ( \
                     INSERT INTO events (id, brand_id, event_type, payload, created) \
                     SELECT gen_random_uuid(), $1, 'ORDER_EVENTS.OMS.ORDER_SHIPPED', \
                         jsonb_build_object('seq', g, 'sentNs', 0), now() - interval '{age}' \
                     FROM generate_series(1, $2) g RETURNING id \
                 ) \
                 INSERT INTO deliveries (webhook_id, event_id, status, attempt_count) \
                 SELECT $3, id, $4, 1 FROM ev"
            ))
            .bind::<Text, _>(brand)
            .bind::<BigInt, _>(chunk)
            .bind::<SqlUuid, _>(webhook)
            .bind::<Text, _>(status)
            .execute(&mut conn)
            .await?;
            done += chunk;
        }
        diesel::sql_query("ANALYZE events, deliveries")
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Creates the recovery job; the purge is already waiting for the worker's next round.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        self.started_ns = unix_nanos();
        if let Some((api, _, webhook, _)) = &self.recovery {
            let since = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
            let url = format!(
                "{}/v1/{}/webhooks/{webhook}/recover",
                api.base.trim_end_matches('/'),
                api.brand
            );
            let res = api
                .client
                .post(&url)
                .bearer_auth(&api.token)
                .json(&json!({ "since": since }))
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            anyhow::ensure!(status == 202, "creating the recovery job: {status} {body}");
        }
        Ok(())
    }

    /// Waits (bounded by `timeout` from now) for the recovery's deliveries and the purge, then
    /// removes what was seeded and reports.
    pub async fn finish(self, timeout: Duration) -> anyhow::Result<BackgroundReport> {
        let deadline = tokio::time::Instant::now() + timeout;
        let recovery = async {
            let Some((_, receiver, _, n)) = &self.recovery else {
                return (0, 0, 0.0);
            };
            while receiver.unique() < *n && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let tally = receiver.tally();
            let seconds = tally
                .last_receipt_ns
                .map_or(0.0, |t| t.saturating_sub(self.started_ns) as f64 / 1e9);
            (*n, tally.unique, seconds)
        };
        let purge = async {
            let Some((api, _, rows)) = &self.purge else {
                return Ok::<_, anyhow::Error>((0, 0.0, false));
            };
            loop {
                let mut conn = self.pool.get().await?;
                let left: Vec<Count> =
                    diesel::sql_query("SELECT count(*) AS n FROM events WHERE brand_id = $1")
                        .bind::<Text, _>(&api.brand)
                        .load(&mut conn)
                        .await?;
                if left.iter().map(|c| c.n).sum::<i64>() == 0 {
                    let s = unix_nanos().saturating_sub(self.started_ns) as f64 / 1e9;
                    return Ok((*rows, s, false));
                }
                if tokio::time::Instant::now() >= deadline {
                    return Ok((*rows, 0.0, true));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let ((recovery_deliveries, recovery_received, recovery_s), purged) =
            tokio::join!(recovery, purge);
        let (purge_rows, purge_s, purge_timed_out) = purged?;
        let timed_out = purge_timed_out || recovery_received < recovery_deliveries;
        if let Some((api, _, webhook, _)) = &self.recovery {
            api.delete_webhook(webhook).await?;
        }
        if let Some((api, webhook, _)) = &self.purge {
            api.delete_webhook(webhook).await?;
        }
        let per_s = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        Ok(BackgroundReport {
            recovery_deliveries,
            recovery_received,
            recovery_s,
            recovery_per_s: per_s(recovery_received, recovery_s),
            purge_rows,
            purge_s,
            purge_rows_per_s: per_s(purge_rows, purge_s),
            timed_out,
        })
    }
}
