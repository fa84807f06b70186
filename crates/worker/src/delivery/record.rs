//! Group recording: the attempts of many concurrent deliveries written in one statement.
//!
//! Each handler hands its attempt to the [`Recorder`] and waits; a few recorder tasks take
//! whatever has gathered (up to `GROUP`, 256, waiting at most `LINGER`, 5 ms, for more) and write it
//! with [`deliveries::record_attempts`] — one statement for the whole group — then answer
//! every handler. A handler acknowledges its message only after that answer, so the rule "ack
//! after the commit" holds; under load, hundreds of deliveries share one commit instead of
//! each paying round trips of its own.

use std::sync::Arc;

use hookline_store::{
    deliveries::{self, HealthChanged, Recorded},
    Pool, StoreError,
};

use crate::endpoints::Endpoints;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Most attempts in one transaction.
const GROUP: usize = 256;
/// Recorder tasks: while one waits for its commit, another gathers the next group.
const RECORDERS: usize = 2;
/// How long a group gathers after its first attempt before it is written.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

type Reply = Result<(), StoreError>;

#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<(Arc<Recorded>, oneshot::Sender<Reply>)>,
}

impl Recorder {
    /// Starts the recorder tasks (they end when every `Recorder` clone is dropped).
    pub fn start(pool: Pool, endpoints: Endpoints) -> Recorder {
        let (tx, rx) = mpsc::channel(GROUP * RECORDERS * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..RECORDERS {
            tokio::spawn(run(rx.clone(), pool.clone(), endpoints.clone()));
        }
        Recorder { tx }
    }

    /// Records one attempt (in some group); Ok once its statement committed. Shared, so a
    /// caller that tries again after an outage does not copy the attempt each time.
    pub async fn record(&self, recorded: Arc<Recorded>) -> Reply {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the recorder has stopped".into());
        self.tx
            .send((recorded, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

type Queue = Arc<Mutex<mpsc::Receiver<(Arc<Recorded>, oneshot::Sender<Reply>)>>>;

async fn run(rx: Queue, pool: Pool, endpoints: Endpoints) {
    let mut group = Vec::with_capacity(GROUP);
    loop {
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut group, GROUP).await == 0 {
                return;
            }
            // Let the group fill a little: a handler waits a few milliseconds more for its
            // acknowledgement (no endpoint waits), and the database gets one statement for
            // many attempts instead of one each when deliveries trickle in.
            if group.len() < GROUP {
                let _ = tokio::time::timeout(LINGER, async {
                    while group.len() < GROUP {
                        let room = GROUP - group.len();
                        if rx.recv_many(&mut group, room).await == 0 {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        let (rows, replies): (Vec<Arc<Recorded>>, Vec<_>) = group.drain(..).unzip();
        let (results, changed) = write(&pool, &rows, endpoints.failure_threshold()).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
        if !changed.is_empty() {
            let endpoints = endpoints.clone();
            tokio::spawn(async move { endpoints.evaluate(&changed, &rows).await });
        }
    }
}

/// One result per attempt, and the webhooks whose health needs a look. If the group's
/// statement fails for a reason other than the database being unreachable, each attempt is
/// written alone, so one row the database refuses does not fail the attempts of other
/// endpoints written with it.
async fn write(
    pool: &Pool,
    rows: &[Arc<Recorded>],
    threshold: u32,
) -> (Vec<Reply>, Vec<HealthChanged>) {
    match write_group(pool, rows, threshold).await {
        Ok(changed) => (rows.iter().map(|_| Ok(())).collect(), changed),
        Err(e) if rows.len() == 1 || e.is_unavailable() => {
            // Nothing of the group was written: every handler hears why.
            let mut first = Some(e);
            let message = first.as_ref().map(ToString::to_string).unwrap_or_default();
            let replies = rows
                .iter()
                .map(|_| {
                    Err(first
                        .take()
                        .unwrap_or_else(|| StoreError::Unavailable(message.clone())))
                })
                .collect();
            (replies, Vec::new())
        }
        Err(_) => {
            let mut out = Vec::with_capacity(rows.len());
            let mut changed = Vec::new();
            for row in rows {
                match write_group(pool, std::slice::from_ref(row), threshold).await {
                    Ok(c) => {
                        changed.extend(c);
                        out.push(Ok(()));
                    }
                    Err(e) => out.push(Err(e)),
                }
            }
            (out, changed)
        }
    }
}

async fn write_group(
    pool: &Pool,
    rows: &[Arc<Recorded>],
    threshold: u32,
) -> Result<Vec<HealthChanged>, StoreError> {
    let mut conn = pool.get().await?;
    deliveries::record_attempts(&mut conn, rows, threshold).await
}
