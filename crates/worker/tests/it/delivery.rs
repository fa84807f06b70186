//! The delivery contract and the life of a delivery: who receives an event, what they receive,
//! retries, the end states.

use std::time::Duration;

use chrono::Utc;
use hookline_domain::{DeliveryMessage, RetrySchedule, WebhookSecret};
use hookline_store::{
    deliveries::{NextState, FAILURE, SUCCESS},
    webhooks,
};
use hookline_worker::{
    delivery::{
        body::Bodies,
        budget::Budgets,
        handle::{Handler, Outcome},
        send::Sender,
    },
    endpoints::Endpoints,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use hookline_testkit::{
    receiver::{Mode, Receiver, FAILURE_BODY},
    verify::assert_signed,
    TcpProxy,
};

use crate::helpers::{eventually, messages, TestEnv, BRAND, SHIPPED};

#[tokio::test]
async fn an_event_reaches_every_matching_webhook_signed_and_no_other() {
    let env = TestEnv::new().await;
    let (leaf, group, other_type, other_brand) = (
        Receiver::start(Mode::Succeed).await,
        Receiver::start(Mode::Succeed).await,
        Receiver::start(Mode::Succeed).await,
        Receiver::start(Mode::Succeed).await,
    );
    let leaf_secret = "top_secret";
    let leaf_hook = env
        .webhook(BRAND, &leaf.url(), &[SHIPPED], leaf_secret)
        .await;
    // The group subscriber is mid-rotation: its old secret signs beside the new one.
    let old_secret = WebhookSecret::generate();
    let new_secret = WebhookSecret::generate();
    let group_hook = env
        .webhook(BRAND, &group.url(), &["ORDER_EVENTS"], old_secret.expose())
        .await;
    {
        let mut conn = env.pool.get().await.expect("connection");
        webhooks::rotate_secret(
            &mut conn,
            BRAND,
            group_hook.id,
            &hookline_store::testing::sealed(group_hook.id, new_secret.expose()),
            Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .expect("rotate")
        .expect("webhook");
    }
    env.webhook(BRAND, &other_type.url(), &["RECEIPTS"], "top_secret")
        .await;
    env.webhook(
        "globex",
        &other_brand.url(),
        &["ORDER_EVENTS"],
        "top_secret",
    )
    .await;
    let worker = env.spawn_worker(|_| {}).await;

    let sent_at = Utc::now().timestamp();
    let ingested = env
        .publish_event(BRAND, SHIPPED, json!({"orderId": "42", "items": [1, 2]}))
        .await;
    let mut owed = ingested.webhook_ids.clone();
    owed.sort();
    let mut expected = vec![leaf_hook.id, group_hook.id];
    expected.sort();
    assert_eq!(
        owed, expected,
        "deliveries exist for the matching webhooks only"
    );

    let event_id = ingested.event.id;
    for hook in [&leaf_hook, &group_hook] {
        let (delivery, attempts) = env.wait_final(hook.id, event_id).await;
        assert_eq!(delivery.status, SUCCESS);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].response_status_code, Some(200));
        assert_eq!(attempts[0].request_endpoint, hook.endpoint);
        assert_eq!(
            attempts[0].request_headers["webhook-id"],
            event_id.to_string()
        );
    }

    let leaf_got = leaf.received();
    assert_eq!(leaf_got.len(), 1);
    assert_signed(&leaf_got[0], &[leaf_secret]);
    let group_got = group.received();
    assert_eq!(group_got.len(), 1);
    assert_signed(&group_got[0], &[new_secret.expose(), old_secret.expose()]);

    for request in [&leaf_got[0], &group_got[0]] {
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("user-agent"), "Hookline-Test/1");
        assert_eq!(request.header("webhook-id"), event_id.to_string());
        let ts: i64 = request
            .header("webhook-timestamp")
            .parse()
            .expect("unix seconds");
        assert!((sent_at - 1..=Utc::now().timestamp()).contains(&ts), "{ts}");
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json body");
        assert_eq!(body["id"], event_id.to_string());
        assert_eq!(body["type"], SHIPPED);
        assert_eq!(body["brandId"], BRAND);
        assert_eq!(body["data"], json!({"orderId": "42", "items": [1, 2]}));
        assert!(body["created"].is_string());
    }
    worker.stop().await;
    // Nothing was owed to the others, so nothing can reach them later either.
    assert!(other_type.received().is_empty());
    assert!(other_brand.received().is_empty());
}

