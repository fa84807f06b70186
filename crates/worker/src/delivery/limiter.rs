//! Endpoint isolation: a cap on the requests one worker has in flight to one endpoint.
//!
//! A slow or hanging endpoint would otherwise take every concurrency slot of the worker and
//! delay deliveries to healthy endpoints (DESIGN "Delivery contract"). Work for an endpoint at
//! its cap is deferred (handed back to Postgres for a moment), never queued inside the worker
//! holding a slot.

use hookline_telemetry::names;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

/// Counts in-flight requests per endpoint URL (the full URL as stored: two webhooks of one
/// brand on different paths of one host are different endpoints to the brand).
#[derive(Debug, Clone)]
pub struct EndpointLimiter {
    max: usize,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

/// One in-flight request; the count goes down when it is dropped.
#[derive(Debug)]
pub struct Slot {
    limiter: EndpointLimiter,
    key: String,
}

impl EndpointLimiter {
    pub fn new(max: usize) -> EndpointLimiter {
        EndpointLimiter {
            max: max.max(1),
            in_flight: Arc::default(),
        }
    }

    /// A slot for `endpoint`, or `None` when it already has `max` requests in flight.
    pub fn try_acquire(&self, endpoint: &str) -> Option<Slot> {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = map.entry(endpoint.to_owned()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        metrics::gauge!(names::IN_FLIGHT, "endpoint" => endpoint.to_owned()).set(*count as f64);
        Some(Slot {
            limiter: self.clone(),
            key: endpoint.to_owned(),
        })
    }

    /// Requests in flight to `endpoint` (tests, metrics).
    pub fn in_flight(&self, endpoint: &str) -> usize {
        let map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(endpoint).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self
            .limiter
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            metrics::gauge!(names::IN_FLIGHT, "endpoint" => self.key.clone()).set(*count as f64);
            // Forget idle endpoints so the map only holds what is in flight.
            if *count == 0 {
                map.remove(&self.key);
            }
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
    }
}
