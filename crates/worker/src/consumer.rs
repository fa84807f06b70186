//! The consumer loop: takes messages from the delivery queue, runs [`Handler::handle_message`]
//! on the delivery pointers of each and acknowledges as soon as they are taken in Postgres
//! (the commit that makes Postgres responsible for them: from then on a lost worker is
//! recovered by the lease, and a redelivered copy would only be dropped as stale).
//!
//! `worker.concurrency` bounds the deliveries taken on but not yet sending — the queue's
//! backpressure. A delivery gives its permit back when its request starts or it is parked or
//! deferred, and a message is acknowledged before its requests run, so neither slow requests
//! nor unacknowledged messages (the prefetch) can be filled by one brand's hanging endpoints.
//!
//! Any number of workers consume the one queue; the broker spreads messages across them, and
//! `worker.prefetch` bounds what each holds unacknowledged. A lost broker connection is
//! re-established with backoff, and requests in flight finish meanwhile (their
//! acknowledgements are lost with the channel, so the broker redelivers those messages, which
//! the handler then drops as stale).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use futures::StreamExt as _;
use hookline_domain::DeliveryMessage;
use hookline_queue::Names;
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions},
};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{backoff::Backoff, delivery::handle::Handler};

/// How long a message whose handling hit a database error waits before it goes back to the
/// queue, so an outage does not turn into a redelivery storm.
const REQUEUE_DELAY: Duration = Duration::from_secs(1);

/// How long requests cut short at shutdown get to hand their deliveries back.
const HAND_BACK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub amqp_url: String,
    pub names: Names,
    pub prefetch: u16,
    pub concurrency: usize,
    /// How long in-flight deliveries may run on after shutdown starts.
    pub shutdown_grace: Duration,
    /// True while a consumer is registered on the queue (`/readyz`).
    pub consuming: Arc<AtomicBool>,
}

/// Consumes until `shutdown`, then stops consuming, lets in-flight deliveries finish within the
/// grace period, hands back the rest, and returns.
pub async fn run(handler: Arc<Handler>, config: ConsumerConfig, shutdown: CancellationToken) {
    let mut state = State {
        handler,
        slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
        stop_sends: CancellationToken::new(),
        tasks: JoinSet::new(),
    };
    let mut backoff = Backoff::default();
    while !shutdown.is_cancelled() {
        let result = state.session(&config, &shutdown, &mut backoff).await;
        config.consuming.store(false, Ordering::Relaxed);
        match result {
            Ok(()) => break,
            Err(e) => {
                warn!(error = %e, "delivery queue unavailable; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
    // Tasks of an earlier, broken session may still be running.
    state.drain(config.shutdown_grace).await;
}

struct State {
    handler: Arc<Handler>,
    /// `worker.concurrency` permits, one per delivery being handled.
    slots: Arc<Semaphore>,
    /// Cancelled when the grace period ends: requests still in flight are cut short.
    stop_sends: CancellationToken,
    /// Every spawned delivery; dropping it (the worker's future dropped) aborts them all.
    tasks: JoinSet<()>,
}

impl State {
    /// One connection's worth of consuming. Ok when stopped by `shutdown` (after draining, so
    /// the acknowledgements still have a channel); Err when the broker went away.
    async fn session(
        &mut self,
        config: &ConsumerConfig,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> anyhow::Result<()> {
        let conn = hookline_queue::connect(&config.amqp_url).await?;
        let tag = format!("hookline-worker-{}", uuid::Uuid::new_v4().simple());
        let (channel, mut consumer) =
            hookline_queue::consume(&conn, &config.names, config.prefetch, &tag).await?;
        backoff.reset();
        config.consuming.store(true, Ordering::Relaxed);
        info!(queue = %config.names.queue, prefetch = config.prefetch, "consuming deliveries");
        let concurrency = config.concurrency.max(1);
        loop {
            while self.tasks.try_join_next().is_some() {}
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                next = consumer.next() => next,
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("the broker ended the consumer"),
            };
            let Some(messages) = Handler::decode(&delivery.data) else {
                // Acknowledged so it is not redelivered.
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                continue;
            };
            // A permit per delivery the message points to: at most `concurrency` deliveries
            // are handled at once, and the broker holds back what is beyond `prefetch` for
            // the other workers. Only this loop acquires, so waiting here cannot deadlock.
            let wanted = u32::try_from(messages.len().clamp(1, concurrency)).unwrap_or(1);
            let permits = tokio::select! {
                () = shutdown.cancelled() => break,
                permits = self.slots.clone().acquire_many_owned(wanted) => permits?,
            };
            let handler = self.handler.clone();
            let stop = self.stop_sends.clone();
            self.tasks.spawn(async move {
                process(&handler, &messages, permits, delivery, &stop).await;
            });
        }
        // Stop taking messages; those prefetched but not started go back to the queue when the
        // channel closes, and their deliveries are still leased in Postgres.
        if let Err(e) = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await
        {
            warn!(error = %e, "could not cancel the consumer");
        }
        self.drain(config.shutdown_grace).await;
        let _ = channel.close(200, "shutdown".into()).await;
        let _ = conn.close(200, "shutdown".into()).await;
        Ok(())
    }

    /// Waits for in-flight deliveries up to `grace`; then cuts the rest short (they hand their
    /// deliveries back to Postgres, due now) and waits for that, bounded.
    async fn drain(&mut self, grace: Duration) {
        if self.tasks.is_empty() {
            return;
        }
        info!(
            in_flight = self.tasks.len(),
            "waiting for deliveries in flight"
        );
        let all_done = async |tasks: &mut JoinSet<()>| while tasks.join_next().await.is_some() {};
        if tokio::time::timeout(grace, all_done(&mut self.tasks))
            .await
            .is_err()
        {
            warn!(
                in_flight = self.tasks.len(),
                "grace period over; handing back deliveries still in flight"
            );
            self.stop_sends.cancel();
            if tokio::time::timeout(HAND_BACK_TIMEOUT, all_done(&mut self.tasks))
                .await
                .is_err()
            {
                // Their leases run out and the scheduler re-publishes them.
                self.tasks.abort_all();
            }
        }
    }
}

/// Handles one message and settles it with the broker: ack once its deliveries are taken in
/// Postgres. While the database is unreachable the message is held (the take is retried); only
/// when the worker stops meanwhile does it go back to the queue.
async fn process(
    handler: &Handler,
    messages: &[DeliveryMessage],
    permits: tokio::sync::OwnedSemaphorePermit,
    delivery: Delivery,
    stop: &CancellationToken,
) {
    let acker = delivery.acker.clone();
    let ack = move || {
        tokio::spawn(async move {
            if let Err(e) = acker.ack(BasicAckOptions::default()).await {
                // The channel is gone; the broker redelivers and the handler drops it as stale.
                warn!(error = %e, "could not acknowledge a taken message");
            }
        });
    };
    if let Err(e) = handler
        .handle_message(messages, Some(permits), true, ack, stop)
        .await
    {
        warn!(error = %e, "stopping with the database unavailable; the message goes back to the queue");
        tokio::time::sleep(REQUEUE_DELAY).await;
        let requeue = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        if let Err(e) = delivery.acker.nack(requeue).await {
            warn!(error = %e, "could not requeue a message; its lease will bring it back");
        }
    }
}
