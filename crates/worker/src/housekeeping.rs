//! Housekeeping every worker runs beside delivery: bulk recovery jobs and the retention purge.
//!
//! Both are safe in any number of replicas at once. A recovery job belongs to the replica
//! holding its lease (`recovery.lease`); when that replica dies, another continues the job
//! where its last step ended. The purge deletes in short batches taken with `SKIP LOCKED`, so
//! replicas share the work and ingest and delivery never wait behind one long transaction.
//! Both run on a small pool of their own, so they cannot take the delivery pool's connections.

use std::time::{Duration, Instant};

use chrono::Utc;
use hookline_config::{RecoverySettings, RetentionSettings};
use hookline_queue::Publisher;
use hookline_store::{deliveries, recoveries, retention, Pool};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::backoff::Backoff;

/// How often the recovery loop steps the jobs it holds: small steps often, so a job's
/// deliveries reach the queue as a steady stream rather than in bursts.
const RECOVERY_TICK: Duration = Duration::from_millis(100);
/// How often it looks for jobs while it holds none.
const RECOVERY_IDLE: Duration = Duration::from_millis(500);
/// Most jobs one replica steps per tick.
const JOBS_PER_TICK: i64 = 64;
/// How often the recovery gauges are refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// What the recovery loop needs besides its settings: where to publish what it requeues, and
/// the lease a published delivery gets (`worker.lease`).
#[derive(Debug)]
pub struct Requeue {
    pub publisher: Publisher,
    pub delivery_lease: Duration,
}

/// Runs the recovery loop and the retention loop until `shutdown`.
pub async fn run(
    pool: Pool,
    recovery: RecoverySettings,
    requeue: Requeue,
    retention: RetentionSettings,
    shutdown: CancellationToken,
) {
    tokio::join!(
        run_recoveries(pool.clone(), recovery, requeue, shutdown.clone()),
        run_retention(pool, retention, shutdown),
    );
}

