//! The dead-letter loop: parks the deliveries of messages the delivery queue gave up on.
//!
//! The delivery queue dead-letters a message once it has come back unacknowledged more than
//! [`hookline_queue::DELIVERY_LIMIT`] times: a message that most likely kills each worker that
//! takes it (see the constant for what counts). Handing it to yet another worker would cost
//! that worker too; dropping it would leave its deliveries PENDING, and the scheduler would
//! re-publish them when their lease runs out and start the loop over. So its deliveries are
//! parked instead, with reason `worker_lost`: out of every worker's way, visible in the event
//! log, and replayable (the retry route, or re-enabling the webhook) once the cause is known.
//! Parking only decodes the pointers and runs one UPDATE — none of what handling a delivery
//! does (bodies, signing, HTTP) — so whatever kills the workers does not reach this loop.
//!
//! The dead-letter queue has no delivery limit: while the database is unreachable, a message
//! goes back to it after a pause and waits there. Parking is idempotent (only PENDING
//! deliveries are parked), so a message seen twice — an acknowledgement lost with the channel —
//! costs nothing. A malformed message has nothing to park: it is acknowledged and dropped, with
//! a warning. Every worker runs this loop; the broker spreads the (rare) messages across them.

use futures::StreamExt as _;
use hookline_domain::{lifecycle::reason, DeliveryMessage};
use hookline_queue::Names;
use hookline_store::{deliveries, Pool, StoreError};
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
    types::AMQPValue,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backoff::Backoff;

/// Dead-lettered messages one worker holds unacknowledged at most. They are rare and handled
/// one at a time; a few in hand save a round trip each without hoarding them.
const PREFETCH: u16 = 4;

/// How much of a malformed message's body the warning shows.
const MALFORMED_PREVIEW: usize = 200;

/// Consumes the dead-letter queue until `shutdown`, reconnecting with backoff when the broker
/// goes away, and parks the deliveries each message points to.
pub async fn run(pool: Pool, amqp_url: String, names: Names, shutdown: CancellationToken) {
    let mut backoff = Backoff::default();
    while !shutdown.is_cancelled() {
        match session(&pool, &amqp_url, &names, &shutdown, &mut backoff).await {
            Ok(()) => break,
            Err(e) => {
                warn!(
                    error = %e,
                    queue = %names.dead_queue,
                    "dead-letter queue unavailable; reconnecting"
                );
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
}

/// One connection's worth of consuming. Ok when stopped by `shutdown`; Err when the broker went
/// away.
async fn session(
    pool: &Pool,
    amqp_url: &str,
    names: &Names,
    shutdown: &CancellationToken,
    backoff: &mut Backoff,
) -> anyhow::Result<()> {
    let conn = hookline_queue::connect(amqp_url).await?;
    let tag = format!("hookline-dead-letter-{}", uuid::Uuid::new_v4().simple());
    let (channel, mut consumer) =
        hookline_queue::consume_dead(&conn, names, PREFETCH, &tag).await?;
    backoff.reset();
    info!(queue = %names.dead_queue, "consuming dead-lettered messages");
    // Pauses before requeueing while the database is unreachable; its own, so a long outage
    // does not spin through the queue.
    let mut database = Backoff::default();
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => break,
            next = consumer.next() => next,
        };
        match next {
            Some(Ok(delivery)) => settle(pool, delivery, &mut database, shutdown).await,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the broker ended the dead-letter consumer"),
        }
    }
    // Messages prefetched but not handled go back to the queue with the channel.
    let _ = channel.close(200, "shutdown".into()).await;
    let _ = conn.close(200, "shutdown".into()).await;
    Ok(())
}

/// Parks the message's deliveries and acknowledges it; drops a malformed one; requeues it after
/// a pause (cut short by `shutdown`) when the database could not be reached.
async fn settle(
    pool: &Pool,
    delivery: Delivery,
    database: &mut Backoff,
    shutdown: &CancellationToken,
) {
    let Ok(pointers) = DeliveryMessage::batch_from_bytes(&delivery.data) else {
        let preview = &delivery.data[..delivery.data.len().min(MALFORMED_PREVIEW)];
        warn!(
            bytes = delivery.data.len(),
            body = %String::from_utf8_lossy(preview),
            "dropping a malformed dead-lettered message: it points to no delivery"
        );
        ack(&delivery).await;
        return;
    };
    match park(pool, &pointers).await {
        Ok(()) => {
            database.reset();
            warn!(
                pointers = %list(&pointers),
                death = death_reason(&delivery).as_deref().unwrap_or("unknown"),
                "parked the deliveries of a dead-lettered message (reason worker_lost): it came \
                 back unacknowledged too often, most likely killing the workers that took it; \
                 replay them once the cause is found"
            );
            ack(&delivery).await;
        }
        Err(e) => {
            warn!(
                error = %e,
                pointers = %list(&pointers),
                "database unavailable; the dead-lettered message goes back to its queue"
            );
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(database.next_delay()) => {}
            }
            let requeue = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            if let Err(e) = delivery.acker.nack(requeue).await {
                // The channel is gone, and the message back in the queue with it.
                warn!(error = %e, "could not requeue a dead-lettered message");
            }
        }
    }
}

async fn park(pool: &Pool, pointers: &[DeliveryMessage]) -> Result<(), StoreError> {
    let mut conn = pool.get().await?;
    deliveries::park(&mut conn, pointers, reason::WORKER_LOST).await
}

async fn ack(delivery: &Delivery) {
    if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
        // The broker hands it out again; parking twice changes nothing.
        warn!(error = %e, "could not acknowledge a dead-lettered message");
    }
}

/// Why the broker dead-lettered the message (`x-first-death-reason`: `delivery_limit`,
/// `rejected`, ...), when it says.
fn death_reason(delivery: &Delivery) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get("x-first-death-reason")? {
        AMQPValue::LongString(reason) => Some(reason.to_string()),
        _ => None,
    }
}

/// `webhook_id/event_id` pairs, space-separated: what an operator needs to find and replay them.
fn list(pointers: &[DeliveryMessage]) -> String {
    pointers
        .iter()
        .map(|p| format!("{}/{}", p.webhook_id, p.event_id))
        .collect::<Vec<_>>()
        .join(" ")
}
