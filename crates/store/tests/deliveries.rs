//! Recording attempts of many deliveries in one call moves each to its own next state, and
//! never moves a delivery that is already final.

use std::time::Duration;

use chrono::Utc;
use hookline_store::{
    deliveries::{self, NextState, Recorded},
    events,
    models::{NewAttempt, NewEvent, NewWebhook},
    testing::TestDatabase,
    webhooks,
};
use uuid::Uuid;

fn attempt(webhook_id: Uuid, event_id: Uuid) -> NewAttempt {
    NewAttempt {
        id: Uuid::now_v7(),
        webhook_id,
        event_id,
        created: Utc::now(),
        status: "FAILURE".into(),
        request_endpoint: "https://x.example/".into(),
        request_headers: serde_json::json!({}),
        response_status_code: Some(500),
        response_headers: None,
        response_body: None,
        response_time_ms: 3,
        error: None,
    }
}

#[tokio::test]
async fn a_group_of_attempts_moves_each_delivery_to_its_own_state() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let types = vec!["RECEIPTS".to_owned()];
    let w = webhooks::create(
        &mut conn,
        &NewWebhook {
            id: Uuid::now_v7(),
            brand_id: "a",
            endpoint: "https://x.example/",
            event_types: &types,
            enabled: true,
            secret: "whsec_x",
        },
    )
    .await
    .expect("webhook");
    let payload = serde_json::json!({});
    let mut ids = Vec::new();
    for _ in 0..3 {
        let new = NewEvent {
            id: Uuid::now_v7(),
            brand_id: "a",
            event_type: "RECEIPTS",
            payload: &payload,
            idempotency_key: None,
        };
        let ingested = events::ingest(&mut conn, &new, &types, Duration::from_secs(60))
            .await
            .expect("ingest");
        ids.push(ingested.event.id);
    }
    let retry_at = Utc::now() + chrono::Duration::minutes(5);
    let group = [
        Recorded {
            attempt: attempt(w.id, ids[0]),
            next: NextState::Success,
        },
        Recorded {
            attempt: attempt(w.id, ids[1]),
            next: NextState::Retry { at: retry_at },
        },
        Recorded {
            attempt: attempt(w.id, ids[2]),
            next: NextState::Failure,
        },
    ];
    deliveries::record_attempts(&mut conn, &group)
        .await
        .expect("record");
    let state = |i: usize| {
        let pool = pool.clone();
        let id = ids[i];
        async move {
            let mut conn = pool.get().await.expect("conn");
            deliveries::load_job(&mut conn, w.id, id)
                .await
                .expect("load")
                .expect("job")
                .delivery
        }
    };
    let (ok, retry, failed) = (state(0).await, state(1).await, state(2).await);
    assert_eq!((ok.status.as_str(), ok.attempt_count), ("SUCCESS", 1));
    assert_eq!((retry.status.as_str(), retry.attempt_count), ("PENDING", 1));
    assert!(retry
        .next_attempt_at
        .is_some_and(|t| (t - retry_at).num_milliseconds().abs() < 5));
    assert_eq!(retry.leased_until, None);
    assert_eq!(
        (failed.status.as_str(), failed.attempt_count),
        ("FAILURE", 1)
    );

    // A repeated message's attempt is kept on record, but a final delivery stays final.
    deliveries::record_attempts(
        &mut conn,
        &[Recorded {
            attempt: attempt(w.id, ids[0]),
            next: NextState::Failure,
        }],
    )
    .await
    .expect("record again");
    let again = state(0).await;
    assert_eq!((again.status.as_str(), again.attempt_count), ("SUCCESS", 1));
}
