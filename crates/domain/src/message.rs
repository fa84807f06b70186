//! The queue message contract: pointers to delivery rows, nothing more. Postgres holds the
//! event, the webhook and the delivery state, so a stale or repeated message is harmless.
//!
//! One queue message carries up to [`MAX_POINTERS`] pointers (a JSON array), so the broker
//! routes, stores and acknowledges one message for many deliveries; a single pointer (a JSON
//! object) is read too.

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

    /// One queue message's body for these pointers (at most [`MAX_POINTERS`] of them, by
    /// the publisher's chunking).
    pub fn batch_to_bytes(messages: &[DeliveryMessage]) -> Vec<u8> {
        serde_json::to_vec(messages).unwrap_or_default()
    }

    /// The pointers of one queue message: an array of them, or a single one.
    pub fn batch_from_bytes(bytes: &[u8]) -> Result<Vec<Self>, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Body {
            Many(Vec<DeliveryMessage>),
            One(DeliveryMessage),
        }
        Ok(match serde_json::from_slice(bytes)? {
            Body::Many(many) => many,
            Body::One(one) => vec![one],
        })
    }
}

/// Most delivery pointers in one queue message. Large enough that the broker's cost per
/// delivery is small, small enough that a burst still spreads across several workers.
pub const MAX_POINTERS: usize = 64;

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

    #[test]
    fn a_queue_message_carries_many_pointers_or_one() {
        let many: Vec<DeliveryMessage> = (0..3)
            .map(|_| DeliveryMessage {
                webhook_id: Uuid::now_v7(),
                event_id: Uuid::now_v7(),
            })
            .collect();
        let bytes = DeliveryMessage::batch_to_bytes(&many);
        assert_eq!(
            DeliveryMessage::batch_from_bytes(&bytes).expect("parse"),
            many
        );
        assert_eq!(
            DeliveryMessage::batch_from_bytes(&many[0].to_bytes()).expect("parse"),
            vec![many[0]]
        );
        for garbage in [&b"{}"[..], b"[{}]", b"not json", b"[1]"] {
            assert!(DeliveryMessage::batch_from_bytes(garbage).is_err());
        }
    }
}
