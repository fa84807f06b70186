//! Tenant isolation inside one worker: requests in flight are capped per brand and, within a
//! brand, per destination host (`host:port`), so a brand's slow, hanging or failing endpoints
//! can use only its own share of the worker. The host budget is the brand's own: two brands
//! whose webhooks point at one shared host (a SaaS inbox, an automation platform) do not share
//! it, so one brand's hanging endpoints there cannot defer the other's deliveries.
//!
//! A delivery needs a slot of its brand and a slot of its host. When either is full:
//! - if that budget is making progress and a slot is expected within the wait window (the
//!   waiters ahead times the recent interval between freed slots), the delivery waits for one:
//!   a busy but healthy endpoint keeps its throughput without a flood of deferrals, and a slow
//!   one gets only as many waiters as it can serve in that window;
//! - otherwise (its requests hang, or it is too slow for another waiter), the delivery is
//!   deferred at once: handed back to Postgres with a delay, no attempt consumed. The longer a
//!   budget has been stalled, the longer the delay, so hanging endpoints do not make the worker
//!   churn.
//!
//! A slot is held from the start of the request to its end; nothing else in the worker is held
//! by a request, so a hanging request costs one slot of its own brand and host and nothing of
//! anybody else's.

use hookline_telemetry::names;
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Duration,
};

use rand::Rng as _;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

/// Waiters a busy budget may have per slot, at most: enough that one fast endpoint keeps a
/// worker's whole queue backpressure (`worker.concurrency`, 256, against 64 slots) busy instead of
/// deferring what it cannot start this instant (the batch benchmark ran at a third of its
/// throughput with one waiter per slot), while the pace rule keeps each wait short.
const WAITERS_PER_SLOT: usize = 4;

/// Which budget: a brand's, or a brand's share of one host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Brand(String),
    Host { brand: String, host: String },
}

/// One budget: its slots, who waits for them, and how fast slots are freed.
#[derive(Debug)]
struct Gate {
    slots: Arc<Semaphore>,
    max: usize,
    waiting: AtomicUsize,
    progress: Mutex<Progress>,
    /// Deliveries deferred recently, and since when they are counted.
    deferred: Mutex<(usize, Instant)>,
}

/// How a stalled budget is told from a busy one, and how long a waiter would wait.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// When a slot was last freed (or the gate was made).
    last: Instant,
    /// Moving average of the time between freed slots; `None` until two were freed.
    interval: Option<Duration>,
}

impl Gate {
    fn new(max: usize) -> Gate {
        Gate {
            slots: Arc::new(Semaphore::new(max)),
            max,
            waiting: AtomicUsize::new(0),
            progress: Mutex::new(Progress {
                last: Instant::now(),
                interval: None,
            }),
            deferred: Mutex::new((0, Instant::now())),
        }
    }

    /// Counts one more deferral and says how much pressure the budget is under: the
    /// deliveries deferred within the last `window`, in multiples of its slots.
    fn defer_pressure(&self, now: Instant, window: Duration) -> f64 {
        let mut d = self.deferred.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(d.1) > window {
            *d = (0, now);
        }
        d.0 += 1;
        d.0 as f64 / self.max as f64
    }

    fn in_flight(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    fn progress(&self) -> Progress {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn freed(&self, now: Instant) {
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        let gap = now.saturating_duration_since(p.last);
        p.interval = Some(match p.interval {
            Some(avg) => avg.mul_f64(0.8) + gap.mul_f64(0.2),
            None => gap,
        });
        p.last = now;
    }

    /// How long the budget has been full without freeing a slot (zero when not full).
    fn stalled_for(&self, now: Instant) -> Duration {
        if self.slots.available_permits() > 0 {
            return Duration::ZERO;
        }
        now.saturating_duration_since(self.progress().last)
    }

    /// Whether one more waiter would likely get a slot within `window`: the waiters ahead of
    /// it, one slot each, at the recent pace. Before any pace is known, at most as many as the
    /// budget has slots; never more than [`WAITERS_PER_SLOT`] per slot (a waiter holds one of
    /// the worker's queue permits).
    fn can_wait(&self, window: Duration) -> bool {
        let ahead = self.waiting.load(Ordering::Relaxed);
        if ahead >= self.max.saturating_mul(WAITERS_PER_SLOT) {
            return false;
        }
        match self.progress().interval {
            Some(interval) => {
                interval.saturating_mul(u32::try_from(ahead + 1).unwrap_or(u32::MAX)) <= window
            }
            None => ahead < self.max,
        }
    }
}

/// The caps and the budgets in use. Cheap to clone; one per worker.
#[derive(Debug, Clone)]
pub struct Budgets {
    per_host: usize,
    per_brand: usize,
    /// A full budget that freed no slot for this long is stalled: deferred at once.
    stall: Duration,
    /// The shortest deferral; also how long a delivery may wait for a busy budget.
    defer_delay: Duration,
    /// The longest deferral (about the request timeout: a hanging request frees its slot by
    /// then at the latest).
    defer_max: Duration,
    gates: Arc<Mutex<HashMap<Key, Arc<Gate>>>>,
}

/// Slots of one brand and one host, held for one request; freed when dropped.
#[derive(Debug)]
pub struct Slot {
    budgets: Budgets,
    held: Vec<(Key, Arc<Gate>, OwnedSemaphorePermit)>,
    /// Whether both slots were had (a request ran); a half-taken slot given back at once says
    /// nothing about the budget's pace.
    complete: bool,
}

/// Why a delivery did not get a slot now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Its budgets are busy but moving: it may wait up to the returned time for a slot.
    Wait(Duration),
    /// Defer it for this long (the budget is stalled, or enough already wait).
    Defer(Duration),
}

/// The `host:port` budget key of an endpoint URL (the URL itself when it does not parse, which
/// the sender then refuses anyway).
pub fn host_of(endpoint: &str) -> String {
    match reqwest::Url::parse(endpoint) {
        Ok(url) => match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{}:{port}", host.to_ascii_lowercase()),
            (Some(host), None) => host.to_ascii_lowercase(),
            _ => endpoint.to_owned(),
        },
        Err(_) => endpoint.to_owned(),
    }
}