#[tokio::test]
async fn a_receiver_failing_twice_then_succeeding_gets_three_attempts_and_success() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::FailFirst { n: 2, status: 500 }).await;
    let worker = env.spawn_worker(|_| {}).await;

    let event = env.publish_event(BRAND, SHIPPED, json!({})).await.event;
    let (delivery, attempts) = env.wait_final(hook.id, event.id).await;

    assert_eq!(delivery.status, SUCCESS);
    assert_eq!(delivery.attempt_count, 3);
    let statuses: Vec<_> = attempts.iter().map(|a| a.status.as_str()).collect();
    assert_eq!(statuses, [FAILURE, FAILURE, SUCCESS]);
    let codes: Vec<_> = attempts.iter().map(|a| a.response_status_code).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(200)]);
    assert_eq!(receiver.received().len(), 3);
    worker.stop().await;
}

#[tokio::test]
async fn a_receiver_that_always_fails_ends_failure_after_the_schedule() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::AlwaysFail { status: 503 }).await;
    let worker = env.spawn_worker(|_| {}).await;

    let event = env.publish_event(BRAND, SHIPPED, json!({})).await.event;
    let (delivery, attempts) = env.wait_final(hook.id, event.id).await;

    assert_eq!(delivery.status, FAILURE);
    assert_eq!(delivery.next_attempt_at, None);
    // "100ms,100ms": three attempts in all.
    assert_eq!(attempts.len(), 3);
    for attempt in &attempts {
        assert_eq!(attempt.status, FAILURE);
        assert_eq!(attempt.response_status_code, Some(503));
        // The body is kept up to `retention.attempt_response_bytes` (64 bytes in tests).
        let body = attempt.response_body.as_deref().expect("body kept");
        assert_eq!(body.len(), 64);
        assert!(FAILURE_BODY.repeat(4).starts_with(body));
        assert!(attempt
            .response_headers
            .as_ref()
            .is_some_and(|h| h.is_object()));
    }
    assert_eq!(receiver.received().len(), 3);
    worker.stop().await;
}

#[tokio::test]
async fn a_disabled_webhooks_pending_delivery_is_parked_not_sent() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::Succeed).await;
    // Ingested while enabled, disabled before the worker gets to it: parked, not failed.
    let ingested = env.ingest(BRAND, SHIPPED, json!({})).await;
    {
        let mut conn = env.pool.get().await.expect("connection");
        webhooks::set_enabled(&mut conn, BRAND, hook.id, false, false)
            .await
            .expect("disable");
    }
    let (delivery, _) = env.delivery(hook.id, ingested.event.id).await;
    assert_eq!(delivery.status, "PARKED");
    assert_eq!(delivery.status_reason.as_deref(), Some("webhook_disabled"));
    // Its message, still in the queue, is stale: nothing is sent.
    let handler = hourly_handler(&env);
    let outcomes = handler
        .handle(
            &messages(&ingested)[0].to_bytes(),
            &CancellationToken::new(),
        )
        .await
        .expect("handled");
    assert_eq!(outcomes, [Outcome::Stale]);
    let (delivery, attempts) = env.delivery(hook.id, ingested.event.id).await;
    assert_eq!(delivery.status, "PARKED");
    assert_eq!(delivery.attempt_count, 0);
    assert!(attempts.is_empty());
    assert!(receiver.received().is_empty());
}

