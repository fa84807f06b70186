//! Event bodies in memory: each event's envelope is built once and shared, as raw bytes, by
//! every delivery of it that is in flight in this worker, and the bytes held are capped.
//!
//! The body is only ever re-sent, never read, so the payload comes from Postgres as JSON text
//! and is embedded in the envelope as is: no tree of values per delivery. A small payload comes
//! with the take of its deliveries; a large one is loaded apart, only for deliveries that got a
//! slot. A fan-out of 64
//! webhooks costs one copy of the body, not 64 parsed payloads; beyond
//! `worker.max_bytes_in_flight`, work is deferred rather than loaded.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
};

use bytes::Bytes;
use hookline_domain::envelope_json;
use hookline_store::{deliveries::EventMeta, worker_queries, Pool, StoreError};
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// Bytes are counted in KiB: a semaphore's permits are `u32`.
const UNIT: usize = 1024;

/// One event's envelope, shared by its deliveries; its bytes count against the cap until the
/// last delivery drops it.
#[derive(Debug)]
pub struct EventBody {
    pub id: Uuid,
    pub bytes: Bytes,
    _held: OwnedSemaphorePermit,
    cache: Weak<Mutex<HashMap<Uuid, Weak<EventBody>>>>,
}

impl Drop for EventBody {
    fn drop(&mut self) {
        if let Some(cache) = self.cache.upgrade() {
            let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
            // Another body of the same event may have replaced this entry since.
            if map.get(&self.id).is_some_and(|w| w.strong_count() == 0) {
                map.remove(&self.id);
            }
        }
    }
}

/// What a delivery gets for its event.
#[derive(Debug, Clone)]
pub enum Loaded {
    Body(Arc<EventBody>),
    /// The worker holds `max_bytes_in_flight` already: defer.
    NoRoom,
    /// The payload cannot be embedded (never expected: the API stores valid JSON).
    Invalid(String),
}

/// The bodies in flight and the byte cap. Cheap to clone; one per worker.
#[derive(Debug, Clone)]
pub struct Bodies {
    cache: Arc<Mutex<HashMap<Uuid, Weak<EventBody>>>>,
    room: Arc<Semaphore>,
}

impl Bodies {
    pub fn new(max_bytes: usize) -> Bodies {
        let units = (max_bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Bodies {
            cache: Arc::default(),
            room: Arc::new(Semaphore::new(units)),
        }
    }

    /// Bytes of bodies held now (tests, metrics).
    pub fn held_bytes(&self, max_bytes: usize) -> usize {
        let units = (max_bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        (units - self.room.available_permits()) * UNIT
    }

    fn cached(&self, id: &Uuid) -> Option<Arc<EventBody>> {
        let map = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(id).and_then(Weak::upgrade)
    }

    /// The body of each event: the one in memory, else built from `inline` (payloads that
    /// came with the take), else loaded — all of those in one query.
    pub async fn load(
        &self,
        pool: &Pool,
        events: &[&EventMeta],
        inline: &mut HashMap<Uuid, String>,
    ) -> Result<HashMap<Uuid, Loaded>, StoreError> {
        let mut out = HashMap::with_capacity(events.len());
        let mut missing = Vec::new();
        for e in events {
            if out.contains_key(&e.id) {
                continue;
            }
            match self.cached(&e.id) {
                Some(body) => {
                    out.insert(e.id, Loaded::Body(body));
                }
                None => match inline.remove(&e.id) {
                    Some(payload) => {
                        out.insert(e.id, self.build(e, payload));
                    }
                    None => {
                        out.insert(e.id, Loaded::NoRoom);
                        missing.push(*e);
                    }
                },
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let ids: Vec<Uuid> = missing.iter().map(|e| e.id).collect();
        let mut conn = pool.get().await?;
        let payloads = worker_queries::load_payloads(&mut conn, &ids).await?;
        let by_id: HashMap<Uuid, &EventMeta> = missing.iter().map(|e| (e.id, *e)).collect();
        for p in payloads {
            let Some(meta) = by_id.get(&p.id) else {
                continue;
            };
            out.insert(p.id, self.build(meta, p.payload));
        }
        Ok(out)
    }

    fn build(&self, meta: &EventMeta, payload: String) -> Loaded {
        let data = match RawValue::from_string(payload) {
            Ok(data) => data,
            Err(e) => return Loaded::Invalid(format!("the event payload is not JSON: {e}")),
        };
        let bytes = envelope_json(
            meta.id,
            &meta.event_type,
            &meta.brand_id,
            meta.created,
            &data,
        );
        drop(data);
        let units = u32::try_from(bytes.len().div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        let Ok(held) = self.room.clone().try_acquire_many_owned(units) else {
            return Loaded::NoRoom;
        };
        let body = Arc::new(EventBody {
            id: meta.id,
            bytes: Bytes::from(bytes),
            _held: held,
            cache: Arc::downgrade(&self.cache),
        });
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(meta.id, Arc::downgrade(&body));
        Loaded::Body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn meta() -> EventMeta {
        EventMeta {
            id: Uuid::now_v7(),
            brand_id: "acme".into(),
            event_type: "RECEIPTS".into(),
            created: Utc::now(),
            traceparent: None,
            tracestate: None,
        }
    }

    #[test]
    fn a_body_is_shared_counted_and_forgotten_when_dropped() {
        let bodies = Bodies::new(4 * UNIT);
        let m = meta();
        let Loaded::Body(body) = bodies.build(&m, r#"{"orderId": "42"}"#.into()) else {
            panic!("room for it");
        };
        let v: serde_json::Value = serde_json::from_slice(&body.bytes).expect("json");
        assert_eq!(v["data"]["orderId"], "42");
        assert_eq!(bodies.held_bytes(4 * UNIT), UNIT);
        assert!(Arc::ptr_eq(&bodies.cached(&m.id).expect("cached"), &body));
        drop(body);
        assert!(bodies.cached(&m.id).is_none());
        assert_eq!(bodies.held_bytes(4 * UNIT), 0);
        assert!(bodies.cache.lock().expect("lock").is_empty());
    }

    #[test]
    fn past_the_cap_there_is_no_room() {
        let bodies = Bodies::new(2 * UNIT);
        let big = format!(r#"{{"x": "{}"}}"#, "a".repeat(1500));
        let first = bodies.build(&meta(), big.clone());
        assert!(matches!(first, Loaded::Body(_)));
        assert!(matches!(bodies.build(&meta(), big), Loaded::NoRoom));
        drop(first);
        assert!(matches!(
            bodies.build(&meta(), "{}".into()),
            Loaded::Body(_)
        ));
        assert!(matches!(
            bodies.build(&meta(), "{not json".into()),
            Loaded::Invalid(_)
        ));
    }
}
