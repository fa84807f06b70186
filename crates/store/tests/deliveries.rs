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

/// A brand "a" with one webhook for RECEIPTS: the webhook's id.
async fn receipts_webhook(conn: &mut diesel_async::AsyncPgConnection) -> Uuid {
    let types = vec!["RECEIPTS".to_owned()];
    let id = Uuid::now_v7();
    webhooks::create(
        conn,
        &NewWebhook {
            id,
            brand_id: "a",
            endpoint: "https://x.example/",
            event_types: &types,
            enabled: true,
            secret: hookline_store::testing::sealed(id, "top_secret"),
        },
    )
    .await
    .expect("webhook")
    .id
}

/// Ingests one RECEIPTS event of brand "a": its id.
async fn ingest_receipt(conn: &mut diesel_async::AsyncPgConnection) -> Uuid {
    let payload = serde_json::json!({});
    let new = NewEvent {
        id: Uuid::now_v7(),
        brand_id: "a",
        event_type: "RECEIPTS",
        payload: &payload,
        idempotency_key: None,
    };
    let types = ["RECEIPTS".to_owned()];
    events::ingest(conn, &new, &types, Duration::from_secs(60))
        .await
        .expect("ingest")
        .event
        .id
}

#[tokio::test]
async fn a_group_of_attempts_moves_each_delivery_to_its_own_state() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let webhook_id = receipts_webhook(&mut conn).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(ingest_receipt(&mut conn).await);
    }
    let retry_at = Utc::now() + chrono::Duration::minutes(5);
    let group = [
        Recorded {
            attempt: attempt(webhook_id, ids[0]),
            next: NextState::Success,
            result: hookline_domain::AttemptResult::Delivered,
            probe: false,
        },
        Recorded {
            attempt: attempt(webhook_id, ids[1]),
            next: NextState::Retry { at: retry_at },
            result: hookline_domain::AttemptResult::ServerError,
            probe: false,
        },
        Recorded {
            attempt: attempt(webhook_id, ids[2]),
            next: NextState::Failure,
            result: hookline_domain::AttemptResult::ServerError,
            probe: false,
        },
    ];
    deliveries::record_attempts(&mut conn, &group, 5)
        .await
        .expect("record");
    let state = |i: usize| {
        let pool = pool.clone();
        let id = ids[i];
        async move {
            let mut conn = pool.get().await.expect("conn");
            deliveries::load_job(&mut conn, webhook_id, id)
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
            attempt: attempt(webhook_id, ids[0]),
            next: NextState::Failure,
            result: hookline_domain::AttemptResult::ServerError,
            probe: false,
        }],
        5,
    )
    .await
    .expect("record again");
    let again = state(0).await;
    assert_eq!((again.status.as_str(), again.attempt_count), ("SUCCESS", 1));
}

#[derive(diesel::QueryableByName)]
struct PreparedUse {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    statements: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    executions: i64,
}

/// The hot statements are prepared once per connection and reused: a raw `sql_query` would be
/// parsed, analysed and planned on every execution, which cost a third of Postgres's CPU at a
/// few hundred events a second.
#[tokio::test]
async fn ingest_and_recording_reuse_one_prepared_statement_each() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let webhook_id = receipts_webhook(&mut conn).await;
    for _ in 0..4 {
        let event_id = ingest_receipt(&mut conn).await;
        deliveries::record_attempts(
            &mut conn,
            &[Recorded {
                attempt: attempt(webhook_id, event_id),
                next: NextState::Success,
                result: hookline_domain::AttemptResult::Delivered,
                probe: false,
            }],
            5,
        )
        .await
        .expect("record");
    }
    let uses = |pattern: &'static str| {
        diesel::sql_query(
            "SELECT count(*) AS statements, \
                    coalesce(sum(generic_plans + custom_plans), 0)::bigint AS executions \
             FROM pg_prepared_statements WHERE statement LIKE $1",
        )
        .bind::<diesel::sql_types::Text, _>(pattern)
    };
    for pattern in ["%INSERT INTO events%", "%INSERT INTO attempts%"] {
        let found: PreparedUse = diesel_async::RunQueryDsl::get_result(uses(pattern), &mut conn)
            .await
            .expect("pg_prepared_statements");
        assert_eq!(
            (found.statements, found.executions),
            (1, 4),
            "{pattern}: one prepared statement, run four times"
        );
    }
}
