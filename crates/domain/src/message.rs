//! The queue message contract: a pointer to a delivery row, nothing more. Postgres holds the
//! event, the webhook and the delivery state, so a stale or repeated message is harmless.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeliveryMessage {
    pub webhook_id: Uuid,
    pub event_id: Uuid,
}

impl DeliveryMessage {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let m = DeliveryMessage {
            webhook_id: Uuid::now_v7(),
            event_id: Uuid::now_v7(),
        };
        assert_eq!(
            DeliveryMessage::from_bytes(&m.to_bytes()).expect("parse"),
            m
        );
        assert!(DeliveryMessage::from_bytes(b"{}").is_err());
    }
}
