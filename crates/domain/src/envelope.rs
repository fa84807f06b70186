//! The body a brand's endpoint receives (docs/architecture.md, "Delivery contract"):
//! `{"id","type","brandId","created","data"}`, serialised once per delivery and signed as is.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

#[derive(Serialize)]
struct Envelope<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
    #[serde(rename = "brandId")]
    brand_id: &'a str,
    created: String,
    data: &'a RawValue,
}

/// The envelope's bytes. `data` is embedded verbatim (already-serialised JSON), never parsed
/// and re-serialised.
pub fn envelope_json(
    id: Uuid,
    event_type: &str,
    brand_id: &str,
    created: DateTime<Utc>,
    data: &RawValue,
) -> Vec<u8> {
    let envelope = Envelope {
        id,
        event_type,
        brand_id,
        created: created.to_rfc3339_opts(SecondsFormat::Millis, true),
        data,
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_contract_fields() {
        let id = Uuid::now_v7();
        let created = DateTime::parse_from_rfc3339("2026-11-23T10:00:00.5Z")
            .expect("t")
            .with_timezone(&Utc);
        let data = RawValue::from_string(r#"{"orderId":"42"}"#.into()).expect("raw");
        let body = envelope_json(id, "RECEIPTS", "acme", created, &data);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["id"], id.to_string());
        assert_eq!(v["type"], "RECEIPTS");
        assert_eq!(v["brandId"], "acme");
        assert_eq!(v["created"], "2026-11-23T10:00:00.500Z");
        assert_eq!(v["data"]["orderId"], "42");
    }
}