/// Steps every running job this replica can hold, each at `recovery.rate` deliveries per
/// second: a step requeues what the time since the job's last step allows, and publishes
/// what it made due (as ingest does), so it reaches the workers without waiting for the
/// scheduler's next round.
pub async fn run_recoveries(
    pool: Pool,
    settings: RecoverySettings,
    requeue: Requeue,
    shutdown: CancellationToken,
) {
    let owner = format!("worker-{}", Uuid::now_v7());
    let mut backoff = Backoff::default();
    let mut last_round = Instant::now();
    let mut last_gauges: Option<Instant> = None;
    loop {
        let round = recovery_round(&pool, &owner, &settings, &requeue, last_round.elapsed());
        let delay = match round.await {
            Ok(true) => {
                backoff.reset();
                RECOVERY_TICK
            }
            Ok(false) => {
                backoff.reset();
                RECOVERY_IDLE
            }
            Err(e) => {
                warn!(error = %e, "recovery round failed; backing off");
                backoff.next_delay().max(RECOVERY_TICK)
            }
        };
        last_round = Instant::now();
        if last_gauges.is_none_or(|t| t.elapsed() >= GAUGE_EVERY) {
            last_gauges = Some(Instant::now());
            if let Err(e) = recovery_gauges(&pool).await {
                debug!(error = %e, "could not refresh the recovery gauges");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Claims the jobs this replica may run and steps each once, requeuing `rate × elapsed`
/// deliveries (at least one, at most one second's worth), and publishes what became due; a
/// publish that fails hands those back to the scheduler. Whether it held any job.
async fn recovery_round(
    pool: &Pool,
    owner: &str,
    settings: &RecoverySettings,
    requeue: &Requeue,
    elapsed: Duration,
) -> anyhow::Result<bool> {
    let mut conn = pool.get().await?;
    let jobs = recoveries::claim(&mut conn, owner, settings.lease, JOBS_PER_TICK).await?;
    let share = elapsed.min(Duration::from_secs(1)).as_secs_f64();
    let batch = ((f64::from(settings.rate) * share).round() as u32).max(1);
    let held = !jobs.is_empty();
    for id in jobs {
        let step = recoveries::step(
            &mut conn,
            id,
            owner,
            batch,
            settings.lease,
            requeue.delivery_lease,
        )
        .await?;
        let Some(step) = step else {
            continue;
        };
        metrics::counter!(hookline_telemetry::names::RECOVERY_REQUEUED)
            .increment(u64::try_from(step.requeued).unwrap_or(0));
        if !step.due.is_empty() {
            if let Err(e) = requeue.publisher.publish(&step.due).await {
                // Due and unleased again: the scheduler publishes them when it can.
                warn!(error = %e, "could not publish recovered deliveries; the scheduler will");
                deliveries::release(&mut conn, &step.due, Utc::now()).await?;
            }
        }
        if step.state != recoveries::RUNNING {
            info!(recovery_id = %id, state = %step.state, "recovery job finished");
        }
    }
    Ok(held)
}

async fn recovery_gauges(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let counts = recoveries::counts(&mut conn).await?;
    for state in [
        recoveries::RUNNING,
        recoveries::DONE,
        recoveries::CANCELLED,
        recoveries::FAILED,
    ] {
        let n = counts.iter().find(|c| c.state == state).map_or(0, |c| c.n);
        metrics::gauge!(hookline_telemetry::names::RECOVERIES, "state" => state).set(n as f64);
    }
    Ok(())
}

/// Purges what is older than `retention.period` every `retention.interval`, in batches.
pub async fn run_retention(pool: Pool, settings: RetentionSettings, shutdown: CancellationToken) {
    loop {
        match purge(&pool, &settings, &shutdown).await {
            Ok(total) if total.events > 0 => info!(
                events = total.events,
                deliveries = total.deliveries,
                attempts = total.attempts,
                "retention purge deleted expired events"
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "retention purge failed; trying again next interval"),
        }
        if let Err(e) = oldest_gauge(&pool).await {
            debug!(error = %e, "could not refresh the oldest event gauge");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
    }
}

/// Deletes expired events batch by batch until a batch comes back short, resting between
/// batches nine times as long as each batch took. Returns what it deleted.
pub async fn purge(
    pool: &Pool,
    settings: &RetentionSettings,
    shutdown: &CancellationToken,
) -> anyhow::Result<retention::Purged> {
    let period = chrono::Duration::from_std(settings.period)?;
    let mut total = retention::Purged::default();
    loop {
        let cutoff = Utc::now() - period;
        let started = Instant::now();
        let purged = {
            let mut conn = pool.get().await?;
            retention::purge_batch(&mut conn, cutoff, i64::from(settings.batch)).await?
        };
        let took = started.elapsed();
        for (table, n) in [
            ("events", purged.events),
            ("deliveries", purged.deliveries),
            ("attempts", purged.attempts),
        ] {
            metrics::counter!(hookline_telemetry::names::RETENTION_DELETED, "table" => table)
                .increment(u64::try_from(n).unwrap_or(0));
        }
        total.events += purged.events;
        total.deliveries += purged.deliveries;
        total.attempts += purged.attempts;
        if purged.events < i64::from(settings.batch) || shutdown.is_cancelled() {
            return Ok(total);
        }
        tokio::time::sleep(settings.pause.max(took * PURGE_REST)).await;
    }
}

/// A purge rests this many times as long as its last batch took (and at least
/// `retention.pause`): it uses at most a tenth of one connection's time, so a large backlog
/// of expired rows is worked off steadily instead of taking the database's cores from ingest
/// and delivery (measured beside single-event ingest at 500 events/s, README "Performance").
const PURGE_REST: u32 = 9;

async fn oldest_gauge(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let age = retention::oldest_event(&mut conn).await?.map_or(0.0, |t| {
        (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
    });
    metrics::gauge!(hookline_telemetry::names::OLDEST_EVENT_AGE).set(age);
    Ok(())
}