/// A worker that takes a delivery whose webhook was disabled after the take was published
/// (the webhook row changed, the delivery not yet parked) parks it itself.
#[tokio::test]
async fn a_worker_parks_what_it_takes_for_a_disabled_or_degraded_endpoint() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::Succeed).await;
    let handler = hourly_handler(&env);
    for (health, reason) in [
        ("disabled", "webhook_disabled"),
        ("degraded", "endpoint_degraded"),
    ] {
        let ingested = env.ingest(BRAND, SHIPPED, json!({})).await;
        env.set_health(hook.id, health).await;
        let outcomes = handler
            .handle(
                &messages(&ingested)[0].to_bytes(),
                &CancellationToken::new(),
            )
            .await
            .expect("handled");
        assert_eq!(outcomes, [Outcome::Parked(reason)], "{health}");
        let (delivery, attempts) = env.delivery(hook.id, ingested.event.id).await;
        assert_eq!(delivery.status, "PARKED");
        assert_eq!(delivery.status_reason.as_deref(), Some(reason));
        assert_eq!(delivery.next_attempt_at, None);
        assert_eq!((delivery.attempt_count, attempts.len()), (0, 0));
        env.set_health(hook.id, "healthy").await;
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_unless_private_targets_are_allowed() {
    let env = TestEnv::new().await;
    let receiver = Receiver::start(Mode::Succeed).await;
    let endpoint = format!("http://localhost:{}/hook", receiver.port());
    let hook = env
        .webhook(BRAND, &endpoint, &[SHIPPED], "top_secret")
        .await;
    let worker = env
        .spawn_worker(|s| {
            s.delivery.allow_private_targets = false;
            s.delivery.retry_schedule = String::new();
        })
        .await;

    let event = env.publish_event(BRAND, SHIPPED, json!({})).await.event;
    let (delivery, attempts) = env.wait_final(hook.id, event.id).await;

    assert_eq!(delivery.status, FAILURE);
    assert_eq!(attempts.len(), 1);
    let error = attempts[0]
        .error
        .as_deref()
        .expect("transport error recorded");
    assert!(error.contains("forbidden address"), "{error}");
    assert_eq!(attempts[0].response_status_code, None);
    worker.stop().await;
    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
}

/// A handler outside any consumer, whose retries are an hour apart.
fn hourly_handler(env: &TestEnv) -> Handler {
    hourly_handler_on(env, env.pool.clone())
}

/// [`hourly_handler`] with a pool of its own.
fn hourly_handler_on(env: &TestEnv, pool: hookline_store::Pool) -> Handler {
    let settings = env.settings();
    let endpoints = Endpoints::new(pool.clone(), settings.health.policy(), 100);
    Handler::new(
        pool,
        Sender::new(&settings.delivery, &settings.retention).expect("client"),
        std::sync::Arc::new(settings.secrets.keyring().expect("keys")),
        RetrySchedule::parse("1h", 0.0, Duration::from_secs(3600)).expect("schedule"),
        Budgets::new(4, 8, Duration::from_millis(250), Duration::from_secs(5)),
        Bodies::new(1 << 20),
        endpoints,
        Duration::from_secs(60),
        Duration::from_secs(5),
        Duration::from_millis(250),
    )
}

/// The handler alone, without a broker: repeated, stale and malformed messages send nothing.
#[tokio::test]
async fn repeated_stale_and_malformed_messages_are_dropped_without_sending() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::FailFirst { n: 1, status: 500 }).await;
    let handler = hourly_handler(&env);
    let stop = CancellationToken::new();
    let ingested = env.ingest(BRAND, SHIPPED, json!({})).await;
    let message = messages(&ingested)[0].to_bytes();

    let first = handler.handle(&message, &stop).await.expect("handled");
    assert!(
        matches!(first[..], [Outcome::Attempted(NextState::Retry { .. })]),
        "{first:?}"
    );
    // The same message again (a broker redelivery): the next attempt is an hour away.
    let again = handler.handle(&message, &stop).await.expect("handled");
    assert_eq!(again, [Outcome::Stale]);
    assert_eq!(receiver.received().len(), 1);

    let gone = DeliveryMessage {
        webhook_id: hook.id,
        event_id: Uuid::now_v7(),
    };
    assert_eq!(
        handler
            .handle(&gone.to_bytes(), &stop)
            .await
            .expect("handled"),
        [Outcome::Gone]
    );
    assert_eq!(
        handler.handle(b"not json", &stop).await.expect("handled"),
        [Outcome::Malformed]
    );
    let (delivery, attempts) = env.delivery(hook.id, ingested.event.id).await;
    assert_eq!(delivery.attempt_count, 1);
    assert_eq!(attempts.len(), 1);
}

