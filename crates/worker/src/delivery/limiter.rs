//! Endpoint isolation: a cap on the requests one worker has in flight to one endpoint.
//!
//! A slow or hanging endpoint would otherwise take every concurrency slot of the worker and
//! delay deliveries to healthy endpoints (DESIGN "Delivery contract"). Work for an endpoint at
//! its cap waits a moment for a slot (first come, first served), and if none frees in that
//! time it is deferred (handed back to Postgres), so a hanging endpoint holds a worker's
//! concurrency for at most that moment per delivery.

use hookline_telemetry::names;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per endpoint URL (the full URL as stored: two webhooks of one brand on different paths of
/// one host are different endpoints to the brand), a semaphore of `max` permits.
#[derive(Debug, Clone)]
pub struct EndpointLimiter {
    max: usize,
    endpoints: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// One in-flight request; the count goes down when it is dropped.
#[derive(Debug)]
pub struct Slot {
    limiter: EndpointLimiter,
    key: String,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl EndpointLimiter {
    pub fn new(max: usize) -> EndpointLimiter {
        EndpointLimiter {
            max: max.max(1),
            endpoints: Arc::default(),
        }
    }

    fn semaphore(&self, endpoint: &str) -> Arc<Semaphore> {
        let mut map = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(endpoint.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.max)))
            .clone()
    }

    fn slot(
        &self,
        endpoint: &str,
        semaphore: Arc<Semaphore>,
        permit: OwnedSemaphorePermit,
    ) -> Slot {
        let slot = Slot {
            limiter: self.clone(),
            key: endpoint.to_owned(),
            semaphore,
            permit: Some(permit),
        };
        slot.report();
        slot
    }

    /// A slot for `endpoint`, or `None` when it already has `max` requests in flight.
    pub fn try_acquire(&self, endpoint: &str) -> Option<Slot> {
        let semaphore = self.semaphore(endpoint);
        let permit = semaphore.clone().try_acquire_owned().ok()?;
        Some(self.slot(endpoint, semaphore, permit))
    }

    /// A slot for `endpoint`, waiting up to `wait` for one to free; `None` if none did.
    pub async fn acquire(&self, endpoint: &str, wait: Duration) -> Option<Slot> {
        let semaphore = self.semaphore(endpoint);
        let permit = match semaphore.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout(wait, semaphore.clone().acquire_owned())
                .await
                .ok()?
                .ok()?,
        };
        Some(self.slot(endpoint, semaphore, permit))
    }

    /// Requests in flight to `endpoint` (tests, metrics).
    pub fn in_flight(&self, endpoint: &str) -> usize {
        let map = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(endpoint)
            .map_or(0, |s| self.max - s.available_permits())
    }
}

impl Slot {
    fn report(&self) {
        let in_flight = self.limiter.max - self.semaphore.available_permits();
        metrics::gauge!(names::IN_FLIGHT, "endpoint" => self.key.clone()).set(in_flight as f64);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.report();
        // Forget idle endpoints so the map only holds what is in use. Under the map's lock
        // every holder of this semaphore went through the map, so the count is exact: the map
        // and this slot, and nobody waiting or in flight.
        let mut map = self
            .limiter
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if Arc::strong_count(&self.semaphore) == 2
            && self.semaphore.available_permits() == self.limiter.max
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_endpoint_separately_and_frees_on_drop() {
        let limiter = EndpointLimiter::new(2);
        let a1 = limiter.try_acquire("https://a/");
        let a2 = limiter.try_acquire("https://a/");
        assert!(a1.is_some() && a2.is_some());
        assert!(limiter.try_acquire("https://a/").is_none());
        assert!(limiter.try_acquire("https://b/").is_some());
        drop(a1);
        assert_eq!(limiter.in_flight("https://a/"), 1);
        assert!(limiter.try_acquire("https://a/").is_some());
        drop(a2);
        assert_eq!(limiter.in_flight("https://a/"), 0);
        assert!(
            limiter.endpoints.lock().expect("lock").is_empty(),
            "idle endpoints are forgotten"
        );
    }

    #[tokio::test]
    async fn waits_for_a_slot_to_free_then_gives_up() {
        let limiter = EndpointLimiter::new(1);
        let held = limiter.try_acquire("https://a/").expect("slot");
        assert!(
            limiter
                .acquire("https://a/", Duration::from_millis(20))
                .await
                .is_none(),
            "no slot frees: gives up after the wait"
        );
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter
                    .acquire("https://a/", Duration::from_secs(10))
                    .await
                    .is_some()
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(
            waiter.await.expect("join"),
            "the freed slot goes to the waiter"
        );
        assert_eq!(limiter.in_flight("https://a/"), 0);
    }
}
