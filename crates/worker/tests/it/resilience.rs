//! Nothing owed is lost and no endpoint holds up the others: hanging endpoints, a broker
//! outage, a worker killed mid-request, a worker stopped mid-request.

use std::time::{Duration, Instant};

use chrono::Utc;
use hookline_queue::Publisher;
use hookline_store::deliveries::{self, PENDING, SUCCESS};
use hookline_testkit::TcpProxy;
use serde_json::json;

use hookline_testkit::receiver::{Mode, Receiver};

use crate::helpers::{eventually, messages, TestEnv, BRAND, SHIPPED, WAIT};

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_deliveries_to_a_healthy_one() {
    let env = TestEnv::new().await;
    let hanging = Receiver::start(Mode::HangFirst { n: usize::MAX }).await;
    let healthy = Receiver::start(Mode::Succeed).await;
    let slow_hook = env
        .webhook(BRAND, &hanging.url(), &[SHIPPED], "top_secret")
        .await;
    let fast_hook = env
        .webhook(BRAND, &healthy.url(), &["RECEIPTS"], "top_secret")
        .await;
    let timeout = Duration::from_secs(9);
    // Four slots; without the per-endpoint cap, four hanging requests would take them all.
    let worker = env
        .spawn_worker(|s| {
            s.worker.concurrency = 4;
            s.worker.prefetch = 4;
            s.worker.max_in_flight_per_host = 1;
            s.delivery.request_timeout = timeout;
            s.worker.shutdown_grace = Duration::from_millis(200);
        })
        .await;

    let mut slow_events = Vec::new();
    for _ in 0..4 {
        slow_events.push(env.publish_event(BRAND, SHIPPED, json!({})).await.event.id);
    }
    hanging.wait_for(1, WAIT).await;

    let started = Instant::now();
    let mut fast_events = Vec::new();
    for _ in 0..4 {
        fast_events.push(
            env.publish_event(BRAND, "RECEIPTS", json!({}))
                .await
                .event
                .id,
        );
    }
    for &event_id in &fast_events {
        let (delivery, _) = env.wait_final(fast_hook.id, event_id).await;
        assert_eq!(delivery.status, SUCCESS);
    }
    let healthy_took = started.elapsed();
    assert!(
        healthy_took < timeout / 3,
        "healthy endpoint took {healthy_took:?} while another hung (timeout {timeout:?})"
    );
    // The cap held: one request at a time to the hanging endpoint, the rest deferred.
    assert_eq!(hanging.received().len(), 1);

    // And the hanging one: its first attempt ends at the request timeout, recorded as such.
    let attempt = eventually("the hanging endpoint's first attempt", || async {
        for &event_id in &slow_events {
            let (_, attempts) = env.delivery(slow_hook.id, event_id).await;
            if let Some(first) = attempts.into_iter().next() {
                return Some(first);
            }
        }
        None
    })
    .await;
    let error = attempt.error.as_deref().expect("transport error");
    assert!(error.starts_with("timeout"), "{error}");
    let hung_for = Duration::from_millis(u64::try_from(attempt.response_time_ms).expect("ms"));
    assert!(
        hung_for >= timeout - Duration::from_millis(100),
        "{hung_for:?}"
    );
    assert!(healthy_took * 3 < hung_for);
    worker.stop().await;
}

#[tokio::test]
async fn deliveries_released_while_the_broker_is_down_are_delivered_when_it_returns() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::Succeed).await;
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().expect("addr"))
        .await
        .expect("proxy");
    let proxied = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port());
    let worker = {
        let proxied = proxied.clone();
        env.spawn_worker(move |s| s.amqp.url = proxied.into()).await
    };

    proxy.cut();
    // What the API does: commit, fail to publish, release the leases.
    let ingested = env.ingest(BRAND, SHIPPED, json!({})).await;
    let published = Publisher::new(proxied, env.names())
        .publish(&messages(&ingested))
        .await;
    assert!(published.is_err(), "the broker is unreachable");
    {
        let mut conn = env.pool.get().await.expect("connection");
        deliveries::release(&mut conn, &messages(&ingested), Utc::now())
            .await
            .expect("release");
    }
    let event_id = ingested.event.id;
    let (released, _) = env.delivery(hook.id, event_id).await;

    // The worker's scheduler claims it, cannot publish either, and releases it again.
    env.wait_for(hook.id, event_id, "the scheduler to release it", |d, _| {
        d.updated > released.updated && d.leased_until.is_none() && d.status == PENDING
    })
    .await;
    assert!(receiver.received().is_empty());

    proxy.restore();
    let (delivery, attempts) = env.wait_final(hook.id, event_id).await;
    assert_eq!(delivery.status, SUCCESS);
    assert_eq!(attempts.len(), 1);
    assert_eq!(receiver.received().len(), 1);
    worker.stop().await;
}

