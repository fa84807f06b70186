//! The W3C trace context stored with each event comes back with every take of its deliveries
//! (what the worker continues on each attempt), and an idempotent replay keeps the first one.

use std::time::Duration;

use hookline_domain::DeliveryMessage;
use hookline_store::{
    deliveries,
    events::{self, TraceContext},
    models::{NewEvent, NewWebhook},
    testing::TestDatabase,
    webhooks, worker_queries,
};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);
const PARENT_A: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const PARENT_B: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

#[tokio::test]
async fn each_event_keeps_its_trace_context_through_every_take() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let types = vec!["RECEIPTS".to_owned()];
    let id = Uuid::now_v7();
    let webhook_id = webhooks::create(
        &mut conn,
        &NewWebhook {
            id,
            brand_id: "a",
            endpoint: "https://x.example/",
            event_types: &types,
            enabled: true,
            secret: hookline_store::testing::sealed(id, "top_secret_x"),
        },
    )
    .await
    .expect("webhook")
    .id;
    let payload = serde_json::json!({});
    let new = |key: Option<&'static str>| NewEvent {
        id: Uuid::now_v7(),
        brand_id: "a",
        event_type: "RECEIPTS",
        payload: &payload,
        idempotency_key: key,
    };
    let news = [new(Some("k1")), new(None), new(None)];
    let match_types = vec![types.clone(); news.len()];
    // The third event has no entry: it is stored without a context.
    let traces = [
        TraceContext {
            traceparent: Some(PARENT_A),
            tracestate: Some("vendor=1"),
        },
        TraceContext {
            traceparent: Some(PARENT_B),
            tracestate: None,
        },
    ];
    let ingested = events::ingest_traced(&mut conn, &news, &match_types, &traces, LEASE)
        .await
        .expect("ingest");
    let ids: Vec<Uuid> = ingested.iter().map(|i| i.event.id).collect();

    let messages: Vec<DeliveryMessage> = ids
        .iter()
        .map(|&event_id| DeliveryMessage {
            webhook_id,
            event_id,
        })
        .collect();
    let taken = worker_queries::take_for_attempts(&mut conn, &messages, LEASE, 1024)
        .await
        .expect("take");
    assert_eq!(taken.jobs.len(), 3);
    let context = |id: Uuid| {
        let job = taken.jobs.iter().find(|j| j.event.id == id).expect("taken");
        (job.event.traceparent.clone(), job.event.tracestate.clone())
    };
    assert_eq!(
        context(ids[0]),
        (Some(PARENT_A.to_owned()), Some("vendor=1".to_owned()))
    );
    assert_eq!(context(ids[1]), (Some(PARENT_B.to_owned()), None));
    assert_eq!(context(ids[2]), (None, None));

    let job = deliveries::load_job(&mut conn, webhook_id, ids[1])
        .await
        .expect("load")
        .expect("job");
    assert_eq!(job.event.traceparent.as_deref(), Some(PARENT_B));

    // A replay of the first event under another context answers with the first event and
    // leaves its stored context alone.
    let replay = [new(Some("k1"))];
    let again = events::ingest_traced(&mut conn, &replay, &match_types[..1], &traces[1..], LEASE)
        .await
        .expect("replay");
    assert!(!again[0].created);
    assert_eq!(again[0].event.id, ids[0]);
    let job = deliveries::load_job(&mut conn, webhook_id, ids[0])
        .await
        .expect("load")
        .expect("job");
    assert_eq!(job.event.traceparent.as_deref(), Some(PARENT_A));
    assert_eq!(job.event.tracestate.as_deref(), Some("vendor=1"));
}
