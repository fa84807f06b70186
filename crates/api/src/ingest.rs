//! Group commit for single-event ingest.
//!
//! Every `POST /v1/{brandId}/events` needs its own durable commit, and a commit waits for the
//! disk. Rather than one transaction per request, requests hand their validated event to a
//! few committer tasks; each takes everything queued (up to `GROUP`, 256) and stores it with one
//! [`events::ingest_batch`] transaction, then answers every request of the group. Under load
//! many requests share one fsync; alone, a request is a group of one and waits no longer than
//! before. The answer still comes only after the commit, so a 202 means the event is stored.

use std::sync::Arc;

use hookline_store::{events, models::NewEvent, Pool, StoreError};
use hookline_telemetry::trace::TraceContext;
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

/// Most events in one group commit.
const GROUP: usize = 256;
/// Committer tasks: while one waits for its commit, the others gather and write the next.
const COMMITTERS: usize = 4;

/// An event validated by the handler, owned so it can cross to a committer task.
#[derive(Debug)]
pub struct PendingEvent {
    pub id: Uuid,
    pub brand_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub idempotency_key: Option<String>,
    /// The event type and its ancestors (what subscriptions match it).
    pub match_types: Vec<String>,
    /// The request's trace context, stored with the event (`None`: stored without one).
    pub trace: Option<TraceContext>,
}

type Reply = Result<events::Ingested, StoreError>;

struct Job {
    event: PendingEvent,
    reply: oneshot::Sender<Reply>,
}

#[derive(Debug, Clone)]
pub struct IngestQueue {
    tx: mpsc::Sender<Job>,
}

impl IngestQueue {
    pub fn start(pool: Pool, lease: std::time::Duration) -> IngestQueue {
        let (tx, rx) = mpsc::channel(GROUP * COMMITTERS * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..COMMITTERS {
            tokio::spawn(committer(rx.clone(), pool.clone(), lease));
        }
        IngestQueue { tx }
    }

    /// Stores `event` (in some group) and returns what the store did with it.
    pub async fn ingest(&self, event: PendingEvent) -> Reply {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the ingest queue has stopped".into());
        self.tx
            .send(Job { event, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn committer(rx: Arc<Mutex<mpsc::Receiver<Job>>>, pool: Pool, lease: std::time::Duration) {
    let mut jobs = Vec::with_capacity(GROUP);
    loop {
        let n = rx.lock().await.recv_many(&mut jobs, GROUP).await;
        if n == 0 {
            return;
        }
        let results = commit(&pool, &jobs, lease).await;
        for (job, result) in jobs.drain(..).zip(results) {
            // The request may have gone (client hung up); the event is stored either way.
            let _ = job.reply.send(result);
        }
    }
}

/// One result per job. If the group's transaction fails, each event is tried alone, so one
/// event the database refuses does not fail the others with it.
async fn commit(pool: &Pool, jobs: &[Job], lease: std::time::Duration) -> Vec<Reply> {
    match store(pool, jobs, lease).await {
        Ok(ingested) => ingested.into_iter().map(Ok).collect(),
        Err(e) if jobs.len() == 1 || e.is_unavailable() => {
            let message = e.to_string();
            let mut first = Some(e);
            jobs.iter()
                .map(|_| {
                    Err(first
                        .take()
                        .unwrap_or_else(|| StoreError::Unavailable(message.clone())))
                })
                .collect()
        }
        Err(_) => {
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                let one = store(pool, std::slice::from_ref(job), lease).await;
                out.push(one.and_then(|mut v| v.pop().ok_or(StoreError::NotFound)));
            }
            out
        }
    }
}

async fn store(
    pool: &Pool,
    jobs: &[Job],
    lease: std::time::Duration,
) -> Result<Vec<events::Ingested>, StoreError> {
    let news: Vec<NewEvent> = jobs
        .iter()
        .map(|j| NewEvent {
            id: j.event.id,
            brand_id: &j.event.brand_id,
            event_type: &j.event.event_type,
            payload: &j.event.payload,
            idempotency_key: j.event.idempotency_key.as_deref(),
        })
        .collect();
    let match_types: Vec<Vec<String>> = jobs.iter().map(|j| j.event.match_types.clone()).collect();
    let traces: Vec<events::TraceContext> = jobs
        .iter()
        .map(|j| events::TraceContext {
            traceparent: j.event.trace.as_ref().map(|t| t.traceparent.as_str()),
            tracestate: j.event.trace.as_ref().and_then(|t| t.tracestate.as_deref()),
        })
        .collect();
    let mut conn = pool.get().await?;
    events::ingest_traced(&mut conn, &news, &match_types, &traces, lease).await
}
