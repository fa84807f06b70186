//! Drives `units` requests either closed-loop (a fixed number of workers, each sending its next
//! request when the previous one is answered) or open-loop (requests started at a fixed rate
//! whatever the answers, with a cap on how many may be in flight).

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{sync::Semaphore, task::JoinSet, time::Instant};

#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// `concurrency` workers, back to back.
    Closed { concurrency: usize },
    /// `per_second` units started per second; at most `max_in_flight` at once (when the cap is
    /// reached, starts wait, and the achieved rate falls below the offered one).
    Open {
        per_second: f64,
        max_in_flight: usize,
    },
}

/// Runs `send(i)` for every `i` in `0..units` at the given pace; returns when all are done.
pub async fn drive<F, Fut>(units: u64, pace: Pace, send: F)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let send = Arc::new(send);
    let mut tasks = JoinSet::new();
    match pace {
        Pace::Closed { concurrency } => {
            let next = Arc::new(AtomicU64::new(0));
            for _ in 0..concurrency.max(1) {
                let (next, send) = (next.clone(), send.clone());
                tasks.spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= units {
                            return;
                        }
                        send(i).await;
                    }
                });
            }
        }
        Pace::Open {
            per_second,
            max_in_flight,
        } => {
            let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
            let start = Instant::now();
            let interval = 1.0 / per_second.max(f64::MIN_POSITIVE);
            for i in 0..units {
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 * interval))
                    .await;
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let send = send.clone();
                tasks.spawn(async move {
                    send(i).await;
                    drop(slot);
                });
                // Reap finished tasks as we go so the set stays small.
                while tasks.try_join_next().is_some() {}
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}