impl Budgets {
    pub fn new(
        per_host: usize,
        per_brand: usize,
        defer_delay: Duration,
        defer_max: Duration,
    ) -> Budgets {
        Budgets {
            per_host: per_host.max(1),
            per_brand: per_brand.max(1),
            stall: defer_delay.max(Duration::from_millis(50)),
            defer_delay,
            defer_max: defer_max.max(defer_delay),
            gates: Arc::default(),
        }
    }

    fn gate(&self, key: &Key) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        let max = match key {
            Key::Brand(_) => self.per_brand,
            Key::Host { .. } => self.per_host,
        };
        gates
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Gate::new(max)))
            .clone()
    }

    fn keys(brand: &str, host: &str) -> [Key; 2] {
        // Always brand, then host: every delivery takes its slots in the same order.
        [
            Key::Brand(brand.to_owned()),
            Key::Host {
                brand: brand.to_owned(),
                host: host.to_owned(),
            },
        ]
    }

    /// ±50 %: deferred work comes back spread over a whole delay rather than as one burst
    /// that would queue ahead of other brands' messages.
    fn jittered(d: Duration) -> Duration {
        d.mul_f64(rand::rng().random_range(0.5..=1.5))
    }

    /// Both slots now, or why not.
    pub fn try_acquire(&self, brand: &str, host: &str) -> Result<Slot, Busy> {
        let mut slot = Slot {
            budgets: self.clone(),
            held: Vec::with_capacity(2),
            complete: false,
        };
        let now = Instant::now();
        for key in Self::keys(brand, host) {
            let gate = self.gate(&key);
            match gate.slots.clone().try_acquire_owned() {
                Ok(permit) => slot.held.push((key, gate, permit)),
                Err(_) => {
                    let stalled = gate.stalled_for(now);
                    if stalled < self.stall && gate.can_wait(self.defer_delay) {
                        return Err(Busy::Wait(self.defer_delay));
                    }
                    // Deferred for as long as the budget has been stalled, and longer the more
                    // work it already turned away: a brand with thousands of deliveries behind
                    // a hanging endpoint has them offered again spread over many seconds, not
                    // all at once every `defer_delay`.
                    let pressure = gate.defer_pressure(now, self.defer_max);
                    let delay = stalled
                        .max(self.defer_delay.mul_f64(1.0 + pressure))
                        .clamp(self.defer_delay, self.defer_max);
                    return Err(Busy::Defer(Self::jittered(delay)));
                }
            }
        }
        slot.complete = true;
        slot.report();
        Ok(slot)
    }

    /// Waits up to `wait` for both slots (see [`Busy::Wait`]); on time-out, how long to defer.
    pub async fn acquire(&self, brand: &str, host: &str, wait: Duration) -> Result<Slot, Duration> {
        let deadline = Instant::now() + wait;
        let mut slot = Slot {
            budgets: self.clone(),
            held: Vec::with_capacity(2),
            complete: false,
        };
        for key in Self::keys(brand, host) {
            let gate = self.gate(&key);
            gate.waiting.fetch_add(1, Ordering::Relaxed);
            let permit =
                tokio::time::timeout_at(deadline, gate.slots.clone().acquire_owned()).await;
            gate.waiting.fetch_sub(1, Ordering::Relaxed);
            match permit {
                Ok(Ok(permit)) => slot.held.push((key, gate, permit)),
                _ => return Err(Self::jittered(self.defer_delay)),
            }
        }
        slot.complete = true;
        slot.report();
        Ok(slot)
    }

    /// Whether the brand's budget, or its budget for the host, is full and has freed no slot
    /// for the stall time: its requests hang rather than move.
    pub fn is_stalled(&self, brand: &str, host: &str) -> bool {
        let now = Instant::now();
        let gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        Self::keys(brand, host).iter().any(|key| {
            gates
                .get(key)
                .is_some_and(|gate| gate.stalled_for(now) >= self.stall)
        })
    }

    /// Requests in flight for a brand (tests, metrics).
    pub fn brand_in_flight(&self, brand: &str) -> usize {
        self.in_flight(&Key::Brand(brand.to_owned()))
    }

    /// Requests in flight for a brand to a `host:port` (tests, metrics).
    pub fn host_in_flight(&self, brand: &str, host: &str) -> usize {
        self.in_flight(&Key::Host {
            brand: brand.to_owned(),
            host: host.to_owned(),
        })
    }

    fn in_flight(&self, key: &Key) -> usize {
        let gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        gates.get(key).map_or(0, |g| g.in_flight())
    }
}