/// One queue message points to several deliveries. Two copies of it handled at once (the
/// scheduler re-published behind a backlog while the first copy was still queued) send each
/// delivery once: a delivery being attempted is not taken again.
#[tokio::test]
async fn copies_of_a_many_pointer_message_handled_at_once_send_each_delivery_once() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::Succeed).await;
    let handler = hourly_handler(&env);
    let stop = CancellationToken::new();
    let mut pointers = Vec::new();
    for i in 0..5 {
        pointers.extend(messages(
            &env.ingest(BRAND, SHIPPED, json!({ "n": i })).await,
        ));
    }
    pointers.push(DeliveryMessage {
        webhook_id: hook.id,
        event_id: Uuid::now_v7(),
    });
    let bytes = DeliveryMessage::batch_to_bytes(&pointers);

    let (a, b) = tokio::join!(handler.handle(&bytes, &stop), handler.handle(&bytes, &stop));
    let all: Vec<Outcome> = a
        .expect("handled")
        .into_iter()
        .chain(b.expect("handled"))
        .collect();
    let count = |o: &Outcome| all.iter().filter(|x| *x == o).count();
    assert_eq!(count(&Outcome::Attempted(NextState::Success)), 5, "{all:?}");
    assert_eq!(count(&Outcome::Stale), 5, "{all:?}");
    assert_eq!(count(&Outcome::Gone), 2, "{all:?}");
    assert_eq!(receiver.received().len(), 5, "each delivery sent once");
    for pointer in &pointers[..5] {
        let (delivery, attempts) = env.delivery(pointer.webhook_id, pointer.event_id).await;
        assert_eq!(delivery.status, "SUCCESS");
        assert_eq!(attempts.len(), 1);
    }
}

