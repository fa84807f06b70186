//! The group commit of single-event ingest, without HTTP: concurrent events share one
//! statement, and when the database refuses one of them the others are still stored and
//! answered, each event on its own.

use std::time::Duration;

use diesel::QueryDsl as _;
use diesel_async::RunQueryDsl as _;
use hookline_api::ingest::{IngestQueue, PendingEvent};
use hookline_store::{schema::events, testing::TestDatabase};
use serde_json::json;
use uuid::Uuid;

fn event(brand: &str) -> PendingEvent {
    PendingEvent {
        id: Uuid::now_v7(),
        brand_id: brand.to_owned(),
        event_type: "ORDER_EVENTS.OMS.ORDER_SHIPPED".to_owned(),
        payload: json!({"n": 1}),
        idempotency_key: None,
        match_types: vec!["ORDER_EVENTS.OMS.ORDER_SHIPPED".to_owned()],
        trace: None,
    }
}

// A current-thread runtime: the three `ingest` calls all queue their event before a committer
// task runs, so they reach the database as one group.
#[tokio::test(flavor = "current_thread")]
async fn an_event_the_database_refuses_fails_alone_and_the_rest_of_its_group_is_stored() {
    let db = TestDatabase::create().await;
    let queue = IngestQueue::start(db.pool(), Duration::from_secs(60));
    let (good1, bad, good2) = (event("acme"), event("ac\0me"), event("acme"));
    let ids = (good1.id, bad.id, good2.id);

    let (r1, r2, r3) = tokio::join!(queue.ingest(good1), queue.ingest(bad), queue.ingest(good2));
    let r1 = r1.expect("stored");
    let r3 = r3.expect("stored");
    assert!(r1.created && r3.created);
    let refused = r2.expect_err("a NUL byte in a brand id is refused by Postgres");
    assert!(!refused.is_unavailable(), "{refused}");

    let mut conn = db.pool().get().await.expect("conn");
    let mut stored: Vec<Uuid> = events::table
        .select(events::id)
        .load(&mut conn)
        .await
        .expect("events");
    stored.sort();
    let mut expected = vec![ids.0, ids.2];
    expected.sort();
    assert_eq!(stored, expected);
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    synchronous_commit: String,
}

/// A 202 promises the event is stored: the API's connections wait for each commit to reach
/// disk (the worker's need not, see its pool).
#[tokio::test]
async fn the_apis_connections_commit_synchronously() {
    let db = TestDatabase::create().await;
    let pool =
        hookline_api::startup::build_pool(&crate::helpers::test_settings(&db)).expect("pool");
    let mut conn = pool.get().await.expect("conn");
    let row: Setting = diesel::sql_query("SHOW synchronous_commit")
        .get_result(&mut conn)
        .await
        .expect("SHOW");
    assert_eq!(row.synchronous_commit, "on");
}
