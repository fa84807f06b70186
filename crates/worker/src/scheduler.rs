//! The scheduler: publishes deliveries that are due — retries whose time has come, publishes
//! that failed, leases that ran out (a worker killed mid-delivery, a message lost with the
//! broker), deferred work, released parked work and the probes of degraded endpoints. Every
//! worker runs one; `claim_due` takes rows with `FOR UPDATE SKIP LOCKED`, so copies running at
//! once never hand out a row twice.

use std::time::Duration;

use chrono::Utc;
use hookline_queue::Publisher;
use hookline_store::{deliveries, Pool};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{backoff::Backoff, endpoints::Endpoints};

/// Deliveries claimed per round trip. A full batch means more are waiting, so the next batch
/// is claimed at once rather than after the interval.
pub const BATCH: i64 = 500;

/// How often the backlog gauge (`hookline_deliveries_due`) is recounted.
const GAUGE_REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    pub interval: Duration,
    /// How long a published delivery belongs to its message (`worker.lease`).
    pub lease: Duration,
    /// Workers a delivery may lose in a row before it is parked (`worker.lost_limit`).
    pub lost_limit: u32,
}

/// Runs until `shutdown`.
pub async fn run(
    pool: Pool,
    publisher: Publisher,
    endpoints: Endpoints,
    config: SchedulerConfig,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut delay = Duration::ZERO;
    let mut counted: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        // The backlog gauge counts every due row: refreshed now and then, not every round, so
        // a round's cost stays what is due now (at most `BATCH` rows through the index).
        if counted.is_none_or(|at| at.elapsed() >= GAUGE_REFRESH) {
            counted = Some(tokio::time::Instant::now());
            if let Err(e) = refresh_backlog_gauge(&pool).await {
                debug!(error = %e, "could not count due deliveries");
            }
        }
        if let Err(e) = health_round(&endpoints, &publisher, config.lease).await {
            warn!(error = %e, "endpoint health round failed");
        }
        delay = match tick(&pool, &publisher, config).await {
            Ok(n) if i64::try_from(n).is_ok_and(|n| n >= BATCH) => Duration::ZERO,
            Ok(_) => {
                backoff.reset();
                config.interval
            }
            Err(e) => {
                warn!(error = %e, "scheduler round failed; backing off");
                backoff.next_delay().max(config.interval)
            }
        };
    }
}

/// One round: claim what is due, publish it; when the publish fails, release the claim so the
/// next round (here or in another worker) tries again instead of waiting for the lease.
pub async fn tick(
    pool: &Pool,
    publisher: &Publisher,
    config: SchedulerConfig,
) -> anyhow::Result<usize> {
    let claimed = {
        let mut conn = pool.get().await?;
        deliveries::claim_due(&mut conn, BATCH, config.lease, config.lost_limit).await?
    };
    publish_or_release(pool, publisher, claimed).await
}

async fn refresh_backlog_gauge(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let due = deliveries::count_due(&mut conn).await?;
    metrics::gauge!(hookline_telemetry::names::DELIVERIES_DUE).set(due as f64);
    Ok(())
}

/// Probes due for degraded endpoints are published; parked deliveries of recovered ones are
/// released (made due, so the claim that follows publishes them); gauges are refreshed.
async fn health_round(
    endpoints: &Endpoints,
    publisher: &Publisher,
    lease: Duration,
) -> anyhow::Result<()> {
    endpoints.report().await?;
    let probes = endpoints.round(lease).await?;
    if !probes.is_empty() {
        debug!(
            probes = probes.len(),
            "publishing probes of degraded endpoints"
        );
        if let Err(e) = publisher.publish(&probes).await {
            // Their leases run out and the claim of due deliveries publishes them.
            warn!(error = %e, "could not publish probes");
        }
    }
    Ok(())
}

/// Publishes what was claimed; when the publish fails, releases the claim so the next round
/// (here or in another worker) tries again instead of waiting for the lease.
async fn publish_or_release(
    pool: &Pool,
    publisher: &Publisher,
    claimed: Vec<hookline_domain::DeliveryMessage>,
) -> anyhow::Result<usize> {
    if claimed.is_empty() {
        return Ok(0);
    }
    if let Err(e) = publisher.publish(&claimed).await {
        let released = match pool.get().await {
            Ok(mut conn) => deliveries::release(&mut conn, &claimed, Utc::now())
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(r) = released {
            // The lease runs out by itself; nothing is lost, only delayed.
            warn!(error = %r, "could not release unpublished deliveries");
        }
        return Err(anyhow::anyhow!(
            "publishing {} due deliveries: {e}",
            claimed.len()
        ));
    }
    debug!(published = claimed.len(), "published due deliveries");
    Ok(claimed.len())
}