impl Slot {
    /// The in-flight gauge of each host gets one more request (every brand's together: the
    /// metric is per host, never per URL, whose path or query may hold a token).
    fn report(&self) {
        for (key, _, _) in &self.held {
            if let Key::Host { host, .. } = key {
                metrics::gauge!(names::IN_FLIGHT, "host" => host.clone()).increment(1.0);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let now = Instant::now();
        let held = std::mem::take(&mut self.held);
        let mut gates = self
            .budgets
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (key, gate, permit) in held {
            drop(permit);
            if self.complete {
                gate.freed(now);
            }
            if let (Key::Host { host, .. }, true) = (&key, self.complete) {
                metrics::gauge!(names::IN_FLIGHT, "host" => host.clone()).decrement(1.0);
            }
            // Forget idle budgets so the map only holds what is in use. Under the map's lock
            // every holder of a gate went through the map, so the count is exact: the map and
            // this slot, nobody waiting and nothing in flight.
            if Arc::strong_count(&gate) == 2
                && gate.in_flight() == 0
                && gate.waiting.load(Ordering::Relaxed) == 0
            {
                gates.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> Budgets {
        Budgets::new(2, 3, Duration::from_millis(100), Duration::from_secs(15))
    }

    #[test]
    fn host_keys_are_host_and_port() {
        assert_eq!(host_of("https://Example.com/a?x=1"), "example.com:443");
        assert_eq!(host_of("http://127.0.0.1:9000/hooks/1"), "127.0.0.1:9000");
        assert_eq!(host_of("not a url"), "not a url");
    }

    #[tokio::test]
    async fn caps_per_host_and_per_brand_and_frees_on_drop() {
        let b = budgets();
        let a1 = b.try_acquire("a", "h1:443").expect("slot");
        let a2 = b.try_acquire("a", "h1:443").expect("slot");
        assert!(
            b.try_acquire("a", "h1:443").is_err(),
            "brand a's share of h1 is full"
        );
        let z = b
            .try_acquire("z", "h1:443")
            .expect("brand z's share of the same host is its own");
        let a3 = b.try_acquire("a", "h2:443").expect("another host");
        assert!(b.try_acquire("a", "h3:443").is_err(), "brand a is full");
        assert!(b.try_acquire("z", "h3:443").is_ok(), "other brands are not");
        assert_eq!(
            (b.brand_in_flight("a"), b.host_in_flight("a", "h1:443")),
            (3, 2)
        );
        drop(z);
        drop((a1, a2, a3));
        assert_eq!(b.brand_in_flight("a"), 0);
        assert!(
            b.gates.lock().expect("lock").is_empty(),
            "idle budgets are forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_budget_may_be_waited_for_a_stalled_one_is_deferred() {
        let b = budgets();
        let held = [
            b.try_acquire("a", "h:1").expect("slot"),
            b.try_acquire("a", "h:1").expect("slot"),
        ];
        // Just filled: busy, not stalled.
        assert_eq!(
            b.try_acquire("a", "h:1").err(),
            Some(Busy::Wait(Duration::from_millis(100)))
        );
        // A slot frees while one waits: the waiter gets it.
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire("a", "h:1", Duration::from_millis(100)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let [first, second] = held;
        drop(first);
        let got = waiter.await.expect("join").expect("slot");
        // Nothing frees for longer than the stall window: deferred at once, for about as long
        // as it has been stalled.
        tokio::time::sleep(Duration::from_secs(2)).await;
        match b.try_acquire("a", "h:1") {
            Err(Busy::Defer(d)) => assert!(
                d >= Duration::from_millis(1000) && d <= Duration::from_millis(3000),
                "{d:?}"
            ),
            other => panic!("expected a deferral, got {other:?}"),
        }
        // A waiter that times out is told to defer.
        assert!(b
            .acquire("a", "h:1", Duration::from_millis(50))
            .await
            .is_err());
        drop((got, second));
    }
}
