//! A recovery step through the store: what it makes owed follows the endpoint's health (due
//! and leased for publishing behind a healthy endpoint, parked behind a degraded one), and a
//! step never requeues a delivery twice.

use std::time::Duration;

use chrono::Utc;
use diesel_async::RunQueryDsl as _;
use hookline_store::{
    deliveries::FAILURE,
    events,
    models::{NewEvent, NewWebhook},
    recoveries::{self, Filter, NewRecovery},
    testing::{set_health, TestDatabase},
    webhooks,
};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(10);

/// A webhook of `brand` for RECEIPTS with `n` FAILURE deliveries: its id and their events.
async fn failed_deliveries(
    conn: &mut diesel_async::AsyncPgConnection,
    brand: &str,
    n: usize,
) -> (Uuid, Vec<Uuid>) {
    let types = vec!["RECEIPTS".to_owned()];
    let id = Uuid::now_v7();
    let webhook = webhooks::create(
        conn,
        &NewWebhook {
            id,
            brand_id: brand,
            endpoint: "https://x.example/",
            event_types: &types,
            enabled: true,
            secret: hookline_store::testing::sealed(id, "top_secret"),
        },
    )
    .await
    .expect("webhook")
    .id;
    let payload = serde_json::json!({});
    let mut ids = Vec::new();
    for _ in 0..n {
        let new = NewEvent {
            id: Uuid::now_v7(),
            brand_id: brand,
            event_type: "RECEIPTS",
            payload: &payload,
            idempotency_key: None,
        };
        let event = events::ingest(conn, &new, &types, LEASE)
            .await
            .expect("ingest")
            .event;
        ids.push(event.id);
    }
    diesel::sql_query(format!(
        "UPDATE deliveries SET status = 'FAILURE', next_attempt_at = NULL, leased_until = NULL \
         WHERE webhook_id = '{webhook}'"
    ))
    .execute(conn)
    .await
    .expect("fail them");
    (webhook, ids)
}

fn job(brand: &str, webhook: Uuid) -> NewRecovery {
    NewRecovery {
        id: Uuid::now_v7(),
        brand_id: brand.into(),
        webhook_id: Some(webhook),
        webhook_ids: vec![webhook],
        filter: Filter {
            since: Utc::now() - chrono::Duration::hours(1),
            until: Utc::now() + chrono::Duration::minutes(1),
            statuses: vec![FAILURE.into()],
            event_types: None,
        },
        requested_types: None,
    }
}

async fn statuses(conn: &mut diesel_async::AsyncPgConnection, webhook: Uuid) -> Vec<String> {
    use diesel::{ExpressionMethods as _, QueryDsl as _};
    use hookline_store::schema::deliveries::dsl as d;
    d::deliveries
        .filter(d::webhook_id.eq(webhook))
        .order(d::event_id)
        .select(d::status)
        .load(conn)
        .await
        .expect("statuses")
}

#[tokio::test]
async fn requeued_deliveries_follow_the_endpoints_health_and_are_requeued_once() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("connection");
    let (healthy, healthy_events) = failed_deliveries(&mut conn, "a", 3).await;
    let (degraded, _) = failed_deliveries(&mut conn, "b", 2).await;
    set_health(&mut conn, degraded, "degraded").await;

    for (brand, webhook, due, status) in [
        ("a", healthy, healthy_events, "PENDING"),
        ("b", degraded, Vec::new(), "PARKED"),
    ] {
        let created = recoveries::create(&mut conn, &job(brand, webhook), 100)
            .await
            .expect("create")
            .expect("not refused");
        let claimed = recoveries::claim(&mut conn, "me", LEASE, 10)
            .await
            .expect("claim");
        assert!(claimed.contains(&created.id));
        let step = recoveries::step(&mut conn, created.id, "me", 10, LEASE, LEASE)
            .await
            .expect("step")
            .expect("held");
        assert_eq!(step.state, recoveries::DONE);
        assert_eq!(step.requeued, created.matched);
        // Only what may be sent now is handed back (leased) for publishing.
        let handed: Vec<Uuid> = step.due.iter().map(|m| m.event_id).collect();
        assert_eq!(handed, due, "{webhook}");
        assert!(statuses(&mut conn, webhook)
            .await
            .iter()
            .all(|s| s == status));
    }
    // The same recovery again matches nothing: nothing becomes owed twice. Parked deliveries
    // are owed, not recoverable.
    for (brand, webhook) in [("a", healthy), ("b", degraded)] {
        let again = recoveries::create(&mut conn, &job(brand, webhook), 100)
            .await
            .expect("create")
            .expect("not refused");
        assert_eq!(again.matched, 0);
        assert_eq!(again.state, recoveries::DONE);
        // A job this replica does not hold is not stepped.
        assert!(
            recoveries::step(&mut conn, again.id, "someone-else", 10, LEASE, LEASE)
                .await
                .expect("step")
                .is_none()
        );
    }
}