/// The database goes away while a request is in flight (a TCP proxy the test cuts, never the
/// shared server): the worker keeps the attempt and records it once the database is back, so
/// the endpoint gets the event once and the log shows that one attempt.
#[tokio::test]
async fn an_attempt_made_while_the_database_is_down_is_recorded_when_it_returns() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env
        .subscriber(Mode::Delay(Duration::from_millis(300)))
        .await;
    let mut url = url::Url::parse(&env.db.url).expect("url");
    let upstream = tokio::net::lookup_host((
        url.host_str().expect("host").to_owned(),
        url.port().unwrap_or(5432),
    ))
    .await
    .expect("resolve")
    .next()
    .expect("addr");
    let proxy = TcpProxy::start(upstream).await.expect("proxy");
    url.set_port(Some(proxy.port())).expect("port");
    let pool = hookline_store::pool::build_pool(
        url.as_str(),
        &hookline_store::pool::PoolOptions {
            max_size: 4,
            wait_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .expect("pool");
    let handler = hourly_handler_on(&env, pool);
    let ingested = env.ingest(BRAND, SHIPPED, json!({})).await;
    let bytes = messages(&ingested)[0].to_bytes();

    let handling =
        tokio::spawn(async move { handler.handle(&bytes, &CancellationToken::new()).await });
    eventually("the request at the endpoint", || async {
        (!receiver.received().is_empty()).then_some(())
    })
    .await;
    proxy.cut();
    // The response comes meanwhile, and recording it fails until the database is back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    let outcomes = tokio::time::timeout(Duration::from_secs(30), handling)
        .await
        .expect("handled once the database is back")
        .expect("join")
        .expect("recorded, not handed back to the queue");
    assert_eq!(outcomes, [Outcome::Attempted(NextState::Success)]);
    let (delivery, attempts) = env.delivery(hook.id, ingested.event.id).await;
    assert_eq!(delivery.status, SUCCESS);
    assert_eq!(attempts.len(), 1);
    assert_eq!(receiver.received().len(), 1, "sent once");
}

/// Attempts of several endpoints are written in one statement. One row the database refuses
/// (here a NUL in a response body, which the sender never produces) fails alone: the others
/// of its group are recorded.
#[tokio::test(flavor = "current_thread")]
async fn a_refused_attempt_row_does_not_fail_the_rest_of_its_group() {
    use hookline_store::{deliveries::Recorded, models::NewAttempt};
    use hookline_worker::delivery::record::Recorder;
    use std::sync::Arc;

    let env = TestEnv::new().await;
    let (_receiver, _hook) = env.subscriber(Mode::Succeed).await;
    let recorder = Recorder::start(
        env.pool.clone(),
        Endpoints::new(env.pool.clone(), env.settings().health.policy(), 100),
    );
    let mut rows = Vec::new();
    for body in ["fine", "bad\0body", "fine too"] {
        let ingested = env.ingest(BRAND, SHIPPED, json!({})).await;
        let pointer = messages(&ingested)[0];
        rows.push(Arc::new(Recorded {
            attempt: NewAttempt {
                id: Uuid::now_v7(),
                webhook_id: pointer.webhook_id,
                event_id: pointer.event_id,
                created: Utc::now(),
                status: SUCCESS.into(),
                request_endpoint: "http://127.0.0.1/h".into(),
                request_headers: json!({}),
                response_status_code: Some(200),
                response_headers: Some(json!({})),
                response_body: Some(body.into()),
                response_time_ms: 1,
                error: None,
            },
            next: NextState::Success,
            result: hookline_domain::AttemptResult::Delivered,
            probe: false,
        }));
    }
    // A current-thread runtime: all three are queued before the recorder task runs, so they
    // reach the database as one group.
    let (a, b, c) = tokio::join!(
        recorder.record(rows[0].clone()),
        recorder.record(rows[1].clone()),
        recorder.record(rows[2].clone())
    );
    a.expect("recorded");
    c.expect("recorded");
    assert!(b.is_err(), "the refused row fails");
    for (row, recorded) in rows.iter().zip([true, false, true]) {
        let (delivery, attempts) = env
            .delivery(row.attempt.webhook_id, row.attempt.event_id)
            .await;
        assert_eq!(attempts.len(), usize::from(recorded));
        assert_eq!(delivery.status == SUCCESS, recorded);
    }
}

/// An endpoint that answers every request with `headers` large response headers (each 8 KiB)
/// and a 200; returns its URL.
async fn hostile_headers_endpoint(headers: usize) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head and the body the Content-Length announces.
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let mut response = String::from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n");
                for i in 0..headers {
                    response.push_str(&format!("x-bloat-{i}: {}\r\n", "b".repeat(8192)));
                }
                response.push_str("connection: close\r\n\r\nok");
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn an_endpoint_answering_with_megabytes_of_headers_is_kept_to_the_header_bound() {
    let env = TestEnv::new().await;
    // 12 headers of 8 KiB: about 96 KiB of response headers, within what the client accepts.
    let endpoint = hostile_headers_endpoint(12).await;
    let hook = env
        .webhook(BRAND, &endpoint, &[SHIPPED], "top_secret")
        .await;
    let worker = env
        .spawn_worker(|s| s.retention.attempt_header_bytes = 10_000)
        .await;
    let event = env.publish_event(BRAND, SHIPPED, json!({})).await.event;
    let (delivery, attempts) = env.wait_final(hook.id, event.id).await;
    assert_eq!(delivery.status, SUCCESS);
    let headers = attempts[0]
        .response_headers
        .as_ref()
        .and_then(|h| h.as_object())
        .expect("headers kept");
    let kept: usize = headers
        .iter()
        .filter(|(name, _)| name.as_str() != "x-hookline-truncated")
        .map(|(name, value)| name.len() + value.as_str().map_or(0, str::len))
        .sum();
    assert!(kept <= 10_000, "{kept} bytes of headers kept");
    assert!(kept > 9_000, "the bound is used, not far undershot: {kept}");
    let note = headers["x-hookline-truncated"]
        .as_str()
        .expect("truncation noted");
    assert!(note.contains("bytes of headers not kept"), "{note}");
    worker.stop().await;
}
