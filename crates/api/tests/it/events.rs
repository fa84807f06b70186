//! Ingest and the event log: deliveries per matching webhook, idempotency, the broker down at
//! ingest, cursor pages, event detail and manual retry.

use std::time::Duration;

use chrono::Utc;
use diesel_async::RunQueryDsl as _;
use futures::StreamExt as _;
use hookline_api::auth::{Brands, SCOPE_WEBHOOKS};
use hookline_domain::{AttemptResult, DeliveryMessage};
use hookline_store::{
    deliveries::{self, NextState, Recorded},
    models::NewAttempt,
};
use lapin::options::BasicAckOptions;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_flex_error, json_of, spawn_app, spawn_app_with, TestApp, AMQP_URL};

const SHIPPED: &str = "ORDER_EVENTS.OMS.ORDER_SHIPPED";

async fn publish_event(
    app: &TestApp,
    brand: &str,
    body: Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/{brand}/events")))
        .bearer_auth(app.token(brand))
        .json(&body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    req.send().await.expect("request")
}

/// Publishes an event that must be accepted; returns its id.
async fn event(app: &TestApp, brand: &str, event_type: &str) -> String {
    let res = publish_event(
        app,
        brand,
        json!({ "type": event_type, "data": { "n": 1 } }),
        None,
    )
    .await;
    let body = json_of(res, 202).await;
    body["id"].as_str().expect("id").to_owned()
}

/// Reads `n` messages from the test's queue.
async fn queued(app: &TestApp, n: usize) -> Vec<DeliveryMessage> {
    let conn = hookline_queue::connect(AMQP_URL).await.expect("connect");
    let (_ch, mut consumer) = hookline_queue::consume(&conn, &app.queue_names(), 50, "test")
        .await
        .expect("consume");
    let mut got = Vec::new();
    while got.len() < n {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("message within 10 s")
            .expect("open")
            .expect("delivery");
        got.extend(DeliveryMessage::batch_from_bytes(&d.data).expect("message"));
        d.ack(BasicAckOptions::default()).await.expect("ack");
    }
    got
}

#[tokio::test]
async fn ingest_creates_one_delivery_per_matching_enabled_webhook_and_publishes_them() {
    let app = spawn_app().await;
    let leaf = app
        .webhook("acme", "https://example.com/leaf", &[SHIPPED])
        .await;
    let group = app
        .webhook("acme", "https://example.com/group", &["ORDER_EVENTS"])
        .await;
    app.webhook("acme", "https://example.com/other", &["RECEIPTS"])
        .await;
    app.webhook("other", "https://example.com/brand", &["ORDER_EVENTS"])
        .await;
    let disabled = app
        .create_webhook(
            "acme",
            json!({ "endpoint": "https://example.com/off", "events": [SHIPPED], "enabled": false }),
        )
        .await;

    let res = publish_event(
        &app,
        "acme",
        json!({ "type": SHIPPED, "data": { "orderId": "42" } }),
        None,
    )
    .await;
    let body = json_of(res, 202).await;
    assert_eq!(body["deliveries"], 2);
    assert_eq!(body["type"], SHIPPED);
    let event_id: Uuid = body["id"].as_str().expect("id").parse().expect("uuid");

    let mut got: Vec<Uuid> = queued(&app, 2)
        .await
        .iter()
        .map(|m| {
            assert_eq!(m.event_id, event_id);
            m.webhook_id
        })
        .collect();
    got.sort();
    let mut want: Vec<Uuid> = [&leaf, &group]
        .iter()
        .map(|w| w["id"].as_str().expect("id").parse().expect("uuid"))
        .collect();
    want.sort();
    assert_eq!(got, want);

    // The disabled webhook is not sent the event, but its log records it as skipped.
    let off = json_of(disabled, 201).await;
    let log = json_of(
        app.get(
            &format!(
                "/v1/acme/webhooks/{}/events",
                off["id"].as_str().expect("id")
            ),
            &app.token("acme"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(log["events"][0]["id"], event_id.to_string());
    assert_eq!(log["events"][0]["status"], "SKIPPED");
    assert_eq!(log["events"][0]["statusReason"], "webhook_disabled");
    assert_eq!(log["events"][0]["nextAttempt"], Value::Null);
}

#[tokio::test]
async fn the_same_idempotency_key_answers_with_the_first_event_and_creates_nothing() {
    let app = spawn_app().await;
    app.webhook("acme", "https://example.com/h", &[SHIPPED])
        .await;
    let body = json!({ "type": SHIPPED, "data": {} });
    let first = publish_event(&app, "acme", body.clone(), Some("order-42-shipped")).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json_of(first, 202).await;
    let again = publish_event(&app, "acme", body.clone(), Some("order-42-shipped")).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = json_of(again, 202).await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(again["deliveries"], 1);
    // Keys are per brand; another key is another event.
    let other = json_of(
        publish_event(&app, "acme", body, Some("order-43-shipped")).await,
        202,
    )
    .await;
    assert_ne!(other["id"], first["id"]);
    let pool = app.pool();
    let mut conn = pool.get().await.expect("conn");
    let wid: Uuid = json_of(app.get("/v1/acme/webhooks", &app.token("acme")).await, 200).await[0]
        ["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let rows = deliveries::list_for_webhook(&mut conn, wid, &Default::default(), 100)
        .await
        .expect("list");
    assert_eq!(rows.len(), 2);
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_body_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    app.webhook("acme", "https://example.com/h", &[SHIPPED])
        .await;
    let first = json!({ "type": SHIPPED, "data": { "orderId": "42", "total": 10 } });
    let created = json_of(
        publish_event(&app, "acme", first.clone(), Some("k")).await,
        202,
    )
    .await;
    // The same body, keys in another order: the same event.
    let reordered = json!({ "type": SHIPPED, "data": { "total": 10, "orderId": "42" } });
    let again = json_of(publish_event(&app, "acme", reordered, Some("k")).await, 202).await;
    assert_eq!(again["id"], created["id"]);
    // Other data, or another type, under the same key: 422 naming the key and the first event.
    for other in [
        json!({ "type": SHIPPED, "data": { "orderId": "43", "total": 10 } }),
        json!({ "type": "ORDER_EVENTS.OMS.ORDER_CANCELLED", "data": { "orderId": "42", "total": 10 } }),
    ] {
        let body = assert_flex_error(
            publish_event(&app, "acme", other, Some("k")).await,
            422,
            "ERR-CMR-0001",
        )
        .await;
        let message = body["validations"]["Idempotency-Key"]
            .as_str()
            .unwrap_or("");
        assert!(
            message.contains(created["id"].as_str().expect("id")),
            "{body}"
        );
    }
    // In a batch: against a stored event, and between two items; nothing of the batch is stored.
    let batch = json!({ "events": [
        { "type": SHIPPED, "data": { "n": 1 } },
        { "type": SHIPPED, "data": { "orderId": "99" }, "idempotencyKey": "k" },
        { "type": SHIPPED, "data": { "a": 1 }, "idempotencyKey": "b" },
        { "type": SHIPPED, "data": { "a": 2 }, "idempotencyKey": "b" },
    ]});
    let body = assert_flex_error(
        publish_batch(&app, "acme", batch).await,
        422,
        "ERR-CMR-0001",
    )
    .await;
    assert!(
        body["validations"]["events[1].idempotencyKey"].is_string(),
        "{body}"
    );
    assert!(
        body["validations"]["events[3].idempotencyKey"].is_string(),
        "{body}"
    );
    let pool = app.pool();
    let mut conn = pool.get().await.expect("conn");
    let stored: i64 = diesel_async::RunQueryDsl::get_result(
        diesel::QueryDsl::count(hookline_store::schema::events::table),
        &mut conn,
    )
    .await
    .expect("count");
    assert_eq!(stored, 1, "only the first event");
    // A key whose payload was erased replays by type alone (the data is gone to compare).
    let id: Uuid = created["id"].as_str().expect("id").parse().expect("uuid");
    hookline_store::retention::erase(&mut conn, "acme", id)
        .await
        .expect("erase");
    let replay = json_of(publish_event(&app, "acme", first, Some("k")).await, 202).await;
    assert_eq!(replay["id"], created["id"]);
}

#[tokio::test]
async fn invalid_events_are_refused_in_the_error_shape() {
    let app = spawn_app_with(|s| s.http.max_event_bytes = 1024).await;
    let bad = |body: Value| publish_event(&app, "acme", body, None);
    assert_flex_error(
        bad(json!({ "type": "ORDER_EVENTS", "data": {} })).await,
        422,
        "ERR-WHK-0002",
    )
    .await;
    assert_flex_error(
        bad(json!({ "type": "NOPE", "data": {} })).await,
        422,
        "ERR-WHK-0002",
    )
    .await;
    let body = assert_flex_error(bad(json!({ "data": [] })).await, 422, "ERR-CMR-0001").await;
    assert!(
        body["validations"]["type"].is_string() && body["validations"]["data"].is_string(),
        "{body}"
    );
    let big = json!({ "type": SHIPPED, "data": { "x": "y".repeat(2000) } });
    assert_flex_error(bad(big).await, 413, "ERR-HKL-0005").await;
    let res = app
        .client
        .post(app.url("/v1/acme/events"))
        .bearer_auth(app.token("acme"))
        .header("Idempotency-Key", "")
        .json(&json!({ "type": SHIPPED, "data": {} }))
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 422, "ERR-CMR-0001").await;
    // Publishing needs its own scope, and the brand.
    let manage_only = app.token_with(Brands::List(vec!["acme".into()]), &[SCOPE_WEBHOOKS]);
    let res = app
        .client
        .post(app.url("/v1/acme/events"))
        .bearer_auth(manage_only)
        .json(&json!({ "type": SHIPPED, "data": {} }))
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 403, "ERR-HKL-0001").await;
    let res = app
        .client
        .post(app.url("/v1/other/events"))
        .bearer_auth(app.token("acme"))
        .json(&json!({ "type": SHIPPED, "data": {} }))
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 403, "ERR-HKL-0001").await;
}

#[tokio::test]
async fn broker_down_at_ingest_still_accepts_and_leaves_the_deliveries_due_for_the_scheduler() {
    // Nothing listens on port 1: every publish fails at once.
    let app = spawn_app_with(|s| s.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into()).await;
    let w = app
        .webhook("acme", "https://example.com/h", &[SHIPPED])
        .await;
    let id: Uuid = event(&app, "acme", SHIPPED).await.parse().expect("uuid");
    let wid: Uuid = w["id"].as_str().expect("id").parse().expect("uuid");
    let pool = app.pool();
    let mut conn = pool.get().await.expect("conn");
    // Released once the background publish fails: due now and unleased, so the scheduler's
    // next claim takes it (well before the lease would have run out).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let claimed = loop {
        let claimed = deliveries::claim_due(&mut conn, 10, Duration::from_secs(60), 3)
            .await
            .expect("claim");
        if !claimed.is_empty() || tokio::time::Instant::now() > deadline {
            break claimed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        claimed,
        vec![DeliveryMessage {
            webhook_id: wid,
            event_id: id
        }]
    );
}

#[tokio::test]
async fn the_event_log_pages_newest_first_with_every_event_exactly_once() {
    let app = spawn_app().await;
    let w = app
        .webhook("acme", "https://example.com/h", &["ORDER_EVENTS"])
        .await;
    let wid = w["id"].as_str().expect("id").to_owned();
    let mut published = Vec::new();
    for _ in 0..23 {
        published.push(event(&app, "acme", SHIPPED).await);
    }
    let token = app.token("acme");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/v1/acme/webhooks/{wid}/events?size=10");
        if let Some(c) = &cursor {
            path.push_str(&format!("&startId={c}"));
        }
        let page = json_of(app.get(&path, &token).await, 200).await;
        pages += 1;
        assert_eq!(page["page"]["size"], 10);
        for e in page["events"].as_array().expect("events") {
            assert_eq!(e["status"], "PENDING");
            assert_eq!(e["type"], SHIPPED);
            seen.push(e["id"].as_str().expect("id").to_owned());
        }
        match page["page"]["lastId"].as_str() {
            Some(last) => cursor = Some(last.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    published.reverse();
    assert_eq!(seen, published, "newest first, each exactly once");

    // Default size, and a time window that excludes everything.
    let all = json_of(
        app.get(&format!("/v1/acme/webhooks/{wid}/events"), &token)
            .await,
        200,
    )
    .await;
    assert_eq!(all["events"].as_array().expect("events").len(), 20);
    let future = (Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let none = json_of(
        app.get(
            &format!("/v1/acme/webhooks/{wid}/events?start={future}"),
            &token,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(none["events"], json!([]));
    assert_eq!(none["page"]["lastId"], Value::Null);

    for bad in [
        "size=0",
        "size=101",
        "size=x",
        "start=yesterday",
        "startId=nope",
    ] {
        let res = app
            .get(&format!("/v1/acme/webhooks/{wid}/events?{bad}"), &token)
            .await;
        assert_flex_error(res, 422, "ERR-CMR-0001").await;
    }
    let res = app
        .get(
            &format!("/v1/acme/webhooks/{}/events", Uuid::new_v4()),
            &token,
        )
        .await;
    assert_flex_error(res, 404, "ERR-WHK-0004").await;
    let res = app
        .get(
            &format!("/v1/acme/webhooks/{wid}/events"),
            &app.token("other"),
        )
        .await;
    assert_flex_error(res, 403, "ERR-HKL-0001").await;
}

/// Every event id of a filtered event log, following the cursor `size` at a time.
async fn whole_log(app: &TestApp, wid: &str, filter: &str, size: usize) -> Vec<String> {
    let token = app.token("acme");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/acme/webhooks/{wid}/events?size={size}&{filter}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&startId={c}"));
        }
        let page = json_of(app.get(&path, &token).await, 200).await;
        let events = page["events"].as_array().expect("events");
        assert!(events.len() <= size, "{page}");
        seen.extend(
            events
                .iter()
                .map(|e| e["id"].as_str().expect("id").to_owned()),
        );
        match page["page"]["lastId"].as_str() {
            Some(last) => cursor = Some(last.to_owned()),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn the_event_log_filters_by_status_and_type_and_pages_through_the_filtered_log() {
    const DELIVERED: &str = "ORDER_EVENTS.TRACKING.SHIPMENT_DELIVERED";
    let app = spawn_app().await;
    let w = app
        .webhook("acme", "https://example.com/h", &["ORDER_EVENTS"])
        .await;
    let wid = w["id"].as_str().expect("id").to_owned();
    // Twelve events, oldest first: types alternate, statuses cycle FAILURE, SUCCESS, PENDING.
    let mut published = Vec::new();
    for i in 0..12 {
        let event_type = if i % 2 == 0 { SHIPPED } else { DELIVERED };
        let status = ["FAILURE", "SUCCESS", "PENDING"][i % 3];
        published.push((event(&app, "acme", event_type).await, event_type, status));
    }
    let pool = app.pool();
    let mut conn = pool.get().await.expect("conn");
    for (id, _, status) in &published {
        diesel::sql_query(format!(
            "UPDATE deliveries SET status = '{status}' WHERE event_id = '{id}'"
        ))
        .execute(&mut conn)
        .await
        .expect("set status");
    }
    let expect = |keep: &dyn Fn(&str, &str) -> bool| -> Vec<String> {
        published
            .iter()
            .rev()
            .filter(|(_, t, s)| keep(t, s))
            .map(|(id, _, _)| id.clone())
            .collect()
    };

    let failed = whole_log(&app, &wid, "status=FAILURE", 2).await;
    assert_eq!(failed, expect(&|_, s| s == "FAILURE"));
    assert_eq!(failed.len(), 4);
    let owed_oms = whole_log(
        &app,
        &wid,
        "status=FAILURE,PENDING&type=ORDER_EVENTS.OMS",
        1,
    )
    .await;
    assert_eq!(
        owed_oms,
        expect(&|t, s| t == SHIPPED && s != "SUCCESS"),
        "statuses are any of the set, the group stands for its leaves"
    );
    let tracking = whole_log(&app, &wid, &format!("type={DELIVERED}"), 5).await;
    assert_eq!(tracking, expect(&|t, _| t == DELIVERED));
    let wildcard = whole_log(&app, &wid, "type=ORDER_EVENTS.OMS.*&status=SUCCESS", 3).await;
    assert_eq!(wildcard, expect(&|t, s| t == SHIPPED && s == "SUCCESS"));
    let all = whole_log(&app, &wid, "type=ORDER_EVENTS", 100).await;
    assert_eq!(all.len(), 12);
    assert!(whole_log(&app, &wid, "status=SKIPPED", 5).await.is_empty());
    assert!(whole_log(&app, &wid, "type=RECEIPTS", 5).await.is_empty());
    // Each entry shows its own status.
    let page = json_of(
        app.get(
            &format!("/v1/acme/webhooks/{wid}/events?status=SUCCESS"),
            &app.token("acme"),
        )
        .await,
        200,
    )
    .await;
    for e in page["events"].as_array().expect("events") {
        assert_eq!(e["status"], "SUCCESS");
    }

    for (bad, param) in [
        ("status=NOPE", "status"),
        ("status=failure", "status"),
        ("status=FAILURE,", "status"),
        ("status=", "status"),
        ("type=ORDER", "type"),
        ("type=", "type"),
        ("type=ORDER_EVENTS.OMS.ORDER_SHIPPED.*", "type"),
    ] {
        let res = app
            .get(
                &format!("/v1/acme/webhooks/{wid}/events?{bad}"),
                &app.token("acme"),
            )
            .await;
        let body = assert_flex_error(res, 422, "ERR-CMR-0001").await;
        assert!(body["validations"][param].is_string(), "{bad}: {body}");
    }
}

fn attempt(webhook_id: Uuid, event_id: Uuid, ok: bool) -> NewAttempt {
    NewAttempt {
        id: Uuid::now_v7(),
        webhook_id,
        event_id,
        created: Utc::now(),
        status: if ok { "SUCCESS" } else { "FAILURE" }.into(),
        request_endpoint: "https://example.com/h".into(),
        request_headers: json!({ "content-type": "application/json" }),
        response_status_code: Some(if ok { 200 } else { 500 }),
        response_headers: Some(json!({})),
        response_body: Some("nope".into()),
        response_time_ms: 12,
        error: None,
    }
}

#[tokio::test]
async fn event_detail_shows_attempts_and_manual_retry_queues_one_more() {
    let app = spawn_app().await;
    let w = app
        .webhook("acme", "https://example.com/h", &[SHIPPED])
        .await;
    let wid: Uuid = w["id"].as_str().expect("id").parse().expect("uuid");
    let eid: Uuid = event(&app, "acme", SHIPPED).await.parse().expect("uuid");
    let token = app.token("acme");
    let path = format!("/v1/acme/webhooks/{wid}/events/{eid}");

    let detail = json_of(app.get(&path, &token).await, 200).await;
    assert_eq!(detail["status"], "PENDING");
    assert_eq!(detail["attempts"], json!([]));
    assert_eq!(detail["data"], json!({ "n": 1 }));

    // The worker's record of a failed attempt that ended the schedule.
    let pool = app.pool();
    let mut conn = pool.get().await.expect("conn");
    deliveries::record_attempts(
        &mut conn,
        &[Recorded {
            attempt: attempt(wid, eid, false),
            next: NextState::Failure,
            result: AttemptResult::ServerError,
            probe: false,
        }],
        5,
    )
    .await
    .expect("record");
    let detail = json_of(app.get(&path, &token).await, 200).await;
    assert_eq!(detail["status"], "FAILURE");
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], "FAILURE");
    assert_eq!(attempts[0]["response"]["statusCode"], 500);
    assert_eq!(attempts[0]["response"]["time"], 12);
    assert_eq!(attempts[0]["request"]["endpoint"], "https://example.com/h");

    let _ = queued(&app, 1).await; // the ingest's own message
    let retry = app
        .client
        .post(app.url(&format!("{path}/retry")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(retry.status(), 202);
    assert_eq!(
        queued(&app, 1).await,
        vec![DeliveryMessage {
            webhook_id: wid,
            event_id: eid
        }]
    );
    let job = deliveries::load_job(&mut conn, wid, eid)
        .await
        .expect("load")
        .expect("job");
    assert_eq!(job.delivery.status, "PENDING");
    assert!(job.delivery.manual_retry, "one more attempt, then final");

    // While a worker is sending it, a retry would reach the endpoint twice at once: 409, and
    // nothing is queued or changed.
    set_attempting(&mut conn, wid, eid, true).await;
    let res = app
        .client
        .post(app.url(&format!("{path}/retry")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    let body = assert_flex_error(res, 409, "ERR-HKL-0003").await;
    assert!(
        body["description"]
            .as_str()
            .is_some_and(|d| d.contains("right now")),
        "{body}"
    );
    let still = deliveries::load_job(&mut conn, wid, eid)
        .await
        .expect("load")
        .expect("job");
    assert!(still.delivery.attempting, "left to its worker");
    assert_eq!(still.delivery.leased_until, job.delivery.leased_until);
    set_attempting(&mut conn, wid, eid, false).await;

    // Unknown or malformed event ids are 404; a disabled webhook cannot retry.
    let res = app
        .get(
            &format!("/v1/acme/webhooks/{wid}/events/{}", Uuid::new_v4()),
            &token,
        )
        .await;
    assert_flex_error(res, 404, "ERR-HKL-0002").await;
    let res = app
        .get(&format!("/v1/acme/webhooks/{wid}/events/nope"), &token)
        .await;
    assert_flex_error(res, 404, "ERR-HKL-0002").await;
    let off = app
        .client
        .patch(app.url(&format!("/v1/acme/webhooks/{wid}")))
        .bearer_auth(&token)
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .expect("request");
    assert_eq!(off.status(), 204);
    let res = app
        .client
        .post(app.url(&format!("{path}/retry")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_flex_error(res, 409, "ERR-WHK-0008").await;
}

/// What a worker taking a delivery for an attempt (and recording it) does to its row.
async fn set_attempting(
    conn: &mut diesel_async::AsyncPgConnection,
    webhook_id: Uuid,
    event_id: Uuid,
    attempting: bool,
) {
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE deliveries SET attempting = {attempting} WHERE webhook_id = '{webhook_id}' \
             AND event_id = '{event_id}'"
        )),
        conn,
    )
    .await
    .expect("set attempting");
}

async fn publish_batch(app: &TestApp, brand: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/{brand}/events/batch")))
        .bearer_auth(app.token(brand))
        .json(&body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_batch_ingests_every_event_with_its_deliveries_and_replays_known_keys() {
    let app = spawn_app().await;
    app.webhook("acme", "https://example.com/leaf", &[SHIPPED])
        .await;
    app.webhook("acme", "https://example.com/group", &["ORDER_EVENTS"])
        .await;
    let first = json_of(
        publish_event(
            &app,
            "acme",
            json!({ "type": SHIPPED, "data": {} }),
            Some("k1"),
        )
        .await,
        202,
    )
    .await;
    let body = json!({ "events": [
        { "type": SHIPPED, "data": { "n": 1 } },
        { "type": "ORDER_EVENTS.TRACKING.SHIPMENT_DELIVERED", "data": { "n": 2 } },
        { "type": "RECEIPTS", "data": { "n": 3 } },
        { "type": SHIPPED, "data": {}, "idempotencyKey": "k1" },
        { "type": SHIPPED, "data": {}, "idempotencyKey": "k2" },
        { "type": SHIPPED, "data": {}, "idempotencyKey": "k2" },
    ]});
    let res = json_of(publish_batch(&app, "acme", body).await, 202).await;
    let events = res["events"].as_array().expect("events");
    let deliveries: Vec<u64> = events
        .iter()
        .map(|e| e["deliveries"].as_u64().expect("n"))
        .collect();
    assert_eq!(deliveries, [2, 1, 0, 2, 2, 2]);
    let replayed: Vec<bool> = events
        .iter()
        .map(|e| e["replayed"].as_bool().expect("b"))
        .collect();
    assert_eq!(replayed, [false, false, false, true, false, true]);
    assert_eq!(
        events[3]["id"], first["id"],
        "a known key answers with the first event"
    );
    assert_eq!(
        events[4]["id"], events[5]["id"],
        "a key repeated in the batch is one event"
    );
    // 2 + 1 + 2 new deliveries were published.
    assert_eq!(queued(&app, 2 + 2 + 1 + 2).await.len(), 7);
}

#[tokio::test]
async fn an_invalid_batch_is_refused_whole_naming_each_bad_event() {
    let app = spawn_app().await;
    let w = app
        .webhook("acme", "https://example.com/h", &[SHIPPED])
        .await;
    let body = json!({ "events": [
        { "type": SHIPPED, "data": {} },
        { "type": "NOPE", "data": {} },
        { "type": SHIPPED },
    ]});
    let err = assert_flex_error(publish_batch(&app, "acme", body).await, 422, "ERR-WHK-0002").await;
    assert!(err["validations"]["events[1].type"].is_string(), "{err}");
    assert!(err["validations"]["events[2].data"].is_string(), "{err}");
    let log = json_of(
        app.get(
            &format!("/v1/acme/webhooks/{}/events", w["id"].as_str().expect("id")),
            &app.token("acme"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        log["events"],
        json!([]),
        "nothing of a refused batch is kept"
    );
    // An idempotency key outside the header's alphabet (here U+0000, which Postgres text
    // cannot hold) is a 422 naming it, not a 500 (found by schemathesis).
    let nul_key =
        json!({ "events": [{ "type": SHIPPED, "data": {}, "idempotencyKey": "a\u{0}b" }] });
    let err = assert_flex_error(
        publish_batch(&app, "acme", nul_key).await,
        422,
        "ERR-CMR-0001",
    )
    .await;
    assert!(
        err["validations"]["events[0].idempotencyKey"].is_string(),
        "{err}"
    );
    for bad in [
        json!({ "events": [] }),
        json!({}),
        json!({ "events": vec![json!({ "type": SHIPPED, "data": {} }); 501] }),
    ] {
        assert_flex_error(publish_batch(&app, "acme", bad).await, 422, "ERR-CMR-0001").await;
    }
}

#[tokio::test]
async fn concurrent_single_ingests_share_commits_without_mixing_brands_or_keys() {
    let app = spawn_app().await;
    app.webhook("acme", "https://example.com/a", &[SHIPPED])
        .await;
    app.webhook("other", "https://example.com/o", &["ORDER_EVENTS"])
        .await;
    app.webhook("other", "https://example.com/o2", &[SHIPPED])
        .await;
    let mut requests = Vec::new();
    for i in 0..60 {
        let brand = if i % 2 == 0 { "acme" } else { "other" };
        // Every third request of a brand reuses that brand's one key.
        let key = (i % 3 == 0).then(|| format!("{brand}-same"));
        let app = &app;
        requests.push(async move {
            // A retry sends the same body under its key.
            let data = if key.is_some() {
                json!({ "same": true })
            } else {
                json!({ "i": i })
            };
            let body = json!({ "type": SHIPPED, "data": data });
            let res = publish_event(app, brand, body, key.as_deref()).await;
            (brand, key.is_some(), json_of(res, 202).await)
        });
    }
    let answers = futures::future::join_all(requests).await;
    let mut keyed_ids = std::collections::HashMap::new();
    for (brand, keyed, body) in &answers {
        let expected = if *brand == "acme" { 1 } else { 2 };
        assert_eq!(body["deliveries"], expected, "{brand}: {body}");
        if *keyed {
            keyed_ids
                .entry(*brand)
                .or_insert_with(std::collections::HashSet::new)
                .insert(body["id"].clone());
        }
    }
    // All requests with one brand's key got that brand's one event.
    assert_eq!(keyed_ids["acme"].len(), 1);
    assert_eq!(keyed_ids["other"].len(), 1);
    assert_ne!(keyed_ids["acme"], keyed_ids["other"]);
}

/// An event whose compact JSON is exactly `size` bytes.
fn event_of_size(size: usize) -> Value {
    let base = json!({ "type": SHIPPED, "data": { "pad": "" } });
    let fixed = serde_json::to_vec(&base).expect("json").len();
    json!({ "type": SHIPPED, "data": { "pad": "x".repeat(size - fixed) } })
}

#[tokio::test]
async fn a_batch_event_over_the_single_event_bound_is_413_like_a_single_one_and_stores_nothing() {
    let limit = 1024;
    let app = spawn_app_with(|s| s.http.max_event_bytes = limit).await;
    let w = app
        .webhook("acme", "https://example.com/h", &[SHIPPED])
        .await;
    // At the bound an event is accepted alone and in a batch; one byte more, refused by both.
    let at = event_of_size(limit);
    let over = event_of_size(limit + 1);
    assert_eq!(serde_json::to_vec(&over).expect("json").len(), limit + 1);
    let single = assert_flex_error(
        publish_event(&app, "acme", over.clone(), None).await,
        413,
        "ERR-HKL-0005",
    )
    .await;
    let body = json!({ "events": [
        { "type": SHIPPED, "data": {} },
        over.clone(),
        { "type": "NOPE", "data": {} },
        over,
    ]});
    let batch =
        assert_flex_error(publish_batch(&app, "acme", body).await, 413, "ERR-HKL-0005").await;
    assert_eq!(batch["message"], single["message"]);
    let validations = batch["validations"].as_object().expect("validations");
    let fields: Vec<&String> = validations.keys().collect();
    assert_eq!(fields, ["events[1]", "events[3]"], "{batch}");
    assert!(
        validations["events[1]"]
            .as_str()
            .expect("message")
            .contains(&limit.to_string()),
        "{batch}"
    );
    let log_path = format!("/v1/acme/webhooks/{}/events", w["id"].as_str().expect("id"));
    let log = json_of(app.get(&log_path, &app.token("acme")).await, 200).await;
    assert_eq!(
        log["events"],
        json!([]),
        "nothing of a refused batch is kept"
    );

    json_of(publish_event(&app, "acme", at.clone(), None).await, 202).await;
    let res = publish_batch(&app, "acme", json!({ "events": [at] })).await;
    assert_eq!(json_of(res, 202).await["events"][0]["deliveries"], 1);
}

#[tokio::test]
async fn operational_events_cannot_be_published_but_can_be_subscribed_to() {
    let app = spawn_app().await;
    let ops = app
        .webhook("acme", "https://example.com/ops", &["WEBHOOK_EVENTS"])
        .await;
    assert_eq!(ops["events"], json!(["WEBHOOK_EVENTS"]));
    app.webhook(
        "acme",
        "https://example.com/exhausted",
        &["WEBHOOK_EVENTS.DELIVERY_EXHAUSTED", SHIPPED],
    )
    .await;
    for leaf in [
        "WEBHOOK_EVENTS.DEGRADED",
        "WEBHOOK_EVENTS.DISABLED",
        "WEBHOOK_EVENTS.RECOVERED",
        "WEBHOOK_EVENTS.DELIVERY_EXHAUSTED",
    ] {
        let res = publish_event(&app, "acme", json!({ "type": leaf, "data": {} }), None).await;
        let body = assert_flex_error(res, 422, "ERR-WHK-0002").await;
        let message = body["validations"]["type"].as_str().expect("message");
        assert!(message.contains("operational"), "{leaf}: {body}");
    }
    let batch = json!({ "events": [
        { "type": SHIPPED, "data": {} },
        { "type": "WEBHOOK_EVENTS.RECOVERED", "data": {} },
    ]});
    let body = assert_flex_error(
        publish_batch(&app, "acme", batch).await,
        422,
        "ERR-WHK-0002",
    )
    .await;
    assert!(
        body["validations"]["events[1].type"]
            .as_str()
            .expect("message")
            .contains("operational"),
        "{body}"
    );
    assert!(
        body["validations"].get("events[0].type").is_none(),
        "{body}"
    );
    let log_path = format!(
        "/v1/acme/webhooks/{}/events",
        ops["id"].as_str().expect("id")
    );
    let log = json_of(app.get(&log_path, &app.token("acme")).await, 200).await;
    assert_eq!(log["events"], json!([]), "nothing was published");

    // Hookline itself publishes them: turning a webhook off tells the ones subscribed.
    let other = app
        .webhook("acme", "https://example.com/other", &["RECEIPTS"])
        .await;
    let res = app
        .client
        .patch(app.url(&format!(
            "/v1/acme/webhooks/{}",
            other["id"].as_str().expect("id")
        )))
        .bearer_auth(app.token("acme"))
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    let log = json_of(app.get(&log_path, &app.token("acme")).await, 200).await;
    assert_eq!(log["events"][0]["type"], "WEBHOOK_EVENTS.DISABLED", "{log}");
    let detail = json_of(
        app.get(
            &format!(
                "{log_path}/{}",
                log["events"][0]["id"].as_str().expect("id")
            ),
            &app.token("acme"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(detail["data"]["webhookId"], other["id"]);
    assert_eq!(detail["data"]["state"], "disabled");
    assert_eq!(detail["data"]["reason"], "manual");
}