#[tokio::test]
async fn a_delivery_whose_message_was_lost_is_published_again_when_its_lease_ends() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::Succeed).await;
    let worker = env.spawn_worker(|_| {}).await;
    // Ingested and leased, but its message never reaches the queue (lost with the broker).
    let lease = Duration::from_secs(2);
    let event = env
        .ingest_leased(BRAND, SHIPPED, json!({}), lease)
        .await
        .event;

    let (delivery, attempts) = env.wait_final(hook.id, event.id).await;
    assert_eq!(delivery.status, SUCCESS);
    assert_eq!(attempts.len(), 1);
    // Not before the lease ended: until then the row belonged to the (lost) message.
    let lease_end = event.created + chrono::Duration::from_std(lease).expect("lease");
    assert!(
        attempts[0].created >= lease_end,
        "{:?} < {lease_end:?}",
        attempts[0].created
    );
    assert_eq!(receiver.received().len(), 1);
    worker.stop().await;
}

#[tokio::test]
async fn a_delivery_whose_worker_dies_mid_request_completes_in_another_worker() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::HangFirst { n: 1 }).await;
    let short = |s: &mut hookline_config::Settings| {
        s.worker.lease = Duration::from_secs(1);
        s.delivery.request_timeout = Duration::from_secs(3);
    };
    let first = env.spawn_worker(short).await;
    let event_id = env.publish_event(BRAND, SHIPPED, json!({})).await.event.id;
    receiver.wait_for(1, WAIT).await;

    first.kill().await;
    let second = env.spawn_worker(short).await;

    let (delivery, attempts) = env.wait_final(hook.id, event_id).await;
    assert_eq!(delivery.status, SUCCESS);
    // The dead worker recorded nothing; the second attempt is the only one on record.
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].response_status_code, Some(200));
    assert_eq!(receiver.received().len(), 2);
    second.stop().await;
}

#[tokio::test]
async fn a_stopped_worker_hands_back_what_is_in_flight_and_another_delivers_it() {
    let env = TestEnv::new().await;
    let (receiver, hook) = env.subscriber(Mode::HangFirst { n: 1 }).await;
    let first = env
        .spawn_worker(|s| s.worker.shutdown_grace = Duration::from_millis(300))
        .await;
    let event_id = env.publish_event(BRAND, SHIPPED, json!({})).await.event.id;
    receiver.wait_for(1, WAIT).await;

    // SIGTERM: the hanging request outlives the grace period and is handed back.
    first.stop().await;
    let (delivery, attempts) = env.delivery(hook.id, event_id).await;
    assert_eq!(delivery.status, PENDING);
    assert!(attempts.is_empty());
    // Released for the scheduler: due now. The stopping worker's own scheduler may already
    // have claimed it again (a lease, and a message in the queue for the next worker) if its
    // last round overlapped the hand-back; either way nobody is attempting it.
    assert!(!delivery.attempting, "handed back");
    assert!(delivery.next_attempt_at.is_some_and(|at| at <= Utc::now()));

    let second = env.spawn_worker(|_| {}).await;
    let (delivery, attempts) = env.wait_final(hook.id, event_id).await;
    assert_eq!(delivery.status, SUCCESS);
    assert_eq!(attempts.len(), 1);
    assert_eq!(receiver.received().len(), 2);
    second.stop().await;
}
