//! Publishing after the commit, off the request path.
//!
//! Handlers hand the delivery messages of a committed ingest (or retry) to the [`Dispatcher`]
//! and answer at once; one background task publishes whatever has gathered as one batch with
//! pipelined publisher confirms. A request therefore never waits for the broker's fsync, and
//! many requests share one round of confirms.
//!
//! Nothing is lost on any path: the deliveries are committed and leased before they get here.
//! A failed publish releases the lease so the worker's scheduler publishes them at once; a
//! full buffer or a process killed before publishing leaves the lease to run out, after which
//! the scheduler publishes them.
//!
//! When spans are exported, each [`Dispatcher::send`] opens a `publish` span under the
//! request's span; it ends when the broker has confirmed (or refused) the round its messages
//! went out in. Otherwise no span is made.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use hookline_domain::DeliveryMessage;
use hookline_queue::Publisher;
use hookline_store::{deliveries, Pool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Messages buffered between handlers and the publishing task.
const BUFFER: usize = 65_536;
/// Most messages in one publish round.
const BATCH: usize = 4_096;
/// How long shutdown waits for the last round.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// A message and the `publish` span it belongs to (`Span::none()` when spans are not exported).
type Item = (DeliveryMessage, tracing::Span);

#[derive(Debug, Clone)]
pub struct Dispatcher {
    tx: mpsc::Sender<Item>,
    publisher: Arc<Publisher>,
}

impl Dispatcher {
    /// Starts the publishing task; when `stop` fires it publishes what is buffered (bounded)
    /// and ends, which the returned handle tells.
    pub fn start(
        publisher: Arc<Publisher>,
        pool: Pool,
        stop: CancellationToken,
    ) -> (Dispatcher, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(BUFFER);
        let task = tokio::spawn(run(rx, publisher.clone(), pool, stop));
        (Dispatcher { tx, publisher }, task)
    }

    /// Whether the broker is reachable (`/readyz`).
    pub async fn broker_up(&self) -> bool {
        self.publisher.check().await
    }

    /// Queues messages for publishing; never waits.
    pub fn send(&self, messages: impl IntoIterator<Item = DeliveryMessage>) {
        let span = if hookline_telemetry::trace::exporting() {
            tracing::info_span!(
                "publish",
                messages = tracing::field::Empty,
                otel.status_code = tracing::field::Empty
            )
        } else {
            tracing::Span::none()
        };
        let mut count = 0_u64;
        for message in messages {
            count += 1;
            if self.tx.try_send((message, span.clone())).is_err() {
                // Full (or stopping): the delivery's lease runs out and the scheduler sends it.
                metrics::counter!("hookline_dispatch_overflow_total").increment(1);
                tracing::warn!("dispatch buffer full; the scheduler will publish the delivery");
            }
        }
        span.record("messages", count);
    }
}

async fn run(
    mut rx: mpsc::Receiver<Item>,
    publisher: Arc<Publisher>,
    pool: Pool,
    stop: CancellationToken,
) {
    let mut items = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut items, BATCH) => {
                if n == 0 {
                    return;
                }
            }
            () = stop.cancelled() => {
                // Publish what handlers already queued, bounded, then stop.
                while let Ok(item) = rx.try_recv() {
                    items.push(item);
                }
                batch.extend(items.iter().map(|(m, _)| *m));
                let _ = tokio::time::timeout(FLUSH_TIMEOUT, publish(&publisher, &pool, &batch, &items)).await;
                return;
            }
        }
        batch.extend(items.iter().map(|(m, _)| *m));
        publish(&publisher, &pool, &batch, &items).await;
        batch.clear();
        // Ends the `publish` spans whose messages all went out.
        items.clear();
    }
}

async fn publish(publisher: &Publisher, pool: &Pool, batch: &[DeliveryMessage], items: &[Item]) {
    if batch.is_empty() {
        return;
    }
    let Err(e) = publisher.publish(batch).await else {
        return;
    };
    for (_, span) in items {
        span.record("otel.status_code", "ERROR");
    }
    tracing::warn!(error = %e, count = batch.len(), "publish failed; the scheduler will publish these deliveries");
    let released = match pool.get().await {
        Ok(mut conn) => deliveries::release(&mut conn, batch, Utc::now())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = released {
        // Still safe: the leases run out and the scheduler publishes them then.
        tracing::warn!(error = %e, "could not release the deliveries' leases");
    }
}
