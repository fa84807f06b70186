//! Group taking: the deliveries of many queue messages taken in one statement.
//!
//! Every message's deliveries must be taken in Postgres before anything is sent (the take is
//! what makes a message stale for any other copy). Taken one statement per message, a burst of
//! messages ran a statement each at once, and on a small database server those statements
//! competed with ingest for its cores. One taker task instead takes whatever messages are
//! waiting, up to `GROUP` (1,024) pointers, with one statement, and hands each message its share: the
//! statement count falls with the load, and a message waits at most for the statement in
//! progress and its own — never for a queue of other brands' statements.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use hookline_domain::DeliveryMessage;
use hookline_store::{
    worker_queries::{self, Taken},
    Pool, StoreError,
};
use tokio::sync::{mpsc, oneshot};

/// Most pointers taken by one statement (16 messages of 64).
const GROUP: usize = 1024;

type Reply = Result<Taken, StoreError>;
type Request = (Vec<DeliveryMessage>, oneshot::Sender<Reply>);

/// Hands messages to the taker task; cheap to clone.
#[derive(Debug, Clone)]
pub struct Taker {
    tx: mpsc::Sender<Request>,
}

impl Taker {
    /// Starts the taker task (it ends when every `Taker` clone is dropped). `lease` is the
    /// attempt lease a taken delivery gets; payloads up to `inline_payload_bytes` come along.
    pub fn start(pool: Pool, lease: Duration, inline_payload_bytes: usize) -> Taker {
        let (tx, rx) = mpsc::channel(GROUP);
        tokio::spawn(run(rx, pool, lease, inline_payload_bytes));
        Taker { tx }
    }

    /// Takes the deliveries of one message (in some group).
    pub async fn take(&self, messages: &[DeliveryMessage]) -> Reply {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the taker has stopped".into());
        self.tx
            .send((messages.to_vec(), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(mut rx: mpsc::Receiver<Request>, pool: Pool, lease: Duration, inline: usize) {
    let mut waiting: Vec<Request> = Vec::new();
    loop {
        if waiting.is_empty() && rx.recv_many(&mut waiting, GROUP).await == 0 {
            return;
        }
        // Whatever queued up while the last statement ran, up to GROUP pointers (at least
        // one message, however large).
        while let Ok(request) = rx.try_recv() {
            waiting.push(request);
        }
        let mut pointers = 0;
        let cut = waiting
            .iter()
            .position(|(m, _)| {
                pointers += m.len();
                pointers > GROUP
            })
            .unwrap_or(waiting.len())
            .max(1);
        let rest = waiting.split_off(cut);
        let group = std::mem::replace(&mut waiting, rest);
        take_group(&pool, group, lease, inline).await;
    }
}

/// One statement for the whole group; if it fails for a reason other than the database
/// being unreachable, each message is taken alone, so one the database refuses does not fail
/// the others.
async fn take_group(pool: &Pool, group: Vec<Request>, lease: Duration, inline: usize) {
    let all: Vec<DeliveryMessage> = group.iter().flat_map(|(m, _)| m.iter().copied()).collect();
    match take(pool, &all, lease, inline).await {
        Ok(taken) => {
            let (messages, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
            for (reply, share) in replies.into_iter().zip(split(taken, &messages)) {
                let _ = reply.send(Ok(share));
            }
        }
        Err(e) if group.len() == 1 || e.is_unavailable() => {
            let message = e.to_string();
            let mut first = Some(e);
            for (_, reply) in group {
                let err = first
                    .take()
                    .unwrap_or_else(|| StoreError::Unavailable(message.clone()));
                let _ = reply.send(Err(err));
            }
        }
        Err(_) => {
            for (messages, reply) in group {
                let _ = reply.send(take(pool, &messages, lease, inline).await);
            }
        }
    }
}

async fn take(
    pool: &Pool,
    messages: &[DeliveryMessage],
    lease: Duration,
    inline: usize,
) -> Result<Taken, StoreError> {
    let mut conn = pool.get().await?;
    worker_queries::take_for_attempts(&mut conn, messages, lease, inline).await
}

/// Each message's share of a group's take, in the order of `messages`. A pointer that two
/// messages of the group share is taken once: the first message gets it, the second sees it
/// as stale (as a second message for it would after the first was taken).
fn split(mut taken: Taken, messages: &[Vec<DeliveryMessage>]) -> Vec<Taken> {
    let mut jobs: HashMap<DeliveryMessage, _> = taken
        .jobs
        .drain(..)
        .map(|job| {
            let key = DeliveryMessage {
                webhook_id: job.delivery.webhook_id,
                event_id: job.delivery.event_id,
            };
            (key, job)
        })
        .collect();
    let gone: HashSet<DeliveryMessage> = taken.gone.drain(..).collect();
    messages
        .iter()
        .map(|pointers| {
            let mut share = Taken::default();
            for pointer in pointers {
                match jobs.remove(pointer) {
                    Some(job) => {
                        if let Some(payload) = taken.payloads.remove(&job.event.id) {
                            share.payloads.insert(job.event.id, payload);
                        }
                        share.jobs.push(job);
                    }
                    None if gone.contains(pointer) => share.gone.push(*pointer),
                    None => share.stale.push(*pointer),
                }
            }
            share
        })
        .collect()
}
